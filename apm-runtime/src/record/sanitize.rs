//! Elastic's `SANITIZE_FIELD_NAMES`: header and field names whose values are never recorded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;

/// The value recorded in place of a sanitized one.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Whether a field called `name` must have its value redacted under `config`'s
/// `sanitize_field_names` (Elastic's list unless the application set its own).
pub(crate) fn is_sensitive(config: &Config, name: &str) -> bool {
    config.sanitize_field_names().iter().any(|w| w.matches(name))
}

/// `value`, or `[REDACTED]` when `name` is sensitive.
pub(crate) fn value<'v>(config: &Config, name: &str, value: &'v str) -> &'v str {
    if is_sensitive(config, name) {
        REDACTED
    } else {
        value
    }
}

/// Names remembered per thread (the reporter's, which renders every captured header): beyond
/// this many distinct names the memory is cleared, so that clients sending made-up header names
/// cannot grow it.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
const REMEMBERED: usize = 256;

/// The configuration the answers were given under (held, so that a new configuration is never
/// mistaken for it at the same address), and whether each name was sensitive.
type Decided = Option<(Arc<Config>, HashMap<Box<str>, bool>)>;

thread_local! {
    static DECIDED: RefCell<Decided> = const { RefCell::new(None) };
}

/// [`is_sensitive`], remembered per name: requests repeat the same few header names, and
/// matching one against Elastic's twelve patterns costs ten times the lookup.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn is_sensitive_remembered(config: &Arc<Config>, name: &str) -> bool {
    DECIDED
        .try_with(|decided| {
            let mut decided = decided.borrow_mut();
            if !decided.as_ref().is_some_and(|(current, _)| Arc::ptr_eq(current, config)) {
                *decided = Some((config.clone(), HashMap::new()));
            }
            let Some((_, names)) = decided.as_mut() else { unreachable!("set above") };
            if let Some(&sensitive) = names.get(name) {
                return sensitive;
            }
            if names.len() >= REMEMBERED {
                names.clear();
            }
            let sensitive = is_sensitive(config, name);
            names.insert(name.into(), sensitive);
            sensitive
        })
        .unwrap_or_else(|_| is_sensitive(config, name))
}

/// [`value`], with the decision remembered ([`is_sensitive_remembered`]).
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn value_remembered<'v>(config: &Arc<Config>, name: &str, value: &'v str) -> &'v str {
    if is_sensitive_remembered(config, name) {
        REDACTED
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elastic_default_patterns() {
        let config = Config::defaults();
        let is_sensitive = |name: &str| is_sensitive(&config, name);
        for sensitive in [
            "Password",
            "passwd",
            "PWD",
            "secret",
            "x-api-key",
            "apikey",
            "X-Auth-Token",
            "JSESSIONID",
            "session_id",
            "credit_card",
            "card-number",
            "Authorization",
            "WWW-Authenticate",
            "Set-Cookie",
            "x-principal-id",
        ] {
            assert!(is_sensitive(sensitive), "{sensitive}");
        }
        for fine in ["content-type", "content-length", "x-request-id", "keyboard", "date", "cookie-policy", "secrets"] {
            assert!(!is_sensitive(fine), "{fine}");
        }
    }
}

#[cfg(test)]
mod configured {
    use super::*;

    #[test]
    fn remembered_answers_follow_the_configuration() {
        let defaults = Arc::new(Config::defaults());
        let custom = Arc::new(Config::builder().sanitize_field_names(["*pin*"]).build().unwrap());
        for _ in 0..2 {
            assert!(is_sensitive_remembered(&defaults, "Authorization"));
            assert!(!is_sensitive_remembered(&defaults, "x-pin-code"));
            assert!(!is_sensitive_remembered(&custom, "Authorization"));
            assert!(is_sensitive_remembered(&custom, "x-pin-code"));
        }
        // Past the limit the memory starts over, and answers stay right.
        for i in 0..REMEMBERED + 10 {
            assert!(is_sensitive_remembered(&defaults, &format!("x-token-{i}")));
            assert!(!is_sensitive_remembered(&defaults, &format!("x-other-{i}")));
        }
        assert!(DECIDED.with(|d| d.borrow().as_ref().unwrap().1.len()) <= REMEMBERED);
    }

    #[test]
    fn the_configured_list_replaces_elastics() {
        let config = Config::builder().sanitize_field_names(["x-tenant", "(?-i)Cookie"]).build().unwrap();
        assert!(is_sensitive(&config, "X-Tenant"));
        assert!(is_sensitive(&config, "Cookie"));
        assert!(!is_sensitive(&config, "cookie"), "(?-i) makes the pattern case-sensitive");
        assert!(!is_sensitive(&config, "authorization"), "the default list no longer applies");
        assert_eq!(value(&config, "x-tenant", "acme"), REDACTED);
        assert_eq!(value(&config, "accept", "*/*"), "*/*");
    }
}
