//! A newcomer's first hour, scripted: the README's first example (built from the README itself,
//! see `build.rs`) runs against a loopback intake and a loopback "remote" server, as written
//! and with the usual mistakes, and each case gives what the README promises.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// A loopback APM Server intake that accepts every request (202) and keeps the NDJSON lines.
struct Intake {
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Intake {
    fn start() -> Intake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let lines: Arc<Mutex<Vec<String>>> = Default::default();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    serve(conn, |body| kept.lock().unwrap().extend(ndjson(body)), "202 Accepted")
                });
            }
        });
        Intake { url, lines }
    }

    /// The events of one intake type (`transaction`, `span`, …) received so far.
    fn events(&self, kind: &str) -> usize {
        let key = format!("{{\"{kind}\":");
        self.lines.lock().unwrap().iter().filter(|l| l.starts_with(&key)).count()
    }
}

/// Answers every request on `conn` with `status`, handing each request body to `keep`.
fn serve(conn: TcpStream, mut keep: impl FnMut(&[u8]), status: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut length = 0;
        let mut line = String::new();
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        keep(&body);
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The lines of a gzip-compressed NDJSON body (none for the agent's bodiless `GET`s: its
/// server version and central configuration questions).
fn ndjson(body: &[u8]) -> Vec<String> {
    if body.is_empty() {
        return Vec::new();
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(body).read_to_string(&mut text).unwrap();
    text.lines().map(str::to_string).collect()
}

/// A remote service for the example's requests: answers `200 OK` to everything.
fn remote() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, |_| {}, "200 OK"));
        }
    });
    url
}

/// Runs one of the example programs with the given agent variables and the remote's URLs.
fn run(program: &str, env: &[(&str, &str)]) -> (Output, String) {
    let remote = remote();
    let urls = [format!("{remote}/a"), format!("{remote}/b"), format!("{remote}/c")];
    let mut cmd = Command::new(program);
    cmd.args(&urls).env("ELASTIC_APM_SERVICE_NAME", "first-hour");
    // The loopback intake is the only server here: no cloud metadata service is asked.
    cmd.env("ELASTIC_APM_CLOUD_PROVIDER", "none");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ELASTIC_APM_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{program}: {}\n{stderr}", out.status);
    (out, stderr)
}

#[test]
fn the_readme_example_ships_its_trace_and_says_nothing() {
    let intake = Intake::start();
    let (_, stderr) = run(env!("CARGO_BIN_EXE_readme_example"), &[("ELASTIC_APM_SERVER_URL", &intake.url)]);
    assert_eq!(intake.events("transaction"), 1, "{stderr}");
    // One span per URL, and each one's outgoing request an exit span of its own.
    assert_eq!(intake.events("span"), 6, "{stderr}");
    assert!(!stderr.contains("[apm]"), "nothing to complain about: {stderr}");
}

#[test]
fn a_forgotten_init_is_named_once_with_the_fix() {
    let (_, stderr) = run(env!("CARGO_BIN_EXE_forgot_init"), &[]);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("[apm]")).collect();
    assert_eq!(lines.len(), 1, "one line, once: {stderr}");
    assert!(lines[0].contains("no APM agent is installed") && lines[0].contains("apm_runtime::init()"), "{stderr}");
    assert!(lines[0].contains("GET /dashboard"), "names what ran: {stderr}");
}

#[test]
fn a_dropped_init_handle_still_ships_the_trace() {
    let intake = Intake::start();
    let (_, stderr) = run(env!("CARGO_BIN_EXE_let_underscore_init"), &[("ELASTIC_APM_SERVER_URL", &intake.url)]);
    assert_eq!(intake.events("transaction"), 1, "{stderr}");
    assert_eq!(intake.events("span"), 6, "{stderr}");
}

#[test]
fn with_the_server_down_the_last_line_says_what_was_lost() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let (_, stderr) = run(
        env!("CARGO_BIN_EXE_readme_example"),
        // The trace's events only: no metricsets at shutdown to count.
        &[
            ("ELASTIC_APM_SERVER_URL", &url),
            ("ELASTIC_APM_SHUTDOWN_TIMEOUT", "1s"),
            ("ELASTIC_APM_METRICS_INTERVAL", "0"),
        ],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "bounded by the shutdown timeout");
    let last = stderr.lines().rfind(|l| l.starts_with("[apm]")).unwrap_or_default();
    assert!(last.contains("7 of 7 events could not be delivered"), "{stderr}");
    assert!(last.contains("unreachable"), "{stderr}");
}
