//! Outgoing HTTP with `reqwest`: each request made under a transaction becomes an exit span
//! (`type: external`, `subtype: http`) and carries the trace to the server in W3C
//! `traceparent`/`tracestate` headers.
//!
//! reqwest 0.13 is supported with the feature `reqwest`, reqwest 0.12 with `reqwest012`; both
//! may be on at once. Neither turns on a TLS feature of reqwest: the application's choice stays
//! what it wrote. With neither, the traits are still here (so the compile error names the
//! features) but implemented for nothing.
#![cfg_attr(not(any(feature = "reqwest", feature = "reqwest012")), allow(dead_code, unused_imports, unused_macros))]

use std::future::Future;
use std::pin::Pin;

use crate::model::event::Outcome;
use crate::propagation::ELASTIC_TRACEPARENT_HEADER;
use crate::record::context::Context;
use crate::record::span::Span;

/// `send_traced()`: `send()` plus an exit span and trace-context headers. Implemented for
/// blocking and async request builders of reqwest 0.13 (feature `reqwest`) and 0.12 (feature
/// `reqwest012`).
///
/// ```no_run
/// # #[cfg(feature = "reqwest")] {
/// use apm_runtime::integrations::reqwest::SendTraced;
/// let client = reqwest::blocking::Client::new();
/// let response = client.get("http://localhost:3000/users").send_traced()?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Async (the span covers the request from its first poll to the response headers):
///
/// ```no_run
/// # #[cfg(feature = "reqwest")]
/// # async fn f() -> Result<(), reqwest::Error> {
/// use apm_runtime::integrations::reqwest::SendTraced;
/// let client = reqwest::Client::new();
/// let response = client.get("http://localhost:3000/users").send_traced().await?;
/// # Ok(()) }
/// ```
pub trait SendTraced: Sized {
    /// Sends the request as an exit span of the current context.
    fn send_traced(self) -> <Self as TracedRequest>::Output
    where
        Self: TracedRequest,
    {
        self.send_traced_request()
    }
}

/// Every type has the method, so that calling it on a request builder of a reqwest version this
/// build does not support fails on [`TracedRequest`]'s bound, whose error names the feature to
/// enable (a missing method would only say "no method named `send_traced`").
impl<T> SendTraced for T {}

/// A request builder that [`SendTraced::send_traced`] can send: reqwest 0.13's (feature
/// `reqwest`) and reqwest 0.12's (feature `reqwest012`), blocking and async.
///
/// ```
/// # #[cfg(feature = "reqwest")] {
/// fn traced<R: apm_runtime::integrations::reqwest::TracedRequest>(_: R) {}
/// traced(reqwest::blocking::Client::new().get("http://localhost:3000/"));
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`send_traced` is not available for `{Self}`",
    label = "not a reqwest request builder of a version apm-runtime was built for",
    note = "apm-runtime supports reqwest 0.13 with its feature `reqwest` and reqwest 0.12 with its feature `reqwest012`: enable the one matching the reqwest in your Cargo.toml, e.g. `apm-runtime = {{ version = \"0.1\", features = [\"reqwest012\"] }}`"
)]
pub trait TracedRequest {
    /// What `send()` returns for this builder.
    type Output;

    /// What [`SendTraced::send_traced`] calls.
    fn send_traced_request(self) -> Self::Output;
}

/// A [`Target`] from either reqwest version's `Url` (both are `url` 2's, under two paths).
macro_rules! target {
    ($url:expr) => {{
        let url = $url;
        let mut shown = url.clone();
        // Credentials in the URL are never recorded.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        Target {
            host: url.host_str().unwrap_or("unknown").to_string(),
            port: url.port_or_known_default(),
            shown: shown.to_string(),
        }
    }};
}

/// Writes `span`'s trace-context headers into a `$reqwest` request.
macro_rules! inject_into {
    ($reqwest:ident, $span:ident, $request:ident) => {
        inject(&$span, |name, value| {
            if let Ok(v) = $reqwest::header::HeaderValue::from_str(value) {
                $request.headers_mut().insert(name, v);
            }
        })
    };
}

/// Records a request's outcome (status and response headers, or the failure) on `span`.
macro_rules! record_result {
    ($span:ident, $method:ident, $target:ident, $result:ident) => {
        record(
            &mut $span,
            $method.as_str(),
            &$target,
            $result.as_ref().ok().map(|r| r.status().as_u16()),
            $result.iter().flat_map(|r| r.headers()).map(|(k, v)| (k.as_str(), v.to_str().unwrap_or("[binary]"))),
        )
    };
}

/// The same code for each supported reqwest version, whose types are distinct.
macro_rules! send_traced_for {
    ($reqwest:ident) => {
        impl TracedRequest for $reqwest::blocking::RequestBuilder {
            type Output = $reqwest::Result<$reqwest::blocking::Response>;

            fn send_traced_request(self) -> Self::Output {
                let (client, request) = self.build_split();
                let mut request = request?;
                let target = target!(request.url());
                let mut span = start_exit_span(&Context::current(), request.method().as_str(), &target);
                inject_into!($reqwest, span, request);
                let method = request.method().clone();
                let result = client.execute(request);
                record_result!(span, method, target, result);
                result
            }
        }

        impl TracedRequest for $reqwest::RequestBuilder {
            type Output = Pin<Box<dyn Future<Output = $reqwest::Result<$reqwest::Response>> + Send>>;

            fn send_traced_request(self) -> Self::Output {
                // Captured where the request is made, not where the future is first polled.
                let ctx = Context::current();
                Box::pin(async move {
                    let (client, request) = self.build_split();
                    let mut request = request?;
                    let target = target!(request.url());
                    let mut span = start_exit_span(&ctx, request.method().as_str(), &target);
                    inject_into!($reqwest, span, request);
                    let method = request.method().clone();
                    let result = client.execute(request).await;
                    record_result!(span, method, target, result);
                    result
                })
            }
        }
    };
}

#[cfg(feature = "reqwest")]
send_traced_for!(reqwest);
#[cfg(feature = "reqwest012")]
send_traced_for!(reqwest012);

/// Where a request goes, taken from either reqwest version's `Url`.
struct Target {
    host: String,
    port: Option<u16>,
    /// The URL as recorded: without credentials.
    shown: String,
}

fn start_exit_span(parent: &Context, method: &str, target: &Target) -> Span {
    if parent.is_empty() {
        crate::record::recorder::check_agent("an outgoing request (send_traced)");
    }
    Span::builder(format!("{method} {}", target.host))
        .with_type("external")
        .subtype("http")
        .action(method.to_string())
        .child_of(parent)
        .start()
}

/// Writes the trace-context headers of `span` (or of its parent when it records nothing).
fn inject(span: &Span, mut insert: impl FnMut(&'static str, &str)) {
    let ctx = span.context();
    let Some(tp) = ctx.traceparent() else { return };
    let mut buf = [0u8; 55];
    let value = tp.write_header(&mut buf);
    if ctx.active.as_ref().is_some_and(|a| a.tx.agent.config.use_elastic_traceparent_header) {
        insert(ELASTIC_TRACEPARENT_HEADER, value);
    }
    insert("traceparent", value);
    if let Some(state) = ctx.tracestate() {
        insert("tracestate", &state);
    }
}

fn record<'h>(
    span: &mut Span,
    method: &str,
    target: &Target,
    status: Option<u16>,
    headers: impl Iterator<Item = (&'h str, &'h str)>,
) {
    if !span.is_recording() {
        return;
    }
    span.set_http(method, &target.shown, status, &target.host, target.port);
    if status.is_some() {
        span.set_response_headers(headers);
    }
    span.set_outcome(match status {
        Some(s) if s < 400 => Outcome::Success,
        _ => Outcome::Failure,
    });
}
