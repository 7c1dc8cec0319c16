//! The intake transport against a real HTTP server on loopback that decodes, validates and
//! can be told to misbehave.

mod support;

use std::time::{Duration, Instant};

use apm_runtime::{Agent, Config, ConfigBuilder, Span};
use support::intake::{Action, IntakeServer};

fn agent_for(url: &str, tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Agent {
    let config =
        // The loopback intake is the only server here: no cloud metadata service is asked.
        tweak(
            Config::builder()
                .service_name("transport-test")
                .service_version("1.0")
                .server_url(url)
                .cloud_provider(apm_runtime::CloudProvider::None),
        )
        .build()
        .unwrap();
    Agent::builder().config(config).build().unwrap()
}

/// One transaction with `spans` child spans: `spans + 1` events.
fn produce(agent: &Agent, spans: usize) {
    let tx = agent.transaction("batch").start();
    let ctx = tx.context();
    ctx.in_scope(|| (0..spans).for_each(|i| Span::start(format!("span {i}")).end()));
    tx.end();
}

#[test]
fn happy_path_with_secret_token() {
    let server = IntakeServer::start();
    let agent = agent_for(&server.url(), |c| c.secret_token("s3cr3t-token"));
    produce(&agent, 5);
    assert!(agent.flush(Duration::from_secs(10)));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.header("authorization"), Some("Bearer s3cr3t-token"));
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let ua = r.header("user-agent").unwrap();
    assert!(ua.starts_with("apm-agent-rust/") && ua.contains("(transport-test 1.0)"), "{ua}");
    assert_eq!(r.lines[0].0, "metadata");
    assert_eq!(r.lines[0].1["service"]["name"], "transport-test");
    assert_eq!(server.accepted_events().len(), 6);
    let stats = agent.stats();
    assert_eq!((stats.queued, stats.sent, stats.dropped.total()), (6, 6, 0));
}

#[test]
fn api_key_wins_over_secret_token() {
    let server = IntakeServer::start();
    let agent = agent_for(&server.url(), |c| c.secret_token("t").api_key("a2V5OnNlY3JldA=="));
    produce(&agent, 0);
    assert!(agent.flush(Duration::from_secs(10)));
    assert_eq!(server.requests()[0].header("authorization"), Some("ApiKey a2V5OnNlY3JldA=="));
}

#[test]
fn server_down_at_start_then_coming_up() {
    let port = IntakeServer::reserve_port();
    let agent = agent_for(&format!("http://127.0.0.1:{port}"), |c| c.api_request_time(Duration::from_millis(100)));
    produce(&agent, 3);
    // The first attempt is refused; the batch waits for a retry.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(agent.stats().sent, 0);
    let server = IntakeServer::start_on(port);
    produce(&agent, 2);
    assert!(server.wait_for(Duration::from_secs(15), |e| e.len() == 7), "{:?}", server.accepted_events().len());
    assert!(agent.flush(Duration::from_secs(10)));
    let stats = agent.stats();
    assert_eq!((stats.sent, stats.dropped.total()), (7, 0), "{stats:?}");
}

#[test]
fn retries_after_503_and_a_dropped_connection() {
    let server = IntakeServer::start();
    server.script(&[Action::Status(503), Action::Die], Action::Accept);
    let agent = agent_for(&server.url(), |c| c.api_request_time(Duration::from_millis(50)));
    produce(&agent, 4);
    assert!(server.wait_for(Duration::from_secs(20), |e| e.len() == 5));
    let requests = server.requests();
    assert_eq!(requests.iter().map(|r| r.action).collect::<Vec<_>>()[..2], [Action::Status(503), Action::Die]);
    assert!(agent.flush(Duration::from_secs(5)));
    assert_eq!(agent.stats().sent, 5);
    assert_eq!(agent.stats().dropped.total(), 0);
}

#[test]
fn client_errors_drop_the_batch_and_count_it() {
    for status in [401, 413] {
        let server = IntakeServer::start();
        server.script(&[Action::Status(status)], Action::Accept);
        let agent = agent_for(&server.url(), |c| c.secret_token("never-printed"));
        produce(&agent, 2);
        assert!(!agent.flush(Duration::from_secs(10)), "{status}: the server refused them: the flush says so");
        produce(&agent, 1);
        assert!(agent.flush(Duration::from_secs(10)));
        let stats = agent.stats();
        assert_eq!(stats.dropped.rejected, 3, "{status}: {stats:?}");
        assert_eq!(stats.sent, 2, "{status}: later batches still go through");
        assert_eq!(server.accepted_events().len(), 2);
    }
}

#[test]
fn a_hanging_server_never_slows_the_application_and_shutdown_is_bounded() {
    let server = IntakeServer::start();
    server.script(&[], Action::Hang);
    let agent = agent_for(&server.url(), |c| {
        c.api_request_time(Duration::from_millis(20))
            .server_timeout(Duration::from_secs(30))
            .shutdown_timeout(Duration::from_millis(500))
            .max_queue_size(100usize)
            .transaction_max_spans(100_000u32)
    });
    produce(&agent, 10);
    // Let the reporter get stuck in a request the server never answers.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server.requests().is_empty());

    // Span ends stay non-blocking enqueues: 20k of them take far less than the server timeout.
    let started = Instant::now();
    produce(&agent, 20_000);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "ending spans waited on the network: {took:?}");
    assert!(agent.stats().dropped.queue_full > 0, "the full queue drops instead of blocking");

    let started = Instant::now();
    drop(agent);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?} with a 500ms timeout");
}

#[test]
fn queue_overflow_is_counted_exactly() {
    let server = IntakeServer::start();
    server.script(&[], Action::Slow(Duration::from_millis(100)));
    let agent = agent_for(&server.url(), |c| {
        c.max_queue_size(16usize).api_request_size(1024u64).api_request_time(Duration::from_millis(10))
    });
    let produced = 3_000u64;
    for _ in 0..(produced / 100) {
        produce(&agent, 99);
    }
    assert!(agent.flush(Duration::from_secs(30)), "flush finished");
    let stats = agent.stats();
    assert!(stats.dropped.queue_full > 0, "{stats:?}");
    assert_eq!(stats.sent + stats.dropped.total(), produced, "{stats:?}");
    assert_eq!(stats.queued + stats.dropped.queue_full + stats.dropped.shutdown, produced);
    assert_eq!(server.accepted_events().len() as u64, stats.sent);
}

#[test]
fn requests_close_by_size() {
    let server = IntakeServer::start();
    let agent = agent_for(&server.url(), |c| {
        c.api_request_size(2048u64).max_queue_size(10_000usize).transaction_max_spans(5_000u32)
    });
    produce(&agent, 2_000);
    assert!(agent.flush(Duration::from_secs(20)));
    let requests = server.requests();
    assert!(requests.len() > 3, "2001 events in 2 KiB requests: {} requests", requests.len());
    // A request closes at the first event that takes it past the limit, so it may exceed the
    // limit by what one event and the gzip trailer add, never by much more.
    for r in &requests {
        assert_eq!(r.lines[0].0, "metadata", "every request opens with metadata");
        assert!(r.wire_bytes < 2048 + 1024, "{} bytes", r.wire_bytes);
    }
    assert!(requests[..requests.len() - 1].iter().all(|r| r.wire_bytes >= 2048), "closed at the limit, not early");
    assert_eq!(server.accepted_events().len(), 2_001, "{:?}", agent.stats());
}

#[test]
fn requests_close_by_time_without_a_flush() {
    let server = IntakeServer::start();
    let agent = agent_for(&server.url(), |c| c.api_request_time(Duration::from_millis(200)));
    produce(&agent, 1);
    assert!(server.wait_for(Duration::from_secs(5), |e| e.len() == 2), "sent by the timer, not by flush");
    produce(&agent, 1);
    assert!(server.wait_for(Duration::from_secs(5), |e| e.len() == 4));
    assert_eq!(server.requests().len(), 2);
}
