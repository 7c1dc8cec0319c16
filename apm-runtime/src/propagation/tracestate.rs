//! The `tracestate` header: vendor members in order, Level 2's key grammar, the limits, and
//! Elastic's own `es` entry (the sample rate).
use super::*;

pub(super) const MAX_MEMBERS: usize = 32;
pub(super) const MAX_KEY_LEN: usize = 256;
pub(super) const MAX_VALUE_LEN: usize = 256;

/// Key of Elastic's own tracestate entry.
pub(super) const ELASTIC_KEY: &str = "es";
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
pub(super) struct TraceStateParser {
    members: Vec<(String, String)>,
    /// Non-empty members seen, duplicates included.
    seen: usize,
    invalid: bool,
}

impl TraceStateParser {
    pub(super) fn push(&mut self, value: &str) {
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

    pub(super) fn finish(self) -> TraceState {
        if self.invalid {
            TraceState::default()
        } else {
            TraceState { members: self.members }
        }
    }
}

/// `keychar`: the characters allowed after a key's first one.
pub(super) fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// Level 2 key grammar (see the module docs for why not Level 1's):
///
/// ```text
/// key     = ( lcalpha / DIGIT ) 0*255( keychar )
/// keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
/// ```
pub(super) fn is_valid_key(key: &str) -> bool {
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
pub(super) fn is_valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VALUE_LEN
        && bytes.last() != Some(&b' ')
        && bytes.iter().all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

/// Formats a sample rate for the `es` entry as described on
/// [`TraceState::with_elastic_sample_rate`]. Works on integer ten-thousandths
/// so the output can never show float noise such as `0.30000000000000004`.
pub(super) fn format_sample_rate(rate: f64) -> String {
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
