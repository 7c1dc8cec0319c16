//! The `tracing` bridge (issue 18) through one process-wide subscriber — the bridge layer and an
//! ECS `fmt` layer writing into memory — and one global agent writing to a `MemorySink`, as an
//! application sets them up. Every test names its own transactions and finds its events by
//! them, so the tests can run side by side.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use apm_runtime::integrations::tracing::{layer, EcsFormat};
use apm_runtime::report::MemorySink;
use apm_runtime::{propagate, span, transaction, Agent, Context};
use serde_json::Value;
use support::schemas;
use tracing_subscriber::layer::SubscriberExt;

/// The lines the ECS formatter wrote.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn json(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }
}

struct World {
    agent: Agent,
    sink: MemorySink,
    lines: Lines,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (agent, sink) = support::memory_agent(|c| c.service_name("bridge-test"));
        agent.install_global();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(layer().sqlx_db_system("postgresql"))
            .with(tracing_subscriber::fmt::layer().event_format(EcsFormat::new()).with_writer(move || writer.clone()));
        tracing::subscriber::set_global_default(subscriber).unwrap();
        World { agent, sink, lines }
    })
}

/// Everything of the trace whose transaction is named `name`, schema-checked: the transaction,
/// its spans, its errors.
fn trace_of(name: &str) -> (Value, Vec<Value>, Vec<Value>) {
    let w = world();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(w.agent.flush(Duration::from_secs(5)));
        if let Some(tx) = w.sink.transactions().into_iter().find(|t| t["name"] == name) {
            let trace = tx["trace_id"].clone();
            let spans: Vec<Value> = w.sink.spans().into_iter().filter(|s| s["trace_id"] == trace).collect();
            let errors: Vec<Value> = w.sink.errors().into_iter().filter(|e| e["trace_id"] == trace).collect();
            schemas().check("transaction", &tx).unwrap();
            for s in &spans {
                schemas().check("span", s).unwrap_or_else(|e| panic!("{e}: {s:#}"));
            }
            for e in &errors {
                schemas().check("error", e).unwrap_or_else(|er| panic!("{er}: {e:#}"));
            }
            return (tx, spans, errors);
        }
        assert!(std::time::Instant::now() < deadline, "no transaction {name:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    support::named(spans, name)
}

fn all_named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

#[span]
fn apm_step() {
    // A `tracing` span inside one of ours: its child.
    let _inner = tracing::info_span!("inside_apm_step").entered();
}

#[transaction]
#[propagate]
fn calling_thread_and_pools() {
    let outer = tracing::info_span!("outer", job = "nightly").entered();
    apm_step();
    let pool = threadpool::ThreadPool::new(2);
    for _ in 0..2 {
        // On the pool `tracing` has no parent; the context `#[propagate]` carried is it.
        pool.execute(|| {
            let _s = tracing::info_span!("on_threadpool").entered();
        });
    }
    pool.join();
    rayon::scope(|s| {
        for _ in 0..3 {
            s.spawn(|_| {
                let _s = tracing::info_span!("on_rayon").entered();
            });
        }
    });
    drop(outer);
}

#[test]
fn tracing_spans_join_the_transaction_on_the_calling_thread_and_on_pools() {
    world();
    calling_thread_and_pools();
    let (tx, spans, _) = trace_of("calling_thread_and_pools");
    let tx_id = &tx["id"];
    let outer = named(&spans, "outer");
    assert_eq!(&outer["parent_id"], tx_id);
    assert_eq!(outer["otel"]["attributes"]["job"], "nightly");
    assert_eq!(outer["otel"]["attributes"]["level"], "info");
    assert_eq!(outer["otel"]["attributes"]["target"], "tracing_bridge");
    assert_eq!(outer["subtype"], "internal", "Elastic's name for a span of no known kind");
    // Our `#[span]` fn inside the `tracing` span is its child, and the `tracing` span inside
    // that fn is the fn's child.
    let step = named(&spans, "apm_step");
    assert_eq!(step["parent_id"], outer["id"]);
    assert_eq!(named(&spans, "inside_apm_step")["parent_id"], step["id"]);
    // The pool threads' spans sit under `outer`, which was current when the closures were made.
    for name in ["on_threadpool", "on_rayon"] {
        let on_pool = all_named(&spans, name);
        assert_eq!(on_pool.len(), if name == "on_rayon" { 3 } else { 2 });
        for s in on_pool {
            assert_eq!(s["parent_id"], outer["id"], "{name}: {s:#}");
            assert_eq!(s["sync"], false);
        }
    }
}

#[test]
fn tracing_spans_follow_a_tokio_spawn_wrapped_with_the_context() {
    world();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tx = apm_runtime::Transaction::builder("tokio_job").start();
    let ctx = tx.context();
    rt.block_on(ctx.clone().wrap_future(async {
        let task = tokio::spawn(Context::current().wrap_future(async {
            let span = tracing::info_span!("in_task");
            async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _child = tracing::debug_span!("in_task_child").entered();
            }
            .instrument_with(span)
            .await;
        }));
        task.await.unwrap();
    }));
    tx.end();
    let (tx, spans, _) = trace_of("tokio_job");
    let in_task = named(&spans, "in_task");
    assert_eq!(in_task["parent_id"], tx["id"]);
    assert_eq!(named(&spans, "in_task_child")["parent_id"], in_task["id"]);
}

/// `tracing::Instrument` without importing the trait into every test.
trait InstrumentWith: std::future::Future + Sized {
    fn instrument_with(self, span: tracing::Span) -> tracing::instrument::Instrumented<Self> {
        tracing::Instrument::instrument(self, span)
    }
}
impl<F: std::future::Future> InstrumentWith for F {}

#[test]
fn semantic_conventions_fill_elastics_db_and_http_fields() {
    world();
    let tx = apm_runtime::Transaction::builder("conventions").start();
    {
        let _a = tx.attach();
        let _db = tracing::info_span!(
            "SELECT shop.orders",
            db.system = "postgresql",
            db.statement = "SELECT id FROM orders WHERE customer = $1",
            db.name = "shop",
            server.address = "db.internal",
            server.port = 5432,
            otel.kind = "client",
        )
        .entered();
        drop(_db);
        let http = tracing::info_span!(
            "GET",
            http.request.method = "GET",
            url.full = "https://api.example.com/v1/rates?c=eur",
            http.response.status_code = tracing::field::Empty,
            otel.kind = "client",
        );
        http.record("http.response.status_code", 503);
        drop(http);
        // sqlx's query log, with the fields sqlx-core 0.9 gives it (`QueryLogger::finish`).
        tracing::debug!(
            target: "sqlx::query",
            summary = "select * from users …",
            db.statement = "\n\nselect * from users where id = $1\n",
            rows_affected = 0u64,
            rows_returned = 1u64,
            elapsed = ?Duration::from_millis(12),
            elapsed_secs = 0.012,
        );
    }
    tx.end();
    let (_, spans, _) = trace_of("conventions");
    let db = named(&spans, "SELECT shop.orders");
    assert_eq!(
        (db["type"].as_str(), db["subtype"].as_str(), db["action"].as_str()),
        (Some("db"), Some("postgresql"), Some("query"))
    );
    assert_eq!(db["context"]["db"]["statement"], "SELECT id FROM orders WHERE customer = $1");
    assert_eq!(db["context"]["db"]["type"], "sql");
    assert_eq!(db["context"]["db"]["instance"], "shop");
    assert_eq!(db["context"]["service"]["target"], serde_json::json!({"type": "postgresql", "name": "shop"}));
    assert_eq!(db["context"]["destination"]["service"]["resource"], "postgresql/shop");
    assert_eq!(db["context"]["destination"]["address"], "db.internal");
    assert_eq!(db["context"]["destination"]["port"], 5432);
    assert_eq!(db["otel"]["span_kind"], "CLIENT");

    let http = named(&spans, "GET");
    assert_eq!((http["type"].as_str(), http["subtype"].as_str()), (Some("external"), Some("http")));
    assert_eq!(http["context"]["http"]["url"], "https://api.example.com/v1/rates?c=eur");
    assert_eq!(http["context"]["http"]["status_code"], 503);
    assert_eq!(http["context"]["destination"]["service"]["resource"], "api.example.com:443");
    assert_eq!(http["outcome"], "failure");

    let sqlx = named(&spans, "select * from users");
    assert_eq!((sqlx["type"].as_str(), sqlx["subtype"].as_str()), (Some("db"), Some("postgresql")));
    assert_eq!(sqlx["context"]["db"]["statement"], "select * from users where id = $1");
    assert_eq!(sqlx["context"]["db"]["rows_affected"], 1);
    let ms = sqlx["duration"].as_f64().unwrap();
    assert!((11.0..100.0).contains(&ms), "backdated by the query's elapsed time: {ms} ms");
}

#[test]
fn a_tower_http_trace_layer_span_becomes_a_transaction() {
    use axum::routing::get;
    world();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let status = rt.block_on(async {
        let app = axum::Router::new()
            .route(
                "/bridge/{id}",
                get(|| async {
                    let _work = tracing::info_span!("render").entered();
                    "ok"
                }),
            )
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = reqwest::Client::new();
        client.get(format!("http://{addr}/bridge/7?full=1")).send().await.unwrap().status()
    });
    assert_eq!(status, 200);
    let (tx, spans, _) = trace_of("GET unknown route");
    assert_eq!(tx["type"], "request");
    assert_eq!(tx["result"], "HTTP 2xx");
    assert_eq!(tx["otel"]["span_kind"], "SERVER");
    assert_eq!(tx["outcome"], "success");
    assert_eq!(tx["context"]["request"]["method"], "GET");
    assert_eq!(tx["context"]["request"]["url"]["pathname"], "/bridge/7");
    assert_eq!(tx["context"]["request"]["url"]["search"], "full=1");
    assert_eq!(tx["context"]["response"]["status_code"], 200);
    assert_eq!(named(&spans, "render")["parent_id"], tx["id"]);
}

#[derive(Debug)]
struct Outer(Middle);
#[derive(Debug)]
struct Middle(std::num::ParseIntError);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("loading the order failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl std::fmt::Display for Middle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bad order id")
    }
}
impl std::error::Error for Middle {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn an_error_event_becomes_an_error_with_its_cause_and_the_log_line_carries_the_ids() {
    world();
    let tx = apm_runtime::Transaction::builder("erroring").start();
    {
        let _a = tx.attach();
        let span = tracing::info_span!("load_order", order = 7);
        let _in = span.enter();
        tracing::info!(step = 1, "loading order");
        let err = Outer(Middle("x7".parse::<u32>().unwrap_err()));
        tracing::error!(error = &err as &(dyn std::error::Error + 'static), order = 7, "order failed");
    }
    tx.end();
    let (tx, spans, errors) = trace_of("erroring");
    let load = named(&spans, "load_order");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    assert_eq!(e["parent_id"], load["id"]);
    assert_eq!(e["log"]["message"], "order failed");
    assert_eq!(e["log"]["level"], "error");
    assert_eq!(e["log"]["logger_name"], "tracing_bridge");
    assert_eq!(e["exception"]["type"], "Outer");
    assert_eq!(e["exception"]["message"], "loading the order failed");
    let causes = e["exception"]["cause"].as_array().unwrap();
    assert_eq!(causes[0]["message"], "bad order id");
    assert_eq!(causes[1]["message"], "invalid digit found in string");
    assert_eq!(causes[1]["type"], "core::num::error::ParseIntError");
    assert_eq!(e["context"]["tags"]["order"], 7.0);

    // The ECS lines logged in the span carry its ids, and the error's line its error id.
    let lines = world().lines.json();
    let info = lines.iter().find(|l| l["message"] == "loading order").expect("the info line");
    assert_eq!(info["trace.id"], tx["trace_id"]);
    assert_eq!(info["transaction.id"], tx["id"]);
    assert_eq!(info["span.id"], load["id"]);
    assert_eq!(info["log.level"], "info");
    assert_eq!(info["service.name"], "bridge-test");
    assert_eq!(info["step"], 1);
    let error_line = lines.iter().find(|l| l["message"] == "order failed").expect("the error line");
    assert_eq!(error_line["error.id"], e["id"]);
    assert_eq!(error_line["span.id"], load["id"]);
    assert!(info["@timestamp"].as_str().unwrap().ends_with('Z'));
}

/// A sink that, like an HTTP client with `tracing` inside, emits spans and an ERROR event
/// while it writes: on the reporter thread.
struct Chatty(MemorySink);

impl apm_runtime::report::Sink for Chatty {
    fn write(&mut self, event: &apm_runtime::Event, ctx: &apm_runtime::report::SinkContext<'_>) {
        let _span = tracing::info_span!("sink_write_span").entered();
        tracing::error!("sink_error_event");
        self.0.write(event, ctx);
    }
}

#[test]
fn the_agents_own_work_produces_no_spans_and_lines_outside_traces_have_no_ids() {
    world();
    tracing::info!("outside any trace");
    let lines = world().lines.json();
    let outside = lines.iter().find(|l| l["message"] == "outside any trace").unwrap();
    assert!(outside.get("trace.id").is_none() && outside.get("span.id").is_none(), "{outside}");

    let own = MemorySink::new();
    let agent = Agent::builder().sink(Chatty(own.clone())).build().unwrap();
    let tx = agent.transaction("watched_by_a_chatty_sink").start();
    tx.end();
    assert!(agent.flush(Duration::from_secs(5)));
    assert_eq!(own.transactions().len(), 1);
    assert!(world().agent.flush(Duration::from_secs(5)));
    for sink in [&own, &world().sink] {
        assert!(
            sink.transactions().iter().all(|t| t["name"] != "sink_write_span"),
            "no loop: {:#?}",
            sink.transactions()
        );
        assert!(
            sink.errors().iter().all(|e| e["log"]["message"] != "sink_error_event"),
            "no loop: {:#?}",
            sink.errors()
        );
    }
}
