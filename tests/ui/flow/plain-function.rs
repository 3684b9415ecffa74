use flow::flow;

fn back_up() {}

fn main() {
    let _ = flow! {
        nightly() {
            back_up,
        }
    };
}
