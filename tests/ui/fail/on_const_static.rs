use apm_runtime::{propagate, transaction};

#[transaction]
const LIMIT: u32 = 3;

#[propagate]
static NAME: &str = "x";

fn main() {}
