//! One getter per option on [`Config`], one setter per option on [`ConfigBuilder`]. Options whose
//! capability is not built yet say so in their docs (and in [`ConfigOption::pending`]).
//!
//! [`ConfigOption::pending`]: super::ConfigOption::pending

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CaptureBody, CloudProvider, Config, ConfigBuilder, Opt, TraceContinuationStrategy, Wildcard};

macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty $(=> $conv:ident)?;)*) => {
        impl Config {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> $ty {
                    self.$name$(.$conv())?
                }
            )*
        }
    };
}

getters! {
    /// `ELASTIC_APM_ENABLED` (default `true`). When false, every transaction and span is a no-op.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().enabled());
    /// ```
    enabled: bool;
    /// `ELASTIC_APM_RECORDING` (default `true`, dynamic): when false the agent records nothing but
    /// keeps polling central configuration, so Kibana can switch it back on. Read when the agent
    /// is built (switching it from Kibana waits for central configuration).
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().recording());
    /// ```
    recording: bool;
    /// `ELASTIC_APM_SERVICE_NAME` (default: the executable's name, reduced to the allowed characters).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().service_name("api").build().unwrap();
    /// assert_eq!(c.service_name(), "api");
    /// ```
    service_name: &str => as_str;
    /// `ELASTIC_APM_SERVICE_VERSION`.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().service_version("1.2.3").build().unwrap();
    /// assert_eq!(c.service_version(), Some("1.2.3"));
    /// ```
    service_version: Option<&str> => as_deref;
    /// `ELASTIC_APM_SERVICE_NODE_NAME`: names this instance among several of one service
    /// (`service.node.configured_name` in the metadata).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().service_node_name("pod-7").build().unwrap();
    /// assert_eq!(c.service_node_name(), Some("pod-7"));
    /// ```
    service_node_name: Option<&str> => as_deref;
    /// `ELASTIC_APM_ENVIRONMENT`.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().environment("prod").build().unwrap();
    /// assert_eq!(c.environment(), Some("prod"));
    /// ```
    environment: Option<&str> => as_deref;
    /// `ELASTIC_APM_HOSTNAME`: overrides the detected host name in the metadata.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().hostname("web-1").build().unwrap();
    /// assert_eq!(c.hostname(), Some("web-1"));
    /// ```
    hostname: Option<&str> => as_deref;
    /// `ELASTIC_APM_GLOBAL_LABELS` (`key=value,key=value`): labels on every event, sent once in the
    /// metadata.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().global_labels([("team", "core")]).build().unwrap();
    /// assert_eq!(c.global_labels(), [("team".to_string(), "core".to_string())]);
    /// ```
    global_labels: &[(String, String)] => as_slice;
    /// `ELASTIC_APM_SERVER_URL` (default `http://localhost:8200`), without a trailing slash.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().server_url("https://apm:8200/").build().unwrap();
    /// assert_eq!(c.server_url(), "https://apm:8200");
    /// ```
    server_url: &str => as_str;
    /// `ELASTIC_APM_SERVER_TIMEOUT` (default 30s): how long one request to the server may take.
    /// Zero (Elastic's "no timeout") is refused: a hanging server must not stall the reporter.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.server_timeout(), std::time::Duration::from_secs(30));
    /// ```
    server_timeout: Duration;
    /// `ELASTIC_APM_SERVER_CA_CERT_FILE`: a PEM file of the CA that signed the server's
    /// certificate; must exist. When set, the server's certificate is checked against the
    /// certificates in this file alone (a private CA), not the system's trusted roots.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().server_ca_cert_file("Cargo.toml").build().unwrap();
    /// assert_eq!(c.server_ca_cert_file(), Some(std::path::Path::new("Cargo.toml")));
    /// ```
    server_ca_cert_file: Option<&Path> => as_deref;
    /// `ELASTIC_APM_VERIFY_SERVER_CERT` (default `true`).
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().verify_server_cert());
    /// ```
    verify_server_cert: bool;
    /// `ELASTIC_APM_API_REQUEST_SIZE` (default 768kb): compressed bytes after which a request closes.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().api_request_size(), 768 * 1024);
    /// ```
    api_request_size: u64;
    /// `ELASTIC_APM_API_REQUEST_TIME` (default 10s): how long one intake request stays open.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.api_request_time(), std::time::Duration::from_secs(10));
    /// ```
    api_request_time: Duration;
    /// `ELASTIC_APM_MAX_QUEUE_SIZE` (default 16384): events waiting for the reporter; past it, new
    /// events are dropped and counted rather than blocking the application. Spans wait in one
    /// queue per thread (rounded up to a power of two), transactions and errors in one shared
    /// queue; each holds at most this many. The default keeps a thread ending a million spans a
    /// second from dropping any (2048 slots fill in two milliseconds at that rate, less than the
    /// reporter may need to be scheduled); it costs 128 KiB of ring per thread that ends spans.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().max_queue_size(), 16384);
    /// ```
    max_queue_size: usize;
    /// `ELASTIC_APM_SHUTDOWN_TIMEOUT` (default 5s): how long shutting down (at exit, `shutdown()`,
    /// or dropping a non-default agent) waits to deliver.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.shutdown_timeout(), std::time::Duration::from_secs(5));
    /// ```
    shutdown_timeout: Duration;
    /// `ELASTIC_APM_TRANSACTION_SAMPLE_RATE` (default 1, dynamic), rounded to 4 decimals as
    /// Elastic's agents do.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().transaction_sample_rate(0.123456).build().unwrap();
    /// assert_eq!(c.transaction_sample_rate(), 0.1235);
    /// ```
    transaction_sample_rate: f64;
    /// `ELASTIC_APM_TRANSACTION_MAX_SPANS` (default 500, dynamic): spans past this many per
    /// transaction are counted in `span_count.dropped` instead of being recorded.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().transaction_max_spans(), 500);
    /// ```
    transaction_max_spans: u32;
    /// `ELASTIC_APM_STACK_TRACE_LIMIT` (default 50, dynamic): frames per stack trace; 0 none,
    /// -1 all. Parsed; used once stack traces are captured.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().stack_trace_limit(), 50);
    /// ```
    stack_trace_limit: i32;
    /// `ELASTIC_APM_SPAN_STACK_TRACE_MIN_DURATION` (default 5ms, dynamic): spans at least this
    /// long get a stack trace; `0ms` all of them, a negative value (`None`) none. Parsed; used
    /// once stack traces are captured.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.span_stack_trace_min_duration(), Some(std::time::Duration::from_millis(5)));
    /// ```
    span_stack_trace_min_duration: Option<Duration>;
    /// `ELASTIC_APM_EXIT_SPAN_MIN_DURATION` (default 0ms, dynamic, units down to `us`): shorter
    /// exit spans that sent no trace headers are not sent, but counted in the transaction's
    /// `span_count.dropped` and `dropped_spans_stats` (read as each transaction starts).
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().exit_span_min_duration().is_zero());
    /// ```
    exit_span_min_duration: Duration;
    /// `ELASTIC_APM_SPAN_COMPRESSION_ENABLED` (default `true`, dynamic). Parsed; used once span
    /// compression lands.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().span_compression_enabled());
    /// ```
    span_compression_enabled: bool;
    /// `ELASTIC_APM_SPAN_COMPRESSION_EXACT_MATCH_MAX_DURATION` (default 50ms, dynamic). Parsed;
    /// used once span compression lands.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.span_compression_exact_match_max_duration(), std::time::Duration::from_millis(50));
    /// ```
    span_compression_exact_match_max_duration: Duration;
    /// `ELASTIC_APM_SPAN_COMPRESSION_SAME_KIND_MAX_DURATION` (default 0ms, dynamic). Parsed; used
    /// once span compression lands.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert!(c.span_compression_same_kind_max_duration().is_zero());
    /// ```
    span_compression_same_kind_max_duration: Duration;
    /// `ELASTIC_APM_CAPTURE_HEADERS` (default `true`, dynamic): the tower layer records request
    /// and response headers (sensitive values `[REDACTED]`) only when it is on.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().capture_headers());
    /// ```
    capture_headers: bool;
    /// `ELASTIC_APM_CAPTURE_BODY` (default `off`, dynamic): which request bodies the tower layer
    /// records (text content types, the first 10 000 bytes, form fields sanitized).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.capture_body(), apm_runtime::CaptureBody::Off);
    /// ```
    capture_body: CaptureBody;
    /// `ELASTIC_APM_SANITIZE_FIELD_NAMES` (default Elastic's list, dynamic): header and form
    /// field names whose values are recorded as `[REDACTED]` (incoming requests, responses, and
    /// the reqwest integration's response headers).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert!(c.sanitize_field_names().iter().any(|w| w.matches("X-Auth-Token")));
    /// ```
    sanitize_field_names: &[Wildcard] => as_slice;
    /// `ELASTIC_APM_TRANSACTION_IGNORE_URLS` (default none, dynamic): request paths for which
    /// the tower layer starts no transaction (health checks).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().transaction_ignore_urls(["/health*"]).build().unwrap();
    /// assert!(c.transaction_ignore_urls()[0].matches("/healthz"));
    /// ```
    transaction_ignore_urls: &[Wildcard] => as_slice;
    /// `ELASTIC_APM_USE_PATH_AS_TRANSACTION_NAME` (default `false`): the tower layer names
    /// transactions `GET /the/path` when no route is known, instead of `GET unknown route`.
    ///
    /// ```
    /// assert!(!apm_runtime::Config::builder().build().unwrap().use_path_as_transaction_name());
    /// ```
    use_path_as_transaction_name: bool;
    /// `ELASTIC_APM_METRICS_INTERVAL` (default 30s; `0s` turns metrics off). Parsed; used once
    /// metrics are reported.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.metrics_interval(), std::time::Duration::from_secs(30));
    /// ```
    metrics_interval: Duration;
    /// `ELASTIC_APM_DISABLE_METRICS` (default none): metric names not to report. Parsed; used once
    /// metrics are reported.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().disable_metrics().is_empty());
    /// ```
    disable_metrics: &[Wildcard] => as_slice;
    /// `ELASTIC_APM_BREAKDOWN_METRICS` (default `true`). Parsed; used once metrics are reported.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().breakdown_metrics());
    /// ```
    breakdown_metrics: bool;
    /// `ELASTIC_APM_CENTRAL_CONFIG` (default `true`): poll the APM Server for Kibana's settings
    /// and apply the dynamic options among them to new transactions ([`crate::Agent::live_config`]).
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().central_config());
    /// ```
    central_config: bool;
    /// `ELASTIC_APM_CLOUD_PROVIDER` (default `auto`): which cloud metadata service the reporter
    /// asks about the host before its first request (`auto`: AWS, GCP and Azure at once, for a
    /// second at most; `none`: no request). Only an agent that reports to an APM Server asks.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.cloud_provider(), apm_runtime::CloudProvider::Auto);
    /// ```
    cloud_provider: CloudProvider;
    /// `ELASTIC_APM_LOG_LEVEL` (default `warning`, dynamic): Elastic's levels (`trace`, `debug`,
    /// `info`, `warning`, `error`, `critical`, `off`) as `log` levels: the most detailed
    /// messages the agent writes (target `apm`).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.log_level(), log::LevelFilter::Warn);
    /// ```
    log_level: log::LevelFilter;
    /// `ELASTIC_APM_TRACE_CONTINUATION_STRATEGY` (default `continue`, dynamic): whether a
    /// transaction continues the trace of an incoming `traceparent`, or starts its own (`restart`
    /// always, `restart_external` when the caller is no Elastic agent) and links the caller.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.trace_continuation_strategy(), apm_runtime::TraceContinuationStrategy::Continue);
    /// ```
    trace_continuation_strategy: TraceContinuationStrategy;
    /// `ELASTIC_APM_DISABLE_SEND` (default `false`): record everything but send nothing (tests,
    /// CI): no connection is made and every event counts as sent.
    ///
    /// ```
    /// assert!(!apm_runtime::Config::builder().build().unwrap().disable_send());
    /// ```
    disable_send: bool;
    /// `ELASTIC_APM_USE_ELASTIC_TRACEPARENT_HEADER` (default `true`): also send the legacy
    /// `elastic-apm-traceparent` header on outgoing requests.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().use_elastic_traceparent_header());
    /// ```
    use_elastic_traceparent_header: bool;
    /// `ELASTIC_APM_CAPTURE_PROCESS_ARGS` (default `false`): send the process's arguments in the
    /// metadata (they may hold secrets); without it only the executable's name is sent.
    ///
    /// ```
    /// assert!(!apm_runtime::Config::builder().build().unwrap().capture_process_args());
    /// ```
    capture_process_args: bool;
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($arg:ident: $in:ty) => $store:expr;)*) => {
        impl ConfigBuilder {
            $(
                $(#[$doc])*
                pub fn $name(self, $arg: $in) -> Self {
                    let value = $store;
                    self.set(Opt::$name, move |c| c.$name = value)
                }
            )*
        }
    };
}

fn wildcards<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Vec<Wildcard> {
    patterns.into_iter().map(|p| Wildcard::new(p.as_ref())).collect()
}

setters! {
    /// See [`Config::enabled`].
    ///
    /// ```
    /// assert!(!apm_runtime::Config::builder().enabled(false).build().unwrap().enabled());
    /// ```
    enabled(value: bool) => value;
    /// See [`Config::recording`].
    ///
    /// ```
    /// assert!(!apm_runtime::Config::builder().recording(false).build().unwrap().recording());
    /// ```
    recording(value: bool) => value;
    /// See [`Config::service_name`]; letters, digits, spaces, `_` and `-` only.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().service_name("a/b").build().is_err());
    /// ```
    service_name(value: impl Into<String>) => value.into();
    /// See [`Config::service_version`].
    ///
    /// ```
    /// apm_runtime::Config::builder().service_version("2.0").build().unwrap();
    /// ```
    service_version(value: impl Into<String>) => Some(value.into());
    /// See [`Config::service_node_name`]; at most 1024 characters.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().service_node_name("n".repeat(1025)).build().is_err());
    /// ```
    service_node_name(value: impl Into<String>) => Some(value.into());
    /// See [`Config::environment`].
    ///
    /// ```
    /// apm_runtime::Config::builder().environment("staging").build().unwrap();
    /// ```
    environment(value: impl Into<String>) => Some(value.into());
    /// See [`Config::hostname`].
    ///
    /// ```
    /// apm_runtime::Config::builder().hostname("web-1").build().unwrap();
    /// ```
    hostname(value: impl Into<String>) => Some(value.into());
    /// See [`Config::global_labels`]; names must not be empty, values at most 1024 characters.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().global_labels([("", "x")]).build().is_err());
    /// ```
    global_labels(pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>) =>
        pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect::<Vec<(String, String)>>();
    /// See [`Config::server_url`]; must be an `http` or `https` URL with a host.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().server_url("localhost:8200").build().is_err());
    /// ```
    server_url(value: impl Into<String>) => value.into();
    /// `ELASTIC_APM_SECRET_TOKEN`: sent as `Authorization: Bearer <token>`; printable ASCII, never
    /// shown.
    ///
    /// ```
    /// apm_runtime::Config::builder().secret_token("t0k3n").build().unwrap();
    /// ```
    secret_token(value: impl Into<String>) => Some(value.into());
    /// `ELASTIC_APM_API_KEY`: sent as `Authorization: ApiKey <key>`; wins over the secret token.
    ///
    /// ```
    /// apm_runtime::Config::builder().api_key("a2V5").build().unwrap();
    /// ```
    api_key(value: impl Into<String>) => Some(value.into());
    /// See [`Config::server_timeout`]; must be more than zero.
    ///
    /// ```
    /// let t = std::time::Duration::from_secs(3);
    /// apm_runtime::Config::builder().server_timeout(t).build().unwrap();
    /// ```
    server_timeout(value: Duration) => value;
    /// See [`Config::server_ca_cert_file`]; the file must exist.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().server_ca_cert_file("/no/such.pem").build().is_err());
    /// ```
    server_ca_cert_file(value: impl Into<PathBuf>) => Some(value.into());
    /// See [`Config::verify_server_cert`].
    ///
    /// ```
    /// apm_runtime::Config::builder().verify_server_cert(false).build().unwrap();
    /// ```
    verify_server_cert(value: bool) => value;
    /// See [`Config::api_request_size`] (bytes); must be more than zero.
    ///
    /// ```
    /// apm_runtime::Config::builder().api_request_size(64 * 1024u64).build().unwrap();
    /// ```
    api_request_size(value: impl Into<u64>) => value.into();
    /// See [`Config::api_request_time`]; must be more than zero.
    ///
    /// ```
    /// let zero = std::time::Duration::ZERO;
    /// assert!(apm_runtime::Config::builder().api_request_time(zero).build().is_err());
    /// ```
    api_request_time(value: Duration) => value;
    /// See [`Config::max_queue_size`]; must be at least 1.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().max_queue_size(0usize).build().is_err());
    /// ```
    max_queue_size(value: impl Into<usize>) => value.into();
    /// See [`Config::shutdown_timeout`].
    ///
    /// ```
    /// let t = std::time::Duration::from_millis(500);
    /// apm_runtime::Config::builder().shutdown_timeout(t).build().unwrap();
    /// ```
    shutdown_timeout(value: Duration) => value;
    /// See [`Config::transaction_sample_rate`]; must be within `0..=1`.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().transaction_sample_rate(-0.1).build().is_err());
    /// ```
    transaction_sample_rate(value: f64) => value;
    /// See [`Config::transaction_max_spans`].
    ///
    /// ```
    /// apm_runtime::Config::builder().transaction_max_spans(10u32).build().unwrap();
    /// ```
    transaction_max_spans(value: impl Into<u32>) => value.into();
    /// See [`Config::stack_trace_limit`]; at least -1.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().stack_trace_limit(-2).build().is_err());
    /// ```
    stack_trace_limit(value: i32) => value;
    /// See [`Config::span_stack_trace_min_duration`]: a duration, or `None` for never.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().span_stack_trace_min_duration(None).build().unwrap();
    /// assert_eq!(c.span_stack_trace_min_duration(), None);
    /// ```
    span_stack_trace_min_duration(value: impl Into<Option<Duration>>) => value.into();
    /// See [`Config::exit_span_min_duration`].
    ///
    /// ```
    /// let d = std::time::Duration::from_micros(250);
    /// apm_runtime::Config::builder().exit_span_min_duration(d).build().unwrap();
    /// ```
    exit_span_min_duration(value: Duration) => value;
    /// See [`Config::span_compression_enabled`].
    ///
    /// ```
    /// apm_runtime::Config::builder().span_compression_enabled(false).build().unwrap();
    /// ```
    span_compression_enabled(value: bool) => value;
    /// See [`Config::span_compression_exact_match_max_duration`].
    ///
    /// ```
    /// let d = std::time::Duration::from_millis(10);
    /// apm_runtime::Config::builder().span_compression_exact_match_max_duration(d).build().unwrap();
    /// ```
    span_compression_exact_match_max_duration(value: Duration) => value;
    /// See [`Config::span_compression_same_kind_max_duration`].
    ///
    /// ```
    /// let d = std::time::Duration::from_millis(5);
    /// apm_runtime::Config::builder().span_compression_same_kind_max_duration(d).build().unwrap();
    /// ```
    span_compression_same_kind_max_duration(value: Duration) => value;
    /// See [`Config::capture_headers`].
    ///
    /// ```
    /// apm_runtime::Config::builder().capture_headers(false).build().unwrap();
    /// ```
    capture_headers(value: bool) => value;
    /// See [`Config::capture_body`].
    ///
    /// ```
    /// apm_runtime::Config::builder().capture_body(apm_runtime::CaptureBody::All).build().unwrap();
    /// ```
    capture_body(value: CaptureBody) => value;
    /// See [`Config::sanitize_field_names`]: replaces Elastic's list (include it again to extend it).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().sanitize_field_names(["*pin*"]).build().unwrap();
    /// assert!(c.sanitize_field_names()[0].matches("PIN-code"));
    /// ```
    sanitize_field_names(patterns: impl IntoIterator<Item = impl AsRef<str>>) => wildcards(patterns);
    /// See [`Config::transaction_ignore_urls`].
    ///
    /// ```
    /// apm_runtime::Config::builder().transaction_ignore_urls(["/ping", "*.js"]).build().unwrap();
    /// ```
    transaction_ignore_urls(patterns: impl IntoIterator<Item = impl AsRef<str>>) => wildcards(patterns);
    /// See [`Config::use_path_as_transaction_name`].
    ///
    /// ```
    /// apm_runtime::Config::builder().use_path_as_transaction_name(true).build().unwrap();
    /// ```
    use_path_as_transaction_name(value: bool) => value;
    /// See [`Config::metrics_interval`].
    ///
    /// ```
    /// apm_runtime::Config::builder().metrics_interval(std::time::Duration::ZERO).build().unwrap();
    /// ```
    metrics_interval(value: Duration) => value;
    /// See [`Config::disable_metrics`].
    ///
    /// ```
    /// apm_runtime::Config::builder().disable_metrics(["system.*"]).build().unwrap();
    /// ```
    disable_metrics(patterns: impl IntoIterator<Item = impl AsRef<str>>) => wildcards(patterns);
    /// See [`Config::breakdown_metrics`].
    ///
    /// ```
    /// apm_runtime::Config::builder().breakdown_metrics(false).build().unwrap();
    /// ```
    breakdown_metrics(value: bool) => value;
    /// See [`Config::central_config`].
    ///
    /// ```
    /// apm_runtime::Config::builder().central_config(false).build().unwrap();
    /// ```
    central_config(value: bool) => value;
    /// See [`Config::cloud_provider`].
    ///
    /// ```
    /// apm_runtime::Config::builder().cloud_provider(apm_runtime::CloudProvider::Aws).build().unwrap();
    /// ```
    cloud_provider(value: CloudProvider) => value;
    /// See [`Config::log_level`].
    ///
    /// ```
    /// apm_runtime::Config::builder().log_level(log::LevelFilter::Debug).build().unwrap();
    /// ```
    log_level(value: log::LevelFilter) => value;
    /// See [`Config::trace_continuation_strategy`].
    ///
    /// ```
    /// use apm_runtime::TraceContinuationStrategy::Restart;
    /// apm_runtime::Config::builder().trace_continuation_strategy(Restart).build().unwrap();
    /// ```
    trace_continuation_strategy(value: TraceContinuationStrategy) => value;
    /// See [`Config::disable_send`].
    ///
    /// ```
    /// apm_runtime::Config::builder().disable_send(true).build().unwrap();
    /// ```
    disable_send(value: bool) => value;
    /// See [`Config::use_elastic_traceparent_header`].
    ///
    /// ```
    /// apm_runtime::Config::builder().use_elastic_traceparent_header(false).build().unwrap();
    /// ```
    use_elastic_traceparent_header(value: bool) => value;
    /// See [`Config::capture_process_args`].
    ///
    /// ```
    /// apm_runtime::Config::builder().capture_process_args(true).build().unwrap();
    /// ```
    capture_process_args(value: bool) => value;
}
