//! Error events as Kibana groups and shows them (issue 16): stack frames resolved on the reporter
//! with the application's frames told from the libraries', the culprit, the `source()` chain,
//! panics on pool threads with their location and stack, errors outside any transaction, and
//! the ids `capture_error` returns. Every event is checked against the intake's schemas.

mod support;

use std::fmt;

use apm_runtime::{capture_error, span, transaction, Agent};
use serde_json::Value;
use support::{flush, memory_agent, schemas};

/// A three-deep chain: `Checkout` ← `Payment` ← `Gateway` ← `std::io::Error`.
#[derive(Debug)]
struct Checkout(Payment);
#[derive(Debug)]
struct Payment(Gateway);
#[derive(Debug)]
struct Gateway(std::io::Error);

impl fmt::Display for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("checkout failed")
    }
}
impl fmt::Display for Payment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment declined")
    }
}
impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("gateway unreachable")
    }
}
impl std::error::Error for Checkout {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Payment {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::error::Error for Gateway {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn checkout_error() -> Checkout {
    Checkout(Payment(Gateway(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"))))
}

/// The line of the `capture_error` call below, for the frame check.
const CAPTURE_LINE: u32 = line!() + 5;

#[inline(never)]
fn place_order(agent: &Agent) -> Option<apm_runtime::TraceId> {
    let tx = agent.transaction("POST /orders").start();
    let id = tx.context().in_scope(|| capture_error(&checkout_error()));
    tx.end();
    id
}

fn check_all(sink: &apm_runtime::report::MemorySink) {
    for (kind, event) in schemas().check_ndjson(&sink.ndjson()) {
        assert!(!kind.is_empty(), "{event}");
    }
}

fn frames(error: &Value) -> &Vec<Value> {
    error["exception"]["stacktrace"].as_array().unwrap_or_else(|| panic!("no stacktrace: {error:#}"))
}

#[test]
fn a_captured_error_carries_its_frames_culprit_cause_chain_and_id() {
    let (agent, sink) = memory_agent(|c| c);
    let id = place_order(&agent).expect("recorded");
    flush(&agent);
    check_all(&sink);
    let errors = sink.errors();
    assert_eq!(errors.len(), 1);
    let error = &errors[0];
    assert_eq!(error["id"], id.to_string(), "the id returned is the event's");
    assert_eq!(id.to_string().len(), 32);

    let exception = &error["exception"];
    assert_eq!(exception["type"], "errors::Checkout");
    assert_eq!(exception["module"], "errors");
    assert_eq!(exception["message"], "checkout failed");
    assert_eq!(exception["handled"], true);
    let causes: Vec<(&str, Option<&str>)> = exception["cause"]
        .as_array()
        .expect("a cause chain")
        .iter()
        .map(|c| (c["message"].as_str().unwrap(), c["type"].as_str()))
        .collect();
    assert_eq!(
        causes,
        [
            ("payment declined", None),
            ("gateway unreachable", None),
            ("connection refused", Some("std::io::error::Error"))
        ]
    );

    let frames = frames(error);
    // The agent's own frames and the unwinder are cut: the top frame is the caller's closure.
    let top = &frames[0];
    assert!(top["function"].as_str().is_some_and(|f| f.starts_with("place_order")), "{top:#}");
    let ours =
        frames.iter().find(|f| f["function"] == "place_order").expect("place_order's own frame, below its closure");
    assert_eq!(ours["module"], "errors");
    assert_eq!(ours["filename"], "tests/errors.rs");
    assert!(ours["abs_path"].as_str().is_some_and(|p| p.ends_with("tests/errors.rs")));
    assert_eq!(ours["library_frame"], false);
    assert_eq!(top["lineno"], CAPTURE_LINE, "{top:#}");
    let std_frame = frames
        .iter()
        .find(|f| f["module"].as_str().is_some_and(|m| m.starts_with("std::") || m.starts_with("core::")))
        .expect("std frames below the test");
    assert_eq!(std_frame["library_frame"], true, "{std_frame:#}");
    // Below, the agent's `in_scope` that ran the closure is a frame like any other; above the
    // caller, nothing of the capture is left.
    assert_eq!(top["module"], "errors", "{top:#}");
    assert!(
        error["culprit"]
            .as_str()
            .is_some_and(|c| c.starts_with("errors::place_order") && c.contains("(tests/errors.rs:")),
        "{}",
        error["culprit"]
    );
}

#[derive(Debug)]
struct NotFound;
impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no such order")
    }
}
impl std::error::Error for NotFound {}

#[span]
fn load_order(id: u32) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if id == 0 {
        return Err(Box::new(Checkout(Payment(Gateway(std::io::Error::other("timed out"))))));
    }
    Ok(id)
}

#[span]
fn find_order(id: u32) -> Result<u32, NotFound> {
    if id == 0 {
        return Err(NotFound);
    }
    Ok(id)
}

#[derive(Debug)]
struct Opaque;

#[span]
fn opaque() -> Result<(), Opaque> {
    Err(Opaque)
}

#[transaction]
fn handle(id: u32) {
    let _ = load_order(id);
    let _ = find_order(id);
    let _ = opaque();
}

#[test]
fn errors_returned_through_the_macros_keep_their_type_chain_and_stack() {
    let (agent, sink) = memory_agent(|c| c);
    {
        let _default = agent.set_default();
        handle(0);
    }
    flush(&agent);
    check_all(&sink);
    let errors = sink.errors();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    let by_message = |m: &str| errors.iter().find(|e| e["exception"]["message"] == m).unwrap_or_else(|| panic!("{m}"));

    let boxed = by_message("checkout failed");
    assert_eq!(
        boxed["exception"]["type"],
        "alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>"
    );
    assert_eq!(boxed["exception"]["cause"].as_array().map(Vec::len), Some(3), "the chain through the box: {boxed:#}");
    assert!(
        frames(boxed).iter().any(|f| f["function"].as_str().is_some_and(|f| f.starts_with("load_order"))),
        "{boxed:#}"
    );

    let typed = by_message("no such order");
    assert_eq!(typed["exception"]["type"], "errors::NotFound");
    assert_eq!(typed["exception"]["module"], "errors");
    assert!(typed["exception"].get("cause").is_none());
    let top = &frames(typed)[0];
    assert!(top["function"].as_str().is_some_and(|f| f.starts_with("find_order")), "{typed:#}");
    assert_eq!(top["library_frame"], false);

    let debug_only = by_message("Opaque");
    assert_eq!(debug_only["exception"]["type"], "errors::Opaque");
}

#[inline(never)]
#[transaction]
fn panicking_job(n: u32) -> u32 {
    if n == 3 {
        panic!("job {n} ran out of luck");
    }
    n
}

#[test]
fn a_panic_on_a_pool_thread_arrives_with_its_location_and_stack() {
    let (agent, sink) = memory_agent(|c| c);
    let agent = std::sync::Arc::new(agent);
    let pool = threadpool::ThreadPool::new(2);
    for n in 0..5 {
        let agent = agent.clone();
        pool.execute(move || {
            let _default = agent.set_default();
            let _ = std::panic::catch_unwind(|| panicking_job(n));
        });
    }
    pool.join();
    flush(&agent);
    check_all(&sink);
    let errors = sink.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let panic = &errors[0];
    assert_eq!(panic["exception"]["type"], "panic");
    assert_eq!(panic["exception"]["message"], "job 3 ran out of luck");
    assert_eq!(panic["exception"]["handled"], false);
    let culprit = panic["culprit"].as_str().unwrap();
    assert!(culprit.starts_with("tests/errors.rs:"), "the panic's location: {culprit}");
    let top = &frames(panic)[0];
    assert_eq!(top["function"], "panicking_job", "the std panic machinery is cut: {panic:#}");
    assert_eq!(top["filename"], "tests/errors.rs");
    let txs = sink.transactions();
    let failed = txs.iter().find(|t| t["id"] == panic["transaction_id"]).expect("its transaction");
    assert_eq!(failed["outcome"], "failure");
}

#[test]
fn an_error_outside_any_transaction_has_its_stack_too() {
    let (agent, sink) = memory_agent(|c| c);
    let id = {
        let _default = agent.set_default();
        capture_error(&NotFound).expect("reported")
    };
    flush(&agent);
    check_all(&sink);
    let error = &sink.errors()[0];
    assert_eq!(error["id"], id.to_string());
    assert!(error.get("transaction_id").is_none());
    let top = &frames(error)[0];
    assert!(top["function"].as_str().is_some_and(|f| f.starts_with("an_error_outside_any_transaction")), "{top:#}");
}

#[test]
fn the_stack_trace_limit_bounds_or_switches_off_frames() {
    let (agent, sink) = memory_agent(|c| c.stack_trace_limit(3));
    let _default = agent.set_default();
    capture_error(&NotFound);
    flush(&agent);
    assert_eq!(frames(&sink.errors()[0]).len(), 3);

    let (agent, sink) = memory_agent(|c| c.stack_trace_limit(0));
    let _default = agent.set_default();
    capture_error(&NotFound);
    flush(&agent);
    let error = &sink.errors()[0];
    assert!(error["exception"].get("stacktrace").is_none(), "{error:#}");
    schemas().check("error", error).unwrap();
}

#[test]
fn the_waterfall_lists_each_error_under_its_span_with_its_place_in_the_code() {
    let (agent, sink) = memory_agent(|c| c);
    {
        let _default = agent.set_default();
        handle(0);
    }
    flush(&agent);
    let waterfall = apm_runtime::waterfall::Waterfall::new(sink.rows());
    let text = waterfall.render_text(160, false);
    let lines: Vec<&str> = text.lines().collect();
    let error_line = lines.iter().position(|l| l.contains("◆") && l.contains("no such order")).expect(&text);
    let span_line = lines.iter().position(|l| l.contains("find_order")).expect(&text);
    assert!(span_line < error_line, "the error sits under its span:\n{text}");
    let at = lines[error_line + 1].trim_start_matches(['│', ' ']);
    assert!(at.starts_with("at tests/errors.rs:"), "its innermost application frame follows it:\n{text}");
    let line: u32 = at["at tests/errors.rs:".len()..].trim().parse().expect(at);
    assert!((140..160).contains(&line), "inside find_order: {at}");

    let html = waterfall.render_html("errors");
    assert!(html.contains("<span class=\"wf-at\">tests/errors.rs:"), "the HTML shows the place too");
}

#[span]
fn slow_query() {
    std::thread::sleep(std::time::Duration::from_millis(8));
}

#[span]
fn fast_query() {}

#[transaction]
fn report_job() {
    slow_query();
    fast_query();
}

#[test]
fn spans_above_the_threshold_carry_the_stack_that_ended_them() {
    let (agent, sink) = memory_agent(|c| c);
    {
        let _default = agent.set_default();
        report_job();
    }
    flush(&agent);
    check_all(&sink);
    let spans = sink.spans();
    let slow = spans.iter().find(|s| s["name"] == "slow_query").unwrap();
    let fast = spans.iter().find(|s| s["name"] == "fast_query").unwrap();
    assert!(fast.get("stacktrace").is_none(), "below 5ms: no stack {fast:#}");
    let frames = slow["stacktrace"].as_array().unwrap_or_else(|| panic!("{slow:#}"));
    assert!(frames[0]["function"].as_str().is_some_and(|f| f.starts_with("slow_query")), "{slow:#}");
    assert_eq!(frames[0]["filename"], "tests/errors.rs");
    assert!(frames.iter().any(|f| f["function"].as_str().is_some_and(|f| f.starts_with("report_job"))));

    // -1 switches them off; 0 gives every span one.
    let (agent, sink) = memory_agent(|c| c.span_stack_trace_min_duration(None));
    {
        let _default = agent.set_default();
        report_job();
    }
    flush(&agent);
    assert!(sink.spans().iter().all(|s| s.get("stacktrace").is_none()));
    let (agent, sink) = memory_agent(|c| c.span_stack_trace_min_duration(Some(std::time::Duration::ZERO)));
    {
        let _default = agent.set_default();
        report_job();
    }
    flush(&agent);
    assert!(sink.spans().iter().all(|s| s.get("stacktrace").is_some()));
    check_all(&sink);
}
