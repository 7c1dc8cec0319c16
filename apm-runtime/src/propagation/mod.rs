//! W3C Trace Context propagation (`traceparent` / `tracestate`) plus Elastic's
//! `es` tracestate entry.
//!
//! The parsing rules follow the W3C Trace Context Level 2 text
//! (<https://www.w3.org/TR/trace-context-2/>), which is a superset of the Level 1
//! Recommendation: everything Level 1 accepts, Level 2 accepts too. Where the spec
//! leaves a choice to the implementation, or where Level 2 changed Level 1, this
//! module decides as follows:
//!
//! * **traceparent flags**: every bit is kept on parse; the two flags Level 2
//!   defines are interpreted, sampled (`0x01`, [`TraceParent::sampled`]) and
//!   random trace id (`0x02`, [`TraceParent::random`]). Headers the agent sends
//!   after changing the parent id (every outgoing request, continued trace or
//!   new) carry exactly those two bits and nothing else
//!   ([`TraceParent::with_flags`] clears the rest): Level 2's processing model
//!   says unknown flags are set to 0 on outgoing requests, and it requires the
//!   random flag to be passed on unchanged for as long as the trace id is.
//!   [`TraceParent::to_header`] still writes `flags` verbatim, so a proxy-style
//!   caller that forwards an unmodified traceparent (which the spec allows) can
//!   do so.
//! * **Random flag on traces we start**: set. Our trace ids are 16 bytes from a
//!   uniform 64-bit generator, so the right-most 7 bytes are random, which is
//!   when Level 2 says the flag SHOULD be set; downstream samplers and
//!   shards may then rely on those bytes.
//! * **Future traceparent versions**: parsed as the spec's "Versioning of
//!   traceparent" section says (first 55 characters, next character must be
//!   `-`). The spec only asks for "hex" there, so uppercase hex digits are
//!   accepted for versions other than `00`; version `00` is lowercase-only.
//! * **tracestate keys** follow Level 2's grammar,
//!   `key = ( lcalpha / DIGIT ) 0*255( keychar )` with `keychar` being
//!   `lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`: at most 256 characters,
//!   starting with a lowercase letter or a digit, `@` anywhere after the first
//!   character and any number of times (`foo@`, `foo@@bar`, `t@vvv…` with a
//!   15-character "system id" are all keys). Level 1's `tenant@system` split,
//!   with its 241/14-character limits, is gone: Level 2 dropped it, and the
//!   W3C test suite (`test_tracestate_key_illegal_vendor_format`,
//!   `test_tracestate_key_length_limit`) checks that such keys are passed on.
//!   A Level 1-only peer may reject these keys; we only ever forward keys we
//!   received, so we never introduce one.
//! * **Invalid tracestate**: Level 2's processing model lets a vendor discard
//!   the whole header or only the invalid members. A single invalid member
//!   (bad key or value, including a key starting with `@`), or more than 32
//!   members, discards the *whole* tracestate, the members before it included.
//!   The W3C test suite (strict level 2) requires exactly this: `@foo=1,bar=2`
//!   and `foo=,bar=3` must lose `bar`, and a 257-character key in a second
//!   header line must lose the first line's `foo`. It also avoids forwarding a
//!   list whose meaning we only partly understood.
//! * **Duplicate tracestate keys**: the leftmost (most recent) entry wins and
//!   later duplicates are dropped, which the spec explicitly allows. They
//!   still count towards the 32-member limit, because that limit applies to
//!   the list as received.
//! * **Empty members** (`a=1,,b=2`, whitespace-only members, empty headers)
//!   are skipped and do not count towards the 32-member limit: they are what
//!   combining several header lines naturally produces.

mod extract;
mod headers;
#[cfg(test)]
mod tests;
mod traceparent;
mod tracestate;

pub use extract::{extract, IncomingContext};
pub use headers::{HeaderFn, HeaderSource};
pub use traceparent::{TraceContextError, TraceParent, TraceParentField};
pub use tracestate::TraceState;

#[allow(unused_imports)]
use {extract::*, traceparent::*, tracestate::*};

/// Canonical (lowercase) name of the W3C `traceparent` header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Canonical (lowercase) name of the W3C `tracestate` header.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// Pre-W3C header name used by older Elastic APM agents; read only when
/// `traceparent` is absent.
pub const ELASTIC_TRACEPARENT_HEADER: &str = "elastic-apm-traceparent";
