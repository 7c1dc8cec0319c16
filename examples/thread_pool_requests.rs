//! The seed scenario: a request handler fetches several URLs on a thread pool, and the trace
//! keeps every fetch under the handler's transaction.
//!
//! ```sh
//! cargo run --example thread_pool_requests            # waterfall in the terminal + HTML file
//! ELASTIC_APM_SERVER_URL=http://localhost:8200 cargo run --example thread_pool_requests
//! ```

use std::time::Duration;

use apm_runtime::report::{MemorySink, NdjsonFileSink};
use apm_runtime::{Agent, Config};
use apm_toolkit::demo_server::DemoServer;
use apm_toolkit::scenario::{dashboard_urls, handle_dashboard};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let remote = DemoServer::start()?;
    let urls = dashboard_urls(&remote);

    let shipping = std::env::var_os("ELASTIC_APM_SERVER_URL").is_some();
    let memory = MemorySink::new();
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&out_dir)?;
    let ndjson = out_dir.join("apm-trace.ndjson");
    let agent = if shipping {
        apm_runtime::init()?
    } else {
        let config = Config::builder().service_name("dashboard").build()?;
        let agent =
            Agent::builder().config(config).sink(memory.clone()).sink(NdjsonFileSink::create(&ndjson)?).build()?;
        agent.install_global();
        agent
    };

    handle_dashboard(&urls);

    agent.flush(Duration::from_secs(5));
    if shipping {
        let stats = agent.stats();
        let waiting =
            stats.queued - stats.sent - stats.compressed - (stats.dropped.send_failed + stats.dropped.rejected);
        println!(
            "sent {} events to {} ({} dropped, {} still waiting for the server)",
            stats.sent,
            agent.config().server_url(),
            stats.dropped.total(),
            waiting
        );
    } else {
        let waterfall = memory.waterfall();
        let color = std::env::var_os("NO_COLOR").is_none();
        println!("{}", waterfall.render_text(terminal_width(), color));
        let html = out_dir.join("apm-waterfall.html");
        std::fs::write(&html, waterfall.render_html("thread_pool_requests"))?;
        println!("HTML waterfall: {}", html.display());
        println!("intake NDJSON:  {}", ndjson.display());
    }
    Ok(())
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(120)
}
