//! The agent: builds the two halves (recording, `crate::record`, and delivery,
//! `crate::deliver`), connects them through the hand-off (`crate::handoff`), and decides which
//! agent is the default and when it shuts down.
//!
//! # Invariants
//! - The application never blocks on reporting: everything it hands over goes through the
//!   hand-off's non-blocking `Inlet`.
//! - An agent shuts down once: on the last owner's drop ([`Agent`] handle, or [`KEEPER`] for
//!   the process's default), at the process's exit, or on [`shutdown`], whichever comes first.
//!   Spans ended after that are counted as `shutdown`; no thread registers a ring with it.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::{CloudProvider, Config, ConfigError};
use crate::deliver::central_config::Poller;
use crate::deliver::cloud::Detection;
use crate::deliver::report::Sink;
use crate::deliver::reporter::{self, Reporting};
use crate::deliver::server::ServerInfo;
use crate::handoff::Stats;
use crate::model::container::Host;
use crate::model::metadata::Metadata;
use crate::record::recorder::{self, Recorder};
use crate::record::transaction::TransactionBuilder;

/// The APM agent: owns the reporter thread.
///
/// Dropping an agent shuts it down: it delivers what was queued, waiting at most
/// `ELASTIC_APM_SHUTDOWN_TIMEOUT`, and says in one line how many events could not be delivered,
/// if any. The process-wide default agent ([`crate::init`], [`Agent::install_global`]) is the
/// exception: dropping its handle only flushes, and it keeps reporting until the process exits
/// (`main` returning or [`std::process::exit`]: it is shut down then, within the same timeout)
/// or [`crate::shutdown`] is called. So `let _ = apm_runtime::init()?;` is safe.
///
/// ```
/// use apm_runtime::{Agent, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build()?;
/// let tx = agent.transaction("startup").start();
/// tx.end();
/// drop(agent); // flushes
/// assert_eq!(sink.transactions().len(), 1);
/// # Ok::<(), apm_runtime::ConfigError>(())
/// ```
pub struct Agent {
    pub(crate) inner: Arc<Recorder>,
    core: Arc<Core>,
}

/// What shuts an agent down when the last of its owners lets go: the [`Agent`] handle and, for
/// the process-wide default, [`KEEPER`].
struct Core {
    inner: Arc<Recorder>,
    reporter: Reporting,
    /// What asks the APM Server for its version and central configuration, when the agent
    /// reports to one.
    poller: Option<Poller>,
}

/// Configures an [`Agent`]. Made by [`Agent::builder`].
///
/// ```
/// let config = apm_runtime::Config::builder().service_name("svc").build().unwrap();
/// let agent = apm_runtime::Agent::builder()
///     .config(config)
///     .sink(apm_runtime::report::MemorySink::new())
///     .build()
///     .unwrap();
/// # drop(agent);
/// ```
#[must_use = "call .build() to start the agent"]
#[derive(Default)]
pub struct AgentBuilder {
    config: Option<Config>,
    sinks: Vec<Box<dyn Sink>>,
    /// `service.agent.activation_method`: how the application started the agent.
    activation_method: Option<&'static str>,
    /// Where the cloud metadata services are: the real ones unless a test says otherwise.
    cloud_endpoints: Option<crate::deliver::cloud::Endpoints>,
}

impl AgentBuilder {
    /// Uses `config` (default: [`Config::builder`]'s defaults; [`crate::init`] reads the
    /// environment).
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().transaction_max_spans(5u32).build().unwrap();
    /// let _b = apm_runtime::Agent::builder().config(config);
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds a sink. With several, each gets every event; [`Agent::stats`] counts the first
    /// one's deliveries. Without any, events go to the APM Server at `server_url`.
    ///
    /// ```
    /// let _b = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new());
    /// ```
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Asks fakes of the cloud metadata services instead of the real ones: for tests only (the
    /// real addresses are what every cloud uses). Base URLs, for AWS's IMDSv2, GCP's and
    /// Azure's metadata services.
    ///
    /// ```
    /// let agent = apm_runtime::Agent::builder()
    ///     .cloud_metadata_endpoints("http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9")
    ///     .sink(apm_runtime::report::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// # drop(agent);
    /// ```
    #[doc(hidden)]
    pub fn cloud_metadata_endpoints(mut self, aws: &str, gcp: &str, azure: &str) -> Self {
        let base = |url: &str| url.trim_end_matches('/').to_string();
        self.cloud_endpoints =
            Some(crate::deliver::cloud::Endpoints { aws: base(aws), gcp: base(gcp), azure: base(azure) });
        self
    }

    /// Starts the reporter thread and returns the agent (not yet the default: see
    /// [`Agent::set_default`] and [`Agent::install_global`]).
    ///
    /// ```
    /// let agent = apm_runtime::Agent::builder()
    ///     .sink(apm_runtime::report::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// # drop(agent);
    /// ```
    pub fn build(self) -> Result<Agent, ConfigError> {
        let config = match self.config {
            Some(c) => c,
            None => Config::builder().build()?,
        };
        crate::diagnostics::set_level(config.log_level());
        let mut sinks = self.sinks;
        let destination = match sinks.len() {
            0 if config.disable_send() => "sending nothing (ELASTIC_APM_DISABLE_SEND)".to_string(),
            0 => format!("sending to the APM Server at {}", config.server_url),
            n => format!("sending to {n} sink{} of the application's", if n == 1 { "" } else { "s" }),
        };
        if sinks.is_empty() && config.disable_send() {
            sinks.push(Box::new(crate::deliver::report::Discard));
        }
        // Only an agent that talks to an APM Server asks it for its version and for central
        // configuration (an application's own sinks may have no server behind them).
        let server = sinks.is_empty().then(|| Arc::new(ServerInfo::default()));
        if let Some(server) = &server {
            let intake = crate::deliver::report::intake::IntakeSink::new(&config)?;
            sinks.push(Box::new(intake.with_server(server.clone())));
        }
        crate::record::error::install_panic_hook();
        let (inlet, outlet) = crate::handoff::new(config.max_queue_size);
        // Only an agent that reports to an APM Server asks the cloud about the host: it is for
        // the server's metadata, and tests with their own sinks must not probe the network.
        let cloud = (server.is_some() && config.cloud_provider() != CloudProvider::None).then(|| Detection {
            provider: config.cloud_provider(),
            endpoints: self.cloud_endpoints.unwrap_or_default(),
        });
        let activation = self.activation_method.unwrap_or("builder");
        let metadata = Metadata::collect_on(&config, &Host::default(), Some(activation));
        let live = Arc::new(ArcSwap::from_pointee(config.clone()));
        let reporter = reporter::spawn(outlet, sinks, metadata, cloud, live.clone());
        inlet.connect(reporter.thread());
        let poller = server.map(|server| Poller::spawn(config.clone(), &live, server));
        let enabled = config.enabled;
        let inner = Arc::new(Recorder { config, live, enabled, inlet });
        let set: Vec<String> = inner
            .config
            .options()
            .filter(|o| o.source() != crate::config::ConfigSource::Default)
            .map(|o| o.to_string())
            .collect();
        crate::diagnostics::info!(
            "agent {} started: service {:?}, {}; options set: {}",
            crate::model::metadata::AGENT_VERSION,
            inner.config.service_name,
            destination,
            if set.is_empty() { "none (all defaults)".to_string() } else { set.join(", ") }
        );
        Ok(Agent { inner: inner.clone(), core: Arc::new(Core { inner, reporter, poller }) })
    }
}

/// Keeps the process-wide default agent running after its handle is dropped, until the process
/// exits, another agent is installed, or [`shutdown`] is called.
static KEEPER: Mutex<Option<Arc<Core>>> = Mutex::new(None);

/// Restores the previous thread default agent when dropped. Made by [`Agent::set_default`].
///
/// ```
/// let agent = apm_runtime::Agent::builder()
///     .sink(apm_runtime::report::MemorySink::new())
///     .build()
///     .unwrap();
/// let _guard = agent.set_default();
/// ```
#[must_use = "the default is reset as soon as the guard is dropped"]
pub struct DefaultGuard {
    previous: Option<Arc<Recorder>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        recorder::set_thread_default(self.previous.take());
    }
}

impl Agent {
    /// A builder for an agent configured in code.
    ///
    /// ```
    /// let agent = apm_runtime::Agent::builder()
    ///     .sink(apm_runtime::report::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// # drop(agent);
    /// ```
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// A builder for a transaction on this agent (regardless of the default agent).
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let tx = agent.transaction("GET /health").with_type("request").start();
    /// # drop(tx);
    /// ```
    pub fn transaction(&self, name: impl Into<Cow<'static, str>>) -> TransactionBuilder<'_> {
        TransactionBuilder::new(Some(&self.inner), name.into())
    }

    /// Makes this agent the one [`crate::Transaction::start`] and the macros use on the calling
    /// thread, until the guard drops. Tests use it to give each test its own agent and sink.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let _default = agent.set_default();
    /// assert!(apm_runtime::Transaction::start("t").trace_id().is_some());
    /// ```
    pub fn set_default(&self) -> DefaultGuard {
        let previous = recorder::set_thread_default(Some(self.inner.clone()));
        DefaultGuard { previous, _not_send: std::marker::PhantomData }
    }

    /// Makes this agent the process-wide default (what [`crate::init`] does). It stays the
    /// default, and keeps reporting, until the process exits, another agent is installed or
    /// [`crate::shutdown`] is called, also when this handle is dropped (which then only
    /// flushes): see [`Agent`].
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// agent.install_global();
    /// ```
    pub fn install_global(&self) {
        recorder::set_global(self.inner.clone());
        let replaced = KEEPER.lock().unwrap_or_else(|e| e.into_inner()).replace(self.core.clone());
        // Shut down outside the lock (if no handle is left): that waits for its reporter.
        drop(replaced);
        shutdown_at_exit();
    }

    /// The configuration the agent was built with (code and environment). What new
    /// transactions use is [`Agent::live_config`]: this, with central configuration applied.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert_eq!(agent.config().transaction_max_spans(), 500);
    /// ```
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The configuration in force now: [`Agent::config`] with the settings of central
    /// configuration (Kibana) applied over it, as the APM Server last sent them. Each new
    /// transaction reads it once.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert_eq!(agent.live_config().transaction_sample_rate(), agent.config().transaction_sample_rate());
    /// ```
    pub fn live_config(&self) -> Arc<Config> {
        self.inner.live.load_full()
    }

    /// Counts of events queued, sent and dropped (by reason).
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert_eq!(agent.stats().queued, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        let mut stats = self.inner.inlet.stats();
        stats.spans_without_transaction = crate::record::context::orphan_spans();
        stats
    }

    /// Delivers everything queued so far, waiting at most `timeout`. Returns `true` only when
    /// every event queued so far was accepted (acknowledged by the server, or written): none is
    /// still in flight and none was dropped during the flush. `false` means some were not: the
    /// server was unreachable, refused them, or `timeout` passed; [`Agent::stats`] tells how
    /// many and why (events a full queue refused were never queued: they are in
    /// `stats().dropped.queue_full`).
    ///
    /// When every sink [never blocks](crate::report::Sink::never_blocks), the calling thread
    /// drains the queues and flushes the sinks itself (after the reporter's drain in progress,
    /// if any), with no thread woken. Called from inside a sink, it returns `false` at once: the
    /// delivery in progress cannot wait for itself.
    ///
    /// "Queued" is every span, transaction and error that ended, on any thread, before the call
    /// (each thread's ring is drained as part of the flush): flush after joining the work whose
    /// spans you want sent.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert!(agent.flush(std::time::Duration::from_secs(1)));
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        if reporter::is_delivering() {
            return false;
        }
        self.core.reporter.flush(timeout)
    }
}

impl Core {
    /// Whether this is the process-wide default agent, kept by [`KEEPER`].
    fn is_kept(self: &Arc<Core>) -> bool {
        KEEPER.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|k| Arc::ptr_eq(k, self))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.core.is_kept() {
            // The default agent keeps running (see `Agent`): a dropped handle only flushes.
            self.core.reporter.flush(self.inner.config.shutdown_timeout);
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Core {
    /// Delivers what is queued (within the shutdown timeout) and stops the reporter; once, on
    /// the last owner's drop or at the process's exit, whichever comes first.
    fn shut_down(&self) {
        let inner = &self.inner;
        if !inner.inlet.shut_down() {
            return;
        }
        recorder::clear_global(inner);
        if let Some(poller) = &self.poller {
            poller.stop();
        }
        let timeout = inner.config.shutdown_timeout;
        let answer = self.reporter.shut_down(timeout);
        report_undelivered(&inner.inlet.counters.snapshot(), answer.is_none(), timeout);
    }
}

/// Says, in one line, how many events this agent could not deliver over its life and why: the
/// last thing a short job prints when its data did not arrive.
fn report_undelivered(stats: &Stats, timed_out: bool, timeout: Duration) {
    let d = &stats.dropped;
    let accounted = stats.sent + stats.compressed + d.send_failed + d.rejected;
    let in_flight = if timed_out { stats.queued.saturating_sub(accounted) } else { 0 };
    let lost = d.total() + in_flight;
    if lost == 0 {
        return;
    }
    let mut why = Vec::new();
    for (n, reason) in [
        (d.send_failed, "failed to send (the APM Server was unreachable, answered with an error or timed out)"),
        (d.rejected, "refused by the APM Server (a 4xx answer)"),
        (d.queue_full, "dropped because the queue was full (the reporter could not keep up)"),
        (d.shutdown, "ended after the agent shut down"),
    ] {
        if n > 0 {
            why.push(format!("{n} {reason}"));
        }
    }
    if in_flight > 0 {
        why.push(format!("{in_flight} still in flight when the shutdown timeout ({timeout:?}) passed"));
    }
    crate::diagnostics::warning!(
        "{lost} of {} events could not be delivered: {} (see Agent::stats)",
        stats.queued + d.queue_full + d.shutdown,
        why.join("; ")
    );
}

/// Shuts down the process-wide default agent ([`crate::init`], [`Agent::install_global`]):
/// delivers what is queued, within `ELASTIC_APM_SHUTDOWN_TIMEOUT`, then stops reporting. The
/// same happens by itself when the process exits; call this to stop earlier. Instrumented code
/// then records nothing (and says so once). A no-op when no default agent is installed.
///
/// ```
/// let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
/// agent.install_global();
/// drop(agent); // flushes; the default agent keeps reporting
/// apm_runtime::shutdown(); // now it stops
/// ```
pub fn shutdown() {
    let kept = KEEPER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(core) = kept {
        // Also when the application still holds the handle: it asked for the agent to stop.
        core.shut_down();
    }
}

/// Registers (once) a handler that shuts the default agent down when the process exits, so that
/// what a short job ended is delivered even when nobody keeps the agent's handle, and also
/// through `std::process::exit`.
fn shutdown_at_exit() {
    extern "C" fn at_exit() {
        // `try_lock`: a thread that held the lock when the process began to exit must not make
        // the exit hang.
        let kept = match KEEPER.try_lock() {
            Ok(mut k) => k.take(),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        // Now, even if a handle is still alive: `std::process::exit` runs no destructor.
        if let Some(core) = kept {
            core.shut_down();
        }
    }
    extern "C" {
        // C's `atexit`, in every libc Rust's std links against.
        fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `at_exit` is a plain function that lives as long as the program; it touches
        // only statics that are valid during exit, and catches nothing that could unwind out
        // of it (dropping `Core` does not panic: every lock it takes tolerates poisoning).
        unsafe { atexit(at_exit) };
    });
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("config", &self.inner.config).field("stats", &self.stats()).finish()
    }
}

/// Starts the agent from the `ELASTIC_APM_*` environment variables, reporting to the APM Server
/// at `ELASTIC_APM_SERVER_URL`, and makes it the process-wide default. It reports until the
/// process exits (then it delivers what was ended, within `ELASTIC_APM_SHUTDOWN_TIMEOUT`) or
/// [`shutdown`] is called; dropping the returned handle flushes. `let _ = init()?;` is fine.
///
/// ```no_run
/// fn main() -> Result<(), apm_runtime::ConfigError> {
///     let _agent = apm_runtime::init()?;
///     // … instrumented work …
///     Ok(())
/// }
/// ```
pub fn init() -> Result<Agent, ConfigError> {
    let mut builder = Agent::builder().config(Config::from_env()?);
    builder.activation_method = Some("init");
    let agent = builder.build()?;
    agent.install_global();
    Ok(agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disable_send_records_and_counts_everything_and_sends_nothing() {
        let config = Config::builder().disable_send(true).server_url("http://127.0.0.1:9").build().unwrap();
        let agent = Agent::builder().config(config).build().unwrap();
        let tx = agent.transaction("t").start();
        assert!(tx.is_sampled(), "still recording");
        tx.end();
        assert!(agent.flush(Duration::from_secs(5)), "nothing to wait for: no server is asked");
        assert_eq!((agent.stats().queued, agent.stats().sent), (1, 1));
    }

    #[test]
    fn recording_false_records_nothing() {
        let config = Config::builder().recording(false).build().unwrap();
        let agent = Agent::builder().config(config).sink(crate::report::MemorySink::new()).build().unwrap();
        let tx = agent.transaction("t").start();
        assert!(tx.trace_id().is_none(), "a no-op transaction");
        drop(tx);
        assert!(agent.flush(Duration::from_secs(5)));
        assert_eq!(agent.stats().queued, 0);
    }
}
