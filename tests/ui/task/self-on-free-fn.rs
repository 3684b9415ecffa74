use flow::task;

#[task(provides = size)]
fn measure(&self, path: &String) -> u64 {
    path.len() as u64
}

fn main() {}
