//! Where incoming headers are read from: slices, arrays, `Vec`s and maps of pairs, a lookup
//! closure, and `http::HeaderMap` (feature `http`).
use std::collections::HashMap;
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
        // The names every incoming request is asked for, as `HeaderName`s made once: looking up
        // by `&str` validates and classifies the name again on each request.
        static TRACEPARENT: http::HeaderName = http::HeaderName::from_static(super::TRACEPARENT_HEADER);
        static TRACESTATE: http::HeaderName = http::HeaderName::from_static(super::TRACESTATE_HEADER);
        static ELASTIC: http::HeaderName = http::HeaderName::from_static(super::ELASTIC_TRACEPARENT_HEADER);
        let values = match name {
            super::TRACEPARENT_HEADER => self.get_all(&TRACEPARENT),
            super::TRACESTATE_HEADER => self.get_all(&TRACESTATE),
            super::ELASTIC_TRACEPARENT_HEADER => self.get_all(&ELASTIC),
            other => self.get_all(other),
        };
        for value in values {
            f(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
}
