//! Results, panics, labels, async fns, tokio, async-trait.

mod macro_support;

use std::fmt;
use std::time::Duration;

use apm_runtime::{span, transaction};
use macro_support::{assert_child, record};

#[derive(Debug)]
#[allow(dead_code)]
struct NotDisplay {
    code: u32,
}

#[derive(Debug)]
struct Shown;
impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shown error")
    }
}

#[transaction]
fn tx_err(fail: bool) -> Result<u32, Shown> {
    let v = child_err(fail)?;
    Ok(v)
}

#[span]
fn child_err(fail: bool) -> Result<u32, Shown> {
    if fail {
        return Err(Shown);
    }
    Ok(1)
}

#[transaction]
fn tx_unit_err() -> Result<(), ()> {
    Err(())
}

#[transaction]
fn tx_debug_err() -> Result<(), NotDisplay> {
    Err(NotDisplay { code: 7 })
}

#[test]
fn ok_is_success() {
    let r = record(|| assert_eq!(tx_err(false).unwrap(), 1));
    assert_eq!(r.tx("tx_err")["outcome"], "success");
    assert_eq!(r.span("child_err")["outcome"], "success");
    assert!(r.errors.is_empty());
}

#[test]
fn err_is_failure_with_error_events() {
    let r = record(|| assert!(tx_err(true).is_err()));
    let tx = r.tx("tx_err");
    let span = r.span("child_err");
    assert_eq!(tx["outcome"], "failure");
    assert_eq!(span["outcome"], "failure");
    assert_eq!(r.errors.len(), 2, "{:#?}", r.errors);
    let under_span = r.errors.iter().find(|e| e["parent_id"] == span["id"]).expect("error under the span");
    assert_eq!(under_span["exception"]["message"], "shown error");
    assert!(under_span["exception"]["type"].as_str().unwrap().ends_with("Shown"));
    let under_tx = r.errors.iter().find(|e| e["parent_id"] == tx["id"]).expect("error under the transaction");
    assert_eq!(under_tx["transaction_id"], tx["id"]);
    // An `Err` leaving the transaction escapes everything instrumented: unhandled, as an
    // exception escaping a transaction is in Elastic's other agents. The span's caller got its
    // `Err` back (and here passed it on with `?`): handled.
    assert_eq!(under_tx["exception"]["handled"], false, "{under_tx:#}");
    assert_eq!(under_span["exception"]["handled"], true, "{under_span:#}");
}

#[test]
fn err_leaving_an_unsampled_transaction_is_unhandled_too() {
    let sink = apm_runtime::report::MemorySink::new();
    let config = apm_runtime::Config::builder().transaction_sample_rate(0.0).build().unwrap();
    let agent = apm_runtime::Agent::builder().config(config).sink(sink.clone()).build().unwrap();
    {
        let _default = agent.set_default();
        assert!(tx_unit_err().is_err());
    }
    assert!(agent.flush(Duration::from_secs(5)));
    let errors = sink.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["exception"]["handled"], false);
    assert_eq!(errors[0]["transaction"]["sampled"], false);
}

#[test]
fn non_display_errors() {
    let r = record(|| {
        assert!(tx_unit_err().is_err());
        assert!(tx_debug_err().is_err());
    });
    assert_eq!(r.tx("tx_unit_err")["outcome"], "failure");
    assert_eq!(r.tx("tx_debug_err")["outcome"], "failure");
    let msgs: Vec<_> = r.errors.iter().map(|e| e["exception"]["message"].as_str().unwrap().to_string()).collect();
    assert!(msgs.contains(&"()".to_string()), "{msgs:?}");
    assert!(msgs.contains(&"NotDisplay { code: 7 }".to_string()), "{msgs:?}");
}

#[transaction]
fn tx_panics() {
    span_panics();
}

#[span]
fn span_panics() {
    panic!("boom");
}

#[test]
fn panic_is_failure_reported_once_and_unwinds() {
    let r = record(|| {
        let caught = std::panic::catch_unwind(tx_panics);
        assert!(caught.is_err(), "the panic keeps unwinding");
        assert!(apm_runtime::Context::current().is_empty(), "context restored after unwinding");
    });
    let tx = r.tx("tx_panics");
    let span = r.span("span_panics");
    assert_eq!(tx["outcome"], "failure");
    assert_eq!(span["outcome"], "failure");
    assert_eq!(r.errors.len(), 1, "{:#?}", r.errors);
    assert_eq!(r.errors[0]["parent_id"], span["id"]);
    assert_eq!(r.errors[0]["exception"]["type"], "panic");
    assert_eq!(r.errors[0]["exception"]["message"], "boom");
}

struct Config {
    region: String,
}

#[transaction(name = "labelled", type = "request", labels(user_id, region = cfg.region, shard = user_id % 4, who = name))]
fn labelled(user_id: u64, cfg: &Config, name: &str, secret: &str) -> usize {
    let _ = secret;
    name.len()
}

#[span(name = "lbl", labels(flag, d))]
fn labelled_span(flag: bool, d: Duration) {
    let _ = (flag, d);
}

#[test]
fn labels_record_only_named_arguments() {
    let cfg = Config { region: "eu-west-1".into() };
    let r = record(|| {
        labelled(42, &cfg, "ann", "hunter2");
    });
    let tx = r.tx("labelled");
    assert_eq!(tx["type"], "request");
    let tags = &tx["context"]["tags"];
    assert_eq!(tags["user_id"], 42.0);
    assert_eq!(tags["region"], "eu-west-1");
    assert_eq!(tags["shard"], 2.0);
    assert_eq!(tags["who"], "ann");
    assert!(tags.get("secret").is_none(), "unnamed arguments are never recorded");
    assert!(!serde_json::to_string(&r.transactions).unwrap().contains("hunter2"));
}

#[transaction]
fn span_labels_tx() {
    labelled_span(true, Duration::from_millis(3));
}

#[test]
fn labels_fall_back_to_debug() {
    let r = record(span_labels_tx);
    let tags = &r.span("lbl")["context"]["tags"];
    assert_eq!(tags["flag"], true);
    assert_eq!(tags["d"], "3ms");
}

#[span(name = "sleepy", type = "db", subtype = "postgresql", action = "query")]
async fn sleepy(ms: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if ms > 100 {
        return Err("too slow".into());
    }
    Ok(ms)
}

#[span]
fn blocking_leaf() -> u32 {
    7
}

#[transaction(type = "request")]
async fn handle() -> u64 {
    let a = tokio::spawn(async move { sleepy(30).await.unwrap() }).await.unwrap();
    let b = tokio::task::spawn_blocking(move || blocking_leaf()).await.unwrap();
    let c = sleepy(10).await.unwrap();
    a + b as u64 + c
}

#[test]
fn tokio_spawn_spawn_blocking_and_async_durations() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let r = record(|| assert_eq!(rt.block_on(handle()), 47));
    let tx = r.tx("handle");
    assert_eq!(tx["type"], "request");
    let sleeps = r.spans_named("sleepy");
    assert_eq!(sleeps.len(), 2);
    let spawned = sleeps.iter().find(|s| s["sync"] == false).expect("the spawned task ran on a worker");
    assert_child(spawned, tx, tx, false);
    assert_eq!(spawned["subtype"], "postgresql");
    assert_eq!(spawned["action"], "query");
    assert!(spawned["duration"].as_f64().unwrap() >= 30.0, "{spawned:#}");
    let inline = sleeps.iter().find(|s| s["sync"] == true).expect("the awaited one ran on this thread");
    assert_child(inline, tx, tx, true);
    assert!(inline["duration"].as_f64().unwrap() >= 10.0);
    assert_child(r.span("blocking_leaf"), tx, tx, false);
    assert!(tx["duration"].as_f64().unwrap() >= 40.0);
}

#[transaction]
async fn async_err() -> Result<u64, String> {
    let v = sleepy(120).await?;
    Ok(v)
}

#[test]
fn async_err_is_failure() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = record(|| assert!(rt.block_on(async_err()).is_err()));
    let (tx, span) = (r.tx("async_err"), r.span("sleepy"));
    assert_eq!(tx["outcome"], "failure");
    assert_eq!(span["outcome"], "failure");
    assert_eq!(r.errors.len(), 2);
    let handled = |parent: &serde_json::Value| {
        r.errors.iter().find(|e| e["parent_id"] == parent["id"]).expect("an error under it")["exception"]["handled"]
            .clone()
    };
    assert_eq!(handled(tx), false);
    assert_eq!(handled(span), true);
}

#[span]
async fn async_panics() {
    tokio::task::yield_now().await;
    panic!("async boom");
}

#[transaction]
async fn spawns_panicking() -> bool {
    tokio::spawn(async move { async_panics().await }).await.is_err()
}

#[test]
fn async_panic_ends_span_during_unwinding() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let r = record(|| assert!(rt.block_on(spawns_panicking())));
    let tx = r.tx("spawns_panicking");
    let span = r.span("async_panics");
    assert_child(span, tx, tx, false);
    assert_eq!(span["outcome"], "failure");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0]["parent_id"], span["id"]);
    assert_eq!(r.errors[0]["exception"]["message"], "async boom");
}

#[async_trait::async_trait]
trait Repo {
    async fn get(&self, id: u32) -> Result<String, String>;
}

struct Db;

#[async_trait::async_trait]
impl Repo for Db {
    #[span(name = "Db::get", type = "db", labels(id))]
    async fn get(&self, id: u32) -> Result<String, String> {
        let handle = tokio::spawn(async move { leaf_async(id).await });
        let v = handle.await.map_err(|e| e.to_string())?;
        if id == 0 {
            return Err("no row".into());
        }
        Ok(v)
    }
}

#[span]
async fn leaf_async(id: u32) -> String {
    id.to_string()
}

#[transaction]
async fn uses_trait() -> usize {
    let ok = Db.get(5).await.unwrap();
    let err = Db.get(0).await.unwrap_err();
    ok.len() + err.len()
}

#[test]
fn async_trait_methods() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let r = record(|| assert_eq!(rt.block_on(uses_trait()), 1 + 6));
    let tx = r.tx("uses_trait");
    let gets = r.spans_named("Db::get");
    assert_eq!(gets.len(), 2);
    for g in &gets {
        assert_child(g, tx, tx, true);
        assert_eq!(g["type"], "db");
        let leaf = r.spans.iter().find(|l| l["name"] == "leaf_async" && l["parent_id"] == g["id"]).expect("leaf");
        assert_child(leaf, g, tx, false);
    }
    let failed: Vec<_> = gets.iter().filter(|g| g["outcome"] == "failure").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["context"]["tags"]["id"], 0.0);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0]["parent_id"], failed[0]["id"]);
}

#[transaction]
async fn spawns_trait_future_directly() -> String {
    // The async-trait method runs when called: its span is a child of this transaction even
    // though the returned future is first polled on a worker thread.
    let fut = Db.get(9);
    tokio::spawn(fut).await.unwrap().unwrap()
}

#[test]
fn async_trait_future_spawned_directly_keeps_its_parent() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let r = record(|| assert_eq!(rt.block_on(spawns_trait_future_directly()), "9"));
    let tx = r.tx("spawns_trait_future_directly");
    assert_child(r.span("Db::get"), tx, tx, false);
}

#[span(labels(tag))]
fn marker_leaf(tag: &'static str) {
    let _ = tag;
}

#[span(name = "a")]
async fn branch_a() {
    tokio::task::yield_now().await;
    marker_leaf("a");
}

#[span(name = "b")]
async fn branch_b() {
    tokio::task::yield_now().await;
    marker_leaf("b");
}

#[transaction]
async fn interleaved() {
    tokio::join!(branch_a(), branch_b());
    marker_leaf("after");
}

#[test]
fn async_span_is_current_only_while_polled() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = record(|| rt.block_on(interleaved()));
    let tx = r.tx("interleaved");
    let (a, b) = (r.span("a"), r.span("b"));
    assert_child(a, tx, tx, true);
    assert_child(b, tx, tx, true);
    let leaf =
        |tag: &str| *r.spans_named("marker_leaf").iter().find(|s| s["context"]["tags"]["tag"] == tag).expect("leaf");
    assert_child(leaf("a"), a, tx, true);
    assert_child(leaf("b"), b, tx, true);
    assert_child(leaf("after"), tx, tx, true);
    assert!(apm_runtime::Context::current().is_empty());
}

// The unrecorded paths of a sync `#[span]` fn: with no transaction or in an unsampled one its
// body runs without any span, yet errors and panics are still reported (once, under the
// transaction) and labels are never evaluated.

static LABEL_EVALUATIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn counted_label() -> u32 {
    LABEL_EVALUATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
}

#[span(labels(n = counted_label()))]
fn labelled_leaf(x: u32) -> u32 {
    x + 1
}

#[span]
fn outer_of_panicking() {
    span_panics();
}

#[test]
fn unrecorded_sync_spans_report_errors_and_panics_once_and_skip_labels() {
    use std::sync::atomic::Ordering::SeqCst;
    let sink = apm_runtime::report::MemorySink::new();
    let config = apm_runtime::Config::builder().transaction_sample_rate(0.0).build().unwrap();
    let agent = apm_runtime::Agent::builder().config(config).sink(sink.clone()).build().unwrap();
    let _default = agent.set_default();

    // No transaction: an `Err` is not reported (that path makes no span at all), a panic is, on
    // a trace of its own, as Elastic's agents report errors outside any transaction.
    assert!(child_err(true).is_err());
    assert!(std::panic::catch_unwind(span_panics).is_err());
    assert_eq!(labelled_leaf(1), 2);

    let tx = agent.transaction("unsampled").start();
    let active = tx.attach();
    assert!(child_err(true).is_err());
    assert_eq!(child_err(false).ok(), Some(1));
    assert!(std::panic::catch_unwind(outer_of_panicking).is_err());
    assert!(!apm_runtime::Context::current().is_empty(), "the transaction is still current after unwinding");
    assert_eq!(labelled_leaf(2), 3);
    assert_eq!(LABEL_EVALUATIONS.load(SeqCst), 0, "labels of unrecorded spans are never evaluated");
    drop(active);
    let tx_id = tx.context().parent_id().unwrap().to_string();
    tx.end();
    assert!(agent.flush(Duration::from_secs(5)));

    assert!(sink.spans().is_empty());
    let all = sink.errors();
    let (outside, errors): (Vec<_>, Vec<_>) = all.into_iter().partition(|e| e.get("transaction_id").is_none());
    assert_eq!(outside.len(), 1, "the panic outside any transaction: {outside:#?}");
    assert_eq!(outside[0]["exception"]["message"], "boom");
    assert_eq!(errors.len(), 2, "one error and one panic, each once: {errors:#?}");
    for e in &errors {
        assert_eq!(e["parent_id"], tx_id.as_str());
        assert_eq!(e["transaction"]["sampled"], false);
    }
    assert_eq!(errors[0]["exception"]["message"], "shown error");
    assert_eq!(errors[1]["exception"]["type"], "panic");
    assert_eq!(errors[1]["exception"]["message"], "boom");

    // Sampled, the same fn records its span and evaluates its label once.
    let r = record(|| {
        let tx = apm_runtime::Transaction::start("sampled");
        let _a = tx.attach();
        assert_eq!(labelled_leaf(3), 4);
    });
    assert_eq!(r.span("labelled_leaf")["context"]["tags"]["n"], 1.0);
    assert_eq!(LABEL_EVALUATIONS.load(SeqCst), 1);
}
