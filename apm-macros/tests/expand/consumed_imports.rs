#[transaction("GET /parts")]
#[propagate]
fn parts(v: &[u32]) -> u32 {
    std::thread::scope(|s| s.spawn(#[span("part")] || v.len() as u32).join().unwrap())
}
