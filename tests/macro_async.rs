//! An instrumented `async fn` takes its parent where it is called: its future, spawned straight
//! onto a multi-threaded runtime (`tokio::spawn`, `JoinSet`, inside `tokio::join!`), keeps the
//! parent it was called under, without `#[propagate]`.

mod macro_support;

use std::time::Duration;

use apm_runtime::{propagate, span, transaction};
use macro_support::{assert_child, record};
use tokio::task::JoinSet;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[span(labels(id))]
async fn leaf(id: u32) -> u32 {
    tokio::task::yield_now().await;
    id
}

#[transaction]
async fn spawns_directly() -> u32 {
    tokio::spawn(leaf(1)).await.unwrap()
}

#[test]
fn tokio_spawn_of_an_instrumented_future() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(spawns_directly()), 1));
    let tx = r.tx("spawns_directly");
    assert_eq!(r.spans.len(), 1, "{:#?}", r.spans);
    // Polled on a worker, not on the thread that called it.
    assert_child(r.span("leaf"), tx, tx, false);
}

#[transaction]
async fn spawns_in_join() -> u32 {
    let (a, b) = tokio::join!(tokio::spawn(leaf(1)), tokio::spawn(leaf(2)));
    a.unwrap() + b.unwrap()
}

#[test]
fn tokio_spawn_inside_join() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(spawns_in_join()), 3));
    let tx = r.tx("spawns_in_join");
    assert_eq!(r.spans_named("leaf").len(), 2, "{:#?}", r.spans);
    for s in r.spans_named("leaf") {
        assert_child(s, tx, tx, false);
    }
}

#[transaction]
async fn join_set() -> u32 {
    let mut set = JoinSet::new();
    for id in 0..4 {
        set.spawn(leaf(id));
    }
    let mut sum = 0;
    while let Some(v) = set.join_next().await {
        sum += v.unwrap();
    }
    sum
}

#[test]
fn join_set_spawns() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(join_set()), 6));
    let tx = r.tx("join_set");
    let leaves = r.spans_named("leaf");
    assert_eq!(leaves.len(), 4, "{:#?}", r.spans);
    for s in leaves {
        assert_child(s, tx, tx, false);
    }
}

#[span(name = "middle")]
async fn middle() -> u32 {
    // Called inside this span: the leaf is its child, wherever it is polled.
    tokio::spawn(leaf(7)).await.unwrap()
}

#[transaction]
async fn nested() -> u32 {
    tokio::spawn(middle()).await.unwrap()
}

#[test]
fn spawned_span_spawns_its_own_child() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(nested()), 7));
    let tx = r.tx("nested");
    let middle = r.span("middle");
    assert_child(middle, tx, tx, false);
    assert_eq!(r.span("leaf")["parent_id"], middle["id"]);
    assert_eq!(r.span("leaf")["transaction_id"], tx["id"]);
}

#[span(name = "timed")]
async fn timed(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[transaction]
async fn created_then_awaited_later() {
    // The parent is taken here, at the call; the span starts when the future is first polled,
    // so its duration covers the awaited work and not the 80 ms before it.
    let fut = timed(20);
    tokio::time::sleep(Duration::from_millis(80)).await;
    tokio::spawn(fut).await.unwrap();
}

#[test]
fn span_starts_at_first_poll_under_the_parent_of_its_call() {
    let rt = runtime();
    let r = record(|| rt.block_on(created_then_awaited_later()));
    let tx = r.tx("created_then_awaited_later");
    let span = r.span("timed");
    assert_child(span, tx, tx, false);
    let duration = span["duration"].as_f64().unwrap();
    assert!((20.0..80.0).contains(&duration), "{span:#}");
    let offset_us = span["timestamp"].as_u64().unwrap() - tx["timestamp"].as_u64().unwrap();
    assert!(offset_us >= 80_000, "started {offset_us} µs into the transaction: {span:#}");
}

#[span]
fn sync_leaf(tag: &str) -> usize {
    tag.len()
}

#[propagate]
async fn propagated(parts: Vec<&'static str>) -> usize {
    // A plain closure, and a plain `async fn` body: both run under the caller's context.
    let lens: Vec<usize> = parts.iter().map(|p| sync_leaf(p)).collect();
    tokio::task::yield_now().await;
    lens.iter().sum::<usize>() + sync_leaf("after")
}

#[transaction]
async fn spawns_propagated() -> usize {
    tokio::spawn(propagated(vec!["a", "bb"])).await.unwrap()
}

#[test]
fn propagate_async_fn_spawned_directly_runs_under_its_caller() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(spawns_propagated()), 3 + 5));
    let tx = r.tx("spawns_propagated");
    let leaves = r.spans_named("sync_leaf");
    assert_eq!(leaves.len(), 3, "{:#?}", r.spans);
    for s in leaves {
        assert_child(s, tx, tx, false);
    }
}

struct Store {
    prefix: String,
}

impl Store {
    #[span(name = "Store::get")]
    async fn get(&self, id: u32) -> String {
        format!("{}{}", self.prefix, leaf(id).await)
    }
}

#[transaction]
async fn method_future_spawned() -> String {
    let store = std::sync::Arc::new(Store { prefix: "row".into() });
    let s = store.clone();
    tokio::spawn(async move { s.get(3).await }).await.unwrap()
}

#[test]
fn method_called_in_a_spawned_block() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(method_future_spawned()), "row3"));
    let tx = r.tx("method_future_spawned");
    let get = r.span("Store::get");
    assert_child(get, tx, tx, false);
    assert_eq!(r.span("leaf")["parent_id"], get["id"]);
}

#[test]
fn no_transaction_no_spans() {
    let rt = runtime();
    let r = record(|| assert_eq!(rt.block_on(async { tokio::spawn(leaf(5)).await.unwrap() }), 5));
    assert!(r.spans.is_empty(), "{:#?}", r.spans);
}
