//! Shipping to Elastic APM Server: `POST /intake/v2/events`, gzip-compressed NDJSON.
//!
//! Runs on the reporter thread only. A request body is built incrementally (compressed as
//! events arrive) and closed when it reaches `API_REQUEST_SIZE` compressed bytes or has been
//! open `API_REQUEST_TIME`. Failed requests are retried with Elastic's backoff; what cannot be
//! held or delivered is counted as dropped.

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{DropReason, Sink, SinkContext};
use crate::config::{Config, ConfigError};
use crate::event::Event;
use crate::metadata::{AGENT_NAME, AGENT_VERSION};

/// At most this many closed batches wait for a retry; older ones are dropped (and counted)
/// so a long outage costs bounded memory.
const MAX_PENDING_BATCHES: usize = 4;

/// Sends events to the APM Server configured by `ELASTIC_APM_SERVER_URL`. It is what an agent
/// uses when no other sink is given.
///
/// ```
/// let config = apm_runtime::Config::builder().server_url("http://127.0.0.1:8200").build().unwrap();
/// let sink = apm_runtime::report::intake::IntakeSink::new(&config).unwrap();
/// let agent = apm_runtime::Agent::builder().config(config).sink(sink).build().unwrap();
/// # drop(agent);
/// ```
pub struct IntakeSink {
    endpoint: String,
    authorization: Option<String>,
    user_agent: String,
    verify_cert: bool,
    request_size: u64,
    request_time: Duration,
    server_timeout: Duration,
    /// Built on first use, on the reporter thread: a blocking client must not be created
    /// inside an async runtime, which the thread that builds the agent may be.
    client: Option<reqwest::blocking::Client>,
    open: Option<Batch>,
    pending: std::collections::VecDeque<Closed>,
    /// Consecutive failed requests, for the backoff.
    failures: u32,
    retry_at: Option<Instant>,
    line: Vec<u8>,
}

struct Batch {
    body: GzEncoder<Vec<u8>>,
    events: u64,
    opened: Instant,
    /// Uncompressed bytes written since the last sync flush. The encoder holds back output
    /// until it has a block's worth, so its buffer length alone lags behind the real size.
    unflushed: u64,
}

struct Closed {
    body: Vec<u8>,
    events: u64,
}

enum Outcome {
    Sent,
    /// Refused for good (4xx other than 429): retrying would not help.
    Rejected(String),
    /// Worth retrying: connection failure, timeout, 5xx, 429.
    Retry(String),
}

impl IntakeSink {
    /// Prepares a sink for `config`'s server (no connection is made until events arrive).
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().build().unwrap();
    /// assert!(apm_runtime::report::intake::IntakeSink::new(&config).is_ok());
    /// ```
    pub fn new(config: &Config) -> Result<IntakeSink, ConfigError> {
        if !config.verify_server_cert {
            eprintln!(
                "[apm] warning: ELASTIC_APM_VERIFY_SERVER_CERT=false: the APM Server's TLS certificate is not checked"
            );
        }
        let version = config.service_version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
        Ok(IntakeSink {
            endpoint: format!("{}/intake/v2/events", config.server_url),
            authorization: config.authorization(),
            user_agent: format!("apm-agent-{AGENT_NAME}/{AGENT_VERSION} ({}{version})", config.service_name),
            verify_cert: config.verify_server_cert,
            request_size: config.api_request_size,
            request_time: config.api_request_time,
            server_timeout: config.server_timeout,
            client: None,
            open: None,
            pending: Default::default(),
            failures: 0,
            retry_at: None,
            line: Vec::with_capacity(1024),
        })
    }

    fn client(&mut self) -> &reqwest::blocking::Client {
        let verify = self.verify_cert;
        let agent = self.user_agent.clone();
        self.client.get_or_insert_with(|| {
            crate::report::tls::install_crypto_provider();
            reqwest::blocking::Client::builder()
                .user_agent(agent)
                .danger_accept_invalid_certs(!verify)
                // Each request sets its own timeout; this only bounds connecting.
                .connect_timeout(Duration::from_secs(10))
                .build()
                .expect("building the HTTP client")
        })
    }

    fn close_open(&mut self, ctx: &SinkContext<'_>) {
        let Some(batch) = self.open.take() else { return };
        match batch.body.finish() {
            Ok(body) => {
                self.pending.push_back(Closed { body, events: batch.events });
                while self.pending.len() > MAX_PENDING_BATCHES {
                    let old = self.pending.pop_front().expect("non-empty");
                    ctx.record_dropped(DropReason::SendFailed, old.events);
                }
            }
            Err(_) => ctx.record_dropped(DropReason::SendFailed, batch.events),
        }
    }

    /// Sends pending batches in order until one fails or `deadline` passes.
    fn send_pending(&mut self, ctx: &SinkContext<'_>, deadline: Option<Instant>) {
        if deadline.is_none() && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        while let Some(batch) = self.pending.pop_front() {
            let timeout = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        self.pending.push_front(batch);
                        return;
                    }
                    left.min(self.server_timeout)
                }
                None => self.server_timeout,
            };
            match self.post(&batch.body, timeout) {
                Outcome::Sent => {
                    if self.failures > 0 {
                        eprintln!("[apm] APM Server reachable again at {}", self.endpoint);
                    }
                    self.failures = 0;
                    self.retry_at = None;
                    ctx.record_sent(batch.events);
                }
                Outcome::Rejected(why) => {
                    eprintln!("[apm] APM Server refused {} events: {why}", batch.events);
                    ctx.record_dropped(DropReason::Rejected, batch.events);
                }
                Outcome::Retry(why) => {
                    self.failures += 1;
                    let delay = backoff(self.failures);
                    if self.failures == 1 {
                        eprintln!("[apm] sending to {} failed: {why}; retrying with backoff", self.endpoint);
                    }
                    self.retry_at = Some(Instant::now() + delay);
                    self.pending.push_front(batch);
                    return;
                }
            }
        }
    }

    fn post(&mut self, body: &[u8], timeout: Duration) -> Outcome {
        let endpoint = self.endpoint.clone();
        let auth = self.authorization.clone();
        let mut req = self
            .client()
            .post(endpoint)
            .timeout(timeout)
            .header("Content-Type", "application/x-ndjson")
            .header("Content-Encoding", "gzip")
            .body(body.to_vec());
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        match req.send() {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Outcome::Sent
                } else {
                    let text = resp.text().unwrap_or_default();
                    let why = format!("HTTP {status}: {}", text.trim().chars().take(300).collect::<String>());
                    if status.is_client_error() && status.as_u16() != 429 {
                        Outcome::Rejected(why)
                    } else {
                        Outcome::Retry(why)
                    }
                }
            }
            // The message and its causes ("connection refused", "timed out"); reqwest's text
            // never includes headers, so the token stays out of logs.
            Err(e) => {
                let e = e.without_url();
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    why.push_str(": ");
                    why.push_str(&cause.to_string());
                    source = cause.source();
                }
                Outcome::Retry(why)
            }
        }
    }
}

/// Elastic's transport spec: about n² seconds after the n-th consecutive failure, capped at
/// 36 s, with ±10 % jitter so that many agents don't retry in lockstep.
pub(crate) fn backoff(failures: u32) -> Duration {
    let n = failures.saturating_sub(1).min(6) as f64;
    let base = (n * n).min(36.0);
    let jitter = base * 0.1 * ((crate::ids::next_u64() % 2001) as f64 / 1000.0 - 1.0);
    Duration::from_secs_f64((base + jitter).max(0.0))
}

impl Sink for IntakeSink {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        let mut batch = match self.open.take() {
            Some(b) => b,
            None => {
                let mut body = GzEncoder::new(Vec::with_capacity(16 * 1024), Compression::fast());
                self.line.clear();
                ctx.write_metadata_line(&mut self.line);
                let _ = body.write_all(&self.line);
                Batch { body, events: 0, opened: Instant::now(), unflushed: 0 }
            }
        };
        self.line.clear();
        event.write_ndjson(&mut self.line);
        match batch.body.write_all(&self.line) {
            Ok(()) => batch.events += 1,
            Err(_) => ctx.record_dropped(DropReason::SendFailed, 1),
        }
        batch.unflushed += self.line.len() as u64;
        // A sync flush every quarter of the limit (in uncompressed bytes) keeps the measured
        // compressed size within a quarter-limit's output of the truth, at a negligible cost
        // to the ratio for the default 768 KiB.
        if batch.unflushed >= (self.request_size / 4).max(512) {
            let _ = batch.body.flush();
            batch.unflushed = 0;
        }
        let full = batch.body.get_ref().len() as u64 >= self.request_size;
        let old = batch.opened.elapsed() >= self.request_time;
        self.open = Some(batch);
        if full || old {
            self.close_open(ctx);
            self.send_pending(ctx, None);
        }
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, deadline: Instant) {
        self.close_open(ctx);
        self.send_pending(ctx, Some(deadline));
    }

    fn shutdown(&mut self, ctx: &SinkContext<'_>, deadline: Instant) {
        self.flush(ctx, deadline);
        for batch in self.pending.drain(..) {
            ctx.record_dropped(DropReason::SendFailed, batch.events);
        }
    }

    fn tick(&mut self, ctx: &SinkContext<'_>) {
        if self.open.as_ref().is_some_and(|b| b.opened.elapsed() >= self.request_time) {
            self.close_open(ctx);
        }
        if !self.pending.is_empty() {
            self.send_pending(ctx, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_quadratically_and_caps_at_36s() {
        assert_eq!(backoff(1), Duration::ZERO);
        let second = backoff(2).as_secs_f64();
        assert!((0.9..=1.1).contains(&second), "{second}");
        let fourth = backoff(4).as_secs_f64();
        assert!((8.1..=9.9).contains(&fourth), "{fourth}");
        for n in [7, 8, 100, u32::MAX] {
            let d = backoff(n).as_secs_f64();
            assert!((32.4..=39.6).contains(&d), "{n}: {d}");
        }
    }
}
