//! Central configuration and the server's version, against a loopback APM Server: settings made
//! in Kibana change what the next transactions do, removed ones revert, invalid ones are skipped,
//! an unchanged configuration costs a 304, and an 8.0+ server gets no unsampled transactions.

mod support;

use std::time::{Duration, Instant};

use apm_runtime::{Agent, Config, ConfigBuilder};
use support::intake::{ConfigAnswer, IntakeServer};

fn agent_for(server: &IntakeServer, tweak: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Agent {
    let config = tweak(
        Config::builder()
            .service_name("central-test")
            .environment("prod")
            .server_url(server.url())
            .cloud_provider(apm_runtime::CloudProvider::None),
    );
    Agent::builder().config(config.build().unwrap()).build().unwrap()
}

fn answer(status: u16, etag: Option<&str>, body: &str) -> ConfigAnswer {
    let mut headers = vec![("Cache-Control".to_string(), "max-age=1".to_string())];
    headers.extend(etag.map(|e| ("ETag".to_string(), e.to_string())));
    ConfigAnswer { status, headers, body: body.to_string() }
}

/// Waits until `pred` holds for the configuration in force.
fn wait_for_live(agent: &Agent, what: &str, pred: impl Fn(&Config) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(&agent.live_config()) {
        assert!(Instant::now() < deadline, "central configuration never reached: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config_gets(server: &IntakeServer) -> Vec<support::intake::Get> {
    server.gets().into_iter().filter(|g| g.target.starts_with("/config/v1/agents")).collect()
}

#[test]
fn kibana_settings_apply_to_new_transactions_revert_when_removed_and_skip_invalid_values() {
    let server = IntakeServer::start();
    server.set_central_config(answer(
        200,
        Some("\"v1\""),
        r#"{"transaction_sample_rate":"0","transaction_max_spans":"2"}"#,
    ));
    let agent = agent_for(&server, |c| c);
    wait_for_live(&agent, "sample rate 0", |c| c.transaction_sample_rate() == 0.0);
    assert_eq!(agent.live_config().transaction_max_spans(), 2);
    assert_eq!(agent.config().transaction_sample_rate(), 1.0, "the local configuration stays as built");
    assert!(!agent.transaction("after").start().is_sampled(), "the next transaction follows Kibana");
    let first = &config_gets(&server)[0];
    assert_eq!(first.target, "/config/v1/agents?service.name=central-test&service.environment=prod");
    assert!(first.header("if-none-match").is_none());

    // Unchanged: the server answers 304 to the ETag it gave; nothing changes.
    server.set_central_config(answer(304, Some("\"v1\""), ""));
    assert!(server
        .wait_for_gets(Duration::from_secs(10), |g| g.iter().any(|g| g.header("if-none-match") == Some("\"v1\""))));
    assert_eq!(agent.live_config().transaction_sample_rate(), 0.0);

    // Removed in Kibana: back to the local value.
    server.set_central_config(answer(200, Some("\"v2\""), "{}"));
    wait_for_live(&agent, "the local sample rate again", |c| c.transaction_sample_rate() == 1.0);
    assert_eq!(agent.live_config().transaction_max_spans(), 500);
    assert!(agent.transaction("reverted").start().is_sampled());

    // One invalid value and one option that is not dynamic: both skipped, the rest applies.
    server.set_central_config(answer(
        200,
        Some("\"v3\""),
        r#"{"transaction_sample_rate":"lots","transaction_max_spans":"7","server_url":"http://elsewhere"}"#,
    ));
    wait_for_live(&agent, "max spans 7", |c| c.transaction_max_spans() == 7);
    let live = agent.live_config();
    assert_eq!(live.transaction_sample_rate(), 1.0, "the invalid value left the local one");
    assert_eq!(live.server_url(), server.url(), "not a dynamic option");

    // recording=false from Kibana: nothing recorded, and back.
    server.set_central_config(answer(200, Some("\"v4\""), r#"{"recording":"false"}"#));
    wait_for_live(&agent, "recording off", |c| !c.recording());
    assert!(agent.transaction("off").start().trace_id().is_none());
    server.set_central_config(answer(200, Some("\"v5\""), "{}"));
    wait_for_live(&agent, "recording on", |c| c.recording());
    assert!(agent.transaction("on").start().trace_id().is_some());
}

#[test]
fn without_central_configuration_on_the_server_the_agent_runs_on_its_local_values() {
    let server = IntakeServer::start();
    let agent = agent_for(&server, |c| c.transaction_sample_rate(0.5));
    assert!(server.wait_for_gets(Duration::from_secs(10), |g| g.iter().any(|g| g.target.starts_with("/config/"))));
    agent.transaction("t").start().end();
    assert!(agent.flush(Duration::from_secs(10)));
    assert_eq!(agent.live_config().transaction_sample_rate(), 0.5);
    assert_eq!(config_gets(&server).len(), 1, "a 404 is asked again only after the default interval");
}

#[test]
fn central_config_false_asks_nothing_but_the_version() {
    let server = IntakeServer::start();
    server.set_central_config(answer(200, None, r#"{"transaction_sample_rate":"0"}"#));
    let agent = agent_for(&server, |c| c.central_config(false));
    assert!(server.wait_for_gets(Duration::from_secs(10), |g| g.iter().any(|g| g.target == "/")));
    std::thread::sleep(Duration::from_millis(300));
    assert!(config_gets(&server).is_empty());
    assert_eq!(agent.live_config().transaction_sample_rate(), 1.0);
}

/// An unsampled and a sampled transaction, through an agent whose server reports `version`.
fn unsampled_sent_to(version: &str) -> Vec<String> {
    let server = IntakeServer::start();
    server.set_version(Some(version));
    let agent = agent_for(&server, |c| c);
    // The poller asks the version first, then central configuration: once that GET arrived, the
    // version is known.
    assert!(server.wait_for_gets(Duration::from_secs(10), |g| g.iter().any(|g| g.target.starts_with("/config/"))));
    let unsampled = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")];
    agent.transaction("unsampled").continue_from(&unsampled).start().end();
    agent.transaction("sampled").start().end();
    assert!(agent.flush(Duration::from_secs(10)));
    assert_eq!(agent.stats().sent, 2, "both accounted for as delivered");
    server.accepted_events().iter().map(|(_, e)| e["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn an_apm_server_8_gets_no_unsampled_transactions_and_a_7_gets_them() {
    assert_eq!(unsampled_sent_to("8.15.0"), ["sampled"]);
    assert_eq!(unsampled_sent_to("7.17.3"), ["unsampled", "sampled"]);
}
