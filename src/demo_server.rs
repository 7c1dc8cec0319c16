//! A small HTTP/1.1 server on loopback that plays the "remote services" the examples call:
//! each path answers after a delay, some with an error status, and it records the trace
//! headers it was sent so tests can check propagation. Examples that are services themselves
//! (`w3c_service`) serve their handler with it too.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request path, e.g. `/users/3`.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; chunked bodies are not read).
    pub body: Vec<u8>,
}

/// Bodies larger than this are refused (413) rather than buffered: a service example may listen
/// on more than loopback, and `Content-Length` is the client's word.
const MAX_BODY: usize = 1 << 20;

/// Answers one request: `(status, body)`.
pub type Handler = dyn Fn(&Received) -> (u16, String) + Send + Sync;

/// A running server; it stops accepting when dropped.
pub struct DemoServer {
    addr: SocketAddr,
    /// `None` for a long-running service ([`DemoServer::serve_on`]), which would otherwise
    /// keep every request it ever answered.
    received: Option<Arc<Mutex<Vec<Received>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl DemoServer {
    /// Starts the server on an ephemeral loopback port.
    ///
    /// Paths: `/delay/<ms>` answers 200 after `<ms>` milliseconds; `/status/<code>` answers
    /// with that status; anything else answers 200 at once.
    pub fn start() -> std::io::Result<DemoServer> {
        Self::start_with(default_handler)
    }

    /// Starts the server with `handler` answering every request (on a thread per connection).
    pub fn start_with(
        handler: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) -> std::io::Result<DemoServer> {
        Self::spawn("127.0.0.1:0", Some(Arc::new(Mutex::new(Vec::new()))), Arc::new(handler))
    }

    /// Serves `handler` on `addr` (e.g. `127.0.0.1:3000`) until dropped, for examples that
    /// are services themselves. It keeps no record of the requests: [`DemoServer::received`]
    /// stays empty.
    pub fn serve_on(
        addr: impl ToSocketAddrs,
        handler: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
    ) -> std::io::Result<DemoServer> {
        Self::spawn(addr, None, Arc::new(handler))
    }

    fn spawn(
        addr: impl ToSocketAddrs,
        received: Option<Arc<Mutex<Vec<Received>>>>,
        handler: Arc<Handler>,
    ) -> std::io::Result<DemoServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (rec, st) = (received.clone(), stop.clone());
        thread::Builder::new().name("demo-server".into()).spawn(move || {
            for conn in listener.incoming() {
                if st.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (rec, handler) = (rec.clone(), handler.clone());
                thread::spawn(move || {
                    let _ = serve(conn, rec.as_deref(), &*handler);
                });
            }
        })?;
        Ok(DemoServer { addr, received, stop })
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.as_ref().map(|r| r.lock().unwrap().clone()).unwrap_or_default()
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// `/delay/<ms>` answers 200 after `<ms>` milliseconds, `/status/<code>` answers with that
/// status, anything else 200 at once.
pub fn default_handler(request: &Received) -> (u16, String) {
    let path = &request.path;
    let mut status = 200u16;
    if let Some(ms) = path.strip_prefix("/delay/").and_then(|m| m.parse::<u64>().ok()) {
        thread::sleep(Duration::from_millis(ms));
    }
    if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse::<u16>().ok()) {
        status = code;
    }
    (status, format!("{{\"path\":\"{path}\",\"status\":{status}}}"))
}

fn serve(conn: TcpStream, received: Option<&Mutex<Vec<Received>>>, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("GET").to_string();
        let path = words.next().unwrap_or("/").to_string();
        let mut headers = Vec::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    content_length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        if content_length > MAX_BODY {
            write!(conn, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return conn.flush();
        }
        let mut body = vec![0; content_length];
        std::io::Read::read_exact(&mut reader, &mut body)?;
        let request = Received { method, path, headers, body };
        if let Some(received) = received {
            received.lock().unwrap().push(request.clone());
        }
        let (status, body) = handler(&request);
        // One write: `write!` straight to the socket sends each piece as its own small segment,
        // and Nagle's algorithm with the client's delayed ACK then stalls every keep-alive
        // response after the first by ~40 ms.
        let response = format!(
            // A session cookie, as real services set: the agent must record it as [REDACTED].
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nX-Served-By: demo-server\r\n\
             Set-Cookie: session=s3cr3t-cookie\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(response.as_bytes())?;
        conn.flush()?;
    }
}
