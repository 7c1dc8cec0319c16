#[span(name = "Store::get", labels(id))]
async fn get(&self, id: u32, (a, _): (u8, u8), mut buf: Vec<u8>) -> Result<&str, Error> {
    buf.push(a);
    self.load(id).await
}
#[propagate]
async fn fan_out(v: &[u32]) -> u32 {
    std::thread::scope(|s| s.spawn(|| v.len() as u32).join().unwrap())
}
