#[span(name = "load", type = "db", subtype = "postgresql", action = "query", labels(id))]
fn load(id: u64, pool: &threadpool::ThreadPool) -> usize {
    pool.execute(move || fetch(id));
    42
}
