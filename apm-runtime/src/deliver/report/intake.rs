//! Shipping to Elastic APM Server: `POST /intake/v2/events`, gzip-compressed NDJSON.
//!
//! Runs on the reporter thread only. A request body is built incrementally (compressed as
//! events arrive) and closed when it reaches `API_REQUEST_SIZE` compressed bytes or has been
//! open `API_REQUEST_TIME`. Failed requests are retried with Elastic's backoff: between
//! flushes by later ticks (the reporter never sleeps on a sick server), during a flush or the
//! shutdown within the call, until its deadline. What cannot be held or delivered is counted as
//! dropped, by reason.

use std::io::Write;
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{DropReason, Sink, SinkContext};
use crate::config::{Config, ConfigError};
use crate::model::event::Event;
use crate::model::metadata::{AGENT_NAME, AGENT_VERSION};

/// At most this many closed batches wait for a retry; older ones are dropped (and counted)
/// so a long outage costs bounded memory.
const MAX_PENDING_BATCHES: usize = 4;

/// During a flush or shutdown, the last attempt is moved forward (sooner than the backoff
/// says) so that it still gets this long before the deadline, or half of what is left: waiting
/// out a backoff that ends past the deadline would only give up later.
const FINAL_ATTEMPT: Duration = Duration::from_secs(1);

/// How much sooner than its deadline a flush or shutdown stops trying (at most a tenth of its
/// time). A request's timeout fires late by tens of milliseconds on a loaded machine, more
/// now and then (ureq's timers are not exact): this keeps the answer on time anyway.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);

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
    /// The secret part of `authorization`, scrubbed from every message we print.
    secret: Option<String>,
    user_agent: String,
    verify_cert: bool,
    /// What the server's certificate is checked against (read once, when the sink is made).
    roots: ureq::tls::RootCerts,
    request_size: u64,
    request_time: Duration,
    server_timeout: Duration,
    /// Built on first use, on the reporter thread.
    client: Option<ureq::Agent>,
    /// The server's version, when the agent asks it (see `deliver::server`).
    server: Option<std::sync::Arc<crate::deliver::server::ServerInfo>>,
    open: Option<Batch>,
    pending: std::collections::VecDeque<Closed>,
    /// Consecutive failed requests, for the backoff between ticks.
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

#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    /// Final: the server processed the request and took `accepted` of its events (the intake
    /// API says so in its error body). Never sent again: the accepted events would arrive
    /// twice. The rest are dropped for `reason`.
    Refused {
        accepted: u64,
        reason: DropReason,
        why: String,
    },
    /// Worth sending whole once more: connection failure, timeout, or 429/5xx with nothing
    /// accepted.
    Retry(String),
}

/// Where the sink reports what became of events: the agent's counters through
/// [`SinkContext`], or a plain tally in this module's tests.
trait Tally {
    fn sent(&self, n: u64);
    fn dropped(&self, reason: DropReason, n: u64);
    fn request(&self, bytes: usize);
}

impl Tally for SinkContext<'_> {
    fn sent(&self, n: u64) {
        self.record_sent(n);
    }
    fn dropped(&self, reason: DropReason, n: u64) {
        self.record_dropped(reason, n);
    }
    fn request(&self, bytes: usize) {
        self.record_request(bytes as u64);
    }
}

/// The `User-Agent` of every request to the APM Server (Elastic's format).
pub(crate) fn user_agent(config: &Config) -> String {
    let version = config.service_version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    format!("apm-agent-{AGENT_NAME}/{AGENT_VERSION} ({}{version})", config.service_name)
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
            crate::diagnostics::warning!(
                "ELASTIC_APM_VERIFY_SERVER_CERT=false: the APM Server's TLS certificate is not checked"
            );
        }
        let authorization = config.authorization();
        let secret = authorization
            .as_deref()
            .and_then(|a| a.split_once(' '))
            .map(|(_, secret)| secret.to_string())
            .filter(|s| !s.is_empty());
        Ok(IntakeSink {
            endpoint: format!("{}/intake/v2/events", config.server_url),
            authorization,
            secret,
            user_agent: user_agent(config),
            verify_cert: config.verify_server_cert,
            roots: super::tls::roots(config.server_ca_cert_file()),
            request_size: config.api_request_size,
            request_time: config.api_request_time,
            server_timeout: config.server_timeout,
            client: None,
            server: None,
            open: None,
            pending: Default::default(),
            failures: 0,
            retry_at: None,
            line: Vec::with_capacity(1024),
        })
    }

    /// Stops sending unsampled transactions once `server` says it is APM Server 8.0 or later.
    pub(crate) fn with_server(mut self, server: std::sync::Arc<crate::deliver::server::ServerInfo>) -> IntakeSink {
        self.server = Some(server);
        self
    }

    fn close_open(&mut self, tally: &impl Tally) {
        let Some(batch) = self.open.take() else { return };
        match batch.body.finish() {
            Ok(body) => {
                self.pending.push_back(Closed { body, events: batch.events });
                while self.pending.len() > MAX_PENDING_BATCHES {
                    let old = self.pending.pop_front().expect("non-empty");
                    tally.dropped(DropReason::SendFailed, old.events);
                }
            }
            Err(_) => tally.dropped(DropReason::SendFailed, batch.events),
        }
    }

    /// Between flushes: sends pending batches in order until one fails, then leaves the rest
    /// for a later tick after the backoff, so the reporter never sleeps on a sick server.
    fn send_pending(&mut self, tally: &impl Tally) {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        while let Some(batch) = self.pending.pop_front() {
            if let Some(batch) = self.try_send(batch, self.server_timeout, tally) {
                self.pending.push_front(batch);
                return;
            }
        }
    }

    /// During a flush or shutdown: keeps retrying until everything pending is sent or
    /// `deadline` passes, so a server that is briefly unavailable (a rolling restart's 503)
    /// loses nothing. Retries follow Elastic's backoff, counted from this call's first failure
    /// (the first retry is at once), each wait and request bounded by the deadline. What is
    /// still pending afterwards stays pending.
    fn send_pending_by(&mut self, tally: &impl Tally, deadline: Instant) {
        let mut failures = 0;
        let mut final_attempt = false;
        while let Some(batch) = self.pending.pop_front() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.pending.push_front(batch);
                return;
            }
            let Some(batch) = self.try_send(batch, left.min(self.server_timeout), tally) else {
                (failures, final_attempt) = (0, false);
                continue;
            };
            self.pending.push_front(batch);
            if final_attempt {
                return;
            }
            failures += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let reserve = FINAL_ATTEMPT.min(left / 2);
            let mut wait = backoff(failures);
            if wait + reserve > left {
                wait = left - reserve;
                final_attempt = true;
            }
            std::thread::sleep(wait);
        }
    }

    /// One request for `batch`; returns the batch when it should be sent again.
    fn try_send(&mut self, batch: Closed, timeout: Duration, tally: &impl Tally) -> Option<Closed> {
        tally.request(batch.body.len());
        match self.post(&batch.body, timeout) {
            Outcome::Sent => {
                if self.failures > 0 {
                    crate::diagnostics::warning!("APM Server reachable again at {}", self.endpoint);
                }
                self.failures = 0;
                self.retry_at = None;
                tally.sent(batch.events);
                None
            }
            Outcome::Refused { accepted, reason, why } => {
                let accepted = accepted.min(batch.events);
                crate::diagnostics::warning!(
                    "APM Server refused {} of {} events: {why}",
                    batch.events - accepted,
                    batch.events
                );
                tally.sent(accepted);
                tally.dropped(reason, batch.events - accepted);
                None
            }
            Outcome::Retry(why) => {
                self.failures = self.failures.saturating_add(1);
                if self.failures == 1 {
                    crate::diagnostics::warning!("sending to {} failed: {why}; retrying with backoff", self.endpoint);
                }
                self.retry_at = Some(Instant::now() + backoff(self.failures));
                Some(batch)
            }
        }
    }

    fn post(&mut self, body: &[u8], timeout: Duration) -> Outcome {
        let (agent, roots, verify) = (&self.user_agent, &self.roots, self.verify_cert);
        let client = self.client.get_or_insert_with(|| super::tls::intake_client(agent, roots.clone(), verify));
        let mut request = client
            .post(&self.endpoint)
            .header("Content-Type", "application/x-ndjson")
            .header("Content-Encoding", "gzip");
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let outcome = match request.config().timeout_global(Some(timeout)).build().send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read to the end (bounded) so the connection can be reused.
                let text = response.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
                classify(status, &text)
            }
            Err(ureq::Error::Timeout(_)) => Outcome::Retry(format!("no answer within {timeout:?}")),
            // The message and its causes ("connection refused", a TLS alert). ureq's errors
            // never include request headers; `redact` below is for what a server echoes back.
            Err(e) => {
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    why.push_str(": ");
                    why.push_str(&cause.to_string());
                    source = cause.source();
                }
                Outcome::Retry(why)
            }
        };
        match outcome {
            Outcome::Retry(why) => Outcome::Retry(self.redact(why)),
            Outcome::Refused { accepted, reason, why } => Outcome::Refused { accepted, reason, why: self.redact(why) },
            sent => sent,
        }
    }

    /// A proxy or server may echo the request, token included, in its error body.
    fn redact(&self, text: String) -> String {
        match &self.secret {
            Some(secret) if text.contains(secret.as_str()) => text.replace(secret.as_str(), "[REDACTED]"),
            _ => text,
        }
    }
}

/// What an answer means for the batch. The intake API answers errors with
/// `{"accepted": n, "errors": [...]}`: a batch the server partly took must not be sent again.
fn classify(status: u16, body: &str) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Sent;
    }
    let accepted = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("accepted").and_then(serde_json::Value::as_u64))
        .unwrap_or(0);
    let why = format!("HTTP {status}: {}", body.trim().chars().take(300).collect::<String>());
    let retryable = status == 429 || status >= 500;
    match (retryable, accepted) {
        (true, 0) => Outcome::Retry(why),
        (true, _) => Outcome::Refused { accepted, reason: DropReason::SendFailed, why },
        // 4xx: retrying the same request would be refused again; 3xx: redirects are not
        // followed (see `tls::intake_client`).
        (false, _) => Outcome::Refused { accepted, reason: DropReason::Rejected, why },
    }
}

/// Elastic's transport spec: about n² seconds after the n-th consecutive failure, capped at
/// 36 s, with ±10 % jitter so that many agents don't retry in lockstep.
pub(crate) fn backoff(failures: u32) -> Duration {
    let n = failures.saturating_sub(1).min(6) as f64;
    let base = (n * n).min(36.0);
    let jitter = base * 0.1 * ((crate::model::ids::next_u64() % 2001) as f64 / 1000.0 - 1.0);
    Duration::from_secs_f64((base + jitter).max(0.0))
}

impl IntakeSink {
    fn flush_by(&mut self, tally: &impl Tally, deadline: Instant) {
        self.close_open(tally);
        // The application waits for the reporter's answer until the same deadline: finishing a
        // little before it lets the answer, with every event accounted for, arrive in time.
        let now = Instant::now();
        let margin = ANSWER_MARGIN.min(deadline.saturating_duration_since(now) / 10);
        self.send_pending_by(tally, deadline.checked_sub(margin).unwrap_or(now));
    }

    fn shutdown_by(&mut self, tally: &impl Tally, deadline: Instant) {
        self.flush_by(tally, deadline);
        for batch in self.pending.drain(..) {
            tally.dropped(DropReason::SendFailed, batch.events);
        }
    }
}

impl Sink for IntakeSink {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        if let Event::Transaction(t) = event {
            if !t.sampled && self.server.as_ref().is_some_and(|s| s.drops_unsampled()) {
                // Elastic's rule for APM Server 8.0+: it does not want them. Handled as intended,
                // so counted as delivered.
                ctx.record_sent(1);
                return;
            }
        }
        let mut batch = match self.open.take() {
            Some(b) => b,
            None => {
                let mut body = GzEncoder::new(Vec::with_capacity(16 * 1024), Compression::fast());
                self.line.clear();
                if self.server.as_ref().is_some_and(|s| s.refuses_activation_method()) {
                    let metadata = ctx.metadata().without_activation_method();
                    crate::model::event::write_metadata_line(&metadata, &mut self.line);
                } else {
                    ctx.write_metadata_line(&mut self.line);
                }
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
            self.send_pending(ctx);
        }
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, deadline: Instant) {
        self.flush_by(ctx, deadline);
    }

    fn shutdown(&mut self, ctx: &SinkContext<'_>, deadline: Instant) {
        self.shutdown_by(ctx, deadline);
    }

    fn tick(&mut self, ctx: &SinkContext<'_>) {
        if self.open.as_ref().is_some_and(|b| b.opened.elapsed() >= self.request_time) {
            self.close_open(ctx);
        }
        if !self.pending.is_empty() {
            self.send_pending(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

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

    #[test]
    fn answers_are_classified_by_status_and_what_the_server_accepted() {
        assert_eq!(classify(202, ""), Outcome::Sent);
        assert!(matches!(classify(503, "{\"errors\":[]}"), Outcome::Retry(_)));
        assert!(matches!(classify(429, ""), Outcome::Retry(_)));
        assert!(matches!(classify(500, "{\"accepted\":0}"), Outcome::Retry(_)));
        assert!(matches!(
            classify(503, "{\"accepted\":3,\"errors\":[{\"message\":\"queue is full\"}]}"),
            Outcome::Refused { accepted: 3, reason: DropReason::SendFailed, .. }
        ));
        assert!(matches!(
            classify(400, "{\"accepted\":1}"),
            Outcome::Refused { accepted: 1, reason: DropReason::Rejected, .. }
        ));
        assert!(matches!(classify(401, "no"), Outcome::Refused { accepted: 0, reason: DropReason::Rejected, .. }));
        assert!(matches!(classify(307, ""), Outcome::Refused { reason: DropReason::Rejected, .. }));
    }

    /// What the sink reported, by fate.
    #[derive(Default)]
    struct Count {
        sent: Cell<u64>,
        failed: Cell<u64>,
        rejected: Cell<u64>,
    }

    impl Tally for Count {
        fn sent(&self, n: u64) {
            self.sent.set(self.sent.get() + n);
        }
        fn dropped(&self, reason: DropReason, n: u64) {
            let c = match reason {
                DropReason::SendFailed => &self.failed,
                DropReason::Rejected => &self.rejected,
            };
            c.set(c.get() + n);
        }
        fn request(&self, _: usize) {}
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Reply {
        Status(u16),
        /// 503 saying the server took this many of the request's events.
        PartlyAccepted(u64),
        /// 401 whose body echoes the request's headers, as some proxies do.
        EchoHeaders,
        /// Never answers; the connection stays open until the client gives up.
        Hang,
    }

    /// One request as the server saw it: its events (lines after the metadata) and the reply.
    type Seen = (Vec<String>, Reply, Instant);

    /// A loopback intake that answers by `script`, then `then` for every further request.
    fn server(script: &[Reply], then: Reply) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<std::collections::VecDeque<_>>()));
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (script, log) = (script.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    loop {
                        let mut head = Vec::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line.trim_end().is_empty() {
                                break;
                            }
                            head.push(line.trim_end().to_string());
                        }
                        let len: usize = head
                            .iter()
                            .find_map(|h| {
                                h.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).unwrap();
                        let mut text = String::new();
                        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
                        let reply = script.lock().unwrap().pop_front().unwrap_or(then);
                        let events = text.lines().skip(1).map(str::to_string).collect();
                        log.lock().unwrap().push((events, reply, Instant::now()));
                        let (status, answer) = match reply {
                            Reply::Status(s) => (s, String::new()),
                            Reply::PartlyAccepted(n) => (503, format!("{{\"accepted\":{n},\"errors\":[]}}")),
                            Reply::EchoHeaders => (401, head.join("\n")),
                            Reply::Hang => {
                                let _ = reader.read(&mut [0]);
                                return;
                            }
                        };
                        let response =
                            format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{answer}", answer.len());
                        if conn.write_all(response.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    fn sink_for(url: &str, token: Option<&str>) -> IntakeSink {
        let mut config = Config::builder().server_url(url).server_timeout(Duration::from_secs(30));
        if let Some(token) = token {
            config = config.secret_token(token);
        }
        IntakeSink::new(&config.build().unwrap()).unwrap()
    }

    /// Queues a closed batch of `events` events named `{name}-{i}`, as `close_open` leaves it.
    fn pend(sink: &mut IntakeSink, name: &str, events: u64) {
        let mut body = GzEncoder::new(Vec::new(), Compression::fast());
        body.write_all(b"{\"metadata\":{}}\n").unwrap();
        for i in 0..events {
            body.write_all(format!("{name}-{i}\n").as_bytes()).unwrap();
        }
        sink.pending.push_back(Closed { body: body.finish().unwrap(), events });
    }

    fn delivered(seen: &Mutex<Vec<Seen>>) -> Vec<String> {
        let seen = seen.lock().unwrap();
        seen.iter().filter(|(_, r, _)| *r == Reply::Status(202)).flat_map(|(e, _, _)| e.clone()).collect()
    }

    #[test]
    fn a_503_at_shutdown_is_retried_at_once_and_nothing_is_lost() {
        let (url, seen) = server(&[Reply::Status(503)], Reply::Status(202));
        let mut sink = sink_for(&url, None);
        pend(&mut sink, "a", 5);
        let count = Count::default();
        let started = Instant::now();
        sink.shutdown_by(&count, started + Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_millis(850),
            "the first retry is at once, not after ~1 s: {:?}",
            started.elapsed()
        );
        assert_eq!((count.sent.get(), count.failed.get(), count.rejected.get()), (5, 0, 0));
        assert_eq!(delivered(&seen).len(), 5);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn two_503s_then_ok_within_the_budget_deliver_everything_once() {
        let (url, seen) = server(&[Reply::Status(202), Reply::Status(503), Reply::Status(503)], Reply::Status(202));
        let mut sink = sink_for(&url, None);
        pend(&mut sink, "a", 3);
        pend(&mut sink, "b", 4);
        let count = Count::default();
        let started = Instant::now();
        sink.shutdown_by(&count, started + Duration::from_secs(5));
        let took = started.elapsed();
        // At once after the first 503, about a second (±10 %) after the second.
        assert!((Duration::from_millis(850)..Duration::from_secs(3)).contains(&took), "{took:?}");
        assert_eq!((count.sent.get(), count.failed.get()), (7, 0));
        let mut got = delivered(&seen);
        got.sort();
        assert_eq!(got, ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2", "b-3"], "each event exactly once");
        let attempts: Vec<usize> = seen.lock().unwrap().iter().map(|(e, _, _)| e.len()).collect();
        assert_eq!(attempts, [3, 4, 4, 4], "the failed batch is sent whole each time");
    }

    #[test]
    fn a_503_forever_gives_up_by_the_deadline_and_counts_every_event() {
        let (url, seen) = server(&[], Reply::Status(503));
        let mut sink = sink_for(&url, None);
        pend(&mut sink, "a", 3);
        pend(&mut sink, "b", 2);
        let count = Count::default();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(3);
        sink.shutdown_by(&count, deadline);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!((count.sent.get(), count.failed.get(), count.rejected.get()), (0, 5, 0));
        assert!(sink.pending.is_empty());
        let seen = seen.lock().unwrap();
        // At once, at once, after ~1 s, then a last try moved forward to fit before the deadline.
        assert_eq!(seen.len(), 4, "{:?}", seen.iter().map(|s| s.2 - started).collect::<Vec<_>>());
        let last = seen.last().unwrap().2;
        assert!(last > deadline - Duration::from_millis(1200) && last < deadline, "{:?}", deadline - last);
    }

    #[test]
    fn a_hanging_server_or_none_costs_at_most_the_deadline() {
        let (hanging, _) = server(&[], Reply::Hang);
        let refused = format!("http://{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap());
        for url in [hanging, refused] {
            let mut sink = sink_for(&url, None);
            pend(&mut sink, "a", 4);
            let count = Count::default();
            let started = Instant::now();
            sink.shutdown_by(&count, started + Duration::from_millis(1500));
            let took = started.elapsed();
            assert!(took < Duration::from_millis(1500 + 300), "{url}: {took:?}");
            assert_eq!((count.sent.get(), count.failed.get()), (0, 4), "{url}");
        }
    }

    #[test]
    fn a_partly_accepted_batch_is_never_sent_again() {
        let (url, seen) = server(&[Reply::PartlyAccepted(2)], Reply::Status(202));
        let mut sink = sink_for(&url, None);
        pend(&mut sink, "a", 5);
        let count = Count::default();
        sink.shutdown_by(&count, Instant::now() + Duration::from_secs(5));
        assert_eq!((count.sent.get(), count.failed.get(), count.rejected.get()), (2, 3, 0));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_flush_that_runs_out_of_time_keeps_the_batch_for_later() {
        let (url, seen) = server(&[], Reply::Status(503));
        let mut sink = sink_for(&url, None);
        pend(&mut sink, "a", 2);
        let count = Count::default();
        sink.flush_by(&count, Instant::now() + Duration::from_millis(300));
        assert_eq!((count.sent.get(), count.failed.get()), (0, 0), "not lost yet");
        assert_eq!(sink.pending.len(), 1);
        assert!(seen.lock().unwrap().len() >= 2);
        assert!(sink.retry_at.is_some(), "ticks go on with the backoff");
    }

    #[test]
    fn between_flushes_a_failure_waits_for_a_later_tick_instead_of_sleeping() {
        let (url, seen) = server(&[Reply::Status(503), Reply::Status(503)], Reply::Status(202));
        let mut sink = sink_for(&url, None);
        pend(&mut sink, "a", 1);
        let count = Count::default();
        sink.send_pending(&count);
        assert_eq!(seen.lock().unwrap().len(), 1, "one attempt, no retry loop");
        // The first retry is due at once: the next tick sends again, and backs off after that.
        sink.send_pending(&count);
        assert_eq!(seen.lock().unwrap().len(), 2);
        let started = Instant::now();
        sink.send_pending(&count);
        assert!(started.elapsed() < Duration::from_millis(100), "no sleeping on the reporter between flushes");
        assert_eq!(seen.lock().unwrap().len(), 2, "still backing off");
        assert_eq!((sink.pending.len(), count.sent.get()), (1, 0));
    }

    #[test]
    fn the_token_never_appears_in_what_is_printed() {
        let (url, _) = server(&[], Reply::EchoHeaders);
        let mut sink = sink_for(&url, Some("s3cr3t-t0ken"));
        let body = {
            let mut b = GzEncoder::new(Vec::new(), Compression::fast());
            b.write_all(b"{\"metadata\":{}}\n").unwrap();
            b.finish().unwrap()
        };
        let Outcome::Refused { why, reason: DropReason::Rejected, .. } = sink.post(&body, Duration::from_secs(5))
        else {
            panic!("a 401 is refused");
        };
        assert!(why.contains("Bearer [REDACTED]"), "the echo came back: {why}");
        assert!(!why.contains("s3cr3t-t0ken"), "{why}");
    }
}
