//! Checks a pipeline file and prints its problems.
fn main() {
    let path = std::env::args().nth(1).expect("a path");
    match flow_pipeline::Pipeline::from_path(&path) {
        Ok(p) => println!("ok: {} ({})", p.name(), p.hash()),
        Err(e) => {
            println!("{e}");
            println!("{}", e.render());
        }
    }
}
