use flow::task;

#[task(provides = (host, port, scheme))]
fn endpoint(url: &String) -> (String, u16) {
    (url.clone(), 443)
}

fn main() {}
