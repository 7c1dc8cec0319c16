//! The agent's life as a program sees it: errors outside any transaction, what `flush` and
//! `stats` promise, the process-wide agent that outlives its handle and is flushed at exit, and
//! the lines a developer reads when something is off. The process-level cases run this test
//! binary again as a child (one scenario each, chosen by `APM_LIFECYCLE_CHILD`), so that exiting,
//! `std::process::exit` and stderr are the real ones.

mod support;

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apm_runtime::report::{MemorySink, Sink, SinkContext};
use apm_runtime::{capture_error, Agent, Config, Context, Event, Span, Transaction};
use support::intake::IntakeServer;
use support::{flush, memory_agent, schemas};

#[test]
fn an_error_outside_any_transaction_is_reported_on_a_trace_of_its_own() {
    let (agent, sink) = memory_agent(|c| c);
    let _default = agent.set_default();
    let err = "x".parse::<u8>().unwrap_err();
    let id = capture_error(&err).expect("reported to the default agent");
    flush(&agent);
    let errors = sink.errors();
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    schemas().check("error", e).unwrap();
    assert_eq!(e["id"], id.to_string());
    assert_eq!(e["exception"]["type"], "core::num::error::ParseIntError");
    assert!(e["trace_id"].is_string() && e["parent_id"].is_string(), "{e}");
    assert!(e.get("transaction_id").is_none() && e.get("transaction").is_none(), "no transaction fields: {e}");
}

#[test]
fn a_panic_outside_any_transaction_is_reported_unhandled() {
    let (agent, sink) = memory_agent(|c| c);
    let inner = std::thread::scope(|s| {
        s.spawn(|| {
            let _default = agent.set_default();
            std::panic::catch_unwind(|| panic!("config file missing")).unwrap_err();
        })
        .join()
    });
    assert!(inner.is_ok());
    flush(&agent);
    let errors = sink.errors();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = &errors[0];
    schemas().check("error", e).unwrap();
    assert_eq!(e["exception"]["message"], "config file missing");
    assert_eq!(e["exception"]["handled"], false);
    assert!(e["culprit"].as_str().unwrap().contains("tests/lifecycle.rs"), "{e}");
    assert!(e.get("transaction").is_none());
}

#[test]
fn flush_is_true_only_when_everything_queued_was_accepted() {
    let (agent, _sink) = memory_agent(|c| c);
    agent.transaction("ok").start().end();
    assert!(agent.flush(Duration::from_secs(5)));

    // The server is down: nothing can be accepted, and the flush says so within its timeout.
    let port = IntakeServer::reserve_port();
    let config = Config::builder()
        .server_url(format!("http://127.0.0.1:{port}"))
        .cloud_provider(apm_runtime::CloudProvider::None)
        .build()
        .unwrap();
    let agent = Agent::builder().config(config).build().unwrap();
    for _ in 0..5 {
        agent.transaction("lost").start().end();
    }
    let started = Instant::now();
    assert!(!agent.flush(Duration::from_secs(2)), "nothing was accepted");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let stats = agent.stats();
    assert_eq!(stats.queued, 5);
    assert_eq!(stats.sent, 0);
}

/// Blocks in its first `write` until released, holding the reporter (and so the drains).
struct Gate {
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
    first: bool,
}

impl Sink for Gate {
    fn write(&mut self, _: &Event, ctx: &SinkContext<'_>) {
        if std::mem::take(&mut self.first) {
            let _ = self.entered.send(());
            let _ = self.release.recv();
        }
        ctx.record_sent(1);
    }
}

#[test]
fn stats_count_spans_still_waiting_in_the_threads_rings() {
    let (entered_tx, entered) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    let agent = Agent::builder().sink(Gate { entered: entered_tx, release, first: true }).build().unwrap();
    agent.transaction("holds the reporter").start().end();
    entered.recv_timeout(Duration::from_secs(10)).expect("the reporter is writing");
    // The reporter is stuck in the sink: these spans stay in this thread's ring.
    let tx = agent.transaction("t").start();
    tx.context().in_scope(|| (0..35).for_each(|_| Span::start("s").end()));
    let stats = agent.stats();
    assert_eq!(stats.queued, 1 + 35, "the transaction being written and the 35 spans in the ring: {stats:?}");
    assert_eq!(stats.sent, 0);
    release_tx.send(()).unwrap();
    tx.end();
    flush(&agent);
    let stats = agent.stats();
    assert_eq!((stats.queued, stats.sent), (37, 37), "{stats:?}");
}

#[test]
fn spans_without_a_transaction_are_counted() {
    let (agent, _sink) = memory_agent(|c| c);
    let before = agent.stats().spans_without_transaction;
    // A thread of its own: it publishes its whole count when it exits.
    std::thread::spawn(|| {
        for _ in 0..3000 {
            Span::start("lost").end();
        }
        Span::in_scope("lost too", || ());
    })
    .join()
    .unwrap();
    let counted = agent.stats().spans_without_transaction - before;
    // Other tests of this binary may add their own meanwhile; never fewer than ours.
    assert!(counted >= 3001, "{counted}");
}

/// Runs this test binary again with `scenario` as the only test, returning its stderr (and
/// asserting it succeeded).
fn run_child(scenario: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "scenario", "--nocapture", "--test-threads=1"]).env("APM_LIFECYCLE_CHILD", scenario);
    // The loopback intake is the only server here: no cloud metadata service is asked.
    cmd.env("ELASTIC_APM_CLOUD_PROVIDER", "none");
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("ELASTIC_APM_") && !env.iter().any(|(e, _)| *e == k) {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child {scenario} failed: {}\n{stderr}", out.status);
    stderr
}

#[apm_runtime::transaction(name = "short job", type = "job")]
fn short_job() {
    let _span = Span::start("step");
}

/// The scenarios the tests above run in a child process; a no-op when run as an ordinary test.
#[test]
fn scenario() {
    match std::env::var("APM_LIFECYCLE_CHILD").as_deref() {
        // The first day: instrumented code, but `init()` was forgotten.
        Ok("no-agent") => {
            short_job();
            short_job();
            assert!(capture_error(&std::io::Error::other("lost")).is_none());
        }
        // An outgoing request with no agent: it still goes out, and the fix is named once.
        Ok("no-agent-request") => {
            use apm_runtime::integrations::reqwest::SendTraced;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/", listener.local_addr().unwrap());
            let server = std::thread::spawn(move || {
                use std::io::{Read, Write};
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).unwrap();
                conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").unwrap();
            });
            let status = reqwest::blocking::Client::new().get(&url).send_traced().unwrap().status();
            assert_eq!(status.as_u16(), 204);
            server.join().unwrap();
        }
        // The agent's handle is dropped at once; the process-wide agent still reports, and what
        // the job ended is delivered when the process exits.
        Ok("let-underscore") => {
            let _ = apm_runtime::init().unwrap();
            short_job();
            assert!(!Context::current().is_sampled(), "nothing left attached");
        }
        // The same through `std::process::exit`, which skips every destructor.
        Ok("process-exit") => {
            let _agent = apm_runtime::init().unwrap();
            short_job();
            std::process::exit(0);
        }
        // The server is down: the job's events cannot be delivered, and the last line says so.
        Ok("server-down") => {
            let _ = apm_runtime::init().unwrap();
            short_job();
        }
        // Dropping the default agent's handle only flushes; `shutdown()` stops it.
        Ok("keeper") => {
            let sink = MemorySink::new();
            let agent = Agent::builder().sink(sink.clone()).build().unwrap();
            agent.install_global();
            drop(agent);
            short_job();
            assert!(Transaction::start("still reporting").trace_id().is_some(), "the default agent is installed");
            apm_runtime::shutdown();
            assert_eq!(sink.transactions().len(), 2, "delivered at shutdown");
            assert!(Transaction::start("after").trace_id().is_none(), "no default agent after shutdown");
        }
        _ => {}
    }
}

#[test]
fn with_no_agent_installed_the_first_transaction_says_how_to_fix_it_once() {
    let stderr = run_child("no-agent", &[]);
    let says = stderr.matches("no APM agent is installed").count();
    assert_eq!(says, 1, "said once: {stderr}");
    assert!(stderr.contains("apm_runtime::init()") && stderr.contains("install_global"), "{stderr}");
    assert!(stderr.contains("\"short job\""), "names what ran: {stderr}");
}

#[test]
fn with_no_agent_installed_an_outgoing_request_says_how_to_fix_it() {
    let stderr = run_child("no-agent-request", &[]);
    assert_eq!(stderr.matches("no APM agent is installed").count(), 1, "{stderr}");
    assert!(stderr.contains("send_traced"), "{stderr}");
}

#[test]
fn a_dropped_init_handle_still_reports_and_delivers_at_exit() {
    for scenario in ["let-underscore", "process-exit"] {
        let intake = IntakeServer::start();
        let stderr =
            run_child(scenario, &[("ELASTIC_APM_SERVER_URL", &intake.url()), ("ELASTIC_APM_SERVICE_NAME", "job")]);
        let events = intake.accepted_events();
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert!(kinds.contains(&"transaction") && kinds.contains(&"span"), "{scenario}: {kinds:?}\n{stderr}");
        assert!(!stderr.contains("could not be delivered"), "{scenario}: {stderr}");
    }
}

#[test]
fn shutdown_says_in_one_line_what_could_not_be_delivered() {
    let port = IntakeServer::reserve_port();
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let stderr = run_child(
        "server-down",
        // The job's events only: no metricsets at shutdown to count.
        &[
            ("ELASTIC_APM_SERVER_URL", &url),
            ("ELASTIC_APM_SHUTDOWN_TIMEOUT", "1s"),
            ("ELASTIC_APM_METRICS_INTERVAL", "0"),
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("could not be delivered")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("2 of 2 events"), "{}", lines[0]);
}

#[test]
fn the_default_agent_outlives_its_handle_until_shutdown() {
    // In a child: the process-wide default is shared by every test of a binary.
    let stderr = run_child("keeper", &[]);
    assert!(!stderr.contains("could not be delivered"), "{stderr}");
}

#[test]
fn at_info_the_agent_names_itself_its_server_and_every_option_set_with_its_source_and_no_secret() {
    let intake = IntakeServer::start();
    let env = [
        ("ELASTIC_APM_SERVER_URL", intake.url()),
        ("ELASTIC_APM_SERVICE_NAME", "job".to_string()),
        ("ELASTIC_APM_LOG_LEVEL", "info".to_string()),
        ("ELASTIC_APM_SECRET_TOKEN", "hunter2-token".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let stderr = run_child("let-underscore", &env);
    let started: Vec<&str> = stderr.lines().filter(|l| l.contains(" started: ")).collect();
    assert_eq!(started.len(), 1, "{stderr}");
    let line = started[0];
    assert!(line.contains(&format!("sending to the APM Server at {}", intake.url())), "{line}");
    assert!(line.contains("service \"job\""), "{line}");
    for option in [
        "ELASTIC_APM_LOG_LEVEL=info (environment)",
        "ELASTIC_APM_SECRET_TOKEN=[REDACTED] (environment)",
        "ELASTIC_APM_CLOUD_PROVIDER=none (environment)",
    ] {
        assert!(line.contains(option), "{option} missing: {line}");
    }
    assert!(!stderr.contains("hunter2"), "a secret was printed: {stderr}");
    // At the default level (warning) the same run says nothing.
    let quiet = run_child("let-underscore", &env[..3 - 1]);
    assert!(!quiet.contains(" started: "), "{quiet}");
}
