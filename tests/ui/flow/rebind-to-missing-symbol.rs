use flow::{flow, task};

#[task]
fn stop_server(host: &String) {
    let _ = host;
}

fn main() {
    let _ = flow! {
        deploy(host: String) {
            stop_server(host = primary),
        }
    };
}
