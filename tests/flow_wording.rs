//! The run-time builder and `flow!` speak with one voice: each flow that
//! `flow!` rejects while compiling (`tests/ui/flow/*.rs`) is built here from
//! data, with `Flow`, `Atom::of`, `rebind`, `link` and `input`, and
//! `Flow::build` must fail with exactly the sentence the compiler printed
//! (read from the `.stderr` snapshot, and copied here), except where `flow!`
//! says the fix in its own syntax (an ambiguous provider, a duplicate name),
//! and there both sentences are asserted. Type mismatches are
//! worded by the trait solver at compile time, so there the run-time sentence
//! is asserted on its own, next to the compile-time one.

use flow::{Atom, BuildError, BuildErrors, CompiledFlow, Flow, Method, Missing, task};

/// The sentence a compile-time check printed: the first line of a `.stderr`
/// snapshot, after the error code and, for a constant evaluation, after
/// `evaluation panicked: `.
fn compile_time_sentence(stderr: &str) -> &str {
    let first = stderr.lines().next().expect("an error line");
    let (_, rest) = first.split_once("]: ").unwrap_or(("", first));
    let rest = rest.strip_prefix("error: ").unwrap_or(rest);
    rest.strip_prefix("evaluation panicked: ").unwrap_or(rest)
}

/// The only problem found when building `flow`.
fn only_error(flow: Flow) -> (BuildErrors, BuildError) {
    let errors = build_errors(flow.build());
    assert_eq!(errors.errors().len(), 1, "{errors}");
    let first = errors.errors()[0].clone();
    (errors, first)
}

fn build_errors(built: Result<CompiledFlow, BuildErrors>) -> BuildErrors {
    match built {
        Ok(flow) => panic!(
            "flow `{}` built, but `flow!` rejects it while compiling",
            flow.name()
        ),
        Err(e) => e,
    }
}

/// Asserts that the compile-time sentence of `stderr` is `sentence`, and that
/// the run-time error says the same.
fn assert_same_words(stderr: &str, sentence: &str, error: &BuildError) {
    assert_eq!(
        compile_time_sentence(stderr),
        sentence,
        "the snapshot changed"
    );
    assert_eq!(error.to_string(), sentence);
}

// ---------------------------------------------------------------------------
// tests/ui/flow/missing-input.rs
// ---------------------------------------------------------------------------

mod missing_input {
    use flow::task;

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub(crate) struct DbName(pub(crate) String);

    #[task]
    pub(crate) fn stop_server(db: &DbName) {
        let _ = db;
    }
}

#[test]
fn missing_input_is_worded_as_at_compile_time() {
    let sentence = "task `stop_server` requires `db: DbName`, but no earlier task in flow `deploy` \
                    provides `db` and the flow does not declare it as an input";
    let (errors, error) = only_error(
        Flow::linear("deploy")
            .input::<String>("host")
            .add(Atom::of(missing_input::stop_server {})),
    );
    assert_same_words(
        include_str!("ui/flow/missing-input.stderr"),
        sentence,
        &error,
    );
    assert_eq!(
        error,
        BuildError::MissingRequirement {
            atom: "stop_server".into(),
            symbol: "db".into(),
            type_name: "DbName".into(),
            method: Method::Execute,
            flow: "deploy".into(),
            reason: Missing::Nowhere,
        }
    );
    assert_eq!(
        errors.to_string(),
        format!("flow `deploy` is invalid: {sentence}")
    );
}

// ---------------------------------------------------------------------------
// tests/ui/flow/provided-after.rs and provided-concurrently.rs
// ---------------------------------------------------------------------------

#[task(provides = backup)]
fn back_up(db: &String) -> String {
    format!("{db}.bak")
}

#[task]
fn migrate(backup: &String) {
    let _ = backup;
}

#[test]
fn provided_after_is_worded_as_at_compile_time() {
    let sentence = "task `migrate` requires `backup: String`, but `backup` is provided only by \
                    `back_up`, which does not run before it: move `back_up` earlier";
    let (_, error) = only_error(
        Flow::linear("upgrade")
            .input::<String>("db")
            .add(Atom::of(migrate {}))
            .add(Atom::of(back_up {})),
    );
    assert_same_words(
        include_str!("ui/flow/provided-after.stderr"),
        sentence,
        &error,
    );
    assert!(
        matches!(
            &error,
            BuildError::MissingRequirement { reason: Missing::RunsAfter { provider }, .. }
                if provider == "back_up"
        ),
        "{error:?}"
    );
}

#[test]
fn provided_concurrently_is_worded_as_at_compile_time() {
    let sentence = "task `migrate` requires `backup: String`, but `backup` is provided only by \
                    `back_up`, which runs concurrently with it (same unordered group `both`)";
    let (_, error) = only_error(
        Flow::linear("upgrade").input::<String>("db").add(
            Flow::unordered("both")
                .add(Atom::of(back_up {}))
                .add(Atom::of(migrate {})),
        ),
    );
    assert_same_words(
        include_str!("ui/flow/provided-concurrently.stderr"),
        sentence,
        &error,
    );
    assert!(
        matches!(
            &error,
            BuildError::MissingRequirement {
                reason: Missing::Concurrent { provider, group },
                ..
            } if provider == "back_up" && group == "both"
        ),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------
// tests/ui/flow/ambiguous-provider.rs
// ---------------------------------------------------------------------------

#[task(provides = size)]
fn measure_disk() -> u64 {
    1
}

#[task(provides = size)]
fn measure_memory() -> u64 {
    2
}

#[task]
fn report(size: u64) {
    let _ = size;
}

#[test]
fn ambiguous_provider_is_worded_as_at_compile_time() {
    // `flow!` names the type and says the fix in its own syntax; the
    // builder names its own method.
    let at_compile_time = "task `report` requires `size: u64`, but several tasks with no order \
                           between them provide it: `measure_disk`, `measure_memory`; rename the \
                           output where a task is used, as in `measure_disk(-> size = \
                           measure_disk_size)`, and read that one with `report(size = \
                           measure_disk_size)` if it is the one meant";
    let sentence = "task `report` requires `size`, but several tasks with no order between them \
                    provide it: `measure_disk`, `measure_memory`; rename an output with \
                    `provides_as` or rebind the input";
    let (_, error) = only_error(
        Flow::linear("audit")
            .add(
                Flow::unordered("measure")
                    .add(Atom::of(measure_disk {}))
                    .add(Atom::of(measure_memory {})),
            )
            .add(Atom::of(report {})),
    );
    assert_eq!(
        compile_time_sentence(include_str!("ui/flow/ambiguous-provider.stderr")),
        at_compile_time
    );
    assert_eq!(error.to_string(), sentence);
    assert_eq!(
        error,
        BuildError::AmbiguousProvider {
            atom: "report".into(),
            symbol: "size".into(),
            providers: vec!["measure_disk".into(), "measure_memory".into()],
        }
    );
}

// ---------------------------------------------------------------------------
// tests/ui/flow/duplicate-task-name.rs
// ---------------------------------------------------------------------------

#[task]
fn ping() {}

#[test]
fn duplicate_task_name_is_worded_as_at_compile_time() {
    let sentence = "two atoms are named `ping`, at `twice/ping` and at `twice/again/ping`: names \
                    must be unique in a flow tree, rename one";
    // `flow!` shows how, with a label.
    let at_compile_time = "two atoms are named `ping`, at `twice/ping` and at `twice/again/ping`: \
                           names must be unique in a flow tree; rename one with `as`: `ping as \
                           ping_2`";
    let (_, error) = only_error(
        Flow::linear("twice")
            .add(Atom::of(ping {}))
            .add(Flow::unordered("again").add(Atom::of(ping {}))),
    );
    assert_eq!(
        compile_time_sentence(include_str!("ui/flow/duplicate-task-name.stderr")),
        at_compile_time
    );
    assert_eq!(error.to_string(), sentence);
    assert_eq!(
        error,
        BuildError::DuplicateName {
            name: "ping".into(),
            first: "twice/ping".into(),
            second: "twice/again/ping".into(),
        }
    );
}

// ---------------------------------------------------------------------------
// tests/ui/flow/graph-cycle.rs
// ---------------------------------------------------------------------------

mod cycle {
    use flow::task;

    #[task(provides = a)]
    pub(crate) fn first(c: u32) -> u32 {
        c
    }

    #[task(provides = b)]
    pub(crate) fn second(a: u32) -> u32 {
        a
    }

    #[task(provides = c)]
    pub(crate) fn third(b: u32) -> u32 {
        b
    }
}

#[test]
fn graph_cycle_is_worded_as_at_compile_time() {
    let sentence = "graph flow `wiring` has a cycle: `first` -> `second` -> `third` -> `first`; \
                    remove a link or an input that closes it";
    let (_, error) = only_error(
        Flow::linear("circle").add(
            Flow::graph("wiring")
                .add(Atom::of(cycle::first {}))
                .add(Atom::of(cycle::second {}))
                .add(Atom::of(cycle::third {})),
        ),
    );
    assert_same_words(include_str!("ui/flow/graph-cycle.stderr"), sentence, &error);
    assert_eq!(
        error,
        BuildError::Cycle {
            flow: "wiring".into(),
            atoms: vec!["first".into(), "second".into(), "third".into()],
        }
    );
}

// ---------------------------------------------------------------------------
// tests/ui/flow/unknown-link.rs
// ---------------------------------------------------------------------------

mod unknown_link {
    use flow::task;

    #[task]
    pub(crate) fn first() {}

    #[task]
    pub(crate) fn second() {}
}

#[test]
fn unknown_link_is_worded_as_at_compile_time() {
    let sentence = "graph flow `wiring` links `first` -> `third`, but `third` is not an item of \
                    that graph: link only atoms or flows added to it";
    let (_, error) = only_error(
        Flow::linear("linked").add(
            Flow::graph("wiring")
                .add(Atom::of(unknown_link::first {}))
                .add(Atom::of(unknown_link::second {}))
                .link("first", "third"),
        ),
    );
    assert_same_words(
        include_str!("ui/flow/unknown-link.stderr"),
        sentence,
        &error,
    );
    assert_eq!(
        error,
        BuildError::UnknownLink {
            flow: "wiring".into(),
            from: "first".into(),
            to: "third".into(),
            unknown: "third".into(),
        }
    );
}

// ---------------------------------------------------------------------------
// tests/ui/flow/rebind-to-missing-symbol.rs
// ---------------------------------------------------------------------------

mod rebind {
    use flow::task;

    #[task]
    pub(crate) fn stop_server(host: &String) {
        let _ = host;
    }
}

#[test]
fn rebind_to_missing_symbol_is_worded_as_at_compile_time() {
    let sentence = "task `stop_server` requires `primary: String`, but no earlier task in flow \
                    `deploy` provides `primary` and the flow does not declare it as an input";
    let (_, error) = only_error(
        Flow::linear("deploy")
            .input::<String>("host")
            .add(Atom::of(rebind::stop_server {}).rebind("host", "primary")),
    );
    assert_same_words(
        include_str!("ui/flow/rebind-to-missing-symbol.stderr"),
        sentence,
        &error,
    );
    assert!(
        matches!(
            &error,
            BuildError::MissingRequirement { symbol, reason: Missing::Nowhere, .. }
                if symbol == "primary"
        ),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------
// Type mismatches: the trait solver words them at compile time
// ---------------------------------------------------------------------------

#[task(provides = port)]
fn pick_port() -> String {
    "8080".to_string()
}

#[task]
fn listen(port: u16) {
    let _ = port;
}

#[test]
fn type_mismatch_reads_the_same_at_compile_time_and_at_run_time() {
    // tests/ui/flow/type-mismatch.rs
    let sentence = "task `listen` requires `port: u16`, but its provider `pick_port` provides \
                    `port` as `String`: make the types agree, or rebind the input to another \
                    symbol";
    assert_eq!(
        compile_time_sentence(include_str!("ui/flow/type-mismatch.stderr")),
        sentence
    );
    let (_, error) = only_error(
        Flow::linear("serve")
            .add(Atom::of(pick_port {}))
            .add(Atom::of(listen {})),
    );
    assert_eq!(error.to_string(), sentence);
    assert_eq!(
        error,
        BuildError::TypeMismatch {
            atom: "listen".into(),
            symbol: "port".into(),
            expected: "u16".into(),
            provider: "pick_port".into(),
            provided: "String".into(),
        }
    );
}

#[test]
fn type_mismatch_with_a_flow_input_names_the_provider_differently() {
    // tests/ui/flow/type-mismatch-with-flow-input.rs: at compile time the
    // provider is the generated type `flow_inputs`; at run time it is
    // `the flow's inputs`.
    let compile_time = "task `listen` requires `port: u16`, but its provider `flow_inputs` \
                        provides `port` as `u32`: make the types agree, or rebind the input to \
                        another symbol";
    assert_eq!(
        compile_time_sentence(include_str!("ui/flow/type-mismatch-with-flow-input.stderr")),
        compile_time
    );
    let (_, error) = only_error(
        Flow::linear("serve")
            .input::<u32>("port")
            .add(Atom::of(listen {})),
    );
    assert_eq!(
        error.to_string(),
        "task `listen` requires `port: u16`, but its provider `the flow's inputs` provides \
         `port` as `u32`: make the types agree, or rebind the input to another symbol"
    );
}

#[task]
fn retry_upload(attempts: u32) {
    let _ = attempts;
}

#[test]
fn injected_type_mismatch_is_a_rustc_type_error_at_compile_time() {
    // tests/ui/flow/injected-type-mismatch.rs: `flow!` types the constant as
    // the input, so rustc reports `mismatched types`; the run-time builder
    // takes any value (a `String` here: `&str` is not `Data`) and checks it
    // when building.
    assert_eq!(
        compile_time_sentence(include_str!("ui/flow/injected-type-mismatch.stderr")),
        "mismatched types"
    );
    let (_, error) = only_error(
        Flow::linear("upload")
            .add(Atom::of(retry_upload {}).inject("attempts", "three".to_string())),
    );
    assert_eq!(
        error.to_string(),
        "task `retry_upload` requires `attempts: u32`, but its provider `an injected value` \
         provides `attempts` as `String`: make the types agree, or rebind the input to another \
         symbol"
    );
}
