//! Outgoing HTTP with `reqwest`: each request made under a transaction becomes an exit span
//! (`type: external`, `subtype: http`) and carries the trace to the server in W3C
//! `traceparent`/`tracestate` headers.

use std::future::Future;
use std::pin::Pin;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::context::Context;
use crate::event::Outcome;
use crate::propagation::ELASTIC_TRACEPARENT_HEADER;
use crate::span::Span;

/// `send_traced()`: `send()` plus an exit span and trace-context headers. Implemented for
/// blocking and async request builders.
///
/// ```no_run
/// use apm_runtime::integrations::reqwest::SendTraced;
/// let client = reqwest::blocking::Client::new();
/// let response = client.get("http://localhost:3000/users").send_traced()?;
/// # Ok::<(), reqwest::Error>(())
/// ```
///
/// Async (the span covers the request from its first poll to the response headers):
///
/// ```no_run
/// use apm_runtime::integrations::reqwest::SendTraced;
/// # async fn f() -> Result<(), reqwest::Error> {
/// let client = reqwest::Client::new();
/// let response = client.get("http://localhost:3000/users").send_traced().await?;
/// # Ok(()) }
/// ```
pub trait SendTraced {
    /// What `send()` returns for this builder.
    type Output;

    /// Sends the request as an exit span of the current context.
    fn send_traced(self) -> Self::Output;
}

impl SendTraced for reqwest::blocking::RequestBuilder {
    type Output = reqwest::Result<reqwest::blocking::Response>;

    fn send_traced(self) -> Self::Output {
        let (client, request) = self.build_split();
        let mut request = request?;
        let mut span = start_exit_span(&Context::current(), request.method().as_str(), request.url());
        inject(&span, request.headers_mut());
        let method = request.method().clone();
        let url = request.url().clone();
        let result = client.execute(request);
        record(&mut span, method.as_str(), &url, result.as_ref().map(|r| (r.status().as_u16(), r.headers())));
        result
    }
}

impl SendTraced for reqwest::RequestBuilder {
    type Output = Pin<Box<dyn Future<Output = reqwest::Result<reqwest::Response>> + Send>>;

    fn send_traced(self) -> Self::Output {
        // Captured where the request is made, not where the future is first polled.
        let ctx = Context::current();
        Box::pin(async move {
            let (client, request) = self.build_split();
            let mut request = request?;
            let mut span = start_exit_span(&ctx, request.method().as_str(), request.url());
            inject(&span, request.headers_mut());
            let method = request.method().clone();
            let url = request.url().clone();
            let result = client.execute(request).await;
            record(&mut span, method.as_str(), &url, result.as_ref().map(|r| (r.status().as_u16(), r.headers())));
            result
        })
    }
}

fn start_exit_span(parent: &Context, method: &str, url: &reqwest::Url) -> Span {
    let host = url.host_str().unwrap_or("unknown");
    Span::builder(format!("{method} {host}"))
        .with_type("external")
        .subtype("http")
        .action(method.to_string())
        .child_of(parent)
        .start()
}

/// Writes the trace-context headers of `span` (or of its parent when it records nothing).
fn inject(span: &Span, headers: &mut HeaderMap) {
    let ctx = span.context();
    let Some(tp) = ctx.traceparent() else { return };
    let mut buf = [0u8; 55];
    let value = tp.write_header(&mut buf);
    if let Ok(v) = HeaderValue::from_str(value) {
        if ctx.active.as_ref().is_some_and(|a| a.tx.agent.config.use_elastic_traceparent_header) {
            headers.insert(HeaderName::from_static(ELASTIC_TRACEPARENT_HEADER), v.clone());
        }
        headers.insert(HeaderName::from_static("traceparent"), v);
    }
    if let Some(state) = ctx.tracestate().and_then(|s| HeaderValue::from_str(&s).ok()) {
        headers.insert(HeaderName::from_static("tracestate"), state);
    }
}

fn record(span: &mut Span, method: &str, url: &reqwest::Url, result: Result<(u16, &HeaderMap), &reqwest::Error>) {
    if !span.is_recording() {
        return;
    }
    let mut shown = url.clone();
    // Credentials in the URL are never recorded.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let host = url.host_str().unwrap_or("unknown");
    let status = result.as_ref().ok().map(|(s, _)| *s);
    span.set_http(method, shown.as_str(), status, host, url.port_or_known_default());
    if let Ok((_, headers)) = result {
        span.set_response_headers(headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("[binary]"))));
    }
    span.set_outcome(match status {
        Some(s) if s < 400 => Outcome::Success,
        _ => Outcome::Failure,
    });
}
