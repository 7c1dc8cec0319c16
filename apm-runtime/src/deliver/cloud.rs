//! Cloud metadata: which cloud the host runs in (provider, region, zone, instance, machine type,
//! account or project), asked of the provider's metadata service as Elastic's agents do
//! (`specs/agents/metadata.md`, "Cloud Provider Metadata").
//!
//! These are HTTP requests to link-local addresses that may not answer at all, so they never
//! run on an application thread or in `init()`: the reporter starts them when it starts (one
//! short-lived thread per provider asked, all at once for `auto`), and holds the events it
//! drains, unwritten, until an answer is in or [`TIMEOUT`] passed. The first intake request
//! then opens with a metadata line that carries `cloud`, as the spec wants.
//!
//! The requests go straight to the metadata service, never through a proxy: the addresses
//! are link-local, and the answer must describe this machine.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::Value;

use crate::config::CloudProvider;
use crate::model::metadata::{Cloud, IdName, Machine};

/// How long the reporter waits for the metadata services, all providers together.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

/// Where each provider's metadata service listens (base URLs, no trailing slash).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Endpoints {
    pub(crate) aws: String,
    pub(crate) gcp: String,
    pub(crate) azure: String,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        Endpoints {
            aws: "http://169.254.169.254".into(),
            gcp: "http://metadata.google.internal".into(),
            azure: "http://169.254.169.254".into(),
        }
    }
}

/// A detection the reporter is to start: which provider to ask, and where.
pub(crate) struct Detection {
    pub(crate) provider: CloudProvider,
    pub(crate) endpoints: Endpoints,
}

/// A detection under way: the providers' answers arrive on `answers`.
pub(crate) struct Pending {
    answers: Receiver<Option<Cloud>>,
    /// How many providers have not answered yet.
    waiting: usize,
    deadline: Instant,
}

impl Detection {
    /// Asks every provider `provider` names, each on a thread of its own.
    pub(crate) fn start(self) -> Pending {
        let providers = match self.provider {
            CloudProvider::Auto => vec![CloudProvider::Aws, CloudProvider::Gcp, CloudProvider::Azure],
            CloudProvider::None => Vec::new(),
            one => vec![one],
        };
        let deadline = Instant::now() + TIMEOUT;
        let (send, answers) = crossbeam_channel::bounded(providers.len());
        let mut waiting = 0;
        for provider in providers {
            let (send, endpoints) = (send.clone(), self.endpoints.clone());
            let explicit = self.provider != CloudProvider::Auto;
            // Detached: a metadata host that never answers (or a DNS lookup that hangs) keeps
            // only this thread, which ends with its request's timeout.
            let spawned = std::thread::Builder::new().name("apm-cloud-metadata".into()).spawn(move || {
                let _agent_work = crate::model::thread::agent_work();
                let answer = ask(provider, &endpoints, deadline);
                // With `auto`, two of three providers saying no is the normal case.
                if let (Err(why), true) = (&answer, explicit) {
                    crate::diagnostics::warning!("ELASTIC_APM_CLOUD_PROVIDER={provider}: no cloud metadata: {why}");
                }
                let _ = send.send(answer.ok());
            });
            waiting += usize::from(spawned.is_ok());
        }
        Pending { answers, waiting, deadline }
    }
}

impl Pending {
    /// Waits until `until` at most: `Ok` with the first provider's metadata, or `Ok(None)` once
    /// every provider said no or the detection's own deadline passed; `Err` with the detection
    /// still under way.
    pub(crate) fn wait_until(mut self, until: Instant) -> Result<Option<Cloud>, Pending> {
        let until = until.min(self.deadline);
        while self.waiting > 0 {
            match self.answers.recv_deadline(until) {
                Ok(Some(cloud)) => {
                    crate::diagnostics::info!("cloud metadata: {}", cloud.provider);
                    return Ok(Some(cloud));
                }
                Ok(None) => self.waiting -= 1,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) if Instant::now() >= self.deadline => break,
                Err(RecvTimeoutError::Timeout) => return Err(self),
            }
        }
        Ok(None)
    }
}

/// One provider's metadata, asked by `deadline`.
fn ask(provider: CloudProvider, endpoints: &Endpoints, deadline: Instant) -> Result<Cloud, String> {
    let client: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("apm-agent-rust/{}", crate::model::metadata::AGENT_VERSION))
        .build()
        .into();
    let left = || Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)));
    let read = |response: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        let mut response = response.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status().as_u16()));
        }
        let flavor = response.headers().get("metadata-flavor").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((body, flavor))
    };
    match provider {
        CloudProvider::Aws => {
            // IMDSv2: a session token first, then the instance identity document with it.
            let put = client
                .put(format!("{}/latest/api/token", endpoints.aws))
                .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
                .config()
                .timeout_global(left())
                .build()
                .send_empty();
            let (token, _) = read(put)?;
            let get = client
                .get(format!("{}/latest/dynamic/instance-identity/document", endpoints.aws))
                .header("X-aws-ec2-metadata-token", token.trim())
                .config()
                .timeout_global(left())
                .build()
                .call();
            aws(&read(get)?.0)
        }
        CloudProvider::Gcp => {
            let get = client
                .get(format!("{}/computeMetadata/v1/?recursive=true", endpoints.gcp))
                .header("Metadata-Flavor", "Google")
                .config()
                .timeout_global(left())
                .build()
                .call();
            let (body, flavor) = read(get)?;
            // Google's server says so; anything else answering that name is not it.
            if flavor.as_deref() != Some("Google") {
                return Err("the answer lacks `Metadata-Flavor: Google`".into());
            }
            gcp(&body)
        }
        _ => {
            let get = client
                .get(format!("{}/metadata/instance/compute?api-version=2019-08-15", endpoints.azure))
                .header("Metadata", "true")
                .config()
                .timeout_global(left())
                .build()
                .call();
            azure(&read(get)?.0)
        }
    }
}

fn json(body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))
}

/// A field as text (GCP's instance id is a number too large for some JSON readers: kept as
/// its digits), `None` when absent or empty.
fn text(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// AWS's instance identity document.
fn aws(body: &str) -> Result<Cloud, String> {
    let doc = json(body)?;
    let instance = text(&doc, "/instanceId");
    if instance.is_none() {
        return Err("no instanceId in the identity document".into());
    }
    Ok(Cloud {
        provider: "aws",
        region: text(&doc, "/region"),
        availability_zone: text(&doc, "/availabilityZone"),
        instance: IdName::of(instance, None),
        machine: text(&doc, "/instanceType").map(|kind| Machine { kind }),
        account: IdName::of(text(&doc, "/accountId"), None),
        project: None,
    })
}

/// GCP's recursive `computeMetadata/v1` answer.
fn gcp(body: &str) -> Result<Cloud, String> {
    let doc = json(body)?;
    let instance = IdName::of(text(&doc, "/instance/id"), text(&doc, "/instance/name"));
    if instance.is_none() {
        return Err("no instance in the answer".into());
    }
    let last = |p: &str| text(&doc, p).and_then(|v| v.rsplit('/').next().map(str::to_string));
    // `projects/123/zones/us-west1-b`: the zone, and its region `us-west1`.
    let zone = last("/instance/zone");
    let region = zone.as_deref().and_then(|z| z.rsplit_once('-')).map(|(region, _)| region.to_string());
    Ok(Cloud {
        provider: "gcp",
        region,
        availability_zone: zone,
        instance,
        machine: last("/instance/machineType").map(|kind| Machine { kind }),
        account: None,
        project: IdName::of(text(&doc, "/project/projectId"), None),
    })
}

/// Azure's `metadata/instance/compute` answer.
fn azure(body: &str) -> Result<Cloud, String> {
    let doc = json(body)?;
    let instance = IdName::of(text(&doc, "/vmId"), text(&doc, "/name"));
    if instance.is_none() {
        return Err("no vmId in the answer".into());
    }
    Ok(Cloud {
        provider: "azure",
        region: text(&doc, "/location"),
        availability_zone: text(&doc, "/zone"),
        instance,
        machine: text(&doc, "/vmSize").map(|kind| Machine { kind }),
        account: IdName::of(text(&doc, "/subscriptionId"), None),
        project: IdName::of(None, text(&doc, "/resourceGroupName")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(cloud: Result<Cloud, String>) -> Value {
        serde_json::to_value(cloud.unwrap()).unwrap()
    }

    /// Answers as AWS, GCP and Azure document them.
    #[test]
    fn each_providers_answer_maps_to_elastics_fields() {
        let aws_doc = r#"{"accountId":"946960629917","architecture":"x86_64","availabilityZone":"us-east-2a",
            "imageId":"ami-07c1207a9d40bc3bd","instanceId":"i-0ae894a7c1c4f2a75","instanceType":"t2.medium",
            "pendingTime":"2020-06-12T17:46:09Z","privateIp":"172.31.0.212","region":"us-east-2","version":"2017-09-30"}"#;
        assert_eq!(
            json_of(aws(aws_doc)),
            serde_json::json!({"provider":"aws","region":"us-east-2","availability_zone":"us-east-2a",
                "instance":{"id":"i-0ae894a7c1c4f2a75"},"machine":{"type":"t2.medium"},"account":{"id":"946960629917"}})
        );
        let gcp_doc = r#"{"instance":{"id":4306570268266786072,"machineType":"projects/513326162531/machineTypes/n1-standard-1",
            "name":"basepi-test","zone":"projects/513326162531/zones/us-west3-a"},
            "project":{"numericProjectId":513326162531,"projectId":"elastic-apm"}}"#;
        assert_eq!(
            json_of(gcp(gcp_doc)),
            serde_json::json!({"provider":"gcp","region":"us-west3","availability_zone":"us-west3-a",
                "instance":{"id":"4306570268266786072","name":"basepi-test"},"machine":{"type":"n1-standard-1"},
                "project":{"id":"elastic-apm"}})
        );
        let azure_doc = r#"{"location":"westus2","name":"basepi-test","resourceGroupName":"basepi-testing",
            "subscriptionId":"7657426d-c4c3-44ac-88a2-3b2cd59e6dba","vmId":"e11ebedc-019d-427f-84dd-56cd4388d3a8",
            "vmScaleSetName":"","vmSize":"Standard_D2s_v3","zone":""}"#;
        assert_eq!(
            json_of(azure(azure_doc)),
            serde_json::json!({"provider":"azure","region":"westus2",
                "instance":{"id":"e11ebedc-019d-427f-84dd-56cd4388d3a8","name":"basepi-test"},
                "machine":{"type":"Standard_D2s_v3"},"account":{"id":"7657426d-c4c3-44ac-88a2-3b2cd59e6dba"},
                "project":{"name":"basepi-testing"}})
        );
        assert!(aws("{}").is_err() && gcp(r#"{"project":{}}"#).is_err() && azure("<html>").is_err());
    }

    #[test]
    fn none_asks_nobody_and_a_silent_provider_costs_at_most_the_timeout() {
        let none = Detection { provider: CloudProvider::None, endpoints: Endpoints::default() }.start();
        assert!(matches!(none.wait_until(Instant::now()), Ok(None)));

        // A listener that accepts and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let endpoints = Endpoints { aws: url.clone(), gcp: url.clone(), azure: url };
        let start = Instant::now();
        let pending = Detection { provider: CloudProvider::Auto, endpoints }.start();
        let pending = match pending.wait_until(Instant::now()) {
            Err(p) => p,
            Ok(answer) => panic!("answered at once: {answer:?}"),
        };
        assert!(matches!(pending.wait_until(Instant::now() + Duration::from_secs(10)), Ok(None)));
        let took = start.elapsed();
        assert!(took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(500), "{took:?}");
    }
}
