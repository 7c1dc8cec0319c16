//! Elastic's value formats (`specs/agents/configuration.md`, "Configuration Value Types"): each
//! parser turns the text of one variable into a value or says, in words a user can act on, what
//! was expected. Each `show_*` function writes a value set in code back in the same format, so
//! messages and `Debug` read the same whichever way a value came in.

use std::path::PathBuf;
use std::time::Duration;

use super::wildcard::Wildcard;

/// `true`/`false`, any case: anything else (`yes`, `1`) is refused rather than guessed, because a
/// guess could switch the agent off.
pub(crate) fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

pub(crate) fn unsigned<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| "expected a non-negative whole number".into())
}

pub(crate) fn signed(text: &str) -> Result<i32, String> {
    text.parse().map_err(|_| "expected a whole number".into())
}

pub(crate) fn float(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("expected a number".into()),
    }
}

pub(crate) fn text(text: &str) -> Result<String, String> {
    Ok(text.to_string())
}

pub(crate) fn some_text(text: &str) -> Result<Option<String>, String> {
    Ok(Some(text.to_string()))
}

pub(crate) fn path(text: &str) -> Result<Option<PathBuf>, String> {
    Ok(Some(PathBuf::from(text)))
}

/// A number of `unit`s, split off the front: `("10", "ms")`. Elastic's formats allow whole numbers
/// only, so `1.5s` is refused rather than rounded.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    Some((digits.parse().ok()?, unit))
}

/// Elastic's `Duration` (`^(-)?(\d+)(ms|s|m)$`, case-sensitive) or, when `granular`, its
/// `GranularDuration` (also `us`). Returns whether the value was negative, for the one option
/// where that means "never".
///
/// A bare number is refused (except `0`, the same in every unit): Elastic's agents disagree on
/// what `10` means (seconds in one, milliseconds in another), and the spec asks new options to
/// require the unit.
fn signed_duration(text: &str, granular: bool) -> Result<(bool, Duration), String> {
    let units = if granular { "us, ms, s or m" } else { "ms, s or m" };
    let err = || format!("expected a whole number with a unit ({units}), like 500ms or 10s");
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (n, unit) = number_and_unit(magnitude).ok_or_else(err)?;
    let duration = match unit {
        "" if n == 0 => Duration::ZERO,
        "" => return Err(format!("{} (a bare number is ambiguous)", err())),
        "us" if granular => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        _ => return Err(err()),
    };
    Ok((negative && !duration.is_zero(), duration))
}

/// A duration that cannot be negative.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    non_negative(signed_duration(text, false)?)
}

/// A duration down to microseconds (`us`), that cannot be negative.
pub(crate) fn granular_duration(text: &str) -> Result<Duration, String> {
    non_negative(signed_duration(text, true)?)
}

fn non_negative((negative, d): (bool, Duration)) -> Result<Duration, String> {
    if negative {
        Err("must not be negative".into())
    } else {
        Ok(d)
    }
}

/// A duration where a negative value means "never" (`None`).
pub(crate) fn duration_or_never(text: &str) -> Result<Option<Duration>, String> {
    let (negative, d) = signed_duration(text, false)?;
    Ok((!negative).then_some(d))
}

/// Elastic's `Size` (`^(\d+)(b|kb|mb|gb)$`, any case, binary multiples).
pub(crate) fn size(text: &str) -> Result<u64, String> {
    let err = || "expected a size like 768kb (units b, kb, mb, gb)".to_string();
    let lower = text.to_ascii_lowercase();
    let (n, unit) = number_and_unit(&lower).ok_or_else(err)?;
    let multiplier: u64 = match unit {
        "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        _ => return Err(err()),
    };
    n.checked_mul(multiplier).ok_or_else(err)
}

/// Elastic's `List`: comma-separated, each item trimmed, empty items dropped (a trailing comma is
/// a typo, not a wish for an empty entry).
pub(crate) fn list(text: &str) -> Result<Vec<String>, String> {
    Ok(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
}

/// Elastic's `Mapping`: `key=value` pairs, comma-separated and trimmed. A pair without `=` or with
/// an empty key is refused whole: dropping it silently would lose a label the user asked for.
pub(crate) fn mapping(text: &str) -> Result<Vec<(String, String)>, String> {
    list(text)?
        .into_iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!("expected key=value pairs separated by commas, got {pair:?}")),
        })
        .collect()
}

/// A list of Elastic wildcard patterns (`*` matches anything, `(?-i)` makes one case-sensitive).
pub(crate) fn wildcards(text: &str) -> Result<Vec<Wildcard>, String> {
    Ok(list(text)?.iter().map(|p| Wildcard::new(p)).collect())
}

/// The shortest of Elastic's spellings that says `d` exactly: `500ms`, `10s`, `2m`; below a
/// millisecond `us`, and `ns` only for what no Elastic unit can say.
pub(crate) fn show_duration(d: &Duration) -> String {
    let nanos = d.as_nanos();
    let units: [(u128, &str); 4] = [(60_000_000_000, "m"), (1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")];
    if nanos == 0 {
        return "0ms".into();
    }
    match units.iter().find(|(per, _)| nanos.is_multiple_of(*per)) {
        Some((per, unit)) => format!("{}{unit}", nanos / per),
        None => format!("{nanos}ns"),
    }
}

pub(crate) fn show_duration_or_never(d: &Option<Duration>) -> String {
    d.as_ref().map_or_else(|| "-1ms".into(), show_duration)
}

/// The largest unit that says `bytes` exactly: `768kb`, `1mb`, `100b`.
pub(crate) fn show_size(bytes: &u64) -> String {
    let units: [(u64, &str); 3] = [(1 << 30, "gb"), (1 << 20, "mb"), (1 << 10, "kb")];
    match units.iter().find(|(per, _)| *bytes != 0 && bytes.is_multiple_of(*per)) {
        Some((per, unit)) => format!("{}{unit}", bytes / per),
        None => format!("{bytes}b"),
    }
}

pub(crate) fn show<T: ToString>(value: &T) -> String {
    value.to_string()
}

pub(crate) fn show_text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

pub(crate) fn show_path(value: &Option<PathBuf>) -> String {
    value.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

pub(crate) fn show_mapping(value: &[(String, String)]) -> String {
    value.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

pub(crate) fn show_wildcards(value: &[Wildcard]) -> String {
    value.iter().map(Wildcard::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_elastic_units_and_refuse_the_rest() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("0s"), Ok(Duration::ZERO));
        assert_eq!(duration("-0ms"), Ok(Duration::ZERO));
        for bad in ["10", "1.5s", "10S", "10 s", "s", "", "10h", "5us", "-5s", "99999999999999999999s"] {
            assert!(duration(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(duration("10").unwrap_err().contains("ambiguous"));
        assert_eq!(duration("-5s").unwrap_err(), "must not be negative");
    }

    #[test]
    fn granular_durations_also_take_microseconds() {
        assert_eq!(granular_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(granular_duration("1ms"), Ok(Duration::from_millis(1)));
        assert!(granular_duration("1ns").is_err());
    }

    #[test]
    fn a_negative_duration_can_mean_never() {
        assert_eq!(duration_or_never("-1ms"), Ok(None));
        assert_eq!(duration_or_never("0ms"), Ok(Some(Duration::ZERO)));
        assert_eq!(duration_or_never("5ms"), Ok(Some(Duration::from_millis(5))));
    }

    #[test]
    fn sizes_take_binary_units_in_any_case() {
        assert_eq!(size("768kb"), Ok(768 * 1024));
        assert_eq!(size("1MB"), Ok(1 << 20));
        assert_eq!(size("2Gb"), Ok(2 << 30));
        assert_eq!(size("100b"), Ok(100));
        for bad in ["100", "12parsecs", "-5kb", "1.5mb", "kb", "99999999999999999999gb"] {
            assert!(size(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn values_show_as_elastic_writes_them() {
        assert_eq!(show_duration(&Duration::ZERO), "0ms");
        assert_eq!(show_duration(&Duration::from_millis(500)), "500ms");
        assert_eq!(show_duration(&Duration::from_secs(10)), "10s");
        assert_eq!(show_duration(&Duration::from_secs(120)), "2m");
        assert_eq!(show_duration(&Duration::from_micros(1500)), "1500us");
        assert_eq!(show_duration(&Duration::from_nanos(7)), "7ns");
        assert_eq!(show_duration_or_never(&None), "-1ms");
        assert_eq!(show_size(&(768 * 1024)), "768kb");
        assert_eq!(show_size(&(1 << 20)), "1mb");
        assert_eq!(show_size(&1000), "1000b");
        assert_eq!(show_size(&0), "0b");
        for text in ["0ms", "500ms", "10s", "2m"] {
            assert_eq!(show_duration(&duration(text).unwrap()), text);
        }
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("False"), Ok(false));
        for bad in ["yes", "1", "on", ""] {
            assert!(boolean(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_and_mappings_are_trimmed() {
        assert_eq!(list(" a, b ,,c ,"), Ok(vec!["a".to_string(), "b".into(), "c".into()]));
        assert_eq!(
            mapping("team = core, tier=1,empty="),
            Ok(vec![("team".into(), "core".into()), ("tier".into(), "1".into()), ("empty".into(), String::new())])
        );
        assert!(mapping("team").unwrap_err().contains("\"team\""));
        assert!(mapping("=x").is_err());
        assert_eq!(show_mapping(&mapping("a=1, b=2").unwrap()), "a=1,b=2");
    }

    #[test]
    fn numbers() {
        assert_eq!(unsigned::<u32>("7"), Ok(7));
        assert!(unsigned::<u32>("-1").is_err());
        assert_eq!(signed("-1"), Ok(-1));
        assert_eq!(float("0.25"), Ok(0.25));
        assert!(float("NaN").is_err() && float("inf").is_err() && float("half").is_err());
    }
}
