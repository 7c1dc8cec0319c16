mod renamed {
    pub use apm_runtime as rt;
}

use apm_runtime::{propagate, span, transaction};

#[transaction(crate = renamed::rt)]
fn tx() -> Result<(), String> {
    std::thread::spawn(move || inner()).join().unwrap();
    Ok(())
}

#[span(crate = crate::renamed::rt)]
fn inner() {}

#[propagate(crate = renamed::rt)]
fn prop(v: &[u8]) -> usize {
    std::thread::scope(|s| s.spawn(|| v.len()).join().unwrap())
}

fn main() {
    tx().unwrap();
    assert_eq!(prop(&[1]), 1);
}
