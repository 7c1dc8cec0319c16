//! The metadata line of intake requests. Cloud metadata against loopback fakes of AWS's IMDSv2, GCP's and Azure's metadata services:
//! each is asked the way the real one wants (token PUT then GET; `Metadata-Flavor: Google`;
//! `Metadata: true` and an api-version), `auto` asks all three at once, the first intake
//! request waits for the answer (at most a second), and an agent that reports to the
//! application's own sinks, or with `cloud_provider = none`, asks nothing. Process, runtime
//! and activation method as Elastic's spec says (no `argv` by default; no activation method for
//! APM Server 8.7.0).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use apm_runtime::{Agent, CloudProvider, Config};
use serde_json::{json, Value};
use support::intake::IntakeServer;

/// One request as a fake metadata service saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a fake answers: status, extra headers, body; `None` never answers.
type Reply = Option<(u16, Vec<(&'static str, String)>, String)>;

/// A metadata service on loopback that answers each request with `answer(request)`.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (record, answer) = (seen.clone(), Arc::new(answer));
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (record, answer) = (record.clone(), answer.clone());
                thread::spawn(move || serve(conn, &record, &*answer));
            }
        });
        Fake { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, record: &Mutex<Vec<Seen>>, answer: &dyn Fn(&Seen) -> Reply) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let request = Seen { method, target, headers };
    record.lock().unwrap().push(request.clone());
    let Some((status, extra, body)) = answer(&request) else {
        // Holds the connection open, answering nothing.
        thread::sleep(Duration::from_secs(5));
        return;
    };
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let _ = out.write_all(format!("{head}\r\n{body}").as_bytes());
}

const TOKEN: &str = "AQAEAFTNrA4eEGx0AQgJ1arIq_Cc-t4tt";

/// AWS's IMDSv2: a token for a PUT with a TTL, the identity document for a GET with the token.
fn aws() -> Fake {
    Fake::start(|r| match (r.method.as_str(), r.target.as_str()) {
        ("PUT", "/latest/api/token") if r.header("X-aws-ec2-metadata-token-ttl-seconds").is_some() => {
            // Slow, as a real metadata service may be: the first request must wait for it.
            thread::sleep(Duration::from_millis(300));
            Some((200, vec![], TOKEN.to_string()))
        }
        ("GET", "/latest/dynamic/instance-identity/document")
            if r.header("X-aws-ec2-metadata-token") == Some(TOKEN) =>
        {
            let doc = json!({"accountId": "946960629917", "availabilityZone": "us-east-2a",
                "instanceId": "i-0ae894a7c1c4f2a75", "instanceType": "t2.medium", "region": "us-east-2"});
            Some((200, vec![], doc.to_string()))
        }
        _ => Some((401, vec![], String::new())),
    })
}

fn gcp() -> Fake {
    Fake::start(|r| {
        if r.target != "/computeMetadata/v1/?recursive=true" || r.header("Metadata-Flavor") != Some("Google") {
            return Some((403, vec![], String::new()));
        }
        // The instance id is a number past 2^53, as Google sends it.
        let body = r#"{"instance":{"id":4306570268266786072,"machineType":"projects/513326162531/machineTypes/n1-standard-1",
            "name":"basepi-test","zone":"projects/513326162531/zones/us-west3-a"},
            "project":{"numericProjectId":513326162531,"projectId":"elastic-apm"}}"#;
        Some((200, vec![("Metadata-Flavor", "Google".to_string())], body.to_string()))
    })
}

fn azure() -> Fake {
    Fake::start(|r| {
        if r.target != "/metadata/instance/compute?api-version=2019-08-15" || r.header("Metadata") != Some("true") {
            return Some((400, vec![], String::new()));
        }
        let doc = json!({"location": "westus2", "name": "basepi-test", "resourceGroupName": "basepi-testing",
            "subscriptionId": "7657426d-c4c3-44ac-88a2-3b2cd59e6dba", "vmId": "e11ebedc-019d-427f-84dd-56cd4388d3a8",
            "vmSize": "Standard_D2s_v3", "zone": ""});
        Some((200, vec![], doc.to_string()))
    })
}

/// An agent reporting to `intake`, asking the fakes.
fn agent(intake: &IntakeServer, provider: CloudProvider, fakes: [&Fake; 3]) -> Agent {
    let config = Config::builder()
        .service_name("cloud-test")
        .server_url(intake.url())
        .central_config(false)
        .cloud_provider(provider)
        .build()
        .unwrap();
    Agent::builder()
        .config(config)
        .cloud_metadata_endpoints(&fakes[0].url, &fakes[1].url, &fakes[2].url)
        .build()
        .unwrap()
}

/// Ends one transaction at once, flushes, and returns the metadata of every request sent.
fn first_request_metadata(agent: &Agent, intake: &IntakeServer) -> Vec<Value> {
    agent.transaction("t").start().end();
    assert!(agent.flush(Duration::from_secs(10)), "flushed");
    // Asserts that every line the intake saw validated against the schemas.
    assert!(!intake.accepted_events().is_empty());
    let requests = intake.requests();
    let metadata: Vec<Value> = requests.iter().map(|r| r.lines[0].1.clone()).collect();
    for m in &metadata {
        support::schemas().check("metadata", m).unwrap();
    }
    metadata
}

#[test]
fn each_provider_is_asked_as_it_wants_and_the_first_request_carries_its_answer() {
    let expected = [
        (
            CloudProvider::Aws,
            json!({"provider": "aws", "region": "us-east-2", "availability_zone": "us-east-2a",
                "instance": {"id": "i-0ae894a7c1c4f2a75"}, "machine": {"type": "t2.medium"},
                "account": {"id": "946960629917"}}),
        ),
        (
            CloudProvider::Gcp,
            json!({"provider": "gcp", "region": "us-west3", "availability_zone": "us-west3-a",
                "instance": {"id": "4306570268266786072", "name": "basepi-test"},
                "machine": {"type": "n1-standard-1"}, "project": {"id": "elastic-apm"}}),
        ),
        (
            CloudProvider::Azure,
            json!({"provider": "azure", "region": "westus2",
                "instance": {"id": "e11ebedc-019d-427f-84dd-56cd4388d3a8", "name": "basepi-test"},
                "machine": {"type": "Standard_D2s_v3"}, "account": {"id": "7657426d-c4c3-44ac-88a2-3b2cd59e6dba"},
                "project": {"name": "basepi-testing"}}),
        ),
    ];
    for (provider, cloud) in expected {
        let (a, g, z) = (aws(), gcp(), azure());
        let intake = IntakeServer::start();
        let agent = agent(&intake, provider, [&a, &g, &z]);
        // Every request's metadata (schema-valid) has the cloud.
        for metadata in first_request_metadata(&agent, &intake) {
            assert_eq!(metadata["cloud"], cloud, "{provider}");
        }
        // Only the provider named was asked.
        let asked: Vec<usize> = [&a, &g, &z].iter().map(|f| f.seen().len()).collect();
        match provider {
            CloudProvider::Aws => {
                let seen = a.seen();
                assert_eq!(asked, [2, 0, 0]);
                assert_eq!(
                    (seen[0].method.as_str(), seen[0].header("X-aws-ec2-metadata-token-ttl-seconds")),
                    ("PUT", Some("300"))
                );
                assert_eq!(seen[1].header("X-aws-ec2-metadata-token"), Some(TOKEN));
            }
            CloudProvider::Gcp => assert_eq!(asked, [0, 1, 0]),
            _ => assert_eq!(asked, [0, 0, 1]),
        }
    }
}

#[test]
fn auto_asks_all_three_at_once_and_takes_the_one_that_answers() {
    // This host is on GCP: AWS's address does not answer at all, Azure's refuses.
    let silent_aws = Fake::start(|_| None);
    let refusing_azure = Fake::start(|_| Some((404, vec![], String::new())));
    let g = gcp();
    let intake = IntakeServer::start();
    let started = Instant::now();
    let agent = agent(&intake, CloudProvider::Auto, [&silent_aws, &g, &refusing_azure]);
    let metadata = first_request_metadata(&agent, &intake);
    let took = started.elapsed();
    assert_eq!(metadata[0]["cloud"]["provider"], "gcp");
    assert!(took < Duration::from_millis(900), "not held up by the silent provider: {took:?}");
    assert_eq!(silent_aws.seen().len(), 1, "AWS was asked too");
    assert_eq!(refusing_azure.seen().len(), 1, "Azure was asked too");
}

#[test]
fn silent_metadata_services_hold_the_first_request_for_at_most_a_second() {
    let fakes: Vec<Fake> = (0..3).map(|_| Fake::start(|_| None)).collect();
    let intake = IntakeServer::start();
    let started = Instant::now();
    let agent = agent(&intake, CloudProvider::Auto, [&fakes[0], &fakes[1], &fakes[2]]);
    let metadata = first_request_metadata(&agent, &intake);
    let took = started.elapsed();
    assert!(metadata[0].get("cloud").is_none(), "{}", metadata[0]);
    assert!(took >= Duration::from_millis(900), "the request waited for the metadata services: {took:?}");
    assert!(took < Duration::from_secs(3), "but not for long: {took:?}");
    assert!(fakes.iter().all(|f| f.seen().len() == 1), "each was asked once");
}

#[test]
fn none_and_an_applications_own_sinks_ask_no_metadata_service() {
    let (a, g, z) = (aws(), gcp(), azure());
    let intake = IntakeServer::start();
    let agent = agent(&intake, CloudProvider::None, [&a, &g, &z]);
    let metadata = first_request_metadata(&agent, &intake);
    assert!(metadata[0].get("cloud").is_none());
    drop(agent);

    let sink = apm_runtime::report::MemorySink::new();
    let own = Agent::builder()
        .config(Config::builder().service_name("own-sink").build().unwrap())
        .cloud_metadata_endpoints(&a.url, &g.url, &z.url)
        .sink(sink.clone())
        .build()
        .unwrap();
    own.transaction("t").start().end();
    assert!(own.flush(Duration::from_secs(5)));
    assert!(sink.metadata().unwrap().get("cloud").is_none());
    drop(own);
    thread::sleep(Duration::from_millis(200));
    let asked = a.seen().len() + g.seen().len() + z.seen().len();
    assert_eq!(asked, 0, "no metadata service was asked");
}

#[test]
fn the_metadata_line_describes_process_runtime_and_activation_without_argv() {
    let (a, g, z) = (aws(), gcp(), azure());
    let intake = IntakeServer::start();
    let agent = agent(&intake, CloudProvider::Azure, [&a, &g, &z]);
    let m = &first_request_metadata(&agent, &intake)[0];
    assert!(m["process"].get("argv").is_none(), "no argv by default: {}", m["process"]);
    assert_eq!(m["process"]["pid"], std::process::id());
    assert!(m["process"]["ppid"].as_u64().is_some_and(|p| p > 0), "{}", m["process"]);
    assert_eq!(m["service"]["runtime"]["name"], "rust");
    assert!(m["service"]["runtime"]["version"].as_str().unwrap().starts_with("1."));
    assert_eq!(m["service"]["agent"]["activation_method"], "builder");
    let host = m["system"]["detected_hostname"].as_str().unwrap();
    assert_eq!(host, host.to_lowercase(), "Elastic's rule: lower case");
}

#[test]
fn apm_server_8_7_0_gets_no_activation_method_and_8_7_1_does() {
    for (version, sent) in [("8.7.0", false), ("8.7.1", true)] {
        let intake = IntakeServer::start();
        intake.set_version(Some(version));
        let (a, g, z) = (aws(), gcp(), azure());
        let agent = agent(&intake, CloudProvider::None, [&a, &g, &z]);
        assert!(intake.wait_for_gets(Duration::from_secs(10), |gets| gets.iter().any(|g| g.target == "/")));
        // The version is known once the answer is read; each flush opens a new request.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut requests = 0;
        loop {
            let metadata = first_request_metadata(&agent, &intake).pop().unwrap();
            requests += 1;
            let has = metadata["service"]["agent"].get("activation_method").is_some();
            if !sent && !has {
                break;
            }
            assert!(sent || Instant::now() < deadline, "8.7.0 still got the activation method");
            assert!(!sent || has, "{version} lost the activation method");
            if sent && requests == 3 {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_downward_apis_variables_name_the_pod_in_a_schema_valid_line() {
    // Only this test's agents read them; every other test here tolerates them.
    for (name, value) in [
        ("KUBERNETES_NAMESPACE", "prod"),
        ("KUBERNETES_NODE_NAME", "node-3"),
        ("KUBERNETES_POD_NAME", "api-0"),
        ("KUBERNETES_POD_UID", "e9b90526-f47d-11e8-b2a5-080027b9f4fb"),
    ] {
        std::env::set_var(name, value);
    }
    let (a, g, z) = (aws(), gcp(), azure());
    let intake = IntakeServer::start();
    let agent = agent(&intake, CloudProvider::Gcp, [&a, &g, &z]);
    let m = &first_request_metadata(&agent, &intake)[0];
    assert_eq!(
        m["system"]["kubernetes"],
        json!({"namespace": "prod", "node": {"name": "node-3"},
            "pod": {"name": "api-0", "uid": "e9b90526-f47d-11e8-b2a5-080027b9f4fb"}})
    );
    assert_eq!(m["cloud"]["provider"], "gcp");
}
