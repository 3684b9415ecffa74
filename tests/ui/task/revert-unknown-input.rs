use flow::task;

struct Deploy;

#[task(provides = version)]
impl Deploy {
    fn execute(&self, app: &String) -> u32 {
        app.len() as u32
    }

    fn revert(&self, app: &String, version: &u32) {
        let _ = (app, version);
    }
}

fn main() {}
