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

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Canonical (lowercase) name of the W3C `traceparent` header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Canonical (lowercase) name of the W3C `tracestate` header.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// Pre-W3C header name used by older Elastic APM agents; read only when
/// `traceparent` is absent.
pub const ELASTIC_TRACEPARENT_HEADER: &str = "elastic-apm-traceparent";

/// Length of a version `00` traceparent, and the minimum length of any version.
const TRACEPARENT_LEN: usize = 55;
/// Byte offsets of the `-` delimiters inside a traceparent.
const TRACE_ID_DELIM: usize = 2;
const PARENT_ID_DELIM: usize = 35;
const FLAGS_DELIM: usize = 52;
/// Version `ff` is reserved as invalid so that a version byte can never be
/// confused with an all-ones sentinel.
const FORBIDDEN_VERSION: u8 = 0xff;

const MAX_MEMBERS: usize = 32;
const MAX_KEY_LEN: usize = 256;
const MAX_VALUE_LEN: usize = 256;

/// Key of Elastic's own tracestate entry.
const ELASTIC_KEY: &str = "es";

/// Parsed `traceparent` header.
///
/// # Example
///
/// ```rust
/// use apm_runtime::propagation::TraceParent;
///
/// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// assert!(tp.sampled());
/// assert_eq!(tp.parent_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
///
/// // A child context: same trace, new parent id, our own sampling decision.
/// let child = TraceParent::new(tp.trace_id, [1, 2, 3, 4, 5, 6, 7, 8], true);
/// assert_eq!(
///     child.to_header(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// Version the header was received with. Output is always version `00`.
    pub version: u8,
    /// 16-byte trace id; never all zeros when produced by [`TraceParent::parse`].
    pub trace_id: [u8; 16],
    /// 8-byte id of the caller's span; never all zeros when parsed.
    pub parent_id: [u8; 8],
    /// Raw trace-flags byte as received. Bits `0x01` (sampled) and `0x02`
    /// (random trace id) are interpreted; see [`TraceParent::KNOWN_FLAGS`].
    pub flags: u8,
}

impl TraceParent {
    /// The sampled flag: the caller may have recorded trace data.
    pub const FLAG_SAMPLED: u8 = 0x01;
    /// Level 2's random trace id flag: at least the right-most 7 bytes of the
    /// trace id are random.
    pub const FLAG_RANDOM: u8 = 0x02;
    /// The flags this module understands, and so the only ones it sends when it
    /// builds a header (see [`TraceParent::with_flags`]).
    pub const KNOWN_FLAGS: u8 = Self::FLAG_SAMPLED | Self::FLAG_RANDOM;

    /// Parses a `traceparent` header value.
    ///
    /// Leading and trailing optional whitespace (spaces and horizontal tabs)
    /// is ignored. Lengths and offsets are counted in bytes, so non-ASCII
    /// input is rejected rather than mis-sliced.
    ///
    /// ```rust
    /// use apm_runtime::propagation::{TraceContextError, TraceParent};
    ///
    /// assert!(TraceParent::parse(" 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\t").is_ok());
    /// assert_eq!(
    ///     TraceParent::parse("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
    ///     Err(TraceContextError::ZeroTraceId)
    /// );
    /// ```
    pub fn parse(header: &str) -> Result<TraceParent, TraceContextError> {
        let bytes = trim_ows(header).as_bytes();

        // Spec: a version prefix that is not "2 hex characters followed by a
        // dash" means the header cannot be interpreted at all.
        if bytes.len() <= TRACE_ID_DELIM || bytes[TRACE_ID_DELIM] != b'-' {
            return Err(TraceContextError::InvalidVersion);
        }
        let version = decode_hex::<1>(&bytes[..TRACE_ID_DELIM], false).ok_or(TraceContextError::InvalidVersion)?[0];
        if version == FORBIDDEN_VERSION {
            return Err(TraceContextError::ForbiddenVersion);
        }

        let known_version = version == 0;
        if known_version {
            if bytes.len() != TRACEPARENT_LEN {
                return Err(TraceContextError::WrongLength { version, actual: bytes.len() });
            }
        } else {
            // Future versions are assumed to be additive: the version-00
            // fields come first and anything after them is introduced by '-'.
            if bytes.len() < TRACEPARENT_LEN {
                return Err(TraceContextError::WrongLength { version, actual: bytes.len() });
            }
            if bytes.len() > TRACEPARENT_LEN && bytes[TRACEPARENT_LEN] != b'-' {
                return Err(TraceContextError::MissingDelimiter { index: TRACEPARENT_LEN });
            }
        }
        for index in [PARENT_ID_DELIM, FLAGS_DELIM] {
            if bytes[index] != b'-' {
                return Err(TraceContextError::MissingDelimiter { index });
            }
        }

        let allow_upper = !known_version;
        let trace_id = decode_hex::<16>(&bytes[TRACE_ID_DELIM + 1..PARENT_ID_DELIM], allow_upper)
            .ok_or(TraceContextError::InvalidHex { field: TraceParentField::TraceId })?;
        let parent_id = decode_hex::<8>(&bytes[PARENT_ID_DELIM + 1..FLAGS_DELIM], allow_upper)
            .ok_or(TraceContextError::InvalidHex { field: TraceParentField::ParentId })?;
        let flags = decode_hex::<1>(&bytes[FLAGS_DELIM + 1..TRACEPARENT_LEN], allow_upper)
            .ok_or(TraceContextError::InvalidHex { field: TraceParentField::Flags })?[0];

        if trace_id == [0; 16] {
            return Err(TraceContextError::ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(TraceContextError::ZeroParentId);
        }
        Ok(TraceParent { version, trace_id, parent_id, flags })
    }

    /// Whether the caller may have recorded this trace (flag bit `0x01`).
    ///
    /// Tested as a single bit because other bits (e.g. Level 2's random
    /// trace-id flag `0x02`) may be set alongside it.
    pub fn sampled(&self) -> bool {
        self.flags & Self::FLAG_SAMPLED == Self::FLAG_SAMPLED
    }

    /// Whether the caller says the trace id is random (flag bit `0x02`,
    /// Trace Context Level 2): then its right-most 7 bytes can be used for
    /// sampling or sharding decisions, and every header sent with the same
    /// trace id must keep the flag.
    ///
    /// ```rust
    /// use apm_runtime::propagation::TraceParent;
    ///
    /// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02").unwrap();
    /// assert!(tp.random());
    /// assert!(!tp.sampled());
    /// ```
    pub fn random(&self) -> bool {
        self.flags & Self::FLAG_RANDOM == Self::FLAG_RANDOM
    }

    /// Builds a version `00` traceparent whose flags carry only the sampled
    /// bit.
    ///
    /// A shorthand for [`TraceParent::with_flags`] when the trace id is not
    /// known to be random. The ids are not validated: all-zero ids produce a
    /// header that every conforming receiver (including
    /// [`TraceParent::parse`]) rejects.
    pub fn new(trace_id: [u8; 16], parent_id: [u8; 8], sampled: bool) -> Self {
        Self::with_flags(trace_id, parent_id, if sampled { Self::FLAG_SAMPLED } else { 0 })
    }

    /// Builds a version `00` traceparent carrying the flags of `flags` that
    /// this module understands ([`TraceParent::KNOWN_FLAGS`]); every other bit
    /// is cleared, because Level 2 says flags a vendor does not understand are
    /// sent as 0 (their meaning, defined later, might not hold for what we did).
    ///
    /// Continuing a trace, pass the incoming `flags` with the sampled bit set
    /// to your own decision: the random flag then follows the trace id, as
    /// Level 2 requires. The ids are not validated, as for [`TraceParent::new`].
    ///
    /// ```rust
    /// use apm_runtime::propagation::TraceParent;
    ///
    /// let incoming = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff").unwrap();
    /// let ours = TraceParent::with_flags(incoming.trace_id, [1, 2, 3, 4, 5, 6, 7, 8], incoming.flags);
    /// assert_eq!(ours.flags, TraceParent::FLAG_SAMPLED | TraceParent::FLAG_RANDOM);
    /// assert!(ours.to_header().ends_with("-0102030405060708-03"));
    /// ```
    pub fn with_flags(trace_id: [u8; 16], parent_id: [u8; 8], flags: u8) -> Self {
        TraceParent { version: 0, trace_id, parent_id, flags: flags & Self::KNOWN_FLAGS }
    }

    /// Serializes as `00-<32 hex>-<16 hex>-<2 hex>` in lowercase (55 bytes).
    ///
    /// Always version `00` — the highest version this module knows, which is
    /// what the spec requires when forwarding a higher version. `flags` is
    /// written verbatim (see the module docs).
    pub fn to_header(&self) -> String {
        let mut buf = [0u8; TRACEPARENT_LEN];
        self.write_header(&mut buf).to_owned()
    }

    /// Allocation-free variant of [`TraceParent::to_header`]: writes into
    /// `buf` and returns it as a `str`.
    pub fn write_header<'b>(&self, buf: &'b mut [u8; 55]) -> &'b str {
        buf[0] = b'0';
        buf[1] = b'0';
        buf[TRACE_ID_DELIM] = b'-';
        encode_hex(&self.trace_id, &mut buf[TRACE_ID_DELIM + 1..PARENT_ID_DELIM]);
        buf[PARENT_ID_DELIM] = b'-';
        encode_hex(&self.parent_id, &mut buf[PARENT_ID_DELIM + 1..FLAGS_DELIM]);
        buf[FLAGS_DELIM] = b'-';
        encode_hex(&[self.flags], &mut buf[FLAGS_DELIM + 1..]);
        let buf: &'b [u8; 55] = buf;
        // Every byte written above is an ASCII hex digit or '-'.
        std::str::from_utf8(buf).expect("traceparent buffer is ASCII")
    }
}

impl fmt::Display for TraceParent {
    /// Same output as [`TraceParent::to_header`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; TRACEPARENT_LEN];
        f.write_str(self.write_header(&mut buf))
    }
}

impl FromStr for TraceParent {
    type Err = TraceContextError;

    /// Same as [`TraceParent::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceParent::parse(s)
    }
}

/// Which field of a traceparent an error refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceParentField {
    /// The 2-digit version prefix.
    Version,
    /// The 32-digit trace id.
    TraceId,
    /// The 16-digit parent (span) id.
    ParentId,
    /// The 2-digit trace flags.
    Flags,
}

impl fmt::Display for TraceParentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceParentField::Version => "version",
            TraceParentField::TraceId => "trace-id",
            TraceParentField::ParentId => "parent-id",
            TraceParentField::Flags => "trace-flags",
        })
    }
}

/// Why a `traceparent` header was rejected.
///
/// Every variant means the same thing to a caller — start a new trace — but
/// the detail is useful in debug logs when a peer sends bad headers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceContextError {
    /// The version prefix is not two lowercase hex digits followed by `-`.
    InvalidVersion,
    /// Version `ff`, which the spec forbids.
    ForbiddenVersion,
    /// Version `00` headers must be exactly 55 bytes; other versions at least
    /// 55 bytes. `actual` is the length after trimming whitespace.
    WrongLength {
        /// The version parsed from the header.
        version: u8,
        /// Length in bytes of the trimmed header.
        actual: usize,
    },
    /// A `-` was expected at byte `index` of the trimmed header.
    MissingDelimiter {
        /// Byte offset into the trimmed header.
        index: usize,
    },
    /// A field contains something other than (lowercase, for version `00`)
    /// hex digits.
    InvalidHex {
        /// The offending field.
        field: TraceParentField,
    },
    /// The trace id is all zeros.
    ZeroTraceId,
    /// The parent id is all zeros.
    ZeroParentId,
}

impl fmt::Display for TraceContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceContextError::InvalidVersion => {
                f.write_str("invalid traceparent: version is not 2 lowercase hex digits followed by '-'")
            }
            TraceContextError::ForbiddenVersion => f.write_str("invalid traceparent: version ff is forbidden"),
            TraceContextError::WrongLength { version: 0, actual } => {
                write!(f, "invalid traceparent: version 00 must be {TRACEPARENT_LEN} bytes, got {actual}")
            }
            TraceContextError::WrongLength { version, actual } => write!(
                f,
                "invalid traceparent: version {version:02x} must be at least {TRACEPARENT_LEN} bytes, got {actual}"
            ),
            TraceContextError::MissingDelimiter { index } => {
                write!(f, "invalid traceparent: expected '-' at byte {index}")
            }
            TraceContextError::InvalidHex { field } => {
                write!(f, "invalid traceparent: {field} is not valid hex")
            }
            TraceContextError::ZeroTraceId => f.write_str("invalid traceparent: trace-id is all zeros"),
            TraceContextError::ZeroParentId => f.write_str("invalid traceparent: parent-id is all zeros"),
        }
    }
}

impl std::error::Error for TraceContextError {}

/// Parsed `tracestate`: an ordered list of vendor `key=value` members, the
/// leftmost being the most recently updated.
///
/// # Example
///
/// ```rust
/// use apm_runtime::propagation::TraceState;
///
/// // Multiple header lines are combined in order.
/// let ts = TraceState::parse(["rojo=00f067aa0ba902b7", " es=s:0.5 , congo=t61rcWkgMzE"]);
/// assert_eq!(ts.elastic_sample_rate(), Some(0.5));
///
/// let out = ts.with_elastic_sample_rate(0.25);
/// assert_eq!(
///     out.to_header().as_deref(),
///     Some("es=s:0.25,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
/// );
///
/// // One malformed member invalidates the whole header.
/// assert!(TraceState::parse(["rojo=1,Bad Key=2"]).is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

impl TraceState {
    /// Parses all `tracestate` header values, in the order they were received.
    ///
    /// Several values are combined as if joined with `,` (RFC 9110 field
    /// order). Empty and whitespace-only members are skipped, duplicate keys
    /// keep their leftmost value, and the result is empty if any member is
    /// malformed or there are more than 32 members (see the module docs for
    /// why the whole header is discarded).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> TraceState {
        let mut parser = TraceStateParser::default();
        for value in values {
            parser.push(value);
        }
        parser.finish()
    }

    /// Sample rate from Elastic's `es` entry (`es=s:0.5`), if present and a
    /// number in `0..=1`.
    ///
    /// The `es` value is a `;`-separated list of `key:value` attributes; the
    /// first `s` attribute is used.
    pub fn elastic_sample_rate(&self) -> Option<f64> {
        let es = self.get(ELASTIC_KEY)?;
        let raw = es.split(';').find_map(|attr| attr.strip_prefix("s:"))?;
        let rate: f64 = raw.parse().ok()?;
        // The range check also rejects NaN and infinities.
        (0.0..=1.0).contains(&rate).then_some(rate)
    }

    /// Returns a copy with the `es` entry's `s` attribute set to `rate` and
    /// the `es` entry moved to the front, as the spec requires for modified
    /// entries.
    ///
    /// `rate` is clamped to `0..=1` and rounded half away from zero to 4
    /// decimals, with positive rates below `0.0001` rounded up to `0.0001`
    /// (Elastic's sampling spec), then written without trailing zeros
    /// (`1`, `0.5`, `0.0001`). A NaN rate has no meaningful encoding, so the
    /// state is returned unchanged. Other attributes of an existing `es`
    /// entry are kept while they fit in a 256-character value. If the list
    /// would grow past 32 members, the rightmost member is dropped.
    pub fn with_elastic_sample_rate(&self, rate: f64) -> TraceState {
        if rate.is_nan() {
            return self.clone();
        }
        let mut es_value = format!("s:{}", format_sample_rate(rate));
        if let Some(existing) = self.get(ELASTIC_KEY) {
            for attr in existing.split(';') {
                let keep = match attr.split_once(':') {
                    Some((key, value)) => key != "s" && !key.is_empty() && !value.is_empty() && !attr.ends_with(' '),
                    None => false,
                };
                // Elastic's spec: an attribute that would push the entry past
                // the value limit is dropped rather than truncated.
                if keep && es_value.len() + 1 + attr.len() <= MAX_VALUE_LEN {
                    es_value.push(';');
                    es_value.push_str(attr);
                }
            }
        }
        let mut members = Vec::with_capacity(self.members.len() + 1);
        members.push((ELASTIC_KEY.to_owned(), es_value));
        members.extend(self.members.iter().filter(|(key, _)| key != ELASTIC_KEY).cloned());
        members.truncate(MAX_MEMBERS);
        TraceState { members }
    }

    /// Serializes as `key=value` members joined by `,`; `None` when empty,
    /// because the spec asks vendors not to send empty `tracestate` headers.
    pub fn to_header(&self) -> Option<String> {
        if self.members.is_empty() {
            return None;
        }
        let len = self.members.iter().map(|(key, value)| key.len() + value.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        Some(out)
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Value of the member with `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, value)| value.as_str())
    }

    /// Members as `(key, value)` pairs, leftmost first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

/// Incremental tracestate parser, so that header values borrowed only for the
/// duration of a [`HeaderSource`] callback need not be copied first.
#[derive(Default)]
struct TraceStateParser {
    members: Vec<(String, String)>,
    /// Non-empty members seen, duplicates included.
    seen: usize,
    invalid: bool,
}

impl TraceStateParser {
    fn push(&mut self, value: &str) {
        if self.invalid {
            return;
        }
        for raw in value.split(',') {
            let member = trim_ows(raw);
            if member.is_empty() {
                continue;
            }
            self.seen += 1;
            let parsed = member.split_once('=').filter(|(key, value)| is_valid_key(key) && is_valid_value(value));
            let Some((key, value)) = parsed.filter(|_| self.seen <= MAX_MEMBERS) else {
                self.invalid = true;
                self.members = Vec::new();
                return;
            };
            if !self.members.iter().any(|(k, _)| k == key) {
                self.members.push((key.to_owned(), value.to_owned()));
            }
        }
    }

    fn finish(self) -> TraceState {
        if self.invalid {
            TraceState::default()
        } else {
            TraceState { members: self.members }
        }
    }
}

/// Anything incoming headers can be read from.
///
/// Header names are matched ASCII case-insensitively, as HTTP requires.
/// Implementations exist for slices, arrays and `Vec`s of `(name, value)`
/// pairs, `HashMap`s, references to any source, [`HeaderFn`] closures and —
/// with the `http` feature — `http::HeaderMap`.
///
/// ```rust
/// use apm_runtime::propagation::HeaderSource;
///
/// let headers = vec![("TraceState", "a=1"), ("tracestate", "b=2")];
/// let mut seen = Vec::new();
/// headers.for_each_value("tracestate", &mut |v| seen.push(v.to_owned()));
/// assert_eq!(seen, ["a=1", "b=2"]);
/// ```
pub trait HeaderSource {
    /// Calls `f` with every value of header `name`, in order.
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str));
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        for (key, value) in self {
            if key.as_ref().eq_ignore_ascii_case(name) {
                f(value.as_ref());
            }
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderSource for [(K, V); N] {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        self.as_slice().for_each_value(name, f);
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        self.as_slice().for_each_value(name, f);
    }
}

impl<T: HeaderSource + ?Sized> HeaderSource for &T {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        (**self).for_each_value(name, f);
    }
}

/// Keys that differ only in case are distinct map entries but the same
/// header, so each of them yields a value; their relative order follows the
/// map's (unspecified) iteration order.
impl<K: AsRef<str>, V: AsRef<str>, S> HeaderSource for HashMap<K, V, S> {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        for (key, value) in self {
            if key.as_ref().eq_ignore_ascii_case(name) {
                f(value.as_ref());
            }
        }
    }
}

/// Adapts a lookup closure into a [`HeaderSource`] yielding at most one value
/// per name.
///
/// The closure is called with the lowercase canonical header name; matching
/// other spellings is up to the closure.
///
/// ```rust
/// use apm_runtime::propagation::{extract, HeaderFn};
///
/// let ctx = extract(&HeaderFn(|name: &str| match name {
///     "traceparent" => Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
///     _ => None,
/// }));
/// assert!(ctx.is_some());
/// ```
pub struct HeaderFn<F>(pub F);

impl<F: Fn(&str) -> Option<String>> HeaderSource for HeaderFn<F> {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        if let Some(value) = (self.0)(name) {
            f(&value);
        }
    }
}

/// Values that are not valid UTF-8 are passed through lossily rather than
/// skipped: they can never form a valid header, but they must still count
/// when detecting duplicate `traceparent` headers.
#[cfg(feature = "http")]
impl HeaderSource for http::HeaderMap {
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str)) {
        for value in self.get_all(name) {
            f(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
}

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

enum Lookup {
    Absent,
    Valid(TraceParent),
    Unusable,
}

fn single_traceparent(headers: &(impl HeaderSource + ?Sized), name: &str) -> Lookup {
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
fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

fn hex_digit(b: u8, allow_upper: bool) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if allow_upper => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_hex<const N: usize>(src: &[u8], allow_upper: bool) -> Option<[u8; N]> {
    if src.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        *byte = (hex_digit(pair[0], allow_upper)? << 4) | hex_digit(pair[1], allow_upper)?;
    }
    Some(out)
}

fn encode_hex(src: &[u8], dst: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in src.iter().zip(dst.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// `keychar`: the characters allowed after a key's first one.
fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// Level 2 key grammar (see the module docs for why not Level 1's):
///
/// ```text
/// key     = ( lcalpha / DIGIT ) 0*255( keychar )
/// keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
/// ```
fn is_valid_key(key: &str) -> bool {
    match key.as_bytes() {
        [first, rest @ ..] => {
            key.len() <= MAX_KEY_LEN
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.iter().all(|&b| is_key_char(b))
        }
        [] => false,
    }
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII except `,` and `=`, not
/// ending in a space.
fn is_valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VALUE_LEN
        && bytes.last() != Some(&b' ')
        && bytes.iter().all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

/// Formats a sample rate for the `es` entry as described on
/// [`TraceState::with_elastic_sample_rate`]. Works on integer ten-thousandths
/// so the output can never show float noise such as `0.30000000000000004`.
fn format_sample_rate(rate: f64) -> String {
    let rate = rate.clamp(0.0, 1.0);
    // `round` is half away from zero, as Elastic's spec asks; the clamp keeps
    // the product within 0..=10_000, so the cast cannot truncate.
    let mut units = (rate * 10_000.0).round() as u32;
    if units == 0 && rate > 0.0 {
        units = 1;
    }
    match units {
        0 => "0".to_owned(),
        10_000.. => "1".to_owned(),
        n => format!("0.{n:04}").trim_end_matches('0').to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::BuildHasherDefault;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE_ID: [u8; 16] =
        [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
    const PARENT_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
    /// The W3C test suite's ids.
    const SUITE_TRACE: &str = "12345678901234567890123456789012";

    fn tp(s: &str) -> Result<TraceParent, TraceContextError> {
        TraceParent::parse(s)
    }

    fn ts(values: &[&str]) -> TraceState {
        TraceState::parse(values.iter().copied())
    }

    fn members(state: &TraceState) -> Vec<(&str, &str)> {
        state.iter().collect()
    }

    // ---- traceparent: valid input ----

    #[test]
    fn parses_spec_examples() {
        let sampled = tp(VALID).unwrap();
        assert_eq!(sampled, TraceParent { version: 0, trace_id: TRACE_ID, parent_id: PARENT_ID, flags: 1 });
        assert!(sampled.sampled());

        let unsampled = tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert_eq!(unsampled.flags, 0);
        assert!(!unsampled.sampled());
    }

    #[test]
    fn sampled_is_a_single_bit_test() {
        let with_flags = |flags: &str| tp(&format!("{}{flags}", &VALID[..53])).unwrap();
        assert!(with_flags("03").sampled());
        assert!(!with_flags("02").sampled());
        assert!(with_flags("ff").sampled());
        assert!(!with_flags("fe").sampled());
    }

    #[test]
    fn random_is_a_single_bit_test() {
        let with_flags = |flags: &str| tp(&format!("{}{flags}", &VALID[..53])).unwrap();
        for (flags, random, sampled) in
            [("00", false, false), ("01", false, true), ("02", true, false), ("03", true, true), ("fd", false, true)]
        {
            let parsed = with_flags(flags);
            assert_eq!((parsed.random(), parsed.sampled()), (random, sampled), "{flags}");
        }
    }

    #[test]
    fn with_flags_keeps_only_known_flags() {
        for (flags, kept) in
            [(0x00, 0x00), (0x01, 0x01), (0x02, 0x02), (0x03, 0x03), (0xff, 0x03), (0xfc, 0x00), (0x06, 0x02)]
        {
            let built = TraceParent::with_flags(TRACE_ID, PARENT_ID, flags);
            assert_eq!(built.flags, kept, "{flags:#04x}");
            assert_eq!(built.version, 0);
            assert_eq!(TraceParent::parse(&built.to_header()), Ok(built));
        }
        assert_eq!(TraceParent::new(TRACE_ID, PARENT_ID, true), TraceParent::with_flags(TRACE_ID, PARENT_ID, 0x01));
        assert_eq!(TraceParent::KNOWN_FLAGS, TraceParent::FLAG_SAMPLED | TraceParent::FLAG_RANDOM);
    }

    #[test]
    fn unknown_flags_are_kept_and_written_verbatim() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe";
        let parsed = tp(header).unwrap();
        assert_eq!(parsed.flags, 0xfe);
        assert_eq!(parsed.to_header(), header);
    }

    #[test]
    fn ows_is_trimmed() {
        for header in [
            format!(" {VALID}"),
            format!("\t{VALID}"),
            format!("{VALID} "),
            format!("{VALID}\t"),
            format!("\t {VALID} \t"),
            format!("   {VALID}   "),
        ] {
            assert_eq!(tp(&header).unwrap().trace_id, TRACE_ID, "{header:?}");
        }
    }

    #[test]
    fn non_ows_whitespace_is_not_trimmed() {
        for header in
            [format!("\n{VALID}"), format!("{VALID}\r\n"), format!("\u{a0}{VALID}"), format!("{VALID}\u{3000}")]
        {
            assert!(tp(&header).is_err(), "{header:?}");
        }
    }

    #[test]
    fn w3c_suite_valid_cases() {
        for header in [
            format!("00-{SUITE_TRACE}-1234567890123456-01"),
            format!("cc-{SUITE_TRACE}-1234567890123456-01"),
            format!("cc-{SUITE_TRACE}-1234567890123456-01-what-the-future-will-be-like"),
        ] {
            let parsed = tp(&header).unwrap();
            assert_eq!(hex(&parsed.trace_id), SUITE_TRACE, "{header}");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // ---- traceparent: versions ----

    #[test]
    fn future_version_is_parsed_and_downgraded() {
        let parsed = tp(&format!("cc-{}", &VALID[3..])).unwrap();
        assert_eq!(parsed.version, 0xcc);
        assert_eq!(parsed.to_header(), VALID);

        let extended = tp(&format!("01-{}-extra-fields", &VALID[3..])).unwrap();
        assert_eq!(extended.version, 1);
        assert_eq!(extended.to_header(), VALID);

        // A lone trailing dash is "followed by a dash".
        assert!(tp(&format!("01-{}-", &VALID[3..])).is_ok());
    }

    #[test]
    fn future_version_accepts_uppercase_hex_but_version_00_does_not() {
        let upper = "4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-0A";
        let parsed = tp(&format!("01-{upper}")).unwrap();
        assert_eq!(parsed.trace_id, TRACE_ID);
        assert_eq!(parsed.flags, 0x0a);
        assert_eq!(tp(&format!("00-{upper}")), Err(TraceContextError::InvalidHex { field: TraceParentField::TraceId }));
    }

    #[test]
    fn future_version_structural_errors() {
        // Extra content not introduced by '-'.
        assert_eq!(
            tp(&format!("cc-{SUITE_TRACE}-1234567890123456-01.what-the-future-will-be-like")),
            Err(TraceContextError::MissingDelimiter { index: 55 })
        );
        assert_eq!(
            tp(&format!("cc-{SUITE_TRACE}-1234567890123456-011")),
            Err(TraceContextError::MissingDelimiter { index: 55 })
        );
        // Shorter than the version 00 fields.
        assert_eq!(
            tp(&format!("cc-{SUITE_TRACE}-1234567890123456-1")),
            Err(TraceContextError::WrongLength { version: 0xcc, actual: 54 })
        );
        assert_eq!(tp("cc-"), Err(TraceContextError::WrongLength { version: 0xcc, actual: 3 }));
        // Field rules still apply.
        assert_eq!(tp(&format!("cc-{}-1234567890123456-01", "0".repeat(32))), Err(TraceContextError::ZeroTraceId));
        assert_eq!(tp(&format!("cc-{SUITE_TRACE}-0000000000000000-01-x")), Err(TraceContextError::ZeroParentId));
        assert_eq!(
            tp(&format!("cc-{SUITE_TRACE}_1234567890123456-01-x")),
            Err(TraceContextError::MissingDelimiter { index: 35 })
        );
        assert_eq!(
            tp(&format!("cc-{SUITE_TRACE}-1234567890123456-0g-x")),
            Err(TraceContextError::InvalidHex { field: TraceParentField::Flags })
        );
    }

    #[test]
    fn version_ff_is_forbidden() {
        assert_eq!(tp(&format!("ff-{SUITE_TRACE}-1234567890123456-01")), Err(TraceContextError::ForbiddenVersion));
        assert_eq!(
            tp(&format!("ff-{SUITE_TRACE}-1234567890123456-01-future")),
            Err(TraceContextError::ForbiddenVersion)
        );
    }

    #[test]
    fn malformed_versions() {
        let rest = format!("{SUITE_TRACE}-1234567890123456-01");
        for version in [".0", "0.", "000", "0000", "0", "", "0A", "FF", "CC", "g0", "0x"] {
            assert_eq!(tp(&format!("{version}-{rest}")), Err(TraceContextError::InvalidVersion), "{version:?}");
        }
        for header in ["", " ", "0", "00", "00_", "\t\t"] {
            assert_eq!(tp(header), Err(TraceContextError::InvalidVersion), "{header:?}");
        }
    }

    // ---- traceparent: version 00 malformed input (W3C test suite cases) ----

    #[test]
    fn version_00_rejects_extra_content() {
        for suffix in [".", "-", "-what-the-future-will-be-like", "0", " x"] {
            let header = format!("00-{SUITE_TRACE}-1234567890123456-01{suffix}");
            assert!(matches!(tp(&header), Err(TraceContextError::WrongLength { version: 0, .. })), "{header:?}");
        }
    }

    #[test]
    fn wrong_field_lengths() {
        for header in [
            format!("00-{SUITE_TRACE}3-1234567890123456-01"),
            "00-1234567890123456789012345678901-1234567890123456-01".to_owned(),
            format!("00-{SUITE_TRACE}-12345678901234567-01"),
            format!("00-{SUITE_TRACE}-123456789012345-01"),
            format!("00-{SUITE_TRACE}-1234567890123456-001"),
            format!("00-{SUITE_TRACE}-1234567890123456-1"),
        ] {
            assert!(matches!(tp(&header), Err(TraceContextError::WrongLength { .. })), "{header:?}");
        }
        // Right total length, wrong field boundaries.
        assert_eq!(
            tp(&format!("00-{SUITE_TRACE}1-234567890123456-01")),
            Err(TraceContextError::MissingDelimiter { index: 35 })
        );
        assert_eq!(
            tp(&format!("00-{SUITE_TRACE}-12345678901234560-1")),
            Err(TraceContextError::MissingDelimiter { index: 52 })
        );
    }

    #[test]
    fn illegal_characters() {
        let id_err = |field| Err(TraceContextError::InvalidHex { field });
        let cases = [
            ("00-.2345678901234567890123456789012-1234567890123456-01", TraceParentField::TraceId),
            ("00-1234567890123456789012345678901.-1234567890123456-01", TraceParentField::TraceId),
            ("00-12345678901234567890123456789012-.234567890123456-01", TraceParentField::ParentId),
            ("00-12345678901234567890123456789012-123456789012345.-01", TraceParentField::ParentId),
            ("00-12345678901234567890123456789012-1234567890123456-.0", TraceParentField::Flags),
            ("00-12345678901234567890123456789012-1234567890123456-0.", TraceParentField::Flags),
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", TraceParentField::TraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", TraceParentField::ParentId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", TraceParentField::Flags),
            ("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", TraceParentField::TraceId),
            ("00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceParentField::TraceId),
        ];
        for (header, field) in cases {
            assert_eq!(tp(header), id_err(field), "{header}");
        }
    }

    #[test]
    fn bad_separators() {
        assert_eq!(
            tp("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Err(TraceContextError::InvalidVersion)
        );
        assert_eq!(
            tp("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01"),
            Err(TraceContextError::MissingDelimiter { index: 35 })
        );
        assert_eq!(
            tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01"),
            Err(TraceContextError::MissingDelimiter { index: 52 })
        );
        assert!(tp("00 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 01").is_err());
    }

    #[test]
    fn zero_ids() {
        assert_eq!(tp(&format!("00-{}-1234567890123456-01", "0".repeat(32))), Err(TraceContextError::ZeroTraceId));
        assert_eq!(tp(&format!("00-{SUITE_TRACE}-0000000000000000-01")), Err(TraceContextError::ZeroParentId));
        // Only the ids are checked for zero: zero flags are fine.
        assert!(tp(&format!("00-{SUITE_TRACE}-1234567890123456-00")).is_ok());
    }

    #[test]
    fn non_ascii_never_panics() {
        // Multi-byte characters straddling every delimiter and field boundary.
        let mut cases = Vec::new();
        for ch in ['é', '€', '😀', '\u{0}', '\u{7f}'] {
            for pos in 0..VALID.len() {
                let mut s: String = VALID[..pos].to_owned();
                s.push(ch);
                s.push_str(&VALID[pos..]);
                cases.push(s);
                let mut replaced: String = VALID[..pos].to_owned();
                replaced.push(ch);
                replaced.push_str(&VALID[(pos + 1).min(VALID.len())..]);
                cases.push(replaced);
            }
        }
        cases.push("é".repeat(28));
        cases.push("😀".repeat(14));
        cases.push(format!("01-{}😀", &VALID[3..]));
        for case in &cases {
            assert!(tp(case).is_err(), "{case:?}");
        }
        // Non-ASCII after a future version's trailing '-' is opaque and fine.
        assert!(tp(&format!("01-{}-😀", &VALID[3..])).is_ok());
    }

    // ---- traceparent: serialization ----

    #[test]
    fn new_and_to_header() {
        let header = TraceParent::new(TRACE_ID, PARENT_ID, true).to_header();
        assert_eq!(header, VALID);
        assert_eq!(header.len(), 55);
        let unsampled = TraceParent::new(TRACE_ID, PARENT_ID, false);
        assert_eq!(unsampled.version, 0);
        assert_eq!(unsampled.flags, 0);
        assert!(unsampled.to_header().ends_with("-00"));
    }

    #[test]
    fn write_header_matches_to_header() {
        let parsed = tp(VALID).unwrap();
        let mut buf = [b'x'; 55];
        assert_eq!(parsed.write_header(&mut buf), VALID);
        assert_eq!(parsed.to_string(), VALID);
        assert_eq!(VALID.parse::<TraceParent>(), Ok(parsed));
        let max = TraceParent { version: 0, trace_id: [0xff; 16], parent_id: [0xab; 8], flags: 0xff };
        assert_eq!(max.to_header(), "00-ffffffffffffffffffffffffffffffff-abababababababab-ff");
    }

    #[test]
    fn errors_display_and_are_std_errors() {
        let errors = [
            TraceContextError::InvalidVersion,
            TraceContextError::ForbiddenVersion,
            TraceContextError::WrongLength { version: 0, actual: 56 },
            TraceContextError::WrongLength { version: 0xcc, actual: 10 },
            TraceContextError::MissingDelimiter { index: 35 },
            TraceContextError::InvalidHex { field: TraceParentField::ParentId },
            TraceContextError::ZeroTraceId,
            TraceContextError::ZeroParentId,
        ];
        for err in errors {
            let boxed: Box<dyn std::error::Error> = Box::new(err.clone());
            let msg = boxed.to_string();
            assert!(msg.starts_with("invalid traceparent: "), "{msg}");
        }
        assert!(TraceContextError::WrongLength { version: 0xcc, actual: 10 }
            .to_string()
            .contains("version cc must be at least 55 bytes, got 10"));
        assert!(TraceContextError::InvalidHex { field: TraceParentField::ParentId }.to_string().contains("parent-id"));
        assert_eq!(TraceParentField::Version.to_string(), "version");
    }

    // ---- tracestate: parsing ----

    #[test]
    fn tracestate_basic() {
        let state = ts(&["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]);
        assert_eq!(members(&state), [("rojo", "00f067aa0ba902b7"), ("congo", "t61rcWkgMzE")]);
        assert_eq!(state.len(), 2);
        assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(state.get("nope"), None);
        assert_eq!(state.to_header().as_deref(), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    }

    #[test]
    fn tracestate_multiple_headers_keep_order() {
        let state = ts(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]);
        assert_eq!(state.to_header().as_deref(), Some("foo=1,bar=2,rojo=1,congo=2,baz=3"));
    }

    #[test]
    fn tracestate_empty_inputs() {
        assert!(ts(&[]).is_empty());
        assert!(ts(&[""]).is_empty());
        assert_eq!(ts(&[""]).to_header(), None);
        assert!(ts(&[" , ,\t,"]).is_empty());
        assert_eq!(TraceState::default().to_header(), None);
        assert_eq!(members(&ts(&["foo=1", ""])), [("foo", "1")]);
        assert_eq!(members(&ts(&["", "foo=1"])), [("foo", "1")]);
        assert_eq!(members(&ts(&[",,a=1,, ,\t,b=2,"])), [("a", "1"), ("b", "2")]);
    }

    #[test]
    fn tracestate_ows_handling() {
        let expected = [("foo", "1"), ("bar", "2"), ("baz", "3")];
        assert_eq!(members(&ts(&["foo=1 \t , \t bar=2, \t baz=3"])), expected);
        assert_eq!(members(&ts(&["foo=1\t \t,\t \tbar=2,\t \tbaz=3"])), expected);
        for value in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(members(&ts(&[value])), [("foo", "1")], "{value:?}");
        }
        // Leading spaces belong to the value; trailing ones are OWS.
        assert_eq!(members(&ts(&["foo= 1 "])), [("foo", " 1")]);
        assert_eq!(ts(&["foo= 1"]).to_header().as_deref(), Some("foo= 1"));
    }

    #[test]
    fn tracestate_all_allowed_characters() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let tenant_key = format!("{key}@a-z0-9_-*/");
        let value: String = (0x20u8..=0x7e).filter(|b| *b != b',' && *b != b'=').map(char::from).collect();
        for key in [key.to_owned(), tenant_key] {
            let state = TraceState::parse([format!("{key}={value}").as_str()]);
            assert_eq!(state.get(&key), Some(value.as_str()), "{key}");
        }
    }

    #[test]
    fn tracestate_invalid_keys_discard_everything() {
        for header in [
            "foo =1,bar=2",
            "FOO=1,bar=2",
            "foo.bar=1,bar=2",
            "@foo=1,bar=2",
            "@=1,bar=2",
            "_foo=1,bar=2",
            "-foo=1,bar=2",
            "*foo=1,bar=2",
            "/foo=1,bar=2",
            "=1,bar=2",
            "foo@Bar=1,bar=2",
            "foo@b.r=1,bar=2",
            "fóo=1,bar=2",
            "foo,bar=2",
            "bar=2,foo",
            // The bad member may come last: what came before it goes too.
            "bar=2,@foo=1",
        ] {
            assert!(ts(&[header]).is_empty(), "{header:?}");
        }
    }

    #[test]
    fn tracestate_multi_tenant_keys() {
        for key in ["fw529a3039@dt", "1tenant@vendor", "a@b", "t_-*/@v_-*/1"] {
            let state = TraceState::parse([format!("{key}=x").as_str()]);
            assert_eq!(state.get(key), Some("x"), "{key}");
        }
    }

    #[test]
    fn tracestate_level_2_keys() {
        // Keys Level 1's tenant@system grammar rejected and Level 2 accepts: a digit first
        // without a tenant, `@` at the end, doubled, repeated, or before a digit.
        for key in ["1foo", "0", "foo@", "foo@@bar", "foo@bar@baz", "foo@1bar", "a@", "9@@@", "a-b@_*/"] {
            let state = TraceState::parse([format!("{key}=1,bar=2").as_str()]);
            assert_eq!(members(&state), [(key, "1"), ("bar", "2")], "{key}");
            assert_eq!(state.to_header(), Some(format!("{key}=1,bar=2")));
        }
    }

    #[test]
    fn tracestate_key_length_limits() {
        let accept = |key: String| {
            let state = TraceState::parse(["foo=1", &format!("{key}=1")]);
            assert_eq!(state.get("foo"), Some("1"), "{key}");
            assert_eq!(state.get(&key), Some("1"), "{key}");
        };
        let reject = |key: String| {
            let state = TraceState::parse(["foo=1", &format!("{key}=1")]);
            assert!(state.is_empty(), "{key}");
        };
        accept("z".repeat(256));
        reject("z".repeat(257));
        // Level 2 has one limit, 256 characters for the whole key, wherever `@` is.
        accept(format!("{}@{}", "t".repeat(241), "v".repeat(14)));
        accept(format!("{}@v", "t".repeat(242)));
        accept(format!("t@{}", "v".repeat(15)));
        accept(format!("t@{}", "v".repeat(254)));
        reject(format!("t@{}", "v".repeat(255)));
        accept(format!("{}@", "1".repeat(255)));
        reject(format!("{}@", "1".repeat(256)));
    }

    #[test]
    fn tracestate_invalid_values_discard_everything() {
        for header in [
            "foo=bar=baz",
            "foo=,bar=3",
            "foo=  ,bar=3",
            "foo=a\tb,bar=3",
            "foo=caf\u{e9},bar=3",
            "foo=\u{7f},bar=3",
            "foo=\u{0},bar=3",
        ] {
            assert!(ts(&[header]).is_empty(), "{header:?}");
        }
        assert!(TraceState::parse([format!("foo={}", "v".repeat(257)).as_str()]).is_empty());
        let max = "v".repeat(256);
        assert_eq!(TraceState::parse([format!("foo={max}").as_str()]).get("foo"), Some(max.as_str()));
    }

    #[test]
    fn tracestate_member_limit() {
        let lines = [
            "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
            "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
            "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
        ];
        let mut valid = lines.to_vec();
        valid.push("bar31=31,,bar32=32, ");
        let state = ts(&valid);
        assert_eq!(state.len(), 32);
        assert_eq!(state.get("bar01"), Some("01"));

        let mut too_many = lines.to_vec();
        too_many.push("bar31=31,bar32=32,bar33=33");
        assert!(ts(&too_many).is_empty());

        // Duplicates still count towards the limit.
        let dupes = vec!["a=1"; 33];
        assert!(ts(&dupes).is_empty());
        assert_eq!(members(&ts(&dupes[..32])), [("a", "1")]);
    }

    #[test]
    fn tracestate_duplicate_keys_keep_leftmost() {
        assert_eq!(members(&ts(&["foo=1,foo=1"])), [("foo", "1")]);
        assert_eq!(members(&ts(&["foo=1,foo=2"])), [("foo", "1")]);
        assert_eq!(members(&ts(&["foo=1", "foo=1"])), [("foo", "1")]);
        assert_eq!(members(&ts(&["foo=1", "bar=3", "foo=2"])), [("foo", "1"), ("bar", "3")]);
    }

    #[test]
    fn tracestate_invalid_later_header_discards_earlier_ones() {
        assert!(ts(&["foo=1", "bar=2", "BAD=3"]).is_empty());
        assert!(ts(&["BAD=3", "foo=1"]).is_empty());
    }

    #[test]
    fn tracestate_round_trips() {
        for header in ["a=1", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "es=s:0.5,fw529a3039@dt=x y", "k= leading"] {
            let state = ts(&[header]);
            assert_eq!(state.to_header().as_deref(), Some(header));
            assert_eq!(TraceState::parse([header]), state);
        }
    }

    // ---- tracestate: Elastic `es` entry ----

    #[test]
    fn elastic_sample_rate_parsing() {
        let rate = |header: &str| ts(&[header]).elastic_sample_rate();
        assert_eq!(rate("es=s:0.5"), Some(0.5));
        assert_eq!(rate("es=s:1"), Some(1.0));
        assert_eq!(rate("es=s:0"), Some(0.0));
        assert_eq!(rate("es=s:0.0001"), Some(0.0001));
        assert_eq!(rate("rojo=1,es=a:b;s:0.25;c:d"), Some(0.25));
        assert_eq!(rate("es=s:0.1;s:0.9"), Some(0.1));
        for header in [
            "es=s:1.5",
            "es=s:-0.1",
            "es=s:abc",
            "es=s:NaN",
            "es=s:inf",
            "es=s:",
            "es=x:0.5",
            "es=0.5",
            "es=ss:0.5",
            "rojo=s:0.5",
            "es=s: 0.5",
        ] {
            assert_eq!(rate(header), None, "{header}");
        }
        assert_eq!(TraceState::default().elastic_sample_rate(), None);
    }

    #[test]
    fn sample_rate_formatting() {
        for (rate, expected) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (0.0001, "0.0001"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (0.25, "0.25"),
            (0.123, "0.123"),
            (0.00001, "0.0001"),
            (f64::MIN_POSITIVE, "0.0001"),
            (0.55554, "0.5555"),
            (0.55555, "0.5556"),
            (0.55556, "0.5556"),
            (0.99999, "1"),
            (0.99994, "0.9999"),
            (1.5, "1"),
            (-1.0, "0"),
            (f64::INFINITY, "1"),
            (f64::NEG_INFINITY, "0"),
        ] {
            assert_eq!(format_sample_rate(rate), expected, "{rate}");
        }
    }

    #[test]
    fn with_elastic_sample_rate_moves_es_to_front() {
        let state = ts(&["a=1,es=s:0.1,b=2"]);
        let updated = state.with_elastic_sample_rate(0.25);
        assert_eq!(updated.to_header().as_deref(), Some("es=s:0.25,a=1,b=2"));
        assert_eq!(updated.elastic_sample_rate(), Some(0.25));
        // The original is untouched.
        assert_eq!(state.to_header().as_deref(), Some("a=1,es=s:0.1,b=2"));

        let fresh = TraceState::default().with_elastic_sample_rate(1.0);
        assert_eq!(fresh.to_header().as_deref(), Some("es=s:1"));

        let appended = ts(&["rojo=1"]).with_elastic_sample_rate(0.0001);
        assert_eq!(appended.to_header().as_deref(), Some("es=s:0.0001,rojo=1"));
    }

    #[test]
    fn with_elastic_sample_rate_keeps_other_es_attributes() {
        let state = ts(&["es=x:1;s:0.5;bad;:e;y:2"]);
        let updated = state.with_elastic_sample_rate(0.1);
        assert_eq!(updated.get("es"), Some("s:0.1;x:1;y:2"));

        // Attributes that no longer fit are dropped, not truncated.
        let long = format!("es=a:{};b:c", "v".repeat(248));
        let updated = TraceState::parse([long.as_str()]).with_elastic_sample_rate(0.25);
        assert_eq!(updated.get("es"), Some("s:0.25;b:c"));
    }

    #[test]
    fn with_elastic_sample_rate_nan_is_a_no_op() {
        let state = ts(&["a=1,es=s:0.1"]);
        assert_eq!(state.with_elastic_sample_rate(f64::NAN), state);
    }

    #[test]
    fn with_elastic_sample_rate_respects_member_limit() {
        let full: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let state = TraceState::parse(full.iter().map(String::as_str));
        assert_eq!(state.len(), 32);
        let updated = state.with_elastic_sample_rate(0.5);
        assert_eq!(updated.len(), 32);
        assert_eq!(updated.iter().next(), Some(("es", "s:0.5")));
        assert_eq!(updated.get("k30"), Some("v"));
        assert_eq!(updated.get("k31"), None);

        // Replacing an existing es entry drops nothing else.
        let mut with_es = full.clone();
        with_es[10] = "es=s:1".to_owned();
        let state = TraceState::parse(with_es.iter().map(String::as_str));
        let updated = state.with_elastic_sample_rate(0.5);
        assert_eq!(updated.len(), 32);
        assert_eq!(updated.get("k31"), Some("v"));
    }

    // ---- extract ----

    const SUITE_TP: &str = "00-12345678901234567890123456789012-1234567890123456-01";

    #[test]
    fn extract_from_slice_array_and_vec() {
        let array = [("traceparent", VALID), ("tracestate", "es=s:0.5")];
        let ctx = extract(&array).unwrap();
        assert_eq!(ctx.traceparent, tp(VALID).unwrap());
        assert_eq!(ctx.tracestate.elastic_sample_rate(), Some(0.5));

        assert_eq!(extract(array.as_slice()), Some(ctx.clone()));
        assert_eq!(extract(&&array[..]), Some(ctx.clone()));

        let owned: Vec<(String, String)> = array.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(extract(&owned), Some(ctx.clone()));
        assert_eq!(extract(&&owned), Some(ctx));
    }

    #[test]
    fn extract_header_names_are_case_insensitive() {
        for (tp_name, ts_name) in
            [("TraceParent", "TraceState"), ("TRACEPARENT", "TRACESTATE"), ("traceParent", "traceState")]
        {
            let headers = [(tp_name, SUITE_TP), (ts_name, "foo=1")];
            let ctx = extract(&headers).unwrap();
            assert_eq!(hex(&ctx.traceparent.trace_id), SUITE_TRACE);
            assert_eq!(ctx.tracestate.get("foo"), Some("1"));
        }
    }

    #[test]
    fn extract_rejects_wrong_header_names() {
        for name in ["trace-parent", "trace.parent", "traceparent "] {
            assert_eq!(extract(&[(name, SUITE_TP)]), None, "{name}");
        }
        let wrong_state = [("traceparent", SUITE_TP), ("trace-state", "foo=1")];
        assert!(extract(&wrong_state).unwrap().tracestate.is_empty());
    }

    #[test]
    fn extract_duplicate_traceparent_restarts() {
        let other = "00-12345678901234567890123456789011-1234567890123456-01";
        assert_eq!(extract(&[("traceparent", other), ("traceparent", SUITE_TP)]), None);
        assert_eq!(extract(&[("traceparent", SUITE_TP), ("TraceParent", SUITE_TP)]), None);
        // An invalid duplicate still counts.
        assert_eq!(extract(&[("traceparent", SUITE_TP), ("traceparent", "garbage")]), None);
        // A comma-combined value is just a malformed single value.
        let combined = format!("{SUITE_TP}, {other}");
        assert_eq!(extract(&[("traceparent", combined.as_str())]), None);
    }

    #[test]
    fn extract_absent_or_invalid_traceparent() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(extract(&none), None);
        assert_eq!(extract(&[("tracestate", "foo=1")]), None);
        assert_eq!(extract(&[("traceparent", "")]), None);
        assert_eq!(
            extract(&[
                ("traceparent", "00-00000000000000000000000000000000-1234567890123456-01"),
                ("tracestate", "foo=1"),
            ]),
            None
        );
    }

    #[test]
    fn extract_legacy_header() {
        let legacy = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let ctx = extract(&[("Elastic-Apm-Traceparent", legacy), ("tracestate", "a=1")]).unwrap();
        assert_eq!(ctx.traceparent, tp(legacy).unwrap());
        assert_eq!(ctx.tracestate.get("a"), Some("1"));

        // traceparent takes precedence, even when it is invalid.
        let both = [("elastic-apm-traceparent", legacy), ("traceparent", SUITE_TP)];
        assert_eq!(hex(&extract(&both).unwrap().traceparent.trace_id), SUITE_TRACE);
        let invalid = [("elastic-apm-traceparent", legacy), ("traceparent", "junk")];
        assert_eq!(extract(&invalid), None);

        // The legacy header has the same duplicate rule.
        let dup = [("elastic-apm-traceparent", legacy), ("elastic-apm-traceparent", legacy)];
        assert_eq!(extract(&dup), None);
    }

    #[test]
    fn extract_tracestate_handling() {
        let ctx = extract(&[
            ("traceparent", SUITE_TP),
            ("tracestate", "foo=1,bar=2"),
            ("x-other", "ignored"),
            ("tracestate", "rojo=1,congo=2"),
            ("tracestate", "baz=3"),
        ])
        .unwrap();
        assert_eq!(ctx.tracestate.to_header().as_deref(), Some("foo=1,bar=2,rojo=1,congo=2,baz=3"));

        // Invalid tracestate never affects traceparent.
        let ctx = extract(&[("traceparent", SUITE_TP), ("tracestate", "foo=bar=baz")]).unwrap();
        assert!(ctx.tracestate.is_empty());
        assert_eq!(hex(&ctx.traceparent.trace_id), SUITE_TRACE);

        let ctx = extract(&[("traceparent", SUITE_TP)]).unwrap();
        assert_eq!(ctx.tracestate, TraceState::default());
    }

    #[test]
    fn extract_from_hash_map() {
        let mut map: HashMap<String, String> = HashMap::new();
        map.insert("TraceParent".into(), SUITE_TP.into());
        map.insert("tracestate".into(), "es=s:0.5".into());
        let ctx = extract(&map).unwrap();
        assert_eq!(ctx.tracestate.elastic_sample_rate(), Some(0.5));

        // Differently-cased keys are the same header, hence a duplicate.
        map.insert("traceparent".into(), SUITE_TP.into());
        assert_eq!(extract(&map), None);

        let mut custom: HashMap<&str, &str, BuildHasherDefault<DefaultHasher>> = HashMap::default();
        custom.insert("traceparent", VALID);
        assert_eq!(extract(&custom).unwrap().traceparent, tp(VALID).unwrap());
    }

    #[test]
    fn extract_from_header_fn() {
        let source = HeaderFn(|name: &str| match name {
            "traceparent" => Some(SUITE_TP.to_owned()),
            "tracestate" => Some("foo=1".to_owned()),
            _ => None,
        });
        let ctx = extract(&source).unwrap();
        assert_eq!(ctx.tracestate.get("foo"), Some("1"));

        let legacy_only = HeaderFn(|name: &str| (name == ELASTIC_TRACEPARENT_HEADER).then(|| SUITE_TP.to_owned()));
        assert!(extract(&legacy_only).is_some());
        assert_eq!(extract(&HeaderFn(|_: &str| None)), None);
    }

    #[test]
    fn extract_via_dyn_header_source() {
        let headers = vec![("traceparent", SUITE_TP)];
        let dynamic: &dyn HeaderSource = &headers;
        assert!(extract(dynamic).is_some());
    }

    #[cfg(feature = "http")]
    #[test]
    fn extract_from_http_header_map() {
        use http::header::{HeaderMap, HeaderName, HeaderValue};

        let mut map = HeaderMap::new();
        map.insert("traceparent", HeaderValue::from_static(SUITE_TP));
        map.append("TraceState", HeaderValue::from_static("foo=1"));
        map.append("tracestate", HeaderValue::from_static("bar=2"));
        let ctx = extract(&map).unwrap();
        assert_eq!(ctx.tracestate.to_header().as_deref(), Some("foo=1,bar=2"));

        // Lookup with a non-lowercase name is case-insensitive too.
        let mut seen = Vec::new();
        map.for_each_value("TRACESTATE", &mut |v| seen.push(v.to_owned()));
        assert_eq!(seen, ["foo=1", "bar=2"]);
        // Names that are not valid header names simply match nothing.
        map.for_each_value("bad name\n", &mut |_| panic!("no match expected"));

        map.append(HeaderName::from_static("traceparent"), HeaderValue::from_static(SUITE_TP));
        assert_eq!(extract(&map), None);

        // A non-UTF-8 duplicate still makes the header ambiguous.
        let mut map = HeaderMap::new();
        map.append("traceparent", HeaderValue::from_static(SUITE_TP));
        map.append("traceparent", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(extract(&map), None);

        let mut legacy = HeaderMap::new();
        legacy.insert("elastic-apm-traceparent", HeaderValue::from_static(SUITE_TP));
        assert!(extract(&legacy).is_some());
    }

    // ---- the W3C trace-context test suite (github.com/w3c/trace-context, test/test.py) ----

    /// Every case of the W3C suite, one row per suite test, checked against what this crate
    /// sends on: the harness calls a service with some headers, the service continues the trace
    /// with `continue_from` and calls back once per requested callback (an exit span each), and
    /// the harness inspects the `traceparent`/`tracestate` of those callbacks. Here the service
    /// is the same public API without HTTP in between; `examples/w3c_service.rs` with
    /// `scripts/w3c-suite.sh` runs the real suite over HTTP.
    mod w3c_suite {
        use super::*;
        use crate::report::MemorySink;
        use crate::{Agent, Span};

        const TRACE: &str = "12345678901234567890123456789012";
        const PARENT: &str = "1234567890123456";
        const ZERO_TRACE: &str = "00000000000000000000000000000000";

        /// What the suite asserts about the headers of every callback of one request.
        #[derive(Clone, Debug)]
        enum Expect {
            /// The trace was continued: this trace id.
            TraceId(&'static str),
            /// The trace was restarted (or never had this id).
            NotTraceId(&'static str),
            NotParentId(&'static str),
            /// A trace-flags bit set, e.g. random (`0x02`).
            FlagSet(u8),
            /// The tracestate has `key` with `value`.
            State(String, String),
            /// The tracestate has no `key`.
            NoState(String),
            /// The tracestate has this many members.
            StateLen(usize),
            /// The serialized tracestate contains every one of these, in this order.
            StateInOrder(&'static [&'static str]),
            /// The serialized tracestate contains at least one of these.
            StateContainsAny(&'static [&'static str]),
            /// The callbacks share one trace id and have pairwise different parent ids.
            DistinctParentIds,
        }
        use Expect::*;

        /// One request from the harness to the service.
        struct Request {
            headers: Vec<(&'static str, String)>,
            callbacks: usize,
            expect: Vec<Expect>,
        }

        /// One test of the suite, named as the suite names it.
        struct SuiteTest {
            name: &'static str,
            /// Runs only at `STRICT_LEVEL=2` in the suite (we pass it at every level).
            strict: bool,
            requests: Vec<Request>,
        }

        fn req(headers: &[(&'static str, &str)], expect: Vec<Expect>) -> Request {
            Request { headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(), callbacks: 1, expect }
        }

        fn tp(value: &str) -> (&'static str, String) {
            ("traceparent", value.to_owned())
        }

        fn tp00() -> (&'static str, &'static str) {
            ("traceparent", "00-12345678901234567890123456789012-1234567890123456-00")
        }

        fn tp01() -> (&'static str, &'static str) {
            ("traceparent", "00-12345678901234567890123456789012-1234567890123456-01")
        }

        fn state(key: &str, value: &str) -> Expect {
            State(key.to_owned(), value.to_owned())
        }

        fn no_state(key: &str) -> Expect {
            NoState(key.to_owned())
        }

        /// A request carrying one `traceparent` value that the service must not continue.
        fn restarts(value: &str) -> Request {
            Request { headers: vec![tp(value)], callbacks: 1, expect: vec![NotTraceId(TRACE)] }
        }

        fn t(name: &'static str, requests: Vec<Request>) -> SuiteTest {
            SuiteTest { name, strict: false, requests }
        }

        fn strict(name: &'static str, requests: Vec<Request>) -> SuiteTest {
            SuiteTest { name, strict: true, requests }
        }

        fn suite() -> Vec<SuiteTest> {
            let member_lines = [
                "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
                "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
                "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
            ];
            let with_members = |last: &str| {
                let mut headers = vec![tp00()];
                headers.extend(member_lines.iter().map(|line| ("tracestate", *line)));
                headers.push(("tracestate", last));
                headers.into_iter().map(|(k, v)| (k, v.to_owned())).collect::<Vec<_>>()
            };
            let key_without_vendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
            let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
            let all_values: String = (0x20u8..=0x7e).filter(|b| *b != b',' && *b != b'=').map(char::from).collect();
            let z256 = "z".repeat(256);
            let tenant_241 = format!("{}@{}", "t".repeat(241), "v".repeat(14));
            let tenant_242 = format!("{}@v", "t".repeat(242));
            let system_15 = format!("t@{}", "v".repeat(15));
            let key_length = |key: &str| {
                req(
                    &[tp00(), ("tracestate", "foo=1"), ("tracestate", &format!("{key}=1"))],
                    vec![state("foo", "1"), state(key, "1")],
                )
            };
            let ows = |value: &str| req(&[tp00(), ("tracestate", value)], vec![TraceId(TRACE), state("foo", "1")]);
            let ows_three = |value: &str| {
                req(&[tp00(), ("tracestate", value)], vec![state("foo", "1"), state("bar", "2"), state("baz", "3")])
            };

            vec![
                // ---- TraceContextTest (Level 1) ----
                t("test_both_traceparent_and_tracestate_missing", vec![req(&[], vec![])]),
                t(
                    "test_traceparent_included_tracestate_missing",
                    vec![req(&[tp01()], vec![TraceId(TRACE), NotParentId(PARENT)])],
                ),
                t(
                    "test_traceparent_duplicated",
                    vec![req(
                        &[
                            ("traceparent", "00-12345678901234567890123456789011-1234567890123456-01"),
                            ("traceparent", "00-12345678901234567890123456789012-1234567890123456-01"),
                        ],
                        vec![NotTraceId("12345678901234567890123456789011"), NotTraceId(TRACE)],
                    )],
                ),
                t(
                    "test_traceparent_header_name",
                    vec![
                        req(&[("trace-parent", tp01().1)], vec![NotTraceId(TRACE)]),
                        req(&[("trace.parent", tp01().1)], vec![NotTraceId(TRACE)]),
                    ],
                ),
                t(
                    "test_traceparent_header_name_valid_casing",
                    ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"]
                        .into_iter()
                        .map(|name| req(&[(name, tp01().1)], vec![TraceId(TRACE)]))
                        .collect(),
                ),
                t(
                    "test_traceparent_version_0x00",
                    vec![
                        restarts("00-12345678901234567890123456789012-1234567890123456-01."),
                        restarts(
                            "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
                        ),
                    ],
                ),
                t(
                    "test_traceparent_version_0xcc",
                    vec![
                        req(
                            &[("traceparent", "cc-12345678901234567890123456789012-1234567890123456-01")],
                            vec![TraceId(TRACE)],
                        ),
                        req(
                            &[(
                                "traceparent",
                                "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
                            )],
                            vec![TraceId(TRACE)],
                        ),
                        restarts(
                            "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
                        ),
                    ],
                ),
                t(
                    "test_traceparent_version_0xff",
                    vec![restarts("ff-12345678901234567890123456789012-1234567890123456-01")],
                ),
                t(
                    "test_traceparent_version_illegal_characters",
                    vec![
                        restarts(".0-12345678901234567890123456789012-1234567890123456-01"),
                        restarts("0.-12345678901234567890123456789012-1234567890123456-01"),
                    ],
                ),
                t(
                    "test_traceparent_version_too_long",
                    vec![
                        restarts("000-12345678901234567890123456789012-1234567890123456-01"),
                        restarts("0000-12345678901234567890123456789012-1234567890123456-01"),
                    ],
                ),
                t(
                    "test_traceparent_version_too_short",
                    vec![restarts("0-12345678901234567890123456789012-1234567890123456-01")],
                ),
                t(
                    "test_traceparent_trace_id_all_zero",
                    vec![req(
                        &[("traceparent", "00-00000000000000000000000000000000-1234567890123456-01")],
                        vec![NotTraceId(ZERO_TRACE)],
                    )],
                ),
                // The suite compares with the illegal id itself, which no hex id can equal;
                // the id around the illegal character is the stronger check.
                t(
                    "test_traceparent_trace_id_illegal_characters",
                    vec![
                        req(
                            &[("traceparent", "00-.2345678901234567890123456789012-1234567890123456-01")],
                            vec![NotTraceId("02345678901234567890123456789012")],
                        ),
                        req(
                            &[("traceparent", "00-1234567890123456789012345678901.-1234567890123456-01")],
                            vec![NotTraceId("12345678901234567890123456789010")],
                        ),
                    ],
                ),
                t(
                    "test_traceparent_trace_id_too_long",
                    vec![req(
                        &[("traceparent", "00-123456789012345678901234567890123-1234567890123456-01")],
                        vec![NotTraceId(TRACE), NotTraceId("23456789012345678901234567890123")],
                    )],
                ),
                t(
                    "test_traceparent_trace_id_too_short",
                    vec![req(
                        &[("traceparent", "00-1234567890123456789012345678901-1234567890123456-01")],
                        vec![
                            NotTraceId("01234567890123456789012345678901"),
                            NotTraceId("12345678901234567890123456789010"),
                        ],
                    )],
                ),
                t(
                    "test_traceparent_parent_id_all_zero",
                    vec![restarts("00-12345678901234567890123456789012-0000000000000000-01")],
                ),
                t(
                    "test_traceparent_parent_id_illegal_characters",
                    vec![
                        restarts("00-12345678901234567890123456789012-.234567890123456-01"),
                        restarts("00-12345678901234567890123456789012-123456789012345.-01"),
                    ],
                ),
                t(
                    "test_traceparent_parent_id_too_long",
                    vec![restarts("00-12345678901234567890123456789012-12345678901234567-01")],
                ),
                t(
                    "test_traceparent_parent_id_too_short",
                    vec![restarts("00-12345678901234567890123456789012-123456789012345-01")],
                ),
                t(
                    "test_traceparent_trace_flags_illegal_characters",
                    vec![
                        restarts("00-12345678901234567890123456789012-1234567890123456-.0"),
                        restarts("00-12345678901234567890123456789012-1234567890123456-0."),
                    ],
                ),
                t(
                    "test_traceparent_trace_flags_too_long",
                    vec![restarts("00-12345678901234567890123456789012-1234567890123456-001")],
                ),
                t(
                    "test_traceparent_trace_flags_too_short",
                    vec![restarts("00-12345678901234567890123456789012-1234567890123456-1")],
                ),
                t(
                    "test_traceparent_ows_handling",
                    [" ", "\t", "", "", "\t "]
                        .into_iter()
                        .zip(["", "", " ", "\t", " \t"])
                        .map(|(lead, trail)| {
                            req(&[("traceparent", &format!("{lead}{}{trail}", tp01().1))], vec![TraceId(TRACE)])
                        })
                        .collect(),
                ),
                // The suite compares the two tracestates' lengths; they are equal because
                // neither keeps anything from the request.
                t(
                    "test_tracestate_included_traceparent_missing",
                    vec![
                        req(&[("tracestate", "foo=1")], vec![no_state("foo"), StateLen(1)]),
                        req(&[("tracestate", "foo=1,bar=2")], vec![no_state("foo"), no_state("bar"), StateLen(1)]),
                    ],
                ),
                t(
                    "test_tracestate_included_traceparent_included",
                    vec![req(
                        &[tp00(), ("tracestate", "foo=1,bar=2")],
                        vec![TraceId(TRACE), state("foo", "1"), state("bar", "2")],
                    )],
                ),
                t(
                    "test_tracestate_header_name",
                    vec![
                        req(&[tp00(), ("trace-state", "foo=1")], vec![no_state("foo")]),
                        req(&[tp00(), ("trace.state", "foo=1")], vec![no_state("foo")]),
                    ],
                ),
                t(
                    "test_tracestate_header_name_valid_casing",
                    ["TraceState", "TrAcEsTaTe", "TRACESTATE"]
                        .into_iter()
                        .map(|name| req(&[tp00(), (name, "foo=1")], vec![state("foo", "1")]))
                        .collect(),
                ),
                // "The empty tracestate is discarded": never sent as an empty header, which
                // every request's check below makes sure of.
                t(
                    "test_tracestate_empty_header",
                    vec![
                        req(&[tp00(), ("tracestate", "")], vec![TraceId(TRACE)]),
                        req(
                            &[tp00(), ("tracestate", "foo=1"), ("tracestate", "")],
                            vec![TraceId(TRACE), state("foo", "1")],
                        ),
                        req(
                            &[tp00(), ("tracestate", ""), ("tracestate", "foo=1")],
                            vec![TraceId(TRACE), state("foo", "1")],
                        ),
                    ],
                ),
                t(
                    "test_tracestate_multiple_headers_different_keys",
                    vec![req(
                        &[
                            tp00(),
                            ("tracestate", "foo=1,bar=2"),
                            ("tracestate", "rojo=1,congo=2"),
                            ("tracestate", "baz=3"),
                        ],
                        vec![TraceId(TRACE), StateInOrder(&["foo=1", "bar=2", "rojo=1", "congo=2", "baz=3"])],
                    )],
                ),
                strict(
                    "test_tracestate_duplicated_keys",
                    vec![
                        req(&[tp00(), ("tracestate", "foo=1,foo=1")], vec![TraceId(TRACE), StateInOrder(&["foo=1"])]),
                        req(
                            &[tp00(), ("tracestate", "foo=1,foo=2")],
                            vec![TraceId(TRACE), StateContainsAny(&["foo=1", "foo=2"])],
                        ),
                        req(
                            &[tp00(), ("tracestate", "foo=1"), ("tracestate", "foo=1")],
                            vec![TraceId(TRACE), StateInOrder(&["foo=1"])],
                        ),
                        req(
                            &[tp00(), ("tracestate", "foo=1"), ("tracestate", "foo=2")],
                            vec![TraceId(TRACE), StateContainsAny(&["foo=1", "foo=2"])],
                        ),
                    ],
                ),
                t(
                    "test_tracestate_all_allowed_characters",
                    vec![
                        req(
                            &[tp00(), ("tracestate", &format!("{key_without_vendor}={all_values}"))],
                            vec![state(key_without_vendor, &all_values)],
                        ),
                        req(
                            &[tp00(), ("tracestate", &format!("{key_with_vendor}={all_values}"))],
                            vec![state(&key_with_vendor, &all_values)],
                        ),
                    ],
                ),
                t(
                    "test_tracestate_ows_handling",
                    vec![
                        ows_three("foo=1 \t , \t bar=2, \t baz=3"),
                        ows_three("foo=1\t \t,\t \tbar=2,\t \tbaz=3"),
                        ows(" foo=1"),
                        ows("\tfoo=1"),
                        ows("foo=1 "),
                        ows("foo=1\t"),
                        ows("\t foo=1 \t"),
                    ],
                ),
                strict(
                    "test_tracestate_key_illegal_characters",
                    vec![
                        req(&[tp00(), ("tracestate", "foo =1")], vec![no_state("foo ")]),
                        req(&[tp00(), ("tracestate", "FOO=1")], vec![no_state("FOO")]),
                        req(&[tp00(), ("tracestate", "foo.bar=1")], vec![no_state("foo.bar")]),
                    ],
                ),
                strict(
                    "test_tracestate_key_illegal_vendor_format",
                    vec![
                        req(&[tp00(), ("tracestate", "foo@=1,bar=2")], vec![state("foo@", "1"), state("bar", "2")]),
                        req(&[tp00(), ("tracestate", "@foo=1,bar=2")], vec![no_state("bar")]),
                        req(
                            &[tp00(), ("tracestate", "foo@@bar=1,bar=2")],
                            vec![state("foo@@bar", "1"), state("bar", "2")],
                        ),
                        req(
                            &[tp00(), ("tracestate", "foo@bar@baz=1,bar=2")],
                            vec![state("foo@bar@baz", "1"), state("bar", "2")],
                        ),
                    ],
                ),
                strict(
                    "test_tracestate_member_count_limit",
                    vec![
                        Request {
                            headers: with_members("bar31=31,bar32=32"),
                            callbacks: 1,
                            expect: vec![state("bar01", "01"), StateLen(32)],
                        },
                        Request {
                            headers: with_members("bar31=31,bar32=32,bar33=33"),
                            callbacks: 1,
                            expect: vec![no_state("bar01")],
                        },
                    ],
                ),
                strict(
                    "test_tracestate_key_length_limit",
                    vec![
                        key_length(&z256),
                        req(
                            &[tp00(), ("tracestate", "foo=1"), ("tracestate", &format!("{}=1", "z".repeat(257)))],
                            vec![no_state("foo")],
                        ),
                        key_length(&tenant_241),
                        key_length(&tenant_242),
                        key_length(&system_15),
                    ],
                ),
                strict(
                    "test_tracestate_value_illegal_characters",
                    vec![
                        req(&[tp00(), ("tracestate", "foo=bar=baz")], vec![no_state("foo")]),
                        req(&[tp00(), ("tracestate", "foo=,bar=3")], vec![no_state("foo"), no_state("bar")]),
                    ],
                ),
                // ---- AdvancedTest (Level 1) ----
                t(
                    "test_multiple_requests_with_valid_traceparent",
                    vec![Request { callbacks: 3, ..req(&[tp01()], vec![TraceId(TRACE), DistinctParentIds]) }],
                ),
                t(
                    "test_multiple_requests_without_traceparent",
                    vec![Request { callbacks: 3, ..req(&[], vec![DistinctParentIds]) }],
                ),
                t(
                    "test_multiple_requests_with_illegal_traceparent",
                    vec![Request {
                        callbacks: 3,
                        ..req(
                            &[("traceparent", "00-00000000000000000000000000000000-1234567890123456-01")],
                            vec![NotTraceId(ZERO_TRACE), DistinctParentIds],
                        )
                    }],
                ),
                // ---- TraceContext2Test (Level 2) ----
                t(
                    "test_propagates_random_flag",
                    vec![req(
                        &[("traceparent", "00-12345678901234567890123456789012-1234567890123456-02")],
                        vec![TraceId(TRACE), NotParentId(PARENT), FlagSet(TraceParent::FLAG_RANDOM)],
                    )],
                ),
            ]
        }

        /// What one callback carried, as the harness reads it.
        struct Outgoing {
            traceparent: TraceParent,
            tracestate: Vec<(String, String)>,
            tracestate_header: String,
        }

        /// Plays the service: continue the trace from `headers`, then one exit span per
        /// callback, whose context is what an outgoing request carries (as `send_traced`
        /// injects it).
        fn serve(agent: &Agent, headers: &[(&'static str, String)], callbacks: usize) -> Vec<Outgoing> {
            let tx = agent.transaction("POST /test").with_type("request").continue_from(headers).start();
            let _active = tx.attach();
            (0..callbacks)
                .map(|_| {
                    let span = Span::builder("POST callback").with_type("external").subtype("http").start();
                    let ctx = span.context();
                    let header = ctx.traceparent().expect("a transaction is current").to_header();
                    let tracestate_header = ctx.tracestate().unwrap_or_default();
                    Outgoing {
                        traceparent: harness_traceparent(&header),
                        tracestate: harness_tracestate(&tracestate_header),
                        tracestate_header,
                    }
                })
                .collect()
        }

        /// The harness accepts only `00-<32 hex>-<16 hex>-<2 hex>`, lowercase.
        fn harness_traceparent(header: &str) -> TraceParent {
            let parts: Vec<&str> = header.split('-').collect();
            let lower_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| hex_digit(b, false).is_some());
            assert!(
                parts.len() == 4
                    && parts[0] == "00"
                    && lower_hex(parts[1], 32)
                    && lower_hex(parts[2], 16)
                    && lower_hex(parts[3], 2),
                "the harness would reject traceparent {header:?}"
            );
            let parsed = TraceParent::parse(header).unwrap();
            assert_ne!(parsed.trace_id, [0; 16]);
            assert_ne!(parsed.parent_id, [0; 8]);
            parsed
        }

        /// The harness splits on `,` with OWS around it and raises on any member that is not a
        /// Level 2 `key=value`: every member we send must survive our own parser unchanged.
        fn harness_tracestate(header: &str) -> Vec<(String, String)> {
            if header.is_empty() {
                return Vec::new();
            }
            let parsed = TraceState::parse([header]);
            assert_eq!(parsed.to_header().as_deref(), Some(header), "the harness would reject tracestate {header:?}");
            parsed.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        }

        fn check(test: &SuiteTest, index: usize, request: &Request, out: &[Outgoing]) {
            let level = if test.strict { " (STRICT_LEVEL=2)" } else { "" };
            let at = format!("{}{level}, request {index} {:?}", test.name, request.headers);
            assert_eq!(out.len(), request.callbacks, "{at}");
            for expect in &request.expect {
                if let DistinctParentIds = expect {
                    let traces: std::collections::HashSet<_> = out.iter().map(|o| o.traceparent.trace_id).collect();
                    let parents: std::collections::HashSet<_> = out.iter().map(|o| o.traceparent.parent_id).collect();
                    assert_eq!(traces.len(), 1, "{at}: one trace");
                    assert_eq!(parents.len(), out.len(), "{at}: a parent id per callback");
                    continue;
                }
                for o in out {
                    let (trace, parent) = (hex(&o.traceparent.trace_id), hex(&o.traceparent.parent_id));
                    let state = &o.tracestate_header;
                    let get = |key: &str| o.tracestate.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
                    match expect {
                        TraceId(id) => assert_eq!(trace, *id, "{at}"),
                        NotTraceId(id) => assert_ne!(trace, *id, "{at}"),
                        NotParentId(id) => assert_ne!(parent, *id, "{at}"),
                        FlagSet(bit) => {
                            assert_eq!(o.traceparent.flags & bit, *bit, "{at}: flags {:02x}", o.traceparent.flags)
                        }
                        State(key, value) => assert_eq!(get(key), Some(value.as_str()), "{at}: {key} in {state:?}"),
                        NoState(key) => assert_eq!(get(key), None, "{at}: {key} in {state:?}"),
                        StateLen(n) => assert_eq!(o.tracestate.len(), *n, "{at}: {state:?}"),
                        StateInOrder(parts) => {
                            let positions: Vec<Option<usize>> = parts.iter().map(|p| state.find(p)).collect();
                            assert!(positions.iter().all(Option::is_some), "{at}: {parts:?} in {state:?}");
                            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{at}: order of {parts:?} in {state:?}");
                        }
                        StateContainsAny(parts) => {
                            assert!(parts.iter().any(|p| state.contains(p)), "{at}: {parts:?} in {state:?}")
                        }
                        DistinctParentIds => unreachable!("checked across callbacks above"),
                    }
                }
            }
        }

        #[test]
        fn every_case_of_the_w3c_suite() {
            let agent = Agent::builder().sink(MemorySink::new()).build().unwrap();
            // Every row runs, so that one failure does not hide the others.
            let failed: Vec<&str> = suite()
                .iter()
                .filter(|test| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        for (index, request) in test.requests.iter().enumerate() {
                            let out = serve(&agent, &request.headers, request.callbacks);
                            check(test, index, request, &out);
                        }
                    }))
                    .is_err()
                })
                .map(|test| test.name)
                .collect();
            assert!(failed.is_empty(), "W3C suite cases failing: {failed:?}");
        }

        #[test]
        fn the_table_has_the_suites_41_tests_once_each() {
            let names: Vec<&str> = suite().iter().map(|t| t.name).collect();
            let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
            assert_eq!(names.len(), 41);
            assert_eq!(unique.len(), 41);
            assert!(names.iter().all(|n| n.starts_with("test_")));
            assert!(suite().iter().all(|t| !t.requests.is_empty()));
        }

        #[test]
        fn traces_we_start_carry_the_random_flag() {
            let agent = Agent::builder().sink(MemorySink::new()).build().unwrap();
            for headers in [vec![], vec![tp("garbage")], vec![tp(tp00().1), tp(tp00().1)]] {
                let out = serve(&agent, &headers, 1);
                assert!(out[0].traceparent.random(), "{headers:?}");
                assert!(out[0].traceparent.sampled(), "the default rate samples everything");
                assert_eq!(out[0].traceparent.flags, TraceParent::KNOWN_FLAGS);
            }
        }

        #[test]
        fn continued_traces_keep_exactly_the_flags_we_understand() {
            let agent = Agent::builder().sink(MemorySink::new()).build().unwrap();
            for (flags, sent) in
                [("00", 0x00), ("01", 0x01), ("02", 0x02), ("03", 0x03), ("ff", 0x03), ("fc", 0x00), ("05", 0x01)]
            {
                let header = format!("00-{TRACE}-{PARENT}-{flags}");
                let out = serve(&agent, &[tp(&header)], 2);
                for o in &out {
                    assert_eq!(hex(&o.traceparent.trace_id), TRACE);
                    assert_eq!(o.traceparent.flags, sent, "{flags}");
                }
            }
        }

        #[test]
        fn an_unsampled_trace_we_start_is_still_random() {
            let config = crate::Config::builder().transaction_sample_rate(0.0).build().unwrap();
            let agent = Agent::builder().config(config).sink(MemorySink::new()).build().unwrap();
            let out = serve(&agent, &[], 1);
            assert_eq!(out[0].traceparent.flags, TraceParent::FLAG_RANDOM);
        }
    }

    // ---- properties ----

    /// Valid header with one byte position replaced by an arbitrary char.
    fn mutated_header() -> impl Strategy<Value = String> {
        (0..VALID.len(), any::<char>(), any::<bool>()).prop_map(|(pos, ch, insert)| {
            let mut s = VALID[..pos].to_owned();
            s.push(ch);
            let skip = if insert { pos } else { pos + 1 };
            s.push_str(&VALID[skip.min(VALID.len())..]);
            s
        })
    }

    fn arbitrary_traceparent_input() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "\\PC*",
            "[0-9a-fA-F\\- \t]{0,70}",
            "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}.{0,5}",
            mutated_header(),
        ]
    }

    fn non_zero<const N: usize>() -> impl Strategy<Value = [u8; N]>
    where
        [u8; N]: proptest::arbitrary::Arbitrary,
    {
        any::<[u8; N]>().prop_filter("all-zero ids are invalid", |id| id.iter().any(|b| *b != 0))
    }

    fn tracestate_key() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z][a-z0-9_*/-]{0,20}", "[a-z0-9][a-z0-9_*/-]{0,10}@[a-z][a-z0-9_*/-]{0,13}",]
    }

    fn tracestate_value() -> impl Strategy<Value = String> {
        "[ !-+\\--<>-~]{0,30}[!-+\\--<>-~]"
    }

    proptest! {
        #[test]
        fn traceparent_parse_never_panics(input in arbitrary_traceparent_input()) {
            if let Ok(parsed) = TraceParent::parse(&input) {
                prop_assert_ne!(parsed.version, 0xff);
                prop_assert_ne!(parsed.trace_id, [0; 16]);
                prop_assert_ne!(parsed.parent_id, [0; 8]);
                let header = parsed.to_header();
                prop_assert_eq!(header.len(), 55);
                let reparsed = TraceParent::parse(&header).unwrap();
                prop_assert_eq!(reparsed.trace_id, parsed.trace_id);
                prop_assert_eq!(reparsed.parent_id, parsed.parent_id);
                prop_assert_eq!(reparsed.flags, parsed.flags);
            }
        }

        #[test]
        fn traceparent_round_trips(
            trace_id in non_zero::<16>(),
            parent_id in non_zero::<8>(),
            flags in any::<u8>(),
            ows in "[ \t]{0,3}",
        ) {
            let header = format!("00-{}-{}-{:02x}", hex(&trace_id), hex(&parent_id), flags);
            let parsed = TraceParent::parse(&format!("{ows}{header}{ows}")).unwrap();
            prop_assert_eq!(parsed, TraceParent { version: 0, trace_id, parent_id, flags });
            prop_assert_eq!(parsed.to_header(), header.clone());
            let mut buf = [0u8; 55];
            prop_assert_eq!(parsed.write_header(&mut buf), header.as_str());
            prop_assert_eq!(parsed.sampled(), flags & 1 == 1);
        }

        #[test]
        fn new_round_trips(trace_id in non_zero::<16>(), parent_id in non_zero::<8>(), sampled in any::<bool>()) {
            let created = TraceParent::new(trace_id, parent_id, sampled);
            prop_assert_eq!(TraceParent::parse(&created.to_header()), Ok(created));
        }

        #[test]
        fn future_versions_downgrade(
            version in 1u8..0xff,
            trace_id in non_zero::<16>(),
            parent_id in non_zero::<8>(),
            flags in any::<u8>(),
            tail in prop::option::of("-\\PC{0,20}"),
        ) {
            let header = format!(
                "{version:02x}-{}-{}-{flags:02x}{}",
                hex(&trace_id), hex(&parent_id), tail.unwrap_or_default()
            );
            let parsed = TraceParent::parse(&header).unwrap();
            prop_assert_eq!(parsed.version, version);
            prop_assert_eq!(parsed.to_header(), TraceParent { version: 0, ..parsed }.to_header());
            prop_assert!(parsed.to_header().starts_with("00-"));
        }

        #[test]
        fn tracestate_parse_never_panics(values in prop::collection::vec(
            prop_oneof![any::<String>(), "[a-zA-Z0-9@=,: \t_*/.;-]{0,80}"], 0..6)
        ) {
            let state = TraceState::parse(values.iter().map(String::as_str));
            prop_assert!(state.len() <= 32);
            let _ = state.elastic_sample_rate();
            if let Some(header) = state.to_header() {
                prop_assert_eq!(TraceState::parse([header.as_str()]), state);
            } else {
                prop_assert!(state.is_empty());
            }
        }

        #[test]
        fn generated_tracestate_round_trips(entries in prop::collection::vec((tracestate_key(), tracestate_value()), 1..32)) {
            let mut unique: Vec<(String, String)> = Vec::new();
            for (key, value) in entries {
                if !unique.iter().any(|(k, _)| *k == key) {
                    unique.push((key, value));
                }
            }
            let header = unique
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ,\t");
            let state = TraceState::parse([header.as_str()]);
            let parsed: Vec<(String, String)> =
                state.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            prop_assert_eq!(&parsed, &unique);
            let out = state.to_header().unwrap();
            prop_assert_eq!(TraceState::parse([out.as_str()]), state);
        }

        #[test]
        fn elastic_sample_rate_round_trips(rate in 0.0f64..=1.0) {
            let state = TraceState::default().with_elastic_sample_rate(rate);
            let header = state.to_header().unwrap();
            let reparsed = TraceState::parse([header.as_str()]);
            let got = reparsed.elastic_sample_rate().unwrap();
            prop_assert!((got - rate).abs() <= 0.0001, "{} -> {}", rate, got);
            prop_assert!(header.len() <= "es=s:0.0001".len());
        }
    }
}
