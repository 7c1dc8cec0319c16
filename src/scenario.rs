//! The flows the examples run and the tests check: the seed scenario (a handler fetching URLs
//! on a thread pool) and a call from one service to another.

use std::time::Duration;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::{Agent, Context, Span, Transaction};

use crate::demo_server::{DemoServer, Received};

/// The seed scenario's handler: one `request` transaction, every URL fetched on a 4-thread
/// pool, each fetch a `load_url` span with the HTTP exit span inside.
pub fn handle_dashboard(urls: &[String]) {
    let tx = Transaction::builder("GET /dashboard").with_type("request").start();
    let _active = tx.attach();
    let pool = threadpool::ThreadPool::with_name("pool".into(), 4);
    let client = reqwest::blocking::Client::new();
    for url in urls {
        let (client, url) = (client.clone(), url.clone());
        // Capture the handler's context here; the pool thread attaches it around the task.
        pool.execute(Context::current().wrap(move || load_url(&client, &url)));
    }
    pool.join();
}

/// One fetch: an application span with the HTTP exit span (from `send_traced`) inside.
pub fn load_url(client: &reqwest::blocking::Client, url: &str) {
    let span = Span::builder("load_url").start();
    let _in_span = span.attach();
    let _ = client.get(url).send_traced();
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

/// Starts the `orders` service: each request is a transaction continuing the caller's trace.
pub fn start_orders_service(orders: std::sync::Arc<Agent>) -> std::io::Result<DemoServer> {
    DemoServer::start_with(move |request: &Received| {
        let tx = orders.transaction("GET /orders").with_type("request").continue_from(&request.headers).start();
        let _active = tx.attach();
        let query = Span::builder("SELECT orders").with_type("db").subtype("postgresql").action("query").start();
        std::thread::sleep(Duration::from_millis(25));
        query.end();
        (200, r#"{"orders":[]}"#.to_string())
    })
}

/// The `frontend` service's handler: calls `orders_url` once inline and once from a pool thread.
pub fn handle_checkout(orders_url: &str) {
    let tx = Transaction::builder("GET /checkout").with_type("request").start();
    let _active = tx.attach();
    let client = reqwest::blocking::Client::new();
    let _ = client.get(orders_url).send_traced();
    let pool = threadpool::ThreadPool::new(2);
    let (client, url) = (client.clone(), orders_url.to_string());
    pool.execute(Context::current().wrap(move || {
        let _ = client.get(&url).send_traced();
    }));
    pool.join();
}
