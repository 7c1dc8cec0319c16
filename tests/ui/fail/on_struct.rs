use apm_runtime::span;

#[span]
struct NotAFn;

fn main() {}
