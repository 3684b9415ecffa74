use flow::{flow, task};

#[task(provides = schema)]
fn read_schema() -> u32 {
    10
}

#[task]
fn migrate(shema: u32) {
    let _ = shema;
}

fn main() {
    let _ = flow! {
        upgrade(db: String) {
            read_schema,
            migrate,
        }
    };
}
