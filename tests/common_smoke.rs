use apm_runtime::{propagate, span, transaction};

#[transaction]
fn t1(v: Vec<String>) -> usize {
    let pool = threadpool::ThreadPool::new(2);
    for s in v.clone() {
        pool.execute(move || { let _ = child(&s); });
    }
    pool.execute(#[span(name = "job")] move || {});
    pool.join();
    let n: usize = v.iter().map(|x| x.len()).sum();
    n
}

#[span]
fn child(s: &str) -> Result<usize, ()> {
    if s.is_empty() { return Err(()); }
    let x: usize = s.parse().map_err(|_| ())?;
    Ok(x)
}

#[propagate]
fn scoped(v: &[u32]) -> u32 {
    let mut total = 0;
    std::thread::scope(|s| {
        let h = s.spawn(|| v.iter().sum::<u32>());
        total += h.join().unwrap();
    });
    let mut n = 0;
    v.iter().for_each(|x| n += x);
    std::thread::spawn(|| work()).join().unwrap();
    let strs: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    total + n + strs.len() as u32
}

fn work() {}

#[test]
fn smoke() {
    assert_eq!(t1(vec!["1".into()]), 1);
    assert_eq!(scoped(&[1, 2]), 8);
}
