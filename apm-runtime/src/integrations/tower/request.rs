//! What the layer reads off a request and a response: the transaction's name, its
//! `context.request` and `context.response`, and its result.

use std::borrow::Cow;
use std::sync::Arc;

use super::capture;
use crate::config::Config;
use crate::model::event::{Outcome, RawBody, RequestContext, ResponseContext};

/// Elastic's name for a request whose route is not known (naming by the raw path would make one
/// transaction group per id in Kibana).
pub(super) fn name<B>(req: &http::Request<B>, grpc: bool, config: &Config) -> Cow<'static, str> {
    if grpc {
        // The method path is the route: `/pkg.Service/Method`.
        return Cow::Owned(req.uri().path().to_string());
    }
    let method = req.method().as_str();
    if let Some(route) = matched_route(req) {
        return Cow::Owned(format!("{method} {route}"));
    }
    if config.use_path_as_transaction_name() {
        return Cow::Owned(format!("{method} {}", req.uri().path()));
    }
    Cow::Owned(format!("{method} unknown route"))
}

/// `service.framework.name` for a request this layer serves: tonic for gRPC, axum when axum
/// routed it, else the tower/hyper stack the layer sits in.
pub(super) fn framework<B>(req: &http::Request<B>, grpc: bool) -> &'static str {
    if grpc {
        "tonic"
    } else if matched_route(req).is_some() {
        "axum"
    } else {
        "tower"
    }
}

#[cfg(feature = "axum")]
fn matched_route<B>(req: &http::Request<B>) -> Option<&str> {
    req.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str())
}

#[cfg(not(feature = "axum"))]
fn matched_route<B>(_: &http::Request<B>) -> Option<&str> {
    None
}

/// Whether `TRANSACTION_IGNORE_URLS` says to leave this request alone.
pub(super) fn ignored<B>(req: &http::Request<B>, config: &Config) -> bool {
    let path = req.uri().path();
    config.transaction_ignore_urls().iter().any(|w| w.matches(path))
}

/// `HTTP 2xx` … `HTTP 5xx`, as Elastic's agents group results.
pub(super) fn result(status: http::StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "HTTP 1xx",
        2 => "HTTP 2xx",
        3 => "HTTP 3xx",
        4 => "HTTP 4xx",
        _ => "HTTP 5xx",
    }
}

/// Elastic's HTTP server rule: only a 5xx is the server's failure.
pub(super) fn outcome(status: http::StatusCode) -> Outcome {
    if status.is_server_error() {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

/// The request's `context.request`.
pub(super) fn request_context<B>(
    req: &http::Request<B>,
    config: &Arc<Config>,
    body: Option<Arc<dyn RawBody>>,
) -> RequestContext {
    let uri = req.uri();
    let headers = req.headers();
    let header = |name: http::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    // HTTP/2 carries the authority and scheme in the URI; HTTP/1 in `Host`. A proxy in front says
    // what the client used in `X-Forwarded-Proto`. Without either, the connection is taken to be
    // plain HTTP, as Elastic's Go agent does for a request without TLS state.
    let (hostname, port) = match uri.authority() {
        Some(a) => (Some(a.host().to_string()), a.port_u16()),
        None => match header(http::header::HOST).and_then(|h| h.parse::<http::uri::Authority>().ok()) {
            Some(a) => (Some(a.host().to_string()), a.port_u16()),
            None => (None, None),
        },
    };
    let protocol = match uri.scheme_str().or_else(|| headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok())) {
        Some(s) if s.eq_ignore_ascii_case("https") => "https:",
        _ => "http:",
    };
    let pathname = uri.path().to_string();
    let search = uri.query().map(str::to_string);
    let full = hostname.as_ref().map(|host| {
        let mut full = format!("{protocol}//{host}");
        if let Some(port) = port {
            full.push_str(&format!(":{port}"));
        }
        full.push_str(uri.path_and_query().map_or("/", |p| p.as_str()));
        full
    });
    let raw = match uri.scheme() {
        Some(_) => uri.to_string(),
        None => uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.to_string()),
    };
    RequestContext {
        method: req.method().as_str().to_string(),
        protocol: Some(protocol),
        hostname,
        port,
        pathname,
        search,
        raw,
        full,
        http_version: http_version(req.version()),
        remote_address: remote_address(req),
        headers: capture::headers(headers, config),
        body,
    }
}

/// The response's `context.response`, before its body is sent.
pub(super) fn response_context<B>(res: &http::Response<B>, config: &Arc<Config>) -> ResponseContext {
    ResponseContext {
        status_code: Some(res.status().as_u16()),
        headers: capture::headers(res.headers(), config),
        finished: false,
        headers_sent: true,
    }
}

fn http_version(v: http::Version) -> Option<&'static str> {
    Some(match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// The peer's address where the server put it: axum's `ConnectInfo` (served with
/// `into_make_service_with_connect_info`), tonic's `TcpConnectInfo` (feature `tonic`), or a
/// plain `SocketAddr` extension (hyper-util services that insert one).
fn remote_address<B>(req: &http::Request<B>) -> Option<String> {
    #[cfg(feature = "tonic")]
    if let Some(addr) = req.extensions().get::<tonic::transport::server::TcpConnectInfo>().and_then(|i| i.remote_addr())
    {
        return Some(addr.ip().to_string());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        return Some(info.0.ip().to_string());
    }
    req.extensions().get::<std::net::SocketAddr>().map(|a| a.ip().to_string())
}
