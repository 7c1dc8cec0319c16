//! Agent configuration: Elastic's `ELASTIC_APM_*` options, their defaults and units, a builder,
//! and central configuration's overrides.
//!
//! Elastic's rule decides what a bad value does (`specs/agents/configuration.md`, "Invalid
//! Configuration Values"): from the environment or central configuration it is ignored with one
//! warning naming the variable, the value and what is used instead, and the agent runs, because a
//! typo in a deployment must not take a service down. Set in code, it is a [`ConfigError`]: the
//! developer is there to fix it.
//!
//! The mechanisms live in one file each: `parse` (Elastic's value formats and units), `wildcard`
//! (its matcher), `options` (the table of every option), `access` (getters and builder setters),
//! `env` (what reading the environment says besides bad values); this file holds the types and
//! the three ways in: the environment, the builder, central configuration.

mod access;
mod env;
mod options;
mod parse;
mod wildcard;

use std::fmt;

pub use options::{CaptureBody, CloudProvider, Config, TraceContinuationStrategy};
pub(crate) use options::{Opt, Spec, OPTIONS};
pub use wildcard::Wildcard;

const REDACTED: &str = "[REDACTED]";

/// Where an option's value came from, lowest precedence first.
///
/// ```
/// use apm_runtime::{Config, ConfigSource};
/// let config = Config::builder().service_version("1.0").build().unwrap();
/// let version = config.options().find(|o| o.name() == "service_version").unwrap();
/// assert_eq!(version.source(), ConfigSource::Code);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Elastic's default.
    Default,
    /// A `ConfigBuilder` setter.
    Code,
    /// An `ELASTIC_APM_*` variable (or a [`Config::from_lookup`] closure).
    Environment,
    /// Central configuration (Kibana), through [`Config::with_central`].
    Central,
}

impl fmt::Display for ConfigSource {
    /// Lowercase, for log lines: `environment`.
    ///
    /// ```
    /// assert_eq!(apm_runtime::ConfigSource::Central.to_string(), "central");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigSource::Default => "default",
            ConfigSource::Code => "code",
            ConfigSource::Environment => "environment",
            ConfigSource::Central => "central",
        })
    }
}

/// What `Debug`, messages and the start-up line show for one option.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// The value as written: `500ms` stays `500ms`, also after parsing.
    pub(crate) text: String,
    pub(crate) source: ConfigSource,
}

/// Why a configuration value set in code was refused.
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
    /// The `ELASTIC_APM_*` variable of the option (also for values set in code).
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

/// A value that was ignored (from the environment or central configuration), and what is used
/// instead. [`Config::from_env`] logs each; [`Config::from_lookup`] returns them.
///
/// ```
/// let (config, warnings) = apm_runtime::Config::from_lookup(|name| {
///     (name == "ELASTIC_APM_API_REQUEST_SIZE").then(|| "12parsecs".to_string())
/// });
/// assert_eq!(config.api_request_size(), 768 * 1024);
/// assert_eq!(warnings[0].to_string(),
///     "invalid ELASTIC_APM_API_REQUEST_SIZE=\"12parsecs\": expected a size like 768kb \
///      (units b, kb, mb, gb); using the default 768kb");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    variable: String,
    value: String,
    reason: String,
    fallback: String,
}

impl ConfigWarning {
    /// The variable, or for central configuration the option's name as Kibana sent it.
    ///
    /// ```
    /// let (_, w) = apm_runtime::Config::from_lookup(|n| (n == "ELASTIC_APM_ENABLED").then(|| "yes".into()));
    /// assert_eq!(w[0].variable(), "ELASTIC_APM_ENABLED");
    /// ```
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// The ignored value (`[REDACTED]` for secrets).
    ///
    /// ```
    /// let (_, w) = apm_runtime::Config::from_lookup(|n| (n == "ELASTIC_APM_ENABLED").then(|| "yes".into()));
    /// assert_eq!(w[0].value(), "yes");
    /// ```
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the agent does instead, in words: `using the default 10s`, `keeping the local value
    /// 0.5`, `leaving it unset`, `ignoring it`.
    ///
    /// ```
    /// let (_, w) = apm_runtime::Config::from_lookup(|n| (n == "ELASTIC_APM_ENABLED").then(|| "yes".into()));
    /// assert_eq!(w[0].fallback(), "using the default true");
    /// ```
    pub fn fallback(&self) -> &str {
        &self.fallback
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}={:?}: {}; {}", self.variable, self.value, self.reason, self.fallback)
    }
}

/// One row of the option table, with this configuration's value: see [`Config::options`].
///
/// ```
/// let config = apm_runtime::Config::builder().build().unwrap();
/// let rate = config.options().find(|o| o.name() == "transaction_sample_rate").unwrap();
/// assert_eq!((rate.variable(), rate.value(), rate.dynamic()), ("ELASTIC_APM_TRANSACTION_SAMPLE_RATE", "1", true));
/// ```
#[derive(Clone, Copy)]
pub struct ConfigOption<'a> {
    spec: &'static Spec,
    origin: &'a Origin,
}

impl<'a> ConfigOption<'a> {
    /// Elastic's name of the option, as central configuration sends it.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.options().next().unwrap().name(), "enabled");
    /// ```
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The environment variable.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.options().next().unwrap().variable(), "ELASTIC_APM_ENABLED");
    /// ```
    pub fn variable(&self) -> &'static str {
        self.spec.env
    }

    /// The value as written (`[REDACTED]` for a secret that is set).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().api_key("k").build().unwrap();
    /// assert_eq!(c.options().find(|o| o.name() == "api_key").unwrap().value(), "[REDACTED]");
    /// ```
    pub fn value(&self) -> &'a str {
        if self.spec.secret && !self.origin.text.is_empty() {
            REDACTED
        } else {
            &self.origin.text
        }
    }

    /// Where the value came from.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert_eq!(c.options().next().unwrap().source(), apm_runtime::ConfigSource::Default);
    /// ```
    pub fn source(&self) -> ConfigSource {
        self.origin.source
    }

    /// Whether central configuration may change it (Elastic's "dynamic" options).
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// assert!(!c.options().find(|o| o.name() == "server_url").unwrap().dynamic());
    /// ```
    pub fn dynamic(&self) -> bool {
        self.spec.dynamic
    }

    /// For an option this version reads but does not act on yet: the capability that will.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().build().unwrap();
    /// // Every option of this version is in effect.
    /// assert!(c.options().all(|o| o.pending().is_none()));
    /// ```
    pub fn pending(&self) -> Option<&'static str> {
        self.spec.pending
    }
}

impl fmt::Debug for ConfigOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ConfigOption<'_> {
    /// `variable=value (source)`, secrets redacted: one item of a start-up line.
    ///
    /// ```
    /// let c = apm_runtime::Config::builder().api_key("k3y").build().unwrap();
    /// let set: Vec<String> = c
    ///     .options()
    ///     .filter(|o| o.source() != apm_runtime::ConfigSource::Default)
    ///     .map(|o| o.to_string())
    ///     .collect();
    /// assert_eq!(set, ["ELASTIC_APM_API_KEY=[REDACTED] (code)"]);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={} ({})", self.variable(), self.value(), self.source())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values as written, so `0`, `500ms` and `768kb` read back the way the user wrote them.
        let mut s = f.debug_struct("Config");
        for option in self.options() {
            s.field(option.name(), &format_args!("{}", option.value()));
        }
        s.finish()
    }
}

impl Config {
    /// Reads every `ELASTIC_APM_*` variable; unset ones take Elastic's defaults. A bad value is
    /// logged (one warning naming the variable, the value and the default used) and replaced by
    /// the default, so this never fails: the `Result` is kept for callers written when it could.
    /// A variable that names no option (`ELASTIC_APM_SERVCE_NAME`) is logged with the option it
    /// most likely meant, and options this version reads but does not act on yet are named in one
    /// more line.
    ///
    /// ```
    /// // This process sets no ELASTIC_APM_* variable.
    /// let config = apm_runtime::Config::from_env().unwrap();
    /// assert_eq!(config.transaction_sample_rate(), 1.0);
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        let (config, warnings) = Config::from_env_with_warnings();
        for warning in &warnings {
            crate::diagnostics::warning!("{warning}");
        }
        let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
        for note in env::notes(&config, names) {
            crate::diagnostics::warning!("{note}");
        }
        Ok(config)
    }

    /// Like [`Config::from_env`], returning the warnings instead of logging them.
    ///
    /// ```
    /// let (config, warnings) = apm_runtime::Config::from_env_with_warnings();
    /// assert!(warnings.is_empty() && config.enabled());
    /// ```
    pub fn from_env_with_warnings() -> (Config, Vec<ConfigWarning>) {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env_with_warnings`], reading variables through `lookup`: for tests,
    /// and for configuration kept somewhere other than the environment.
    ///
    /// ```
    /// let (config, warnings) = apm_runtime::Config::from_lookup(|name| match name {
    ///     "ELASTIC_APM_API_REQUEST_TIME" => Some("500ms".into()),
    ///     "ELASTIC_APM_TRANSACTION_SAMPLE_RATE" => Some("lots".into()),
    ///     _ => None,
    /// });
    /// assert_eq!(config.api_request_time(), std::time::Duration::from_millis(500));
    /// assert_eq!(config.transaction_sample_rate(), 1.0);
    /// assert_eq!(warnings.len(), 1);
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Config, Vec<ConfigWarning>) {
        let builder = ConfigBuilder::from_lookup(lookup);
        (builder.config, builder.warnings)
    }

    /// A builder that starts from the defaults (not from the environment; see
    /// [`ConfigBuilder::from_env`] for that).
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().service_name("worker").build().unwrap();
    /// assert_eq!(config.service_name(), "worker");
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder { config: Config::defaults(), warnings: Vec::new() }
    }

    /// Every option in the table, with its value here and where that came from: what the
    /// start-up line and central configuration need.
    ///
    /// ```
    /// let (config, _) = apm_runtime::Config::from_lookup(|n| {
    ///     (n == "ELASTIC_APM_ENVIRONMENT").then(|| "prod".to_string())
    /// });
    /// let changed: Vec<_> = config
    ///     .options()
    ///     .filter(|o| o.source() != apm_runtime::ConfigSource::Default)
    ///     .map(|o| format!("{}={}", o.variable(), o.value()))
    ///     .collect();
    /// assert_eq!(changed, ["ELASTIC_APM_ENVIRONMENT=prod"]);
    /// ```
    pub fn options(&self) -> impl Iterator<Item = ConfigOption<'_>> {
        OPTIONS.iter().zip(&self.origins).map(|(spec, origin)| ConfigOption { spec, origin })
    }

    /// This configuration with central configuration's settings (option name → value as text,
    /// the way APM Server's `/config/v1/agents` answers) applied over it. Call it on the *local*
    /// configuration each time an answer arrives: an option Kibana no longer sends is then back
    /// to its local value. A setting that is not a dynamic option, or whose value is invalid, is
    /// skipped with a warning, and the others still apply.
    ///
    /// ```
    /// let local = apm_runtime::Config::builder().transaction_sample_rate(0.5).build().unwrap();
    /// let (live, warnings) = local.with_central([("transaction_sample_rate", "0.1"), ("server_url", "http://x")]);
    /// assert_eq!(live.transaction_sample_rate(), 0.1);
    /// assert_eq!(live.server_url(), local.server_url());
    /// assert_eq!(warnings[0].to_string(),
    ///     "invalid server_url=\"http://x\": not an option central configuration can change; \
    ///      keeping the local value http://localhost:8200");
    /// ```
    pub fn with_central<'s>(
        &self,
        settings: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> (Config, Vec<ConfigWarning>) {
        let mut config = self.clone();
        let mut warnings = Vec::new();
        for (name, value) in settings {
            let index = OPTIONS.iter().position(|o| o.name == name && o.dynamic);
            let result = match index {
                Some(i) => config.apply_text(i, value.trim(), ConfigSource::Central),
                None => Err("not an option central configuration can change".to_string()),
            };
            if let Err(reason) = result {
                let known = OPTIONS.iter().position(|o| o.name == name);
                let fallback = match known.map(|i| config.shown(i)) {
                    None => "ignoring it".to_string(),
                    Some(local) if local.is_empty() => "leaving it unset".into(),
                    Some(local) => format!("keeping the local value {local}"),
                };
                let value = if known.is_some_and(|i| OPTIONS[i].secret) { REDACTED.into() } else { value.into() };
                warnings.push(ConfigWarning { variable: name.to_string(), value, reason, fallback });
            }
        }
        (config, warnings)
    }

    /// Parses `text` into option `i`; on error nothing changes.
    fn apply_text(&mut self, i: usize, text: &str, source: ConfigSource) -> Result<(), String> {
        (OPTIONS[i].apply)(self, text)?;
        self.origins[i] = Origin { text: text.to_string(), source };
        Ok(())
    }

    /// Option `i` as messages show it (`[REDACTED]` for a set secret).
    fn shown(&self, i: usize) -> String {
        let text = &self.origins[i].text;
        if OPTIONS[i].secret && !text.is_empty() {
            REDACTED.into()
        } else {
            text.clone()
        }
    }

    /// The `Authorization` header value, for the transport only (never logged).
    pub(crate) fn authorization(&self) -> Option<String> {
        match (&self.api_key, &self.secret_token) {
            (Some(key), _) => Some(format!("ApiKey {key}")),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        }
    }
}

/// Builds a [`Config`] in code. Setters take typed values; [`ConfigBuilder::build`] checks them
/// with the same rules as the variables, and refuses a bad one with a [`ConfigError`].
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
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
    warnings: Vec<ConfigWarning>,
}

impl ConfigBuilder {
    /// A builder preset from the `ELASTIC_APM_*` variables, so code can override some of them.
    /// Bad values are logged and replaced by defaults, as [`Config::from_env`] does; the
    /// `Result` is always `Ok`.
    ///
    /// ```
    /// let config = apm_runtime::ConfigBuilder::from_env()?.service_name("override").build()?;
    /// assert_eq!(config.service_name(), "override");
    /// # Ok::<(), apm_runtime::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<ConfigBuilder, ConfigError> {
        let config = Config::from_env()?;
        Ok(ConfigBuilder { config, warnings: Vec::new() })
    }

    /// A builder preset from variables read through `lookup`; bad values are replaced by
    /// defaults and kept in [`ConfigBuilder::warnings`].
    ///
    /// ```
    /// let builder = apm_runtime::ConfigBuilder::from_lookup(|name| {
    ///     (name == "ELASTIC_APM_API_REQUEST_SIZE").then(|| "12parsecs".to_string())
    /// });
    /// assert_eq!(builder.warnings()[0].variable(), "ELASTIC_APM_API_REQUEST_SIZE");
    /// assert_eq!(builder.build().unwrap().api_request_size(), 768 * 1024);
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ConfigBuilder {
        let mut builder = Config::builder();
        for (i, spec) in OPTIONS.iter().enumerate() {
            // Empty counts as unset: `ELASTIC_APM_X=` in a compose file means "not configured".
            let Some(raw) = lookup(spec.env) else { continue };
            let text = raw.trim();
            if text.is_empty() {
                continue;
            }
            if let Err(reason) = builder.config.apply_text(i, text, ConfigSource::Environment) {
                let default = builder.config.shown(i);
                let fallback =
                    if default.is_empty() { "leaving it unset".into() } else { format!("using the default {default}") };
                let value = if spec.secret { REDACTED.into() } else { text.to_string() };
                builder.warnings.push(ConfigWarning { variable: spec.env.into(), value, reason, fallback });
            }
        }
        builder
    }

    /// The values read from the environment that were ignored (empty for a builder that did not
    /// read it, or that read it through [`ConfigBuilder::from_env`], which logs them).
    ///
    /// ```
    /// assert!(apm_runtime::Config::builder().warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// Checks every value set in code and builds the configuration.
    ///
    /// ```
    /// let err = apm_runtime::Config::builder().transaction_sample_rate(2.0).build().unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "invalid ELASTIC_APM_TRANSACTION_SAMPLE_RATE=\"2\": must be between 0 and 1");
    /// ```
    pub fn build(self) -> Result<Config, ConfigError> {
        let mut config = self.config;
        for (i, spec) in OPTIONS.iter().enumerate() {
            if config.origins[i].source == ConfigSource::Code {
                (spec.check)(&mut config).map_err(|reason| ConfigError {
                    variable: spec.env,
                    value: config.shown(i),
                    reason,
                })?;
            }
        }
        Ok(config)
    }

    /// Stores a value set in code (checked by `build`).
    fn set(mut self, option: Opt, store: impl FnOnce(&mut Config)) -> Self {
        let i = option as usize;
        store(&mut self.config);
        let text = (OPTIONS[i].show)(&self.config);
        self.config.origins[i] = Origin { text, source: ConfigSource::Code };
        self
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

fn default_service_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe.as_ref().and_then(|p| p.file_stem()).and_then(|s| s.to_str()).unwrap_or("");
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == ' ' || c == '_' || c == '-';
    let cleaned: String = stem.chars().map(|c| if allowed(c) { c } else { '_' }).collect();
    if cleaned.is_empty() {
        "unknown-rust-service".to_string()
    } else {
        cleaned
    }
}

/// An `http(s)://` URL with a host and, if any, a valid port; stored without a trailing slash.
fn server_url(url: &mut String) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host_only = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    if host_only.is_empty() || host_only.chars().any(char::is_whitespace) {
        return Err("has no host".into());
    }
    if let Some(port) = host.strip_prefix(host_only).and_then(|p| p.strip_prefix(':')) {
        if port.parse::<u16>().is_err() {
            return Err("has an invalid port".into());
        }
    }
    let trimmed = url.trim_end_matches('/').len();
    url.truncate(trimmed);
    Ok(())
}

#[cfg(test)]
mod tests;
