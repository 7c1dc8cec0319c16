//! Issue 20: what the tower layer adds to one request of a loopback axum service, beside the
//! same service with no instrumentation and beside the anchor, tower-http's `TraceLayer` with
//! `tracing-opentelemetry` (OTel SDK, batch exporter that counts and drops).
//!
//! `cargo bench -p apm-bench --bench tower` — criterion groups, then interleaved rounds whose
//! medians give the overheads and their ratio (the budget: ours ≤ 0.5× the anchor's).
//!
//! Each request is one keep-alive HTTP/1.1 GET from hyper-util's client to `GET /users/{id}`,
//! answered by a handler that returns a short string; the server runs on a 2-worker tokio
//! runtime, the client on the bench thread's own current-thread runtime. Our layer records the
//! transaction with its request and response context (headers captured, sanitized) into the
//! bench sink, which serializes every event to intake NDJSON.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use apm_bench::{apm, otel};
use apm_runtime::integrations::tower::ApmLayer;
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

struct Bench {
    server: tokio::runtime::Runtime,
    client_rt: tokio::runtime::Runtime,
    client: HttpClient,
    plain: SocketAddr,
    apm: SocketAddr,
    apm_no_headers: SocketAddr,
    anchor: SocketAddr,
    _no_headers_agent: apm_runtime::Agent,
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
    let plain = serve(&server, router());
    let apm = serve(&server, router().layer(ApmLayer::new()));
    let anchor = serve(&server, router().layer(tower_http::trace::TraceLayer::new_for_http()));
    // The same layer without header capture (ELASTIC_APM_CAPTURE_HEADERS=false): what recording
    // the headers costs, since the anchor records none.
    let config = apm_runtime::Config::builder().service_name("apm-bench").capture_headers(false).build().unwrap();
    let no_headers_agent =
        apm_runtime::Agent::builder().config(config).sink(apm::BenchSink::default()).build().unwrap();
    let apm_no_headers = {
        let _default = no_headers_agent.set_default();
        serve(&server, router().layer(ApmLayer::new()))
    };
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = {
        let _entered = client_rt.enter();
        Client::builder(TokioExecutor::new()).build_http()
    };
    Bench { server, client_rt, client, plain, apm, apm_no_headers, anchor, _no_headers_agent: no_headers_agent }
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
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(c: &mut Criterion) {
    let b = setup();
    // Warm every connection and code path.
    for addr in [b.plain, b.apm, b.apm_no_headers, b.anchor] {
        b.round(addr, 500);
    }
    let mut group = c.benchmark_group("tower_request");
    group.measurement_time(Duration::from_secs(5));
    for (name, addr) in
        [("none", b.plain), ("apm", b.apm), ("apm_no_headers", b.apm_no_headers), ("trace_layer_otel", b.anchor)]
    {
        let mut id = 0u32;
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                id = id.wrapping_add(1);
                b.request(addr, id)
            })
        });
    }
    group.finish();

    // Interleaved rounds: the machine's load drifts, so each round runs the three back to back
    // and the medians are taken per variant.
    const ROUNDS: usize = 15;
    const PER_ROUND: u32 = 2000;
    let (mut none, mut ours, mut ours_nh, mut anchor) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        none.push(b.round(b.plain, PER_ROUND));
        ours.push(b.round(b.apm, PER_ROUND));
        ours_nh.push(b.round(b.apm_no_headers, PER_ROUND));
        anchor.push(b.round(b.anchor, PER_ROUND));
    }
    // Per-round overheads, so a slow round moves all three together.
    let gap = |v: &[Duration]| -> Vec<f64> {
        v.iter().zip(&none).map(|(x, n)| x.as_secs_f64() * 1e6 - n.as_secs_f64() * 1e6).collect()
    };
    let med = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (ours_gap, nh_gap, anchor_gap) = (med(gap(&ours)), med(gap(&ours_nh)), med(gap(&anchor)));
    apm::flush();
    otel::flush();
    println!("\ninterleaved rounds: {ROUNDS} x {PER_ROUND} requests per variant, medians");
    println!("  no instrumentation        {:>8.1} µs/request", median(none).as_secs_f64() * 1e6);
    println!("  apm ApmLayer              {:>8.1} µs/request", median(ours).as_secs_f64() * 1e6);
    println!("  apm, no header capture    {:>8.1} µs/request", median(ours_nh).as_secs_f64() * 1e6);
    println!("  TraceLayer + tracing-otel {:>8.1} µs/request", median(anchor).as_secs_f64() * 1e6);
    println!("  overhead: apm {ours_gap:.2} µs, anchor {anchor_gap:.2} µs, ratio {:.2}", ours_gap / anchor_gap);
    println!("  overhead without header capture: {nh_gap:.2} µs, ratio {:.2}", nh_gap / anchor_gap);
    println!(
        "  events delivered: apm {}, otel spans {}, apm dropped {}",
        apm::DELIVERED.load(std::sync::atomic::Ordering::Relaxed),
        otel::DELIVERED.load(std::sync::atomic::Ordering::Relaxed),
        apm::dropped()
    );
    drop(b.server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
