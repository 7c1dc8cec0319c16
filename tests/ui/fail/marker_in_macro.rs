use apm_runtime::span;

#[span]
fn f() -> usize {
    let jobs: Vec<Box<dyn Fn() -> u32>> = vec![Box::new(#[span(name = "job")] move || 1)];
    jobs.len()
}

fn main() {}
