//! A database of its own per test on the local ClickHouse server, dropped
//! when the test ends, so tests can run in parallel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// HTTP interface of the ClickHouse server the tests use.
pub const DEFAULT_CLICKHOUSE_URL: &str = "http://127.0.0.1:8123";

/// Returns the ClickHouse URL for tests: `CLICKHOUSE_URL` if set, otherwise
/// [`DEFAULT_CLICKHOUSE_URL`].
pub fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| DEFAULT_CLICKHOUSE_URL.to_string())
}

/// Returns a client without a default database and without row validation,
/// which the 18.16 server needs.
pub fn client() -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(clickhouse_url())
        .with_validation(false)
}

/// A uniquely named database, dropped (with its tables) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates `<prefix>_<process id>_<time>_<counter>`. `prefix` must be a
    /// valid identifier: letters, digits and underscores.
    pub async fn create(prefix: &str) -> anyhow::Result<TestDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}_{}_{nanos}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );

        client()
            .query(&format!("CREATE DATABASE `{name}`"))
            .execute()
            .await
            .with_context(|| format!("creating test database {name} at {}", clickhouse_url()))?;
        Ok(TestDatabase { name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> String {
        clickhouse_url()
    }

    /// Returns a client whose default database is this one.
    pub fn client(&self) -> clickhouse::Client {
        client().with_database(&self.name)
    }

    /// Creates the events table of `deploy/clickhouse/events-before-19.3.sql`
    /// in this database: the layout ingest uses on servers before 19.3,
    /// which newer servers accept too.
    pub async fn create_events_table(&self) -> anyhow::Result<()> {
        let schema = include_str!("../../deploy/clickhouse/events-before-19.3.sql")
            .replace("`seismo`", &format!("`{}`", self.name));
        for statement in schema.split(';').filter(|statement| !statement.trim().is_empty()) {
            self.client()
                .query(statement)
                .execute()
                .await
                .with_context(|| format!("creating the events table in {}", self.name))?;
        }
        Ok(())
    }

    /// Inserts `(time, event, user_id)` rows into the table made by
    /// [`Self::create_events_table`], with offsets 0, 1, … of partition 0 in
    /// the order given. Times are stored to the second.
    pub async fn insert_events<'a>(
        &self,
        events: impl IntoIterator<Item = (chrono::DateTime<chrono::Utc>, &'a str, &'a str)>,
    ) -> anyhow::Result<()> {
        let rows: Vec<String> = events
            .into_iter()
            .enumerate()
            .map(|(offset, (time, event, user))| {
                format!(
                    "('{}', 0, '{event}', '{user}', '', 0, {offset})",
                    time.format("%Y-%m-%d %H:%M:%S")
                )
            })
            .collect();
        let insert = format!(
            "INSERT INTO events (event_time, event_time_ms, event, user_id, extra, kafka_partition, kafka_offset) VALUES {}",
            rows.join(", ")
        );
        self.client()
            .query(&insert)
            .execute()
            .await
            .with_context(|| format!("inserting {} events into {}", rows.len(), self.name))
    }

    /// Runs a query that returns one `UInt64`, e.g. `SELECT count() FROM t`.
    pub async fn fetch_u64(&self, sql: &str) -> anyhow::Result<u64> {
        self.client()
            .query(sql)
            .fetch_one::<u64>()
            .await
            .with_context(|| format!("running {sql:?} in {}", self.name))
    }

    /// Runs a query and returns its rows parsed from `JSONEachRow`, with
    /// 64-bit integers as JSON numbers rather than strings.
    pub async fn fetch_json_rows(&self, sql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut cursor = self
            .client()
            .with_setting("output_format_json_quote_64bit_integers", "0")
            .query(sql)
            .fetch_bytes("JSONEachRow")
            .with_context(|| format!("starting {sql:?} in {}", self.name))?;
        let bytes = cursor
            .collect()
            .await
            .with_context(|| format!("running {sql:?} in {}", self.name))?;

        let text = std::str::from_utf8(&bytes).context("ClickHouse returned JSON that is not UTF-8")?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).with_context(|| format!("parsing row {line:?}")))
            .collect()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context, so this uses a plain blocking
        // HTTP request instead of the async client.
        if let Err(error) = drop_database_blocking(&clickhouse_url(), &self.name) {
            eprintln!("dropping test database {} failed: {error:#}", self.name);
        }
    }
}

/// Sends `DROP DATABASE IF EXISTS` over HTTP/1.0 with a 10 s timeout.
fn drop_database_blocking(url: &str, database: &str) -> anyhow::Result<()> {
    let authority = url
        .strip_prefix("http://")
        .with_context(|| format!("ClickHouse URL {url:?} is not http://host:port"))?
        .trim_end_matches('/');

    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect(authority).with_context(|| format!("connecting to {authority}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    // The database name is an identifier (letters, digits, underscores), so
    // it needs no escaping in the URL.
    let request = format!(
        "POST /?query=DROP%20DATABASE%20IF%20EXISTS%20{database} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;

    if !response.starts_with("HTTP/1.0 200") && !response.starts_with("HTTP/1.1 200") {
        bail!("ClickHouse responded: {}", response.lines().next().unwrap_or(""));
    }
    Ok(())
}
