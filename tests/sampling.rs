//! Sampling, span limits, the kill switch and distributed-trace continuation.

mod support;

use apm_runtime::{Agent, Config, Span, Transaction};
use support::{flush, memory_agent, schemas};

#[test]
fn sample_rate_samples_about_that_fraction_and_unsampled_cost_no_spans() {
    let (agent, sink) = memory_agent(|c| c.transaction_sample_rate(0.25).max_queue_size(10_000usize));
    for _ in 0..2000 {
        let tx = agent.transaction("t").start();
        tx.context().in_scope(|| {
            let mut s = Span::start("child");
            s.set_label("k", 1);
        });
        tx.end();
    }
    flush(&agent);
    let txs = sink.transactions();
    assert_eq!(txs.len(), 2000, "unsampled transactions are still reported");
    let sampled = txs.iter().filter(|t| t["sampled"] == true).count();
    assert!((400..600).contains(&sampled), "{sampled} of 2000 sampled at 0.25");
    assert_eq!(sink.spans().len(), sampled, "only sampled transactions record spans");
    for t in &txs {
        let expected = if t["sampled"] == true { 0.25 } else { 0.0 };
        assert_eq!(t["sample_rate"], expected);
        if t["sampled"] == false {
            assert_eq!(t["span_count"]["started"], 0);
        }
    }
}

#[test]
fn max_spans_counts_the_rest_as_dropped() {
    let (agent, sink) = memory_agent(|c| c.transaction_max_spans(5u32));
    let tx = agent.transaction("big").start();
    let ctx = tx.context();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let ctx = &ctx;
            s.spawn(move || ctx.in_scope(|| (0..5).for_each(|_| Span::start("s").end())));
        }
    });
    tx.end();
    flush(&agent);
    assert_eq!(sink.spans().len(), 5);
    let t = &sink.transactions()[0];
    assert_eq!(t["span_count"]["started"], 5);
    assert_eq!(t["span_count"]["dropped"], 15);
}

#[test]
fn span_counts_are_exact_when_threads_reserve_slots_in_chunks() {
    // Threads reserve span slots in growing chunks and give back what they did not use when
    // they leave the transaction's context or it ends: the counts must still be exact.
    let (agent, sink) = memory_agent(|c| c.transaction_max_spans(100u32));
    let pool = threadpool::ThreadPool::new(2);
    let tx = agent.transaction("chunks").start();
    {
        let _active = tx.attach();
        (0..10).for_each(|_| Span::start("here").end());
        for _ in 0..3 {
            let ctx = apm_runtime::Context::current();
            pool.execute(move || ctx.in_scope(|| (0..3).for_each(|_| Span::start("there").end())));
        }
        pool.join();
    }
    // Ended while attached elsewhere: its own thread's unused slots come back at the end.
    let tx2 = agent.transaction("ends attached").start();
    let active = tx2.attach();
    (0..6).for_each(|_| Span::start("s").end());
    tx2.end();
    drop(active);
    tx.end();
    flush(&agent);
    let txs = sink.transactions();
    let count = |name: &str| txs.iter().find(|t| t["name"] == name).unwrap()["span_count"].clone();
    assert_eq!(count("chunks")["started"], 19);
    assert_eq!(count("chunks")["dropped"], 0);
    assert_eq!(count("ends attached")["started"], 6);
    assert_eq!(sink.spans().len(), 25);
}

#[test]
fn disabled_agent_records_nothing() {
    let sink = apm_runtime::report::MemorySink::new();
    let config = Config::builder().enabled(false).build().unwrap();
    let agent = Agent::builder().config(config).sink(sink.clone()).build().unwrap();
    let _d = agent.set_default();
    let tx = Transaction::start("off");
    assert!(tx.trace_id().is_none());
    tx.context().in_scope(|| Span::start("off").end());
    tx.end();
    flush(&agent);
    assert!(sink.events().is_empty());
}

#[test]
fn default_agent_is_per_thread_in_tests_and_no_agent_is_a_no_op() {
    assert!(Transaction::start("no agent").trace_id().is_none());
    let (agent, sink) = memory_agent(|c| c);
    {
        let _d = agent.set_default();
        Transaction::start("with default").end();
    }
    assert!(Transaction::start("after guard").trace_id().is_none());
    flush(&agent);
    assert_eq!(sink.transactions().len(), 1);
}

#[test]
fn continues_an_incoming_w3c_trace() {
    let (agent, sink) = memory_agent(|c| c.transaction_sample_rate(0.0));
    let headers = vec![
        ("TraceParent".to_string(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string()),
        ("tracestate".to_string(), "es=s:0.5,other=x".to_string()),
    ];
    let tx = agent.transaction("GET /downstream").continue_from(&headers).start();
    assert!(tx.is_sampled(), "the caller's sampling decision wins over the local rate");
    let ctx = tx.context();
    let tp = ctx.traceparent().unwrap();
    assert_eq!(tp.trace_id, tx.trace_id().unwrap().to_bytes());
    assert_eq!(tp.parent_id, tx.id().unwrap().to_bytes());
    assert!(tp.sampled());
    let state = ctx.tracestate().unwrap();
    assert!(state.starts_with("es=s:0.5"), "{state}");
    assert!(state.contains("other=x"), "{state}");
    ctx.in_scope(|| Span::start("child").end());
    tx.end();

    // Malformed headers start a new trace.
    let bad = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01")];
    let fresh = agent.transaction("bad header").continue_from(&bad).start();
    assert_ne!(fresh.trace_id().unwrap().to_string(), "0af7651916cd43dd8448eb211c80319c");
    assert!(!fresh.is_sampled(), "a new trace samples at the local rate (0 here)");
    fresh.end();

    flush(&agent);
    schemas().check_ndjson(&sink.ndjson());
    let t = &sink.transactions()[0];
    assert_eq!(t["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(t["parent_id"], "b7ad6b7169203331");
    assert_eq!(t["sample_rate"], 0.5);
    assert_eq!(sink.spans()[0]["sample_rate"], 0.5);
}

#[test]
fn unsampled_traces_still_propagate() {
    let (agent, _sink) = memory_agent(|c| c.transaction_sample_rate(0.0));
    let tx = agent.transaction("quiet").start();
    let _a = tx.attach();
    let span = Span::start("not recorded");
    let tp = span.context().traceparent().unwrap();
    assert!(!tp.sampled());
    assert_eq!(tp.parent_id, tx.id().unwrap().to_bytes(), "an unrecorded span passes its parent on");
    assert_eq!(span.context().tracestate().as_deref(), Some("es=s:0"));
}

#[test]
fn a_panic_through_unrecorded_spans_is_still_reported_once_under_the_transaction() {
    // Unrecorded spans stand for their transaction; the one a panic unwinds through reports it,
    // as Elastic's agents report errors of unsampled transactions.
    let (agent, sink) = memory_agent(|c| c.transaction_sample_rate(0.0));
    let tx = agent.transaction("unsampled").start();
    let active = tx.attach();
    let caught = std::panic::catch_unwind(|| {
        let _outer = Span::start("outer");
        let _inner = Span::start("inner");
        panic!("boom in an unsampled transaction");
    });
    assert!(caught.is_err());
    // A span dropped normally after the panic was caught reports nothing more.
    drop(Span::start("after"));
    drop(active);
    let tx_id = tx.context().parent_id().unwrap().to_string();
    tx.end();
    flush(&agent);
    let errors = sink.errors();
    assert_eq!(errors.len(), 1, "reported once, by the innermost span: {errors:?}");
    assert_eq!(errors[0]["exception"]["message"], "boom in an unsampled transaction");
    assert_eq!(errors[0]["parent_id"], tx_id.as_str());
    assert_eq!(errors[0]["transaction"]["sampled"], false);
    assert!(sink.spans().is_empty());
}

#[test]
fn trace_continuation_strategy_restarts_foreign_or_all_traces_and_links_the_caller() {
    use apm_runtime::TraceContinuationStrategy as S;
    const FOREIGN: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let elastic_state = "es=s:1,vendor=x";
    for (strategy, tracestate, continues) in [
        (S::Continue, None, true),
        (S::Continue, Some(elastic_state), true),
        (S::Restart, Some(elastic_state), false),
        (S::Restart, None, false),
        (S::RestartExternal, None, false),
        (S::RestartExternal, Some("vendor=x"), false),
        (S::RestartExternal, Some(elastic_state), true),
    ] {
        let (agent, sink) = memory_agent(|c| c.trace_continuation_strategy(strategy));
        let mut headers = vec![("traceparent", FOREIGN)];
        headers.extend(tracestate.map(|t| ("tracestate", t)));
        let tx = agent.transaction("GET /").continue_from(&headers).start();
        tx.end();
        flush(&agent);
        let t = &sink.transactions()[0];
        let case = format!("{strategy:?} with tracestate {tracestate:?}: {t}");
        if continues {
            assert_eq!(t["trace_id"], "0af7651916cd43dd8448eb211c80319c", "{case}");
            assert_eq!(t["parent_id"], "b7ad6b7169203331", "{case}");
            assert!(t.get("links").is_none(), "{case}");
            // The caller's decision holds: its traceparent said "not sampled".
            assert_eq!(t["sampled"], false, "{case}");
        } else {
            assert_ne!(t["trace_id"], "0af7651916cd43dd8448eb211c80319c", "{case}");
            assert!(t.get("parent_id").is_none(), "a new trace's root: {case}");
            assert_eq!(
                t["links"],
                serde_json::json!([{"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}]),
                "{case}"
            );
            // Sampling is decided here again (rate 1.0 by default), not inherited.
            assert_eq!(t["sampled"], true, "{case}");
        }
        schemas().check_ndjson(&sink.ndjson());
    }
}
