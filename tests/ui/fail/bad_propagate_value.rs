use apm_runtime::{propagate, span};

#[span(propagate = "no")]
fn f() {}

#[propagate(name = "x")]
fn g() {}

fn main() {}
