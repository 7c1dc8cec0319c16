use apm_runtime::span;

#[span]
fn f(x: u32) -> Result<u32, String> {
    let y: String = x;
    Ok(y)
}

fn main() {}
