//! `ApmLayer` on a real axum server on loopback (multi-thread tokio runtime), driven by a real
//! HTTP client: route names, continued traces, request and response context with redaction,
//! ignored URLs, work handed to a pool and to `tokio::spawn`, 1000 concurrent requests, a
//! client that goes away, and handlers that panic.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use apm_runtime::integrations::tower::ApmLayer;
use apm_runtime::{current_transaction, propagate, span, Agent, CaptureBody, Context, User};
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use support::{memory_agent, named, schemas, wait_for_transactions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

/// Serves `router` with the agent's layer on a loopback port of `rt`; returns its address.
fn serve(rt: &tokio::runtime::Runtime, agent: &Agent, router: Router) -> SocketAddr {
    let layer = {
        let _default = agent.set_default();
        ApmLayer::new()
    };
    let app = router.layer(layer).into_make_service_with_connect_info::<SocketAddr>();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn user(Path(id): Path<u32>) -> impl IntoResponse {
    let current = current_transaction();
    current.set_user(User::default().id(id.to_string()).username("ada"));
    current.set_label("tier", "gold");
    current.set_custom("cart", serde_json::json!({ "items": 2 }));
    ([("set-cookie", "session=s3cr3t"), ("x-served-by", "test")], format!("user {id}"))
}

#[test]
fn a_request_becomes_a_route_named_transaction_continuing_the_trace_with_sanitized_context() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let addr = serve(&rt, &agent, Router::new().route("/users/{id}", get(user)));

    let client = reqwest::Client::new();
    let response = rt
        .block_on(
            client
                .get(format!("http://{addr}/users/42?expand=orders&debug=1"))
                .header("traceparent", TRACEPARENT)
                .header("tracestate", "congo=t61rcWkgMzE")
                .header("authorization", "Bearer hunter2")
                .header("x-api-key", "k-123")
                .header("cookie", "session_id=abc; theme=dark")
                .header("x-request-id", "r-1")
                .header("accept-language", "en")
                .header("accept-language", "fr")
                .send(),
        )
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(rt.block_on(response.text()).unwrap(), "user 42");

    let txs = wait_for_transactions(&agent, &sink, 1);
    let tx = named(&txs, "GET /users/{id}");
    // The metadata of every request from now on names the framework that served it.
    let metadata = serde_json::to_value(apm_runtime::Metadata::collect(agent.config())).unwrap();
    assert_eq!(metadata["service"]["framework"]["name"], "axum", "{metadata}");
    schemas().check("metadata", &metadata).unwrap();
    assert_eq!(tx["type"], "request");
    assert_eq!(tx["result"], "HTTP 2xx");
    assert_eq!(tx["outcome"], "success");
    assert_eq!(tx["trace_id"], "0af7651916cd43dd8448eb211c80319c", "the caller's trace is continued");
    assert_eq!(tx["parent_id"], "b7ad6b7169203331", "under the caller's span");

    let request = &tx["context"]["request"];
    assert_eq!(request["method"], "GET");
    assert_eq!(request["http_version"], "1.1");
    assert_eq!(request["socket"]["remote_address"], "127.0.0.1");
    let url = &request["url"];
    assert_eq!(url["pathname"], "/users/42");
    assert_eq!(url["search"], "expand=orders&debug=1");
    assert_eq!(url["hostname"], "127.0.0.1");
    assert_eq!(url["port"], addr.port());
    assert_eq!(url["protocol"], "http:");
    assert_eq!(url["raw"], "/users/42?expand=orders&debug=1");
    assert_eq!(url["full"], format!("http://{addr}/users/42?expand=orders&debug=1"));
    let headers = &request["headers"];
    assert_eq!(headers["authorization"], "[REDACTED]");
    assert_eq!(headers["x-api-key"], "[REDACTED]");
    assert_eq!(headers["cookie"], "[REDACTED]");
    assert_eq!(headers["x-request-id"], "r-1");
    assert_eq!(headers["accept-language"], serde_json::json!(["en", "fr"]), "a repeated header's values, in order");
    assert_eq!(headers["traceparent"], TRACEPARENT);
    assert_eq!(request["cookies"]["session_id"], "[REDACTED]");
    assert_eq!(request["cookies"]["theme"], "dark");

    let response = &tx["context"]["response"];
    assert_eq!(response["status_code"], 200);
    assert_eq!(response["finished"], true);
    assert_eq!(response["headers_sent"], true);
    assert_eq!(response["headers"]["set-cookie"], "[REDACTED]");
    assert_eq!(response["headers"]["x-served-by"], "test");

    assert_eq!(tx["context"]["user"], serde_json::json!({ "id": "42", "username": "ada" }));
    assert_eq!(tx["context"]["tags"]["tier"], "gold");
    assert_eq!(tx["context"]["custom"]["cart"]["items"], 2);
    schemas().check_ndjson(&sink.ndjson());
}

#[test]
fn results_and_outcomes_follow_the_status_and_unknown_routes_get_elastics_name() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let router = Router::new()
        .route("/fail", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/renamed",
            get(|| async {
                current_transaction().set_name("custom name");
                current_transaction().set_result("cache hit");
                "ok"
            }),
        );
    let addr = serve(&rt, &agent, router);
    let client = reqwest::Client::new();
    for path in ["/fail", "/teapot", "/renamed", "/no/such/route"] {
        rt.block_on(client.get(format!("http://{addr}{path}")).send()).unwrap();
    }
    let txs = wait_for_transactions(&agent, &sink, 4);
    let fail = named(&txs, "GET /fail");
    assert_eq!((&fail["result"], &fail["outcome"]), (&"HTTP 5xx".into(), &"failure".into()));
    let teapot = named(&txs, "GET /teapot");
    assert_eq!((&teapot["result"], &teapot["outcome"]), (&"HTTP 4xx".into(), &"success".into()));
    let renamed = named(&txs, "custom name");
    assert_eq!(renamed["result"], "cache hit", "the handler's result wins over the layer's");
    let unknown = named(&txs, "GET unknown route");
    assert_eq!(unknown["context"]["response"]["status_code"], 404);
    assert_ne!(fail["trace_id"], teapot["trace_id"], "no traceparent: each request starts a trace");
    schemas().check_ndjson(&sink.ndjson());
}

#[test]
fn ignored_urls_headers_off_and_paths_as_names_follow_the_configuration() {
    let (agent, sink) = memory_agent(|c| {
        c.transaction_ignore_urls(["/health*", "*.png"])
            .capture_headers(false)
            .use_path_as_transaction_name(true)
            .sanitize_field_names(["x-tenant"])
    });
    let rt = runtime();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/logo.png", get(|| async { "png" }))
        .route("/orders", get(|| async { "orders" }));
    let addr = serve(&rt, &agent, router);
    let client = reqwest::Client::new();
    for path in ["/healthz", "/logo.png", "/orders", "/unrouted/7"] {
        let r = rt.block_on(client.get(format!("http://{addr}{path}")).header("x-tenant", "acme").send()).unwrap();
        drop(rt.block_on(r.bytes()));
    }
    let txs = wait_for_transactions(&agent, &sink, 2);
    let names: Vec<&str> = txs.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"GET /orders") && names.contains(&"GET /unrouted/7"), "{names:?}");
    for tx in &txs {
        assert!(tx["context"]["request"]["headers"].is_null(), "CAPTURE_HEADERS=false: {tx:#}");
        assert!(tx["context"]["response"]["headers"].is_null());
    }

    // The same configured list reaches header capture when it is on.
    let (agent, sink) = memory_agent(|c| c.sanitize_field_names(["x-tenant"]));
    let addr = serve(&rt, &agent, Router::new().route("/orders", get(|| async { "orders" })));
    let r = rt
        .block_on(
            client.get(format!("http://{addr}/orders")).header("x-tenant", "acme").header("authorization", "a").send(),
        )
        .unwrap();
    drop(rt.block_on(r.bytes()));
    let txs = wait_for_transactions(&agent, &sink, 1);
    let headers = &txs[0]["context"]["request"]["headers"];
    assert_eq!(headers["x-tenant"], "[REDACTED]");
    assert_eq!(headers["authorization"], "a", "the configured list replaces Elastic's");
}

/// Posts three bodies (a form with a password, JSON, and a form to a route that fails and
/// reports an error) to a server whose agent has `CAPTURE_BODY` = `mode`; returns the
/// transactions by name, and the error.
fn post_bodies(mode: CaptureBody) -> (HashMap<String, Value>, Value) {
    let (agent, sink) = memory_agent(|c| c.capture_body(mode));
    let rt = runtime();
    let router = Router::new()
        .route("/login", post(|body: String| async move { format!("{} bytes", body.len()) }))
        .route("/orders", post(|body: axum::body::Bytes| async move { format!("{} bytes", body.len()) }))
        .route(
            "/fail",
            post(|_: String| async {
                apm_runtime::capture_error(&std::io::Error::other("refused"));
                (StatusCode::INTERNAL_SERVER_ERROR, "no")
            }),
        )
        .route("/upload", post(|body: axum::body::Bytes| async move { format!("{} bytes", body.len()) }));
    let addr = serve(&rt, &agent, router);
    let client = reqwest::Client::new();
    let form = "user=ada&password=hunter2&note=two+words%21&tag=a&tag=b";
    let json = r#"{"item":"book","qty":2}"#;
    for (path, content_type, body) in [
        ("/login", "application/x-www-form-urlencoded", form.to_string()),
        ("/orders", "application/json; charset=utf-8", json.to_string()),
        ("/fail", "application/x-www-form-urlencoded", "secret=s&reason=test".to_string()),
        ("/upload", "application/octet-stream", "\u{0}\u{1}binary".to_string()),
    ] {
        let r = rt
            .block_on(
                client.post(format!("http://{addr}{path}")).header("content-type", content_type).body(body).send(),
            )
            .unwrap();
        drop(rt.block_on(r.bytes()));
    }
    let txs = wait_for_transactions(&agent, &sink, 4);
    schemas().check_ndjson(&sink.ndjson());
    let errors = sink.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    (txs.into_iter().map(|t| (t["name"].as_str().unwrap().to_string(), t)).collect(), errors[0].clone())
}

#[test]
fn request_bodies_are_captured_as_capture_body_says_with_form_fields_sanitized() {
    let body = |txs: &HashMap<String, Value>, name: &str| txs[name]["context"]["request"]["body"].clone();

    let error_body = |error: &Value| error["context"]["request"]["body"].clone();
    let failed_form = serde_json::json!({ "secret": "[REDACTED]", "reason": "test" });

    let (txs, error) = post_bodies(CaptureBody::Off);
    for name in ["POST /login", "POST /orders", "POST /fail", "POST /upload"] {
        assert!(body(&txs, name).is_null(), "CAPTURE_BODY=off: {name}: {:#}", txs[name]);
    }
    assert_eq!(error["context"]["request"]["url"]["pathname"], "/fail", "{error:#}");
    assert!(error_body(&error).is_null());

    let (txs, error) = post_bodies(CaptureBody::Transactions);
    assert!(error_body(&error).is_null(), "transactions only: {error:#}");
    assert_eq!(
        body(&txs, "POST /login"),
        serde_json::json!({ "user": "ada", "password": "[REDACTED]", "note": "two words!", "tag": ["a", "b"] })
    );
    assert_eq!(body(&txs, "POST /orders"), r#"{"item":"book","qty":2}"#);
    assert_eq!(body(&txs, "POST /fail"), failed_form);
    assert!(body(&txs, "POST /upload").is_null(), "binary bodies are never kept");

    // `errors`: the error and the request that failed carry the body.
    let (txs, error) = post_bodies(CaptureBody::Errors);
    assert!(body(&txs, "POST /login").is_null());
    assert!(body(&txs, "POST /orders").is_null());
    assert_eq!(txs["POST /fail"]["outcome"], "failure");
    assert_eq!(body(&txs, "POST /fail"), failed_form);
    assert_eq!(error_body(&error), failed_form);

    let (txs, error) = post_bodies(CaptureBody::All);
    assert!(!body(&txs, "POST /orders").is_null());
    assert_eq!(error_body(&error), failed_form);
}

#[span]
fn pool_work(n: u32) -> u32 {
    n * 2
}

#[span]
async fn spawned_work(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    pool_work(n) + 1
}

/// Fans out to a thread pool and awaits a `tokio::spawn`ed task, as a handler does.
#[propagate]
async fn fan_out(Path(id): Path<u32>, pool: &threadpool::ThreadPool) -> String {
    let (send, recv) = tokio::sync::oneshot::channel();
    pool.execute(move || {
        let _ = send.send(pool_work(id));
    });
    let pooled = recv.await.unwrap();
    // `#[propagate]` carries the context into this async block, so the spawned task (on
    // whichever worker) records under this request's transaction.
    let spawned = tokio::spawn(async move { spawned_work(id).await }).await.unwrap();
    let trace = current_transaction().trace_id().map(|t| t.to_string()).unwrap_or_default();
    format!("{id} {pooled} {spawned} {trace}")
}

fn fan_out_router() -> Router {
    let pool = std::sync::Arc::new(threadpool::ThreadPool::new(4));
    Router::new().route(
        "/items/{id}",
        get(move |id: Path<u32>| {
            let pool = pool.clone();
            async move { fan_out(id, &pool).await }
        }),
    )
}

/// Checks every span sits under the transaction of the request whose id it worked on.
fn assert_spans_under_their_requests(txs: &[Value], spans: &[Value], requests: usize) {
    assert_eq!(txs.len(), requests);
    let tx_by_id: HashMap<&str, &Value> = txs.iter().map(|t| (t["id"].as_str().unwrap(), t)).collect();
    let span_ids: HashMap<&str, &Value> = spans.iter().map(|s| (s["id"].as_str().unwrap(), s)).collect();
    // pool_work in the pool, spawned_work, and pool_work inside it.
    assert_eq!(spans.len(), 3 * requests, "three spans a request");
    for span in spans {
        let tx = tx_by_id.get(span["transaction_id"].as_str().unwrap()).unwrap_or_else(|| panic!("{span:#}"));
        assert_eq!(span["trace_id"], tx["trace_id"]);
        let parent = span["parent_id"].as_str().unwrap();
        assert!(parent == tx["id"] || span_ids[parent]["transaction_id"] == tx["id"], "{span:#}");
    }
    for tx in txs {
        assert_eq!(tx["name"], "GET /items/{id}");
        assert_eq!(tx["span_count"]["started"], 3, "{tx:#}");
        assert_eq!(tx["result"], "HTTP 2xx");
    }
}

#[test]
fn spans_on_a_pool_and_in_spawned_tasks_stay_under_their_request() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let addr = serve(&rt, &agent, fan_out_router());
    let body =
        rt.block_on(async { reqwest::get(format!("http://{addr}/items/5")).await.unwrap().text().await.unwrap() });
    let txs = wait_for_transactions(&agent, &sink, 1);
    assert_eq!(body, format!("5 10 11 {}", txs[0]["trace_id"].as_str().unwrap()), "the handler read its trace id");
    let spans = sink.spans();
    assert_spans_under_their_requests(&txs, &spans, 1);
    let spawned = named(&spans, "spawned_work");
    assert_eq!(spawned["parent_id"], txs[0]["id"]);
    schemas().check_ndjson(&sink.ndjson());
}

#[test]
fn a_thousand_concurrent_requests_give_a_thousand_transactions_and_no_stray_span() {
    const N: usize = 1000;
    let (agent, sink) = memory_agent(|c| c.max_queue_size(100_000usize));
    let rt = runtime();
    let addr = serve(&rt, &agent, fan_out_router());
    let client = reqwest::Client::new();
    let bodies = rt.block_on(async {
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    // No context here: the client side records nothing.
                    let r = client.get(format!("http://{addr}/items/{i}")).send().await.unwrap();
                    r.text().await.unwrap()
                })
            })
            .collect();
        let mut bodies = Vec::new();
        for t in tasks {
            bodies.push(t.await.unwrap());
        }
        bodies
    });
    let txs = wait_for_transactions(&agent, &sink, N);
    let spans = sink.spans();
    assert_spans_under_their_requests(&txs, &spans, N);
    // Each request's id is in its URL and its body: a transaction swapped between two
    // concurrent requests would show in one of them.
    let trace_of_path: HashMap<String, &str> = txs
        .iter()
        .map(|t| {
            (t["context"]["request"]["url"]["pathname"].as_str().unwrap().to_string(), t["trace_id"].as_str().unwrap())
        })
        .collect();
    for (i, body) in bodies.iter().enumerate() {
        let trace = body.rsplit(' ').next().unwrap();
        assert_eq!(trace, trace_of_path[&format!("/items/{i}")], "request {i}");
    }
    assert_eq!(agent.stats().dropped.total(), 0);
}

#[test]
fn a_client_that_goes_away_ends_its_transaction() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let started = std::sync::Arc::new(started_tx);
    let s2 = started.clone();
    let router = Router::new()
        .route(
            "/slow",
            get(move || {
                let started = started.clone();
                async move {
                    let _ = started.lock().unwrap().send(());
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "too late"
                }
            }),
        )
        .route(
            "/stream",
            get(move || {
                let started = s2.clone();
                async move {
                    let _ = started.lock().unwrap().send(());
                    // A body that sends one chunk and then never ends.
                    let chunks = one_chunk_then_pending(started);
                    axum::body::Body::from_stream(chunks)
                }
            }),
        );
    let addr = serve(&rt, &agent, router);

    // Before the handler answered.
    rt.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
        tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .await
            .map(|_| ())
            .unwrap();
        drop(stream);
    });
    let txs = wait_for_transactions(&agent, &sink, 1);
    let slow = named(&txs, "GET /slow");
    assert_eq!(slow["outcome"], "unknown");
    assert_eq!(slow["result"], "client disconnected");
    assert!(slow["context"]["response"].is_null(), "no response was sent");
    assert!(slow["duration"].as_f64().unwrap() < 30_000.0, "ended when the client left, not when the sleep did");

    // In the middle of a streamed body.
    rt.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /stream HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        drop(stream);
    });
    let txs = wait_for_transactions(&agent, &sink, 2);
    let stream = named(&txs, "GET /stream");
    assert_eq!(stream["result"], "HTTP 2xx");
    assert_eq!(stream["context"]["response"]["finished"], false);
    schemas().check_ndjson(&sink.ndjson());
}

/// One chunk, then pending forever.
fn one_chunk_then_pending<T: Send + 'static>(
    keep: T,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    use futures_util::StreamExt;
    futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"first chunk"))])
        .chain(futures_util::stream::pending())
        .map(move |chunk| {
            let _ = &keep;
            chunk
        })
}

async fn panics(headers: HeaderMap) -> &'static str {
    if headers.contains_key("x-boom") {
        panic!("handler exploded on purpose");
    }
    "fine"
}

#[test]
fn a_panicking_handler_gives_a_failed_transaction_and_an_error_with_or_without_catch_panic() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    // Without a catch-panic layer hyper's connection task unwinds and the connection closes.
    let bare = serve(&rt, &agent, Router::new().route("/boom", get(panics)));
    let caught = serve(
        &rt,
        &agent,
        Router::new().route("/caught", get(panics)).layer(tower_http::catch_panic::CatchPanicLayer::new()),
    );
    let client = reqwest::Client::new();
    let bare_result = rt.block_on(client.get(format!("http://{bare}/boom")).header("x-boom", "1").send());
    assert!(bare_result.is_err(), "the connection was closed by the panic");
    let caught_result = rt
        .block_on(
            client.get(format!("http://{caught}/caught?id=9")).header("x-boom", "1").header("x-api-key", "k").send(),
        )
        .unwrap();
    assert_eq!(caught_result.status(), 500);
    drop(rt.block_on(caught_result.bytes()));

    let txs = wait_for_transactions(&agent, &sink, 2);
    let errors = sink.errors();
    for name in ["GET /boom", "GET /caught"] {
        let tx = named(&txs, name);
        assert_eq!(tx["outcome"], "failure", "{tx:#}");
        assert_eq!(tx["result"], "HTTP 5xx");
        let error: Vec<&Value> = errors.iter().filter(|e| e["transaction_id"] == tx["id"]).collect();
        assert_eq!(error.len(), 1, "one error for {name}: {errors:#?}");
        assert_eq!(error[0]["exception"]["message"], "handler exploded on purpose");
        assert_eq!(error[0]["exception"]["handled"], false);
        assert!(error[0]["culprit"].as_str().unwrap().contains("tower_axum.rs"), "{:#}", error[0]);
        // Kibana's error page shows the request the error happened in.
        let request = &error[0]["context"]["request"];
        assert_eq!(request["method"], "GET", "{:#}", error[0]);
        assert_eq!(request["url"]["pathname"], name.trim_start_matches("GET "));
        assert_eq!(request["headers"]["x-boom"], "1");
    }
    let caught_error = errors.iter().find(|e| e["context"]["request"]["url"]["pathname"] == "/caught").unwrap();
    assert_eq!(caught_error["context"]["request"]["url"]["search"], "id=9");
    assert_eq!(caught_error["context"]["request"]["headers"]["x-api-key"], "[REDACTED]");
    schemas().check_ndjson(&sink.ndjson());
}

#[test]
fn the_context_is_not_left_on_worker_threads_between_polls() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let addr = serve(
        &rt,
        &agent,
        Router::new().route(
            "/yield",
            get(|| async {
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                "done"
            }),
        ),
    );
    rt.block_on(async { reqwest::get(format!("http://{addr}/yield")).await.unwrap().text().await.unwrap() });
    wait_for_transactions(&agent, &sink, 1);
    // Every worker thread, asked after the request: nothing is current there any more.
    let empty = rt.block_on(async {
        let probes: Vec<_> = (0..32).map(|_| tokio::spawn(async { Context::current().is_empty() })).collect();
        let mut all = true;
        for p in probes {
            all &= p.await.unwrap();
        }
        all
    });
    assert!(empty);
}
