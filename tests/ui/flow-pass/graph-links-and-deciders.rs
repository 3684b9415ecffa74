//! A graph group: order inferred from data, explicit links, and a decider
//! that ignores a link's target.

use flow::{AtomState, CaptureListener, Decider, Results, flow, task};

#[task(provides = healthy)]
fn check(host: &str) -> bool {
    host != "down"
}

#[task(provides = deployed)]
fn deploy(host: &str, version: u32) -> String {
    format!("{host}@{version}")
}

#[task(provides = version)]
fn pick_version() -> u32 {
    7
}

#[task]
fn announce() {}

fn main() {
    let release = flow! {
        release(host: String) {
            graph wiring {
                deploy,
                pick_version,
                check,
                announce;
                check -> deploy if Decider::new(|r: &Results| r.get::<bool>("check") == Some(&true)),
                deploy -> announce,
            },
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let capture = CaptureListener::atoms_only();
        let mut engine = release
            .engine(("web".to_string(),))
            .unwrap()
            .serial()
            .listener(capture.clone())
            .build();
        engine.run().await.unwrap();
        assert_eq!(engine.fetch::<String>("deployed").unwrap(), "web@7");
        let started: Vec<String> = capture
            .events()
            .iter()
            .filter_map(|e| e.strip_suffix(".t RUNNING").map(String::from))
            .collect();
        assert_eq!(started, ["pick_version", "check", "deploy", "announce"]);

        let mut engine = release.engine(("down".to_string(),)).unwrap().build();
        engine.run().await.unwrap();
        assert_eq!(engine.atom_state("deploy"), Some(AtomState::Ignore));
        assert_eq!(engine.atom_state("announce"), Some(AtomState::Ignore));
        assert_eq!(engine.fetch::<String>("deployed"), None);
    });
}
