use apm_runtime::span;

#[span]
fn f() {
    std::thread::spawn(#[transaction] move || {}).join().unwrap();
    std::thread::spawn(#[span(traceparent = h)] move || {}).join().unwrap();
    std::thread::spawn(#[propagate(all)] move || {}).join().unwrap();
}

fn main() {}
