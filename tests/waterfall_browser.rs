//! The HTML waterfall rendered by a real browser: headless Chromium loads the page, and the
//! rows it built are checked in the DOM it dumps. A screenshot is left in
//! `target/waterfall-screenshot.png` for a person to look at.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use apm_toolkit::demo_server::DemoServer;
use apm_toolkit::scenario::{dashboard_urls, handle_dashboard};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
        let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!path.is_empty()).then(|| PathBuf::from(path))
    })
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    cmd.arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn chromium_renders_one_row_per_event() {
    let Some(browser) = chromium() else {
        // .ci/run installs Debian's chromium, so CI never skips this.
        assert!(std::env::var_os("CI").is_none(), "chromium is missing in CI");
        eprintln!("SKIPPED: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let (agent, sink) = support::memory_agent(|c| c.service_name("dashboard"));
    let remote = DemoServer::start().unwrap();
    let urls = dashboard_urls(&remote);
    {
        let _d = agent.set_default();
        handle_dashboard(&urls);
    }
    support::flush(&agent);
    let events = sink.events();
    assert_eq!(events.len(), 1 + 2 * urls.len());

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    let page = target.join("waterfall-test.html");
    std::fs::write(&page, sink.waterfall().render_html("browser test")).unwrap();
    let url = format!("file://{}", page.display());
    let profile = std::env::temp_dir().join(format!("apm-chromium-{}", std::process::id()));

    let dom = headless(&browser, &profile).arg("--dump-dom").arg(&url).output().expect("run chromium");
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    let rows = dom.matches("wf-row").filter(|_| true).count();
    assert!(rows >= events.len(), "{rows} row markers for {} events", events.len());
    for e in &events {
        let json = {
            let mut line = Vec::new();
            e.write_ndjson(&mut line);
            serde_json::from_slice::<serde_json::Value>(&line).unwrap()
        };
        let id = json[e.kind()]["id"].as_str().unwrap().to_string();
        assert!(dom.contains(&format!("data-id=\"{id}\"")), "row for {} {id} in the rendered DOM", e.kind());
    }
    assert_eq!(dom.matches("data-kind=\"span\"").count(), 2 * urls.len());
    assert_eq!(dom.matches("data-kind=\"transaction\"").count(), 1);

    let shot = target.join("waterfall-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let status = headless(&browser, &profile)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1400,800")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(status.status.success());
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real picture, {} bytes", png.len());
    let _ = std::fs::remove_dir_all(&profile);
}
