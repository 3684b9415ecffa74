use flow::task;

struct Store<T>(T);

#[task]
impl<T: Send + Sync + 'static> Store<T> {
    fn execute(&self, key: &String) {
        let _ = key;
    }
}

fn main() {}
