use apm_runtime::transaction;

#[transaction(name = "a", type = "job", name = "b")]
fn f() {}

fn main() {}
