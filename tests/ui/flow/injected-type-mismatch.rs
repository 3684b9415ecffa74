use flow::{flow, task};

#[task]
fn retry_upload(attempts: u32) {
    let _ = attempts;
}

fn main() {
    let _ = flow! {
        upload() {
            retry_upload(attempts = "three"),
        }
    };
}
