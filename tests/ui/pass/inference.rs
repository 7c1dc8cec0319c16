use std::str::FromStr;

use apm_runtime::{propagate, span};

#[propagate]
fn inference(mut v: Vec<u32>, words: &[&str]) -> usize {
    v.sort_by(|a, b| b.cmp(a));
    v.retain(|x| *x > 0);
    let big: Vec<&u32> = v.iter().filter(|x| **x > 1).collect();
    let n = Some(3).map_or_else(|| 0, |x| x + 1);
    let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
    let early = |x: u32| {
        if x == 0 {
            return 0;
        }
        x - 1
    };
    let mut counter = 0;
    let mut bump = || counter += 1;
    bump();
    bump();
    // Capture-free closures that become fn pointers are left alone.
    let double: fn(u32) -> u32 = |x| x * 2;
    let triple = (|x: u32| x * 3) as fn(u32) -> u32;
    let ops: [fn(u32) -> u32; 2] = [double, triple];
    let _ = ops.iter().map(|f| f(1)).sum::<u32>();
    big.len() + n + upper.len() + early(1) as usize + counter
}

#[span]
fn generic_result<T: FromStr>(s: &str) -> Result<T, T::Err> {
    let v = s.trim().parse::<T>()?;
    Ok(v)
}

#[span]
async fn generic_async<T: FromStr + Send>(s: String) -> Result<T, T::Err>
where
    T::Err: Send,
{
    s.parse()
}

fn main() {
    assert_eq!(inference(vec![0, 2, 1], &["a"]), 1 + 4 + 1 + 0 + 2);
    assert_eq!(generic_result::<u8>(" 7 "), Ok(7));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(generic_async::<u8>("8".into())), Ok(8));
}
