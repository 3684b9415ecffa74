use flow::task;

#[task]
fn count(counter: std::rc::Rc<u8>) {
    let _ = counter;
}

fn main() {}
