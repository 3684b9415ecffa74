//! Declared inputs and outputs of several types: a tuple in, a tuple out.

use flow::{TypedFlow, flow, task};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Endpoint {
    host: String,
    port: u16,
}

#[task(provides = endpoint)]
fn connect(host: &str, port: u16) -> Endpoint {
    Endpoint {
        host: host.to_string(),
        port,
    }
}

#[task(provides = (url, secure))]
fn describe(endpoint: &Endpoint, tags: &[String]) -> (String, bool) {
    (
        format!("{}:{} {tags:?}", endpoint.host, endpoint.port),
        endpoint.port == 443,
    )
}

fn main() {
    let connect = flow! {
        connect(host: String, port: u16, tags: Vec<String>)
            -> (url: String, secure: bool, endpoint: Endpoint)
        {
            connect,
            describe,
        }
    };
    let _: &TypedFlow<(String, u16, Vec<String>), (String, bool, Endpoint)> = &connect;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outputs = runtime
        .block_on(connect.run(("example.org".to_string(), 443, vec!["a".to_string()])))
        .unwrap();
    assert_eq!(
        outputs,
        (
            "example.org:443 [\"a\"]".to_string(),
            true,
            Endpoint {
                host: "example.org".to_string(),
                port: 443
            }
        )
    );
}
