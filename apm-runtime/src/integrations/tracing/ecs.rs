//! Log lines that point at their trace: an ECS JSON event formatter for
//! `tracing_subscriber::fmt` (Elastic's "log correlation"), one JSON object per line with
//! `@timestamp`, `log.level`, `message`, `log.logger`, the event's fields, `service.name` and,
//! under a transaction, `trace.id`, `transaction.id` and `span.id`; a logged ERROR that the
//! bridge layer reported also carries its `error.id`.

use std::cell::Cell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::model::ids::TraceId;
use crate::record::context::Context;

/// Formats `tracing` events as ECS JSON lines carrying the current trace's ids. Use it with
/// `tracing_subscriber::fmt().event_format(EcsFormat::new())`, or on a `fmt::layer()` beside
/// [`super::layer()`] (put the bridge layer first, so that a logged error's `error.id` is known
/// when its line is written).
///
/// ```
/// use apm_runtime::integrations::tracing::EcsFormat;
/// let subscriber = tracing_subscriber::fmt().event_format(EcsFormat::new()).finish();
/// tracing::subscriber::with_default(subscriber, || tracing::info!(order = 42, "created"));
/// // {"@timestamp":"…","log.level":"info","message":"created","ecs.version":"1.6.0",
/// //  "log.logger":"rust_out","order":42,"service.name":"…"}
/// ```
#[derive(Clone, Debug, Default)]
pub struct EcsFormat {
    service_name: Option<String>,
}

impl EcsFormat {
    /// A formatter naming the service as the installed agent does (`ELASTIC_APM_SERVICE_NAME`).
    ///
    /// ```
    /// let f = apm_runtime::integrations::tracing::EcsFormat::new();
    /// # let _ = f;
    /// ```
    pub fn new() -> EcsFormat {
        EcsFormat::default()
    }

    /// Names the service explicitly (for logs written before the agent starts, or without one).
    ///
    /// ```
    /// let f = apm_runtime::integrations::tracing::EcsFormat::new().service_name("checkout");
    /// # let _ = f;
    /// ```
    pub fn service_name(mut self, name: impl Into<String>) -> EcsFormat {
        self.service_name = Some(name.into());
        self
    }
}

thread_local! {
    /// The last error the bridge layer reported for a logged event: the event's address and the
    /// error's id, read back when the same event is formatted.
    static LAST_ERROR: Cell<Option<(usize, TraceId)>> = const { Cell::new(None) };
}

/// Notes that `event` was reported as the error `id` (see [`LAST_ERROR`]).
pub(super) fn note_error_id(event: &Event<'_>, id: TraceId) {
    let _ = LAST_ERROR.try_with(|l| l.set(Some((event as *const Event<'_> as usize, id))));
}

fn error_id_of(event: &Event<'_>) -> Option<TraceId> {
    let at = event as *const Event<'_> as usize;
    LAST_ERROR.try_with(|l| l.get().filter(|(e, _)| *e == at).map(|(_, id)| id)).ok().flatten()
}

/// RFC 3339 UTC with milliseconds, as ECS wants `@timestamp`.
fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = crate::model::clock::civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", sod / 3600, sod % 3600 / 60, sod % 60, now.subsec_millis())
}

/// The event's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // ECS's error fields, for the conventional name.
        if field.name() == "error" {
            self.0.insert("error.message".into(), Value::from(value.to_string()));
        } else {
            self.0.insert(field.name().to_string(), Value::from(value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for EcsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("@timestamp".into(), Value::from(timestamp()));
        line.insert("log.level".into(), Value::from(meta.level().as_str().to_ascii_lowercase()));
        line.insert("message".into(), Value::from(""));
        line.insert("ecs.version".into(), Value::from("1.6.0"));
        line.insert("log.logger".into(), Value::from(meta.target()));
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        if let Some(message) = fields.remove("message") {
            line.insert("message".into(), message);
        }
        line.extend(fields);
        let service = self
            .service_name
            .clone()
            .or_else(|| crate::record::recorder::default_recorder().map(|r| r.live.load().service_name().to_string()));
        if let Some(service) = service {
            line.insert("service.name".into(), Value::from(service));
        }
        // The bridge layer has attached the event's span, if it is a bridged one; otherwise
        // whatever APM context the code runs under.
        let ctx = Context::current();
        if let Some(trace) = ctx.trace_id() {
            line.insert("trace.id".into(), Value::from(trace.to_string()));
        }
        if let Some(tx) = ctx.transaction_id() {
            line.insert("transaction.id".into(), Value::from(tx.to_string()));
        }
        if let Some(span) = ctx.span_id() {
            line.insert("span.id".into(), Value::from(span.to_string()));
        }
        if let Some(error) = error_id_of(event) {
            line.insert("error.id".into(), Value::from(error.to_string()));
        }
        let json = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{json}")
    }
}
