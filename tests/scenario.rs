//! The examples' flows end to end against the loopback intake server: the seed scenario's
//! trace shape, and one trace across two services.

mod support;

use std::sync::Arc;
use std::time::Duration;

use apm_runtime::{Agent, Config};
use apm_toolkit::demo_server::DemoServer;
use apm_toolkit::scenario::{dashboard_urls, handle_checkout, handle_dashboard, start_orders_service};
use serde_json::Value;
use support::intake::IntakeServer;

fn agent(service: &str, intake: &IntakeServer) -> Agent {
    let config = Config::builder()
        .service_name(service)
        .server_url(intake.url())
        .cloud_provider(apm_runtime::CloudProvider::None)
        .build()
        .unwrap();
    Agent::builder().config(config).build().unwrap()
}

fn of<'a>(events: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|(k, _)| k == kind).map(|(_, v)| v).collect()
}

#[test]
fn seed_scenario_external_spans_under_load_url_spans_under_the_transaction() {
    let intake = IntakeServer::start();
    let remote = DemoServer::start().unwrap();
    let urls = dashboard_urls(&remote);
    let agent = agent("dashboard", &intake);
    {
        let _d = agent.set_default();
        handle_dashboard(&urls);
    }
    assert!(agent.flush(Duration::from_secs(10)));
    let events = intake.accepted_events();
    let (txs, spans) = (of(&events, "transaction"), of(&events, "span"));
    assert_eq!(txs.len(), 1);
    let tx = txs[0];
    assert_eq!(tx["name"], "GET /dashboard");
    let load: Vec<&Value> = spans.iter().copied().filter(|s| s["name"] == "load_url").collect();
    let external: Vec<&Value> = spans.iter().copied().filter(|s| s["type"] == "external").collect();
    assert_eq!(load.len(), urls.len());
    assert_eq!(external.len(), urls.len());
    for l in &load {
        assert_eq!(l["parent_id"], tx["id"]);
        assert_eq!(l["sync"], false, "ran on a pool thread");
    }
    for e in &external {
        let parent =
            load.iter().find(|l| l["id"] == e["parent_id"]).expect("each exit span's parent is a load_url span");
        assert_eq!(e["sync"], true, "same thread as its load_url parent");
        assert_eq!(e["subtype"], "http");
        assert_eq!(e["action"], "GET");
        assert_eq!(e["transaction_id"], tx["id"]);
        assert_eq!(e["context"]["destination"]["address"], "127.0.0.1");
        assert_eq!(e["context"]["service"]["target"]["type"], "http");
        let url = e["context"]["http"]["url"].as_str().unwrap();
        let failed = url.ends_with("/status/503");
        assert_eq!(e["outcome"], if failed { "failure" } else { "success" }, "{url}");
        assert_eq!(e["context"]["http"]["status_code"], if failed { 503 } else { 200 });
        let headers = &e["context"]["http"]["response"]["headers"];
        assert_eq!(headers["x-served-by"], "demo-server");
        assert_eq!(headers["set-cookie"], "[REDACTED]", "sanitized by SANITIZE_FIELD_NAMES");
        let _ = parent;
    }
    // Each remote request carried the exit span as its W3C parent.
    let received = remote.received();
    assert_eq!(received.len(), urls.len());
    for r in &received {
        let tp = &r.headers.iter().find(|(k, _)| k == "traceparent").expect("traceparent sent").1;
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts[1], tx["trace_id"].as_str().unwrap());
        assert!(external.iter().any(|e| e["id"] == parts[2]), "parent-id is an exit span: {tp}");
        assert_eq!(parts[3], "03", "sampled, and random (W3C Level 2): this agent started the trace");
        assert!(r.headers.iter().any(|(k, v)| k == "elastic-apm-traceparent" && v == tp));
        assert!(r.headers.iter().any(|(k, v)| k == "tracestate" && v.starts_with("es=s:1")));
    }
}

#[test]
fn two_services_share_one_trace() {
    let intake = IntakeServer::start();
    let frontend = agent("frontend", &intake);
    let orders = Arc::new(agent("orders", &intake));
    let service = start_orders_service(orders.clone()).unwrap();
    {
        let _d = frontend.set_default();
        handle_checkout(&format!("{}/orders", service.base_url()));
    }
    assert!(frontend.flush(Duration::from_secs(10)));
    assert!(orders.flush(Duration::from_secs(10)));

    let events = intake.accepted_events();
    let txs = of(&events, "transaction");
    let spans = of(&events, "span");
    let checkout = txs.iter().find(|t| t["name"] == "GET /checkout").unwrap();
    let downstream: Vec<&&Value> = txs.iter().filter(|t| t["name"] == "GET /orders").collect();
    assert_eq!(downstream.len(), 2);
    for d in downstream {
        assert_eq!(d["trace_id"], checkout["trace_id"], "one trace across both services");
        let exit = spans.iter().find(|s| s["id"] == d["parent_id"]).expect("parent is an exit span of frontend");
        assert_eq!(exit["type"], "external");
        assert_eq!(exit["transaction_id"], checkout["id"]);
        let db = spans.iter().find(|s| s["parent_id"] == d["id"]).expect("orders' own span");
        assert_eq!(db["name"], "SELECT orders");
        assert_eq!(db["trace_id"], checkout["trace_id"]);
    }
    let services: Vec<String> =
        intake.requests().iter().map(|r| r.lines[0].1["service"]["name"].as_str().unwrap().to_string()).collect();
    assert!(services.contains(&"frontend".to_string()) && services.contains(&"orders".to_string()));
}
