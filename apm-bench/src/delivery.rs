//! The delivery benchmark's reporter side (`src/bin/delivery.rs`): a sink that does the intake
//! sink's CPU work short of the network, and what it tells the benchmark about the reporter
//! thread it runs on.
//!
//! [`IntakeBody`] is `IntakeSink::write`'s encoding, step for step: each event through
//! `Event::write_ndjson` into a reused line, into a gzip stream at `Compression::fast()`, a sync
//! flush every quarter of the request size (uncompressed), the body closed (gzip trailer) once
//! it holds `API_REQUEST_SIZE` (768 KiB) compressed, the next one opened with the metadata line.
//! Only the compressed bytes go nowhere: they are counted and discarded.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apm_runtime::report::{Sink, SinkContext};
use apm_runtime::{Agent, Event};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::cpu;

/// `ELASTIC_APM_API_REQUEST_SIZE`'s default, in bytes: the compressed size at which the intake
/// sink closes a request body.
pub const REQUEST_SIZE: u64 = 768 * 1024;

/// A writer that counts what it is given and keeps none of it (where the request body would
/// go to the network).
#[derive(Default)]
pub struct Discard {
    bytes: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The intake sink's request bodies, compressed into [`Discard`] (see the module docs).
pub struct IntakeBody {
    metadata: Vec<u8>,
    open: Option<GzEncoder<Discard>>,
    line: Vec<u8>,
    /// Uncompressed bytes since the last sync flush (the encoder holds output back until it
    /// has a block's worth, so the compressed count alone lags behind).
    unflushed: u64,
    /// Events in the open body.
    in_body: u64,
    /// Bodies closed, and their compressed and uncompressed bytes, so far.
    bodies: u64,
    compressed: u64,
    uncompressed: u64,
}

impl IntakeBody {
    /// An encoder whose every body starts with `metadata` (the `{"metadata":…}` line).
    pub fn new(metadata: Vec<u8>) -> IntakeBody {
        IntakeBody {
            metadata,
            open: None,
            line: Vec::with_capacity(1024),
            unflushed: 0,
            in_body: 0,
            bodies: 0,
            compressed: 0,
            uncompressed: 0,
        }
    }

    /// Whether a metadata line was given (the sink learns it on its first call).
    pub fn has_metadata(&self) -> bool {
        !self.metadata.is_empty()
    }

    /// Sets the metadata line for the bodies opened from now on.
    pub fn set_metadata(&mut self, metadata: Vec<u8>) {
        self.metadata = metadata;
    }

    /// Encodes `event` into the open body (opening one if needed); closes the body when it
    /// reaches [`REQUEST_SIZE`]. Returns the events of the body it closed, if it closed one.
    pub fn write(&mut self, event: &Event) -> u64 {
        let mut body = match self.open.take() {
            Some(b) => b,
            None => {
                let mut b = GzEncoder::new(Discard::default(), Compression::fast());
                b.write_all(&self.metadata).expect("Discard never fails");
                self.uncompressed += self.metadata.len() as u64;
                b
            }
        };
        self.line.clear();
        event.write_ndjson(&mut self.line);
        body.write_all(&self.line).expect("Discard never fails");
        self.in_body += 1;
        self.unflushed += self.line.len() as u64;
        self.uncompressed += self.line.len() as u64;
        if self.unflushed >= (REQUEST_SIZE / 4).max(512) {
            body.flush().expect("Discard never fails");
            self.unflushed = 0;
        }
        let full = body.get_ref().bytes >= REQUEST_SIZE;
        self.open = Some(body);
        if full {
            self.close()
        } else {
            0
        }
    }

    /// Closes the open body (as a flush does); returns its events.
    pub fn close(&mut self) -> u64 {
        let Some(body) = self.open.take() else { return 0 };
        let out = body.finish().expect("Discard never fails");
        self.bodies += 1;
        self.compressed += out.bytes;
        self.unflushed = 0;
        std::mem::take(&mut self.in_body)
    }

    /// Bodies closed so far, and their compressed and uncompressed bytes.
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.bodies, self.compressed, self.uncompressed)
    }
}

/// What the sink saw of the reporter thread it runs on, updated at every tick and flush (each
/// follows one drain of the queues).
#[derive(Default)]
pub struct ReporterProbe {
    /// The reporter thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) at its last tick or flush, ns.
    pub cpu_ns: AtomicU64,
    /// Drains (ticks and flushes) so far.
    pub drains: AtomicU64,
    /// Events written so far.
    pub events: AtomicU64,
    /// The most events one drain handed over.
    pub max_drain: AtomicU64,
}

/// A snapshot of a [`ReporterProbe`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeSnapshot {
    /// See [`ReporterProbe::cpu_ns`].
    pub cpu: Duration,
    /// See [`ReporterProbe::drains`].
    pub drains: u64,
    /// See [`ReporterProbe::events`].
    pub events: u64,
    /// See [`ReporterProbe::max_drain`].
    pub max_drain: u64,
}

impl ReporterProbe {
    /// The current values.
    pub fn snapshot(&self) -> ProbeSnapshot {
        ProbeSnapshot {
            cpu: Duration::from_nanos(self.cpu_ns.load(Ordering::Acquire)),
            drains: self.drains.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            max_drain: self.max_drain.load(Ordering::Relaxed),
        }
    }

    /// Resets the largest drain seen (before a measured run: the set-up's flush is not part of it).
    pub fn reset_max_drain(&self) {
        self.max_drain.store(0, Ordering::Relaxed);
    }
}

/// The delivery benchmark's sink: [`IntakeBody`] on the reporter thread. It keeps
/// `Sink::never_blocks` false, as the intake sink does, so every call runs on the agent's
/// reporter thread and a flush wakes it: the application threads never encode.
///
/// Events are confirmed as sent when their body closes or at the next tick or flush, whichever
/// comes first (the intake sink confirms once the server answers, which this sink has no
/// stand-in for).
pub struct GzIntakeSink {
    body: IntakeBody,
    unconfirmed: u64,
    drain: u64,
    probe: Arc<ReporterProbe>,
}

impl GzIntakeSink {
    /// A sink reporting to `probe`.
    pub fn new(probe: Arc<ReporterProbe>) -> GzIntakeSink {
        GzIntakeSink { body: IntakeBody::new(Vec::new()), unconfirmed: 0, drain: 0, probe }
    }

    fn end_of_drain(&mut self, ctx: &SinkContext<'_>) {
        ctx.record_sent(std::mem::take(&mut self.unconfirmed));
        let p = &self.probe;
        p.events.fetch_add(self.drain, Ordering::Relaxed);
        p.max_drain.fetch_max(std::mem::take(&mut self.drain), Ordering::Relaxed);
        p.drains.fetch_add(1, Ordering::Relaxed);
        let cpu = cpu::thread_cpu_time().as_nanos() as u64;
        p.cpu_ns.store(cpu, Ordering::Release);
    }
}

impl Sink for GzIntakeSink {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        if !self.body.has_metadata() {
            let mut m = Vec::new();
            ctx.write_metadata_line(&mut m);
            self.body.set_metadata(m);
        }
        self.unconfirmed += 1;
        self.drain += 1;
        if self.body.write(event) > 0 {
            // An earlier close confirmed its own events, so every unconfirmed one was in this body.
            ctx.record_sent(std::mem::take(&mut self.unconfirmed));
        }
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, _deadline: Instant) {
        self.body.close();
        self.end_of_drain(ctx);
    }

    fn tick(&mut self, ctx: &SinkContext<'_>) {
        self.end_of_drain(ctx);
    }
}

/// The `{"metadata":…}` line an agent built with `config` opens its requests with (for encoding
/// without an agent).
pub fn metadata_line(config: apm_runtime::Config) -> Vec<u8> {
    struct Grab(Arc<Mutex<Vec<u8>>>);
    impl Sink for Grab {
        fn write(&mut self, _: &Event, ctx: &SinkContext<'_>) {
            let mut line = self.0.lock().expect("not poisoned");
            if line.is_empty() {
                ctx.write_metadata_line(&mut line);
            }
            ctx.record_sent(1);
        }
    }
    let line = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent::builder().config(config).sink(Grab(line.clone())).build().expect("agent starts");
    agent.transaction("metadata").start().end();
    assert!(agent.flush(Duration::from_secs(30)), "metadata agent flush");
    drop(agent);
    let line = line.lock().expect("not poisoned").clone();
    line
}
