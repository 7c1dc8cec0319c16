use apm_runtime::transaction;

#[transaction(labels(user_id, region))]
fn f(user_id: u64) {}

fn main() {}
