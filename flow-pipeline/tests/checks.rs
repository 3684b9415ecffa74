//! Every check of a pipeline file: each problem's exact message, line,
//! column and snippet; and all of them reported together.

use std::ffi::OsStr;

use flow_pipeline::{ParamValue, Params, Pipeline, ProblemKind, Problems};

/// Each problem as (line, column, snippet, message).
fn problems(err: &Problems) -> Vec<(usize, usize, String, String)> {
    err.iter()
        .map(|p| (p.line(), p.column(), p.snippet().to_string(), p.message()))
        .collect()
}

fn check(text: &str) -> Vec<(usize, usize, String, String)> {
    match Pipeline::from_str("t.yaml", text) {
        Ok(_) => Vec::new(),
        Err(e) => problems(&e),
    }
}

fn one(
    line: usize,
    column: usize,
    snippet: &str,
    message: &str,
) -> Vec<(usize, usize, String, String)> {
    vec![(line, column, snippet.to_string(), message.to_string())]
}

#[test]
fn unknown_dependency() {
    let text = "name: p\nsteps:\n  - name: ping\n    command: [ping]\n  - name: report\n    command: [echo]\n    depends-on: [ping, pnig]\n";
    assert_eq!(
        check(text),
        one(
            7,
            24,
            "pnig",
            "step `report` depends on `pnig`, which is not a step of this pipeline"
        )
    );
}

#[test]
fn cycle_names_its_steps_in_order() {
    let text = "\
name: p
steps:
  - name: a
    command: [x]
    depends-on: [c]
  - name: b
    command: [x]
    depends-on: [a]
  - name: c
    command: [x]
    depends-on: [b]
  - name: d
    command: [x]
    depends-on: [d]
";
    assert_eq!(
        check(text),
        vec![
            (
                5,
                18,
                "c".to_string(),
                "the steps depend on each other in a cycle: `a` depends on `c`, which depends on \
                 `b`, which depends on `a`; remove one of these dependencies"
                    .to_string()
            ),
            (
                14,
                18,
                "d".to_string(),
                "the steps depend on each other in a cycle: `d` depends on `d`; remove one of \
                 these dependencies"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn duplicate_step() {
    let text = "name: p\nsteps:\n  - name: ping\n    command: [ping]\n  - name: ping\n    command: [echo]\n";
    assert_eq!(
        check(text),
        one(
            5,
            11,
            "ping",
            "two steps are named `ping` (the first on line 3): rename one"
        )
    );
}

#[test]
fn unknown_placeholder_points_inside_the_string() {
    let text = "name: p\nparameters:\n  ip: {default: 127.0.0.1}\nsteps:\n  - name: fetch\n    command: [curl, \"http://{ip}:{port}/\"]\n";
    assert_eq!(
        check(text),
        one(
            6,
            34,
            "{port}",
            "step `fetch` uses `{port}`, which names no parameter and no step output"
        )
    );
}

#[test]
fn unknown_placeholder_in_a_script_env_and_directory() {
    let text = "\
name: p
steps:
  - name: s
    script: |
      echo start
      echo {who}
    env:
      TARGET: '{where}'
    working-directory: /srv/{site}
";
    assert_eq!(
        check(text),
        vec![
            (
                6,
                12,
                "{who}".into(),
                "step `s` uses `{who}`, which names no parameter and no step output".into()
            ),
            (
                8,
                16,
                "{where}".into(),
                "step `s` uses `{where}`, which names no parameter and no step output".into()
            ),
            (
                9,
                29,
                "{site}".into(),
                "step `s` uses `{site}`, which names no parameter and no step output".into()
            ),
        ]
    );
}

#[test]
fn an_output_of_a_step_that_does_not_run_before_is_refused() {
    let text = "\
name: p
steps:
  - name: version
    command: [cat, VERSION]
    output: version
  - name: tag
    command: [git, tag, 'v{version}']
  - name: push
    command: [git, push, 'v{version}']
    depends-on: [tag]
  - name: announce
    command: [echo, '{version}']
    depends-on: [push]
  - name: after
    command: [echo, '{version}']
    depends-on: [version]
";
    // `announce` runs after `push`, after `tag`: not after `version`.
    let message = |step: &str| {
        format!(
            "step `{step}` uses `{{version}}`, the output of step `version`, which does not run \
             before it: add `version` to its `depends-on`"
        )
    };
    assert_eq!(
        check(text),
        vec![
            (7, 27, "{version}".into(), message("tag")),
            (9, 28, "{version}".into(), message("push")),
            (12, 22, "{version}".into(), message("announce")),
        ]
    );
}

#[test]
fn an_undo_may_use_its_own_steps_output() {
    let text = "\
name: p
steps:
  - name: create
    command: [make-vm]
    output: vm
    undo:
      command: [delete-vm, '{vm}']
  - name: use
    command: [ssh, '{vm}', uptime]
    depends-on: [create]
";
    let p = Pipeline::from_str("t.yaml", text).expect("valid");
    assert!(
        p.step("create")
            .is_some_and(|s| s.has_undo() && s.output() == Some("vm"))
    );
}

#[test]
fn default_of_the_wrong_type() {
    let text = "\
name: p
parameters:
  count: {type: int, default: many}
  ratio: {type: float, default: '0.5'}
  verbose: {type: bool, default: 'yes'}
  name: {type: string, default: 8080}
  mode: {one-of: [fast, slow], default: medium}
steps:
  - {name: s, command: ['true']}
";
    assert_eq!(
        check(text),
        vec![
            (
                3,
                31,
                "many".into(),
                "the default of parameter `count` must be an integer, not `many`".into()
            ),
            (
                4,
                33,
                "'0.5'".into(),
                "the default of parameter `ratio` must be a number, not `0.5`".into()
            ),
            (
                5,
                34,
                "'yes'".into(),
                "the default of parameter `verbose` must be `true` or `false`, not `yes`".into()
            ),
            (
                6,
                33,
                "8080".into(),
                "the default of parameter `name` must be a string, not an integer (`8080`)".into()
            ),
            (
                7,
                41,
                "medium".into(),
                "the default of parameter `mode` must be one of `fast`, `slow`, not `medium`"
                    .into()
            ),
        ]
    );
}

#[test]
fn required_parameter_given_no_value() {
    let text = "name: p\nparameters:\n  host:\n    type: string\n    description: the server\nsteps:\n  - {name: s, command: [ping, '{host}']}\n";
    let p = Pipeline::from_str("t.yaml", text).expect("valid");
    let err = p.check(&Params::new()).unwrap_err();
    assert_eq!(
        problems(&err),
        one(
            3,
            3,
            "host",
            "parameter `host` is required and was given no value"
        )
    );
    assert!(p.check(&Params::new().set("host", "db")).is_ok());
}

#[test]
fn values_of_the_wrong_type_name_their_parameter_and_never_become_the_default() {
    let text = "\
name: p
parameters:
  count: {type: int, default: 1}
  ratio: {type: float, default: 0.5}
  on: {type: bool, default: false}
  mode: {one-of: [fast, slow], default: fast}
  host: {type: string, default: localhost}
steps:
  - {name: s, command: [x, '{count}', '{ratio}', '{on}', '{mode}', '{host}']}
";
    let p = Pipeline::from_str("t.yaml", text).expect("valid");
    let params = Params::new()
        .text("count", "ten")
        .text("ratio", "NaN")
        .text("on", "yes")
        .set("mode", "medium")
        .set("host", 3i64)
        .set("colour", "red");
    let err = p.check(&params).unwrap_err();
    assert_eq!(
        problems(&err),
        vec![
            (3, 3, "count".into(), "parameter `count` must be an integer, and \"ten\" is not".into()),
            (4, 3, "ratio".into(), "parameter `ratio` must be a number, and \"NaN\" is not".into()),
            (5, 3, "on".into(), "parameter `on` must be `true` or `false`, and \"yes\" is not".into()),
            (6, 3, "mode".into(), "parameter `mode` must be one of `fast`, `slow`, and \"medium\" is not".into()),
            (7, 3, "host".into(), "parameter `host` must be a string, and the integer 3 is not".into()),
            (0, 0, String::new(), "the pipeline has no parameter `colour`: its parameters are `count`, `ratio`, `on`, `mode`, `host`".into()),
        ]
    );
    // Text is read as the parameter's type.
    let values = p
        .values(
            &Params::new()
                .text("count", "10")
                .text("ratio", "2.5")
                .text("on", "true"),
        )
        .expect("valid values");
    assert_eq!(
        values,
        [
            ("count".to_string(), ParamValue::Int(10)),
            ("ratio".to_string(), ParamValue::Float(2.5)),
            ("on".to_string(), ParamValue::Bool(true)),
            ("mode".to_string(), ParamValue::String("fast".into())),
            ("host".to_string(), ParamValue::String("localhost".into())),
        ]
    );
}

#[test]
fn nul_and_text_that_is_not_utf8_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let text = "name: p\nparameters:\n  a: {}\n  b: {}\nsteps:\n  - {name: s, command: [x, '{a}', '{b}']}\n";
    let p = Pipeline::from_str("t.yaml", text).expect("valid");
    let err = p
        .check(
            &Params::new()
                .set("a", "x\0y")
                .text("b", OsStr::from_bytes(b"caf\xe9")),
        )
        .unwrap_err();
    let kinds: Vec<_> = err.iter().map(|p| p.kind().clone()).collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::NulInValue { param: "a".into() },
            ProblemKind::NotUtf8 { param: "b".into() },
        ]
    );
    assert_eq!(
        err.iter().map(|p| p.message()).collect::<Vec<_>>(),
        [
            "the value of parameter `a` holds a NUL byte, which no program can receive in an argument or in its environment",
            "the value of parameter `b` is not UTF-8 text: the journal keeps values as UTF-8, so it could not keep this one exactly",
        ]
    );
}

#[test]
fn unknown_keys_and_wrong_types() {
    let text = "\
name: p
colour: blue
steps:
  - name: s
    command: [x]
    depends-on: other
    timout: 5s
    retry: {attempts: 0}
";
    assert_eq!(
        check(text),
        vec![
            (2, 1, "colour".into(), "the pipeline has no key `colour`: its keys are `name`, `description`, `parameters`, `steps`".into()),
            (6, 17, "other".into(), "`depends-on` of step `s` must be a list, not a string".into()),
            (7, 5, "timout".into(), "step `s` has no key `timout`: its keys are `name`, `description`, `command`, `script`, `depends-on`, `env`, `working-directory`, `timeout`, `retry`, `undo`, `output`".into()),
            (8, 23, "0".into(), "`attempts` of the `retry` of step `s` must be a whole number from 1, not an integer".into()),
        ]
    );
}

#[test]
fn missing_keys_commands_and_names() {
    let text = "\
name: bad name
steps:
  - command: [x]
  - name: both
    command: [x]
    script: echo
  - name: neither
  - name: shell
    command: echo hi
  - name: -opt
    command: []
";
    assert_eq!(
        check(text),
        vec![
            (1, 7, "bad name".into(), "a pipeline `bad name` is not a valid name: use ASCII letters, digits, `_`, `-` and `.`, starting with a letter, a digit or `_`".into()),
            (3, 5, "command: [x]".into(), "a step needs a `name`".into()),
            (4, 5, "name: both\n    command: [x]\n    script: echo".into(), "step `both` has both `command` and `script`: give one".into()),
            (7, 5, "name: neither".into(), "step `neither` has neither `command` nor `script`: give a `command` (a program and its arguments) or a `script` (run by `sh`)".into()),
            (9, 14, "echo hi".into(), "`command` of step `shell` must be a list of a program and its arguments (use `script` for a shell script), not a string".into()),
            (10, 11, "-opt".into(), "a step `-opt` is not a valid name: use ASCII letters, digits, `_`, `-` and `.`, starting with a letter, a digit or `_`".into()),
            (11, 14, "[]".into(), "`command` of a step is empty: name a program to run".into()),
        ]
    );
}

#[test]
fn braces_placeholders_durations_and_outputs() {
    let text = "\
name: p
parameters:
  ip: {default: 127.0.0.1}
steps:
  - name: a
    command: [echo, 'a } b', '{not a name}', {ip}]
    timeout: 5 minutes
  - name: b
    command: [echo, '{{literal}}']
    output: ip
";
    assert_eq!(
        check(text),
        vec![
            (6, 24, "}".into(), "a lone `}`: write `}}` for a literal brace, or `{name}` for a value".into()),
            (6, 31, "{not a name}".into(), "`{not a name}` is not a placeholder: a placeholder is a name of letters, digits and `_` in braces; write `{{` and `}}` for literal braces".into()),
            (6, 46, "{ip}".into(), "`{ip}` is a mapping to YAML when it is not in quotes: write a placeholder in quotes, as \"{name}\"".into()),
            (7, 14, "5 minutes".into(), "`5 minutes` is not a duration: write whole numbers with units, such as `30s`, `5m`, `1h30m` or `500ms`".into()),
            (10, 13, "ip".into(), "`ip` names parameter `ip` and the output of step `b`: a placeholder must name one value, rename one".into()),
        ]
    );
}

#[test]
fn yaml_syntax_errors_point_where_the_parser_stopped() {
    let text = "name: p\nsteps:\n  - name: a\n    command: [x, y\n  - name: b\n";
    // The unclosed list runs on until a `:` that cannot be in it.
    assert_eq!(
        check(text),
        one(
            5,
            9,
            ":",
            "this is not valid YAML: illegal placement of ':' indicator"
        )
    );

    let dup = "name: p\nname: q\nsteps: []\n";
    assert_eq!(
        check(dup),
        one(
            2,
            1,
            "n",
            "this is not valid YAML: duplicated key in mapping"
        )
    );
}

#[test]
fn every_problem_is_reported_together_in_file_order() {
    let text = "\
name: demo
parameters:
  count: {type: int, default: many}
steps:
  - name: ping
    command: [ping, '{ip}']
  - name: ping
    command: [echo]
  - name: fetch
    command: [curl]
    depends-on: [pnig]
  - name: x
    command: [x]
    depends-on: [y]
  - name: y
    command: [y]
    depends-on: [x]
    tiemout: 1s
";
    let err = Pipeline::from_str("demo.yaml", text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\
demo.yaml:3:31: the default of parameter `count` must be an integer, not `many`
demo.yaml:6:22: step `ping` uses `{ip}`, which names no parameter and no step output
demo.yaml:7:11: two steps are named `ping` (the first on line 5): rename one
demo.yaml:11:18: step `fetch` depends on `pnig`, which is not a step of this pipeline
demo.yaml:14:18: the steps depend on each other in a cycle: `x` depends on `y`, which depends on `x`; remove one of these dependencies
demo.yaml:18:5: step `y` has no key `tiemout`: its keys are `name`, `description`, `command`, `script`, `depends-on`, `env`, `working-directory`, `timeout`, `retry`, `undo`, `output`"
    );
    let drawn = err.render();
    assert!(drawn.contains("demo.yaml:11:18"), "{drawn}");
    assert!(drawn.contains("no such step"), "{drawn}");
    assert!(drawn.contains("    depends-on: [pnig]"), "{drawn}");
}

#[test]
fn several_starts_several_ends_and_isolated_steps_are_legal() {
    let text = "\
name: shape
steps:
  - {name: a, command: ['true']}
  - {name: b, command: ['true']}
  - {name: c, command: ['true'], depends-on: [a, b]}
  - {name: d, command: ['true'], depends-on: [c]}
  - {name: e, command: ['true'], depends-on: [c]}
  - {name: lonely, command: ['true']}
";
    let p = Pipeline::from_str("shape.yaml", text).expect("legal");
    let deps: Vec<(&str, Vec<&str>)> = p
        .steps()
        .iter()
        .map(|s| (s.name(), s.depends_on().collect()))
        .collect();
    assert_eq!(
        deps,
        [
            ("a", vec![]),
            ("b", vec![]),
            ("c", vec!["a", "b"]),
            ("d", vec!["c"]),
            ("e", vec!["c"]),
            ("lonely", vec![]),
        ]
    );
}

#[test]
fn the_hash_is_of_the_text_with_plain_line_ends() {
    let text = "name: p\nsteps:\n  - {name: a, command: ['true']}\n";
    let a = Pipeline::from_str("a.yaml", text).unwrap();
    let b = Pipeline::from_str("b.yaml", &text.replace('\n', "\r\n")).unwrap();
    let c = Pipeline::from_str("a.yaml", &text.replace("true", "false")).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_ne!(a.hash(), c.hash());
    assert_eq!(a.hash().len(), 64);
    // `printf "pipeline/yaml\0$text" | sha256sum`: the id a store of definitions gives it.
    assert_eq!(
        a.hash(),
        "2e134943b0eab3ff6685a63ffbea1c2a2dff92552b9475acf84fe45719f39ab1"
    );
}

#[test]
fn a_file_that_cannot_be_read() {
    let err = Pipeline::from_path("/nonexistent/p.yaml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/p.yaml: cannot read the file: No such file or directory (os error 2)"
    );
}
