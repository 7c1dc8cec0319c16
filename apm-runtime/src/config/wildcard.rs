//! Elastic's wildcard matcher (`tests/agents/json-specs/wildcard_matcher_tests.json` in
//! elastic/apm): `*` matches any run of characters, matching ignores case unless the pattern
//! starts with `(?-i)`.

use std::fmt;

const CASE_SENSITIVE: &str = "(?-i)";

/// One pattern of `sanitize_field_names`, `transaction_ignore_urls` or `disable_metrics`.
///
/// ```
/// use apm_runtime::Wildcard;
/// assert!(Wildcard::new("*token*").matches("X-Auth-TOKEN"));
/// assert!(Wildcard::new("/health*").matches("/healthz"));
/// assert!(!Wildcard::new("(?-i)/Admin/*").matches("/admin/users"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Wildcard {
    source: String,
    case_sensitive: bool,
    /// The pattern split at each `*`, lowercased unless case-sensitive: `*a*b` is `["", "a", "b"]`.
    parts: Vec<String>,
}

impl Wildcard {
    /// Compiles `pattern` as written (surrounding whitespace is kept: the list parser trims).
    ///
    /// ```
    /// let w = apm_runtime::Wildcard::new("(?-i)*Session*");
    /// assert!(w.matches("JSessionID") && !w.matches("jsessionid"));
    /// ```
    pub fn new(pattern: &str) -> Wildcard {
        let (case_sensitive, body) = match pattern.strip_prefix(CASE_SENSITIVE) {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let fold = |s: &str| if case_sensitive { s.to_string() } else { s.to_lowercase() };
        Wildcard { source: pattern.to_string(), case_sensitive, parts: body.split('*').map(fold).collect() }
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// ```
    /// let w = apm_runtime::Wildcard::new("/foo/*/baz");
    /// assert!(w.matches("/foo/bar/baz"));
    /// assert!(!w.matches("/foo/bar"));
    /// ```
    pub fn matches(&self, text: &str) -> bool {
        let folded;
        // Header names and most paths are already lowercase ASCII: matched as they are, with
        // no allocation (the tower layer checks every header against every pattern).
        let text = if self.case_sensitive || (text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase())) {
            text
        } else {
            folded = text.to_lowercase();
            &folded
        };
        let Some((first, rest)) = self.parts.split_first() else { return text.is_empty() };
        let Some(last) = rest.last() else { return text == first };
        let middles = &rest[..rest.len() - 1];
        let text = text.as_bytes();
        if text.len() < first.len() + last.len()
            || text[..first.len()] != *first.as_bytes()
            || text[text.len() - last.len()..] != *last.as_bytes()
        {
            return false;
        }
        // Leftmost matching of each middle part is enough: taking any later occurrence could
        // only leave less room for the parts after it.
        let mut between = &text[first.len()..text.len() - last.len()];
        for middle in middles {
            match find(between, middle.as_bytes()) {
                Some(i) => between = &between[i + middle.len()..],
                None => return false,
            }
        }
        true
    }

    /// The pattern as written, `(?-i)` included.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Wildcard::new("(?-i)*Key").as_str(), "(?-i)*Key");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Where `needle` first occurs in `haystack`. A plain scan: the texts matched here (header and
/// field names, paths) are short, and `str::find` sets up a Two-Way searcher per call that cost
/// ~100 ns, ten times the scan — per pattern, per header, per request. On UTF-8 a byte match is
/// a character match (no character's encoding starts inside another's).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else { return Some(0) };
    (0..(haystack.len() + 1).saturating_sub(needle.len()))
        .find(|&i| haystack[i] == first && haystack[i + 1..i + needle.len()] == *rest)
}

impl fmt::Debug for Wildcard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, cases: &[(&str, bool)]) {
        let w = Wildcard::new(pattern);
        for (text, expected) in cases {
            assert_eq!(w.matches(text), *expected, "{pattern:?} on {text:?}");
        }
    }

    // The cases of Elastic's shared matcher tests, so this agent agrees with the others.
    #[test]
    fn elastic_matcher_cases() {
        check("foo*", &[("foo", true), ("foobar", true), ("bar", false), ("barfoo", false), ("rfoo", false)]);
        check("/foo/*/baz", &[("/foo/bar/baz", true), ("/foo/bar", false)]);
        check("*foo*foo*", &[("foofoo", true), ("foo/bar/foo", true), ("/foo/bar/foo/bar", true), ("foo", false)]);
        check("*foo*oo*", &[("foooo", true), ("foofoo", true), ("foo", false), ("fooo", false)]);
        check("*foo*bar*", &[("foobar", true), ("foo/bar/foo/baz", true), ("bar/foo", false), ("barfoo", false)]);
        check("*foo*foo*", &[("/foo/foo", true), ("foobar", false)]);
        check("/foo/*/baz*", &[("/foo/a/bar/b/baz", true)]);
        check("/foo/*/bar/*/baz", &[("/foo/a/bar/b/baz", true)]);
        check("**", &[("", true), ("foo", true)]);
        check("*foo", &[("foo", true), ("foobar", false), ("barfoo", true), ("foor", false), ("baz", false)]);
        check("foo", &[("foo", true), ("foobar", false), ("FOO", true)]);
        check("*foo*", &[("FOO", true), ("foOBar", true), ("BAR", false), ("baRFOo", true)]);
        check("(?-i)*foo*", &[("foo", true), ("FOO", false)]);
        check("", &[("", true), ("a", false)]);
        check("*", &[("", true), ("anything", true)]);
    }

    proptest::proptest! {
        #[test]
        fn the_scan_finds_what_str_find_finds(haystack in "[ab€]{0,12}", needle in "[ab€]{0,3}") {
            proptest::prop_assert_eq!(find(haystack.as_bytes(), needle.as_bytes()), haystack.find(&needle));
        }
    }

    #[test]
    fn keeps_the_pattern_as_written() {
        assert_eq!(format!("{:?}", Wildcard::new("(?-i)A*")), "\"(?-i)A*\"");
    }
}
