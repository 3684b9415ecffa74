use flow::task;

#[task(provides = port)]
fn port(#[default(8080)] port: Option<u16>) -> u16 {
    port.unwrap_or(80)
}

fn main() {}
