//! Spans and transactions that come from another tracing system (the `tracing` crate's spans,
//! through `integrations::tracing`): their fields as recorded, sent as the intake's `otel`
//! object (Elastic's OpenTelemetry bridge format: `otel.attributes`, `otel.span_kind`), and the
//! OpenTelemetry semantic conventions that fill Elastic's own fields from them.
//!
//! The application thread only stores what it was given ([`Otel`]); the mapping
//! ([`apply`]) runs on the reporter thread before any sink sees the event, so the waterfall,
//! the service map and the dependencies view get `db/postgresql`, `context.db`,
//! `context.destination` and `context.service.target` without the APM Server inferring them,
//! and the application pays for none of the string matching. The rules are Elastic's
//! (`specs/agents/tracing-api-otel.md`, "Compatibility mapping"; `tracing-spans-service-target.md`),
//! with the attribute names of the current conventions (`db.query.text`, `db.system.name`,
//! `server.address`, `url.full`, `http.request.method`, `messaging.destination.name`) and of the
//! older ones (`db.statement`, `db.system`, `net.peer.name`, `http.url`, `http.method`).

// Written by the `tracing` bridge only; without it, spans carry no `Otel` and this is unused.
#![cfg_attr(not(feature = "tracing"), allow(dead_code))]

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::model::event::{
    DbContext, Event, ExitContext, Outcome, RequestContext, ResponseContext, SpanEvent, TransactionEvent, TxContext,
};

/// One attribute value, as the `tracing` crate hands them over.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrValue {
    Str(Cow<'static, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl AttrValue {
    fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(v) => Some(*v),
            AttrValue::Float(v) if v.fract() == 0.0 => Some(*v as i64),
            AttrValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(v) => s.serialize_str(v),
            AttrValue::Int(v) => s.serialize_i64(*v),
            AttrValue::Float(v) => s.serialize_f64(*v),
            AttrValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

/// What a bridged span or transaction was told: its fields, and the `otel.*` fields that
/// `tracing-opentelemetry` gives a meaning (`otel.name`, `otel.kind`, `otel.status_code`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Otel {
    /// Field names are the `tracing` callsite's, which live as long as the program.
    pub(crate) attributes: Vec<(&'static str, AttrValue)>,
    /// `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER` or `INTERNAL` (the default).
    pub(crate) span_kind: Option<&'static str>,
    /// `otel.name`: the name to send instead of the span's.
    pub(crate) name: Option<Cow<'static, str>>,
    /// `otel.status_code`: `ok` or `error` as an outcome (an explicit word, which wins over
    /// what the status code would say).
    pub(crate) status: Option<Outcome>,
    /// The `tracing` callsite's target and level, sent among the attributes (kept apart so
    /// that the application thread copies two pointers rather than growing the list).
    pub(crate) target: &'static str,
    pub(crate) level: &'static str,
}

impl Otel {
    /// Sets `key`, replacing an earlier value (a field recorded again later).
    pub(crate) fn set(&mut self, key: &'static str, value: AttrValue) {
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The first of `keys` present as a non-empty string.
    pub(crate) fn str(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k).and_then(AttrValue::as_str).filter(|s| !s.is_empty()))
    }

    /// The first of `keys` present as an integer (or a string of one).
    pub(crate) fn int(&self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.get(k).and_then(AttrValue::as_int))
    }

    fn kind(&self) -> &'static str {
        self.span_kind.unwrap_or("INTERNAL")
    }
}

/// The span kind `otel.kind` names (any case, as `tracing-opentelemetry` reads it).
pub(crate) fn span_kind(value: &str) -> Option<&'static str> {
    const KINDS: [&str; 5] = ["SERVER", "CLIENT", "PRODUCER", "CONSUMER", "INTERNAL"];
    KINDS.into_iter().find(|k| k.eq_ignore_ascii_case(value))
}

/// The outcome `otel.status_code` names: `error` is a failure, `ok` a success, `unset` nothing.
pub(crate) fn status(value: &str) -> Option<Outcome> {
    if value.eq_ignore_ascii_case("error") {
        Some(Outcome::Failure)
    } else if value.eq_ignore_ascii_case("ok") {
        Some(Outcome::Success)
    } else {
        None
    }
}

impl Serialize for Otel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Attributes<'a>(&'a Otel);
        impl Serialize for Attributes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(None)?;
                for (k, v) in &self.0.attributes {
                    map.serialize_entry(k, v)?;
                }
                // A field of the same name, recorded by the application, wins.
                for (k, v) in [("target", self.0.target), ("level", self.0.level)] {
                    if !v.is_empty() && self.0.get(k).is_none() {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
        }
        let mut map = s.serialize_map(None)?;
        if !self.attributes.is_empty() || !self.target.is_empty() {
            map.serialize_entry("attributes", &Attributes(self))?;
        }
        map.serialize_entry("span_kind", self.kind())?;
        map.end()
    }
}

/// Fills Elastic's fields of every bridged span and transaction in `batch` from its attributes.
pub(crate) fn apply(batch: &mut [Event]) {
    for event in batch {
        match event {
            Event::Span(span) if span.more.as_ref().is_some_and(|m| m.otel.is_some()) => apply_to_span(span),
            Event::Transaction(tx) if tx.otel.is_some() => apply_to_transaction(tx),
            _ => {}
        }
    }
}

/// SQL databases: Elastic's `context.db.type` is `sql` for them, the system's name otherwise.
const SQL_SYSTEMS: [&str; 13] = [
    "postgresql",
    "mysql",
    "mariadb",
    "mssql",
    "oracle",
    "sqlite",
    "db2",
    "h2",
    "derby",
    "hsqldb",
    "cockroachdb",
    "other_sql",
    "clickhouse",
];

/// Elastic's subtype for an OTel `db.system` value (the newer names of a few systems differ).
fn db_subtype(system: &str) -> String {
    match system {
        "microsoft.sql_server" => "mssql".into(),
        "oracle.db" => "oracle".into(),
        "ibm.db2" => "db2".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// Elastic's span type, subtype, action, destination and service target from the attributes.
pub(crate) fn apply_to_span(span: &mut SpanEvent) {
    let Some(more) = span.more.as_deref_mut() else { return };
    let Some(otel) = more.otel.as_ref() else { return };
    let explicit_name = otel.name.clone();
    let explicit_status = otel.status;
    let kind = otel.kind();
    let mut outcome = None;
    let mut name = None;
    let mut mapped: Option<(&'static str, String, Option<&'static str>, ExitContext)> = None;

    if let Some(system) = otel.str(&["db.system.name", "db.system"]) {
        let subtype = db_subtype(system);
        let instance = otel.str(&["db.namespace", "db.name"]).map(str::to_string);
        let statement = otel.str(&["db.query.text", "db.statement"]).map(str::to_string);
        let (address, port) = peer(otel);
        let exit = ExitContext {
            address,
            port,
            target_type: Some(subtype.clone().into()),
            target_name: instance.clone().map(Cow::Owned),
            db: Some(DbContext {
                kind: if SQL_SYSTEMS.contains(&subtype.as_str()) { "sql".into() } else { subtype.clone().into() },
                instance: instance.map(Cow::Owned),
                statement: statement.map(Cow::Owned),
                user: otel.str(&["db.user"]).map(|u| Cow::Owned(u.to_string())),
                rows_affected: otel
                    .int(&["db.response.affected_rows", "db.rows_affected"])
                    .and_then(|n| u64::try_from(n).ok()),
                link: None,
            }),
            ..ExitContext::default()
        };
        // sqlx names its spans `db.query` and says what they do in `db.query.summary`, as the
        // conventions want the name to be.
        name = otel.str(&["db.query.summary"]).map(|s| Cow::Owned(s.to_string()));
        mapped = Some(("db", subtype, Some("query"), exit));
    } else if let Some(system) = otel.str(&["messaging.system"]) {
        let subtype = system.to_ascii_lowercase();
        let temporary = matches!(otel.get("messaging.destination.temporary"), Some(AttrValue::Bool(true)));
        let queue = otel.str(&["messaging.destination.name", "messaging.destination"]).map(str::to_string);
        let operation = otel.str(&["messaging.operation.type", "messaging.operation"]).unwrap_or("");
        let action = match operation {
            "publish" | "send" | "create" => Some("send"),
            "receive" | "process" | "deliver" => Some("receive"),
            _ => None,
        };
        let (address, port) = peer(otel);
        let target_name = queue.clone().filter(|_| !temporary);
        let exit = ExitContext {
            address,
            port,
            target_type: Some(subtype.clone().into()),
            target_name: target_name.map(Cow::Owned),
            message: queue.map(|q| (q, None)),
            ..ExitContext::default()
        };
        mapped = Some(("messaging", subtype, action, exit));
    } else if let Some(system) = otel.str(&["rpc.system"]) {
        let subtype = system.to_ascii_lowercase();
        let (address, port) = peer(otel);
        let target_name =
            address.as_deref().map(|a| host_port(a, port)).or_else(|| otel.str(&["rpc.service"]).map(str::to_string));
        let exit = ExitContext {
            address,
            port,
            target_type: Some(subtype.clone().into()),
            target_name: target_name.map(Cow::Owned),
            ..ExitContext::default()
        };
        mapped = Some(("external", subtype, None, exit));
    } else if kind != "SERVER" {
        let method = otel.str(&["http.request.method", "http.method"]);
        let url = otel.str(&["url.full", "http.url"]);
        if method.is_some() && url.is_some() || url.is_some() && kind == "CLIENT" {
            let status = otel.int(&["http.response.status_code", "http.status_code"]);
            let parsed = url.and_then(parse_url);
            let (mut address, mut port) = peer(otel);
            if let Some(u) = &parsed {
                address = address.or_else(|| Some(u.host.to_string()));
                port = port.or(u.port);
            }
            let status = status.and_then(|s| u16::try_from(s).ok());
            if status.is_some_and(|s| s >= 400) {
                outcome = Some(Outcome::Failure);
            }
            let target_name = address.as_deref().map(|a| host_port(a, port));
            let exit = ExitContext {
                http_method: method.map(str::to_string),
                http_url: url.map(str::to_string),
                http_status: status,
                address,
                port,
                target_type: Some(Cow::Borrowed("http")),
                target_name: target_name.map(Cow::Owned),
                ..ExitContext::default()
            };
            mapped = Some(("external", "http".into(), None, exit));
        }
    }

    match mapped {
        Some((kind, subtype, action, exit)) => {
            span.kind = Cow::Borrowed(kind);
            span.subtype = Some(Cow::Owned(subtype));
            if let Some(action) = action {
                span.action = Some(Cow::Borrowed(action));
            }
            more.exit = Some(exit);
        }
        // Elastic's rule for a span with no known attributes: internal work, or an unknown kind
        // of call.
        None if span.kind == "app" && span.subtype.is_none() => {
            if kind == "INTERNAL" {
                span.subtype = Some(Cow::Borrowed("internal"));
            } else {
                span.kind = Cow::Borrowed("unknown");
            }
        }
        None => {}
    }
    if let Some(n) = explicit_name.or(name) {
        span.name = n;
    }
    if let Some(o) = explicit_status.or(outcome) {
        span.outcome = o;
    }
}

/// The name, request and response context, result and outcome of a bridged transaction.
pub(crate) fn apply_to_transaction(tx: &mut TransactionEvent) {
    let Some(otel) = tx.otel.as_deref() else { return };
    if let Some(name) = &otel.name {
        tx.name = name.clone();
    }
    let status = otel.int(&["http.response.status_code", "http.status_code"]).and_then(|s| u16::try_from(s).ok());
    if let Some(o) = otel.status {
        tx.outcome = o;
    } else if status.is_some_and(|s| s >= 500) {
        // Elastic's HTTP server rule: 5xx is the server's failure, 4xx the client's.
        tx.outcome = Outcome::Failure;
    }
    if tx.result.is_none() {
        if let Some(s) = status {
            tx.result = Some(Cow::Owned(format!("HTTP {}xx", s / 100)));
        }
    }
    if !tx.sampled {
        return;
    }
    let request = request_context(otel);
    let has_request = tx.context.as_ref().is_some_and(|c| c.request.is_some());
    if request.is_none() && status.is_none() || has_request {
        return;
    }
    let context = tx.context.get_or_insert_with(Box::<TxContext>::default);
    context.request = request.map(|r| crate::model::event::Request::Recorded(Box::new(r)));
    if status.is_some() && context.response.is_none() {
        context.response =
            Some(ResponseContext { status_code: status, headers: None, finished: true, headers_sent: true });
    }
}

/// `context.request` from the OTel HTTP server attributes, or from the fields tower-http's
/// `TraceLayer` records (`method`, `uri`, `version`).
fn request_context(otel: &Otel) -> Option<RequestContext<'static>> {
    let method = otel.str(&["http.request.method", "http.method", "method"])?;
    let full = otel.str(&["url.full", "http.url"]);
    let target = otel.str(&["http.target", "uri"]);
    let (pathname, search);
    let (mut protocol, mut hostname, mut port) = (None, None, None);
    let raw;
    if let Some(full) = full.or(target.filter(|t| t.contains("://"))) {
        let parsed = parse_url(full)?;
        protocol = parsed.scheme.map(|s| if s == "https" { "https:" } else { "http:" });
        hostname = Some(parsed.host.to_string());
        port = parsed.port;
        let (p, q) = split_query(parsed.rest);
        (pathname, search) = (p, q);
        raw = parsed.rest.to_string();
    } else if let Some(path) = otel.str(&["url.path"]) {
        pathname = path;
        search = otel.str(&["url.query"]);
        raw = match search {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
    } else {
        let target = target?;
        let (p, q) = split_query(target);
        (pathname, search) = (p, q);
        raw = target.to_string();
    }
    let version = otel.str(&["network.protocol.version", "http.flavor", "version"]).map(|v| {
        match v.trim_start_matches("HTTP/") {
            "0.9" => "0.9",
            "1.0" => "1.0",
            "2" | "2.0" => "2.0",
            "3" | "3.0" => "3.0",
            _ => "1.1",
        }
    });
    let pathname = pathname.to_string();
    let full = hostname.as_ref().map(|h| {
        let scheme = protocol.unwrap_or("http:");
        match port {
            Some(p) => format!("{scheme}//{h}:{p}{raw}"),
            None => format!("{scheme}//{h}{raw}"),
        }
    });
    let owned = |s: &str| Cow::Owned(s.to_string());
    Some(RequestContext {
        method: owned(method),
        protocol,
        hostname: hostname.map(Cow::Owned),
        port,
        pathname: Cow::Owned(pathname),
        search: search.map(owned),
        raw: Cow::Owned(raw),
        full: full.map(Cow::Owned),
        http_version: version,
        remote_address: otel.str(&["client.address", "net.sock.peer.addr"]).map(owned),
    })
}

fn split_query(target: &str) -> (&str, Option<&str>) {
    let target = target.split('#').next().unwrap_or(target);
    match target.split_once('?') {
        Some((p, q)) => (if p.is_empty() { "/" } else { p }, Some(q)),
        None => (if target.is_empty() { "/" } else { target }, None),
    }
}

/// The peer from `server.address`/`server.port` (or the older `net.peer.*`).
fn peer(otel: &Otel) -> (Option<String>, Option<u16>) {
    let address = otel.str(&["server.address", "net.peer.name", "net.peer.ip", "network.peer.address"]);
    let port = otel.int(&["server.port", "net.peer.port", "network.peer.port"]).and_then(|p| u16::try_from(p).ok());
    (address.map(str::to_string), port)
}

fn host_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if host.contains(':') && !host.starts_with('[') => format!("[{host}]:{p}"),
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// The parts of an absolute URL a span needs (no URL crate: the host, the port, and the rest).
struct Url<'a> {
    scheme: Option<&'a str>,
    host: &'a str,
    /// The explicit port, else the scheme's.
    port: Option<u16>,
    /// Path, query and fragment.
    rest: &'a str,
}

fn parse_url(url: &str) -> Option<Url<'_>> {
    let (scheme, after) = match url.split_once("://") {
        Some((s, a)) => (Some(s), a),
        None => (None, url),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (h, tail) = v6.split_once(']')?;
        (h, tail.strip_prefix(':').and_then(|p| p.parse().ok()))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = port.or(match scheme {
        Some("http") | Some("ws") => Some(80),
        Some("https") | Some("wss") => Some(443),
        _ => None,
    });
    Some(Url { scheme, host, port, rest: if rest.is_empty() { "/" } else { rest } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::test_span;

    fn bridged(attributes: &[(&'static str, AttrValue)], kind: Option<&'static str>) -> SpanEvent {
        let mut span = test_span("db.query");
        span.outcome = Outcome::Success;
        let otel = Otel { attributes: attributes.to_vec(), span_kind: kind, ..Otel::default() };
        span.more_mut().otel = Some(otel);
        apply_to_span(&mut span);
        span
    }

    fn s(v: &'static str) -> AttrValue {
        AttrValue::Str(Cow::Borrowed(v))
    }

    #[test]
    fn sqlx_query_spans_become_db_spans_named_by_their_summary() {
        let span = bridged(
            &[
                ("db.system.name", s("postgresql")),
                ("db.operation.name", s("SELECT")),
                ("db.query.summary", s("SELECT id FROM users")),
                ("db.query.text", s("SELECT id FROM users WHERE id = $1")),
                ("db.response.affected_rows", AttrValue::Int(0)),
                ("server.address", s("db.internal")),
                ("server.port", AttrValue::Int(5432)),
                ("db.namespace", s("shop")),
            ],
            Some("CLIENT"),
        );
        assert_eq!((span.kind.as_ref(), span.subtype.as_deref()), ("db", Some("postgresql")));
        assert_eq!(span.name, "SELECT id FROM users");
        let exit = span.exit().unwrap();
        let db = exit.db.as_ref().unwrap();
        assert_eq!((db.kind.as_ref(), db.statement.as_deref()), ("sql", Some("SELECT id FROM users WHERE id = $1")));
        assert_eq!(exit.resource().as_deref(), Some("postgresql/shop"));
        assert_eq!((exit.address.as_deref(), exit.port), (Some("db.internal"), Some(5432)));
    }

    #[test]
    fn http_client_spans_take_host_and_port_from_the_url_and_fail_on_4xx() {
        let span = bridged(
            &[
                ("http.request.method", s("GET")),
                ("url.full", s("https://api.example.com/v1/users?x=1")),
                ("http.response.status_code", AttrValue::Int(503)),
            ],
            Some("CLIENT"),
        );
        assert_eq!((span.kind.as_ref(), span.subtype.as_deref()), ("external", Some("http")));
        let exit = span.exit().unwrap();
        assert_eq!(exit.target_name.as_deref(), Some("api.example.com:443"));
        assert_eq!(exit.http_status, Some(503));
        assert_eq!(span.outcome, Outcome::Failure);
    }

    #[test]
    fn messaging_and_plain_spans() {
        let span = bridged(
            &[
                ("messaging.system", s("kafka")),
                ("messaging.destination.name", s("orders")),
                ("messaging.operation.type", s("publish")),
            ],
            Some("PRODUCER"),
        );
        assert_eq!(
            (span.kind.as_ref(), span.subtype.as_deref(), span.action.as_deref()),
            ("messaging", Some("kafka"), Some("send"))
        );
        assert_eq!(span.exit().unwrap().resource().as_deref(), Some("kafka/orders"));
        let plain = bridged(&[("user", s("ada"))], None);
        assert_eq!((plain.kind.as_ref(), plain.subtype.as_deref()), ("app", Some("internal")));
        assert!(plain.exit().is_none());
    }

    #[test]
    fn urls_parse_with_ports_userinfo_and_ipv6() {
        let u = parse_url("http://user:pw@[::1]:8080/a?b").unwrap();
        assert_eq!((u.host, u.port, u.rest), ("::1", Some(8080), "/a?b"));
        let u = parse_url("https://example.com").unwrap();
        assert_eq!((u.host, u.port, u.rest), ("example.com", Some(443), "/"));
        assert!(parse_url("/relative").is_none());
        assert_eq!(host_port("::1", Some(80)), "[::1]:80");
    }
}
