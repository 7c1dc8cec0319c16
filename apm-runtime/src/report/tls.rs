//! The intake transport's HTTP client and its TLS: rustls with the `ring` provider (pure Rust
//! plus a little assembly; no OpenSSL headers or cmake needed to build).
//!
//! The client is configured here and nowhere else. Nothing is installed process-wide: an
//! application whose own HTTP clients pick their TLS provider from a process default, or build
//! without one, behaves exactly as it would without the agent.

use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};

/// Connecting (TCP and TLS handshake) may take this long at most; each request also has its own
/// overall timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The reporter thread's client for `POST /intake/v2/events`.
///
/// rustls gets the provider from ureq: the application's process default when it installed one
/// (its choice, e.g. a FIPS provider, is honoured), otherwise `ring`, chosen for this client
/// only. Certificates are checked against what the system trusts unless `verify` is false.
/// Redirects are not followed: a `Location` on another host must not receive the token.
pub(crate) fn intake_client(user_agent: &str, verify: bool) -> ureq::Agent {
    let tls = TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).disable_verification(!verify).build();
    ureq::Agent::config_builder()
        .user_agent(user_agent)
        .tls_config(tls)
        // Error statuses are answers to classify (retry or drop), with a body worth reading.
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .build()
        .into()
}
