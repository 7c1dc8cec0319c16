//! A short job's events survive a server that is briefly unavailable when the agent shuts down
//! (a rolling restart's 503), and shutdown stays bounded when the server never recovers, hangs
//! or is down.

mod support;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use apm_runtime::{Agent, Config, Span};
use support::intake::{Action, IntakeServer};

/// The agent's own lines, through the `log` facade: the shutdown says there what it could not
/// deliver and why, from the agent's final `Stats`.
struct Lines(Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "apm"
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn lines() -> &'static Lines {
    static LINES: OnceLock<&'static Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Lines = Box::leak(Box::new(Lines(Mutex::new(Vec::new()))));
        log::set_logger(lines).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        lines
    })
}

/// The shutdown's account of the undelivered events, one line per agent that lost any.
fn undelivered() -> Vec<String> {
    lines().0.lock().unwrap().iter().filter(|l| l.contains("could not be delivered")).cloned().collect()
}

/// The default shutdown timeout.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// An agent whose requests stay open for the whole job, so everything goes out at shutdown.
fn agent_for(url: &str) -> Agent {
    let config = Config::builder()
        .service_name("short-job")
        .server_url(url)
        .cloud_provider(apm_runtime::CloudProvider::None)
        .api_request_time(Duration::from_secs(60))
        .shutdown_timeout(SHUTDOWN)
        // The job's events only: no metricsets at shutdown to count.
        .metrics_interval(Duration::ZERO)
        .build()
        .unwrap();
    Agent::builder().config(config).build().unwrap()
}

/// The job: one transaction with four spans, five events.
fn job(agent: &Agent) -> u64 {
    let tx = agent.transaction("nightly export").start();
    tx.context().in_scope(|| (0..4).for_each(|i| Span::start(format!("step {i}")).end()));
    tx.end();
    5
}

/// Drops the agent and returns how long that took.
fn shut_down(agent: Agent) -> Duration {
    let started = Instant::now();
    drop(agent);
    started.elapsed()
}

#[test]
fn a_503_at_exit_then_ok_delivers_the_whole_job() {
    let server = IntakeServer::start();
    server.script(&[Action::Status(503)], Action::Accept);
    let agent = agent_for(&server.url());
    let events = job(&agent);
    let took = shut_down(agent);
    assert_eq!(server.accepted_events().len() as u64, events);
    let actions: Vec<Action> = server.requests().iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Status(503), Action::Accept]);
    assert!(took < Duration::from_millis(850), "the first retry is at once, not after ~1 s: {took:?}");
}

#[test]
fn two_503s_then_ok_within_the_budget_deliver_the_whole_job_once() {
    let server = IntakeServer::start();
    server.script(&[Action::Status(503), Action::Status(503)], Action::Accept);
    let agent = agent_for(&server.url());
    let events = job(&agent);
    let took = shut_down(agent);
    assert_eq!(server.accepted_events().len() as u64, events, "each event once");
    assert_eq!(server.requests().len(), 3);
    assert!(took < SHUTDOWN, "{took:?}");
}

#[test]
fn a_flush_rides_out_a_503_too() {
    let server = IntakeServer::start();
    server.script(&[Action::Status(503), Action::Status(503)], Action::Accept);
    let agent = agent_for(&server.url());
    let events = job(&agent);
    assert!(agent.flush(Duration::from_secs(5)));
    let stats = agent.stats();
    assert_eq!((stats.queued, stats.sent, stats.dropped.total()), (events, events, 0), "{stats:?}");
    assert_eq!(server.accepted_events().len() as u64, events);
}

#[test]
fn shutdown_is_bounded_when_the_server_never_recovers_hangs_or_is_down() {
    let unavailable = IntakeServer::start();
    unavailable.script(&[], Action::Status(503));
    let hanging = IntakeServer::start();
    hanging.script(&[], Action::Hang);
    let down = format!("http://127.0.0.1:{}", IntakeServer::reserve_port());
    let cases = [("503 forever", unavailable.url()), ("hanging", hanging.url()), ("down", down)];
    lines();
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(case, url)| {
            std::thread::spawn(move || {
                let agent = agent_for(&url);
                job(&agent);
                (case, shut_down(agent))
            })
        })
        .collect();
    for handle in handles {
        let (case, took) = handle.join().unwrap();
        assert!(took < SHUTDOWN + Duration::from_secs(1), "{case}: {took:?}");
    }
    // Every event is accounted for, with its reason, by the time the agent is gone: the
    // reporter answered within the timeout, with nothing left in flight.
    let accounts = undelivered();
    assert_eq!(accounts.len(), 3, "{accounts:#?}");
    for account in &accounts {
        assert!(account.starts_with("5 of 5 events could not be delivered: 5 failed to send"), "{account}");
        assert!(!account.contains("in flight"), "{account}");
    }
    // It kept trying until close to the deadline, not only once.
    let attempts = unavailable.requests().len();
    assert!(attempts >= 3, "{attempts} attempts");
    assert!(unavailable.accepted_events().is_empty() && hanging.accepted_events().is_empty());
}
