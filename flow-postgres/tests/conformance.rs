//! The storage conformance suite on PostgreSQL, each check in a fresh schema.
//! Skipped (each test passes at once, saying so) without `FLOW_TEST_POSTGRES`.

mod support;

flow_conformance::conformance_tests!(optional support::fresh);

mod jobs {
    flow_conformance::job_board_tests!(optional super::support::fresh);
}
