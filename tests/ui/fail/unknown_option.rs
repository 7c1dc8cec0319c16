use apm_runtime::span;

#[span(name = "a", colour = "blue")]
fn f() {}

fn main() {}
