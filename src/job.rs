//! The agent of a job example: what `exit_spans` and `tracing_bridge` share. A job runs, then
//! shows what it recorded: the waterfall in the terminal, or a line saying what went to the
//! APM Server.

use std::error::Error;
use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, Config};

/// The process-wide agent of a job example.
pub struct JobAgent {
    agent: Agent,
    /// `None` when shipping to the APM Server.
    memory: Option<MemorySink>,
}

impl JobAgent {
    /// With `ELASTIC_APM_SERVER_URL` set, `apm_runtime::init()`; otherwise an agent named
    /// `service` that keeps the events in memory for the waterfall. Either way the process's
    /// default.
    ///
    /// ```
    /// let job = apm_toolkit::job::JobAgent::start("doc-job")?;
    /// job.finish();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(service: &str) -> Result<JobAgent, Box<dyn Error>> {
        if std::env::var_os("ELASTIC_APM_SERVER_URL").is_some() {
            return Ok(JobAgent { agent: apm_runtime::init()?, memory: None });
        }
        let memory = MemorySink::new();
        let config = Config::builder().service_name(service).build()?;
        let agent = Agent::builder().config(config).sink(memory.clone()).build()?;
        agent.install_global();
        Ok(JobAgent { agent, memory: Some(memory) })
    }

    /// What the job recorded, when it is kept in memory.
    ///
    /// ```
    /// # let job = apm_toolkit::job::JobAgent::start("doc-job").unwrap();
    /// let _kept = job.memory();
    /// ```
    pub fn memory(&self) -> Option<&MemorySink> {
        self.memory.as_ref()
    }

    /// Delivers what the reporter holds, then prints the waterfall (`COLUMNS` wide, colored
    /// unless `NO_COLOR`) and writes it as HTML to `target/apm-waterfall-<service>.html`, or
    /// prints what was sent where.
    ///
    /// ```
    /// # let job = apm_toolkit::job::JobAgent::start("doc-job").unwrap();
    /// job.finish();
    /// ```
    pub fn finish(&self) {
        self.agent.flush(Duration::from_secs(5));
        match &self.memory {
            Some(memory) => {
                let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(120);
                let waterfall = memory.waterfall();
                println!("{}", waterfall.render_text(width, std::env::var_os("NO_COLOR").is_none()));
                let service = self.agent.config().service_name().to_string();
                let html = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("target")
                    .join(format!("apm-waterfall-{service}.html"));
                match std::fs::write(&html, waterfall.render_html(&service)) {
                    Ok(()) => println!("HTML waterfall: {}", html.display()),
                    Err(e) => eprintln!("could not write {}: {e}", html.display()),
                }
            }
            None => {
                let stats = self.agent.stats();
                let url = self.agent.config().server_url();
                println!("sent {} events to {url} ({} dropped)", stats.sent, stats.dropped.total());
            }
        }
    }
}
