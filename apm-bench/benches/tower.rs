//! Issue 20: what the tower layer adds to one request of a loopback axum service, beside the
//! same service with no instrumentation and beside the anchor, tower-http's `TraceLayer` with
//! `tracing-opentelemetry` (OTel SDK, batch exporter that counts and drops).
//!
//! `cargo bench -p apm-bench --bench tower` — criterion groups, then interleaved rounds whose
//! medians give the overheads and their ratio (the budget: ours ≤ 0.5× the anchor's),
//! then the same stacks called in process, without the network, for their CPU alone.
//!
//! Each request is one keep-alive HTTP/1.1 GET from hyper-util's client to `GET /users/{id}`,
//! answered by a handler that returns a short string; the server runs on a 2-worker tokio
//! runtime, the client on the bench thread's own current-thread runtime. Our layer records the
//! transaction with its request and response context (headers captured, sanitized); each agent
//! has its reporter thread, whose bench sink serializes every event to intake NDJSON, except
//! the `apm_dropped` variant's, which counts and drops events as the anchor's exporter does.
//!
//! `APM_BENCH_TOWER_PROFILE=<variant>` (e.g. `apm`) only sends 100 000 requests to that
//! variant's server, for a profiler (`perf record --call-graph dwarf`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use apm_bench::cpu::{process_cpu_time, thread_cpu_time};
use apm_bench::{apm, otel};
use apm_runtime::integrations::tower::ApmLayer;
use apm_runtime::Agent;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing_subscriber::layer::SubscriberExt;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<bytes::Bytes>>;

async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}")
}

fn router() -> Router {
    Router::new().route("/users/{id}", get(user))
}

/// One way of serving `GET /users/{id}`: a loopback server, and the same router to call in
/// process.
struct Variant {
    name: &'static str,
    addr: SocketAddr,
    router: Router,
}

struct Bench {
    server: tokio::runtime::Runtime,
    client_rt: tokio::runtime::Runtime,
    client: HttpClient,
    /// `none`, `none_control` (a second uninstrumented server: what the method cannot tell from
    /// zero), `apm`, `apm_no_headers`, `apm_dropped`, `trace_layer_otel` (the anchor).
    variants: Vec<Variant>,
    /// The agents besides the process's default one (which `apm` reports to).
    agents: Vec<Agent>,
}

fn serve(rt: &tokio::runtime::Runtime, router: Router) -> SocketAddr {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn setup() -> Bench {
    let _ = apm::agent(); // the process's default agent, whose sink serializes every event
    otel::init();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(otel::tracer().clone()));
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");

    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let variant = |name, router: Router| Variant { name, addr: serve(&server, router.clone()), router };
    // An ApmLayer on an agent of its own, set up with `config`.
    let mut agents = Vec::new();
    let mut own_agent = |name, config: apm_runtime::ConfigBuilder, sink: apm::BenchSink| {
        let agent = Agent::builder().config(config.build().unwrap()).sink(sink).build().unwrap();
        let _default = agent.set_default();
        let v = variant(name, router().layer(ApmLayer::new()));
        agents.push(agent);
        v
    };
    let config = || apm_runtime::Config::builder().service_name("apm-bench");
    let variants = vec![
        variant("none", router()),
        variant("none_control", router()),
        variant("apm", router().layer(ApmLayer::new())),
        // ELASTIC_APM_CAPTURE_HEADERS=false: what recording the headers costs (the anchor
        // records none).
        own_agent("apm_no_headers", config().capture_headers(false), apm::BenchSink::default()),
        // Events handed to a sink that drops them, as the anchor's exporter drops its spans:
        // the same work on both sides, up to the hand-off.
        own_agent("apm_dropped", config(), apm::BenchSink::discarding()),
        variant("trace_layer_otel", router().layer(tower_http::trace::TraceLayer::new_for_http())),
    ];
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = {
        let _entered = client_rt.enter();
        Client::builder(TokioExecutor::new()).build_http()
    };
    Bench { server, client_rt, client, variants, agents }
}

impl Bench {
    fn request(&self, addr: SocketAddr, id: u32) {
        self.client_rt.block_on(async {
            let uri: hyper::Uri = format!("http://{addr}/users/{id}").parse().unwrap();
            let response = self.client.get(uri).await.unwrap();
            assert!(response.status().is_success());
            std::hint::black_box(response.into_body().collect().await.unwrap());
        });
    }

    /// Mean time of one request over `n`.
    fn round(&self, addr: SocketAddr, n: u32) -> Duration {
        let start = Instant::now();
        for i in 0..n {
            self.request(addr, i);
        }
        start.elapsed() / n
    }

    /// One request handed straight to `router` on the bench thread, as hyper would hand it: an
    /// HTTP/1.1 GET with the `Host` header hyper-util's client sends.
    fn call_in_process(&self, router: &Router, id: u32) {
        use tower_service::Service;
        let req = http::Request::get(format!("/users/{id}"))
            .header(http::header::HOST, "127.0.0.1:3000")
            .body(axum::body::Body::empty())
            .unwrap();
        self.client_rt.block_on(async {
            let response = router.clone().call(req).await.unwrap();
            std::hint::black_box(response.into_body().collect().await.unwrap());
        });
    }

    /// Waits until every event so far is handed to its sink or exporter.
    fn flush(&self) {
        apm::flush();
        for agent in &self.agents {
            assert!(agent.flush(Duration::from_secs(30)), "agent flush timed out");
        }
        otel::flush();
    }

    /// CPU per request of `n` in-process calls, in ns: the calling thread's, and the whole
    /// process's until the events are handed to the sink or exporter (the reporter's and the
    /// exporter's threads included).
    fn in_process_round(&self, router: &Router, n: u32) -> (f64, f64) {
        let (process, thread) = (process_cpu_time(), thread_cpu_time());
        for i in 0..n {
            self.call_in_process(router, i);
        }
        let thread = thread_cpu_time() - thread;
        self.flush();
        let process = process_cpu_time() - process;
        (thread.as_secs_f64() * 1e9 / n as f64, process.as_secs_f64() * 1e9 / n as f64)
    }
}

/// CPU ticks (1/100 s) so far of this process's threads, grouped: the bench thread (the
/// client), the server's workers, our reporters, the OTel exporter.
fn thread_ticks() -> [f64; 4] {
    let mut out = [0.0; 4];
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        let group = match &stat[open + 1..close] {
            n if n.starts_with("tokio-rt-worker") => 1,
            n if n.starts_with("apm-reporter") => 2,
            n if n.starts_with("OpenTelemetry") => 3,
            _ => 0,
        };
        out[group] += ticks(11) + ticks(12); // utime, stime
    }
    out
}

fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Per-round differences to the first variant's (so a slow round moves every variant
/// together), median.
fn gap(m: &[Vec<f64>], i: usize) -> f64 {
    med(m[i].iter().zip(&m[0]).map(|(x, n)| x - n).collect())
}

fn bench(c: &mut Criterion) {
    let b = setup();
    let idx = |name: &str| b.variants.iter().position(|v| v.name == name).unwrap();
    if let Ok(only) = std::env::var("APM_BENCH_TOWER_PROFILE") {
        let addr = b.variants[idx(&only)].addr;
        let t = Instant::now();
        b.round(addr, 100_000);
        println!("{only}: {:.2} µs/request", t.elapsed().as_secs_f64() * 1e6 / 100_000.0);
        return;
    }
    // Warm every connection and code path.
    for v in &b.variants {
        b.round(v.addr, 500);
    }
    let mut group = c.benchmark_group("tower_request");
    group.measurement_time(Duration::from_secs(5));
    for v in b.variants.iter().filter(|v| v.name != "none_control") {
        let mut id = 0u32;
        group.bench_function(v.name, |bencher| {
            bencher.iter(|| {
                id = id.wrapping_add(1);
                b.request(v.addr, id)
            })
        });
    }
    group.finish();

    // Interleaved rounds: the machine's load drifts, so each round runs every variant back to
    // back, starting from a different one each round so that none always follows another.
    // Besides each request's latency, the process's CPU per request (client, server workers,
    // reporters, exporter) is measured, and which threads spent it.
    const ROUNDS: usize = 121;
    const PER_ROUND: u32 = 500;
    let n = b.variants.len();
    let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let mut by_thread = vec![[0.0; 4]; n];
    for round in 0..ROUNDS {
        for k in 0..n {
            let i = (round + k) % n;
            let (process, ticks) = (process_cpu_time(), thread_ticks());
            wall[i].push(b.round(b.variants[i].addr, PER_ROUND).as_secs_f64() * 1e6);
            cpu[i].push((process_cpu_time() - process).as_secs_f64() * 1e6 / PER_ROUND as f64);
            for (total, (after, before)) in by_thread[i].iter_mut().zip(thread_ticks().iter().zip(ticks)) {
                *total += after - before;
            }
        }
    }
    b.flush();
    let anchor = idx("trace_layer_otel");
    println!("\nloopback, interleaved rounds: {ROUNDS} x {PER_ROUND} requests per variant, medians");
    println!(
        "  {:<18} {:>10} {:>9} {:>6} {:>8} {:>9} {:>6}   CPU µs/request by thread: client, server, reporters, exporter",
        "variant", "µs/request", "overhead", "ratio", "CPU µs", "added", "ratio"
    );
    for (i, v) in b.variants.iter().enumerate() {
        let per_request = by_thread[i].map(|t| t * 1e4 / (ROUNDS as f64 * PER_ROUND as f64));
        println!(
            "  {:<18} {:>10.1} {:>9.2} {:>6.2} {:>8.2} {:>9.2} {:>6.2}   {:.1}, {:.1}, {:.1}, {:.1}",
            v.name,
            med(wall[i].clone()),
            gap(&wall, i),
            gap(&wall, i) / gap(&wall, anchor),
            med(cpu[i].clone()),
            gap(&cpu, i),
            gap(&cpu, i) / gap(&cpu, anchor),
            per_request[0],
            per_request[1],
            per_request[2],
            per_request[3],
        );
    }
    println!(
        "  events delivered: apm {}, otel spans {}, apm dropped {}",
        apm::DELIVERED.load(std::sync::atomic::Ordering::Relaxed),
        otel::DELIVERED.load(std::sync::atomic::Ordering::Relaxed),
        apm::dropped() + b.agents.iter().map(|a| a.stats().dropped.total()).sum::<u64>()
    );

    // In process: the same stacks called without the network, whose wake-ups dominate the
    // loopback figures on this VM; CPU per request, calling thread and whole process.
    let routed: Vec<&Variant> = b.variants.iter().filter(|v| v.name != "none_control").collect();
    let (mut thread, mut process) = (vec![Vec::new(); routed.len()], vec![Vec::new(); routed.len()]);
    for v in &routed {
        b.in_process_round(&v.router, 2000);
    }
    for _ in 0..31 {
        for (i, v) in routed.iter().enumerate() {
            let (t, p) = b.in_process_round(&v.router, 2000);
            thread[i].push(t);
            process[i].push(p);
        }
    }
    let anchor = routed.len() - 1;
    println!("\nin process (no network): 31 x 2000 requests per variant, medians, ns of CPU per request");
    println!(
        "  {:<18} {:>14} {:>7} {:>6} {:>14} {:>7} {:>6}",
        "variant", "calling thread", "added", "ratio", "whole process", "added", "ratio"
    );
    for (i, v) in routed.iter().enumerate() {
        println!(
            "  {:<18} {:>14.0} {:>7.0} {:>6.2} {:>14.0} {:>7.0} {:>6.2}",
            v.name,
            med(thread[i].clone()),
            gap(&thread, i),
            gap(&thread, i) / gap(&thread, anchor),
            med(process[i].clone()),
            gap(&process, i),
            gap(&process, i) / gap(&process, anchor),
        );
    }
    drop(b.server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
