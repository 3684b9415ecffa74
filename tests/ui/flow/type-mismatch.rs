use flow::{flow, task};

#[task(provides = port)]
fn pick_port() -> String {
    "8080".to_string()
}

#[task]
fn listen(port: u16) {
    let _ = port;
}

fn main() {
    let _ = flow! {
        serve() {
            pick_port,
            listen,
        }
    };
}
