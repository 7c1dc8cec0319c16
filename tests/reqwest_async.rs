//! `send_traced` on reqwest's async client, in instrumented async code on a multi-thread tokio
//! runtime: exit spans under the right parents, trace headers on the wire.

mod support;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::{span, transaction};
use apm_toolkit::demo_server::DemoServer;
use support::{flush, memory_agent, named};

#[transaction(name = "async handler", type = "request")]
async fn handler(base: String) {
    let client = reqwest::Client::new();
    let _ = client.get(format!("{base}/delay/10")).send_traced().await;
    // An async block handed to another worker carries the transaction.
    let spawned = tokio::spawn(async move { fetch_in_span(&client, format!("{base}/status/404")).await });
    spawned.await.unwrap();
}

#[span(name = "fetch_in_span")]
async fn fetch_in_span(client: &reqwest::Client, url: String) {
    let _ = client.get(url).send_traced().await;
}

#[test]
fn async_requests_are_exit_spans_with_trace_headers() {
    let (agent, sink) = memory_agent(|c| c);
    let remote = DemoServer::start().unwrap();
    let base = remote.base_url();
    let _default = agent.set_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(handler(base));
    drop(rt);
    flush(&agent);

    let (txs, spans) = (sink.transactions(), sink.spans());
    let tx = named(&txs, "async handler");
    let wrapper = named(&spans, "fetch_in_span");
    assert_eq!(wrapper["parent_id"], tx["id"]);
    let exits: Vec<_> = spans.iter().filter(|s| s["type"] == "external").collect();
    assert_eq!(exits.len(), 2);
    let direct = exits.iter().find(|s| s["parent_id"] == tx["id"]).expect("exit span under the transaction");
    let nested = exits.iter().find(|s| s["parent_id"] == wrapper["id"]).expect("exit span under fetch_in_span");
    assert_eq!(direct["outcome"], "success");
    assert_eq!(nested["outcome"], "failure", "404 is a failed exit span");
    assert_eq!(nested["context"]["http"]["status_code"], 404);
    assert!(direct["duration"].as_f64().unwrap() >= 10.0, "covers the request: {}", direct["duration"]);

    for (request, exit) in remote.received().iter().zip([direct, nested]) {
        let tp = &request.headers.iter().find(|(k, _)| k == "traceparent").unwrap().1;
        // Flags 03: sampled, and random (W3C Level 2), as on every trace this agent starts.
        assert_eq!(tp, &format!("00-{}-{}-03", tx["trace_id"].as_str().unwrap(), exit["id"].as_str().unwrap()));
    }
}
