use flow::task;

#[task(provides = (a, b), colour = "blue")]
fn several(&self, (x, y): (u32, u32), #[collect(p)] z: u32) -> u32 {
    x + y + z
}

fn main() {}
