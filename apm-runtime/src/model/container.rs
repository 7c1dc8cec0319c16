//! Where the process runs, as Linux tells it: the container id and the Kubernetes pod, from
//! `/proc/self/cgroup` and `/proc/self/mountinfo`, and the downward-API variables.
//!
//! The rules are Elastic's (`specs/agents/metadata.md`, "Container/Kubernetes metadata"), so
//! every agent of a service reports the same id. The parsers are pure functions of the files'
//! text: the files are read once, when the agent starts, by [`Host::detect`].

use std::path::PathBuf;

use serde::Serialize;

/// `system.container` of the metadata.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Container {
    pub(crate) id: String,
}

/// `system.kubernetes` of the metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Kubernetes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<Named>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pod: Option<Pod>,
}

/// An object with a name (the Kubernetes node).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Named {
    pub(crate) name: String,
}

/// The Kubernetes pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Pod {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<String>,
}

/// What one cgroup path says.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct CgroupIds {
    pub(crate) container_id: Option<String>,
    pub(crate) pod_uid: Option<String>,
}

/// The files and variables container detection reads: the real ones, or a test's.
pub(crate) struct Host {
    pub(crate) cgroup: PathBuf,
    pub(crate) mountinfo: PathBuf,
    pub(crate) env: fn(&str) -> Option<String>,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            cgroup: "/proc/self/cgroup".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            env: |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
        }
    }
}

impl Host {
    /// The container and Kubernetes pod this process runs in, if any; `hostname` is the pod's
    /// name when only the cgroup names the pod (Kubernetes names a pod's host after the pod).
    pub(crate) fn detect(&self, hostname: &str) -> (Option<Container>, Option<Kubernetes>) {
        let read = |p: &PathBuf| std::fs::read_to_string(p).ok();
        let mut ids = read(&self.cgroup).map(|text| from_cgroup(&text)).unwrap_or_default();
        if ids.container_id.is_none() {
            // cgroup v2 names no container (`0::/`): the hostname file's mount source does.
            ids.container_id = read(&self.mountinfo).and_then(|text| from_mountinfo(&text));
        }
        let env = self.env;
        let mut pod = Pod {
            name: env("KUBERNETES_POD_NAME").or_else(|| ids.pod_uid.as_ref().map(|_| hostname.to_string())),
            uid: env("KUBERNETES_POD_UID").or(ids.pod_uid),
        };
        if pod.name.is_none() && pod.uid.is_none() {
            pod = Pod::default();
        }
        let kubernetes = Kubernetes {
            namespace: env("KUBERNETES_NAMESPACE"),
            node: env("KUBERNETES_NODE_NAME").map(|name| Named { name }),
            pod: (pod != Pod::default()).then_some(pod),
        };
        let container = ids.container_id.map(|id| Container { id });
        (container, (kubernetes != Kubernetes::default()).then_some(kubernetes))
    }
}

/// The container id and pod UID of a `/proc/self/cgroup` text: the first line that names either.
pub(crate) fn from_cgroup(text: &str) -> CgroupIds {
    text.lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .map(from_cgroup_path)
        .find(|ids| ids.container_id.is_some() || ids.pod_uid.is_some())
        .unwrap_or_default()
}

/// One `hierarchy-ID:controllers:path` line's path, by Elastic's algorithm.
fn from_cgroup_path(path: &str) -> CgroupIds {
    // containerd-cri paths end `<dirname>:cri-containerd:<id>`: the last colon splits them.
    let (dirname, basename) = match path.rsplit_once(':') {
        Some((dir, base)) => (dir, base),
        None => path.rsplit_once('/').unwrap_or(("", path)),
    };
    let basename = match basename.strip_suffix(".scope") {
        // `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`.
        Some(scope) => scope.rsplit_once('-').map_or(scope, |(_, id)| id),
        None => basename,
    };
    if let Some(uid) = pod_uid(dirname) {
        return CgroupIds { container_id: Some(basename.to_string()), pod_uid: Some(uid.replace('_', "-")) };
    }
    let container_id = is_container_id(basename).then(|| basename.to_string());
    CgroupIds { container_id, pod_uid: None }
}

/// The pod UID a kubepods cgroup directory names: `/kubepods…/pod<uid>` (cgroupfs driver) or
/// `…kubepods…-pod<uid>.slice` (systemd driver).
fn pod_uid(dirname: &str) -> Option<&str> {
    // (?:^/kubepods[\S]*/pod([^/]+)$)
    if let Some(rest) = dirname.strip_prefix("/kubepods") {
        if let Some((head, last)) = rest.rsplit_once('/') {
            let uid = last.strip_prefix("pod").filter(|u| !u.is_empty());
            if uid.is_some() && !head.contains(char::is_whitespace) {
                return uid;
            }
        }
    }
    // (?:kubepods[^/]*-pod([^/]+)\.slice)
    dirname.split('/').find_map(|segment| {
        let after = &segment[segment.find("kubepods")?..];
        let uid = &after[after.find("-pod")? + "-pod".len()..];
        // The regex is unanchored: containerd-cri's `….slice:cri-containerd` matches too.
        uid.rfind(".slice").map(|end| &uid[..end]).filter(|u| !u.is_empty())
    })
}

/// Elastic's container id shapes: 64 hex digits, a UUID-like id, or ECS's `<32 hex>-<digits>`.
fn is_container_id(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    if hex(s, 64) {
        return true;
    }
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [a, b, c, d, e] => {
            hex(a, 8) && hex(b, 4) && hex(c, 4) && hex(d, 4) && e.len() >= 4 && e.bytes().all(|b| b.is_ascii_hexdigit())
        }
        [task, n] => hex(task, 32) && (1..=10).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// The container id in the mount source of `/etc/hostname` (cgroup v2: Docker and containerd
/// keep that file in a directory named after the container).
pub(crate) fn from_mountinfo(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.split(' ').nth(4) == Some("/etc/hostname"))?;
    let source = line.split(' ').nth(3)?;
    source.split('/').find(|part| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit())).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(container: Option<&str>, pod: Option<&str>) -> CgroupIds {
        CgroupIds { container_id: container.map(str::to_string), pod_uid: pod.map(str::to_string) }
    }

    /// Elastic's cross-agent cases (`tests/agents/json-specs/container_metadata_discovery.json`
    /// of elastic/apm at d4317e3d726ca1d18ac0cb4b63f8ce2feb33f5aa, vendored under tests/fixtures):
    /// every agent must agree on them.
    #[test]
    fn elastics_cross_agent_cases() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/container_metadata_discovery.json");
        let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = cases.as_object().unwrap();
        assert!(cases.len() >= 6);
        for (name, case) in cases {
            let file = |f: &str| {
                case["files"][f]
                    .as_array()
                    .map(|lines| lines.iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n") + "\n")
            };
            let mut found = file("/proc/self/cgroup").map(|t| from_cgroup(&t)).unwrap_or_default();
            if found.container_id.is_none() {
                found.container_id = file("/proc/self/mountinfo").and_then(|t| from_mountinfo(&t));
            }
            let expected = ids(case["containerId"].as_str(), case["podId"].as_str());
            assert_eq!(found, expected, "case {name}");
        }
    }

    /// Cases from the Go agent's tests (`internal/apmhostutil/container_linux_test.go`): Docker
    /// (cgroupfs and systemd), ECS, ECS Fargate, Cloud Foundry Garden, kubepods with the pod UID
    /// (cgroupfs, systemd with crio and docker, containerd-cri), and hosts outside containers.
    #[test]
    fn real_world_cgroup_lines() {
        let docker_id = "051e2ee0bce99116029a13df4a9e943137f19f957f38ac02d6bad96f9b700f76";
        let docker = format!("5:rdma:/\n4:cpuset:/docker/{docker_id}\n0::/system.slice/docker.service\n");
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (&docker, Some(docker_id), None),
            (
                "1:name=systemd:/system.slice/docker-cde7c2bab394630a42d73dc610b9c57415dced996106665d427f6d0566594411.scope",
                Some("cde7c2bab394630a42d73dc610b9c57415dced996106665d427f6d0566594411"),
                None,
            ),
            (
                "3:cpuacct:/ecs/eb9d3d0c-8936-42d7-80d8-f82b2f1a629e/7e9139716d9e5d762d22f9f877b87d1be8b1449ac912c025a984750c5dbff157",
                Some("7e9139716d9e5d762d22f9f877b87d1be8b1449ac912c025a984750c5dbff157"),
                None,
            ),
            (
                "1:name=systemd:/ecs/03752a671e744971a862edcee6195646/03752a671e744971a862edcee6195646-4015103728",
                Some("03752a671e744971a862edcee6195646-4015103728"),
                None,
            ),
            (
                "1:name=systemd:/system.slice/garden.service/garden/70eb4ce5-a065-4401-6990-88ed",
                Some("70eb4ce5-a065-4401-6990-88ed"),
                None,
            ),
            (
                "1:name=systemd:/kubepods/besteffort/pode9b90526-f47d-11e8-b2a5-080027b9f4fb/15aa6e53-b09a-40c7-8558-c6c31e36c88a",
                Some("15aa6e53-b09a-40c7-8558-c6c31e36c88a"),
                Some("e9b90526-f47d-11e8-b2a5-080027b9f4fb"),
            ),
            (
                "1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod90d81341_92de_11e7_8cf2_507b9d4141fa.slice/crio-2227daf62df6694645fee5df53c1f91271546a9560e8600a525690ae252b7f63.scope",
                Some("2227daf62df6694645fee5df53c1f91271546a9560e8600a525690ae252b7f63"),
                Some("90d81341-92de-11e7-8cf2-507b9d4141fa"),
            ),
            (
                "1:name=systemd:/system.slice/containerd.service/kubepods-burstable-podff49d0be_16b7_4a49_bb9e_8ec1f1f4e27f.slice:cri-containerd:0f99ad5f45163ed14ab8eaf92ed34bb4a631d007f8755a7d79be614bcb0df0ef",
                Some("0f99ad5f45163ed14ab8eaf92ed34bb4a631d007f8755a7d79be614bcb0df0ef"),
                Some("ff49d0be-16b7-4a49-bb9e-8ec1f1f4e27f"),
            ),
            (
                "9:freezer:/kubepods.slice/kubepods-pod22949dce_fd8b_11ea_8ede_98f2b32c645c.slice/docker-b15a5bdedd2e7645c3be271364324321b908314e4c77857bbfd32a041148c07f.scope",
                Some("b15a5bdedd2e7645c3be271364324321b908314e4c77857bbfd32a041148c07f"),
                Some("22949dce-fd8b-11ea-8ede-98f2b32c645c"),
            ),
            (
                "12:pids:/kubepods/kubepods/besteffort/pod0e886e9a-3879-45f9-b44d-86ef9df03224/244a65edefdffe31685c42317c9054e71dc1193048cf9459e2a4dd35cbc1dba4",
                Some("244a65edefdffe31685c42317c9054e71dc1193048cf9459e2a4dd35cbc1dba4"),
                Some("0e886e9a-3879-45f9-b44d-86ef9df03224"),
            ),
            // An imaginary future format: the last part is no id.
            (&format!("1:name=systemd:/docker/{docker_id}/not_hex"), None, None),
            ("12:devices:/user.slice\n6:pids:/user.slice/user-1000.slice/session-2.scope\n0::/user.slice/user-1000.slice/session-2.scope", None, None),
            ("0::/", None, None),
            ("garbage without colons\n\n", None, None),
        ];
        for (text, container, pod) in cases {
            assert_eq!(from_cgroup(text), ids(*container, *pod), "{text}");
        }
    }

    #[test]
    fn pods_and_containers_come_from_files_and_the_downward_api() {
        let dir = std::env::temp_dir().join(format!("apm-container-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cgroup = dir.join("cgroup");
        std::fs::write(
            &cgroup,
            "1:name=systemd:/kubepods/besteffort/pode9b90526-f47d-11e8-b2a5-080027b9f4fb/15aa6e53-b09a-40c7-8558-c6c31e36c88a\n",
        )
        .unwrap();
        let missing = dir.join("none");
        let from_cgroup_only = Host { cgroup: cgroup.clone(), mountinfo: missing.clone(), env: |_| None };
        let (container, kubernetes) = from_cgroup_only.detect("my-pod-7d9f");
        assert_eq!(container.unwrap().id, "15aa6e53-b09a-40c7-8558-c6c31e36c88a");
        let pod = kubernetes.unwrap().pod.unwrap();
        assert_eq!(pod.name.as_deref(), Some("my-pod-7d9f"), "the pod's hostname is its name");
        assert_eq!(pod.uid.as_deref(), Some("e9b90526-f47d-11e8-b2a5-080027b9f4fb"));

        let downward = Host {
            cgroup: cgroup.clone(),
            mountinfo: missing.clone(),
            env: |name| {
                let value = match name {
                    "KUBERNETES_POD_NAME" => "api-0",
                    "KUBERNETES_NAMESPACE" => "prod",
                    "KUBERNETES_NODE_NAME" => "node-3",
                    _ => return None,
                };
                Some(value.to_string())
            },
        };
        let kubernetes = downward.detect("ignored").1.unwrap();
        let json = serde_json::to_value(&kubernetes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"namespace": "prod", "node": {"name": "node-3"},
                "pod": {"name": "api-0", "uid": "e9b90526-f47d-11e8-b2a5-080027b9f4fb"}})
        );

        let nowhere = Host { cgroup: missing.clone(), mountinfo: missing, env: |_| None };
        assert_eq!(nowhere.detect("host"), (None, None), "no files: no container, no pod");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
