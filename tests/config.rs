//! Every option from the environment and from the builder: units, Elastic's defaults, and what a
//! bad value gets (a warning and the default from the environment, an error from code). The
//! environment is read through `Config::from_lookup`, so these tests share no process state;
//! one test runs a child process to check the real environment and the logged lines.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, CaptureBody, CloudProvider, Config, ConfigSource, TraceContinuationStrategy};
use support::{flush, memory_agent, schemas};

fn env(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let (config, warnings) = Config::from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    (config, warnings.iter().map(ToString::to_string).collect())
}

const CA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

/// One option read from the environment: a good value and what the getter then says, and, where
/// the option can refuse anything, a bad value and the warning it gets.
struct Case {
    var: &'static str,
    good: &'static str,
    check: fn(&Config) -> bool,
    bad: Option<(&'static str, &'static str)>,
}

fn case(
    var: &'static str,
    good: &'static str,
    check: fn(&Config) -> bool,
    bad: Option<(&'static str, &'static str)>,
) -> Case {
    Case { var, good, check, bad }
}

fn cases() -> Vec<Case> {
    vec![
        case("ENABLED", "FALSE", |c| !c.enabled(), Some(("no", "expected true or false; using the default true"))),
        case("RECORDING", "false", |c| !c.recording(), Some(("0", "expected true or false; using the default true"))),
        case("SERVICE_NAME", "my service", |c| c.service_name() == "my service", None),
        case("SERVICE_VERSION", "1.0", |c| c.service_version() == Some("1.0"), None),
        case("SERVICE_NODE_NAME", "node-1", |c| c.service_node_name() == Some("node-1"), None),
        case("ENVIRONMENT", "prod", |c| c.environment() == Some("prod"), None),
        case("HOSTNAME", "h1", |c| c.hostname() == Some("h1"), None),
        case(
            "GLOBAL_LABELS",
            "team=core, tier = 1",
            |c| c.global_labels() == [("team".into(), "core".into()), ("tier".into(), "1".into())],
            Some(("team=core,oops", "expected key=value pairs separated by commas, got \"oops\"; leaving it unset")),
        ),
        case(
            "SERVER_URL",
            "https://apm.local:8200/",
            |c| c.server_url() == "https://apm.local:8200",
            Some(("apm:8200", "must start with http:// or https://; using the default http://localhost:8200")),
        ),
        case("SECRET_TOKEN", "tok", |c| format!("{c:?}").contains("secret_token: [REDACTED]"), None),
        case("API_KEY", "key", |c| format!("{c:?}").contains("api_key: [REDACTED]"), None),
        case(
            "SERVER_TIMEOUT",
            "1m",
            |c| c.server_timeout() == Duration::from_secs(60),
            Some(("0s", "must be more than zero; using the default 30s")),
        ),
        case(
            "SERVER_CA_CERT_FILE",
            CA_FILE,
            |c| c.server_ca_cert_file() == Some(std::path::Path::new(CA_FILE)),
            Some(("/no/such/ca.pem", "no such file; leaving it unset")),
        ),
        case("VERIFY_SERVER_CERT", "false", |c| !c.verify_server_cert(), None),
        case(
            "API_REQUEST_SIZE",
            "1MB",
            |c| c.api_request_size() == 1 << 20,
            Some(("12parsecs", "expected a size like 768kb (units b, kb, mb, gb); using the default 768kb")),
        ),
        case(
            "API_REQUEST_TIME",
            "250ms",
            |c| c.api_request_time() == Duration::from_millis(250),
            Some((
                "10 s",
                "expected a whole number with a unit (ms, s or m), like 500ms or 10s; using the default 10s",
            )),
        ),
        case(
            "MAX_QUEUE_SIZE",
            "10",
            |c| c.max_queue_size() == 10,
            Some(("0", "must be more than zero; using the default 16384")),
        ),
        case(
            "SHUTDOWN_TIMEOUT",
            "1s",
            |c| c.shutdown_timeout() == Duration::from_secs(1),
            Some(("-1s", "must not be negative; using the default 5s")),
        ),
        case(
            "TRANSACTION_SAMPLE_RATE",
            "0.33333",
            |c| c.transaction_sample_rate() == 0.3333,
            Some(("1.5", "must be between 0 and 1; using the default 1")),
        ),
        case(
            "TRANSACTION_MAX_SPANS",
            "7",
            |c| c.transaction_max_spans() == 7,
            Some(("-1", "expected a non-negative whole number; using the default 500")),
        ),
        case(
            "STACK_TRACE_LIMIT",
            "-1",
            |c| c.stack_trace_limit() == -1,
            Some(("-2", "must be -1 (all frames), 0 (none) or a number of frames; using the default 50")),
        ),
        case(
            "SPAN_STACK_TRACE_MIN_DURATION",
            "-1ms",
            |c| c.span_stack_trace_min_duration().is_none(),
            Some((
                "5",
                "expected a whole number with a unit (ms, s or m), like 500ms or 10s (a bare number is ambiguous); \
                 using the default 5ms",
            )),
        ),
        case(
            "EXIT_SPAN_MIN_DURATION",
            "250us",
            |c| c.exit_span_min_duration() == Duration::from_micros(250),
            Some((
                "1.5ms",
                "expected a whole number with a unit (us, ms, s or m), like 500ms or 10s; using the default 0ms",
            )),
        ),
        case(
            "SPAN_COMPRESSION_ENABLED",
            "false",
            |c| !c.span_compression_enabled(),
            Some(("off", "expected true or false; using the default true")),
        ),
        case(
            "SPAN_COMPRESSION_EXACT_MATCH_MAX_DURATION",
            "10ms",
            |c| c.span_compression_exact_match_max_duration() == Duration::from_millis(10),
            Some((
                "10MS",
                "expected a whole number with a unit (ms, s or m), like 500ms or 10s; using the default 50ms",
            )),
        ),
        case(
            "SPAN_COMPRESSION_SAME_KIND_MAX_DURATION",
            "5ms",
            |c| c.span_compression_same_kind_max_duration() == Duration::from_millis(5),
            Some(("-5ms", "must not be negative; using the default 0ms")),
        ),
        case("CAPTURE_HEADERS", "false", |c| !c.capture_headers(), None),
        case(
            "CAPTURE_BODY",
            "Transactions",
            |c| c.capture_body() == CaptureBody::Transactions,
            Some(("some", "expected off, errors, transactions or all; using the default off")),
        ),
        case(
            "SANITIZE_FIELD_NAMES",
            "*pin*, (?-i)X-Secret",
            |c| {
                let names = c.sanitize_field_names();
                names.len() == 2
                    && names[0].matches("PIN")
                    && names[1].matches("X-Secret")
                    && !names[1].matches("x-secret")
            },
            None,
        ),
        case(
            "TRANSACTION_IGNORE_URLS",
            "/health*,/metrics",
            |c| {
                c.transaction_ignore_urls().iter().filter(|w| w.matches("/healthz") || w.matches("/METRICS")).count()
                    == 2
            },
            None,
        ),
        case("USE_PATH_AS_TRANSACTION_NAME", "true", |c| c.use_path_as_transaction_name(), None),
        case(
            "METRICS_INTERVAL",
            "0",
            |c| c.metrics_interval().is_zero(),
            Some((
                "30",
                "expected a whole number with a unit (ms, s or m), like 500ms or 10s (a bare number is ambiguous); \
                 using the default 30s",
            )),
        ),
        case(
            "DISABLE_METRICS",
            "system.*",
            |c| c.disable_metrics().iter().any(|w| w.matches("system.cpu.total.norm.pct")),
            None,
        ),
        case(
            "BREAKDOWN_METRICS",
            "false",
            |c| !c.breakdown_metrics(),
            Some(("yes", "expected true or false; using the default true")),
        ),
        case("CENTRAL_CONFIG", "false", |c| !c.central_config(), None),
        case(
            "CLOUD_PROVIDER",
            "AWS",
            |c| c.cloud_provider() == CloudProvider::Aws,
            Some(("digitalocean", "expected auto, aws, gcp, azure or none; using the default auto")),
        ),
        case(
            "LOG_LEVEL",
            "critical",
            |c| c.log_level().as_str() == "ERROR",
            Some((
                "verbose",
                "expected trace, debug, info, warning, error, critical or off; using the default warning",
            )),
        ),
        case(
            "TRACE_CONTINUATION_STRATEGY",
            "restart_external",
            |c| c.trace_continuation_strategy() == TraceContinuationStrategy::RestartExternal,
            Some(("restart-external", "expected continue, restart or restart_external; using the default continue")),
        ),
        case("DISABLE_SEND", "true", |c| c.disable_send(), None),
        case("USE_ELASTIC_TRACEPARENT_HEADER", "false", |c| !c.use_elastic_traceparent_header(), None),
        case("CAPTURE_PROCESS_ARGS", "true", |c| c.capture_process_args(), None),
    ]
}

#[test]
fn every_option_is_read_from_the_environment() {
    let defaults = Config::builder().build().unwrap();
    for case in cases() {
        let var = format!("ELASTIC_APM_{}", case.var);
        let (config, warnings) = env(&[(&var, case.good)]);
        assert!(warnings.is_empty(), "{var}={:?}: {warnings:?}", case.good);
        assert!((case.check)(&config), "{var}={:?} not applied: {config:?}", case.good);
        assert!(!(case.check)(&defaults), "{var}: the check passes on the defaults too, so it proves nothing");
        let option = config.options().find(|o| o.variable() == var).unwrap();
        assert_eq!(option.source(), ConfigSource::Environment, "{var}");
    }
}

#[test]
fn a_bad_value_gets_one_warning_and_the_default() {
    let defaults = Config::builder().build().unwrap();
    for case in cases() {
        let Some((bad, message)) = case.bad else { continue };
        let var = format!("ELASTIC_APM_{}", case.var);
        let (config, warnings) = env(&[(&var, bad)]);
        assert_eq!(warnings, [format!("invalid {var}={bad:?}: {message}")]);
        assert_eq!(format!("{config:?}"), format!("{defaults:?}"), "{var}={bad:?} left the default in place");
    }
}

#[test]
fn the_cases_cover_every_option() {
    let config = Config::builder().build().unwrap();
    let table: BTreeSet<String> = config.options().map(|o| o.variable().to_string()).collect();
    let tested: BTreeSet<String> = cases().iter().map(|c| format!("ELASTIC_APM_{}", c.var)).collect();
    assert_eq!(table, tested);
    for wanted in ["EXIT_SPAN_MIN_DURATION", "SPAN_COMPRESSION_ENABLED", "TRACE_CONTINUATION_STRATEGY", "DISABLE_SEND"]
    {
        assert!(table.contains(&format!("ELASTIC_APM_{wanted}")), "{wanted}");
    }
}

#[test]
fn several_bad_values_warn_once_each_and_secrets_stay_hidden() {
    let (config, warnings) = env(&[
        ("ELASTIC_APM_SECRET_TOKEN", "pässword"),
        ("ELASTIC_APM_SERVICE_NAME", "bad/name"),
        ("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "half"),
        ("ELASTIC_APM_SERVICE_NODE_NAME", &"n".repeat(1025)),
    ]);
    let exe = Config::builder().build().unwrap().service_name().to_string();
    assert_eq!(
        warnings,
        [
            "invalid ELASTIC_APM_SERVICE_NAME=\"bad/name\": only letters, digits, spaces, '_' and '-' are allowed; \
             using the default "
                .to_string()
                + &exe,
            format!(
                "invalid ELASTIC_APM_SERVICE_NODE_NAME={:?}: must be at most 1024 characters; leaving it unset",
                "n".repeat(1025)
            ),
            "invalid ELASTIC_APM_SECRET_TOKEN=\"[REDACTED]\": must be printable ASCII; leaving it unset".into(),
            "invalid ELASTIC_APM_TRANSACTION_SAMPLE_RATE=\"half\": expected a number; using the default 1".into(),
        ]
    );
    assert!(!format!("{config:?}{warnings:?}").contains("pässword"));
    assert_eq!(config.service_name(), exe);
}

#[test]
fn every_option_has_a_builder_setter() {
    let config = Config::builder()
        .enabled(false)
        .recording(false)
        .service_name("svc")
        .service_version("2")
        .service_node_name("node")
        .environment("env")
        .hostname("host")
        .global_labels([("k", "v")])
        .server_url("http://apm:8200")
        .secret_token("t")
        .api_key("k")
        .server_timeout(Duration::from_secs(1))
        .server_ca_cert_file(CA_FILE)
        .verify_server_cert(false)
        .api_request_size(1024u64)
        .api_request_time(Duration::from_millis(500))
        .max_queue_size(8usize)
        .shutdown_timeout(Duration::ZERO)
        .transaction_sample_rate(0.5)
        .transaction_max_spans(3u32)
        .stack_trace_limit(0)
        .span_stack_trace_min_duration(Duration::ZERO)
        .exit_span_min_duration(Duration::from_micros(10))
        .span_compression_enabled(false)
        .span_compression_exact_match_max_duration(Duration::from_millis(1))
        .span_compression_same_kind_max_duration(Duration::from_millis(2))
        .capture_headers(false)
        .capture_body(CaptureBody::Errors)
        .sanitize_field_names(["x"])
        .transaction_ignore_urls(["/x"])
        .use_path_as_transaction_name(true)
        .metrics_interval(Duration::from_secs(60))
        .disable_metrics(["m"])
        .breakdown_metrics(false)
        .central_config(false)
        .cloud_provider(CloudProvider::Gcp)
        .log_level("info".parse().unwrap())
        .trace_continuation_strategy(TraceContinuationStrategy::Restart)
        .disable_send(true)
        .use_elastic_traceparent_header(false)
        .capture_process_args(true)
        .build()
        .unwrap();
    let not_from_code: Vec<_> =
        config.options().filter(|o| o.source() != ConfigSource::Code).map(|o| o.name()).collect();
    assert!(not_from_code.is_empty(), "options without a setter in this test: {not_from_code:?}");
    let shown: Vec<String> = config.options().map(|o| format!("{}={}", o.name(), o.value())).collect();
    for expected in [
        "api_request_size=1kb",
        "api_request_time=500ms",
        "shutdown_timeout=0ms",
        "metrics_interval=1m",
        "exit_span_min_duration=10us",
        "secret_token=[REDACTED]",
        "capture_body=errors",
        "log_level=info",
        "global_labels=k=v",
    ] {
        assert!(shown.iter().any(|s| s == expected), "{expected} not in {shown:?}");
    }
    assert_eq!(config.span_stack_trace_min_duration(), Some(Duration::ZERO));
    assert_eq!(config.metrics_interval(), Duration::from_secs(60));
}

#[test]
fn bad_values_set_in_code_are_errors() {
    let errors = [
        Config::builder().server_url("apm:8200").build(),
        Config::builder().service_name("").build(),
        Config::builder().transaction_sample_rate(f64::NAN).build(),
        Config::builder().api_request_time(Duration::ZERO).build(),
        Config::builder().server_timeout(Duration::ZERO).build(),
        Config::builder().api_request_size(0u64).build(),
        Config::builder().max_queue_size(0usize).build(),
        Config::builder().stack_trace_limit(-5).build(),
        Config::builder().global_labels([("k", "v".repeat(1025))]).build(),
        Config::builder().server_ca_cert_file("/no/such/ca.pem").build(),
        Config::builder().secret_token("tökén").build(),
    ]
    .map(|r| r.unwrap_err().to_string());
    let long = "v".repeat(1025);
    assert_eq!(
        errors,
        [
            "invalid ELASTIC_APM_SERVER_URL=\"apm:8200\": must start with http:// or https://".to_string(),
            "invalid ELASTIC_APM_SERVICE_NAME=\"\": only letters, digits, spaces, '_' and '-' are allowed".into(),
            "invalid ELASTIC_APM_TRANSACTION_SAMPLE_RATE=\"NaN\": must be between 0 and 1".into(),
            "invalid ELASTIC_APM_API_REQUEST_TIME=\"0ms\": must be more than zero".into(),
            "invalid ELASTIC_APM_SERVER_TIMEOUT=\"0ms\": must be more than zero".into(),
            "invalid ELASTIC_APM_API_REQUEST_SIZE=\"0b\": must be more than zero".into(),
            "invalid ELASTIC_APM_MAX_QUEUE_SIZE=\"0\": must be more than zero".into(),
            "invalid ELASTIC_APM_STACK_TRACE_LIMIT=\"-5\": must be -1 (all frames), 0 (none) or a number of frames".into(),
            format!("invalid ELASTIC_APM_GLOBAL_LABELS=\"k={long}\": the value of label \"k\" is longer than 1024 characters"),
            "invalid ELASTIC_APM_SERVER_CA_CERT_FILE=\"/no/such/ca.pem\": no such file".into(),
            "invalid ELASTIC_APM_SECRET_TOKEN=\"[REDACTED]\": must be printable ASCII".into(),
        ]
    );
}

#[test]
fn debug_shows_durations_and_sizes_as_written() {
    let (config, _) = env(&[
        ("ELASTIC_APM_EXIT_SPAN_MIN_DURATION", "0"),
        ("ELASTIC_APM_API_REQUEST_TIME", "500ms"),
        ("ELASTIC_APM_API_REQUEST_SIZE", "1MB"),
    ]);
    let dbg = format!("{config:?}");
    for shown in ["exit_span_min_duration: 0,", "api_request_time: 500ms,", "api_request_size: 1MB,"] {
        assert!(dbg.contains(shown), "{shown} not in {dbg}");
    }
    assert!(!dbg.contains("0ns"), "{dbg}");
}

#[test]
fn node_name_and_global_labels_reach_the_metadata() {
    let (agent, sink) =
        memory_agent(|c| c.service_node_name("node-7").global_labels([("team.name", "core"), ("tier", "1")]));
    agent.transaction("t").start().end();
    flush(&agent);
    let m = sink.metadata().unwrap();
    schemas().check("metadata", &m).unwrap();
    assert_eq!(m["service"]["node"]["configured_name"], "node-7");
    assert_eq!(m["labels"], serde_json::json!({"team_name": "core", "tier": "1"}));

    let (agent, sink) = memory_agent(|c| c);
    agent.transaction("t").start().end();
    flush(&agent);
    let m = sink.metadata().unwrap();
    assert!(m.get("labels").is_none() && m["service"].get("node").is_none(), "{m}");
}

/// With bad values in the real environment, the agent starts, records, and says once per bad
/// value what it used instead, on stderr when the application installed no logger.
#[test]
fn bad_values_in_the_real_environment_warn_and_the_agent_runs() {
    if std::env::var_os("APM_CONFIG_CHILD").is_some() {
        let config = Config::from_env().expect("from_env never fails");
        assert_eq!(config.transaction_sample_rate(), 1.0);
        let sink = MemorySink::new();
        let agent = Agent::builder().config(config).sink(sink.clone()).build().unwrap();
        agent.transaction("still running").start().end();
        flush(&agent);
        assert_eq!(sink.transactions().len(), 1);
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "bad_values_in_the_real_environment_warn_and_the_agent_runs", "--nocapture"]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ELASTIC_APM_")) {
        cmd.env_remove(k);
    }
    cmd.env("APM_CONFIG_CHILD", "1")
        .env("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "lots")
        .env("ELASTIC_APM_API_KEY", "kéy")
        .env("ELASTIC_APM_SERVCE_NAME", "typo");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("[apm]")).collect();
    assert_eq!(
        lines,
        [
            "[apm] invalid ELASTIC_APM_API_KEY=\"[REDACTED]\": must be printable ASCII; leaving it unset",
            "[apm] invalid ELASTIC_APM_TRANSACTION_SAMPLE_RATE=\"lots\": expected a number; using the default 1",
            "[apm] ELASTIC_APM_SERVCE_NAME is not an option of this agent (did you mean ELASTIC_APM_SERVICE_NAME?); \
             ignoring it",
        ]
    );
    assert!(!stderr.contains("kéy"));
}
