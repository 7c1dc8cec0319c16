//! A capturing Elastic APM intake server on loopback: decodes gzip, parses the NDJSON,
//! validates every line against Elastic's schemas, and can be scripted to misbehave. It also
//! answers what agents ask besides the intake, as APM Server does: its version (`GET /`) and
//! central configuration (`GET /config/v1/agents`, 404 until a test sets an answer); those
//! requests are kept apart ([`IntakeServer::gets`]) and never take a scripted action.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What the server does with one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Accept the events (202).
    Accept,
    /// Answer with this status, discarding the events.
    Status(u16),
    /// Read the request and never answer (until the server is dropped).
    Hang,
    /// Read the headers, then close the connection mid-request.
    Die,
    /// Accept, after a delay.
    Slow(Duration),
}

/// One request received, decoded.
#[derive(Clone, Debug)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    /// Compressed body size on the wire.
    pub wire_bytes: usize,
    /// `(type, object)` per NDJSON line, metadata first; validated against the schemas.
    pub lines: Vec<(String, Value)>,
    pub action: Action,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn events(&self) -> impl Iterator<Item = &(String, Value)> {
        self.lines.iter().skip(1)
    }
}

/// A `GET` an agent sent: its path with the query, and its headers.
#[derive(Clone, Debug)]
pub struct Get {
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Get {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The answer to `GET /config/v1/agents`: status, headers, body.
#[derive(Clone, Debug)]
pub struct ConfigAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Default)]
struct State {
    script: VecDeque<Action>,
    default: Option<Action>,
    requests: Vec<Request>,
    gets: Vec<Get>,
    /// The version `GET /` reports (`None`: the server answers 404).
    version: Option<String>,
    central: Option<ConfigAnswer>,
    /// Schema or format violations seen (tests assert this stays empty).
    problems: Vec<String>,
}

pub struct IntakeServer {
    addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl IntakeServer {
    /// A free loopback port with nothing listening on it (connections are refused).
    pub fn reserve_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    pub fn start() -> IntakeServer {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> IntakeServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind intake server");
        let addr = listener.local_addr().unwrap();
        let state: Arc<(Mutex<State>, Condvar)> = Default::default();
        state.0.lock().unwrap().version = Some("8.15.0".to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp) = (st.clone(), sp.clone());
                thread::spawn(move || {
                    let _ = serve(conn, &st, &sp);
                });
            }
        });
        IntakeServer { addr, state, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Actions for the next requests, in order; after them, `then` for every request.
    pub fn script(&self, actions: &[Action], then: Action) {
        let mut s = self.state.0.lock().unwrap();
        s.script = actions.iter().copied().collect();
        s.default = Some(then);
    }

    /// The version `GET /` answers with (`None`: 404, as a proxy in front of it might).
    pub fn set_version(&self, version: Option<&str>) {
        self.state.0.lock().unwrap().version = version.map(str::to_string);
    }

    /// What `GET /config/v1/agents` answers from now on.
    pub fn set_central_config(&self, answer: ConfigAnswer) {
        self.state.0.lock().unwrap().central = Some(answer);
    }

    /// The `GET`s received so far (version and central configuration).
    pub fn gets(&self) -> Vec<Get> {
        self.state.0.lock().unwrap().gets.clone()
    }

    /// Waits until `pred` holds for the `GET`s received, or `timeout` passes.
    pub fn wait_for_gets(&self, timeout: Duration, pred: impl Fn(&[Get]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.0.lock().unwrap();
        while !pred(&s.gets) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.state.1.wait_timeout(s, left).unwrap().0;
        }
        true
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.0.lock().unwrap().requests.clone()
    }

    /// Events from the requests the server accepted.
    pub fn accepted_events(&self) -> Vec<(String, Value)> {
        let s = self.state.0.lock().unwrap();
        assert!(s.problems.is_empty(), "the intake server saw invalid requests: {:#?}", s.problems);
        s.requests
            .iter()
            .filter(|r| matches!(r.action, Action::Accept | Action::Slow(_)))
            .flat_map(|r| r.events().cloned())
            .collect()
    }

    /// Waits until `pred` holds for the accepted events, or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[(String, Value)]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.accepted_events()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let guard = self.state.0.lock().unwrap();
            let _ = self.state.1.wait_timeout(guard, left.min(Duration::from_millis(50))).unwrap();
        }
    }
}

impl Drop for IntakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.state.1.notify_all();
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, state: &(Mutex<State>, Condvar), stop: &AtomicBool) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if let Some(target) = request_line.strip_prefix("GET ") {
            let target = target.split(' ').next().unwrap_or("").to_string();
            let (status, extra, body) = {
                let mut s = state.0.lock().unwrap();
                s.gets.push(Get { target: target.clone(), headers });
                state.1.notify_all();
                if target == "/" {
                    match &s.version {
                        Some(v) => (200, vec![], format!("{{\"build_date\":\"2026-01-01T00:00:00Z\",\"build_sha\":\"x\",\"publish_ready\":true,\"version\":\"{v}\"}}")),
                        None => (404, vec![], "404 page not found".to_string()),
                    }
                } else if target.starts_with("/config/v1/agents") {
                    match &s.central {
                        Some(a) => (a.status, a.headers.clone(), a.body.clone()),
                        None => (404, vec![], "{\"error\":\"central configuration is not set up\"}".to_string()),
                    }
                } else {
                    s.problems.push(format!("unexpected GET {target}"));
                    (404, vec![], String::new())
                }
            };
            let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            write!(conn, "HTTP/1.1 {status} X\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())?;
            conn.flush()?;
            continue;
        }
        let action = {
            let mut s = state.0.lock().unwrap();
            let next = s.script.pop_front();
            next.or(s.default).unwrap_or(Action::Accept)
        };
        if action == Action::Die {
            let mut s = state.0.lock().unwrap();
            s.requests.push(Request { headers, wire_bytes: 0, lines: vec![], action });
            return Ok(()); // drops the connection with the body unread
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let mut problems = Vec::new();
        if !request_line.starts_with("POST /intake/v2/events ") {
            problems.push(format!("unexpected request line {request_line:?}"));
        }
        let lines = decode(&headers, &body, &mut problems);
        {
            let mut s = state.0.lock().unwrap();
            s.problems.extend(problems);
            s.requests.push(Request { headers, wire_bytes: body.len(), lines, action });
            state.1.notify_all();
        }
        let status = match action {
            Action::Hang => {
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
            Action::Slow(d) => {
                thread::sleep(d);
                202
            }
            Action::Status(code) => code,
            _ => 202,
        };
        let body = if status >= 400 { format!("{{\"error\":\"status {status}\"}}") } else { String::new() };
        write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}", body.len())?;
        conn.flush()?;
    }
}

fn decode(headers: &[(String, String)], body: &[u8], problems: &mut Vec<String>) -> Vec<(String, Value)> {
    let header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
    if header("content-type") != Some("application/x-ndjson") {
        problems.push(format!("content-type {:?}", header("content-type")));
    }
    if header("content-encoding") != Some("gzip") {
        problems.push(format!("content-encoding {:?}", header("content-encoding")));
    }
    let mut text = String::new();
    if let Err(e) = flate2::read::GzDecoder::new(body).read_to_string(&mut text) {
        problems.push(format!("body is not gzip: {e}"));
        return vec![];
    }
    match std::panic::catch_unwind(|| super::schemas().check_ndjson(&text)) {
        Ok(lines) => lines,
        Err(e) => {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_else(|| "schema check panicked".into());
            problems.push(msg);
            vec![]
        }
    }
}
