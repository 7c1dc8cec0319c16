use apm_runtime::span;

#[span]
fn f(x: u32) -> Result<u32, String> {
    let _y: String = x;
    Ok(x)
}

#[span]
async fn g(x: u32) -> u32 {
    let _y: String = x;
    x
}

fn main() {}

#[span]
async fn h() -> u32 {
    "not a number"
}


#[span]
fn k() -> u32 {
    "not a number"
}
