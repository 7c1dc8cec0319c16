use apm_runtime::span;

trait T {
    #[span]
    fn f(&self);
}

fn main() {}
