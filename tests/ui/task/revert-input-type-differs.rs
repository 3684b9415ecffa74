use flow::task;

struct Deploy;

#[task(provides = version)]
impl Deploy {
    fn execute(&self, app: &String) -> u32 {
        app.len() as u32
    }

    fn revert(&self, app: &str) {
        let _ = app;
    }
}

fn main() {}
