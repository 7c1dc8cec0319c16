//! Elastic's `SANITIZE_FIELD_NAMES`: header and field names whose values are never recorded.

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
