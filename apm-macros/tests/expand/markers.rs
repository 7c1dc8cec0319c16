#[transaction(propagate = false)]
fn run(pool: &threadpool::ThreadPool, items: Vec<String>) {
    for item in items {
        pool.execute(#[span(name = "job", labels(len = item.len()))] move || process(&item));
    }
    std::thread::scope(|s| {
        s.spawn(#[propagate] || pool.join());
    });
    let fut = #[span(name = "later")] async move { 1 };
    drop(fut);
}
