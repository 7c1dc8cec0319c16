//! The reporter speaks HTTPS: an intake on loopback behind TLS (a self-signed certificate made
//! here) receives what an agent sends with `verify_server_cert = false`, refuses to be trusted
//! by an agent that checks certificates, and nothing is installed process-wide on the way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use apm_runtime::{Agent, Config};

/// What the TLS intake received: each request's `authorization` header and its NDJSON lines.
#[derive(Default)]
struct Received {
    requests: Vec<(Option<String>, Vec<String>)>,
    handshakes_failed: usize,
}

struct TlsIntake {
    url: String,
    /// The server's self-signed certificate, PEM-encoded: its own CA.
    cert_pem: String,
    state: Arc<(Mutex<Received>, Condvar)>,
}

impl TlsIntake {
    fn start() -> TlsIntake {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let state: Arc<(Mutex<Received>, Condvar)> = Default::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (config, shared) = (config.clone(), shared.clone());
                std::thread::spawn(move || serve(tcp, config, &shared));
            }
        });
        TlsIntake { url, cert_pem: cert.cert.pem(), state }
    }

    /// Waits until `pred` holds for what was received, or `timeout` passes.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&Received) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.state;
        let mut received = lock.lock().unwrap();
        while !pred(&received) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            received = changed.wait_timeout(received, left).unwrap().0;
        }
        true
    }
}

fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, state: &(Mutex<Received>, Condvar)) {
    let conn = rustls::ServerConnection::new(config).unwrap();
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => {
                // The client gave up during the handshake (it did not trust the certificate).
                if reader.get_ref().conn.is_handshaking() {
                    state.0.lock().unwrap().handshakes_failed += 1;
                    state.1.notify_all();
                }
                return;
            }
        }
        let (mut len, mut auth) = (0, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some((k, v)) = line.trim_end().split_once(':') else { break };
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        if !request_line.starts_with("POST ") {
            // The agent's version and central configuration questions: not an intake request.
            let stream = reader.get_mut();
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap();
            stream.flush().unwrap();
            continue;
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
        {
            let mut received = state.0.lock().unwrap();
            received.requests.push((auth, text.lines().map(str::to_string).collect()));
            state.1.notify_all();
        }
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
        stream.flush().unwrap();
    }
}

fn agent_for(url: &str, verify: bool) -> Agent {
    Agent::builder().config(config_for(url).verify_server_cert(verify).build().unwrap()).build().unwrap()
}

fn config_for(url: &str) -> apm_runtime::ConfigBuilder {
    Config::builder()
        .service_name("host-app")
        .server_url(url)
        .cloud_provider(apm_runtime::CloudProvider::None)
        .secret_token("tls-only-token")
        // A certificate it does not trust is retried like any failed connection until then.
        .shutdown_timeout(Duration::from_secs(1))
}

fn produce(agent: &Agent) {
    let tx = agent.transaction("over tls").start();
    tx.context().in_scope(|| apm_runtime::Span::start("inside").end());
    tx.end();
}

#[test]
fn events_reach_an_https_intake_without_certificate_checks() {
    let intake = TlsIntake::start();
    let agent = agent_for(&intake.url, false);
    produce(&agent);
    assert!(agent.flush(Duration::from_secs(10)), "{:?}", agent.stats());
    assert!(intake.wait_for(Duration::from_secs(5), |r| !r.requests.is_empty()));
    let received = intake.state.0.lock().unwrap();
    let (auth, lines) = &received.requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer tls-only-token"));
    assert!(lines[0].starts_with("{\"metadata\""), "{lines:?}");
    assert_eq!(lines.len(), 3, "metadata, transaction, span: {lines:?}");
    assert_eq!(agent.stats().sent, 2);
    // The agent chose its TLS provider for its own client only.
    assert!(rustls::crypto::CryptoProvider::get_default().is_none(), "a process-wide provider was installed");
}

#[test]
fn a_self_signed_intake_is_not_trusted_when_certificates_are_checked() {
    let intake = TlsIntake::start();
    let agent = agent_for(&intake.url, true);
    produce(&agent);
    agent.flush(Duration::from_millis(1500));
    assert!(intake.wait_for(Duration::from_secs(5), |r| r.handshakes_failed > 0));
    assert!(intake.state.0.lock().unwrap().requests.is_empty());
    assert_eq!(agent.stats().sent, 0);
}

#[test]
fn a_private_ca_named_by_server_ca_cert_file_is_trusted_and_certificates_are_checked() {
    let intake = TlsIntake::start();
    let dir = std::env::temp_dir().join(format!("apm-host-app-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("intake-ca.pem");
    std::fs::write(&ca, &intake.cert_pem).unwrap();
    let config = config_for(&intake.url).server_ca_cert_file(&ca).build().unwrap();
    assert!(config.verify_server_cert(), "certificates are still checked");
    let agent = Agent::builder().config(config).build().unwrap();
    produce(&agent);
    assert!(agent.flush(Duration::from_secs(10)), "{:?}", agent.stats());
    assert!(intake.wait_for(Duration::from_secs(5), |r| !r.requests.is_empty()));
    assert_eq!(intake.state.0.lock().unwrap().handshakes_failed, 0);
    assert_eq!(agent.stats().sent, 2);

    // Another server's certificate is not in that file: it is refused.
    let other = TlsIntake::start();
    let config = config_for(&other.url).server_ca_cert_file(&ca).build().unwrap();
    let agent = Agent::builder().config(config).build().unwrap();
    produce(&agent);
    agent.flush(Duration::from_millis(1500));
    assert!(other.wait_for(Duration::from_secs(5), |r| r.handshakes_failed > 0));
    assert!(other.state.0.lock().unwrap().requests.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
