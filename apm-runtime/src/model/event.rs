//! Finished events as they travel to the reporter, and their exact intake v2 JSON shapes.
//!
//! The application thread builds these plain structs (no JSON, no formatting); the reporter
//! thread serializes them. `Serialize` goes through borrowed "wire" structs so the output field
//! names and nesting match `apm-server`'s schemas while the in-memory layout stays compact.

use std::borrow::Cow;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::model::clock::Stamp;
use crate::model::ids::{SpanId, TraceId};
use crate::model::metadata::Metadata;
use crate::model::metricset::MetricsetEvent;
use crate::model::otel::Otel;
use crate::model::stacktrace::{Frame, RawStack};

/// How a transaction or span ended, as Elastic's `outcome` field.
///
/// ```
/// let mut tx = apm_runtime::Transaction::start("job");
/// tx.set_outcome(apm_runtime::Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Completed as intended.
    Success,
    /// Returned an error or panicked.
    Failure,
    /// Not known (Elastic's value when nothing decided it).
    Unknown,
}

/// A label value: Elastic allows strings, numbers and booleans.
///
/// ```
/// use apm_runtime::LabelValue;
/// assert_eq!(LabelValue::from(3), LabelValue::Number(3.0));
/// assert_eq!(LabelValue::from("eu"), LabelValue::String("eu".into()));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum LabelValue {
    /// A string, truncated to 1024 characters when serialized.
    String(Cow<'static, str>),
    /// Any number (JSON has one number type).
    Number(f64),
    /// A boolean.
    Bool(bool),
}

impl Serialize for LabelValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LabelValue::String(v) => s.serialize_str(v),
            // Whole numbers as integers (`3`, not `3.0`), as the application wrote them, while
            // they fit a double's exact range.
            LabelValue::Number(v) if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 => {
                s.serialize_i64(*v as i64)
            }
            LabelValue::Number(v) => s.serialize_f64(*v),
            LabelValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

impl From<&'static str> for LabelValue {
    fn from(v: &'static str) -> Self {
        LabelValue::String(Cow::Borrowed(v))
    }
}
impl From<String> for LabelValue {
    fn from(v: String) -> Self {
        LabelValue::String(Cow::Owned(v))
    }
}
impl From<&String> for LabelValue {
    fn from(v: &String) -> Self {
        LabelValue::String(Cow::Owned(v.clone()))
    }
}
impl From<bool> for LabelValue {
    fn from(v: bool) -> Self {
        LabelValue::Bool(v)
    }
}
macro_rules! number_labels {
    ($($t:ty),*) => {$(
        impl From<$t> for LabelValue {
            fn from(v: $t) -> Self { LabelValue::Number(v as f64) }
        }
    )*};
}
number_labels!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

/// Labels in insertion order. A `Vec` rather than a map: there are few, and an empty one costs no
/// allocation on the hot path.
pub(crate) type Labels = Vec<(Cow<'static, str>, LabelValue)>;

/// Serializes labels as `context.tags`, with Elastic's key sanitizing (`.`, `*`, `"` become `_`).
struct Tags<'a>(&'a [(Cow<'static, str>, LabelValue)]);

impl Serialize for Tags<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            let key: Cow<str> = if k.contains(['.', '*', '"']) {
                Cow::Owned(k.replace(['.', '*', '"'], "_"))
            } else {
                Cow::Borrowed(k)
            };
            match v {
                LabelValue::String(s) => map.serialize_entry(&key, truncate(s))?,
                other => map.serialize_entry(&key, other)?,
            }
        }
        map.end()
    }
}

/// The intake refuses keyword fields over 1024 characters; cut at a char boundary.
#[inline]
pub(crate) fn truncate(s: &str) -> &str {
    // No string of at most 1024 bytes has more than 1024 characters.
    if s.len() <= 1024 {
        return s;
    }
    truncate_long(s)
}

#[inline(never)]
fn truncate_long(s: &str) -> &str {
    match s.char_indices().nth(1024) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

// `serialize_with` hands over a reference to the field's own type.
#[allow(clippy::ptr_arg)]
fn truncated<S: Serializer>(v: &Cow<'static, str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(truncate(v))
}

fn truncated_opt<S: Serializer>(v: &Option<Cow<'static, str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(truncate(v)),
        None => s.serialize_none(),
    }
}

/// One finished event on its way to a [`Sink`](crate::report::Sink).
///
/// ```
/// use apm_runtime::{Agent, Transaction, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// agent.transaction("nightly").start().end();
/// agent.flush(std::time::Duration::from_secs(5));
/// assert_eq!(sink.transactions()[0]["name"], "nightly");
/// ```
#[derive(Clone, Debug)]
pub enum Event {
    /// A finished transaction.
    Transaction(Box<TransactionEvent>),
    /// A finished span. Boxed: a recording span is built in this box when it starts and
    /// travels to the reporter as one pointer, never copied.
    Span(Box<SpanEvent>),
    /// A captured error or panic.
    Error(Box<ErrorEvent>),
    /// Samples the reporter computed for one interval (`METRICS_INTERVAL`).
    Metricset(Box<MetricsetEvent>),
}

impl Event {
    /// Appends this event as one NDJSON line (`{"span":{…}}\n`) to `out`.
    ///
    /// ```
    /// # use apm_runtime::{Agent, report::MemorySink};
    /// # let sink = MemorySink::new();
    /// # let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    /// # agent.transaction("t").start().end();
    /// # agent.flush(std::time::Duration::from_secs(5));
    /// let event = &sink.events()[0];
    /// let mut line = Vec::new();
    /// event.write_ndjson(&mut line);
    /// assert!(line.starts_with(b"{\"transaction\":{"));
    /// ```
    pub fn write_ndjson(&self, out: &mut Vec<u8>) {
        // Serializing plain structs into a Vec cannot fail.
        let _ = match self {
            Event::Transaction(t) => serde_json::to_writer(&mut *out, &Line("transaction", &**t)),
            Event::Span(s) if s.more.is_none() => {
                crate::model::span_line::write(s, out);
                Ok(())
            }
            Event::Span(s) => serde_json::to_writer(&mut *out, &Line("span", &**s)),
            Event::Error(e) => serde_json::to_writer(&mut *out, &Line("error", &**e)),
            Event::Metricset(m) => serde_json::to_writer(&mut *out, &Line("metricset", &**m)),
        };
        out.push(b'\n');
    }

    /// The event's intake type: `"transaction"`, `"span"` or `"error"`.
    ///
    /// ```
    /// # use apm_runtime::{Agent, report::MemorySink};
    /// # let sink = MemorySink::new();
    /// # let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    /// # agent.transaction("t").start().end();
    /// # agent.flush(std::time::Duration::from_secs(5));
    /// assert_eq!(sink.events()[0].kind(), "transaction");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Transaction(_) => "transaction",
            Event::Span(_) => "span",
            Event::Error(_) => "error",
            Event::Metricset(_) => "metricset",
        }
    }
}

/// Writes `{"<key>": value}` without building a map.
pub(crate) struct Line<'a, T>(pub(crate) &'static str, pub(crate) &'a T);

impl<T: Serialize> Serialize for Line<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

/// Writes the metadata line that opens every intake request.
pub(crate) fn write_metadata_line(metadata: &Metadata, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, &Line("metadata", metadata));
    out.push(b'\n');
}

/// A finished transaction.
#[derive(Clone, Debug)]
pub struct TransactionEvent {
    pub(crate) trace_id: TraceId,
    pub(crate) id: SpanId,
    pub(crate) parent_id: Option<SpanId>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: Cow<'static, str>,
    pub(crate) result: Option<Cow<'static, str>>,
    pub(crate) outcome: Outcome,
    pub(crate) timestamp: u64,
    pub(crate) duration: f64,
    pub(crate) sampled: bool,
    pub(crate) sample_rate: Option<f64>,
    pub(crate) spans_started: u32,
    pub(crate) spans_dropped: u32,
    /// Exit spans not sent, per destination (`dropped_spans_stats`).
    pub(crate) dropped_stats: Vec<DroppedStat>,
    pub(crate) labels: Labels,
    /// `context.request`, `response`, `user` and `custom`: boxed, since only transactions of an
    /// HTTP integration, or whose code set a user or custom context, have any.
    pub(crate) context: Option<Box<TxContext>>,
    pub(crate) thread: u64,
    /// Spans of other traces this one is linked to (a restarted incoming trace).
    pub(crate) links: Vec<(TraceId, SpanId)>,
    /// What a bridged `tracing` span recorded (`otel.attributes`, `otel.span_kind`).
    pub(crate) otel: Option<Box<Otel>>,
}

/// The parts of a transaction's `context` besides its labels.
#[derive(Clone, Debug, Default)]
pub(crate) struct TxContext {
    pub(crate) request: Option<Request>,
    pub(crate) response: Option<ResponseContext>,
    pub(crate) user: Option<User>,
    /// `context.custom`, in the order set; a key set twice keeps its last value.
    pub(crate) custom: Vec<(String, serde_json::Value)>,
}

/// `context.request` of an incoming HTTP request.
#[derive(Clone, Debug)]
pub(crate) enum Request {
    /// Recorded as strings (the `tracing` bridge reads them off a span's attributes on the
    /// reporter thread).
    Recorded(Box<RequestContext<'static>>),
    /// Kept as an integration received it: its strings are made when the event is encoded, on
    /// the reporter thread, not on the thread serving the request.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Raw(Arc<dyn RawRequest>),
}

/// A request an integration kept raw (see [`Request::Raw`]).
///
/// Unwind-safe, as every part of a transaction is: a `Context` (which reaches the transaction's
/// request) may be carried into `catch_unwind`.
pub(crate) trait RawRequest: Send + Sync + std::panic::RefUnwindSafe + std::fmt::Debug {
    /// The request's `context.request` fields, borrowed from it where they can be (most are
    /// slices of what it kept).
    fn render(&self) -> RequestContext<'_>;
    /// Its headers; `None` when `CAPTURE_HEADERS` was off.
    fn headers(&self) -> Option<&dyn RawHeaders>;
    /// Its body as the handler read it, under `CAPTURE_BODY`.
    fn body(&self) -> Option<&dyn RawBody>;
}

/// `context.request` of an incoming HTTP request, as strings.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestContext<'a> {
    pub(crate) method: Cow<'a, str>,
    /// `protocol` as the intake wants it: `http:` or `https:`.
    pub(crate) protocol: Option<&'static str>,
    pub(crate) hostname: Option<Cow<'a, str>>,
    pub(crate) port: Option<u16>,
    pub(crate) pathname: Cow<'a, str>,
    /// The query string without its `?`.
    pub(crate) search: Option<Cow<'a, str>>,
    /// The request line's target as received (path and query, or an absolute URL).
    pub(crate) raw: Cow<'a, str>,
    /// Assembled from the parts above when the host is known.
    pub(crate) full: Option<Cow<'a, str>>,
    pub(crate) http_version: Option<&'static str>,
    pub(crate) remote_address: Option<Cow<'a, str>>,
}

/// Headers as an integration received them, turned into (sanitized) name/value strings only when
/// the event is encoded, on the reporter thread: stringifying and matching every name against the
/// sanitize patterns cost more than the rest of a request's recording together
/// (apm-bench/RESULTS.md, "The tower layer").
pub(crate) trait RawHeaders: Send + Sync + std::fmt::Debug {
    /// Every header, sensitive values `[REDACTED]`, in the order received.
    fn headers(&self) -> Vec<(&str, &str)>;
    /// The `Cookie` header's cookies, each value sanitized by its own name (the `Cookie` header
    /// itself is then redacted whole in [`headers`](Self::headers)).
    fn cookies(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }
}

/// A request body kept raw by an integration, rendered (and sanitized) on the reporter thread.
pub(crate) trait RawBody: Send + Sync + std::panic::RefUnwindSafe + std::fmt::Debug {
    /// `context.request.body`: a string, or an object of form fields; `None` to send none
    /// (`CAPTURE_BODY` says which events get it: see [`BodyFor`]).
    fn render(&self, event: BodyFor) -> Option<serde_json::Value>;
}

/// The event a request's `context` is written into, which `CAPTURE_BODY` decides the body by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFor {
    /// The request's transaction; `failed`: its outcome is failure.
    Transaction { failed: bool },
    /// An error reported under the request's transaction.
    Error,
}

/// `context.response` of an incoming HTTP request.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResponseContext {
    pub(crate) status_code: Option<u16>,
    pub(crate) headers: Option<Arc<dyn RawHeaders>>,
    /// Whether the whole response body was sent (`false`: the client went away first).
    pub(crate) finished: bool,
    pub(crate) headers_sent: bool,
}

/// The user a transaction ran for (`context.user`).
///
/// ```
/// let user = apm_runtime::User::default().id("42").email("ada@example.com").username("ada");
/// assert_eq!(user.id.as_deref(), Some("42"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct User {
    /// The user's id, e.g. a primary key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The user's email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The domain the user logged in to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl User {
    /// Sets the id.
    ///
    /// ```
    /// assert_eq!(apm_runtime::User::default().id(7.to_string()).id.unwrap(), "7");
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the email address.
    ///
    /// ```
    /// assert!(apm_runtime::User::default().email("a@b.c").email.is_some());
    /// ```
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the user name.
    ///
    /// ```
    /// assert!(apm_runtime::User::default().username("ada").username.is_some());
    /// ```
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the domain.
    ///
    /// ```
    /// assert!(apm_runtime::User::default().domain("corp").domain.is_some());
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
}

/// Headers as the intake wants them: one key per name, several values as an array. A request
/// has a handful of headers: finding a name's other values by scanning costs less than the
/// vectors grouping them would.
struct HeaderMapJson<'a>(&'a [(&'a str, &'a str)]);

impl Serialize for HeaderMapJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// Every value of one name, in order.
        struct Values<'a>(&'a [(&'a str, &'a str)], &'a str);
        impl Serialize for Values<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().filter(|(k, _)| *k == self.1).map(|(_, v)| truncate(v)))
            }
        }
        let headers = self.0;
        let mut map = s.serialize_map(None)?;
        for (i, (name, value)) in headers.iter().enumerate() {
            if headers[..i].iter().any(|(k, _)| k == name) {
                continue; // written with its name's first value
            }
            if headers[i + 1..].iter().any(|(k, _)| k == name) {
                map.serialize_entry(name, &Values(&headers[i..], name))?;
            } else {
                map.serialize_entry(name, truncate(value))?;
            }
        }
        map.end()
    }
}

/// A `context.request`, in a transaction (whose outcome decides the body under
/// `CAPTURE_BODY=errors`) or in an error.
struct RequestJson<'a> {
    request: &'a Request,
    event: BodyFor,
}

impl Serialize for RequestJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.request {
            Request::Recorded(request) => request.serialize_as(None, None, self.event, s),
            Request::Raw(raw) => raw.render().serialize_as(raw.headers(), raw.body(), self.event, s),
        }
    }
}

impl RequestContext<'_> {
    fn serialize_as<S: Serializer>(
        &self,
        headers: Option<&dyn RawHeaders>,
        body: Option<&dyn RawBody>,
        event: BodyFor,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let cookies = headers.map(|h| h.cookies()).unwrap_or_default();
        let headers = headers.map(|h| h.headers()).unwrap_or_default();
        #[derive(Serialize)]
        struct Url<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            protocol: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            hostname: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            port: Option<u16>,
            pathname: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            search: Option<&'a str>,
            raw: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            full: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Socket<'a> {
            remote_address: &'a str,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            method: &'a str,
            url: Url<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            http_version: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            socket: Option<Socket<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            headers: Option<HeaderMapJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cookies: Option<HeaderMapJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            body: Option<serde_json::Value>,
        }
        Wire {
            method: truncate(&self.method),
            url: Url {
                protocol: self.protocol,
                hostname: self.hostname.as_deref().map(truncate),
                port: self.port,
                pathname: truncate(&self.pathname),
                search: self.search.as_deref().map(truncate),
                raw: truncate(&self.raw),
                full: self.full.as_deref().map(truncate),
            },
            http_version: self.http_version,
            socket: self.remote_address.as_deref().map(|remote_address| Socket { remote_address }),
            headers: (!headers.is_empty()).then_some(HeaderMapJson(&headers)),
            cookies: (!cookies.is_empty()).then_some(HeaderMapJson(&cookies)),
            body: body.and_then(|b| b.render(event)),
        }
        .serialize(s)
    }
}

impl Serialize for ResponseContext {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let headers = self.headers.as_ref().map(|h| h.headers()).unwrap_or_default();
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            status_code: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            headers: Option<HeaderMapJson<'a>>,
            finished: bool,
            headers_sent: bool,
        }
        Wire {
            status_code: self.status_code,
            headers: (!headers.is_empty()).then_some(HeaderMapJson(&headers)),
            finished: self.finished,
            headers_sent: self.headers_sent,
        }
        .serialize(s)
    }
}

impl Serialize for TransactionEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct SpanCount {
            started: u32,
            dropped: u32,
        }
        #[derive(Serialize)]
        struct Link {
            trace_id: TraceId,
            span_id: SpanId,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            id: SpanId,
            trace_id: TraceId,
            #[serde(skip_serializing_if = "Option::is_none")]
            parent_id: Option<SpanId>,
            #[serde(serialize_with = "truncated")]
            name: &'a Cow<'static, str>,
            #[serde(rename = "type", serialize_with = "truncated")]
            kind: &'a Cow<'static, str>,
            #[serde(skip_serializing_if = "Option::is_none", serialize_with = "truncated_opt")]
            result: &'a Option<Cow<'static, str>>,
            outcome: Outcome,
            timestamp: u64,
            duration: f64,
            sampled: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            sample_rate: Option<f64>,
            span_count: SpanCount,
            #[serde(skip_serializing_if = "Option::is_none")]
            context: Option<FullContext<'a>>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            links: Vec<Link>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            dropped_spans_stats: &'a [DroppedStat],
            #[serde(skip_serializing_if = "Option::is_none")]
            otel: Option<&'a Otel>,
        }
        #[derive(Serialize)]
        struct FullContext<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            tags: Option<Tags<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            request: Option<RequestJson<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            response: Option<&'a ResponseContext>,
            #[serde(skip_serializing_if = "Option::is_none")]
            user: Option<&'a User>,
            #[serde(skip_serializing_if = "Option::is_none")]
            custom: Option<Custom<'a>>,
        }
        struct Custom<'a>(&'a [(String, serde_json::Value)]);
        impl Serialize for Custom<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        let tags = (!self.labels.is_empty()).then_some(Tags(&self.labels));
        let context = match (&self.context, tags) {
            (None, None) => None,
            (ctx, tags) => Some(FullContext {
                tags,
                request: ctx.as_ref().and_then(|c| c.request.as_ref()).map(|request| RequestJson {
                    request,
                    event: BodyFor::Transaction { failed: self.outcome == Outcome::Failure },
                }),
                response: ctx.as_ref().and_then(|c| c.response.as_ref()),
                user: ctx.as_ref().and_then(|c| c.user.as_ref()),
                custom: ctx.as_ref().filter(|c| !c.custom.is_empty()).map(|c| Custom(&c.custom)),
            }),
        };
        Wire {
            id: self.id,
            trace_id: self.trace_id,
            parent_id: self.parent_id,
            name: &self.name,
            kind: &self.kind,
            result: &self.result,
            outcome: self.outcome,
            timestamp: self.timestamp,
            duration: self.duration,
            sampled: self.sampled,
            sample_rate: self.sample_rate,
            span_count: SpanCount { started: self.spans_started, dropped: self.spans_dropped },
            context,
            links: self.links.iter().map(|&(trace_id, span_id)| Link { trace_id, span_id }).collect(),
            otel: self.otel.as_deref(),
            dropped_spans_stats: &self.dropped_stats,
        }
        .serialize(s)
    }
}

/// One `dropped_spans_stats` entry: exit spans not sent, per destination resource, service
/// target and outcome.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DroppedStat {
    pub(crate) target_type: Option<Cow<'static, str>>,
    pub(crate) target_name: Option<Cow<'static, str>>,
    pub(crate) outcome: Outcome,
    pub(crate) count: u32,
    pub(crate) sum_us: u64,
}

/// Elastic's limit on `dropped_spans_stats` entries per transaction.
pub(crate) const MAX_DROPPED_STATS: usize = 128;

impl Serialize for DroppedStat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Sum {
            us: u64,
        }
        #[derive(Serialize)]
        struct Duration {
            count: u32,
            sum: Sum,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            destination_service_resource: Option<Cow<'a, str>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            service_target_type: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            service_target_name: Option<&'a str>,
            outcome: Outcome,
            duration: Duration,
        }
        Wire {
            destination_service_resource: resource(self.target_type.as_deref(), self.target_name.as_deref()),
            service_target_type: self.target_type.as_deref(),
            service_target_name: self.target_name.as_deref(),
            outcome: self.outcome,
            duration: Duration { count: self.count, sum: Sum { us: self.sum_us } },
        }
        .serialize(s)
    }
}

/// Extra context of exit spans (HTTP calls and other outgoing requests). Boxed in the span so
/// spans without it stay small.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExitContext {
    pub(crate) http_method: Option<String>,
    pub(crate) http_url: Option<String>,
    pub(crate) http_status: Option<u16>,
    pub(crate) address: Option<String>,
    pub(crate) port: Option<u16>,
    /// Borrowed when it is the span's subtype or a literal (no allocation per span).
    pub(crate) target_type: Option<Cow<'static, str>>,
    pub(crate) target_name: Option<Cow<'static, str>>,
    /// Response headers, sensitive values already replaced by `[REDACTED]`.
    pub(crate) response_headers: Vec<(String, String)>,
    /// `context.db`, for database calls.
    pub(crate) db: Option<DbContext>,
    /// `context.message`: the queue name and the message's age in ms.
    pub(crate) message: Option<(String, Option<u64>)>,
    /// Trace headers went out from inside this span, so downstream services name it as their
    /// parent: it is never dropped for being short (`EXIT_SPAN_MIN_DURATION`).
    pub(crate) propagated: bool,
}

impl ExitContext {
    /// `context.destination.service.resource`, derived from the service target as Elastic's
    /// agents do (`tracing-spans-service-target.md`): `type/name` (`postgresql/shop`,
    /// `kafka/orders`), the name alone for HTTP and gRPC (`api.example.com:443`), the type
    /// alone without a name.
    pub(crate) fn resource(&self) -> Option<Cow<'_, str>> {
        resource(self.target_type.as_deref(), self.target_name.as_deref())
    }
}

/// See [`ExitContext::resource`].
pub(crate) fn resource<'a>(kind: Option<&'a str>, name: Option<&'a str>) -> Option<Cow<'a, str>> {
    match (kind, name) {
        (Some("http" | "grpc") | None, Some(name)) => Some(Cow::Borrowed(name)),
        (Some(kind), Some(name)) => Some(Cow::Owned(format!("{kind}/{name}"))),
        (Some(kind), None) => Some(Cow::Borrowed(kind)),
        (None, None) => None,
    }
}

/// `context.db` of a database exit span (see [`crate::Span::set_db`]).
///
/// ```
/// let db = apm_runtime::DbContext {
///     kind: "sql".into(),
///     instance: Some("customers".into()),
///     statement: Some("SELECT * FROM users WHERE id = ?".into()),
///     ..Default::default()
/// };
/// assert_eq!(db.kind, "sql");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbContext {
    /// The database family: `"sql"` for SQL databases, `"redis"`, `"mongodb"`, …. Each field
    /// takes a `&'static str` without copying it (`"sql".into()`), or a `String`.
    pub kind: Cow<'static, str>,
    /// The database instance name (the SQLite file, the Postgres database).
    pub instance: Option<Cow<'static, str>>,
    /// The statement as sent; cut to 10 000 characters on the reporter thread. A prepared
    /// statement's literal costs no copy per call.
    pub statement: Option<Cow<'static, str>>,
    /// The user the statement ran as.
    pub user: Option<Cow<'static, str>>,
    /// Rows inserted, updated or deleted (or returned, for queries).
    pub rows_affected: Option<u64>,
    /// The database link (e.g. an Oracle DB link), when there is one.
    pub link: Option<Cow<'static, str>>,
}

/// The longest `context.db.statement` the intake takes (Elastic's
/// tracing-instrumentation-db spec): longer statements are cut at a character boundary.
pub(crate) const MAX_STATEMENT_CHARS: usize = 10_000;

fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// A finished span.
#[derive(Clone, Debug)]
pub struct SpanEvent {
    pub(crate) trace_id: TraceId,
    pub(crate) id: SpanId,
    pub(crate) parent_id: SpanId,
    pub(crate) transaction_id: SpanId,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: Cow<'static, str>,
    pub(crate) subtype: Option<Cow<'static, str>>,
    pub(crate) action: Option<Cow<'static, str>>,
    /// Raw clock readings: converting them to epoch µs and ms is left to the reporter thread.
    pub(crate) start: Stamp,
    pub(crate) end: Stamp,
    pub(crate) sync: bool,
    pub(crate) outcome: Outcome,
    pub(crate) sample_rate: Option<f64>,
    /// Labels and the exit context, which few spans have: boxed, so that every other span's
    /// event is 24 bytes smaller (less to write on the application thread, fewer cache lines
    /// for the reporter to pull over).
    pub(crate) more: Option<Box<SpanMore>>,
    pub(crate) thread: u64,
}

/// The parts of a span that only some spans have (see [`SpanEvent::more`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct SpanMore {
    pub(crate) labels: Labels,
    pub(crate) exit: Option<ExitContext>,
    /// The stack of the code that ended a span above `SPAN_STACK_TRACE_MIN_DURATION`, as
    /// captured; the reporter resolves it into `frames`.
    pub(crate) stack: Option<RawStack>,
    pub(crate) frames: Vec<Frame>,
    /// What a bridged `tracing` span recorded; the reporter maps it onto the fields above
    /// (`model::otel::apply`) before any sink sees the span.
    pub(crate) otel: Option<Otel>,
    /// Set on the span that stands for several compressed ones (`deliver::compress`).
    pub(crate) composite: Option<Composite>,
}

/// `composite`: the spans a compressed span stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Composite {
    pub(crate) count: u32,
    /// The sum of their durations, µs.
    pub(crate) sum_us: u64,
    /// `exact_match` (same name too) or `same_kind` (same type, subtype and destination).
    pub(crate) strategy: &'static str,
}

impl Serialize for Composite {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire {
            count: u32,
            sum: f64,
            compression_strategy: &'static str,
        }
        Wire { count: self.count, sum: self.sum_us as f64 / 1000.0, compression_strategy: self.strategy }.serialize(s)
    }
}

impl SpanEvent {
    /// Whether dropping the event frees anything: `false` means its drop glue is a no-op.
    #[inline]
    pub(crate) fn owns_heap(&self) -> bool {
        // Every field named, so that a new field has to be considered here.
        let SpanEvent {
            trace_id: _,
            id: _,
            parent_id: _,
            transaction_id: _,
            name,
            kind,
            subtype,
            action,
            start: _,
            end: _,
            sync: _,
            outcome: _,
            sample_rate: _,
            more,
            thread: _,
        } = self;
        let owned = |c: &Cow<'static, str>| matches!(c, Cow::Owned(_));
        owned(name)
            || owned(kind)
            || subtype.as_ref().is_some_and(owned)
            || action.as_ref().is_some_and(owned)
            || more.is_some()
    }

    /// The span's labels, in the order they were set.
    pub(crate) fn labels(&self) -> &[(Cow<'static, str>, LabelValue)] {
        self.more.as_ref().map_or(&[], |m| &m.labels)
    }

    /// The exit context, for spans that recorded an outgoing call.
    pub(crate) fn exit(&self) -> Option<&ExitContext> {
        self.more.as_ref().and_then(|m| m.exit.as_ref())
    }

    /// The labels and exit context, made on first use.
    pub(crate) fn more_mut(&mut self) -> &mut SpanMore {
        self.more.get_or_insert_with(Box::default)
    }
}

impl Serialize for SpanEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Http<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            method: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            url: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            status_code: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            response: Option<Response<'a>>,
        }
        #[derive(Serialize)]
        struct Response<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            status_code: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            headers: Option<Headers<'a>>,
        }
        struct Headers<'a>(&'a [(String, String)]);
        impl Serialize for Headers<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        #[derive(Serialize)]
        struct Resource<'a> {
            resource: Cow<'a, str>,
        }
        #[derive(Serialize)]
        struct Destination<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            address: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            port: Option<u16>,
            service: Resource<'a>,
        }
        #[derive(Serialize)]
        struct Target<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Service<'a> {
            target: Target<'a>,
        }
        #[derive(Serialize)]
        struct Db<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            instance: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            statement: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            user: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            rows_affected: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            link: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Queue<'a> {
            name: &'a str,
        }
        #[derive(Serialize)]
        struct Age {
            ms: u64,
        }
        #[derive(Serialize)]
        struct Message<'a> {
            queue: Queue<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            age: Option<Age>,
        }
        #[derive(Serialize)]
        struct Ctx<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            tags: Option<Tags<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            db: Option<Db<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<Message<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            http: Option<Http<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            destination: Option<Destination<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            service: Option<Service<'a>>,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            id: SpanId,
            trace_id: TraceId,
            parent_id: SpanId,
            transaction_id: SpanId,
            #[serde(serialize_with = "truncated")]
            name: &'a Cow<'static, str>,
            #[serde(rename = "type", serialize_with = "truncated")]
            kind: &'a Cow<'static, str>,
            #[serde(skip_serializing_if = "Option::is_none", serialize_with = "truncated_opt")]
            subtype: &'a Option<Cow<'static, str>>,
            #[serde(skip_serializing_if = "Option::is_none", serialize_with = "truncated_opt")]
            action: &'a Option<Cow<'static, str>>,
            timestamp: u64,
            duration: f64,
            sync: bool,
            outcome: Outcome,
            #[serde(skip_serializing_if = "Option::is_none")]
            sample_rate: Option<f64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            context: Option<Ctx<'a>>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            stacktrace: &'a [Frame],
            #[serde(skip_serializing_if = "Option::is_none")]
            otel: Option<&'a Otel>,
            #[serde(skip_serializing_if = "Option::is_none")]
            composite: Option<Composite>,
        }
        let labels = self.labels();
        let tags = (!labels.is_empty()).then_some(Tags(labels));
        let context = match (self.exit(), tags) {
            (None, None) => None,
            (exit, tags) => {
                let resource = exit.and_then(ExitContext::resource);
                Some(Ctx {
                    tags,
                    db: exit.and_then(|e| e.db.as_ref()).map(|d| Db {
                        kind: &d.kind,
                        instance: d.instance.as_deref(),
                        statement: d.statement.as_deref().map(|st| cut_chars(st, MAX_STATEMENT_CHARS)),
                        user: d.user.as_deref(),
                        rows_affected: d.rows_affected,
                        link: d.link.as_deref(),
                    }),
                    message: exit
                        .and_then(|e| e.message.as_ref())
                        .map(|(queue, age)| Message { queue: Queue { name: queue }, age: age.map(|ms| Age { ms }) }),
                    http: exit.filter(|e| e.http_url.is_some() || e.http_method.is_some()).map(|e| Http {
                        method: e.http_method.as_deref(),
                        url: e.http_url.as_deref(),
                        status_code: e.http_status,
                        response: (e.http_status.is_some() || !e.response_headers.is_empty()).then(|| Response {
                            status_code: e.http_status,
                            headers: (!e.response_headers.is_empty()).then_some(Headers(&e.response_headers)),
                        }),
                    }),
                    destination: exit.zip(resource).map(|(e, resource)| Destination {
                        address: e.address.as_deref(),
                        port: e.port,
                        service: Resource {
                            resource: match resource {
                                Cow::Borrowed(r) => Cow::Borrowed(truncate(r)),
                                Cow::Owned(r) => Cow::Owned(truncate(&r).to_string()),
                            },
                        },
                    }),
                    service: exit.and_then(|e| {
                        e.target_type
                            .as_deref()
                            .map(|kind| Service { target: Target { kind, name: e.target_name.as_deref() } })
                    }),
                })
            }
        };
        Wire {
            id: self.id,
            trace_id: self.trace_id,
            parent_id: self.parent_id,
            transaction_id: self.transaction_id,
            name: &self.name,
            kind: &self.kind,
            subtype: &self.subtype,
            action: &self.action,
            timestamp: self.start.epoch_us(),
            duration: self.start.ms_until(self.end),
            sync: self.sync,
            outcome: self.outcome,
            sample_rate: self.sample_rate,
            context,
            stacktrace: self.more.as_ref().map_or(&[], |m| &m.frames),
            otel: self.more.as_ref().and_then(|m| m.otel.as_ref()),
            composite: self.more.as_ref().and_then(|m| m.composite),
        }
        .serialize(s)
    }
}

/// A captured error or panic, tied to its trace, transaction and parent span; or, when it
/// happened outside any transaction, to a trace of its own with no transaction fields (as
/// Elastic's other agents report such errors).
#[derive(Clone, Debug)]
pub struct ErrorEvent {
    pub(crate) id: TraceId,
    pub(crate) trace_id: TraceId,
    pub(crate) parent_id: SpanId,
    pub(crate) transaction: Option<ErrorTransaction>,
    pub(crate) timestamp: u64,
    pub(crate) culprit: Option<String>,
    pub(crate) exception_type: String,
    pub(crate) message: String,
    pub(crate) handled: bool,
    pub(crate) thread: u64,
    /// `exception.cause`: the `source()` chain, outermost first.
    pub(crate) causes: Vec<Cause>,
    /// The stack as captured; the reporter resolves it into `frames` (and, when no culprit was
    /// given, the culprit) before any sink sees the event.
    pub(crate) stack: Option<RawStack>,
    pub(crate) frames: Vec<Frame>,
    /// `context.tags`: the fields of a `tracing` event reported as an error.
    pub(crate) labels: Labels,
    /// `log`: what a logged error said (a `tracing` ERROR event). With an empty
    /// `exception_type` the error is sent as this log record alone, with no `exception`.
    pub(crate) log: Option<Box<ErrorLog>>,
}

/// The `log` of an error event that was logged rather than raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorLog {
    pub(crate) message: String,
    pub(crate) level: &'static str,
    /// The `tracing` target (a module path, unless the code named another).
    pub(crate) logger_name: &'static str,
}

/// One error of an `exception.cause` chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Cause {
    pub(crate) message: String,
    /// Known only for the error types the agent can recognise behind a `dyn Error`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<&'static str>,
}

/// The transaction an error happened in.
#[derive(Clone, Debug)]
pub(crate) struct ErrorTransaction {
    pub(crate) id: SpanId,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: Cow<'static, str>,
    pub(crate) sampled: bool,
    /// The transaction's incoming request, sent as the error's `context.request`.
    pub(crate) request: Option<Request>,
}

impl ErrorEvent {
    /// Whether the error has an `exception` (raised, or logged with an error value); a logged
    /// error with none is its `log` alone.
    pub(crate) fn has_exception(&self) -> bool {
        self.log.is_none() || !self.exception_type.is_empty()
    }
}

impl Serialize for ErrorEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Exception<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            module: Option<&'a str>,
            handled: bool,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            stacktrace: &'a [Frame],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            cause: &'a [Cause],
        }
        #[derive(Serialize)]
        struct Tx<'a> {
            name: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            sampled: bool,
        }
        #[derive(Serialize)]
        struct Log<'a> {
            message: &'a str,
            level: &'a str,
            logger_name: &'a str,
        }
        #[derive(Serialize)]
        struct Ctx<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            tags: Option<Tags<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            request: Option<RequestJson<'a>>,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            id: TraceId,
            trace_id: TraceId,
            #[serde(skip_serializing_if = "Option::is_none")]
            transaction_id: Option<SpanId>,
            parent_id: SpanId,
            timestamp: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            culprit: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            exception: Option<Exception<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            log: Option<Log<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            transaction: Option<Tx<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            context: Option<Ctx<'a>>,
        }
        Wire {
            id: self.id,
            trace_id: self.trace_id,
            transaction_id: self.transaction.as_ref().map(|t| t.id),
            parent_id: self.parent_id,
            timestamp: self.timestamp,
            culprit: self.culprit.as_deref().map(truncate),
            exception: self.has_exception().then(|| Exception {
                message: &self.message,
                kind: truncate(&self.exception_type),
                module: crate::model::stacktrace::type_module(&self.exception_type).map(truncate),
                handled: self.handled,
                stacktrace: &self.frames,
                cause: &self.causes,
            }),
            log: self.log.as_deref().map(|l| Log {
                message: &l.message,
                level: l.level,
                logger_name: truncate(l.logger_name),
            }),
            transaction: self.transaction.as_ref().map(|t| Tx {
                name: truncate(&t.name),
                kind: truncate(&t.kind),
                sampled: t.sampled,
            }),
            context: {
                let tags = (!self.labels.is_empty()).then_some(Tags(&self.labels));
                let request = self.transaction.as_ref().and_then(|t| t.request.as_ref());
                let request = request.map(|request| RequestJson { request, event: BodyFor::Error });
                (tags.is_some() || request.is_some()).then_some(Ctx { tags, request })
            },
        }
        .serialize(s)
    }
}

/// A finished span with made-up ids, for unit tests of what carries and writes spans.
#[cfg(test)]
pub(crate) fn test_span(name: &str) -> SpanEvent {
    let start = Stamp::now();
    SpanEvent {
        trace_id: TraceId::random(),
        id: SpanId::random(),
        parent_id: SpanId::random(),
        transaction_id: SpanId::random(),
        name: Cow::Owned(name.to_string()),
        kind: Cow::Borrowed("app"),
        subtype: None,
        action: None,
        start,
        end: start,
        sync: true,
        outcome: Outcome::Success,
        sample_rate: Some(1.0),
        more: None,
        thread: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_owns_heap_memory_exactly_when_some_field_was_allocated() {
        let borrowed = |mut s: SpanEvent| {
            s.name = Cow::Borrowed("static");
            s
        };
        assert!(test_span("owned name").owns_heap());
        assert!(!borrowed(test_span("x")).owns_heap(), "static names, no labels, no exit: nothing to free");
        let mut s = borrowed(test_span("x"));
        s.kind = Cow::Owned("db".into());
        assert!(s.owns_heap());
        let mut s = borrowed(test_span("x"));
        s.subtype = Some(Cow::Borrowed("postgresql"));
        s.action = Some(Cow::Borrowed("query"));
        assert!(!s.owns_heap());
        s.action = Some(Cow::Owned("query".into()));
        assert!(s.owns_heap());
        let mut s = borrowed(test_span("x"));
        s.more_mut().labels.push((Cow::Borrowed("k"), LabelValue::from(1)));
        assert!(s.owns_heap());
        let mut s = borrowed(test_span("x"));
        s.more_mut().exit = Some(ExitContext::default());
        assert!(s.owns_heap());
    }

    fn span(name: &str, subtype: Option<&str>, sample_rate: Option<f64>) -> SpanEvent {
        span_lasting(name, subtype, sample_rate, std::time::Duration::from_nanos(12_345_678))
    }

    fn span_lasting(name: &str, subtype: Option<&str>, sample_rate: Option<f64>, d: std::time::Duration) -> SpanEvent {
        let mut s = test_span(name);
        s.subtype = subtype.map(|s| Cow::Owned(s.to_string()));
        s.action = Some(Cow::Borrowed("query"));
        s.end = s.start.plus(d);
        s.sync = false;
        s.outcome = Outcome::Failure;
        s.sample_rate = sample_rate;
        s
    }

    #[test]
    fn the_direct_span_writer_matches_serde() {
        let long = "ü".repeat(2000);
        for s in [
            span("plain", Some("postgresql"), Some(0.25)),
            span("needs \"escaping\"\n\\ and \u{1}", None, None),
            span(&long, Some("x"), Some(1.0)),
            span("", None, Some(0.0001)),
        ]
        .into_iter()
        .chain(
            [0, 1, 999, 1_000, 1_001, 1_010, 1_100, 12_345, 100_000, 999_999_999, 86_400_000_123]
                .map(|us| span_lasting("timed", None, Some(1.0), std::time::Duration::from_nanos(us * 1_000 + 999))),
        ) {
            let mut fast = Vec::new();
            Event::Span(Box::new(s.clone())).write_ndjson(&mut fast);
            let via_serde = serde_json::to_vec(&Line("span", &s)).unwrap();
            assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&via_serde) + "\n", "byte for byte");
        }
    }
}
