//! The seed scenario: a request handler fetches several URLs on a thread pool, and the trace
//! keeps every fetch under the handler's transaction.
//!
//! ```sh
//! cargo run --example thread_pool_requests            # waterfall in the terminal + HTML file
//! ELASTIC_APM_SERVER_URL=http://localhost:8200 cargo run --example thread_pool_requests
//! ```

use std::time::Duration;

use apm_runtime::report::{MemorySink, NdjsonFileSink};
use apm_runtime::{Agent, Config, Context, Outcome, Span};
use apm_toolkit::demo_server::DemoServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let remote = DemoServer::start()?;
    let base = remote.base_url();
    let urls: Vec<String> = [120, 60, 90, 30, 150, 45]
        .iter()
        .map(|ms| format!("{base}/delay/{ms}"))
        .chain([format!("{base}/status/503")])
        .collect();

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
        println!("sent {} events to {} ({} dropped)", stats.sent, agent.config().server_url(), stats.dropped.total());
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

/// The handler: one transaction, the fetches fanned out over a 4-thread pool.
fn handle_dashboard(urls: &[String]) {
    let tx = apm_runtime::Transaction::builder("GET /dashboard").with_type("request").start();
    let _active = tx.attach();
    let pool = threadpool::ThreadPool::with_name("pool".into(), 4);
    let client = reqwest::blocking::Client::new();
    for url in urls {
        let (client, url) = (client.clone(), url.clone());
        // Capture the handler's context here; the pool thread attaches it around the task.
        pool.execute(Context::current().wrap(move || load_url(&client, &url)));
    }
    pool.join();
}

/// One fetch: an application span with the HTTP exit span inside.
fn load_url(client: &reqwest::blocking::Client, url: &str) {
    let span = Span::builder("load_url").start();
    let _in_span = span.attach();
    let parsed = reqwest::Url::parse(url).expect("valid URL");
    let host = parsed.host_str().unwrap_or("").to_string();
    let mut exit = Span::builder(format!("GET {host}")).with_type("external").subtype("http").action("GET").start();
    let mut request = client.get(url);
    if let Some(tp) = exit.context().traceparent() {
        request = request.header("traceparent", tp.to_header());
    }
    let status = request.send().map(|r| r.status().as_u16());
    exit.set_http("GET", url, status.as_ref().ok().copied(), &host, parsed.port());
    if !matches!(status, Ok(s) if s < 400) {
        exit.set_outcome(Outcome::Failure);
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(120)
}
