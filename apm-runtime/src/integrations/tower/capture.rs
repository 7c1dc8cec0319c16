//! What the layer keeps of a request raw on the handler's thread and turns into the event's
//! strings only on the reporter thread: the headers (a `HeaderMap` clone, refcounted values) and,
//! under `CAPTURE_BODY`, the first bytes of the request body as the handler reads them.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Buf;

use crate::config::{CaptureBody, Config};
use crate::model::event::{BodyFor, RawBody, RawHeaders};
use crate::record::sanitize;

/// Elastic's `long_field_max_length` default: the most of a body an event carries.
const BODY_LIMIT: usize = 10_000;

/// The headers, copied as received with the configuration in force for the request; `None`
/// when `CAPTURE_HEADERS` is off.
pub(super) fn headers(map: &http::HeaderMap, config: &Arc<Config>) -> Option<Headers> {
    if !config.capture_headers() {
        return None;
    }
    let mut text = String::with_capacity(map.iter().map(|(n, v)| n.as_str().len() + v.len() + 2).sum());
    for (name, value) in map {
        text.push_str(name.as_str());
        text.push('\n');
        text.push_str(&String::from_utf8_lossy(value.as_bytes()));
        text.push('\n');
    }
    Some(Headers { text, config: config.clone() })
}

/// Headers copied on the handler's thread into one string, and sanitized on the reporter
/// thread. A copy rather than a `HeaderMap` clone: the clone's values would share the server's
/// read buffer, which hyper then cannot reuse for the connection's next request while the
/// event waits for the reporter; the copy is one allocation of the headers' size.
#[derive(Debug)]
pub(super) struct Headers {
    /// Each name and value followed by a `\n`, which neither can contain (the `http` crate
    /// refuses control characters in both).
    text: String,
    config: Arc<Config>,
}

impl Headers {
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.text.split_terminator('\n');
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }
}

impl RawHeaders for Headers {
    /// Sensitive values `[REDACTED]`; the `Cookie` header is redacted whole: its cookies are
    /// recorded one by one in `cookies`, where each name is sanitized on its own.
    fn headers(&self) -> Vec<(&str, &str)> {
        self.iter()
            .map(|(name, value)| {
                let value = if name == "cookie" {
                    sanitize::REDACTED
                } else {
                    sanitize::value_remembered(&self.config, name, value)
                };
                (name, value)
            })
            .collect()
    }

    fn cookies(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for (_, value) in self.iter().filter(|(name, _)| *name == "cookie") {
            for pair in value.split(';') {
                let Some((name, value)) = pair.split_once('=') else { continue };
                let name = name.trim();
                out.push((name, sanitize::value(&self.config, name, value.trim())));
            }
        }
        out
    }
}

/// The body being captured for one request, shared by the body wrapper (which appends) and the
/// event (which renders it once the transaction is sent).
#[derive(Debug)]
pub(super) struct Body {
    bytes: Mutex<Vec<u8>>,
    form: bool,
    /// `CAPTURE_BODY` as the request came: which events get the body.
    mode: CaptureBody,
    config: Arc<Config>,
}

/// A capture for this request when `CAPTURE_BODY` asks for transaction bodies and its content
/// type is text Kibana can show (Elastic's `capture_body_content_types` default: forms,
/// `text/*`, JSON, XML); binary bodies (gRPC, uploads) are never kept.
pub(super) fn body<B>(req: &http::Request<B>, config: &Arc<Config>) -> Option<Arc<Body>> {
    let mode = config.capture_body();
    if mode == CaptureBody::Off {
        return None;
    }
    let content_type = req.headers().get(http::header::CONTENT_TYPE)?.to_str().ok()?.to_ascii_lowercase();
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let text = form
        || content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/xml")
        || content_type.contains("+json")
        || content_type.contains("+xml");
    text.then(|| Arc::new(Body { bytes: Mutex::new(Vec::new()), form, mode, config: config.clone() }))
}

impl Body {
    fn append(&self, data: &impl Buf) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        let mut slices = [IoSlice::new(&[]); 16];
        let n = data.chunks_vectored(&mut slices);
        for slice in &slices[..n] {
            let room = BODY_LIMIT - bytes.len();
            if room == 0 {
                return;
            }
            bytes.extend_from_slice(&slice[..slice.len().min(room)]);
        }
    }
}

impl RawBody for Body {
    /// A form as an object of its fields, each value sanitized by its name (repeated fields as
    /// arrays); any other text as a string. `errors`: on error events, and on the transaction
    /// when it failed (Kibana shows a failed request's body beside its waterfall);
    /// `transactions`: on transactions only; `all`: on both.
    fn render(&self, event: BodyFor) -> Option<serde_json::Value> {
        let send = match (self.mode, event) {
            (CaptureBody::All, _) => true,
            (CaptureBody::Errors, BodyFor::Error) | (CaptureBody::Transactions, BodyFor::Transaction { .. }) => true,
            (CaptureBody::Errors, BodyFor::Transaction { failed }) => failed,
            (CaptureBody::Transactions, BodyFor::Error) | (CaptureBody::Off, _) => false,
        };
        if !send {
            return None;
        }
        let bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        if !self.form {
            return Some(serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        }
        let mut fields = serde_json::Map::new();
        for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = form_decode(name);
            let value = sanitize::value(&self.config, &name, &form_decode(value)).to_string();
            match fields.get_mut(&name) {
                Some(serde_json::Value::Array(values)) => values.push(value.into()),
                Some(first) => *first = serde_json::Value::Array(vec![first.take(), value.into()]),
                None => {
                    fields.insert(name, value.into());
                }
            }
        }
        Some(serde_json::Value::Object(fields))
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < text.len() => {
                match std::str::from_utf8(&text[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pin_project_lite::pin_project! {
    /// The request body an [`ApmService`](super::ApmService) hands to the service it wraps: the
    /// body as received, read through unchanged. Under `ELASTIC_APM_CAPTURE_BODY` it keeps a copy
    /// of the first 10 000 bytes the handler reads, for the transaction's
    /// `context.request.body`. axum's routes and tonic's server accept it as they accept any
    /// body; a hyper service function under the layer takes `Request<ApmRequestBody<Incoming>>`.
    ///
    /// ```
    /// use apm_runtime::integrations::tower::ApmRequestBody;
    /// fn is_body<B: http_body::Body>() {}
    /// is_body::<ApmRequestBody<String>>();
    /// ```
    pub struct ApmRequestBody<B> {
        #[pin]
        inner: B,
        capture: Option<Arc<Body>>,
    }
}

impl<B> ApmRequestBody<B> {
    pub(super) fn new(inner: B, capture: Option<Arc<Body>>) -> Self {
        ApmRequestBody { inner, capture }
    }

    /// The body as received.
    ///
    /// ```
    /// # fn f(body: apm_runtime::integrations::tower::ApmRequestBody<String>) {
    /// let original: String = body.into_inner();
    /// # }
    /// ```
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> std::fmt::Debug for ApmRequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApmRequestBody").field("captured", &self.capture.is_some()).finish_non_exhaustive()
    }
}

impl<B: http_body::Body> http_body::Body for ApmRequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let (Some(capture), Poll::Ready(Some(Ok(frame)))) = (this.capture.as_ref(), &polled) {
            if let Some(data) = frame.data_ref() {
                capture.append(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_copied_in_order_and_sanitized_when_read() {
        let mut map = http::HeaderMap::new();
        map.insert("x-request-id", "r-1".parse().unwrap());
        map.append("accept", "a/b".parse().unwrap());
        map.append("accept", "".parse().unwrap());
        map.insert("authorization", "Bearer x".parse().unwrap());
        map.insert("cookie", "theme=dark; session_id=s".parse().unwrap());
        map.insert("x-bytes", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let headers = headers(&map, &Arc::new(Config::defaults())).unwrap();
        assert_eq!(
            headers.headers(),
            [
                ("x-request-id", "r-1"),
                ("accept", "a/b"),
                ("accept", ""),
                ("authorization", "[REDACTED]"),
                ("cookie", "[REDACTED]"),
                ("x-bytes", "caf\u{fffd}"),
            ]
        );
        assert_eq!(headers.cookies(), [("theme", "dark"), ("session_id", "[REDACTED]")]);
        let off = Config::builder().capture_headers(false).build().unwrap();
        assert!(super::headers(&map, &Arc::new(off)).is_none());
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(form_decode(b"a+b%20c%2"), "a b c%2");
        assert_eq!(form_decode(b"%e2%82%ac%zz"), "€%zz");
        assert_eq!(form_decode(b"%"), "%");
    }
}
