//! The flows the examples run and the tests check, written as a user would: with the
//! attribute macros. The seed scenario (a handler fetching URLs on a thread pool) and a call
//! from one service to another.

use std::time::Duration;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::{span, transaction, Agent};

use crate::demo_server::{DemoServer, Received};

/// The seed scenario's handler: one `request` transaction, every URL fetched on a 4-thread
/// pool. The `move` closure handed to the pool carries the transaction: the macro captures
/// the context where the closure is created and attaches it on the pool thread.
#[transaction(name = "GET /dashboard", type = "request")]
pub fn handle_dashboard(urls: &[String]) {
    let pool = threadpool::ThreadPool::with_name("pool".into(), 4);
    let client = reqwest::blocking::Client::new();
    for url in urls {
        let (client, url) = (client.clone(), url.clone());
        pool.execute(move || {
            let _ = load_url(&client, &url);
        });
    }
    pool.join();
}

/// One fetch: a `load_url` span with the HTTP exit span (from `send_traced`) inside. A
/// transport error returns `Err`, which marks the span failed and reports an error event.
#[span]
pub fn load_url(client: &reqwest::blocking::Client, url: &str) -> Result<u16, reqwest::Error> {
    let response = client.get(url).send_traced()?;
    Ok(response.status().as_u16())
}

/// URLs on `server` with a spread of delays, and one that fails with 503.
pub fn dashboard_urls(server: &DemoServer) -> Vec<String> {
    let base = server.base_url();
    [120, 60, 90, 30, 150, 45]
        .iter()
        .map(|ms| format!("{base}/delay/{ms}"))
        .chain([format!("{base}/status/503")])
        .collect()
}

/// Starts the `orders` service; `orders` is made the default agent of its request threads.
pub fn start_orders_service(orders: std::sync::Arc<Agent>) -> std::io::Result<DemoServer> {
    DemoServer::start_with(move |request: &Received| {
        let _default = orders.set_default();
        handle_orders(request)
    })
}

/// The `orders` service's handler: a transaction continuing the caller's trace from the
/// incoming W3C headers.
#[transaction(name = "GET /orders", type = "request", traceparent = request.headers)]
fn handle_orders(request: &Received) -> (u16, String) {
    query_orders();
    (200, r#"{"orders":[]}"#.to_string())
}

#[span(name = "SELECT orders", type = "db", subtype = "postgresql", action = "query")]
fn query_orders() {
    std::thread::sleep(Duration::from_millis(25));
}

/// The `frontend` service's handler: calls `orders_url` once inline and once from a pool thread.
#[transaction(name = "GET /checkout", type = "request")]
pub fn handle_checkout(orders_url: &str) {
    let client = reqwest::blocking::Client::new();
    let _ = client.get(orders_url).send_traced();
    let pool = threadpool::ThreadPool::new(2);
    let url = orders_url.to_string();
    pool.execute(move || {
        let _ = client.get(&url).send_traced();
    });
    pool.join();
}
