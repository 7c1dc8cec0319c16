//! Agent configuration: Elastic's `ELASTIC_APM_*` variables, their defaults, and a builder.
//!
//! Every value is validated when the configuration is built; a bad value is a [`ConfigError`] that
//! names the variable and the value, never a panic and never a silent fallback to a default.

use std::fmt;
use std::time::Duration;

/// Why a configuration value was refused.
///
/// ```
/// let err = apm_runtime::Config::builder().transaction_sample_rate(1.5).build().unwrap_err();
/// assert_eq!(err.variable(), "ELASTIC_APM_TRANSACTION_SAMPLE_RATE");
/// assert!(err.to_string().contains("1.5"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    reason: String,
}

impl ConfigError {
    fn new(variable: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError { variable, value: value.into(), reason: reason.into() }
    }

    /// The `ELASTIC_APM_*` variable the value was given for (also for values set in code).
    ///
    /// ```
    /// let err = apm_runtime::Config::builder().server_url("ftp://x").build().unwrap_err();
    /// assert_eq!(err.variable(), "ELASTIC_APM_SERVER_URL");
    /// ```
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    /// The refused value, as given (secrets are never echoed: they show as `[REDACTED]`).
    ///
    /// ```
    /// let err = apm_runtime::Config::builder().server_url("ftp://x").build().unwrap_err();
    /// assert_eq!(err.value(), "ftp://x");
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}={:?}: {}", self.variable, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The validated agent configuration. Build it with [`Config::from_env`] or [`Config::builder`].
///
/// `Debug` never shows the secret token or the API key.
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
    pub(crate) enabled: bool,
    pub(crate) server_url: String,
    pub(crate) service_name: String,
    pub(crate) service_version: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) secret_token: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) transaction_sample_rate: f64,
    pub(crate) transaction_max_spans: u32,
    pub(crate) api_request_time: Duration,
    pub(crate) api_request_size: u64,
    pub(crate) server_timeout: Duration,
    pub(crate) verify_server_cert: bool,
    pub(crate) max_queue_size: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) use_elastic_traceparent_header: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("Config")
            .field("enabled", &self.enabled)
            .field("server_url", &self.server_url)
            .field("service_name", &self.service_name)
            .field("service_version", &self.service_version)
            .field("environment", &self.environment)
            .field("hostname", &self.hostname)
            .field("secret_token", &redact(&self.secret_token))
            .field("api_key", &redact(&self.api_key))
            .field("transaction_sample_rate", &self.transaction_sample_rate)
            .field("transaction_max_spans", &self.transaction_max_spans)
            .field("api_request_time", &self.api_request_time)
            .field("api_request_size", &self.api_request_size)
            .field("server_timeout", &self.server_timeout)
            .field("verify_server_cert", &self.verify_server_cert)
            .field("max_queue_size", &self.max_queue_size)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("use_elastic_traceparent_header", &self.use_elastic_traceparent_header)
            .finish()
    }
}

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
    /// `ELASTIC_APM_SERVER_URL` (default `http://localhost:8200`), without a trailing slash.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().server_url("https://apm:8200/").build().unwrap();
    /// assert_eq!(c.server_url(), "https://apm:8200");
    /// ```
    server_url: &str => as_str;
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
    /// `ELASTIC_APM_ENVIRONMENT`.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().environment("prod").build().unwrap();
    /// assert_eq!(c.environment(), Some("prod"));
    /// ```
    environment: Option<&str> => as_deref;
    /// `ELASTIC_APM_TRANSACTION_SAMPLE_RATE` (default 1), rounded to 4 decimals as Elastic's agents do.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().transaction_sample_rate(0.123456).build().unwrap();
    /// assert_eq!(c.transaction_sample_rate(), 0.1235);
    /// ```
    transaction_sample_rate: f64;
    /// `ELASTIC_APM_TRANSACTION_MAX_SPANS` (default 500): spans past this many per transaction are
    /// counted in `span_count.dropped` instead of being recorded.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().transaction_max_spans(), 500);
    /// ```
    transaction_max_spans: u32;
    /// `ELASTIC_APM_API_REQUEST_TIME` (default 10s): how long one intake request stays open.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.api_request_time(), std::time::Duration::from_secs(10));
    /// ```
    api_request_time: Duration;
    /// `ELASTIC_APM_API_REQUEST_SIZE` (default 768kb): compressed bytes after which a request closes.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().api_request_size(), 768 * 1024);
    /// ```
    api_request_size: u64;
    /// `ELASTIC_APM_SERVER_TIMEOUT` (default 30s): how long one request to the server may take.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.server_timeout(), std::time::Duration::from_secs(30));
    /// ```
    server_timeout: Duration;
    /// `ELASTIC_APM_VERIFY_SERVER_CERT` (default `true`).
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().verify_server_cert());
    /// ```
    verify_server_cert: bool;
    /// `ELASTIC_APM_MAX_QUEUE_SIZE` (default 2048): events waiting for the reporter; past it, new
    /// events are dropped and counted rather than blocking the application. Spans wait in one
    /// queue per thread (rounded up to a power of two), transactions and errors in one shared
    /// queue; each holds at most this many.
    ///
    /// ```
    /// assert_eq!(apm_runtime::Config::builder().build().unwrap().max_queue_size(), 2048);
    /// ```
    max_queue_size: usize;
    /// `ELASTIC_APM_SHUTDOWN_TIMEOUT` (default 5s): how long dropping the agent waits to flush.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.shutdown_timeout(), std::time::Duration::from_secs(5));
    /// ```
    shutdown_timeout: Duration;
    /// `ELASTIC_APM_USE_ELASTIC_TRACEPARENT_HEADER` (default `true`): also send the legacy
    /// `elastic-apm-traceparent` header on outgoing requests.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().build().unwrap().use_elastic_traceparent_header());
    /// ```
    use_elastic_traceparent_header: bool;
}

impl Config {
    /// Reads every `ELASTIC_APM_*` variable; unset ones take Elastic's defaults.
    ///
    /// ```
    /// // SAFETY-free in doctests: this process sets no ELASTIC_APM_* variable.
    /// let config = apm_runtime::Config::from_env().unwrap();
    /// assert_eq!(config.transaction_sample_rate(), 1.0);
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        ConfigBuilder::from_env()?.build()
    }

    /// A builder that starts from the defaults (not from the environment; see
    /// [`ConfigBuilder::from_env`] for that).
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().service_name("worker").build().unwrap();
    /// assert_eq!(config.service_name(), "worker");
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The secret token, for the transport only (never logged).
    pub(crate) fn authorization(&self) -> Option<String> {
        match (&self.api_key, &self.secret_token) {
            (Some(key), _) => Some(format!("ApiKey {key}")),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        }
    }
}

/// Builds a [`Config`] in code; values are checked by [`ConfigBuilder::build`] with the same rules
/// as the environment variables.
///
/// ```
/// use std::time::Duration;
/// let config = apm_runtime::Config::builder()
///     .service_name("billing")
///     .server_url("https://apm.example.com:8200")
///     .api_request_time(Duration::from_secs(2))
///     .build()?;
/// assert_eq!(config.api_request_time(), Duration::from_secs(2));
/// # Ok::<(), apm_runtime::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    enabled: Option<bool>,
    server_url: Option<String>,
    service_name: Option<String>,
    service_version: Option<String>,
    environment: Option<String>,
    hostname: Option<String>,
    secret_token: Option<String>,
    api_key: Option<String>,
    transaction_sample_rate: Option<f64>,
    transaction_max_spans: Option<u32>,
    api_request_time: Option<Duration>,
    api_request_size: Option<u64>,
    server_timeout: Option<Duration>,
    verify_server_cert: Option<bool>,
    max_queue_size: Option<usize>,
    shutdown_timeout: Option<Duration>,
    use_elastic_traceparent_header: Option<bool>,
}

const SERVER_URL: &str = "ELASTIC_APM_SERVER_URL";
const SAMPLE_RATE: &str = "ELASTIC_APM_TRANSACTION_SAMPLE_RATE";
const SERVICE_NAME: &str = "ELASTIC_APM_SERVICE_NAME";
const MAX_QUEUE_SIZE: &str = "ELASTIC_APM_MAX_QUEUE_SIZE";

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl ConfigBuilder {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                    self.$name = Some(value.into());
                    self
                }
            )*
        }
    };
}

setters! {
    /// See [`Config::enabled`].
    ///
    /// ```
    /// assert!(!apm_runtime::Config::builder().enabled(false).build().unwrap().enabled());
    /// ```
    enabled: bool;
    /// See [`Config::server_url`]; must be an `http` or `https` URL with a host.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().server_url("localhost:8200").build().is_err());
    /// ```
    server_url: String;
    /// See [`Config::service_name`]; letters, digits, spaces, `_` and `-` only.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().service_name("a/b").build().is_err());
    /// ```
    service_name: String;
    /// See [`Config::service_version`].
    ///
    /// ```
    /// apm_runtime::Config::builder().service_version("2.0").build().unwrap();
    /// ```
    service_version: String;
    /// See [`Config::environment`].
    ///
    /// ```
    /// apm_runtime::Config::builder().environment("staging").build().unwrap();
    /// ```
    environment: String;
    /// `ELASTIC_APM_HOSTNAME`: overrides the detected host name.
    ///
    /// ```
    /// apm_runtime::Config::builder().hostname("web-1").build().unwrap();
    /// ```
    hostname: String;
    /// `ELASTIC_APM_SECRET_TOKEN`: sent as `Authorization: Bearer <token>`.
    ///
    /// ```
    /// apm_runtime::Config::builder().secret_token("t0k3n").build().unwrap();
    /// ```
    secret_token: String;
    /// `ELASTIC_APM_API_KEY`: sent as `Authorization: ApiKey <key>`; wins over the secret token.
    ///
    /// ```
    /// apm_runtime::Config::builder().api_key("a2V5").build().unwrap();
    /// ```
    api_key: String;
    /// See [`Config::transaction_sample_rate`]; must be within `0..=1`.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().transaction_sample_rate(-0.1).build().is_err());
    /// ```
    transaction_sample_rate: f64;
    /// See [`Config::transaction_max_spans`].
    ///
    /// ```
    /// apm_runtime::Config::builder().transaction_max_spans(10u32).build().unwrap();
    /// ```
    transaction_max_spans: u32;
    /// See [`Config::api_request_time`]; must be more than zero.
    ///
    /// ```
    /// let zero = std::time::Duration::ZERO;
    /// assert!(apm_runtime::Config::builder().api_request_time(zero).build().is_err());
    /// ```
    api_request_time: Duration;
    /// See [`Config::api_request_size`] (bytes); must be more than zero.
    ///
    /// ```
    /// apm_runtime::Config::builder().api_request_size(64 * 1024u64).build().unwrap();
    /// ```
    api_request_size: u64;
    /// See [`Config::server_timeout`].
    ///
    /// ```
    /// let t = std::time::Duration::from_secs(3);
    /// apm_runtime::Config::builder().server_timeout(t).build().unwrap();
    /// ```
    server_timeout: Duration;
    /// See [`Config::verify_server_cert`].
    ///
    /// ```
    /// apm_runtime::Config::builder().verify_server_cert(false).build().unwrap();
    /// ```
    verify_server_cert: bool;
    /// See [`Config::max_queue_size`]; must be at least 1.
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().max_queue_size(0usize).build().is_err());
    /// ```
    max_queue_size: usize;
    /// See [`Config::shutdown_timeout`].
    ///
    /// ```
    /// let t = std::time::Duration::from_millis(500);
    /// apm_runtime::Config::builder().shutdown_timeout(t).build().unwrap();
    /// ```
    shutdown_timeout: Duration;
    /// See [`Config::use_elastic_traceparent_header`].
    ///
    /// ```
    /// apm_runtime::Config::builder().use_elastic_traceparent_header(false).build().unwrap();
    /// ```
    use_elastic_traceparent_header: bool;
}

impl ConfigBuilder {
    /// A builder preset from the `ELASTIC_APM_*` variables, so code can override some of them.
    ///
    /// ```
    /// let config = apm_runtime::ConfigBuilder::from_env()?.service_name("override").build()?;
    /// assert_eq!(config.service_name(), "override");
    /// # Ok::<(), apm_runtime::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<ConfigBuilder, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`ConfigBuilder::from_env`], reading variables through `lookup` (for tests and for
    /// configuration stored elsewhere).
    ///
    /// ```
    /// let err = apm_runtime::ConfigBuilder::from_lookup(|name| {
    ///     (name == "ELASTIC_APM_API_REQUEST_SIZE").then(|| "12parsecs".to_string())
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "invalid ELASTIC_APM_API_REQUEST_SIZE=\"12parsecs\": expected a size like 768kb (units b, kb, mb, gb)");
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ConfigBuilder, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let b = ConfigBuilder {
            enabled: get("ELASTIC_APM_ENABLED").map(|v| parse_bool("ELASTIC_APM_ENABLED", &v)).transpose()?,
            server_url: get(SERVER_URL),
            service_name: get(SERVICE_NAME),
            service_version: get("ELASTIC_APM_SERVICE_VERSION"),
            environment: get("ELASTIC_APM_ENVIRONMENT"),
            hostname: get("ELASTIC_APM_HOSTNAME"),
            secret_token: get("ELASTIC_APM_SECRET_TOKEN"),
            api_key: get("ELASTIC_APM_API_KEY"),
            transaction_sample_rate: get(SAMPLE_RATE)
                .map(|v| {
                    v.parse::<f64>().map_err(|_| ConfigError::new(SAMPLE_RATE, v, "expected a number between 0 and 1"))
                })
                .transpose()?,
            transaction_max_spans: get("ELASTIC_APM_TRANSACTION_MAX_SPANS")
                .map(|v| parse_int("ELASTIC_APM_TRANSACTION_MAX_SPANS", &v))
                .transpose()?,
            api_request_time: get("ELASTIC_APM_API_REQUEST_TIME")
                .map(|v| parse_duration("ELASTIC_APM_API_REQUEST_TIME", &v, "s"))
                .transpose()?,
            api_request_size: get("ELASTIC_APM_API_REQUEST_SIZE")
                .map(|v| parse_size("ELASTIC_APM_API_REQUEST_SIZE", &v))
                .transpose()?,
            server_timeout: get("ELASTIC_APM_SERVER_TIMEOUT")
                .map(|v| parse_duration("ELASTIC_APM_SERVER_TIMEOUT", &v, "s"))
                .transpose()?,
            verify_server_cert: get("ELASTIC_APM_VERIFY_SERVER_CERT")
                .map(|v| parse_bool("ELASTIC_APM_VERIFY_SERVER_CERT", &v))
                .transpose()?,
            max_queue_size: get(MAX_QUEUE_SIZE).map(|v| parse_int(MAX_QUEUE_SIZE, &v)).transpose()?,
            shutdown_timeout: get("ELASTIC_APM_SHUTDOWN_TIMEOUT")
                .map(|v| parse_duration("ELASTIC_APM_SHUTDOWN_TIMEOUT", &v, "s"))
                .transpose()?,
            use_elastic_traceparent_header: get("ELASTIC_APM_USE_ELASTIC_TRACEPARENT_HEADER")
                .map(|v| parse_bool("ELASTIC_APM_USE_ELASTIC_TRACEPARENT_HEADER", &v))
                .transpose()?,
        };
        Ok(b)
    }

    /// Checks every value and builds the configuration.
    ///
    /// ```
    /// let err = apm_runtime::Config::builder().transaction_sample_rate(2.0).build().unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "invalid ELASTIC_APM_TRANSACTION_SAMPLE_RATE=\"2\": must be between 0 and 1");
    /// ```
    pub fn build(self) -> Result<Config, ConfigError> {
        let server_url = match self.server_url {
            Some(url) => validate_url(&url)?,
            None => "http://localhost:8200".to_string(),
        };
        let service_name = match self.service_name {
            Some(name) => {
                if name.is_empty() || !name.chars().all(service_name_char) {
                    return Err(ConfigError::new(
                        SERVICE_NAME,
                        name,
                        "only letters, digits, spaces, '_' and '-' are allowed",
                    ));
                }
                name
            }
            None => default_service_name(),
        };
        let rate = self.transaction_sample_rate.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&rate) {
            return Err(ConfigError::new(SAMPLE_RATE, rate.to_string(), "must be between 0 and 1"));
        }
        let positive = |name: &'static str, d: Option<Duration>, default: Duration| {
            let d = d.unwrap_or(default);
            if d.is_zero() {
                Err(ConfigError::new(name, format!("{d:?}"), "must be more than zero"))
            } else {
                Ok(d)
            }
        };
        let api_request_size = self.api_request_size.unwrap_or(768 * 1024);
        if api_request_size == 0 {
            return Err(ConfigError::new("ELASTIC_APM_API_REQUEST_SIZE", "0", "must be more than zero"));
        }
        let max_queue_size = self.max_queue_size.unwrap_or(2048);
        if max_queue_size == 0 {
            return Err(ConfigError::new(MAX_QUEUE_SIZE, "0", "must be at least 1"));
        }
        for (name, value) in [("ELASTIC_APM_SECRET_TOKEN", &self.secret_token), ("ELASTIC_APM_API_KEY", &self.api_key)]
        {
            // The value goes into an HTTP header; refuse what cannot, without echoing the secret.
            if value.as_ref().is_some_and(|v| !v.bytes().all(|b| (0x20..0x7f).contains(&b))) {
                return Err(ConfigError::new(name, "[REDACTED]", "must be printable ASCII"));
            }
        }
        Ok(Config {
            enabled: self.enabled.unwrap_or(true),
            server_url,
            service_name,
            service_version: self.service_version,
            environment: self.environment,
            hostname: self.hostname,
            secret_token: self.secret_token,
            api_key: self.api_key,
            transaction_sample_rate: round_sample_rate(rate),
            transaction_max_spans: self.transaction_max_spans.unwrap_or(500),
            api_request_time: positive("ELASTIC_APM_API_REQUEST_TIME", self.api_request_time, Duration::from_secs(10))?,
            api_request_size,
            server_timeout: positive("ELASTIC_APM_SERVER_TIMEOUT", self.server_timeout, Duration::from_secs(30))?,
            verify_server_cert: self.verify_server_cert.unwrap_or(true),
            max_queue_size,
            shutdown_timeout: self.shutdown_timeout.unwrap_or(Duration::from_secs(5)),
            use_elastic_traceparent_header: self.use_elastic_traceparent_header.unwrap_or(true),
        })
    }
}

/// Elastic's rule: 4 decimals, but a non-zero rate never rounds down to zero.
pub(crate) fn round_sample_rate(rate: f64) -> f64 {
    let rounded = (rate * 10_000.0).round() / 10_000.0;
    if rounded == 0.0 && rate > 0.0 {
        0.0001
    } else {
        rounded
    }
}

fn service_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || c == '_' || c == '-'
}

fn default_service_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe.as_ref().and_then(|p| p.file_stem()).and_then(|s| s.to_str()).unwrap_or("");
    let cleaned: String = stem.chars().map(|c| if service_name_char(c) { c } else { '_' }).collect();
    if cleaned.is_empty() {
        "unknown-rust-service".to_string()
    } else {
        cleaned
    }
}

fn validate_url(url: &str) -> Result<String, ConfigError> {
    let bad = |reason: &str| ConfigError::new(SERVER_URL, url, reason);
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host_only = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host_only.is_empty() || host_only.chars().any(char::is_whitespace) {
        return Err(bad("has no host"));
    }
    if let Some(port) = host.strip_prefix(host_only).and_then(|p| p.strip_prefix(':')) {
        if port.parse::<u16>().is_err() {
            return Err(bad("has an invalid port"));
        }
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn parse_bool(name: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::new(name, v, "expected true or false")),
    }
}

fn parse_int<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError> {
    v.parse().map_err(|_| ConfigError::new(name, v, "expected a non-negative whole number"))
}

/// Elastic's duration format: a number with `ms`, `s` or `m`; a bare number uses `default_unit`.
fn parse_duration(name: &'static str, v: &str, default_unit: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::new(name, v, "expected a non-negative duration like 500ms, 10s or 1m");
    let lower = v.to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: f64 = num.parse().map_err(|_| err())?;
    let unit = if unit.is_empty() { default_unit } else { unit };
    let secs = match unit {
        "ms" => num / 1000.0,
        "s" => num,
        "m" => num * 60.0,
        _ => return Err(err()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

/// Elastic's size format: a whole number with `b`, `kb`, `mb` or `gb` (binary multiples).
fn parse_size(name: &'static str, v: &str) -> Result<u64, ConfigError> {
    let err = || ConfigError::new(name, v, "expected a size like 768kb (units b, kb, mb, gb)");
    let lower = v.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let num: u64 = num.parse().map_err(|_| err())?;
    let mult = match unit {
        "b" | "" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        _ => return Err(err()),
    };
    num.checked_mul(mult).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ConfigBuilder::from_lookup(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))?.build()
    }

    #[test]
    fn defaults_match_elastic_agents() {
        let c = from(&[]).unwrap();
        assert!(c.enabled);
        assert_eq!(c.server_url, "http://localhost:8200");
        assert_eq!(c.transaction_sample_rate, 1.0);
        assert_eq!(c.transaction_max_spans, 500);
        assert_eq!(c.api_request_time, Duration::from_secs(10));
        assert_eq!(c.api_request_size, 768 * 1024);
        assert!(c.verify_server_cert);
        assert!(!c.service_name.is_empty());
    }

    #[test]
    fn every_variable_is_read() {
        let c = from(&[
            ("ELASTIC_APM_SERVER_URL", "https://apm.local:8200/"),
            ("ELASTIC_APM_SERVICE_NAME", "my service"),
            ("ELASTIC_APM_SERVICE_VERSION", "1.0"),
            ("ELASTIC_APM_ENVIRONMENT", "prod"),
            ("ELASTIC_APM_SECRET_TOKEN", "tok"),
            ("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "0.33333"),
            ("ELASTIC_APM_TRANSACTION_MAX_SPANS", "7"),
            ("ELASTIC_APM_API_REQUEST_TIME", "250ms"),
            ("ELASTIC_APM_API_REQUEST_SIZE", "1MB"),
            ("ELASTIC_APM_VERIFY_SERVER_CERT", "false"),
            ("ELASTIC_APM_ENABLED", "false"),
            ("ELASTIC_APM_MAX_QUEUE_SIZE", "10"),
            ("ELASTIC_APM_SHUTDOWN_TIMEOUT", "2"),
        ])
        .unwrap();
        assert_eq!(c.server_url, "https://apm.local:8200");
        assert_eq!(c.service_name, "my service");
        assert_eq!(c.service_version.as_deref(), Some("1.0"));
        assert_eq!(c.environment.as_deref(), Some("prod"));
        assert_eq!(c.authorization().as_deref(), Some("Bearer tok"));
        assert_eq!(c.transaction_sample_rate, 0.3333);
        assert_eq!(c.transaction_max_spans, 7);
        assert_eq!(c.api_request_time, Duration::from_millis(250));
        assert_eq!(c.api_request_size, 1 << 20);
        assert!(!c.verify_server_cert);
        assert!(!c.enabled);
        assert_eq!(c.max_queue_size, 10);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_variable_and_value() {
        let cases: &[(&str, &str)] = &[
            ("ELASTIC_APM_SERVER_URL", "ftp://apm:8200"),
            ("ELASTIC_APM_SERVER_URL", "apm:8200"),
            ("ELASTIC_APM_SERVER_URL", "http://"),
            ("ELASTIC_APM_SERVER_URL", "http://apm:port"),
            ("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "1.5"),
            ("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "-0.1"),
            ("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "half"),
            ("ELASTIC_APM_API_REQUEST_SIZE", "12parsecs"),
            ("ELASTIC_APM_API_REQUEST_SIZE", "-5kb"),
            ("ELASTIC_APM_API_REQUEST_TIME", "-5s"),
            ("ELASTIC_APM_API_REQUEST_TIME", "10 fortnights"),
            ("ELASTIC_APM_API_REQUEST_TIME", "0s"),
            ("ELASTIC_APM_TRANSACTION_MAX_SPANS", "-1"),
            ("ELASTIC_APM_ENABLED", "maybe"),
            ("ELASTIC_APM_SERVICE_NAME", "bad/name"),
        ];
        for (var, value) in cases {
            let err = from(&[(var, value)]).expect_err(&format!("{var}={value} must be refused"));
            assert_eq!(err.variable(), *var, "{err}");
            assert!(err.to_string().contains(&format!("{value:?}")) || err.value() != *value, "{err}");
        }
    }

    #[test]
    fn secrets_never_show() {
        let c = from(&[("ELASTIC_APM_SECRET_TOKEN", "hunter2"), ("ELASTIC_APM_API_KEY", "k3y")]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("k3y"), "{dbg}");
        assert_eq!(c.authorization().as_deref(), Some("ApiKey k3y"));
        let err = from(&[("ELASTIC_APM_SECRET_TOKEN", "sécret")]).unwrap_err();
        assert!(!err.to_string().contains("sécret"), "{err}");
    }

    #[test]
    fn sample_rate_rounds_to_four_decimals_but_never_to_zero() {
        assert_eq!(round_sample_rate(0.55555), 0.5556);
        assert_eq!(round_sample_rate(0.00001), 0.0001);
        assert_eq!(round_sample_rate(0.0), 0.0);
        assert_eq!(round_sample_rate(1.0), 1.0);
    }
}
