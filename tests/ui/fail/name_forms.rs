use apm_runtime::{span, transaction};

// An identifier is not a name.
#[span(load_user)]
fn a() {}

// A number is not a name.
#[transaction(42)]
fn b() {}

// A bare string names the span only as the first argument.
#[span(type = "db", "load")]
fn c() {}

// `name` needs its value.
#[span(name)]
fn d() {}

// Positional and `name = ...` together.
#[span("a", name = "b")]
fn e() {}

fn main() {}
