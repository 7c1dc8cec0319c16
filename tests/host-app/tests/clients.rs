//! The application's own reqwest clients keep working with apm-runtime in its tree: built and
//! used with no agent at all (an agent that enabled reqwest's `rustls-no-provider` made every
//! such client panic), and traced by `send_traced` under an agent, for reqwest 0.13 and 0.12.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::report::MemorySink;
use apm_runtime::Agent;

type Headers = Vec<(String, String)>;

/// A plain-HTTP server on loopback that answers every request `200 ok` and keeps the headers
/// of each request it got.
struct Remote {
    url: String,
    seen: Arc<Mutex<Vec<Headers>>>,
}

impl Remote {
    fn start() -> Remote {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Headers>>> = Default::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || answer(conn, &log));
            }
        });
        Remote { url, seen }
    }

    fn requests(&self) -> Vec<Headers> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(conn: TcpStream, log: &Mutex<Vec<Headers>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            match h.trim_end().split_once(':') {
                Some((k, v)) => headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string())),
                None => break,
            }
        }
        log.lock().unwrap().push(headers);
        if conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
            return;
        }
    }
}

#[test]
fn reqwest_013_clients_work_with_no_agent() {
    let remote = Remote::start();
    let client = reqwest::blocking::Client::new();
    let response = client.get(format!("{}/plain", remote.url)).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().unwrap(), "ok");
    let built = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert_eq!(built.get(&remote.url).send().unwrap().status().as_u16(), 200);
    assert_eq!(remote.requests().len(), 2);
}

#[test]
fn reqwest_012_clients_with_tls_compiled_in_work_with_no_agent() {
    let remote = Remote::start();
    let client = reqwest012::blocking::Client::new();
    assert_eq!(client.get(format!("{}/plain", remote.url)).send().unwrap().text().unwrap(), "ok");
    // A client that would speak HTTPS: reqwest picks its own rustls provider, as before.
    let tls = reqwest012::blocking::Client::builder().use_rustls_tls().https_only(false).build().unwrap();
    assert_eq!(tls.get(&remote.url).send().unwrap().status().as_u16(), 200);
    assert_eq!(remote.requests().len(), 2);
}

#[test]
fn send_traced_records_exit_spans_for_both_reqwest_versions() {
    let remote = Remote::start();
    let sink = MemorySink::new();
    let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    let _default = agent.set_default();

    let tx = agent.transaction("calls").start();
    let ctx = tx.context();
    ctx.in_scope(|| {
        let new = reqwest::blocking::Client::new().get(format!("{}/v13", remote.url)).send_traced().unwrap();
        assert_eq!(new.status().as_u16(), 200);
        let old = reqwest012::blocking::Client::new().get(format!("{}/v12", remote.url)).send_traced().unwrap();
        assert_eq!(old.status().as_u16(), 200);
    });
    tx.end();
    assert!(agent.flush(Duration::from_secs(10)));

    let tx = &sink.transactions()[0];
    let spans = sink.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for span in &spans {
        assert_eq!(span["type"], "external");
        assert_eq!(span["parent_id"], tx["id"]);
        assert_eq!(span["outcome"], "success");
        assert_eq!(span["context"]["http"]["status_code"], 200);
    }
    let trace_id = tx["trace_id"].as_str().unwrap();
    let requests = remote.requests();
    assert_eq!(requests.len(), 2);
    for (headers, span) in requests.iter().zip(&spans) {
        let tp = &headers.iter().find(|(k, _)| k == "traceparent").expect("traceparent sent").1;
        assert!(tp.contains(trace_id), "{tp}");
        assert!(tp.contains(span["id"].as_str().unwrap()), "the exit span is the parent: {tp}");
    }
}
