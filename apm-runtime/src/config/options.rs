//! The table of options: one line per option says its variable, its type and unit, its default,
//! whether central configuration may change it, and, for an option whose capability is not built
//! yet, which capability will use it. Parsing, checking, `Debug`, the warnings and
//! [`Config::options`] all read this one table, so an option cannot be half-added.

use std::path::PathBuf;
use std::time::Duration;

use super::parse::{self, show, show_duration, show_mapping, show_path, show_text, show_wildcards};
use super::wildcard::Wildcard;
use super::{ConfigSource, Origin};

/// One option: how to read it from text, check it, and write it back.
pub(crate) struct Spec {
    /// Elastic's name, as central configuration sends it: `api_request_time`.
    pub(crate) name: &'static str,
    /// The environment variable: `ELASTIC_APM_API_REQUEST_TIME`.
    pub(crate) env: &'static str,
    /// Whether Elastic lets central configuration (Kibana) change it while the agent runs.
    pub(crate) dynamic: bool,
    /// Never printed: messages and `Debug` show `[REDACTED]`.
    pub(crate) secret: bool,
    /// The capability that will use it, while that capability is not built.
    pub(crate) pending: Option<&'static str>,
    /// Parses, checks and stores a value given as text; on error the config is unchanged.
    pub(crate) apply: fn(&mut Config, &str) -> Result<(), String>,
    /// Checks (and normalizes) the value stored by a builder setter.
    pub(crate) check: fn(&mut Config) -> Result<(), String>,
    /// The stored value in Elastic's text format.
    pub(crate) show: fn(&Config) -> String,
}

macro_rules! options {
    ($(
        $field:ident: $ty:ty = $default:expr, $env:literal, $parse:path, $check:path, $show:path,
            dynamic: $dynamic:literal, secret: $secret:literal, pending: $pending:expr;
    )*) => {
        /// The validated agent configuration. Build it with [`Config::from_env`] or
        /// [`Config::builder`]; read it with one getter per option, or all at once with
        /// [`Config::options`].
        ///
        /// `Debug` shows each value as it was written (`500ms` stays `500ms`) and never shows the
        /// secret token or the API key.
        ///
        /// ```
        /// let config = apm_runtime::Config::builder()
        ///     .service_name("checkout")
        ///     .secret_token("s3cr3t")
        ///     .build()
        ///     .unwrap();
        /// assert_eq!(config.service_name(), "checkout");
        /// assert!(!format!("{config:?}").contains("s3cr3t"));
        /// ```
        #[derive(Clone)]
        pub struct Config {
            $(pub(crate) $field: $ty,)*
            /// Per option, in table order: the value as written and where it came from.
            pub(crate) origins: Vec<Origin>,
        }

        /// An option's position in [`OPTIONS`].
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Opt {
            $($field,)*
        }

        pub(crate) static OPTIONS: &[Spec] = &[$(
            Spec {
                name: stringify!($field),
                env: concat!("ELASTIC_APM_", $env),
                dynamic: $dynamic,
                secret: $secret,
                pending: $pending,
                apply: |c, text| {
                    let mut value: $ty = $parse(text)?;
                    $check(&mut value)?;
                    c.$field = value;
                    Ok(())
                },
                check: |c| $check(&mut c.$field),
                show: |c| $show(&c.$field),
            },
        )*];

        impl Config {
            /// Elastic's defaults, each marked as such.
            pub(crate) fn defaults() -> Config {
                let mut c = Config { $($field: $default,)* origins: Vec::new() };
                c.origins = OPTIONS.iter().map(|o| Origin { text: (o.show)(&c), source: ConfigSource::Default }).collect();
                c
            }
        }
    };
}

options! {
    enabled: bool = true, "ENABLED", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    recording: bool = true, "RECORDING", parse::boolean, any, show,
        dynamic: true, secret: false, pending: None;
    service_name: String = super::default_service_name(), "SERVICE_NAME", parse::text, service_name, show,
        dynamic: false, secret: false, pending: None;
    service_version: Option<String> = None, "SERVICE_VERSION", parse::some_text, any, show_text,
        dynamic: false, secret: false, pending: None;
    service_node_name: Option<String> = None, "SERVICE_NODE_NAME", parse::some_text, at_most_1024, show_text,
        dynamic: false, secret: false, pending: None;
    environment: Option<String> = None, "ENVIRONMENT", parse::some_text, any, show_text,
        dynamic: false, secret: false, pending: None;
    hostname: Option<String> = None, "HOSTNAME", parse::some_text, any, show_text,
        dynamic: false, secret: false, pending: None;
    global_labels: Vec<(String, String)> = Vec::new(), "GLOBAL_LABELS", parse::mapping, labels, show_mapping,
        dynamic: false, secret: false, pending: None;
    server_url: String = "http://localhost:8200".into(), "SERVER_URL", parse::text, super::server_url, show,
        dynamic: false, secret: false, pending: None;
    secret_token: Option<String> = None, "SECRET_TOKEN", parse::some_text, header_value, show_text,
        dynamic: false, secret: true, pending: None;
    api_key: Option<String> = None, "API_KEY", parse::some_text, header_value, show_text,
        dynamic: false, secret: true, pending: None;
    server_timeout: Duration = Duration::from_secs(30), "SERVER_TIMEOUT", parse::duration, positive, show_duration,
        dynamic: false, secret: false, pending: None;
    server_ca_cert_file: Option<PathBuf> = None, "SERVER_CA_CERT_FILE", parse::path, existing_file, show_path,
        dynamic: false, secret: false, pending: None;
    verify_server_cert: bool = true, "VERIFY_SERVER_CERT", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    api_request_size: u64 = 768 * 1024, "API_REQUEST_SIZE", parse::size, nonzero, parse::show_size,
        dynamic: false, secret: false, pending: None;
    api_request_time: Duration = Duration::from_secs(10), "API_REQUEST_TIME", parse::duration, positive, show_duration,
        dynamic: false, secret: false, pending: None;
    max_queue_size: usize = 16384, "MAX_QUEUE_SIZE", parse::unsigned, nonzero, show,
        dynamic: false, secret: false, pending: None;
    shutdown_timeout: Duration = Duration::from_secs(5), "SHUTDOWN_TIMEOUT", parse::duration, any, show_duration,
        dynamic: false, secret: false, pending: None;
    transaction_sample_rate: f64 = 1.0, "TRANSACTION_SAMPLE_RATE", parse::float, sample_rate, show,
        dynamic: true, secret: false, pending: None;
    transaction_max_spans: u32 = 500, "TRANSACTION_MAX_SPANS", parse::unsigned, any, show,
        dynamic: true, secret: false, pending: None;
    stack_trace_limit: i32 = 50, "STACK_TRACE_LIMIT", parse::signed, minus_one_or_more, show,
        dynamic: true, secret: false, pending: None;
    span_stack_trace_min_duration: Option<Duration> = Some(Duration::from_millis(5)), "SPAN_STACK_TRACE_MIN_DURATION",
        parse::duration_or_never, any, parse::show_duration_or_never,
        dynamic: true, secret: false, pending: None;
    exit_span_min_duration: Duration = Duration::ZERO, "EXIT_SPAN_MIN_DURATION", parse::granular_duration, any,
        show_duration, dynamic: true, secret: false, pending: None;
    span_compression_enabled: bool = true, "SPAN_COMPRESSION_ENABLED", parse::boolean, any, show,
        dynamic: true, secret: false, pending: None;
    span_compression_exact_match_max_duration: Duration = Duration::from_millis(50),
        "SPAN_COMPRESSION_EXACT_MATCH_MAX_DURATION", parse::duration, any, show_duration,
        dynamic: true, secret: false, pending: None;
    span_compression_same_kind_max_duration: Duration = Duration::ZERO, "SPAN_COMPRESSION_SAME_KIND_MAX_DURATION",
        parse::duration, any, show_duration, dynamic: true, secret: false, pending: None;
    capture_headers: bool = true, "CAPTURE_HEADERS", parse::boolean, any, show,
        dynamic: true, secret: false, pending: None;
    capture_body: CaptureBody = CaptureBody::Off, "CAPTURE_BODY", CaptureBody::parse, any, show,
        dynamic: true, secret: false, pending: None;
    sanitize_field_names: Vec<Wildcard> = default_sanitize_field_names(), "SANITIZE_FIELD_NAMES", parse::wildcards,
        any, show_wildcards, dynamic: true, secret: false, pending: None;
    transaction_ignore_urls: Vec<Wildcard> = Vec::new(), "TRANSACTION_IGNORE_URLS", parse::wildcards, any,
        show_wildcards, dynamic: true, secret: false, pending: None;
    use_path_as_transaction_name: bool = false, "USE_PATH_AS_TRANSACTION_NAME", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    metrics_interval: Duration = Duration::from_secs(30), "METRICS_INTERVAL", parse::duration, any, show_duration,
        dynamic: false, secret: false, pending: None;
    disable_metrics: Vec<Wildcard> = Vec::new(), "DISABLE_METRICS", parse::wildcards, any, show_wildcards,
        dynamic: false, secret: false, pending: None;
    breakdown_metrics: bool = true, "BREAKDOWN_METRICS", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    central_config: bool = true, "CENTRAL_CONFIG", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    cloud_provider: CloudProvider = CloudProvider::Auto, "CLOUD_PROVIDER", CloudProvider::parse, any, show,
        dynamic: false, secret: false, pending: None;
    log_level: log::LevelFilter = log::LevelFilter::Warn, "LOG_LEVEL", log_level, any, show_log_level,
        dynamic: true, secret: false, pending: None;
    trace_continuation_strategy: TraceContinuationStrategy = TraceContinuationStrategy::Continue,
        "TRACE_CONTINUATION_STRATEGY", TraceContinuationStrategy::parse, any, show,
        dynamic: true, secret: false, pending: None;
    disable_send: bool = false, "DISABLE_SEND", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    use_elastic_traceparent_header: bool = true, "USE_ELASTIC_TRACEPARENT_HEADER", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
    capture_process_args: bool = false, "CAPTURE_PROCESS_ARGS", parse::boolean, any, show,
        dynamic: false, secret: false, pending: None;
}

/// Elastic's minimum list (`specs/agents/sanitization.md`).
fn default_sanitize_field_names() -> Vec<Wildcard> {
    ["password", "passwd", "pwd", "secret", "*key", "*token*", "*session*", "*credit*", "*card*", "*auth*"]
        .into_iter()
        .chain(["set-cookie", "*principal*"])
        .map(Wildcard::new)
        .collect()
}

fn any<T>(_: &mut T) -> Result<(), String> {
    Ok(())
}

fn positive(d: &mut Duration) -> Result<(), String> {
    if d.is_zero() {
        Err("must be more than zero".into())
    } else {
        Ok(())
    }
}

fn nonzero<T: Default + PartialEq>(n: &mut T) -> Result<(), String> {
    if *n == T::default() {
        Err("must be more than zero".into())
    } else {
        Ok(())
    }
}

fn minus_one_or_more(n: &mut i32) -> Result<(), String> {
    if *n < -1 {
        Err("must be -1 (all frames), 0 (none) or a number of frames".into())
    } else {
        Ok(())
    }
}

/// Elastic's rule: 4 decimals, but a non-zero rate never rounds down to zero.
fn sample_rate(rate: &mut f64) -> Result<(), String> {
    if !(0.0..=1.0).contains(rate) {
        return Err("must be between 0 and 1".into());
    }
    *rate = super::round_sample_rate(*rate);
    Ok(())
}

fn service_name(name: &mut str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == ' ' || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(allowed) {
        return Err("only letters, digits, spaces, '_' and '-' are allowed".into());
    }
    Ok(())
}

/// The intake schema's limit for keyword fields.
fn at_most_1024(value: &mut Option<String>) -> Result<(), String> {
    match value {
        Some(v) if v.chars().count() > 1024 => Err("must be at most 1024 characters".into()),
        _ => Ok(()),
    }
}

/// Labels land in the metadata; the intake schema caps each value at 1024 characters.
fn labels(pairs: &mut [(String, String)]) -> Result<(), String> {
    match pairs.iter().find(|(k, v)| k.is_empty() || v.chars().count() > 1024) {
        Some((k, _)) if k.is_empty() => Err("a label needs a name".into()),
        Some((k, _)) => Err(format!("the value of label {k:?} is longer than 1024 characters")),
        None => Ok(()),
    }
}

/// The value goes into an HTTP header: refuse what cannot, without echoing the secret.
fn header_value(value: &mut Option<String>) -> Result<(), String> {
    match value {
        Some(v) if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) => Err("must be printable ASCII".into()),
        _ => Ok(()),
    }
}

fn existing_file(path: &mut Option<PathBuf>) -> Result<(), String> {
    match path {
        Some(p) if !p.is_file() => Err("no such file".into()),
        _ => Ok(()),
    }
}

/// Elastic's levels (`specs/agents/logging.md`), any case, and Rust's own `warn` too.
fn log_level(text: &str) -> Result<log::LevelFilter, String> {
    use log::LevelFilter::*;
    Ok(match text.to_ascii_lowercase().as_str() {
        "trace" => Trace,
        "debug" => Debug,
        "info" => Info,
        "warning" | "warn" => Warn,
        "error" | "critical" => Error,
        "off" => Off,
        _ => return Err("expected trace, debug, info, warning, error, critical or off".into()),
    })
}

fn show_log_level(level: &log::LevelFilter) -> String {
    match level {
        log::LevelFilter::Warn => "warning".into(),
        other => other.as_str().to_ascii_lowercase(),
    }
}

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident: $expected:literal {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal,)*
    }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The value as Elastic spells it (what the variable and central configuration take).
            ///
            /// ```
            #[doc = concat!("for v in [", $("apm_runtime::", stringify!($name), "::", stringify!($variant), ", ",)* "] {")]
            #[doc = concat!("    assert!([", $("\"", $text, "\", ",)* "].contains(&v.as_str()));")]
            /// }
            /// ```
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// Any case: central configuration and the variables both may send `Restart`.
            fn parse(text: &str) -> Result<$name, String> {
                match text.to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)*
                    _ => Err(concat!("expected ", $expected).into()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice! {
    /// `ELASTIC_APM_CAPTURE_BODY`: which request bodies HTTP server integrations record.
    ///
    /// ```
    /// use apm_runtime::{CaptureBody, Config};
    /// let c = Config::builder().capture_body(CaptureBody::Errors).build().unwrap();
    /// assert_eq!(c.capture_body(), CaptureBody::Errors);
    /// ```
    CaptureBody: "off, errors, transactions or all" {
        /// Never (Elastic's default: bodies often hold personal data).
        Off = "off",
        /// Only on transactions whose outcome is `failure`.
        Errors = "errors",
        /// On every transaction.
        Transactions = "transactions",
        /// On every transaction (error events do not carry the request context yet).
        All = "all",
    }
}

choice! {
    /// `ELASTIC_APM_TRACE_CONTINUATION_STRATEGY`: what an incoming `traceparent` is used for
    /// (`specs/agents/trace-continuation.md`).
    ///
    /// ```
    /// use apm_runtime::{Config, TraceContinuationStrategy};
    /// let c = Config::builder()
    ///     .trace_continuation_strategy(TraceContinuationStrategy::RestartExternal)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(c.trace_continuation_strategy().as_str(), "restart_external");
    /// ```
    TraceContinuationStrategy: "continue, restart or restart_external" {
        /// Continue the incoming trace (the default).
        Continue = "continue",
        /// Always start a new trace, linked to the incoming one.
        Restart = "restart",
        /// Continue only traces whose `tracestate` has Elastic's `es` entry; restart the others.
        RestartExternal = "restart_external",
    }
}

choice! {
    /// `ELASTIC_APM_CLOUD_PROVIDER`: which cloud metadata service to ask about the host.
    ///
    /// ```
    /// use apm_runtime::{CloudProvider, Config};
    /// let c = Config::builder().cloud_provider(CloudProvider::None).build().unwrap();
    /// assert_eq!(c.cloud_provider(), CloudProvider::None);
    /// ```
    CloudProvider: "auto, aws, gcp, azure or none" {
        /// Try each provider (the default).
        Auto = "auto",
        /// Amazon Web Services only.
        Aws = "aws",
        /// Google Cloud only.
        Gcp = "gcp",
        /// Microsoft Azure only.
        Azure = "azure",
        /// Do not ask: no cloud metadata.
        None = "none",
    }
}
