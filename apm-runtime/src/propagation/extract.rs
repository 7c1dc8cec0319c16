//! Reading the incoming trace context from a request's headers, as the spec's processing
//! model says (one `traceparent`, the `tracestate` only with a valid one).
use super::*;

/// The parsed incoming distributed-tracing context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingContext {
    /// The caller's trace position.
    pub traceparent: TraceParent,
    /// Vendor state to forward; empty if absent or invalid.
    pub tracestate: TraceState,
}

/// Reads the incoming trace context from `headers`.
///
/// `traceparent` is read first; the legacy `elastic-apm-traceparent` header
/// is consulted only when `traceparent` is absent (a present but malformed
/// `traceparent` still wins, as Elastic's spec gives it precedence).
///
/// Returns `None` — meaning "start a new trace" — when the header is absent,
/// malformed, or given more than once (several values cannot be told apart
/// reliably, and the W3C test suite expects a restart). `tracestate` is only
/// parsed once a valid traceparent was found, as the spec requires; an
/// invalid `tracestate` yields an empty one without affecting the
/// traceparent.
///
/// ```rust
/// use apm_runtime::propagation::extract;
///
/// let headers = [
///     ("TraceParent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
///     ("tracestate", "es=s:0.1,congo=t61rcWkgMzE"),
/// ];
/// let ctx = extract(&headers).unwrap();
/// assert!(ctx.traceparent.sampled());
/// assert_eq!(ctx.tracestate.elastic_sample_rate(), Some(0.1));
///
/// let duplicated = [
///     ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
///     ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
/// ];
/// assert!(extract(&duplicated).is_none());
/// ```
pub fn extract(headers: &(impl HeaderSource + ?Sized)) -> Option<IncomingContext> {
    let traceparent = match single_traceparent(headers, TRACEPARENT_HEADER) {
        Lookup::Absent => single_traceparent(headers, ELASTIC_TRACEPARENT_HEADER),
        found => found,
    };
    let Lookup::Valid(traceparent) = traceparent else {
        return None;
    };
    let mut parser = TraceStateParser::default();
    headers.for_each_value(TRACESTATE_HEADER, &mut |value| parser.push(value));
    Some(IncomingContext { traceparent, tracestate: parser.finish() })
}

pub(super) enum Lookup {
    Absent,
    Valid(TraceParent),
    Unusable,
}

pub(super) fn single_traceparent(headers: &(impl HeaderSource + ?Sized), name: &str) -> Lookup {
    let mut count = 0usize;
    let mut first = None;
    headers.for_each_value(name, &mut |value| {
        count += 1;
        if count == 1 {
            first = TraceParent::parse(value).ok();
        }
    });
    match (count, first) {
        (0, _) => Lookup::Absent,
        (1, Some(tp)) => Lookup::Valid(tp),
        _ => Lookup::Unusable,
    }
}

/// Trims HTTP optional whitespace (SP / HTAB) only; other Unicode whitespace
/// is not OWS and must make the value invalid.
pub(super) fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}
