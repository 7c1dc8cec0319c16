use apm_runtime::transaction;

#[transaction]
fn outer() {
    fn inner() {
        std::thread::spawn(#[propagate] move || {}).join().unwrap();
    }
    inner();
}

fn main() {}
