//! Distributed tracing across two services: `frontend` calls `orders` over HTTP, and the
//! waterfall shows one trace, the orders transaction a child of frontend's exit span.
//!
//! ```sh
//! cargo run --example two_services
//! ```

use std::sync::Arc;
use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::waterfall::Waterfall;
use apm_runtime::{Agent, Config};
use apm_toolkit::scenario::{handle_checkout, start_orders_service};

fn agent(service: &str, sink: &MemorySink) -> Result<Agent, Box<dyn std::error::Error>> {
    let config = Config::builder().service_name(service).build()?;
    Ok(Agent::builder().config(config).sink(sink.clone()).build()?)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (frontend_sink, orders_sink) = (MemorySink::new(), MemorySink::new());
    let frontend = agent("frontend", &frontend_sink)?;
    let orders = Arc::new(agent("orders", &orders_sink)?);
    let orders_service = start_orders_service(orders.clone())?;

    let _default = frontend.set_default();
    handle_checkout(&format!("{}/orders", orders_service.base_url()));

    frontend.flush(Duration::from_secs(5));
    orders.flush(Duration::from_secs(5));
    let waterfall = Waterfall::new([frontend_sink.rows(), orders_sink.rows()].concat());
    println!("{}", waterfall.render_text(120, std::env::var_os("NO_COLOR").is_none()));
    let html = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/apm-two-services.html");
    std::fs::write(&html, waterfall.render_html("two_services"))?;
    println!("HTML waterfall: {}", html.display());
    Ok(())
}
