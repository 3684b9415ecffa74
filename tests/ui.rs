//! Compile-time behaviour of the macros: each file under `tests/ui/*/` is a
//! mistake, and its `.stderr` the exact message the compiler prints.

#[test]
fn task_mistakes_are_spanned_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/task/*.rs");
}

#[test]
fn flow_mistakes_are_compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/flow/*.rs");
}

#[test]
fn flow_syntax_forms_compile_and_run() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/flow-pass/*.rs");
}
