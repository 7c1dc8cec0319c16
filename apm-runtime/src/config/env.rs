//! What [`Config::from_env`] says besides bad values: a variable that names no option (most often
//! a typo, which would otherwise leave the option at its default without a word), and options
//! that were set but that this version reads without acting on yet.

use super::{Config, ConfigSource, OPTIONS};

const PREFIX: &str = "ELASTIC_APM_";

/// The lines to log for a configuration read from variables named `names`.
pub(crate) fn notes(config: &Config, names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(PREFIX) && !OPTIONS.iter().any(|o| o.env == n))
        .map(|name| match closest(&name) {
            Some(known) => format!("{name} is not an option of this agent (did you mean {known}?); ignoring it"),
            None => format!("{name} is not an option of this agent; ignoring it"),
        })
        .collect();
    // The environment's order is arbitrary; sorted lines read the same on every start.
    unknown.sort();
    let pending: Vec<String> = config
        .options()
        .filter(|o| o.source() == ConfigSource::Environment)
        .filter_map(|o| o.pending().map(|p| format!("{} (used once {p})", o.variable())))
        .collect();
    if !pending.is_empty() {
        unknown.push(format!("read but not used by this version yet: {}", pending.join(", ")));
    }
    unknown
}

/// The option variable within two edits of `name`, if exactly one is that close.
fn closest(name: &str) -> Option<&'static str> {
    let mut near = OPTIONS.iter().map(|o| o.env).filter(|env| edit_distance(env, name) <= 2);
    let first = near.next()?;
    near.next().is_none().then_some(first)
}

/// Levenshtein distance over bytes (the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_named_with_the_option_meant() {
        let (config, _) =
            Config::from_lookup(|n| (n == "ELASTIC_APM_SPAN_COMPRESSION_ENABLED").then(|| "false".into()));
        let names = [
            "ELASTIC_APM_SERVCE_NAME",
            "ELASTIC_APM_SERVICE_NAME",
            "ELASTIC_APM_FROBNICATE",
            "PATH",
            "ELASTIC_APM_SPAN_COMPRESSION_ENABLED",
        ];
        assert_eq!(
            notes(&config, names.map(String::from)),
            [
                "ELASTIC_APM_FROBNICATE is not an option of this agent; ignoring it",
                "ELASTIC_APM_SERVCE_NAME is not an option of this agent (did you mean ELASTIC_APM_SERVICE_NAME?); \
                 ignoring it",
            ]
        );
        assert!(notes(&Config::defaults(), ["ELASTIC_APM_ENABLED".to_string()]).is_empty());
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(closest("ELASTIC_APM_API_REQUEST_SIZ"), Some("ELASTIC_APM_API_REQUEST_SIZE"));
        // One edit from both SIZE and TIME: no guess rather than a wrong one.
        assert_eq!(closest("ELASTIC_APM_API_REQUEST_TIZE"), None);
    }
}
