//! Elastic's `SANITIZE_FIELD_NAMES`: header and field names whose values are never recorded.

/// Elastic's default patterns: `*` matches any run of characters, matching ignores case.
const DEFAULT_PATTERNS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "*key",
    "*token*",
    "*session*",
    "*credit*",
    "*card*",
    "*auth*",
    "set-cookie",
    "*principal*",
];

/// The value recorded in place of a sanitized one.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Whether a field called `name` must have its value redacted.
pub(crate) fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    DEFAULT_PATTERNS.iter().any(|p| wildcard(p, &name))
}

/// Glob match with `*` only (patterns are lowercase ASCII).
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elastic_default_patterns() {
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
