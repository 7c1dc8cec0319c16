//! A traced [`rusqlite::Connection`]: each statement becomes a `db/sqlite/query` exit span with
//! `context.db` (statement, instance, rows affected).

use rusqlite::{Connection, Params, Row, Statement};

use crate::model::event::{DbContext, Outcome};
use crate::record::span::Span;

/// A [`rusqlite::Connection`] whose `execute`, `query_row` and prepared statements record
/// `db/sqlite/query` exit spans under the current span or transaction.
///
/// ```
/// use apm_runtime::integrations::rusqlite::TracedConnection;
/// let conn = TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "memory");
/// conn.execute("CREATE TABLE t (x INTEGER)", []).unwrap();
/// assert_eq!(conn.execute("INSERT INTO t VALUES (?1)", [42]).unwrap(), 1);
/// let x: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(x, 42);
/// ```
pub struct TracedConnection {
    conn: Connection,
    instance: String,
}

/// A prepared statement of a [`TracedConnection`]; each run records its own exit span.
///
/// ```
/// use apm_runtime::integrations::rusqlite::TracedConnection;
/// let conn = TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "memory");
/// conn.execute("CREATE TABLE t (x INTEGER)", []).unwrap();
/// let mut insert = conn.prepare("INSERT INTO t VALUES (?1)").unwrap();
/// for i in 0..3 {
///     insert.execute([i]).unwrap();
/// }
/// let xs: Vec<i64> = conn.prepare("SELECT x FROM t").unwrap().query_map([], |r| r.get(0)).unwrap();
/// assert_eq!(xs, [0, 1, 2]);
/// ```
pub struct TracedStatement<'c> {
    stmt: Statement<'c>,
    sql: String,
    instance: &'c str,
}

impl TracedConnection {
    /// Wraps a connection; `instance` becomes `context.db.instance` and the service target's
    /// name (the database file's name is a good choice).
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "cache.db");
    /// assert_eq!(conn.instance(), "cache.db");
    /// ```
    pub fn new(conn: Connection, instance: impl Into<String>) -> Self {
        TracedConnection { conn, instance: instance.into() }
    }

    /// Opens (or creates) the SQLite file at `path`; its file name becomes the instance.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("apm-doc-{}.db", std::process::id()));
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::open(&path).unwrap();
    /// assert!(conn.instance().starts_with("apm-doc-"));
    /// # drop(conn); std::fs::remove_file(path).unwrap();
    /// ```
    pub fn open(path: impl AsRef<std::path::Path>) -> rusqlite::Result<Self> {
        let path = path.as_ref();
        let instance =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(TracedConnection::new(Connection::open(path)?, instance))
    }

    /// The `context.db.instance` of this connection's spans.
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// assert_eq!(conn.instance(), "a.db");
    /// ```
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The wrapped connection, for calls that should not be traced.
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// assert!(conn.inner().is_autocommit());
    /// ```
    pub fn inner(&self) -> &Connection {
        &self.conn
    }

    /// [`Connection::execute`] in an exit span whose `rows_affected` is the returned count.
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// assert_eq!(conn.execute("CREATE TABLE t (x)", []).unwrap(), 0);
    /// ```
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        traced(sql, &self.instance, || self.conn.execute(sql, params), |n| Some(*n as u64))
    }

    /// [`Connection::query_row`] in an exit span (`rows_affected` 1 when a row came back).
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// let two: i64 = conn.query_row("SELECT 1 + 1", [], |r| r.get(0)).unwrap();
    /// assert_eq!(two, 2);
    /// ```
    pub fn query_row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        traced(sql, &self.instance, || self.conn.query_row(sql, params, f), |_| Some(1))
    }

    /// Prepares a statement (not itself traced: the runs are).
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// assert!(conn.prepare("SELECT 1").is_ok());
    /// ```
    pub fn prepare(&self, sql: &str) -> rusqlite::Result<TracedStatement<'_>> {
        Ok(TracedStatement { stmt: self.conn.prepare(sql)?, sql: sql.to_string(), instance: &self.instance })
    }
}

impl TracedStatement<'_> {
    /// [`Statement::execute`] in an exit span whose `rows_affected` is the returned count.
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// conn.execute("CREATE TABLE t (x)", []).unwrap();
    /// assert_eq!(conn.prepare("INSERT INTO t VALUES (?1)").unwrap().execute([1]).unwrap(), 1);
    /// ```
    pub fn execute<P: Params>(&mut self, params: P) -> rusqlite::Result<usize> {
        let stmt = &mut self.stmt;
        traced(&self.sql, self.instance, || stmt.execute(params), |n| Some(*n as u64))
    }

    /// Runs the query and maps every row, in one exit span covering the whole read; its
    /// `rows_affected` is the number of rows returned.
    ///
    /// ```
    /// let conn = apm_runtime::integrations::rusqlite::TracedConnection::new(rusqlite::Connection::open_in_memory().unwrap(), "a.db");
    /// let v: Vec<i64> = conn.prepare("SELECT 7").unwrap().query_map([], |r| r.get(0)).unwrap();
    /// assert_eq!(v, [7]);
    /// ```
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> rusqlite::Result<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> rusqlite::Result<Vec<T>> {
        let stmt = &mut self.stmt;
        traced(
            &self.sql,
            self.instance,
            || stmt.query_map(params, f)?.collect::<rusqlite::Result<Vec<T>>>(),
            |rows| Some(rows.len() as u64),
        )
    }
}

/// The span name Elastic's SQL agents use: the statement's verb and its first table
/// (`SELECT users`), falling back to the verb alone.
fn span_name(sql: &str) -> String {
    let mut words = sql.split_whitespace();
    let verb = words.next().unwrap_or("SQL").to_ascii_uppercase();
    let marker = match verb.as_str() {
        "SELECT" | "DELETE" => "FROM",
        "INSERT" | "REPLACE" => "INTO",
        "UPDATE" => return words.next().map_or(verb.clone(), |t| format!("{verb} {t}")),
        _ => return verb,
    };
    let mut words = words.skip_while(|w| !w.eq_ignore_ascii_case(marker));
    match words.nth(1) {
        Some(table) => format!("{verb} {}", table.split(['(', ';']).next().unwrap_or(table)),
        None => verb,
    }
}

fn traced<T>(
    sql: &str,
    instance: &str,
    run: impl FnOnce() -> rusqlite::Result<T>,
    rows: impl FnOnce(&T) -> Option<u64>,
) -> rusqlite::Result<T> {
    let mut span = Span::builder(span_name(sql)).with_type("db").subtype("sqlite").action("query").start();
    let result = run();
    let rows_affected = result.as_ref().ok().and_then(rows);
    span.set_db(DbContext {
        kind: "sql".into(),
        instance: Some(instance.to_string().into()),
        statement: Some(sql.to_string().into()),
        rows_affected,
        ..Default::default()
    });
    span.set_outcome(if result.is_ok() { Outcome::Success } else { Outcome::Failure });
    span.end();
    result
}

#[cfg(test)]
mod tests {
    use super::span_name;

    #[test]
    fn names_are_the_verb_and_first_table() {
        assert_eq!(span_name("select * from users where id = 1"), "SELECT users");
        assert_eq!(span_name("INSERT INTO t(x) VALUES (1)"), "INSERT t");
        assert_eq!(span_name("UPDATE t SET x = 1"), "UPDATE t");
        assert_eq!(span_name("CREATE TABLE t (x)"), "CREATE");
    }
}
