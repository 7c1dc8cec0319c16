use apm_runtime::span;

#[span(traceparent = headers)]
fn f(headers: Vec<(String, String)>) {}

fn main() {}
