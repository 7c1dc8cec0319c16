//! The `tracing` ecosystem as a source (feature `tracing`): [`layer()`] turns the `tracing`
//! spans of hyper, tower-http, tonic, reqwest-middleware or your own code into APM spans (and
//! transactions, for spans that start a trace), `tracing` ERROR events into error events, and
//! sqlx's query log into `db` exit spans. [`EcsFormat`] makes every log line of
//! `tracing_subscriber::fmt` carry the ids of the trace it was logged in.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! let subscriber = tracing_subscriber::registry().with(apm_runtime::integrations::tracing::layer());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _span = tracing::info_span!("load", db.system = "postgresql").entered();
//! });
//! ```
//!
//! **Parents.** A `tracing` span's APM parent is what was current where it was created: the
//! innermost of the APM span or transaction attached on the thread (a `#[span]` fn, a pool task
//! under `#[propagate]`, a tokio task wrapped with [`crate::Context::wrap_future`]) and the
//! enclosing bridged `tracing` span, which is attached while it is entered. A span created with
//! an explicit `parent:` takes that span. So a `tracing` span opened on a rayon thread, where
//! `tracing` itself has no parent, still joins its transaction.
//!
//! **Timing.** A span starts when the `tracing` span is created and ends when it closes (its
//! last handle dropped), on the agent's clock, like tracing-opentelemetry's.
//!
//! **Fields.** Recorded as `otel.attributes` (with `target` and `level`); `otel.name`,
//! `otel.kind` and `otel.status_code` mean what they mean to tracing-opentelemetry. On the
//! reporter thread, OpenTelemetry's semantic conventions fill Elastic's fields: `db.system`
//! (`db.system.name`) with `db.statement` (`db.query.text`), `db.name` (`db.namespace`),
//! `server.address`/`server.port` make a `db/<system>/query` exit span with `context.db`,
//! `context.destination` and `context.service.target`; `http.request.method` with `url.full`
//! an `external/http` one with `context.http`; `messaging.system` a `messaging` one.
//!
//! **Roots.** A `tracing` span created with no APM context current starts a transaction (see
//! [`ApmLayer::root_transactions`]): named by `otel.name`, else `METHOD unknown route` for an
//! HTTP request span (tower-http's `TraceLayer`: its `method`, `uri` and `version` fill
//! `context.request`, its response event the result), else the span's name; of type `request`
//! for `otel.kind = "server"` and HTTP request spans, else `custom`.
//!
//! **No loops.** Spans and events from the agent's own threads (its reporter, its HTTP client)
//! are ignored.

mod ecs;
mod entered;
mod fields;

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

pub use ecs::EcsFormat;

use crate::model::event::{DbContext, ErrorLog};
use crate::model::otel::{AttrValue, Otel};
use crate::model::thread::in_agent_work;
use crate::record::context::Context;
use crate::record::error::report_logged;
use crate::{Span, Transaction};
use fields::{EventFields, SpanFields};

/// The bridge layer with its defaults: root spans start transactions, ERROR events become
/// error events, sqlx's query log becomes `db/sqlx/query` spans.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
/// let _ = tracing_subscriber::registry()
///     .with(apm_runtime::integrations::tracing::layer())
///     .with(tracing_subscriber::fmt::layer().event_format(apm_runtime::integrations::tracing::EcsFormat::new()))
///     .try_init();
/// ```
pub fn layer() -> ApmLayer {
    ApmLayer { roots: true, errors: true, sqlx_system: "sqlx" }
}

/// A `tracing_subscriber::Layer` recording `tracing` spans and events with the agent. Made by
/// [`layer()`]; works with any subscriber that has span lookup (`tracing_subscriber::registry()`).
///
/// ```
/// let layer = apm_runtime::integrations::tracing::layer().root_transactions(false).error_events(false);
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct ApmLayer {
    roots: bool,
    errors: bool,
    sqlx_system: &'static str,
}

impl ApmLayer {
    /// Whether a `tracing` span with no APM context current starts a transaction (default
    /// true). Off, such spans are not recorded; spans under a transaction always are.
    ///
    /// ```
    /// let layer = apm_runtime::integrations::tracing::layer().root_transactions(false);
    /// # let _ = layer;
    /// ```
    pub fn root_transactions(mut self, on: bool) -> Self {
        self.roots = on;
        self
    }

    /// Whether `tracing` events at ERROR level become error events (default true): the
    /// message as `log.message`, the target as `log.logger_name`, an `error` field's
    /// `dyn Error` as the exception with its `source()` chain, other fields as labels.
    ///
    /// ```
    /// let layer = apm_runtime::integrations::tracing::layer().error_events(false);
    /// # let _ = layer;
    /// ```
    pub fn error_events(mut self, on: bool) -> Self {
        self.errors = on;
        self
    }

    /// The database sqlx talks to, as Elastic's span subtype (`"postgresql"`, `"mysql"`,
    /// `"sqlite"`): sqlx's query log does not say. Default `"sqlx"`.
    ///
    /// ```
    /// let layer = apm_runtime::integrations::tracing::layer().sqlx_db_system("postgresql");
    /// # let _ = layer;
    /// ```
    pub fn sqlx_db_system(mut self, system: &'static str) -> Self {
        self.sqlx_system = system;
        self
    }
}

/// What a bridged `tracing` span holds in its extensions.
struct Bridged {
    /// The context its children and the code inside it run under.
    ctx: Context,
    /// Taken when the span closes. A `Mutex` because extensions must be `Sync`; it is only
    /// locked when fields are recorded and at the close, never on enter or exit.
    node: Mutex<Node>,
}

enum Node {
    Span(Span),
    Transaction(Transaction),
}

impl Node {
    fn otel_mut(&mut self) -> Option<&mut Otel> {
        match self {
            Node::Span(s) => s.otel_mut(),
            Node::Transaction(t) => t.otel_mut(),
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// The context a span or event created here belongs under: see the module docs.
fn parent_context<S>(explicit: Option<&Id>, contextual: bool, ctx: &LayerContext<'_, S>) -> Option<Context>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let bridged = |id: &Id| ctx.span(id).and_then(|s| s.extensions().get::<Bridged>().map(|b| b.ctx.clone()));
    if let Some(id) = explicit {
        if let Some(ctx) = bridged(id) {
            return Some(ctx);
        }
    }
    // The thread's context is the innermost: a bridged span entered here is attached, and so
    // is any APM span or transaction started inside it.
    let current = Context::current();
    if !current.is_empty() {
        return Some(current);
    }
    if contextual {
        // Entered, but not through this layer (a span created before the layer saw it).
        return ctx.lookup_current().and_then(|s| s.extensions().get::<Bridged>().map(|b| b.ctx.clone()));
    }
    None
}

/// A transaction's name and type from a root span's fields (the reporter refines the rest).
fn root_name_and_type(name: &'static str, otel: &Otel) -> (Cow<'static, str>, &'static str) {
    let method = otel.str(&["http.request.method", "http.method", "method"]);
    let server = otel.span_kind == Some("SERVER");
    let http = method.is_some() && otel.str(&["uri", "url.path", "http.target", "url.full", "http.route"]).is_some();
    let kind = if server || http { "request" } else { "custom" };
    let name = match (&otel.name, method, otel.str(&["http.route"])) {
        (Some(n), _, _) => n.clone(),
        (None, Some(m), Some(route)) if http => Cow::Owned(format!("{m} {route}")),
        (None, Some(m), None) if http => Cow::Owned(format!("{m} unknown route")),
        _ => Cow::Borrowed(name),
    };
    (name, kind)
}

impl<S> Layer<S> for ApmLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if in_agent_work() {
            return;
        }
        let meta = attrs.metadata();
        let parent = parent_context(attrs.parent(), attrs.is_contextual(), &ctx);
        let mut otel = Otel {
            attributes: Vec::with_capacity(meta.fields().len()),
            target: meta.target(),
            level: level_name(meta.level()),
            ..Otel::default()
        };
        attrs.record(&mut SpanFields(&mut otel));
        let (node, span_ctx) = match parent {
            Some(parent) => {
                let mut span = Span::builder(meta.name()).child_of(&parent).start();
                if let Some(o) = span.otel_mut() {
                    *o = otel;
                }
                let span_ctx = span.context();
                (Node::Span(span), span_ctx)
            }
            None if self.roots => {
                let (name, kind) = root_name_and_type(meta.name(), &otel);
                if kind == "request" {
                    // An incoming request, whether or not the span said so with `otel.kind`.
                    otel.span_kind.get_or_insert("SERVER");
                }
                let mut tx = Transaction::builder(name).with_type(kind).start();
                if let Some(o) = tx.otel_mut() {
                    *o = otel;
                }
                let tx_ctx = tx.context();
                (Node::Transaction(tx), tx_ctx)
            }
            None => return,
        };
        if span_ctx.is_empty() {
            // No agent installed, or nothing recorded and nothing to pass on.
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Bridged { ctx: span_ctx, node: Mutex::new(node) });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        let Some(bridged) = ext.get::<Bridged>() else { return };
        let mut node = bridged.node.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(otel) = node.otel_mut() {
            values.record(&mut SpanFields(otel));
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        if let Some(bridged) = ext.get::<Bridged>() {
            entered::push(id, &bridged.ctx);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        entered::pop(id);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(bridged) = span.extensions_mut().remove::<Bridged>() else { return };
        let node = bridged.node.into_inner().unwrap_or_else(|e| e.into_inner());
        // Ended here, on whichever thread closed it.
        drop(node);
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if in_agent_work() {
            return;
        }
        let meta = event.metadata();
        let sqlx = meta.target() == "sqlx::query";
        let error = self.errors && *meta.level() == Level::ERROR;
        let tower_http = meta.target().starts_with("tower_http");
        if !(sqlx || error || tower_http) {
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        if tower_http {
            if let Some(status) = fields.status {
                record_status(event, status, &ctx);
            }
        }
        let Some(parent) = parent_context(event.parent(), event.is_contextual(), &ctx) else {
            if error {
                // Outside any trace: an error on a trace of its own, as `capture_error` does.
                log_error(event, &Context::default(), fields);
            }
            return;
        };
        if sqlx {
            self.sqlx_query(&parent, &fields);
        }
        if error {
            log_error(event, &parent, fields);
        }
    }
}

/// tower-http's response event: the status on its request span's transaction, for its result.
fn record_status<S>(event: &Event<'_>, status: i64, ctx: &LayerContext<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.event_span(event) else { return };
    let ext = span.extensions();
    let Some(bridged) = ext.get::<Bridged>() else { return };
    let mut node = bridged.node.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(otel) = node.otel_mut() {
        otel.set("http.response.status_code", AttrValue::Int(status));
    }
}

impl ApmLayer {
    /// sqlx logs each query once it has run, with how long it took: a `db` exit span that
    /// started that long ago.
    fn sqlx_query(&self, parent: &Context, fields: &EventFields) {
        let Some(elapsed) = fields.elapsed_secs.and_then(|s| Duration::try_from_secs_f64(s).ok()) else { return };
        let summary = fields.summary.as_deref().unwrap_or("query");
        // sqlx sends the whole statement only when the summary cut it.
        let statement = match fields.statement.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => s,
            _ => summary,
        };
        let name = summary.trim_end_matches(" …").to_string();
        let mut span =
            Span::builder(name).with_type("db").subtype(self.sqlx_system).action("query").child_of(parent).start();
        span.backdate(elapsed);
        span.set_db(DbContext {
            kind: "sql".into(),
            statement: Some(statement.to_string().into()),
            rows_affected: fields.rows_affected.filter(|&n| n > 0).or(fields.rows_returned),
            ..DbContext::default()
        });
        span.set_service_target(self.sqlx_system, None);
        span.end();
    }
}

/// An ERROR event as an error event under `parent` (or on a trace of its own).
fn log_error(event: &Event<'_>, parent: &Context, fields: EventFields) {
    let EventFields { message, error, labels, .. } = fields;
    let log = ErrorLog { message: message.unwrap_or_default(), level: "error", logger_name: event.metadata().target() };
    let id = match error {
        Some((ty, details)) => report_logged(parent, Some((&ty, details)), log, labels),
        None => report_logged(parent, None, log, labels),
    };
    if let Some(id) = id {
        ecs::note_error_id(event, id);
    }
}
