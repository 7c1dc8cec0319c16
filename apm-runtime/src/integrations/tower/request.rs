//! What the layer reads off a request and a response: the transaction's name, its
//! `context.request` and `context.response`, and its result.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use super::capture;
use crate::config::Config;
use crate::model::event::{Outcome, RawBody, RawHeaders, RawRequest, Request, RequestContext, ResponseContext};

/// Elastic's name for a request whose route is not known (naming by the raw path would make one
/// transaction group per id in Kibana).
pub(super) fn name<B>(req: &http::Request<B>, grpc: bool, config: &Config) -> Cow<'static, str> {
    if grpc {
        // The method path is the route: `/pkg.Service/Method`.
        return Cow::Owned(req.uri().path().to_string());
    }
    let method = req.method().as_str();
    let route = match matched_route(req) {
        Some(route) => route,
        None if config.use_path_as_transaction_name() => req.uri().path(),
        None => "unknown route",
    };
    // Pushed rather than `format!`ted: the formatting machinery cost as much as the rest of
    // the name's work, on every request.
    let mut name = String::with_capacity(method.len() + 1 + route.len());
    name.push_str(method);
    name.push(' ');
    name.push_str(route);
    Cow::Owned(name)
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

/// The request's `context.request`, kept raw: its strings are made on the reporter thread.
pub(super) fn request_context<B>(
    req: &http::Request<B>,
    config: &Arc<Config>,
    body: Option<Arc<dyn RawBody>>,
) -> Request {
    let uri = req.uri();
    let headers = req.headers();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    // HTTP/2 carries the authority and scheme in the URI; HTTP/1 in `Host`. A proxy in front says
    // what the client used in `X-Forwarded-Proto`.
    let authority = match uri.authority() {
        Some(a) => a.as_str(),
        None => headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or(""),
    };
    static FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
    let scheme = uri.scheme_str().or_else(|| headers.get(&FORWARDED_PROTO).and_then(|v| v.to_str().ok()));
    let mut text = String::with_capacity(target.len() + authority.len() + scheme.map_or(0, str::len));
    text.push_str(target);
    text.push_str(authority);
    text.push_str(scheme.unwrap_or(""));
    Request::Raw(Arc::new(Incoming {
        method: req.method().clone(),
        text,
        target_end: target.len(),
        authority_end: target.len() + authority.len(),
        absolute: uri.scheme().is_some(),
        version: req.version(),
        remote: remote_address(req),
        headers: capture::headers(headers, config),
        body,
    }))
}

/// A request as the layer keeps it for its event: what `context.request` needs, copied into
/// one string on the handler's thread (nothing of the server's read buffer kept alive, see
/// `capture::Headers`), and made into the event's strings on the reporter thread.
#[derive(Debug)]
struct Incoming {
    method: http::Method,
    /// The request target (path and query), the authority (the URI's, or the `Host` header),
    /// and the scheme (the URI's, or `X-Forwarded-Proto`), back to back.
    text: String,
    target_end: usize,
    authority_end: usize,
    /// Whether the request line carried an absolute URI (then `url.raw` is the whole of it).
    absolute: bool,
    version: http::Version,
    remote: Option<IpAddr>,
    /// In the same allocation as the rest.
    headers: Option<capture::Headers>,
    body: Option<Arc<dyn RawBody>>,
}

impl RawRequest for Incoming {
    fn render(&self) -> RequestContext<'_> {
        let target = &self.text[..self.target_end];
        let authority = &self.text[self.target_end..self.authority_end];
        let scheme = &self.text[self.authority_end..];
        let (hostname, port) = host_and_port(authority).map_or((None, None), |(h, p)| (Some(h), p));
        // Without a scheme, the connection is taken to be plain HTTP, as Elastic's Go agent
        // does for a request without TLS state.
        let protocol = if scheme.eq_ignore_ascii_case("https") { "https:" } else { "http:" };
        let (pathname, search) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let full = hostname.map(|host| match port {
            Some(port) => format!("{protocol}//{host}:{port}{target}"),
            None => format!("{protocol}//{host}{target}"),
        });
        RequestContext {
            method: Cow::Borrowed(self.method.as_str()),
            protocol: Some(protocol),
            hostname: hostname.map(Cow::Borrowed),
            port,
            pathname: Cow::Borrowed(pathname),
            search: search.map(Cow::Borrowed),
            raw: match self.absolute {
                true => Cow::Owned(format!("{scheme}://{authority}{target}")),
                false => Cow::Borrowed(target),
            },
            full: full.map(Cow::Owned),
            http_version: http_version(self.version),
            remote_address: self.remote.map(|ip| Cow::Owned(ip.to_string())),
        }
    }

    fn headers(&self) -> Option<&dyn RawHeaders> {
        self.headers.as_ref().map(|h| h as &dyn RawHeaders)
    }

    fn body(&self) -> Option<&dyn RawBody> {
        self.body.as_deref()
    }
}

/// The host and port of an authority (`user@host:port`, `[v6]:port`), as `http`'s `Authority`
/// reads them, without its copy of the text; `None` for an empty or malformed one.
fn host_and_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let valid = |c: u8| c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%@".contains(&c);
    if authority.is_empty() || !authority.bytes().all(valid) {
        return None;
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.rfind(':') {
        // A colon inside brackets belongs to an IPv6 address.
        Some(i) if !host_port[i..].contains(']') => (&host_port[..i], Some(&host_port[i + 1..])),
        _ => (host_port, None),
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    (!host.is_empty()).then_some((host, port))
}

/// The response's `context.response`, before its body is sent.
pub(super) fn response_context<B>(res: &http::Response<B>, config: &Arc<Config>) -> ResponseContext {
    ResponseContext {
        status_code: Some(res.status().as_u16()),
        headers: capture::headers(res.headers(), config).map(|h| Arc::new(h) as Arc<dyn RawHeaders>),
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
fn remote_address<B>(req: &http::Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "tonic")]
    if let Some(addr) = req.extensions().get::<tonic::transport::server::TcpConnectInfo>().and_then(|i| i.remote_addr())
    {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
        return Some(info.0.ip());
    }
    req.extensions().get::<std::net::SocketAddr>().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(req: http::Request<()>) -> Arc<dyn RawRequest> {
        let config = Arc::new(Config::defaults());
        let Request::Raw(raw) = request_context(&req, &config, None) else { unreachable!("the layer keeps it raw") };
        raw
    }

    #[test]
    fn authorities_split_as_http_reads_them() {
        for (authority, expected) in [
            ("example.com", Some(("example.com", None))),
            ("example.com:8080", Some(("example.com", Some(8080)))),
            ("user:pw@example.com:81", Some(("example.com", Some(81)))),
            ("[::1]:3000", Some(("[::1]", Some(3000)))),
            ("[::1]", Some(("[::1]", None))),
            ("", None),
            ("bad host!", None),
            ("example.com:http", None),
            ("example.com:99999", None),
        ] {
            assert_eq!(host_and_port(authority), expected, "{authority}");
            if let (Some((host, port)), Ok(a)) = (expected, authority.parse::<http::uri::Authority>()) {
                assert_eq!((a.host(), a.port_u16()), (host, port), "as http reads {authority}");
            }
        }
    }

    #[test]
    fn an_absolute_uri_gives_every_url_part() {
        let raw = incoming(http::Request::get("https://example.com:8443/a/b?x=1&y=2").body(()).unwrap());
        let c = raw.render();
        assert_eq!(c.method, "GET");
        assert_eq!(c.protocol, Some("https:"));
        assert_eq!((c.hostname.as_deref(), c.port), (Some("example.com"), Some(8443)));
        assert_eq!((&*c.pathname, c.search.as_deref()), ("/a/b", Some("x=1&y=2")));
        assert_eq!(c.raw, "https://example.com:8443/a/b?x=1&y=2");
        assert_eq!(c.full.as_deref(), Some("https://example.com:8443/a/b?x=1&y=2"));
    }

    #[test]
    fn host_and_forwarded_proto_complete_an_origin_form_target() {
        let raw = incoming(
            http::Request::post("/orders")
                .header("host", "shop.example")
                .header("x-forwarded-proto", "HTTPS")
                .body(())
                .unwrap(),
        );
        let c = raw.render();
        assert_eq!((c.protocol, c.hostname.as_deref(), c.port), (Some("https:"), Some("shop.example"), None));
        assert_eq!((&*c.raw, c.search), ("/orders", None));
        assert_eq!(c.full.as_deref(), Some("https://shop.example/orders"));
        assert_eq!(c.http_version, Some("1.1"));
    }

    #[test]
    fn without_a_host_there_is_no_full_url() {
        let raw = incoming(http::Request::get("/health").header("host", "bad host!").body(()).unwrap());
        let c = raw.render();
        assert_eq!((c.hostname, c.full, c.protocol), (None, None, Some("http:")));
        assert_eq!(c.raw, "/health");
    }
}
