//! Typed exit spans (issue 19): database, messaging and destination context on spans,
//! validated against APM Server's vendored span schema.

mod support;

use apm_runtime::{DbContext, Span};
use support::{flush, memory_agent, named, schemas};

#[test]
fn each_exit_kind_is_schema_valid_with_its_context() {
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("job").start();
    {
        let _active = tx.attach();
        let long = format!("SELECT {} FROM t", "x, ".repeat(5000));
        let mut db = Span::builder("SELECT t").with_type("db").subtype("sqlite").action("query").start();
        db.set_db(DbContext {
            kind: "sql".into(),
            instance: Some("app.db".into()),
            statement: Some(long.clone().into()),
            user: Some("app".into()),
            rows_affected: Some(7),
            link: None,
        });
        db.end();

        let mut q = Span::builder("SEND to jobs").with_type("messaging").subtype("kafka").action("send").start();
        q.set_message("jobs", Some(1500));
        q.set_destination("broker.local", Some(9092));
        q.end();

        let mut redis = Span::builder("GET").with_type("db").subtype("redis").action("query").start();
        redis.set_db(DbContext { kind: "redis".into(), statement: Some("GET k".into()), ..Default::default() });
        redis.set_service_target("redis", None);
        redis.set_destination("10.0.0.7", Some(6379));
        redis.end();
    }
    tx.end();
    flush(&agent);
    let checked = schemas().check_ndjson(&sink.ndjson());
    assert!(checked.iter().filter(|(kind, _)| kind == "span").count() == 3, "{checked:?}");

    let spans = sink.spans();
    let db = named(&spans, "SELECT t");
    let statement = db["context"]["db"]["statement"].as_str().unwrap();
    assert_eq!(statement.chars().count(), 10_000, "statements are cut to 10 000 characters");
    assert!(statement.starts_with("SELECT x, x, "));
    assert_eq!(db["context"]["db"]["type"], "sql");
    assert_eq!(db["context"]["db"]["instance"], "app.db");
    assert_eq!(db["context"]["db"]["user"], "app");
    assert_eq!(db["context"]["db"]["rows_affected"], 7);
    assert_eq!(db["context"]["service"]["target"]["type"], "sqlite");
    assert_eq!(db["context"]["service"]["target"]["name"], "app.db");
    assert_eq!(db["context"]["destination"]["service"]["resource"], "sqlite/app.db", "Elastic's type/name");

    let q = named(&spans, "SEND to jobs");
    assert_eq!(q["context"]["message"]["queue"]["name"], "jobs");
    assert_eq!(q["context"]["message"]["age"]["ms"], 1500);
    assert_eq!(q["context"]["service"]["target"]["type"], "kafka");
    assert_eq!(q["context"]["service"]["target"]["name"], "jobs");
    assert_eq!(q["context"]["destination"]["address"], "broker.local");
    assert_eq!(q["context"]["destination"]["port"], 9092);
    assert_eq!(q["context"]["destination"]["service"]["resource"], "kafka/jobs");

    let redis = named(&spans, "GET");
    assert_eq!(redis["context"]["db"]["type"], "redis");
    assert_eq!(redis["context"]["service"]["target"]["type"], "redis");
    assert!(redis["context"]["service"]["target"].get("name").is_none());
    assert_eq!(redis["context"]["destination"]["service"]["resource"], "redis");
    assert_eq!(redis["context"]["destination"]["port"], 6379);
}

#[test]
fn rusqlite_records_a_real_insert_and_select_with_statements_and_rows() {
    use apm_runtime::integrations::rusqlite::TracedConnection;
    let dir = std::env::temp_dir().join(format!("apm-exit-spans-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("orders.db");
    let _ = std::fs::remove_file(&path);

    // Each statement as its own span (compressed, the three inserts would be one).
    let (agent, sink) = memory_agent(|c| c.span_compression_enabled(false));
    let tx = agent.transaction("orders job").start();
    let names: Vec<String> = tx.context().in_scope(|| {
        let conn = TracedConnection::open(&path).unwrap();
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, name TEXT)", []).unwrap();
        let mut insert = conn.prepare("INSERT INTO orders (name) VALUES (?1)").unwrap();
        for name in ["a", "b", "c"] {
            assert_eq!(insert.execute([name]).unwrap(), 1);
        }
        assert_eq!(conn.execute("UPDATE orders SET name = name || '!' WHERE id > 1", []).unwrap(), 2);
        let mut select = conn.prepare("SELECT name FROM orders ORDER BY id").unwrap();
        select.query_map([], |r| r.get(0)).unwrap()
    });
    assert_eq!(names, ["a", "b!", "c!"]);
    tx.end();
    flush(&agent);
    schemas().check_ndjson(&sink.ndjson());

    let spans = sink.spans();
    assert_eq!(spans.len(), 1 + 3 + 1 + 1);
    let tx_id = &sink.transactions()[0]["id"];
    for s in &spans {
        assert_eq!(
            (s["type"].as_str(), s["subtype"].as_str(), s["action"].as_str()),
            (Some("db"), Some("sqlite"), Some("query"))
        );
        assert_eq!(s["parent_id"], *tx_id);
        assert_eq!(s["context"]["db"]["instance"], "orders.db");
        assert_eq!(s["context"]["service"]["target"]["name"], "orders.db");
    }
    let inserts: Vec<_> = spans.iter().filter(|s| s["name"] == "INSERT orders").collect();
    assert_eq!(inserts.len(), 3);
    assert!(inserts.iter().all(|s| s["context"]["db"]["statement"] == "INSERT INTO orders (name) VALUES (?1)"));
    assert!(inserts.iter().all(|s| s["context"]["db"]["rows_affected"] == 1));
    let update = named(&spans, "UPDATE orders");
    assert_eq!(update["context"]["db"]["rows_affected"], 2);
    let select = named(&spans, "SELECT orders");
    assert_eq!(select["context"]["db"]["statement"], "SELECT name FROM orders ORDER BY id");
    assert_eq!(select["context"]["db"]["rows_affected"], 3);
    assert_eq!(select["outcome"], "success");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exit_spans_below_the_minimum_duration_are_counted_not_sent() {
    let (agent, sink) = memory_agent(|c| c.exit_span_min_duration(std::time::Duration::from_secs(5)));
    let tx = agent.transaction("fast calls").start();
    tx.context().in_scope(|| {
        for i in 0..5 {
            let mut db = Span::builder("SELECT t").with_type("db").subtype("sqlite").action("query").start();
            db.set_db(DbContext { kind: "sql".into(), instance: Some("app.db".into()), ..Default::default() });
            if i == 4 {
                db.set_outcome(apm_runtime::Outcome::Failure);
            }
            db.end();
        }
        // Trace headers went out from this one: downstream names it as parent, so it stays.
        let mut http = Span::builder("GET api").with_type("external").subtype("http").start();
        http.set_http("GET", "http://api:80/", Some(200), "api", Some(80));
        http.end();
        // Not an exit span: never dropped for being short.
        Span::start("compute").end();
    });
    tx.end();
    flush(&agent);
    schemas().check_ndjson(&sink.ndjson());

    let spans = sink.spans();
    let mut names: Vec<_> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["GET api", "compute"]);
    let tx = &sink.transactions()[0];
    assert_eq!(tx["span_count"]["started"], 2);
    assert_eq!(tx["span_count"]["dropped"], 5);
    let stats = tx["dropped_spans_stats"].as_array().unwrap();
    assert_eq!(stats.len(), 2, "one entry per outcome: {stats:?}");
    let ok = stats.iter().find(|s| s["outcome"] == "success").unwrap();
    assert_eq!(ok["destination_service_resource"], "sqlite/app.db");
    assert_eq!(ok["service_target_type"], "sqlite");
    assert_eq!(ok["service_target_name"], "app.db");
    assert_eq!(ok["duration"]["count"], 4);
    let failed = stats.iter().find(|s| s["outcome"] == "failure").unwrap();
    assert_eq!(failed["duration"]["count"], 1);
    let sum: u64 = stats.iter().map(|s| s["duration"]["sum"]["us"].as_u64().unwrap()).sum();
    assert!(sum < 5_000_000, "the summed duration of five fast calls: {sum} µs");
}

#[test]
fn by_default_fast_exit_spans_are_sent() {
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("fast calls").start();
    tx.context().in_scope(|| {
        let mut db = Span::builder("SELECT t").with_type("db").subtype("sqlite").start();
        db.set_db(DbContext { kind: "sql".into(), ..Default::default() });
        db.end();
    });
    tx.end();
    flush(&agent);
    assert_eq!(sink.spans().len(), 1);
    assert!(sink.transactions()[0].get("dropped_spans_stats").is_none());
}

/// One Redis `GET` exit span of the given outcome.
fn redis_get(name: &'static str, outcome: apm_runtime::Outcome) {
    let mut s = Span::builder(name).with_type("db").subtype("redis").action("query").start();
    s.set_db(DbContext { kind: "redis".into(), statement: Some("GET k".into()), ..Default::default() });
    s.set_service_target("redis", Some("cache-1"));
    s.set_outcome(outcome);
    s.end();
}

#[test]
fn five_hundred_identical_fast_calls_arrive_as_one_composite_span() {
    use apm_runtime::Outcome::Success;
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("warm cache").start();
    tx.context().in_scope(|| (0..500).for_each(|_| redis_get("GET k", Success)));
    tx.end();
    flush(&agent);
    // Every line validated against the vendored schemas (`composite` included).
    assert_eq!(schemas().check_ndjson(&sink.ndjson()).len(), 3, "metadata, the composite, the transaction");
    let spans = sink.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let c = &spans[0]["composite"];
    assert_eq!(c["count"], 500);
    assert_eq!(c["compression_strategy"], "exact_match");
    let sum = c["sum"].as_f64().unwrap();
    let duration = spans[0]["duration"].as_f64().unwrap();
    assert!(
        sum > 0.0 && sum <= duration,
        "the sum of the calls ({sum} ms) within first start..last end ({duration} ms)"
    );
    assert_eq!(spans[0]["name"], "GET k");
    assert_eq!(spans[0]["context"]["destination"]["service"]["resource"], "redis/cache-1");
    let stats = agent.stats();
    assert_eq!((stats.queued, stats.sent, stats.compressed), (501, 2, 499));
    let rows = sink.waterfall().render_text(120, false);
    assert!(rows.contains("GET k ×500"), "{rows}");
}

#[test]
fn runs_end_at_another_sibling_or_a_failure_and_same_kind_runs_are_renamed() {
    use apm_runtime::Outcome::{Failure, Success};
    let (agent, sink) =
        memory_agent(|c| c.span_compression_same_kind_max_duration(std::time::Duration::from_millis(5)));
    let tx = agent.transaction("mixed").start();
    tx.context().in_scope(|| {
        // Same destination, other names: `same_kind`, renamed.
        ["GET a", "GET b", "GET c"].into_iter().for_each(|n| redis_get(n, Success));
        redis_get("GET a", Failure); // a failure is never compressed, and ends the run
        (0..3).for_each(|_| redis_get("GET a", Success)); // `exact_match`
        Span::start("compute").end(); // not an exit span: ends the run
        (0..2).for_each(|_| redis_get("GET a", Success));
    });
    tx.end();
    flush(&agent);
    schemas().check_ndjson(&sink.ndjson());
    let spans = sink.spans();
    let shape: Vec<(String, u64)> = spans
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["composite"]["count"].as_u64().unwrap_or(1)))
        .collect();
    let expected: Vec<(String, u64)> =
        [("Calls to redis/cache-1", 3), ("GET a", 1), ("GET a", 3), ("compute", 1), ("GET a", 2)]
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect();
    let mut got = shape;
    got.sort();
    let mut want = expected;
    want.sort();
    assert_eq!(got, want, "{spans:#?}");
    let same_kind = spans.iter().find(|s| s["name"] == "Calls to redis/cache-1").unwrap();
    assert_eq!(same_kind["composite"]["compression_strategy"], "same_kind");
    let failed = spans.iter().find(|s| s["outcome"] == "failure").unwrap();
    assert!(failed.get("composite").is_none());
}

#[test]
fn compression_off_sends_every_span_and_calls_on_a_pool_are_counted_once() {
    use apm_runtime::Outcome::Success;
    let (agent, sink) = memory_agent(|c| c.span_compression_enabled(false));
    let tx = agent.transaction("no compression").start();
    tx.context().in_scope(|| (0..20).for_each(|_| redis_get("GET k", Success)));
    tx.end();
    flush(&agent);
    assert_eq!(sink.spans().len(), 20);
    assert_eq!(agent.stats().compressed, 0);

    // Four threads, 50 calls each: runs form in the order the reporter receives the ends, and
    // every call is in exactly one span or composite.
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("fan-out").start();
    let ctx = tx.context();
    let pool = threadpool::ThreadPool::new(4);
    for _ in 0..4 {
        let ctx = ctx.clone();
        pool.execute(move || ctx.in_scope(|| (0..50).for_each(|_| redis_get("GET k", Success))));
    }
    pool.join();
    tx.end();
    flush(&agent);
    let calls: u64 = sink.spans().iter().map(|s| s["composite"]["count"].as_u64().unwrap_or(1)).sum();
    assert_eq!(calls, 200);
    assert!(sink.spans().len() < 200, "compressed on the reporter: {}", sink.spans().len());
    let stats = agent.stats();
    assert_eq!(stats.sent + stats.compressed, stats.queued);
}

#[test]
fn exit_spans_past_the_span_limit_are_counted_in_dropped_spans_stats() {
    use apm_runtime::Outcome::{Failure, Success};
    let (agent, sink) = memory_agent(|c| c.transaction_max_spans(2u32));
    let tx = agent.transaction("busy").start();
    tx.context().in_scope(|| {
        Span::start("first").end();
        Span::start("second").end();
        (0..3).for_each(|_| redis_get("GET k", Success));
        (0..2).for_each(|_| redis_get("GET k", Failure));
        // Past the limit, a span stands for its parent: what it contains lands there.
        let over = Span::start("over the limit");
        assert!(!over.is_recording());
        let _in = over.attach();
        apm_runtime::capture_error(&std::io::Error::other("inside a dropped span"));
    });
    tx.end();
    flush(&agent);
    schemas().check_ndjson(&sink.ndjson());
    let tx = &sink.transactions()[0];
    assert_eq!(tx["span_count"]["started"], 2);
    assert_eq!(tx["span_count"]["dropped"], 6);
    let stats = tx["dropped_spans_stats"].as_array().unwrap();
    let by_outcome = |o: &str| stats.iter().find(|s| s["outcome"] == o).unwrap_or_else(|| panic!("{stats:#?}"));
    assert_eq!(by_outcome("success")["duration"]["count"], 3);
    assert_eq!(by_outcome("failure")["duration"]["count"], 2);
    assert_eq!(by_outcome("success")["destination_service_resource"], "redis/cache-1");
    assert_eq!(by_outcome("success")["service_target_type"], "redis");
    assert_eq!(stats.len(), 2, "the plain span past the limit is no exit: {stats:#?}");
    assert_eq!(sink.errors()[0]["parent_id"], tx["id"], "the error of a dropped span belongs to its parent");
}

#[apm_runtime::span(type = "db", subtype = "redis", action = "query", exit)]
fn cached_lookup() -> Option<String> {
    // The client library's own instrumentation, inside the exit span: not recorded.
    apm_runtime::Span::start("redis-client internals").end();
    apm_runtime::Context::current().traceparent().map(|t| t.to_string())
}

#[test]
fn exit_spans_are_leaves_and_headers_sent_inside_name_them() {
    let (agent, sink) = memory_agent(|c| c.span_compression_enabled(false));
    let tx = agent.transaction("leaves").start();
    let (header, manual_header) = tx.context().in_scope(|| {
        let header = cached_lookup().expect("a traceparent inside the exit span");
        let span = Span::builder("GET /rates").with_type("external").subtype("http").exit().start();
        let _in = span.attach();
        let inner = Span::builder("http-client internals").start();
        assert!(!inner.is_recording(), "a child of an exit span is not recorded");
        let manual = apm_runtime::Context::current().traceparent().unwrap().to_string();
        drop(inner);
        (header, manual)
    });
    tx.end();
    flush(&agent);
    schemas().check_ndjson(&sink.ndjson());
    let spans = sink.spans();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "only the two exit spans: {names:?}");
    let lookup = named(&spans, "cached_lookup");
    assert_eq!((lookup["type"].as_str(), lookup["subtype"].as_str()), (Some("db"), Some("redis")));
    assert!(header.contains(lookup["id"].as_str().unwrap()), "{header} names the exit span");
    let rates = named(&spans, "GET /rates");
    assert!(manual_header.contains(rates["id"].as_str().unwrap()), "{manual_header}");
    assert_eq!(sink.transactions()[0]["span_count"]["started"], 2);
}
