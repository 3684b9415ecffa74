use flow::{flow, task};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DbName(String);

#[task]
fn stop_server(db: &DbName) {
    let _ = db;
}

fn main() {
    let _ = flow! {
        deploy(host: String) {
            stop_server,
        }
    };
}
