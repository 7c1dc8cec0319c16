//! The process's cgroup memory, under cgroup v1 or v2, as Elastic's agents report it for
//! containers: `system.process.cgroup.memory.mem.usage.bytes`, and `…limit.bytes` unless the
//! cgroup is unlimited.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::model::metricset::{NamedSamples, Sample};

/// v1 writes "no limit" as the largest page-aligned `i64`; anything this large is no limit.
const V1_UNLIMITED: u64 = 1 << 62;

/// Where to read: the process's `/proc/self/cgroup` and the cgroup filesystem's mount.
pub(crate) struct Cgroup {
    self_cgroup: PathBuf,
    root: PathBuf,
}

impl Cgroup {
    pub(crate) fn new() -> Cgroup {
        Cgroup::at(PathBuf::from("/proc/self/cgroup"), PathBuf::from("/sys/fs/cgroup"))
    }

    pub(crate) fn at(self_cgroup: PathBuf, root: PathBuf) -> Cgroup {
        Cgroup { self_cgroup, root }
    }

    /// Usage and limit (`None`: unlimited), or nothing when no memory cgroup is found.
    fn memory(&self) -> Option<(u64, Option<u64>)> {
        let cgroups = std::fs::read_to_string(&self.self_cgroup).ok()?;
        let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok().map(|s| s.trim().to_string());
        // A container sees its own cgroup mounted at the root while /proc names the host's
        // path: the named directory when it exists, else the mount itself.
        let dir = |base: PathBuf, path: &str| {
            let named = base.join(path.trim_start_matches('/'));
            if named.is_dir() {
                named
            } else {
                base
            }
        };
        for line in cgroups.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if controllers.split(',').any(|c| c == "memory") {
                let d = dir(self.root.join("memory"), path);
                let usage = read(&d, "memory.usage_in_bytes")?.parse().ok()?;
                let limit =
                    read(&d, "memory.limit_in_bytes").and_then(|l| l.parse::<u64>().ok()).filter(|&l| l < V1_UNLIMITED);
                return Some((usage, limit));
            }
        }
        let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
        let d = dir(self.root.clone(), path);
        let usage = read(&d, "memory.current")?.parse().ok()?;
        let limit = read(&d, "memory.max").and_then(|l| l.parse::<u64>().ok());
        Some((usage, limit))
    }

    pub(crate) fn samples(&self) -> NamedSamples {
        let Some((usage, limit)) = self.memory() else { return Vec::new() };
        let mut out =
            vec![(Cow::Borrowed("system.process.cgroup.memory.mem.usage.bytes"), Sample::bytes(usage as f64))];
        if let Some(limit) = limit {
            out.push((Cow::Borrowed("system.process.cgroup.memory.mem.limit.bytes"), Sample::bytes(limit as f64)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<(String, f64)> {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup").join(name);
        Cgroup::at(base.join("self_cgroup"), base.join("sys"))
            .samples()
            .into_iter()
            .map(|(n, s)| match s {
                Sample::Value { value, unit: Some("byte"), .. } => (n.into_owned(), value),
                other => panic!("{n}: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn cgroup_v1_memory_usage_and_limit() {
        assert_eq!(
            fixture("v1"),
            [
                ("system.process.cgroup.memory.mem.usage.bytes".to_string(), 52_428_800.0),
                ("system.process.cgroup.memory.mem.limit.bytes".to_string(), 268_435_456.0)
            ]
        );
    }

    #[test]
    fn cgroup_v2_memory_usage_and_limit_and_no_limit_when_unlimited() {
        assert_eq!(
            fixture("v2"),
            [
                ("system.process.cgroup.memory.mem.usage.bytes".to_string(), 73_400_320.0),
                ("system.process.cgroup.memory.mem.limit.bytes".to_string(), 536_870_912.0)
            ]
        );
        assert_eq!(
            fixture("v2-unlimited"),
            [("system.process.cgroup.memory.mem.usage.bytes".to_string(), 1_048_576.0)]
        );
        assert!(fixture("missing").is_empty(), "no cgroup file: no samples");
    }
}
