//! The `metadata` line that opens every intake request: who is reporting, from where.

use serde::Serialize;

use super::container::{Container, Host, Kubernetes};
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
/// assert!(json.get("cloud").is_none(), "cloud metadata is asked for by the reporter, later");
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct Metadata {
    service: Service,
    process: Process,
    system: System,
    /// Set by the reporter once the cloud's metadata service answered (see `deliver::cloud`).
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<Cloud>,
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
    agent: AgentInfo,
    #[serde(skip_serializing_if = "Framework::is_unset")]
    framework: Framework,
    language: NameVersion,
    runtime: NameVersion,
}

/// `service.framework`: set by a framework integration when it serves its first request, read
/// each time a metadata line is written (on the reporter thread), so requests sent before the
/// first one carry none.
#[derive(Clone, Debug, Default)]
struct Framework;

impl Framework {
    fn is_unset(&self) -> bool {
        FRAMEWORK.load(std::sync::atomic::Ordering::Relaxed) == 0
    }
}

impl Serialize for Framework {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = FRAMEWORKS[usize::from(FRAMEWORK.load(std::sync::atomic::Ordering::Relaxed))];
        NameOnly { name }.serialize(s)
    }
}

/// The frameworks an integration can report, least specific first (index 0: none yet).
const FRAMEWORKS: [&str; 4] = ["", "tower", "axum", "tonic"];

/// Which of [`FRAMEWORKS`] serves this process's requests.
static FRAMEWORK: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Says that `name` (one of [`FRAMEWORKS`]) served a request: `service.framework.name` from
/// then on. A specific framework (axum, tonic) replaces the generic `tower`; otherwise the first
/// one seen stays.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn set_framework(name: &'static str) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(new) = FRAMEWORKS.iter().position(|&f| f == name).and_then(|i| u8::try_from(i).ok()) else { return };
    let current = FRAMEWORK.load(Relaxed);
    if current == 0 || (current == 1 && new > 1) {
        let _ = FRAMEWORK.compare_exchange(current, new, Relaxed, Relaxed);
    }
}

#[derive(Serialize)]
struct NameOnly<'a> {
    name: &'a str,
}

#[derive(Clone, Debug, Serialize)]
struct AgentInfo {
    name: &'static str,
    version: &'static str,
    /// How the application started the agent (Elastic's telemetry of activation methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    activation_method: Option<&'static str>,
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
    ppid: Option<u32>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kubernetes: Option<Kubernetes>,
}

/// `cloud` of the metadata: what the cloud provider's metadata service says about the host.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Cloud {
    pub(crate) provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) instance: Option<IdName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) machine: Option<Machine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) account: Option<IdName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) project: Option<IdName>,
}

/// An id and a name, either optional (a cloud instance, account or project).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct IdName {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
}

impl IdName {
    /// `None` when neither is known, so that no empty object is sent.
    pub(crate) fn of(id: Option<String>, name: Option<String>) -> Option<IdName> {
        (id.is_some() || name.is_some()).then_some(IdName { id, name })
    }
}

/// The cloud machine's type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Machine {
    #[serde(rename = "type")]
    pub(crate) kind: String,
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
        Metadata::collect_on(config, &Host::default(), None)
    }

    /// [`Metadata::collect`] with the container files and variables of `host`, and how the
    /// application started the agent.
    pub(crate) fn collect_on(config: &Config, host: &Host, activation_method: Option<&'static str>) -> Metadata {
        let mut args = std::env::args();
        // The executable's name, not its path (which may name a user or a secret directory).
        let title = args.next().map(|path| {
            std::path::Path::new(&path).file_name().map_or(path.clone(), |n| n.to_string_lossy().into_owned())
        });
        let argv = config.capture_process_args().then(|| args.collect());
        let detected_hostname = detect_hostname();
        let (container, kubernetes) = host.detect(&detected_hostname);
        Metadata {
            service: Service {
                name: config.service_name.clone(),
                version: config.service_version.clone(),
                environment: config.environment.clone(),
                node: config.service_node_name.clone().map(|configured_name| Node { configured_name }),
                agent: AgentInfo { name: AGENT_NAME, version: AGENT_VERSION, activation_method },
                framework: Framework,
                language: NameVersion { name: "Rust", version: env!("APM_RUSTC_VERSION") },
                // No runtime beneath the program: the compiler that built it is what matters.
                runtime: NameVersion { name: "rust", version: env!("APM_RUSTC_VERSION") },
            },
            process: Process { pid: std::process::id(), ppid: parent_id(), title, argv },
            system: System {
                detected_hostname,
                configured_hostname: config.hostname.clone(),
                architecture: std::env::consts::ARCH,
                platform: std::env::consts::OS,
                container,
                kubernetes,
            },
            cloud: None,
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

    /// Adds what the cloud provider's metadata service said (the reporter asks it).
    pub(crate) fn set_cloud(&mut self, cloud: Option<Cloud>) {
        self.cloud = cloud;
    }

    /// This metadata without `service.agent.activation_method`, which APM Server 8.7.0 must not
    /// get (it breaks its metrics: Elastic's rule).
    pub(crate) fn without_activation_method(&self) -> Metadata {
        let mut m = self.clone();
        m.service.agent.activation_method = None;
        m
    }
}

#[cfg(unix)]
fn parent_id() -> Option<u32> {
    Some(std::os::unix::process::parent_id())
}

#[cfg(not(unix))]
fn parent_id() -> Option<u32> {
    None
}

fn detect_hostname() -> String {
    let from_file = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let from_env = |v: &str| std::env::var(v).ok().map(|s| s.trim().to_string());
    [
        from_file("/proc/sys/kernel/hostname"),
        from_env("HOSTNAME"),
        from_env("HOST"),
        from_env("COMPUTERNAME"),
        from_file("/etc/hostname"),
    ]
    .into_iter()
    .flatten()
    .find(|h| !h.is_empty())
    // Elastic's rule: lower case, so one host is one name whatever the source.
    .map_or_else(|| "unknown".to_string(), |h| h.to_lowercase())
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
    fn the_container_and_pod_found_go_where_the_intake_schema_wants_them() {
        let dir = std::env::temp_dir().join(format!("apm-metadata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cgroup = dir.join("cgroup");
        let line = "9:freezer:/kubepods.slice/kubepods-pod22949dce_fd8b_11ea_8ede_98f2b32c645c.slice/docker-b15a5bdedd2e7645c3be271364324321b908314e4c77857bbfd32a041148c07f.scope";
        std::fs::write(&cgroup, line).unwrap();
        let host = Host { cgroup, mountinfo: dir.join("absent"), env: |_| None };
        let metadata = Metadata::collect_on(&Config::builder().build().unwrap(), &host, Some("builder"));
        let json = serde_json::to_value(&metadata).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let system = &json["system"];
        assert_eq!(system["container"]["id"], "b15a5bdedd2e7645c3be271364324321b908314e4c77857bbfd32a041148c07f");
        assert_eq!(system["kubernetes"]["pod"]["uid"], "22949dce-fd8b-11ea-8ede-98f2b32c645c");
        assert_eq!(system["kubernetes"]["pod"]["name"], system["detected_hostname"]);
        assert_eq!(json["service"]["agent"]["activation_method"], "builder");
        let without = serde_json::to_value(metadata.without_activation_method()).unwrap();
        assert!(without["service"]["agent"].get("activation_method").is_none());
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
