//! Every kind of event the runtime emits validates against Elastic APM Server's own schemas
//! (vendored under tests/fixtures/apm-server-spec, see its README for the source commit).

mod support;

use apm_runtime::{capture_error, Context, Outcome, Span};
use support::{flush, memory_agent, named, schemas};

#[test]
fn the_validator_accepts_elastics_own_examples_and_rejects_broken_events() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apm-server-spec/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap();
        checked += schemas().check_ndjson(&body).len();
    }
    assert!(checked > 20, "checked {checked} example lines");

    // A validator that accepts everything would pass the above; prove it can fail.
    let no_duration = serde_json::json!({"id": "ab", "trace_id": "cd", "type": "t", "span_count": {"started": 0}});
    assert!(schemas().check("transaction", &no_duration).is_err());
    let bad_outcome = serde_json::json!({"id":"a","trace_id":"b","parent_id":"c","name":"n","type":"t","duration":1.0,"timestamp":1,"outcome":"meh"});
    assert!(schemas().check("span", &bad_outcome).is_err());
    let bad_service = serde_json::json!({"service": {"name": "a/b", "agent": {"name": "rust", "version": "1"}}});
    assert!(schemas().check("metadata", &bad_service).is_err());
}

#[test]
fn every_event_kind_validates() {
    let (agent, sink) = memory_agent(|c| c.service_version("1.2.3").environment("test").transaction_max_spans(3u32));
    // A transaction with labels of each type, spans (one with HTTP exit context), a handled
    // error, and dropped spans past TRANSACTION_MAX_SPANS.
    let mut tx = agent.transaction("GET /users").with_type("request").start();
    tx.set_label("region", "eu-west-1");
    tx.set_label("retries", 3);
    tx.set_label("ratio", 0.25);
    tx.set_label("cached", true);
    tx.set_label("key.with*odd\"chars", "sanitized");
    tx.set_result("HTTP 2xx");
    {
        let _active = tx.attach();
        let mut db = Span::builder("SELECT users").with_type("db").subtype("postgresql").action("query").start();
        db.set_label("rows", 10u64);
        db.end();
        let mut http = Span::builder("GET api").with_type("external").subtype("http").action("GET").start();
        http.set_http("GET", "http://api.local:8080/users?id=1", Some(503), "api.local", Some(8080));
        http.set_outcome(Outcome::Failure);
        http.end();
        capture_error(&std::io::Error::other("disk full"));
        for i in 0..4 {
            Span::start(format!("extra {i}")).end();
        }
    }
    tx.end();

    // An unsampled transaction.
    let (unsampled_agent, unsampled_sink) = memory_agent(|c| c.transaction_sample_rate(0.0));
    let tx = unsampled_agent.transaction("ignored").start();
    tx.context().in_scope(|| Span::start("not recorded").end());
    tx.end();

    // A panic inside a span.
    let tx = agent.transaction("panicking job").start();
    let ctx = tx.context();
    let joined = std::thread::spawn(move || {
        let _g = ctx.attach();
        let _s = Span::start("explodes");
        panic!("boom: {}", 42);
    })
    .join();
    assert!(joined.is_err());
    tx.end();

    flush(&agent);
    flush(&unsampled_agent);
    for s in [&sink, &unsampled_sink] {
        let events = schemas().check_ndjson(&s.ndjson());
        assert!(events.len() > 1);
    }

    let txs = sink.transactions();
    let users = named(&txs, "GET /users");
    assert_eq!(users["context"]["tags"]["region"], "eu-west-1");
    assert_eq!(users["context"]["tags"]["retries"], 3.0);
    assert_eq!(users["context"]["tags"]["ratio"], 0.25);
    assert_eq!(users["context"]["tags"]["cached"], true);
    assert_eq!(users["context"]["tags"]["key_with_odd_chars"], "sanitized");
    assert_eq!(users["result"], "HTTP 2xx");
    assert_eq!(users["span_count"]["started"], 3);
    assert_eq!(users["span_count"]["dropped"], 3);
    assert_eq!(users["sampled"], true);
    assert_eq!(users["sample_rate"], 1.0);

    let spans = sink.spans();
    assert_eq!(spans.len(), 3 + 1, "3 recorded spans in GET /users, 1 in the panicking job");
    let http = named(&spans, "GET api");
    assert_eq!(http["context"]["http"]["status_code"], 503);
    assert_eq!(http["context"]["destination"]["address"], "api.local");
    assert_eq!(http["context"]["service"]["target"]["type"], "http");
    assert_eq!(http["outcome"], "failure");

    let unsampled = &unsampled_sink.transactions()[0];
    assert_eq!(unsampled["sampled"], false);
    assert_eq!(unsampled["sample_rate"], 0.0);
    assert!(unsampled_sink.spans().is_empty());

    let errors = sink.errors();
    assert_eq!(errors.len(), 2);
    let disk = errors.iter().find(|e| e["exception"]["message"] == "disk full").unwrap();
    assert_eq!(disk["transaction_id"], users["id"]);
    assert_eq!(disk["parent_id"], users["id"]);
    assert_eq!(disk["exception"]["type"], "std::io::error::Error");
    let panic = errors.iter().find(|e| e["exception"]["type"] == "panic").unwrap();
    assert_eq!(panic["exception"]["message"], "boom: 42");
    assert_eq!(panic["exception"]["handled"], false);
    assert_eq!(panic["parent_id"], named(&spans, "explodes")["id"]);
    assert!(panic["culprit"].as_str().unwrap().contains("tests/schema.rs"));
    assert_eq!(named(&spans, "explodes")["outcome"], "failure");
    assert_eq!(named(&txs, "panicking job")["outcome"], "success", "the panic stayed on the worker");
    let _ = Context::current();
}

#[test]
fn metadata_describes_service_agent_process_and_system() {
    let (agent, sink) = memory_agent(|c| c.service_version("9.9").environment("staging").hostname("configured-host"));
    agent.transaction("t").start().end();
    flush(&agent);
    let m = sink.metadata().unwrap();
    schemas().check("metadata", &m).unwrap();
    assert_eq!(m["service"]["name"], "test-service");
    assert_eq!(m["service"]["version"], "9.9");
    assert_eq!(m["service"]["environment"], "staging");
    assert_eq!(m["service"]["agent"]["name"], "rust");
    assert_eq!(m["service"]["language"]["name"], "Rust");
    assert!(m["service"]["language"]["version"].as_str().unwrap().starts_with("1."));
    assert_eq!(m["process"]["pid"], std::process::id());
    assert_eq!(m["system"]["configured_hostname"], "configured-host");
    assert!(!m["system"]["detected_hostname"].as_str().unwrap().is_empty());
    assert_eq!(m["system"]["architecture"], std::env::consts::ARCH);
    assert_eq!(m["system"]["platform"], std::env::consts::OS);
}

#[test]
fn ids_timestamps_and_durations_have_the_intake_units() {
    let (agent, sink) = memory_agent(|c| c);
    let before_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let tx = agent.transaction("timed").start();
    tx.context().in_scope(|| {
        let s = Span::start("sleep 20ms");
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.end();
    });
    tx.end();
    flush(&agent);
    let t = &sink.transactions()[0];
    let s = &sink.spans()[0];
    let hex = |v: &serde_json::Value, len: usize| {
        let s = v.as_str().unwrap();
        assert_eq!(s.len(), len, "{s}");
        assert!(s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{s}");
    };
    hex(&t["trace_id"], 32);
    hex(&t["id"], 16);
    hex(&s["id"], 16);
    assert_eq!(s["trace_id"], t["trace_id"]);
    assert_eq!(s["transaction_id"], t["id"]);
    assert_eq!(s["parent_id"], t["id"]);
    assert_eq!(s["sync"], true);
    let ts = t["timestamp"].as_u64().unwrap();
    assert!(ts >= before_us && ts < before_us + 5_000_000, "epoch µs: {ts} vs {before_us}");
    let d = s["duration"].as_f64().unwrap();
    assert!((20.0..5_000.0).contains(&d), "duration in ms: {d}");
    assert!(s["timestamp"].as_u64().unwrap() >= ts);
    assert!(t["duration"].as_f64().unwrap() >= d);
}
