//! A service for the W3C trace-context test suite (github.com/w3c/trace-context, `test/`),
//! built on the public API only: it continues the caller's trace with
//! `#[transaction(traceparent = ...)]` and calls back with `send_traced`, which carries our
//! `traceparent`/`tracestate`.
//!
//! ```sh
//! cargo run --example w3c_service      # listens on APM_EXAMPLE_ADDR (default 127.0.0.1:3000)
//! # in the suite's test/ folder (the harness itself listens on 127.0.0.1:7777):
//! SPEC_LEVEL=2 python3 test.py http://127.0.0.1:3000/test
//! ```
//!
//! `scripts/w3c-suite.sh <suite checkout>` does both, at Level 2 and at Level 1. The suite's
//! protocol: `POST /test` with a JSON array of `{"url": ..., "arguments": [...]}`; for each
//! element the service POSTs `arguments` as JSON to `url`, and the harness checks the trace
//! headers of those callbacks. With `ELASTIC_APM_SERVER_URL` set the transactions and exit
//! spans go to that APM Server, otherwise to `target/apm-w3c-service.ndjson`. Ctrl-C (or
//! SIGTERM) flushes and exits.

use std::error::Error;
use std::sync::mpsc;
use std::time::Duration;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::{transaction, Context};
use apm_toolkit::demo_server::{DemoServer, Received};
use apm_toolkit::service::{listen_addr, ServiceAgent};
use serde_json::Value;

/// Not the suite's 7777: that is where its harness listens.
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let addr = listen_addr(DEFAULT_ADDR);
    let service = ServiceAgent::start("apm-w3c-service.ndjson")?;

    // One client for every callback: the harness answers at once, but a wrong callback URL
    // must not hold a request of the suite for longer than its own 5 s timeout.
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(4)).build()?;
    let server = DemoServer::serve_on(&addr, move |request: &Received| {
        match (request.method.as_str(), request.path.as_str()) {
            ("POST", "/test") => handle_test(&client, request),
            _ => (404, r#"{"error":"the W3C suite's endpoint is POST /test"}"#.to_string()),
        }
    })?;
    println!("w3c_service listening on http://{}/test", server.local_addr());

    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })?;
    stopped.recv()?;

    // Every transaction ended with its request; what the reporter still holds goes out now.
    drop(server);
    service.stop();
    Ok(())
}

/// One request of the suite: a transaction continuing the caller's trace from its headers,
/// then a callback (an exit span, carrying our trace headers) per element of the body.
#[transaction(name = "POST /test", type = "request", traceparent = request.headers)]
fn handle_test(client: &reqwest::blocking::Client, request: &Received) -> (u16, String) {
    let actions = match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Array(actions)) => actions,
        _ => return (400, r#"{"error":"expected a JSON array of {\"url\", \"arguments\"}"}"#.to_string()),
    };
    let mut statuses = Vec::with_capacity(actions.len());
    for action in &actions {
        let Some(url) = action.get("url").and_then(Value::as_str) else {
            statuses.push(Value::Null);
            continue;
        };
        let arguments = action.get("arguments").cloned().unwrap_or_else(|| Value::Array(Vec::new()));
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(arguments.to_string())
            .send_traced();
        statuses.push(sent.map_or(Value::Null, |response| Value::from(response.status().as_u16())));
    }
    let incoming = request.headers.iter().find(|(name, _)| name == "traceparent").map_or("-", |(_, v)| v.as_str());
    let ours = Context::current().traceparent().map(|tp| tp.to_header()).unwrap_or_default();
    println!("POST /test traceparent {incoming:?} -> transaction {ours} ({} callbacks)", actions.len());
    (200, serde_json::json!({ "callbacks": statuses }).to_string())
}
