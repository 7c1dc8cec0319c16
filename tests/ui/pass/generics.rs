use std::fmt::Display;

use apm_runtime::{propagate, span, transaction};

#[span]
fn generic<T: Display + Send + 'static>(items: Vec<T>) -> Vec<String> {
    let h = std::thread::spawn(move || items.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    h.join().unwrap()
}

#[transaction]
fn lifetimes<'a, 'b: 'a>(a: &'a str, b: &'b str) -> &'a str {
    if a.len() > b.len() {
        a
    } else {
        b
    }
}

#[span]
fn elided(s: &str) -> Result<&str, String> {
    s.get(0..1).ok_or_else(|| "empty".to_string())
}

#[span]
fn where_clause<T, U>(t: T, u: U) -> String
where
    T: Display,
    U: Into<String>,
{
    format!("{t}{}", u.into())
}

#[span]
fn impl_args(it: impl IntoIterator<Item = u32>, f: impl Fn(u32) -> u32) -> u32 {
    it.into_iter().map(f).sum()
}

#[span]
fn impl_return(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(move |x| x * 2)
}

#[span]
fn impl_in_result(n: u32) -> Result<impl Display, String> {
    Ok(n)
}

#[propagate]
fn returns_closure(base: u32) -> impl Fn(u32) -> u32 {
    move |x| x + base
}

#[transaction]
fn returns_boxed_closure(base: u32) -> Box<dyn Fn(u32) -> u32 + Send> {
    Box::new(move |x| x + base)
}

#[propagate]
fn returns_capture_free_closure() -> impl Fn(u32) -> u32 {
    |x| x + 1
}

#[span]
fn const_generic<const N: usize>(a: [u8; N]) -> usize {
    a.len()
}

#[span]
fn pattern_args((a, b): (u32, u32), [c, ..]: [u32; 2]) -> u32 {
    a + b + c
}

#[span]
fn mut_arg(mut v: Vec<u32>) -> Vec<u32> {
    v.push(1);
    v
}

fn main() {
    assert_eq!(generic(vec![1, 2]), vec!["1", "2"]);
    assert_eq!(lifetimes("ab", "c"), "ab");
    assert_eq!(elided("xy"), Ok("x"));
    assert_eq!(where_clause(1, "a"), "1a");
    assert_eq!(impl_args(vec![1, 2], |x| x + 1), 5);
    assert_eq!(impl_return(3).sum::<u32>(), 6);
    assert_eq!(impl_in_result(3).unwrap().to_string(), "3");
    assert_eq!(returns_closure(1)(2), 3);
    assert_eq!(returns_boxed_closure(1)(2), 3);
    assert_eq!(returns_capture_free_closure()(2), 3);
    assert_eq!(const_generic([1, 2, 3]), 3);
    assert_eq!(pattern_args((1, 2), [3, 4]), 6);
    assert_eq!(mut_arg(vec![]), vec![1]);
}
