//! The intake transport's HTTP client and its TLS: rustls with the `ring` provider (pure Rust
//! plus a little assembly; no OpenSSL headers or cmake needed to build).
//!
//! The client is configured here and nowhere else. Nothing is installed process-wide: an
//! application whose own HTTP clients pick their TLS provider from a process default, or build
//! without one, behaves exactly as it would without the agent.

use std::time::Duration;

use std::path::Path;
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// Connecting (TCP and TLS handshake) may take this long at most; each request also has its own
/// overall timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The reporter thread's client for `POST /intake/v2/events`.
///
/// rustls gets the provider from ureq: the application's process default when it installed one
/// (its choice, e.g. a FIPS provider, is honoured), otherwise `ring`, chosen for this client
/// only. Certificates are checked against `roots` (see [`roots`]) unless `verify` is false.
/// Redirects are not followed: a `Location` on another host must not receive the token.
pub(crate) fn intake_client(user_agent: &str, roots: RootCerts, verify: bool) -> ureq::Agent {
    let tls = TlsConfig::builder().root_certs(roots).disable_verification(!verify).build();
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

/// What the intake's certificate is checked against: the certificates of
/// `ELASTIC_APM_SERVER_CA_CERT_FILE` alone when it is set (as Elastic's Go and Node.js agents
/// do: a private CA, not added to the system's), otherwise what the system trusts.
///
/// A file that cannot be read or holds no PEM certificate is said once, and the system's roots
/// are used: the agent keeps checking certificates, it never stops the application.
pub(crate) fn roots(ca_file: Option<&Path>) -> RootCerts {
    let Some(path) = ca_file else { return RootCerts::PlatformVerifier };
    match read_certificates(path) {
        Ok(certs) => RootCerts::Specific(Arc::new(certs)),
        Err(why) => {
            crate::diagnostics::warning!(
                "ELASTIC_APM_SERVER_CA_CERT_FILE={}: {why}; checking the APM Server's certificate against the \
                 system's trusted roots instead",
                path.display()
            );
            RootCerts::PlatformVerifier
        }
    }
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        // A bundle may carry its key too; only certificates are roots.
        if let PemItem::Certificate(cert) = item.map_err(|e| format!("is not valid PEM ({e})"))? {
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_falls_back_to_the_system_roots() {
        let dir = std::env::temp_dir().join(format!("apm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(read_certificates(&empty).unwrap_err().contains("no PEM certificate"));
        assert!(matches!(roots(Some(&empty)), RootCerts::PlatformVerifier));
        assert!(read_certificates(&dir.join("missing.pem")).unwrap_err().contains("cannot be read"));
        assert!(matches!(roots(None), RootCerts::PlatformVerifier));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
