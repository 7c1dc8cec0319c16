#[transaction(name = "GET /users", type = "request", traceparent = headers, labels(region = cfg.region))]
fn handle(headers: &[(String, String)], cfg: &Config) -> Result<u32, Error> {
    let n = parse(headers)?;
    if n == 0 {
        return Ok(1);
    }
    Ok(n)
}
