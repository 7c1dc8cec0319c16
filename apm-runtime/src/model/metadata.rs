//! The `metadata` line that opens every intake request: who is reporting, from where.

use serde::Serialize;

use crate::config::Config;

/// Service, agent, process and system facts, gathered once when the agent starts.
///
/// ```
/// let config = apm_runtime::Config::builder()
///     .service_name("svc")
///     .service_node_name("pod-1")
///     .global_labels([("team.name", "core")])
///     .build()
///     .unwrap();
/// let metadata = apm_runtime::Metadata::collect(&config);
/// let json = serde_json::to_value(&metadata).unwrap();
/// assert_eq!(json["service"]["name"], "svc");
/// assert_eq!(json["service"]["language"]["name"], "Rust");
/// assert_eq!(json["service"]["node"]["configured_name"], "pod-1");
/// assert_eq!(json["labels"]["team_name"], "core");
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct Metadata {
    service: Service,
    process: Process,
    system: System,
    /// `ELASTIC_APM_GLOBAL_LABELS`: the server applies them to every event of the request.
    #[serde(skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
}

/// Labels in the order configured, with Elastic's key sanitizing (`.`, `*`, `"` become `_`).
#[derive(Clone, Debug)]
struct Labels(Vec<(String, String)>);

impl Labels {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(&key.replace(['.', '*', '"'], "_"), value)?;
        }
        map.end()
    }
}

#[derive(Clone, Debug, Serialize)]
struct Service {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<Node>,
    agent: NameVersion,
    language: NameVersion,
    runtime: NameVersion,
}

#[derive(Clone, Debug, Serialize)]
struct Node {
    configured_name: String,
}

#[derive(Clone, Debug, Serialize)]
struct NameVersion {
    name: &'static str,
    version: &'static str,
}

#[derive(Clone, Debug, Serialize)]
struct Process {
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    /// Only with `ELASTIC_APM_CAPTURE_PROCESS_ARGS=true`: arguments may hold secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    argv: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
struct System {
    detected_hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    configured_hostname: Option<String>,
    architecture: &'static str,
    platform: &'static str,
}

/// The agent name reported to the server.
pub const AGENT_NAME: &str = "rust";
/// The agent version reported to the server.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Metadata {
    /// Gathers the metadata for `config`'s service on this host and process.
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().build().unwrap();
    /// let _ = apm_runtime::Metadata::collect(&config);
    /// ```
    pub fn collect(config: &Config) -> Metadata {
        let mut args = std::env::args();
        // The executable's name, not its path (which may name a user or a secret directory).
        let title = args.next().map(|path| {
            std::path::Path::new(&path).file_name().map_or(path.clone(), |n| n.to_string_lossy().into_owned())
        });
        let argv = config.capture_process_args().then(|| args.collect());
        Metadata {
            service: Service {
                name: config.service_name.clone(),
                version: config.service_version.clone(),
                environment: config.environment.clone(),
                node: config.service_node_name.clone().map(|configured_name| Node { configured_name }),
                agent: NameVersion { name: AGENT_NAME, version: AGENT_VERSION },
                language: NameVersion { name: "Rust", version: env!("APM_RUSTC_VERSION") },
                runtime: NameVersion { name: "Rust", version: env!("APM_RUSTC_VERSION") },
            },
            process: Process { pid: std::process::id(), title, argv },
            system: System {
                detected_hostname: detect_hostname(),
                configured_hostname: config.hostname.clone(),
                architecture: std::env::consts::ARCH,
                platform: std::env::consts::OS,
            },
            labels: Labels(config.global_labels.clone()),
        }
    }

    /// The service name, as configured.
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().service_name("svc").build().unwrap();
    /// assert_eq!(apm_runtime::Metadata::collect(&config).service_name(), "svc");
    /// ```
    pub fn service_name(&self) -> &str {
        &self.service.name
    }
}

fn detect_hostname() -> String {
    let from_file = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_of(config: Config) -> serde_json::Value {
        let mut line = Vec::new();
        crate::model::event::write_metadata_line(&Metadata::collect(&config), &mut line);
        serde_json::from_slice::<serde_json::Value>(&line).unwrap()["metadata"]["process"].clone()
    }

    #[test]
    fn arguments_are_sent_only_when_asked_for_and_the_title_is_the_executables_name() {
        let default = process_of(Config::builder().build().unwrap());
        assert!(default.get("argv").is_none(), "no argv by default: {default}");
        let title = default["title"].as_str().unwrap();
        assert!(!title.contains('/'), "a name, not a path: {title}");
        let asked = process_of(Config::builder().capture_process_args(true).build().unwrap());
        assert!(asked["argv"].is_array(), "{asked}");
    }
}
