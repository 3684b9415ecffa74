//! The storage conformance suite on PostgreSQL, each check in a fresh schema.
//! Skipped (each test passes at once, saying so) without `FLOW_TEST_POSTGRES`.

mod support;

flow_conformance::conformance_tests!(optional support::fresh);
