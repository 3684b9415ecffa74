use flow::flow;

struct Backup;

fn main() {
    let _ = flow! {
        nightly() {
            Backup,
        }
    };
}
