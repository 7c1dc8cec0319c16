//! Issue 4: what ending a span costs the application thread when the APM Server is up, down
//! (connection refused) or hanging (accepts, never answers), all with the real intake transport.
//! The three must cost the same: the application only ever enqueues (or drops and counts).
//!
//! `cargo bench -p apm-bench --bench server_state`

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use apm_runtime::{Agent, Config, Span};
use criterion::{criterion_group, criterion_main, Criterion};

/// A loopback server that reads each request and answers 202, or never answers.
fn server(answer: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = vec![0u8; 64 * 1024];
                // Good enough for the benchmark: answer after each read that ends a request's
                // bytes for now; the agent does not pipeline.
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    if answer {
                        let _ = conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
                    }
                }
            });
        }
    });
    url
}

fn agent(url: &str) -> Agent {
    let config = Config::builder()
        .service_name("bench")
        .server_url(url)
        .cloud_provider(apm_runtime::CloudProvider::None)
        .api_request_time(Duration::from_millis(50))
        .server_timeout(Duration::from_secs(30))
        .shutdown_timeout(Duration::from_millis(100))
        .transaction_max_spans(u32::MAX)
        .build()
        .unwrap();
    Agent::builder().config(config).build().unwrap()
}

fn bench(c: &mut Criterion) {
    let down = format!("http://127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let mut group = c.benchmark_group("span end by server state");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (state, url) in [("up", server(true)), ("down", down), ("hanging", server(false))] {
        let agent = agent(&url);
        let tx = agent.transaction("bench").start();
        let _active = tx.attach();
        let up = state == "up";
        group.bench_function(state, |b| {
            b.iter_custom(|iters| {
                // Timed: only the span ends. Untimed, with the server up: a flush every 1000,
                // so the queue never fills and every end is a real enqueue. Down or hanging,
                // nothing drains: the queue fills and ends become counted drops. Both paths
                // must cost the application the same.
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(1000);
                    let start = std::time::Instant::now();
                    for _ in 0..n {
                        Span::start("child").end();
                    }
                    timed += start.elapsed();
                    left -= n;
                    if up {
                        agent.flush(Duration::from_secs(5));
                    }
                }
                timed
            })
        });
        let stats = agent.stats();
        eprintln!(
            "{state}: queued {} sent {} dropped {} (queue full {}, send failed {})",
            stats.queued,
            stats.sent,
            stats.dropped.total(),
            stats.dropped.queue_full,
            stats.dropped.send_failed
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
