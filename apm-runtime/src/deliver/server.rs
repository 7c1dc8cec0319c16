//! What the agent learns about its APM Server: the version it answers `GET /` with.
//!
//! Elastic's rule: APM Server 8.0 and later does not want unsampled transactions (it derives
//! what it needs from sampled ones and the spans' metrics), so agents stop sending them once
//! they know the server is that new; before they know, or with an older server, they send them.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// The APM Server's major version, learned once; shared by the prober and the intake sink.
#[derive(Default)]
pub(crate) struct ServerInfo {
    /// 0 until a probe succeeded.
    major: AtomicU32,
    /// Exactly 8.7.0: the one version that must not get `service.agent.activation_method`.
    is_8_7_0: AtomicBool,
}

impl ServerInfo {
    /// Whether the server's version is known.
    pub(crate) fn known(&self) -> bool {
        self.major.load(Ordering::Relaxed) != 0
    }

    /// Whether unsampled transactions stay home (the server is 8.0 or later).
    pub(crate) fn drops_unsampled(&self) -> bool {
        self.major.load(Ordering::Relaxed) >= 8
    }

    /// Whether the metadata must leave out `service.agent.activation_method` (APM Server 8.7.0
    /// mishandles it; unknown and other versions get it).
    pub(crate) fn refuses_activation_method(&self) -> bool {
        self.is_8_7_0.load(Ordering::Relaxed)
    }

    /// Asks the server its version (`GET /`); `true` once known.
    pub(crate) fn probe(&self, client: &ureq::Agent, server_url: &str, auth: Option<&str>, timeout: Duration) -> bool {
        let mut request = client.get(server_url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let answer = request.config().timeout_global(Some(timeout)).build().call();
        let version = answer
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|body| version(&body));
        if let Some((major, minor, patch)) = version {
            self.is_8_7_0.store((major, minor, patch) == (8, 7, Some(0)), Ordering::Relaxed);
            self.major.store(major, Ordering::Relaxed);
            crate::diagnostics::info!("the APM Server's major version is {major}");
        }
        self.known()
    }
}

/// The major version in an APM Server's `GET /` answer (`{"version": "8.15.0", …}`).
#[cfg(test)]
fn major_version(body: &str) -> Option<u32> {
    version(body).map(|(major, _, _)| major)
}

/// The major, minor and patch (when plain digits) of an APM Server's `GET /` answer.
fn version(body: &str) -> Option<(u32, u32, Option<u32>)> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let mut parts = json.get("version")?.as_str()?.trim().split('.');
    let major = parts.next()?.parse().ok().filter(|&m| m > 0)?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    // `8.7.0-SNAPSHOT` is not 8.7.0.
    let patch = parts.next().and_then(|p| p.parse().ok());
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_major_version_is_read_from_the_root_answer() {
        assert_eq!(major_version(r#"{"build_date":"x","version":"8.15.2","publish_ready":true}"#), Some(8));
        assert_eq!(major_version(r#"{"version":"7.17.0"}"#), Some(7));
        assert_eq!(major_version(r#"{"ok":{"version":"7.1.0"}}"#), None, "6.x nested it; treated as unknown");
        assert_eq!(major_version("not json"), None);
        assert_eq!(version(r#"{"version":"8.7.0"}"#), Some((8, 7, Some(0))));
        assert_eq!(version(r#"{"version":"8.7.1"}"#), Some((8, 7, Some(1))));
        assert_eq!(version(r#"{"version":"8.7.0-SNAPSHOT"}"#), Some((8, 7, None)));
        let info = ServerInfo::default();
        assert!(!info.known() && !info.drops_unsampled());
        info.major.store(8, Ordering::Relaxed);
        assert!(info.drops_unsampled());
        info.major.store(7, Ordering::Relaxed);
        assert!(!info.drops_unsampled());
    }
}
