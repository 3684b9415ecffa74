use flow::{flow, task};

#[task]
fn listen(port: u16) {
    let _ = port;
}

fn main() {
    let _ = flow! {
        serve(port: u32) {
            listen,
        }
    };
}
