use flow::task;

type Pair = (String, u16);

#[task(provides = (host, port))]
fn endpoint(url: &String) -> Pair {
    (url.clone(), 443)
}

fn main() {}
