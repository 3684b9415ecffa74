use flow::task;

#[task(provides = backup)]
fn backup(db: &String) -> Result<String, u32> {
    if db.is_empty() { Err(1) } else { Ok(format!("{db}.bak")) }
}

fn main() {}
