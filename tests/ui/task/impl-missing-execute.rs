use flow::task;

struct Deploy;

#[task(provides = version)]
impl Deploy {
    fn run(&self, app: &String) -> u32 {
        app.len() as u32
    }
}

fn main() {}
