//! An axum service traced by `ApmLayer`: every request is a transaction named by its route,
//! continued from the caller's `traceparent`, with its request and response recorded.
//!
//! ```sh
//! cargo run --example axum_service                 # listens on APM_EXAMPLE_ADDR (default 127.0.0.1:3000)
//! curl http://127.0.0.1:3000/users/42
//! ```
//!
//! `GET /users/{id}` fans out to a thread pool (three shard lookups, spans on pool threads)
//! and calls a profile service with `send_traced` (an exit span, our `traceparent` on the
//! request); the handler sets the transaction's user through `current_transaction()`. The
//! profile service is a small local HTTP server this example starts. With
//! `ELASTIC_APM_SERVER_URL` set, everything goes to that APM Server; otherwise to
//! `target/apm-axum-service.ndjson`. Ctrl-C (or SIGTERM) stops accepting, lets the requests in
//! flight finish, flushes what the agent holds, and exits.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::integrations::tower::ApmLayer;
use apm_runtime::{current_transaction, propagate, span, User};
use apm_toolkit::demo_server::DemoServer;
use apm_toolkit::service::{listen_addr, ServiceAgent};
use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use axum::Router;

const DEFAULT_ADDR: &str = "127.0.0.1:3000";

struct App {
    pool: threadpool::ThreadPool,
    client: reqwest::Client,
    profiles: String,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let addr = listen_addr(DEFAULT_ADDR);
    let service = ServiceAgent::start("apm-axum-service.ndjson")?;

    // The "remote" profile service: answers any path with a small JSON body.
    let profiles = DemoServer::start()?;
    let app = Arc::new(App {
        pool: threadpool::ThreadPool::new(4),
        client: reqwest::Client::new(),
        profiles: profiles.base_url(),
    });
    let router = Router::new()
        .route("/users/{id}", get(get_user))
        .route("/health", get(|| async { "ok" }))
        .with_state(app)
        // Added last, so it wraps every route and sees its `MatchedPath`.
        .layer(ApmLayer::new());

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("axum_service listening on http://{}/users/{{id}}", listener.local_addr()?);
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown_signal())
            .await
    })?;

    // Every request's transaction ended with its response; what the reporter holds goes now.
    drop(profiles);
    service.stop();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    println!("shutting down: finishing the requests in flight");
}

/// `#[propagate]`: the closures handed to the pool and the async block run under this
/// request's transaction, on whichever thread runs them.
#[propagate]
async fn get_user(
    UrlPath(id): UrlPath<u32>,
    State(app): State<Arc<App>>,
) -> ([(&'static str, &'static str); 1], String) {
    current_transaction().set_user(User::default().id(id.to_string()));

    let mut shards = Vec::new();
    for shard in 0..3u32 {
        let (send, recv) = tokio::sync::oneshot::channel();
        app.pool.execute(move || {
            let _ = send.send(load_shard(id, shard));
        });
        shards.push(recv);
    }
    let mut orders = 0;
    for shard in shards {
        orders += shard.await.unwrap_or(0);
    }

    let profile = match app.client.get(format!("{}/profiles/{id}", app.profiles)).send_traced().await {
        Ok(response) => serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    let body = serde_json::json!({ "id": id, "orders": orders, "profile": profile });
    ([("content-type", "application/json")], body.to_string())
}

#[span(type = "db", subtype = "sqlite", action = "query")]
fn load_shard(id: u32, shard: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(2 + u64::from(shard)));
    (id + shard) % 7
}
