use apm_runtime::{propagate, span, transaction};

#[transaction]
fn unit() {}

#[span(name = "early", type = "app")]
fn early_return(x: u32) -> u32 {
    if x == 0 {
        return 1;
    }
    x * 2
}

#[transaction(name = "q")]
fn question(s: &str) -> Result<u32, std::num::ParseIntError> {
    let v: u32 = s.parse()?;
    if v == 3 {
        return Ok(0);
    }
    Ok(v)
}

#[span]
fn boxed_err(s: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(s.parse::<u32>()?)
}

#[span]
fn io_result() -> std::io::Result<()> {
    Ok(())
}

#[span]
unsafe fn unsafe_fn(p: *const u8) -> u8 {
    *p
}

#[transaction]
fn unit_error() -> Result<u8, ()> {
    Err(())
}

#[derive(Debug)]
struct NoDisplay;
struct Nothing;

#[span]
fn debug_error() -> Result<(), NoDisplay> {
    Err(NoDisplay)
}

#[span]
fn opaque_error() -> Result<(), Nothing> {
    Err(Nothing)
}

#[propagate]
fn diverges() -> ! {
    panic!("never returns")
}

#[span]
pub(crate) fn visibility() {}

#[span]
#[inline]
#[must_use]
fn other_attrs() -> u8 {
    1
}

fn main() {
    unit();
    assert_eq!(early_return(0), 1);
    assert_eq!(question("3"), Ok(0));
    assert!(boxed_err("x").is_err());
    io_result().unwrap();
    assert_eq!(unsafe { unsafe_fn(&7) }, 7);
    assert!(unit_error().is_err());
    assert!(debug_error().is_err());
    assert!(opaque_error().is_err());
    visibility();
    let _ = other_attrs();
    let _ = diverges as fn() -> !;
}
