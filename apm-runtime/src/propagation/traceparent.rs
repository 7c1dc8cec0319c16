//! The `traceparent` header: parsing every version the spec allows, the flags kept and
//! interpreted, and writing it back.
use std::fmt;
use std::str::FromStr;

use super::*;

/// Length of a version `00` traceparent, and the minimum length of any version.
pub(super) const TRACEPARENT_LEN: usize = 55;
/// Byte offsets of the `-` delimiters inside a traceparent.
pub(super) const TRACE_ID_DELIM: usize = 2;
pub(super) const PARENT_ID_DELIM: usize = 35;
pub(super) const FLAGS_DELIM: usize = 52;
/// Version `ff` is reserved as invalid so that a version byte can never be
/// confused with an all-ones sentinel.
pub(super) const FORBIDDEN_VERSION: u8 = 0xff;
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

pub(super) fn hex_digit(b: u8, allow_upper: bool) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if allow_upper => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(super) fn decode_hex<const N: usize>(src: &[u8], allow_upper: bool) -> Option<[u8; N]> {
    if src.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        *byte = (hex_digit(pair[0], allow_upper)? << 4) | hex_digit(pair[1], allow_upper)?;
    }
    Some(out)
}

pub(super) fn encode_hex(src: &[u8], dst: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in src.iter().zip(dst.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}
