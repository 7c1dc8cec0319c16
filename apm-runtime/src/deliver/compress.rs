//! Span compression (`ELASTIC_APM_SPAN_COMPRESSION_*`, Elastic's `tracing-spans-compress`
//! spec), on the reporter thread: consecutive sibling exit spans to the same destination with
//! the same outcome become one composite span, so that a fan-out issuing hundreds of identical
//! small calls shows as one row with a count and a summed duration.
//!
//! **Consecutive** means consecutive in the order the reporter receives the siblings' ends:
//! one thread's spans in the order they ended, spans of several threads in the order their
//! batches were drained. Between two compressible siblings, any other child of the same parent
//! (a span that is not an exit span, failed, or sent trace headers) ends the run, as on one
//! thread in Elastic's agents. A run also ends when its parent (span or transaction) arrives,
//! at a flush, and when it has waited [`HOLD`] for its parent, so that nothing is held back
//! for long.
//!
//! The application thread does nothing for compression: a span's end costs what it did.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::model::event::{Composite, Event, Outcome, SpanEvent};
use crate::model::ids::{IdMap, SpanId};

/// How long a run may wait for its parent before it is written as it stands.
const HOLD: Duration = Duration::from_secs(5);

/// Parents with a run waiting, at most; beyond, every run is written.
const MAX_RUNS: usize = 4096;

/// The settings in force for one drain (they are dynamic: central configuration may change
/// them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    enabled: bool,
    exact_match_max_us: u64,
    same_kind_max_us: u64,
}

impl Settings {
    pub(crate) fn of(config: &Config) -> Settings {
        Settings {
            enabled: config.span_compression_enabled(),
            exact_match_max_us: config.span_compression_exact_match_max_duration().as_micros() as u64,
            same_kind_max_us: config.span_compression_same_kind_max_duration().as_micros() as u64,
        }
    }
}

/// The runs waiting for their next sibling, by parent id.
#[derive(Default)]
pub(crate) struct Compressor {
    runs: IdMap<(Box<SpanEvent>, Instant)>,
}

fn duration_us(span: &SpanEvent) -> u64 {
    span.start.us_until(span.end)
}

/// Elastic's eligibility: an exit span that sent no trace headers and did not fail.
fn eligible(span: &SpanEvent) -> bool {
    span.exit().is_some_and(|e| !e.propagated) && span.outcome != Outcome::Failure
}

/// Same type, subtype, service target and outcome.
fn same_kind(a: &SpanEvent, b: &SpanEvent) -> bool {
    let (Some(x), Some(y)) = (a.exit(), b.exit()) else { return false };
    a.kind == b.kind
        && a.subtype == b.subtype
        && a.outcome == b.outcome
        && x.target_type == y.target_type
        && x.target_name == y.target_name
}

/// Merges `next` into the run `run` if the spec allows; whether it did.
fn merge(run: &mut SpanEvent, next: &SpanEvent, s: Settings) -> bool {
    if !same_kind(run, next) {
        return false;
    }
    let next_us = duration_us(next);
    // A zero maximum turns the strategy off.
    let exact = s.exact_match_max_us > 0 && run.name == next.name && next_us <= s.exact_match_max_us;
    let kind = s.same_kind_max_us > 0 && next_us <= s.same_kind_max_us;
    let composite = run.more.as_ref().and_then(|m| m.composite);
    let strategy = match composite {
        // A composite keeps its strategy: an exact-match run takes exact matches only.
        Some(c) if c.strategy == "exact_match" && exact => "exact_match",
        Some(c) if c.strategy == "same_kind" && kind => "same_kind",
        Some(_) => return false,
        None => {
            let run_us = duration_us(run);
            if exact && run_us <= s.exact_match_max_us {
                "exact_match"
            } else if kind && run_us <= s.same_kind_max_us {
                "same_kind"
            } else {
                return false;
            }
        }
    };
    let first = composite.unwrap_or(Composite { count: 1, sum_us: duration_us(run), strategy });
    if composite.is_none() && strategy == "same_kind" {
        let resource = run.exit().and_then(|e| e.resource()).map(|r| r.into_owned()).unwrap_or_default();
        run.name = format!("Calls to {resource}").into();
    }
    run.start = run.start.min(next.start);
    run.end = run.end.max(next.end);
    run.more_mut().composite = Some(Composite { count: first.count + 1, sum_us: first.sum_us + next_us, strategy });
    true
}

impl Compressor {
    /// Compresses `batch` in place, holding the last compressible child of each parent until
    /// its run ends (all of them when `flush`). Merged spans go to `spent` (their boxes are
    /// reused); returns how many.
    // The boxes themselves are what is reused (application threads write spans into them).
    #[allow(clippy::vec_box)]
    pub(crate) fn run(
        &mut self,
        batch: &mut Vec<Event>,
        settings: Settings,
        flush: bool,
        spent: &mut Vec<Box<SpanEvent>>,
    ) -> u64 {
        if !settings.enabled && self.runs.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let mut merged = 0;
        let mut out = Vec::with_capacity(batch.len());
        for event in batch.drain(..) {
            match event {
                Event::Span(span) if settings.enabled && eligible(&span) => {
                    if let Some((run, _)) = self.runs.get_mut(&span.parent_id) {
                        if merge(run, &span, settings) {
                            merged += 1;
                            spent.push(span);
                            continue;
                        }
                        let parent = span.parent_id;
                        let (ended, _) = self.runs.insert(parent, (span, now)).expect("a run of this parent");
                        out.push(Event::Span(ended));
                    } else {
                        self.runs.insert(span.parent_id, (span, now));
                    }
                }
                Event::Span(span) => {
                    // Another child of the parent ends its run; the parent's arrival ends the
                    // run of its children.
                    for id in [span.parent_id, span.id] {
                        if let Some((run, _)) = self.runs.remove(&id) {
                            out.push(Event::Span(run));
                        }
                    }
                    out.push(Event::Span(span));
                }
                Event::Transaction(tx) => {
                    if let Some((run, _)) = self.runs.remove(&tx.id) {
                        out.push(Event::Span(run));
                    }
                    out.push(Event::Transaction(tx));
                }
                other => out.push(other),
            }
        }
        if flush || self.runs.len() > MAX_RUNS {
            out.extend(self.runs.drain().map(|(_, (run, _))| Event::Span(run)));
        } else {
            let stale: Vec<SpanId> = self
                .runs
                .iter()
                .filter(|(_, (_, since))| now.duration_since(*since) >= HOLD)
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                if let Some((run, _)) = self.runs.remove(&id) {
                    out.push(Event::Span(run));
                }
            }
        }
        *batch = out;
        merged
    }
}
