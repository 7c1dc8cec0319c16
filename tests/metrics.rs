//! Metricsets (issue 17) through a real reporter thread into a memory sink with a 1 s interval:
//! schema-valid; system and process figures plausible against `/proc` read here; the breakdown
//! of a parallel fan-out (seven 100 ms spans side by side on a pool under a 120 ms transaction)
//! within 10 % of the expected self times; the agent's health; and metrics switched off.

mod support;

use std::time::{Duration, Instant};

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, Span};
use serde_json::Value;
use support::{memory_agent, schemas};

/// Waits (up to 10 s) until a metricset satisfying `done` arrived; returns all metricsets.
fn wait_for(sink: &MemorySink, agent: &Agent, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        agent.flush(Duration::from_secs(1));
        let sets = sink.metricsets();
        if done(&sets) || Instant::now() > deadline {
            return sets;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sample(set: &Value, name: &str) -> Option<f64> {
    set["samples"][name]["value"].as_f64()
}

fn proc_kb(file: &str, key: &str) -> f64 {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap();
    line[key.len()..].trim_start_matches(':').split_whitespace().next().unwrap().parse::<f64>().unwrap() * 1024.0
}

/// The fan-out: a 120 ms transaction whose seven 100 ms `load_url` spans run in
/// parallel on a pool.
fn fan_out(agent: &Agent) {
    let tx = agent.transaction("GET /dashboard").with_type("request").start();
    let ctx = tx.context();
    let started = Instant::now();
    let pool = threadpool::ThreadPool::new(7);
    for _ in 0..7 {
        let ctx = ctx.clone();
        pool.execute(move || {
            let _a = ctx.attach();
            let span = Span::builder("load_url").with_type("external").subtype("http").start();
            std::thread::sleep(Duration::from_millis(100));
            span.end();
        });
    }
    pool.join();
    std::thread::sleep(Duration::from_millis(120).saturating_sub(started.elapsed()));
    tx.end();
}

#[test]
fn system_process_breakdown_and_health_metricsets_every_interval() {
    let (agent, sink) = memory_agent(|c| c.metrics_interval(Duration::from_secs(1)));
    fan_out(&agent);
    let sets = wait_for(&sink, &agent, |sets| {
        sets.iter().any(|s| s["span"]["type"] == "app")
            && sets.iter().any(|s| sample(s, "system.cpu.total.norm.pct").is_some())
    });
    assert!(!sets.is_empty(), "no metricset within 10 s");
    for set in &sets {
        schemas().check("metricset", set).unwrap_or_else(|e| panic!("{e}: {set:#}"));
    }

    // System and process: plausible against /proc, read now.
    let system = sets.iter().find(|s| sample(s, "system.memory.total").is_some()).expect("a system metricset");
    assert_eq!(sample(system, "system.memory.total").unwrap(), proc_kb("/proc/meminfo", "MemTotal"));
    let free = sample(system, "system.memory.actual.free").unwrap();
    assert!(free > 0.0 && free <= sample(system, "system.memory.total").unwrap());
    let rss = sample(system, "system.process.memory.rss.bytes").unwrap();
    let rss_now = proc_kb("/proc/self/status", "VmRSS");
    assert!(rss > rss_now / 4.0 && rss < rss_now * 4.0, "RSS {rss} vs {rss_now} now");
    assert!(sample(system, "system.process.memory.size").unwrap() >= rss);
    let cpu_sets: Vec<&Value> = sets.iter().filter(|s| sample(s, "system.cpu.total.norm.pct").is_some()).collect();
    for s in &cpu_sets {
        for name in ["system.cpu.total.norm.pct", "system.process.cpu.total.norm.pct"] {
            let v = sample(s, name).unwrap();
            assert!((0.0..=1.0).contains(&v), "{name} = {v}");
        }
        assert_eq!(s["samples"]["system.cpu.total.norm.pct"]["unit"], "percent");
    }

    // Breakdown: the transaction's own time is what no child covered (~20 ms), each child's
    // its whole 100 ms.
    let breakdown = |span_type: &str| {
        sets.iter()
            .find(|s| s["span"]["type"] == span_type && s["transaction"]["name"] == "GET /dashboard")
            .unwrap_or_else(|| panic!("no {span_type} breakdown in {sets:#?}"))
    };
    let app = breakdown("app");
    assert_eq!(app["transaction"]["type"], "request");
    assert_eq!(sample(app, "span.self_time.count"), Some(1.0));
    // Expected from the events themselves (on a loaded machine the transaction may last longer
    // than 120 ms): its duration minus the union of its children's intervals, which overlap.
    let tx = &sink.transactions()[0];
    let spans = sink.spans();
    let tx_start = tx["timestamp"].as_f64().unwrap();
    let tx_us = tx["duration"].as_f64().unwrap() * 1000.0;
    let first = spans.iter().map(|s| s["timestamp"].as_f64().unwrap()).fold(f64::MAX, f64::min);
    let last = spans
        .iter()
        .map(|s| s["timestamp"].as_f64().unwrap() + s["duration"].as_f64().unwrap() * 1000.0)
        .fold(0.0, f64::max);
    assert!(first >= tx_start && last - first < 2.0 * 100_000.0, "the seven spans overlap: {first}..{last}");
    let expected_app = tx_us - (last - first);
    let app_us = sample(app, "span.self_time.sum.us").unwrap();
    assert!(
        (app_us - expected_app).abs() <= 0.1 * expected_app.max(20_000.0),
        "app self time {app_us} µs, expected {expected_app}"
    );
    assert!(
        app_us < tx_us - 90_000.0,
        "the children's 7 × 100 ms are subtracted once, not summed: {app_us} of {tx_us}"
    );
    let http = breakdown("external");
    assert_eq!(http["span"]["subtype"], "http");
    assert_eq!(sample(http, "span.self_time.count"), Some(7.0));
    let http_us = sample(http, "span.self_time.sum.us").unwrap();
    assert!((630_000.0..=770_000.0).contains(&http_us), "7 × 100 ms within 10 %: {http_us}");

    // Health: the events of the interval, nothing dropped.
    // Per interval: summed over the intervals so far (a loaded machine may split the work).
    let health: Vec<&Value> = sets.iter().filter(|s| sample(s, "agent.events.total").is_some()).collect();
    let total: f64 = health.iter().map(|s| sample(s, "agent.events.total").unwrap()).sum();
    assert!(total >= 8.0, "a transaction and seven spans at least: {health:#?}");
    assert!(health.iter().all(|s| sample(s, "agent.events.dropped") == Some(0.0)));
    let health = health[0];
    let fill = sample(health, "agent.events.queue.max_fill_rate").unwrap();
    assert!((0.0..=1.0).contains(&fill));
}

#[test]
fn disabled_metrics_breakdown_off_and_interval_zero_send_less_or_nothing() {
    let (agent, sink) = memory_agent(|c| {
        c.metrics_interval(Duration::from_secs(1))
            .breakdown_metrics(false)
            .disable_metrics(["system.process.*", "agent.*"])
    });
    fan_out(&agent);
    let sets = wait_for(&sink, &agent, |sets| !sets.is_empty());
    assert!(!sets.is_empty());
    for set in &sets {
        assert!(set.get("span").is_none(), "breakdown off: {set:#}");
        let names: Vec<&String> = set["samples"].as_object().unwrap().keys().collect();
        assert!(names.iter().all(|n| n.starts_with("system.") && !n.starts_with("system.process.")), "{names:?}");
    }

    let (agent, sink) = memory_agent(|c| c.metrics_interval(Duration::ZERO));
    fan_out(&agent);
    std::thread::sleep(Duration::from_millis(1200));
    agent.flush(Duration::from_secs(2));
    assert!(sink.metricsets().is_empty(), "METRICS_INTERVAL=0 sends none");
}

#[test]
fn the_metrics_facade_ships_counters_gauges_and_histograms_with_their_labels() {
    apm_runtime::integrations::metrics::install().expect("the only recorder of this test binary");
    let (agent, sink) = memory_agent(|c| c.metrics_interval(Duration::from_secs(1)));
    metrics::counter!("orders.created", "region" => "eu").increment(3);
    metrics::counter!("orders.created", "region" => "eu").increment(2);
    metrics::counter!("orders.created", "region" => "us").increment(1);
    metrics::gauge!("queue.depth").set(42.0);
    metrics::gauge!("queue.depth").decrement(2.0);
    let latency = metrics::histogram!("orders.latency_ms", "region" => "eu");
    for v in [10.0, 10.0, 10.0, 250.0] {
        latency.record(v);
    }
    let sets = wait_for(&sink, &agent, |sets| sets.iter().any(|s| s["samples"].get("orders.latency_ms").is_some()));
    for set in &sets {
        schemas().check("metricset", set).unwrap_or_else(|e| panic!("{e}: {set:#}"));
    }
    // Counters are per interval: the increments may straddle two, so the sum is what counts.
    let created = |region: &str| -> f64 {
        sets.iter()
            .filter(|s| s["tags"]["region"] == region)
            .filter_map(|s| s["samples"]["orders.created"]["value"].as_f64())
            .sum()
    };
    assert_eq!(created("eu"), 5.0, "{sets:#?}");
    assert_eq!(created("us"), 1.0, "{sets:#?}");
    let eu = sets
        .iter()
        .find(|s| s["tags"]["region"] == "eu" && s["samples"].get("orders.latency_ms").is_some())
        .unwrap_or_else(|| panic!("no eu histogram: {sets:#?}"));
    assert_eq!(eu["samples"]["orders.created"]["type"], "counter");
    let histogram = &eu["samples"]["orders.latency_ms"];
    assert_eq!(histogram["type"], "histogram");
    assert_eq!(histogram["counts"], serde_json::json!([3, 1]));
    let values: Vec<f64> = histogram["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((values[0] / 10.0 - 1.0).abs() < 0.1 && (values[1] / 250.0 - 1.0).abs() < 0.1, "{values:?}");
    let untagged = sets.iter().find(|s| s["samples"].get("queue.depth").is_some()).expect("the gauge");
    assert!(untagged.get("tags").is_none());
    assert_eq!(untagged["samples"]["queue.depth"]["value"], 40.0);
}
