//! A step that prints 1 GiB: its output goes to a file as it is produced,
//! the test process's peak memory barely moves, and the journal keeps only
//! the configured tail. Alone in its binary, so that nothing else moves the
//! peak.

use std::sync::Arc;

use flow_core::{Backend, MemoryBackend};
use flow_pipeline::{Params, Pipeline, Settings, StepReport};

const GIB: u64 = 1 << 30;

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_of_output_streams_to_a_file_and_the_journal_keeps_the_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::from_str(
        "big.yaml",
        "name: big\nsteps:\n  - name: print\n    script: yes 'line of output' | head -c 1073741824\n",
    )
    .unwrap();
    let settings = Settings::new(tmp.path()).tail(1000);
    let run = pipeline.to_flow(&Params::new(), &settings).unwrap();
    let log = run.log_dir().join("print.stdout");
    let journal = Arc::new(MemoryBackend::new());
    let mut engine = run.engine().unwrap().storage(journal.clone()).build();

    let before = peak_rss();
    engine.run().await.unwrap();
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 50 << 20, "peak memory grew by {grown} bytes");

    assert_eq!(std::fs::metadata(&log).unwrap().len(), GIB);
    let report: &StepReport = engine
        .outputs("print")
        .and_then(|o| o.values()[0].downcast_ref())
        .unwrap();
    assert_eq!(report.code, Some(0));
    assert_eq!(report.stdout.bytes, GIB);
    assert_eq!(report.stdout.tail.len(), 1000);
    // 1 GiB is 71,582,788 lines of 15 bytes and 4 bytes more: the tail ends
    // inside a line.
    assert!(
        report.stdout.tail.ends_with("output\nline"),
        "{:?}",
        &report.stdout.tail[980..]
    );
    assert_eq!(report.stderr.bytes, 0);

    // The journal holds the report with the tail, nothing more.
    let (_, atoms) = journal.load_flow(engine.run_id()).await.unwrap();
    let atom = atoms.iter().find(|a| a.name == "print").unwrap();
    let stored = serde_json::to_string(atom.result.as_ref().unwrap()).unwrap();
    assert!(
        stored.len() < 1500,
        "the journal holds {} bytes",
        stored.len()
    );
    assert!(stored.contains(&format!("\"bytes\":{GIB}")), "{stored}");
    std::fs::remove_file(&log).unwrap();
}
