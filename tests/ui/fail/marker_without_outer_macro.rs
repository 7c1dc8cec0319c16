use apm_runtime::propagate;

fn f() {
    std::thread::spawn(#[propagate] move || {}).join().unwrap();
}

fn main() {}
