//! The host's and the process's CPU and memory, from `/proc` (Linux), as Elastic's agents read
//! them. CPU figures are over the last interval and normalised by the number of cores: the
//! process's CPU time is divided by the whole machine's, both in clock ticks from `/proc`, so no
//! tick rate or core count is needed.

use std::borrow::Cow;
use std::path::PathBuf;

use crate::model::metricset::{NamedSamples, Sample};

/// CPU counters at one instant, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ticks {
    /// All CPUs, all states.
    total: u64,
    /// All CPUs, idle or waiting for I/O.
    idle: u64,
    /// This process, user and system.
    process: u64,
}

/// Reads `/proc` (or a copy of it, in tests) and keeps the last CPU reading.
pub(crate) struct System {
    proc: PathBuf,
    last: Option<Ticks>,
}

impl System {
    /// Reads the system's `/proc`, taking the first CPU reading now so that the first interval
    /// has a figure.
    pub(crate) fn new() -> System {
        System::at(PathBuf::from("/proc"))
    }

    pub(crate) fn at(proc: PathBuf) -> System {
        let mut system = System { proc, last: None };
        system.last = system.ticks();
        if system.last.is_none() {
            static SAID: crate::diagnostics::Once = crate::diagnostics::Once::new();
            if SAID.first() {
                crate::diagnostics::info!(
                    "no CPU and memory metrics: {} cannot be read (they are read from Linux's /proc)",
                    system.proc.join("stat").display()
                );
            }
        }
        system
    }

    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.proc.join(file)).ok()
    }

    fn ticks(&self) -> Option<Ticks> {
        let stat = self.read("stat")?;
        let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4).copied().unwrap_or(0);
        let own = self.read("self/stat")?;
        // The command name may hold spaces and parentheses: fields count from the last `)`.
        let fields: Vec<&str> = own[own.rfind(')')? + 1..].split_whitespace().collect();
        let process = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Ticks { total, idle, process })
    }

    /// The samples for the interval since the last call.
    pub(crate) fn samples(&mut self) -> NamedSamples {
        let mut out = Vec::new();
        if let Some(now) = self.ticks() {
            if let Some(last) = self.last.filter(|l| now.total > l.total) {
                let total = (now.total - last.total) as f64;
                let idle = now.idle.saturating_sub(last.idle) as f64;
                let process = now.process.saturating_sub(last.process) as f64;
                out.push((
                    Cow::Borrowed("system.cpu.total.norm.pct"),
                    Sample::percent(((total - idle) / total).clamp(0.0, 1.0)),
                ));
                out.push((
                    Cow::Borrowed("system.process.cpu.total.norm.pct"),
                    Sample::percent((process / total).clamp(0.0, 1.0)),
                ));
            }
            self.last = Some(now);
        }
        if let Some(meminfo) = self.read("meminfo") {
            let kb = |key: &str| {
                meminfo
                    .lines()
                    .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
                    .and_then(|l| l[key.len() + 1..].split_whitespace().next()?.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            if let Some(total) = kb("MemTotal") {
                out.push((Cow::Borrowed("system.memory.total"), Sample::bytes(total as f64)));
            }
            // What the kernel says is available without swapping; older kernels lack it.
            let free = kb("MemAvailable").or_else(|| Some(kb("MemFree")? + kb("Buffers")? + kb("Cached")?));
            if let Some(free) = free {
                out.push((Cow::Borrowed("system.memory.actual.free"), Sample::bytes(free as f64)));
            }
        }
        if let Some(status) = self.read("self/status") {
            let kb = |key: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l[key.len()..].split_whitespace().next()?.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            if let Some(size) = kb("VmSize:") {
                out.push((Cow::Borrowed("system.process.memory.size"), Sample::bytes(size as f64)));
            }
            if let Some(rss) = kb("VmRSS:") {
                out.push((Cow::Borrowed("system.process.memory.rss.bytes"), Sample::bytes(rss as f64)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_proc(stat: &str, own: &str) -> (tempdir::Dir, System) {
        let dir = tempdir::Dir::new();
        std::fs::create_dir_all(dir.0.join("self")).unwrap();
        std::fs::write(dir.0.join("stat"), stat).unwrap();
        std::fs::write(dir.0.join("self/stat"), own).unwrap();
        std::fs::write(dir.0.join("meminfo"), "MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable:   400 kB\n").unwrap();
        std::fs::write(dir.0.join("self/status"), "Name:\tx\nVmSize:\t   2000 kB\nVmRSS:\t  300 kB\n").unwrap();
        let system = System::at(dir.0.clone());
        (dir, system)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "apm-proc-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn cpu_over_the_interval_normalised_and_memory_in_bytes() {
        let own = |utime: u64| format!("42 (my (odd) app) S 1 2 3 4 5 6 7 8 9 10 {utime} 20 0 0");
        let (dir, mut system) = fake_proc("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 1 1 1\n", &own(30));
        // 1000 more ticks, of which 250 idle or iowait; the process used 50 + 0 more.
        std::fs::write(dir.0.join("stat"), "cpu  500 0 250 900 150 200 0 0 0 0\n").unwrap();
        std::fs::write(dir.0.join("self/stat"), own(80)).unwrap();
        let samples = system.samples();
        let get = |name: &str| match samples.iter().find(|(n, _)| n == name).map(|(_, s)| s) {
            Some(Sample::Value { value, .. }) => *value,
            other => panic!("{name}: {other:?}"),
        };
        // Busy is what is neither idle nor iowait (Metricbeat's `system.cpu.total.pct`).
        assert_eq!(get("system.cpu.total.norm.pct"), 0.75);
        assert_eq!(get("system.process.cpu.total.norm.pct"), 0.05);
        assert_eq!(get("system.memory.total"), 1_024_000.0);
        assert_eq!(get("system.memory.actual.free"), 409_600.0);
        assert_eq!(get("system.process.memory.size"), 2_048_000.0);
        assert_eq!(get("system.process.memory.rss.bytes"), 307_200.0);
    }
}
