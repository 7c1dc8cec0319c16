// Sync `#[span]` fns run their body as a closure handed to the runtime: every shape below must
// keep compiling and behaving as the plain fn would.
use std::fmt::Display;

use apm_runtime::span;

#[span]
fn boxed_dyn(k: u32) -> Box<dyn Fn(u32) -> u32> {
    if k == 0 {
        return Box::new(|x| x);
    }
    Box::new(move |x| x * k)
}

#[span]
fn opaque(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|x| x * 2)
}

#[span]
fn opaque_result(ok: bool) -> Result<impl Display, String> {
    if !ok {
        return Err("no".to_string());
    }
    Ok(5)
}

#[span]
fn never(msg: &str) -> ! {
    panic!("{msg}")
}

#[span]
#[track_caller]
fn tracked() -> &'static std::panic::Location<'static> {
    std::panic::Location::caller()
}

#[span]
fn first_mut(v: &mut [u8]) -> &mut u8 {
    &mut v[0]
}

#[span(labels(words, count = words.len()))]
fn consume(words: Vec<String>) -> usize {
    let moved = words;
    moved.len()
}

#[span]
unsafe fn read(p: *const u32) -> u32 {
    *p
}

#[span]
fn convert(s: &str) -> Result<u8, Box<dyn std::error::Error>> {
    let v: u8 = s.parse()?;
    Ok(v)
}

#[span]
fn first_doubled(v: &[u32]) -> Option<u32> {
    let f = v.first()?;
    Some(f * 2)
}

#[span]
fn generic_arg(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

fn main() {
    assert_eq!(boxed_dyn(0)(3), 3);
    assert_eq!(boxed_dyn(2)(3), 6);
    assert_eq!(opaque(3).collect::<Vec<_>>(), vec![0, 2, 4]);
    assert_eq!(opaque_result(true).unwrap().to_string(), "5");
    assert!(opaque_result(false).is_err());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    assert!(std::panic::catch_unwind(|| never("expected")).is_err());
    std::panic::set_hook(hook);
    let here = std::panic::Location::caller();
    let loc = tracked();
    assert_eq!((loc.file(), loc.line()), (here.file(), here.line() + 1));
    let mut v = vec![1, 2];
    *first_mut(&mut v) = 9;
    assert_eq!(v, [9, 2]);
    assert_eq!(consume(vec!["a".into(), "b".into()]), 2);
    let x = 7;
    assert_eq!(unsafe { read(&x) }, 7);
    assert_eq!(convert("8").unwrap(), 8);
    assert!(convert("x").is_err());
    assert_eq!(generic_arg([1, 2, 3]), 6);
    assert_eq!(first_doubled(&[4]), Some(8));
    assert_eq!(first_doubled(&[]), None);
}
