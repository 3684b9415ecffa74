use flow::task;

#[task(provides = done)]
fn stop(server: &String) {
    let _ = server;
}

fn main() {}
