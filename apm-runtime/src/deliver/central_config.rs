//! Central configuration: the settings a user changes in Kibana (APM → Settings → Agent
//! configuration), fetched from the APM Server and applied to new transactions.
//!
//! A thread of its own (`apm-central-config`) polls `GET {server_url}/config/v1/agents` with
//! the service's name and environment, so a slow or unreachable server never holds up event
//! delivery, and never the application. Each answer replaces the configuration in force as a
//! whole ([`Config::with_central`] over the *local* configuration: an option no longer set in
//! Kibana is back to its local value), which the record side reads once per new transaction.
//! The server's `ETag` goes back as `If-None-Match` (an unchanged configuration costs a 304),
//! and `Cache-Control: max-age` sets the next poll (5 minutes without it).
//!
//! The same thread asks the server's version once (see [`super::server`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::server::ServerInfo;
use crate::config::Config;

/// Polls when the server says nothing of when to ask again (Elastic's default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Until the server's version is known, it is asked again this often.
const VERSION_RETRY: Duration = Duration::from_secs(10);

/// Stops the poller when the agent shuts down.
pub(crate) struct Poller {
    stop: Arc<AtomicBool>,
    thread: Thread,
}

impl Poller {
    /// Starts polling for the service `local` describes; answers are stored into `live`. The
    /// thread holds `live` weakly: it ends by itself once the agent is gone.
    pub(crate) fn spawn(local: Config, live: &Arc<ArcSwap<Config>>, server: Arc<ServerInfo>) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let state = State::new(local, Arc::downgrade(live), server, stop.clone());
        let handle = std::thread::Builder::new()
            .name("apm-central-config".into())
            .spawn(move || {
                let _agent_work = crate::model::thread::agent_work();
                state.run()
            })
            .expect("spawning the apm-central-config thread");
        Poller { stop, thread: handle.thread().clone() }
    }

    /// Ends the poller (at its next wake-up; a request in flight is not waited for).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.unpark();
    }
}

struct State {
    local: Config,
    live: Weak<ArcSwap<Config>>,
    server: Arc<ServerInfo>,
    stop: Arc<AtomicBool>,
    client: ureq::Agent,
    url: String,
    authorization: Option<String>,
    etag: Option<String>,
    /// The settings in force from the last answer, to say what changed.
    applied: Vec<(String, String)>,
    /// Whether the last poll failed (said once per run of failures).
    failing: bool,
}

/// What one poll learned.
#[derive(Debug, PartialEq)]
enum Answer {
    /// New settings (option name → value as text), and the `ETag` to send next time.
    Settings(Vec<(String, String)>, Option<String>),
    /// The same as last time (304).
    Unchanged,
    /// Central configuration is not available (403: disabled; 404: no Kibana or no such
    /// endpoint): asked again later, quietly.
    Unavailable,
    /// The request failed: why.
    Failed(String),
}

impl State {
    fn new(local: Config, live: Weak<ArcSwap<Config>>, server: Arc<ServerInfo>, stop: Arc<AtomicBool>) -> State {
        let agent = super::report::intake::user_agent(&local);
        let roots = super::report::tls::roots(local.server_ca_cert_file());
        let client = super::report::tls::intake_client(&agent, roots, local.verify_server_cert);
        let url = format!(
            "{}/config/v1/agents?service.name={}{}",
            local.server_url,
            encode(&local.service_name),
            local.environment.as_deref().map(|e| format!("&service.environment={}", encode(e))).unwrap_or_default()
        );
        let authorization = local.authorization();
        State { local, live, server, stop, client, url, authorization, etag: None, applied: Vec::new(), failing: false }
    }

    fn run(mut self) {
        let mut next_config = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) || self.live.strong_count() == 0 {
                return;
            }
            let timeout = self.local.server_timeout.min(Duration::from_secs(10));
            if !self.server.known() {
                self.server.probe(&self.client, &self.local.server_url, self.authorization.as_deref(), timeout);
            }
            if !self.local.central_config() {
                if self.server.known() {
                    return; // Nothing left to ask.
                }
                next_config = Instant::now() + VERSION_RETRY;
            } else if Instant::now() >= next_config {
                let (answer, max_age) = self.poll(timeout);
                self.handle(answer);
                next_config = Instant::now() + max_age.unwrap_or(DEFAULT_INTERVAL);
            }
            let mut wake = next_config;
            if !self.server.known() {
                wake = wake.min(Instant::now() + VERSION_RETRY);
            }
            while !self.stop.load(Ordering::Relaxed) && Instant::now() < wake {
                std::thread::park_timeout(wake.saturating_duration_since(Instant::now()));
            }
        }
    }

    /// One `GET /config/v1/agents`, and the `max-age` the server asked for.
    fn poll(&self, timeout: Duration) -> (Answer, Option<Duration>) {
        let mut request = self.client.get(&self.url);
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        if let Some(etag) = &self.etag {
            request = request.header("If-None-Match", etag);
        }
        let mut response = match request.config().timeout_global(Some(timeout)).build().call() {
            Ok(r) => r,
            Err(e) => return (Answer::Failed(e.to_string()), None),
        };
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let max_age = header("cache-control").and_then(|c| max_age(&c));
        let etag = header("etag");
        let answer = match response.status().as_u16() {
            200 => match response.body_mut().read_to_string().map_err(|e| e.to_string()).and_then(|b| settings(&b)) {
                Ok(settings) => Answer::Settings(settings, etag),
                Err(why) => Answer::Failed(format!("unreadable answer: {why}")),
            },
            304 => Answer::Unchanged,
            403 | 404 => Answer::Unavailable,
            status => Answer::Failed(format!("the APM Server answered {status}")),
        };
        (answer, max_age)
    }

    fn handle(&mut self, answer: Answer) {
        match answer {
            Answer::Settings(settings, etag) => {
                self.failing = false;
                self.etag = etag;
                if settings != self.applied {
                    self.apply(settings);
                }
            }
            Answer::Unchanged => self.failing = false,
            Answer::Unavailable => {
                self.failing = false;
                // Central configuration was switched off after it had settings in force.
                if !self.applied.is_empty() {
                    self.etag = None;
                    self.apply(Vec::new());
                }
            }
            Answer::Failed(why) => {
                if !self.failing {
                    crate::diagnostics::info!("central configuration could not be fetched: {why}; asking again later");
                }
                self.failing = true;
            }
        }
    }

    /// Puts `settings` over the local configuration and swaps the result in.
    fn apply(&mut self, settings: Vec<(String, String)>) {
        let Some(live) = self.live.upgrade() else { return };
        let (config, warnings) = self.local.with_central(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for warning in warnings {
            crate::diagnostics::warning!("central configuration: {warning}");
        }
        crate::diagnostics::set_level(config.log_level());
        let shown: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        crate::diagnostics::info!(
            "central configuration applied: {}",
            if shown.is_empty() { "none (local values in force)".to_string() } else { shown.join(", ") }
        );
        live.store(Arc::new(config));
        self.applied = settings;
    }
}

/// The settings of a `/config/v1/agents` answer: a JSON object of option names to values
/// (strings, though numbers and booleans are taken too), sorted so answers compare.
fn settings(body: &str) -> Result<Vec<(String, String)>, String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let object = json.as_object().ok_or("not a JSON object")?;
    let mut settings: Vec<(String, String)> =
        object.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
    settings.sort();
    Ok(settings)
}

/// The `max-age` of a `Cache-Control` value, at least a second.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.max(1)))
}

/// Percent-encodes a query value (service names are plain, environments may not be).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_apm_server_writes_them() {
        assert_eq!(
            settings(r#"{"transaction_sample_rate":"0.1","recording":false,"transaction_max_spans":20}"#).unwrap(),
            [
                ("recording".to_string(), "false".to_string()),
                ("transaction_max_spans".to_string(), "20".to_string()),
                ("transaction_sample_rate".to_string(), "0.1".to_string()),
            ]
        );
        assert!(settings("[1]").is_err());
        assert_eq!(max_age("public, max-age=30"), Some(Duration::from_secs(30)));
        assert_eq!(max_age("max-age=0"), Some(Duration::from_secs(1)), "never a busy loop");
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(encode("my env/1"), "my%20env%2F1");
    }
}
