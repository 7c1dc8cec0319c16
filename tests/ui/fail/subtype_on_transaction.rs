use apm_runtime::transaction;

#[transaction(subtype = "http")]
fn f() {}

fn main() {}
