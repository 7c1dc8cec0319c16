//! A sink that writes the intake's NDJSON to a file: the trace stays inspectable (and can be
//! replayed to a server with `curl --data-binary`) when no server is configured.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{DropReason, Sink, SinkContext};
use crate::model::event::Event;

/// Writes a metadata line, then one line per event, to a file.
///
/// ```
/// let path = std::env::temp_dir().join("apm-doc-example.ndjson");
/// let sink = apm_runtime::report::NdjsonFileSink::create(&path).unwrap();
/// let agent = apm_runtime::Agent::builder().sink(sink).build().unwrap();
/// agent.transaction("t").start().end();
/// drop(agent);
/// let text = std::fs::read_to_string(&path).unwrap();
/// assert!(text.starts_with("{\"metadata\":"));
/// assert!(text.lines().nth(1).unwrap().starts_with("{\"transaction\":"));
/// ```
pub struct NdjsonFileSink {
    path: PathBuf,
    out: BufWriter<File>,
    wrote_metadata: bool,
    /// Events written to the buffer but not yet known to be on disk.
    unflushed: u64,
    line: Vec<u8>,
}

impl NdjsonFileSink {
    /// Creates (or truncates) the file at `path`.
    ///
    /// ```
    /// let path = std::env::temp_dir().join("apm-doc-create.ndjson");
    /// assert!(apm_runtime::report::NdjsonFileSink::create(&path).is_ok());
    /// ```
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<NdjsonFileSink> {
        let path = path.as_ref().to_path_buf();
        let out = BufWriter::new(File::create(&path)?);
        Ok(NdjsonFileSink { path, out, wrote_metadata: false, unflushed: 0, line: Vec::new() })
    }

    /// The file being written.
    ///
    /// ```
    /// let path = std::env::temp_dir().join("apm-doc-path.ndjson");
    /// let sink = apm_runtime::report::NdjsonFileSink::create(&path).unwrap();
    /// assert_eq!(sink.path(), path);
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn settle(&mut self, ctx: &SinkContext<'_>) {
        match self.out.flush() {
            Ok(()) => ctx.record_sent(self.unflushed),
            Err(e) => {
                eprintln!("[apm] writing {} failed: {e}", self.path.display());
                ctx.record_dropped(DropReason::SendFailed, self.unflushed);
            }
        }
        self.unflushed = 0;
    }
}

impl Sink for NdjsonFileSink {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        self.line.clear();
        if !self.wrote_metadata {
            ctx.write_metadata_line(&mut self.line);
            self.wrote_metadata = true;
        }
        event.write_ndjson(&mut self.line);
        match self.out.write_all(&self.line) {
            Ok(()) => self.unflushed += 1,
            Err(e) => {
                eprintln!("[apm] writing {} failed: {e}", self.path.display());
                ctx.record_dropped(DropReason::SendFailed, 1);
            }
        }
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, _deadline: Instant) {
        self.settle(ctx);
    }

    fn tick(&mut self, ctx: &SinkContext<'_>) {
        if self.unflushed > 0 {
            self.settle(ctx);
        }
    }
}
