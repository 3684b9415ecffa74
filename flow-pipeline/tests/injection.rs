//! Hostile values reach programs byte for byte and never run as code: in an
//! argument list, in a script (in every quoting context), in the environment,
//! and through a step's output into a later step. Real child processes.

use std::path::{Path, PathBuf};

use flow_core::FlowState;
use flow_pipeline::{Params, Pipeline, Settings};

const PIPELINE: &str = r#"
name: injection
parameters:
  v: {type: string}
steps:
  - name: argument
    command: [printf, "%s", "{v}"]
  - name: inside-an-argument
    command: [printf, "%s", "<{v}>"]
  - name: script-plain
    script: printf '%s' {v}
  - name: script-double-quoted
    script: printf '%s' "<{v}>"
  - name: script-single-quoted
    script: printf '%s' '<{v}>'
  - name: script-substitution
    script: printf '%s' "$(printf '%s' {v})"
  - name: script-here-document
    script: |
      cat <<EOF
      <{v}>
      EOF
  - name: environment
    command: [printenv, VALUE]
    env:
      VALUE: "{v}"
  - name: produce
    command: [printf, "%s", "{v}"]
    output: produced
  - name: consume
    script: printf '%s' {produced}
    depends-on: [produce]
"#;

/// What each step prints for value `v`.
fn expected(v: &str) -> Vec<(&'static str, String)> {
    vec![
        ("argument", v.to_string()),
        ("inside-an-argument", format!("<{v}>")),
        ("script-plain", v.to_string()),
        ("script-double-quoted", format!("<{v}>")),
        ("script-single-quoted", format!("<{v}>")),
        // `$(...)` drops the line ends that close what it captures.
        ("script-substitution", v.trim_end_matches('\n').to_string()),
        ("script-here-document", format!("<{v}>\n")),
        ("environment", format!("{v}\n")),
        ("produce", v.to_string()),
        // An output value is the standard output without its closing line ends.
        ("consume", v.trim_end_matches('\n').to_string()),
    ]
}

fn hostile(canary: &Path) -> Vec<String> {
    let c = canary.display();
    let mut values = vec![
        format!("$(touch {c})"),
        format!("`touch {c}`"),
        format!("; touch {c}"),
        format!("&& touch {c}"),
        format!("| touch {c}"),
        format!("|| touch {c}"),
        format!("& touch {c} &"),
        format!("\ntouch {c}\n"),
        format!("x\r\ntouch {c}"),
        format!("'; touch {c}; '"),
        format!("\"; touch {c}; \""),
        format!("\"$(touch {c})\""),
        format!("'$(touch {c})'"),
        format!("$(touch {c})\nEOF\ntouch {c}\ncat <<EOF"),
        format!("> {c}"),
        format!("x; touch {c} #"),
        format!("\\\"; touch {c}; \\\""),
        format!("${{IFS}}touch${{IFS}}{c}"),
        format!("$((1+1)) $HOME ${{HOME}} ~ {c}"),
        "*".to_string(),
        "/*".to_string(),
        "[a-z]* ? .*".to_string(),
        "-n".to_string(),
        "--help".to_string(),
        "-e \\x41 %s %n %d".to_string(),
        "{v} {{v}} }{".to_string(),
        "a  b\tc   ".to_string(),
        "'".to_string(),
        "\"".to_string(),
        "\\".to_string(),
        "!! !$ #".to_string(),
        "é 🙂 \u{202e}".to_string(),
        String::new(),
        " ".to_string(),
    ];
    // A long value, under the kernel's limit of 128 KiB for one argument.
    let mut long = "A".repeat(100_000);
    long.push_str(&format!("$(touch {c})"));
    values.push(long);
    values
}

/// At most 200 characters of `text`, for messages.
fn shown(text: &str) -> String {
    let mut s: String = format!("{text:?}").chars().take(200).collect();
    if s.len() < text.len() {
        s.push_str("...");
    }
    s
}

async fn run(pipeline: &Pipeline, logs: &Path, v: &str) -> PathBuf {
    let run = pipeline
        .to_flow(
            &Params::new().set("v", v),
            // Room for the long value as an output.
            &Settings::new(logs).max_output(256 * 1024),
        )
        .expect("valid values");
    let dir = run.log_dir().to_path_buf();
    let mut engine = run.engine().expect("builds").parallel(4).build();
    if let Err(e) = engine.run().await {
        let e = e.to_string();
        panic!("value {}: {}", shown(v), shown(&e));
    }
    assert_eq!(engine.state(), FlowState::Success);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_arrive_byte_for_byte_and_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("canary");
    let pipeline = Pipeline::from_str("injection.yaml", PIPELINE).expect("valid");
    let values = hostile(&canary);
    assert!(values.len() >= 25);
    // The steps run in the temporary directory, where a glob that escaped
    // its quotes would find the canary's neighbours.
    for (i, v) in values.iter().enumerate() {
        let dir = run(&pipeline, &tmp.path().join(format!("logs-{i}")), v).await;
        for (step, want) in expected(v) {
            let got = std::fs::read(dir.join(format!("{step}.stdout"))).unwrap();
            assert!(
                got == want.as_bytes(),
                "step `{step}` with value {}: got {}",
                shown(v),
                shown(&String::from_utf8_lossy(&got))
            );
        }
        assert!(!canary.exists(), "value {} ran a command", shown(v));
    }
    assert!(!canary.exists());
}

#[test]
fn nul_and_non_utf8_values_are_refused_before_anything_runs() {
    use std::os::unix::ffi::OsStrExt;
    let pipeline = Pipeline::from_str("injection.yaml", PIPELINE).expect("valid");
    let tmp = tempfile::tempdir().unwrap();
    let settings = Settings::new(tmp.path());
    let nul = pipeline
        .to_flow(&Params::new().set("v", "a\0$(touch x)"), &settings)
        .unwrap_err();
    assert_eq!(
        nul.to_string(),
        "injection.yaml:4:3: the value of parameter `v` holds a NUL byte, which no program can \
         receive in an argument or in its environment"
    );
    let latin1 = pipeline
        .to_flow(
            &Params::new().text("v", std::ffi::OsStr::from_bytes(b"caf\xe9")),
            &settings,
        )
        .unwrap_err();
    assert_eq!(
        latin1.to_string(),
        "injection.yaml:4:3: the value of parameter `v` is not UTF-8 text: the journal keeps \
         values as UTF-8, so it could not keep this one exactly"
    );
    // Nothing was started: no log directory was made.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
