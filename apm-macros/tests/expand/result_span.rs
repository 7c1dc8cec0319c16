#[span]
fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    let v: u32 = s.trim().parse()?;
    Ok(v)
}
