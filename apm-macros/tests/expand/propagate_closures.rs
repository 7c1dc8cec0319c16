#[propagate]
fn total(v: &[u32]) -> u32 {
    let mut n = 0;
    v.iter().for_each(|x| n += x);
    std::thread::scope(|s| {
        s.spawn(|| v.len());
    });
    std::thread::spawn(|| work()).join().unwrap();
    let lens: Vec<usize> = v.par_iter().map(|x| x.count_ones() as usize).collect();
    n + lens.len() as u32
}
