//! The `tracing` bridge: a nightly export job instrumented with `tracing` spans and `tracing`
//! logs, mixed with the agent's macros, fanning out on a thread pool — where `tracing` alone
//! loses the parent. Every `tracing` span lands under its transaction, the ERROR log becomes an
//! error event with its cause, and the log lines (ECS JSON on stderr) carry the `trace.id`,
//! `transaction.id` and `span.id` that the waterfall shows.
//!
//! ```sh
//! cargo run --example tracing_bridge 2>logs.ndjson   # waterfall on stdout, ECS log lines in the file
//! ELASTIC_APM_SERVER_URL=http://localhost:8200 cargo run --example tracing_bridge
//! ```

use std::time::Duration;

use apm_runtime::integrations::tracing::{layer, EcsFormat};
use apm_runtime::{propagate, span, transaction};
use apm_toolkit::job::JobAgent;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let job = JobAgent::start("exporter")?;
    // The bridge first, so that an ERROR line knows the id of the error it became.
    tracing_subscriber::registry()
        .with(layer())
        .with(tracing_subscriber::fmt::layer().event_format(EcsFormat::new()).with_writer(std::io::stderr))
        .try_init()?;

    export(&["eu", "us", "apac", "latam"]);

    job.finish();
    if let Some(memory) = job.memory() {
        // The ids the log lines on stderr carry.
        for tx in memory.transactions() {
            println!(
                "transaction {} of trace {}",
                tx["id"].as_str().unwrap_or(""),
                tx["trace_id"].as_str().unwrap_or("")
            );
        }
        for span in memory.spans() {
            println!("  span {} {}", span["id"].as_str().unwrap_or(""), span["name"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// The job: one region per pool task; each reads its rows (a `tracing` span with database
/// fields, as a client library would open it) and writes a file (one of our spans).
#[transaction(name = "nightly export", type = "job")]
#[propagate]
fn export(regions: &[&'static str]) {
    tracing::info!(regions = regions.len(), "export started");
    let pool = threadpool::ThreadPool::with_name("exporter".into(), 4);
    for &region in regions {
        pool.execute(move || {
            let _region = tracing::info_span!("export_region", region).entered();
            let rows = read_rows(region);
            write_file(region, rows);
            if region == "latam" {
                let err = ExportError { region, source: std::io::Error::other("bucket is read-only") };
                tracing::error!(error = &err as &(dyn std::error::Error + 'static), region, "export failed");
            } else {
                tracing::info!(region, rows, "region exported");
            }
        });
    }
    pool.join();
}

fn read_rows(region: &str) -> u64 {
    let _query = tracing::info_span!(
        "SELECT orders",
        db.system = "postgresql",
        db.name = "sales",
        db.statement = "SELECT * FROM orders WHERE region = $1 AND day = current_date - 1",
        server.address = "db.internal",
        server.port = 5432,
        otel.kind = "client",
    )
    .entered();
    std::thread::sleep(Duration::from_millis(15));
    region.len() as u64 * 100
}

#[span(type = "storage", subtype = "file")]
fn write_file(region: &str, rows: u64) {
    std::thread::sleep(Duration::from_millis(5 + rows / 100));
    tracing::debug!(region, "file written");
}

#[derive(Debug)]
struct ExportError {
    region: &'static str,
    source: std::io::Error,
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exporting {} failed", self.region)
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
