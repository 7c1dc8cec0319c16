//! The agent of a service example: what `w3c_service` and `axum_service` share.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apm_runtime::report::NdjsonFileSink;
use apm_runtime::{Agent, Config};

/// The process-wide agent of a long-running example, and where it sends.
pub struct ServiceAgent {
    agent: Agent,
    /// `None` when shipping to the APM Server, else the NDJSON file written instead.
    file: Option<PathBuf>,
}

impl ServiceAgent {
    /// With `ELASTIC_APM_SERVER_URL` set, `apm_runtime::init()`; otherwise an agent configured
    /// from the environment that writes the intake's NDJSON to `target/<file_name>` (a file
    /// rather than memory: a service may run for a long time). Either way the process's default.
    ///
    /// ```no_run
    /// let service = apm_toolkit::service::ServiceAgent::start("apm-my-service.ndjson")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(file_name: &str) -> Result<ServiceAgent, Box<dyn Error>> {
        if std::env::var_os("ELASTIC_APM_SERVER_URL").is_some() {
            return Ok(ServiceAgent { agent: apm_runtime::init()?, file: None });
        }
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join(file_name);
        std::fs::create_dir_all(file.parent().expect("a path under target/"))?;
        let agent = Agent::builder().config(Config::from_env()?).sink(NdjsonFileSink::create(&file)?).build()?;
        agent.install_global();
        Ok(ServiceAgent { agent, file: Some(file) })
    }

    /// The agent.
    ///
    /// ```no_run
    /// # let service = apm_toolkit::service::ServiceAgent::start("x.ndjson").unwrap();
    /// let _stats = service.agent().stats();
    /// ```
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Delivers what the reporter still holds and says, in one line, how many events went
    /// where and how many were dropped: the last thing a service example prints.
    ///
    /// ```no_run
    /// # let service = apm_toolkit::service::ServiceAgent::start("x.ndjson").unwrap();
    /// service.stop();
    /// ```
    pub fn stop(&self) {
        self.agent.flush(Duration::from_secs(5));
        let stats = self.agent.stats();
        let destination = match &self.file {
            Some(file) => file.display().to_string(),
            None => self.agent.config().server_url().to_string(),
        };
        println!("stopped: {} events sent to {destination}, {} dropped", stats.sent, stats.dropped.total());
    }
}

/// Where a service example listens: `APM_EXAMPLE_ADDR`, else `default`.
///
/// ```
/// assert_eq!(apm_toolkit::service::listen_addr("127.0.0.1:3000").is_empty(), false);
/// ```
pub fn listen_addr(default: &str) -> String {
    std::env::var("APM_EXAMPLE_ADDR").unwrap_or_else(|_| default.to_string())
}
