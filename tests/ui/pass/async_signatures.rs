// `#[span]` on an `async fn` makes it a plain fn returning `impl Future` (so the caller's context
// is taken at the call): every shape of `async fn` still compiles, warning-free, and its future
// is `Send` and `'static` exactly when the `async fn`'s was.
#![deny(warnings)]

use std::fmt::Display;
use std::sync::Arc;

use apm_runtime::{propagate, span, transaction};

#[span]
async fn two_refs(a: &str, b: &[u8]) -> usize {
    a.len() + b.len()
}

#[span]
async fn returns_borrow<'a>(s: &'a str, _t: &str) -> &'a str {
    s
}

#[span]
async fn elided_out(s: &str) -> &str {
    s
}

#[span]
async fn patterns((a, b): (u32, u32), mut v: Vec<u32>, _: String, ref r: u8) -> u32 {
    v.push(a);
    v.iter().sum::<u32>() + b + u32::from(*r)
}

#[span]
async fn generic<T: Display + Send>(t: T, d: impl Display) -> String {
    format!("{t}{d}")
}

#[span]
async fn where_clause<T>(t: T) -> T
where
    T: Clone + Send,
{
    t.clone()
}

#[span]
async fn dyn_arg(f: &dyn Fn(&str) -> usize, g: fn(&str) -> usize, h: Box<dyn for<'x> Fn(&'x str) -> &'x str + Send>) -> usize {
    f("a") + g("bb") + h("ccc").len()
}

#[span]
async fn impl_trait_out(n: u32) -> impl Display {
    n
}

#[span]
async fn result_question(s: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(s.parse::<u32>()?)
}

#[span]
async fn unit() {}

#[span]
pub(crate) async unsafe fn unsafe_fn(p: *const u8) -> u8 {
    // SAFETY: the caller passes a valid pointer.
    unsafe { *p }
}

#[propagate]
async fn propagated(v: &[u32]) -> u32 {
    let h = std::thread::scope(|s| s.spawn(|| v.len() as u32).join().unwrap());
    h + v.iter().map(|x| x + 1).sum::<u32>()
}

#[span]
#[propagate]
async fn span_and_propagate(v: Arc<Vec<u32>>) -> u32 {
    let w = v.clone();
    tokio::spawn(async move { w.iter().sum::<u32>() }).await.unwrap()
}

// Recursion through a box, as an `async fn` allows it.
#[span]
async fn depth(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    1 + Box::pin(depth(n - 1)).await
}

#[span]
async fn sum_rec(v: &[u32]) -> u32 {
    match v.split_first() {
        None => 0,
        Some((x, rest)) => x + Box::pin(sum_rec(rest)).await,
    }
}

struct Parser<'a> {
    input: &'a str,
}

impl<'a> Parser<'a> {
    #[span]
    async fn peek(&self) -> Option<char> {
        self.input.chars().next()
    }

    #[span]
    async fn rest(&mut self, skip: usize) -> &'a str {
        self.input = &self.input[skip..];
        self.input
    }

    #[span]
    async fn by_value(self) -> &'a str {
        self.input
    }

    #[span]
    async fn boxed(self: Box<Self>) -> usize {
        self.input.len()
    }

    #[span]
    async fn arc(self: &Arc<Self>, n: usize) -> usize {
        self.input.len() + n
    }

    #[span]
    async fn make(input: &'a str) -> Self {
        Parser { input }
    }

    #[span]
    async fn unused_self(&self) -> u32 {
        1
    }
}

// Native `async fn` in a trait, implemented with `#[span]` (no `refining_impl_trait` warning).
trait Repo {
    async fn get(&self, id: u32) -> Option<String>;
}

struct Db;

impl Repo for Db {
    #[span(name = "Db::get")]
    async fn get(&self, id: u32) -> Option<String> {
        Some(id.to_string())
    }
}

// A trait's default `async fn`.
trait Greeter {
    fn name(&self) -> String;

    #[span]
    async fn greet(&self, greeting: &str) -> String {
        format!("{greeting} {}", self.name())
    }
}

impl Greeter for Db {
    fn name(&self) -> String {
        "db".into()
    }
}

// The `Send`-bound form public traits use, implemented with an instrumented `async fn`.
pub trait SendRepo {
    fn count(&self, table: &str) -> impl std::future::Future<Output = usize> + Send;
}

impl SendRepo for Db {
    #[span]
    async fn count(&self, table: &str) -> usize {
        table.len()
    }
}

#[transaction]
async fn tx(id: u32) -> u32 {
    id
}

// `#[tokio::main]` needs the `async fn` it is given: a `#[span]` above it keeps one.
#[span]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    fn spawnable<F: std::future::Future + Send + 'static>(f: F) -> F {
        f
    }
    assert_eq!(two_refs("a", b"bc").await, 3);
    assert_eq!(returns_borrow("x", "y").await, "x");
    assert_eq!(elided_out("e").await, "e");
    assert_eq!(patterns((1, 2), vec![3], String::new(), 4).await, 10);
    assert_eq!(spawnable(generic(1, "a")).await, "1a");
    assert_eq!(spawnable(where_clause(5u8)).await, 5);
    let len = |s: &str| s.len();
    fn same(s: &str) -> &str {
        s
    }
    assert_eq!(dyn_arg(&len, len, Box::new(same)).await, 6);
    assert_eq!(spawnable(impl_trait_out(3)).await.to_string(), "3");
    assert_eq!(result_question("7").await.unwrap(), 7);
    spawnable(unit()).await;
    assert_eq!(unsafe { unsafe_fn(&9).await }, 9);
    assert_eq!(propagated(&[1, 2]).await, 2 + 5);
    assert_eq!(spawnable(span_and_propagate(Arc::new(vec![1, 2]))).await, 3);
    let mut p = Parser { input: "abc" };
    assert_eq!(p.peek().await, Some('a'));
    assert_eq!(p.rest(1).await, "bc");
    assert_eq!(p.unused_self().await, 1);
    assert_eq!(Box::new(Parser { input: "xy" }).boxed().await, 2);
    assert_eq!(Arc::new(Parser { input: "xy" }).arc(1).await, 3);
    assert_eq!(Parser::make("m").await.by_value().await, "m");
    assert_eq!(Db.get(4).await.as_deref(), Some("4"));
    assert_eq!(Db.count("rows").await, 4);
    assert_eq!(Db.greet("hi").await, "hi db");
    assert_eq!(spawnable(tx(2)).await, 2);
    assert_eq!(spawnable(depth(3)).await, 3);
    assert_eq!(sum_rec(&[1, 2, 3]).await, 6);
}
