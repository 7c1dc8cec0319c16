//! What `tracing` hands over as fields, kept the way the agent needs it: a span's fields as
//! `otel.attributes` (with `otel.name`, `otel.kind`, `otel.status_code` given their
//! tracing-opentelemetry meaning), and an event's message, `error` value and other fields.

use std::borrow::Cow;
use std::fmt;

use tracing_core::field::{Field, Visit};

use crate::model::event::LabelValue;
use crate::model::otel::{self, AttrValue, Otel};
use crate::record::error::{known_type, Details};

/// Records a span's fields into its [`Otel`].
pub(super) struct SpanFields<'a>(pub(super) &'a mut Otel);

impl SpanFields<'_> {
    fn put(&mut self, field: &Field, value: AttrValue) {
        let name = field.name();
        match (name, &value) {
            ("otel.name", AttrValue::Str(s)) => self.0.name = Some(s.clone()),
            ("otel.kind", AttrValue::Str(s)) => self.0.span_kind = otel::span_kind(s),
            ("otel.status_code", AttrValue::Str(s)) => self.0.status = otel::status(s),
            // `otel.status_message` and the like say nothing Elastic has a field for.
            _ if name.starts_with("otel.") => {}
            _ => self.0.set(name, value),
        }
    }
}

impl Visit for SpanFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, AttrValue::Str(Cow::Owned(value.to_string())));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttrValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, i64::try_from(value).map_or(AttrValue::Float(value as f64), AttrValue::Int));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttrValue::Float(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AttrValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // An error recorded on a span fails it, as tracing-opentelemetry does.
        self.0.status.get_or_insert(crate::Outcome::Failure);
        self.put(field, AttrValue::Str(Cow::Owned(value.to_string())));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, AttrValue::Str(Cow::Owned(format!("{value:?}"))));
    }
}

/// What an event said.
#[derive(Default)]
pub(super) struct EventFields {
    pub(super) message: Option<String>,
    /// The `error` field's type (when it can be named) and what it says.
    pub(super) error: Option<(String, Details)>,
    /// Every other field, as labels of an error event.
    pub(super) labels: Vec<(Cow<'static, str>, LabelValue)>,
    /// sqlx's query log: `summary`, `db.statement`, `rows_affected`, `rows_returned`,
    /// `elapsed_secs`.
    pub(super) summary: Option<String>,
    pub(super) statement: Option<String>,
    pub(super) rows_affected: Option<u64>,
    pub(super) rows_returned: Option<u64>,
    pub(super) elapsed_secs: Option<f64>,
    /// tower-http's response event: the HTTP (or gRPC) status.
    pub(super) status: Option<i64>,
}

impl EventFields {
    fn label(&mut self, field: &Field, value: LabelValue) {
        self.labels.push((Cow::Borrowed(field.name()), value));
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_string()),
            "summary" => self.summary = Some(value.to_string()),
            "db.statement" => self.statement = Some(value.to_string()),
            _ => self.label(field, LabelValue::String(Cow::Owned(value.to_string()))),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "status" {
            self.status = Some(value);
        }
        self.label(field, LabelValue::Number(value as f64));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = Some(value),
            "rows_returned" => self.rows_returned = Some(value),
            "status" => self.status = i64::try_from(value).ok(),
            _ => {}
        }
        self.label(field, LabelValue::Number(value as f64));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
        self.label(field, LabelValue::Number(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.label(field, LabelValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.error.is_none() {
            self.error = Some((type_of(value), Details::of_dyn(value)));
        }
        self.label(field, LabelValue::String(Cow::Owned(value.to_string())));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = Some(text),
            "summary" => self.summary = Some(text),
            "db.statement" => self.statement = Some(text),
            _ => self.label(field, LabelValue::String(Cow::Owned(text))),
        }
    }
}

/// The type of an error known only as `dyn Error`: std's are named by probing; for others, the
/// name their `Debug` output starts with (`NotFound`, `OrderError { .. }`) when it looks like a
/// type or variant name, since that is what a derived `Debug` prints; else `error`.
fn type_of(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(known) = known_type(err) {
        return known.to_string();
    }
    let debug = format!("{err:?}");
    let head: &str = debug.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).next().unwrap_or("");
    let head = head.trim_end_matches(':');
    if head.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        head.to_string()
    } else {
        "error".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::type_of;

    #[derive(Debug)]
    struct OrderError {
        #[allow(dead_code)]
        id: u32,
    }
    impl std::fmt::Display for OrderError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no such order")
        }
    }
    impl std::error::Error for OrderError {}

    #[test]
    fn dyn_errors_are_named_by_probe_or_by_their_debug_output() {
        let parse = "x".parse::<u8>().unwrap_err();
        assert_eq!(type_of(&parse), "core::num::error::ParseIntError");
        assert_eq!(type_of(&OrderError { id: 3 }), "OrderError");
        let io = std::io::Error::other("disk");
        assert_eq!(type_of(&io), "std::io::error::Error");
    }
}
