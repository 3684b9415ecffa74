use flow::task;

struct Endpoint {
    host: String,
    port: u16,
}

#[task(provides = Endpoint { host: String, port: u32 })]
fn resolve(name: &str) -> Endpoint {
    Endpoint { host: name.to_string(), port: 80 }
}

#[task(provides = Endpoint { hots: String })]
fn resolve_again(name: &str) -> Endpoint {
    Endpoint { host: name.to_string(), port: 80 }
}

fn main() {}
