// `#[span("name")]` and `#[transaction("name")]` name the span / transaction, alone or followed
// by other options; the same on a closure marker.
use apm_runtime::{span, transaction};

#[span("load user")]
fn load(id: u32) -> u32 {
    id
}

#[span("query", type = "db", subtype = "postgresql", labels(id))]
fn query(id: u32) -> Result<u32, String> {
    Ok(id)
}

#[transaction("GET /users", type = "request")]
fn handle() -> u32 {
    let pool = std::thread::spawn(#[span("job")] move || load(1));
    pool.join().unwrap() + query(2).unwrap()
}

#[transaction("nightly")]
async fn nightly() -> u32 {
    3
}

fn main() {
    assert_eq!(handle(), 3);
    let _ = nightly();
}
