use apm_runtime::span;

#[span(name = load_user)]
fn f() {}

#[span(type = 3)]
fn g() {}

fn main() {}
