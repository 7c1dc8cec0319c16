//! Exit spans beyond HTTP: a job whose 4-thread pool reads and writes a SQLite file (through
//! the `rusqlite` feature's `TracedConnection`) and makes repeated small HTTP calls to a
//! loopback server. Each query is a `db/sqlite/query` exit span with its statement and rows.
//!
//! ```sh
//! cargo run --example exit_spans            # waterfall in the terminal
//! ELASTIC_APM_SERVER_URL=http://localhost:8200 cargo run --example exit_spans
//! ```

use std::time::Duration;

use apm_runtime::integrations::reqwest::SendTraced;
use apm_runtime::integrations::rusqlite::TracedConnection;
use apm_runtime::transaction;
use apm_toolkit::demo_server::DemoServer;
use apm_toolkit::job::JobAgent;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let server = DemoServer::start()?;
    let dir = std::env::temp_dir().join(format!("apm-exit-spans-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("inventory.db");
    let conn = TracedConnection::open(&db)?;
    conn.inner().execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, worker INTEGER, name TEXT);")?;
    drop(conn);

    let job = JobAgent::start("inventory")?;
    restock(&db, &server.base_url());
    job.finish();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The job: 4 workers each insert rows, read them back, and ping the server a few times.
#[transaction(name = "restock", type = "job")]
fn restock(db: &std::path::Path, base: &str) {
    let pool = threadpool::ThreadPool::with_name("pool".into(), 4);
    let client = reqwest::blocking::Client::new();
    for worker in 0..4 {
        let (db, url, client) = (db.to_path_buf(), format!("{base}/stock/{worker}"), client.clone());
        pool.execute(move || {
            let conn = TracedConnection::open(&db).expect("the database opens");
            // SQLite allows one writer at a time: wait for the others rather than fail.
            conn.inner().busy_timeout(Duration::from_secs(5)).expect("busy timeout");
            let mut insert = conn.prepare("INSERT INTO items (worker, name) VALUES (?1, ?2)").expect("prepare");
            for i in 0..3 {
                insert.execute((worker, format!("item {i}"))).expect("insert");
            }
            let mut select = conn.prepare("SELECT name FROM items WHERE worker = ?1").expect("prepare");
            let names: Vec<String> = select.query_map([worker], |r| r.get(0)).expect("select");
            assert_eq!(names.len(), 3);
            for _ in 0..5 {
                let _ = client.get(&url).send_traced();
            }
        });
    }
    pool.join();
}
