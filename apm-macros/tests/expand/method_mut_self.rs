#[span]
fn bump(&mut self, by: u32) -> u32 {
    self.hits += by;
    let hits = self.hits;
    std::thread::spawn(move || hits).join().unwrap()
}
