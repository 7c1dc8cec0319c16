//! Propagation's cases, the W3C test suite's among them, as table tests.

use super::*;
use proptest::prelude::*;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
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
    for header in [format!("\n{VALID}"), format!("{VALID}\r\n"), format!("\u{a0}{VALID}"), format!("{VALID}\u{3000}")] {
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
    assert_eq!(tp(&format!("ff-{SUITE_TRACE}-1234567890123456-01-future")), Err(TraceContextError::ForbiddenVersion));
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
    assert_eq!(tp("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), Err(TraceContextError::InvalidVersion));
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
        extract(
            &[("traceparent", "00-00000000000000000000000000000000-1234567890123456-01"), ("tracestate", "foo=1"),]
        ),
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
                    restarts("00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like"),
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
                    restarts("cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like"),
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
                    &[tp00(), ("tracestate", "foo=1,bar=2"), ("tracestate", "rojo=1,congo=2"), ("tracestate", "baz=3")],
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
                    req(&[tp00(), ("tracestate", "foo@@bar=1,bar=2")], vec![state("foo@@bar", "1"), state("bar", "2")]),
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
