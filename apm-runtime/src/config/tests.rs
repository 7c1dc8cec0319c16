use std::time::Duration;

use super::*;

fn from(pairs: &[(&str, &str)]) -> (Config, Vec<ConfigWarning>) {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[test]
fn defaults_match_elastic_agents() {
    let (c, warnings) = from(&[]);
    assert!(warnings.is_empty());
    assert!(c.enabled);
    assert_eq!(c.server_url, "http://localhost:8200");
    assert_eq!(c.transaction_sample_rate, 1.0);
    assert_eq!(c.transaction_max_spans, 500);
    assert_eq!(c.api_request_time, Duration::from_secs(10));
    assert_eq!(c.api_request_size, 768 * 1024);
    assert!(c.verify_server_cert);
    assert!(!c.service_name.is_empty());
    assert!(c.options().all(|o| o.source() == ConfigSource::Default));
}

/// Every default is itself a valid value that reads back to the same text: the table cannot
/// hold a default its own parser would refuse.
#[test]
fn every_default_parses_back_to_itself() {
    let defaults = Config::defaults();
    for (i, spec) in OPTIONS.iter().enumerate() {
        let text = defaults.origins[i].text.clone();
        let mut probe = Config::defaults();
        assert_eq!((spec.check)(&mut probe), Ok(()), "{}", spec.name);
        if text.is_empty() {
            continue;
        }
        assert_eq!((spec.apply)(&mut probe, &text), Ok(()), "{}={text:?}", spec.name);
        assert_eq!((spec.show)(&probe), text, "{}", spec.name);
    }
}

#[test]
fn the_table_names_each_variable_after_its_option() {
    for spec in OPTIONS {
        assert_eq!(spec.env, format!("ELASTIC_APM_{}", spec.name.to_ascii_uppercase()));
    }
    let dynamic: Vec<_> = OPTIONS.iter().filter(|o| o.dynamic).map(|o| o.name).collect();
    assert!(dynamic.contains(&"transaction_sample_rate") && !dynamic.contains(&"server_url"), "{dynamic:?}");
}

#[test]
fn values_read_from_the_environment_are_marked_so() {
    let (c, warnings) = from(&[("ELASTIC_APM_API_REQUEST_TIME", "500ms"), ("ELASTIC_APM_ENABLED", "nope")]);
    let time = c.options().find(|o| o.name() == "api_request_time").unwrap();
    assert_eq!((time.value(), time.source()), ("500ms", ConfigSource::Environment));
    let enabled = c.options().find(|o| o.name() == "enabled").unwrap();
    assert_eq!((enabled.value(), enabled.source()), ("true", ConfigSource::Default));
    assert_eq!(warnings.len(), 1);
}

#[test]
fn empty_variables_count_as_unset() {
    let (c, warnings) = from(&[("ELASTIC_APM_SERVER_URL", "  "), ("ELASTIC_APM_ENABLED", "")]);
    assert!(warnings.is_empty());
    assert_eq!(c.server_url, "http://localhost:8200");
}

#[test]
fn code_overrides_the_environment_and_is_checked() {
    let builder = ConfigBuilder::from_lookup(|n| (n == "ELASTIC_APM_SERVICE_NAME").then(|| "from-env".into()));
    let c = builder.clone().service_name("from-code").build().unwrap();
    assert_eq!(c.service_name, "from-code");
    let source = |c: &Config| c.options().find(|o| o.name() == "service_name").unwrap().source();
    assert_eq!(source(&c), ConfigSource::Code);
    assert_eq!(source(&builder.build().unwrap()), ConfigSource::Environment);
    let err = Config::builder().service_name("a/b").build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid ELASTIC_APM_SERVICE_NAME=\"a/b\": only letters, digits, spaces, '_' and '-' are allowed"
    );
}

#[test]
fn secrets_never_show() {
    let (c, _) = from(&[("ELASTIC_APM_SECRET_TOKEN", "hunter2"), ("ELASTIC_APM_API_KEY", "k3y")]);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("k3y") && dbg.contains("[REDACTED]"), "{dbg}");
    assert_eq!(c.authorization().as_deref(), Some("ApiKey k3y"));
    let (c, warnings) = from(&[("ELASTIC_APM_SECRET_TOKEN", "sécret")]);
    assert_eq!(c.secret_token, None);
    assert_eq!(
        warnings[0].to_string(),
        "invalid ELASTIC_APM_SECRET_TOKEN=\"[REDACTED]\": must be printable ASCII; leaving it unset"
    );
    let err = Config::builder().api_key("kéy").build().unwrap_err();
    assert!(!err.to_string().contains("kéy"), "{err}");
    let (_, warnings) = Config::builder().build().unwrap().with_central([("api_key", "x")]);
    assert_eq!(warnings[0].value(), "[REDACTED]");
}

#[test]
fn debug_shows_values_as_written() {
    let (c, _) = from(&[
        ("ELASTIC_APM_SPAN_COMPRESSION_SAME_KIND_MAX_DURATION", "0"),
        ("ELASTIC_APM_API_REQUEST_TIME", "500ms"),
    ]);
    let dbg = format!("{c:?}");
    assert!(dbg.contains("span_compression_same_kind_max_duration: 0,"), "{dbg}");
    assert!(dbg.contains("api_request_time: 500ms,"), "{dbg}");
    let c = Config::builder().server_timeout(Duration::from_millis(1500)).build().unwrap();
    assert!(format!("{c:?}").contains("server_timeout: 1500ms,"), "{c:?}");
}

#[test]
fn central_configuration_overrides_dynamic_options_and_reverts() {
    let local = Config::builder().transaction_max_spans(10u32).build().unwrap();
    let (live, warnings) = local.with_central([
        ("transaction_max_spans", "20"),
        ("capture_body", "ALL"),
        ("transaction_sample_rate", "1.2"),
        ("no_such_option", "1"),
    ]);
    assert_eq!(live.transaction_max_spans, 20);
    assert_eq!(live.capture_body, CaptureBody::All);
    assert_eq!(live.transaction_sample_rate, 1.0);
    let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "invalid transaction_sample_rate=\"1.2\": must be between 0 and 1; keeping the local value 1",
            "invalid no_such_option=\"1\": not an option central configuration can change; ignoring it",
        ]
    );
    let spans = live.options().find(|o| o.name() == "transaction_max_spans").unwrap();
    assert_eq!((spans.value(), spans.source()), ("20", ConfigSource::Central));
    // The next answer no longer has the setting: applied over the local config, it is back.
    let (reverted, _) = local.with_central([("capture_body", "all")]);
    assert_eq!(reverted.transaction_max_spans, 10);
}

#[test]
fn sample_rate_rounds_to_four_decimals_but_never_to_zero() {
    assert_eq!(round_sample_rate(0.55555), 0.5556);
    assert_eq!(round_sample_rate(0.00001), 0.0001);
    assert_eq!(round_sample_rate(0.0), 0.0);
    assert_eq!(round_sample_rate(1.0), 1.0);
}

#[test]
fn server_urls() {
    for bad in ["ftp://apm:8200", "apm:8200", "http://", "http://apm:port", "http:// x"] {
        assert!(server_url(&mut bad.to_string()).is_err(), "{bad}");
    }
    for (good, stored) in [("https://apm:8200/", "https://apm:8200"), ("http://[::1]:8200", "http://[::1]:8200")] {
        let mut url = good.to_string();
        assert_eq!(server_url(&mut url), Ok(()));
        assert_eq!(url, stored);
    }
}
