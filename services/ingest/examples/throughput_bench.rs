//! Throughput benchmark: `seismo-ingest` against ClickHouse's own Kafka table
//! engine, draining the same backlog of events from the same mock-cluster
//! topic into the same ClickHouse server.
//!
//! ```sh
//! cargo build --release -p seismo-ingest
//! cargo run --release -p seismo-ingest --example throughput_bench -- --events 200000
//! ```
//!
//! Steps:
//! 1. Start librdkafka's mock cluster in this process, with one topic.
//! 2. Create a `Kafka` engine table and a materialized view into a MergeTree
//!    table. The engine's consumer starts at the latest offset, so the
//!    benchmark waits `--engine-join-secs` for it to join its group.
//! 3. Produce the events (about 200 bytes of JSON each) while the engine
//!    consumes them, and time it from the first produced event to the last
//!    stored row.
//! 4. Run the release `seismo-ingest` binary on the same topic from the
//!    earliest offset, timed from its spawn to the last stored row, and read
//!    its CPU time and peak memory from `/proc` before SIGTERM.
//!
//! Each run reports its wall time and the rate between 10 % and 90 % of the
//! rows, which leaves out group joins and flush intervals. It also reports
//! the CPU time that the ClickHouse server process used during the run.
//! Linux only, because it reads `/proc`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Benchmarks seismo-ingest against ClickHouse's Kafka engine.
#[derive(Debug, Parser)]
struct Args {
    /// Events to produce and ingest.
    #[arg(long, default_value_t = 200_000)]
    events: usize,

    /// Partitions of the topic. librdkafka's mock cluster keeps at most
    /// 5 MiB and 100 000 messages per partition and drops older ones, so
    /// keep events * 250 bytes / partitions under 5 MiB.
    #[arg(long, default_value_t = 16)]
    partitions: i32,

    /// ClickHouse HTTP interface.
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,

    /// `kafka_num_consumers` of the Kafka engine table.
    #[arg(long, default_value_t = 1)]
    engine_consumers: u32,

    /// Wait after creating the Kafka engine table before producing, in
    /// seconds, so its consumer has joined (it starts at the latest offset).
    #[arg(long, default_value_t = 15)]
    engine_join_secs: u64,

    /// seismo-ingest binary; defaults to target/release/seismo-ingest.
    #[arg(long)]
    ingest_binary: Option<PathBuf>,

    /// Extra argument for seismo-ingest, e.g. `--ingest-arg=--batch-max-rows=50000`;
    /// repeat for several.
    #[arg(long = "ingest-arg", allow_hyphen_values = true)]
    ingest_args: Vec<String>,

    /// Maximum time one run may take, in seconds.
    #[arg(long, default_value_t = 600)]
    run_timeout_secs: u64,
}

const TOPIC: &str = "bench-events";

/// Start and end of the measured share of rows, as fractions.
const STEADY_FROM: f64 = 0.1;
const STEADY_TO: f64 = 0.9;

/// Time between two row counts while a run is timed.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = args.ingest_binary.clone().unwrap_or_else(default_binary);
    ensure!(
        binary.is_file(),
        "{} not found; build it first with `cargo build --release -p seismo-ingest`",
        binary.display()
    );
    let clickhouse = ClickHouse::new(&args.clickhouse_url)?;
    let clickhouse_pid = find_clickhouse_server_pid();

    let cluster: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).context("starting the mock cluster")?;
    cluster
        .create_topic(TOPIC, args.partitions, 1)
        .context("creating the benchmark topic")?;
    let brokers = cluster.bootstrap_servers();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("creating the producer")?;

    let database = format!("seismo_bench_{}", std::process::id());
    clickhouse.execute(&format!("CREATE DATABASE {database}"))?;
    let result = run_benchmark(&args, &binary, &clickhouse, clickhouse_pid, &producer, &brokers, &database);
    if let Err(error) = clickhouse.execute(&format!("DROP DATABASE IF EXISTS {database}")) {
        eprintln!("dropping {database} failed: {error:#}");
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_benchmark(
    args: &Args,
    binary: &PathBuf,
    clickhouse: &ClickHouse,
    clickhouse_pid: Option<u32>,
    producer: &ThreadedProducer<DefaultProducerContext>,
    brokers: &str,
    database: &str,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.run_timeout_secs);

    // The engine's consumer starts at the latest offset, so it must have
    // joined its group before the events are produced. Its group join and
    // first assignment take a few seconds on the mock cluster.
    create_engine_tables(clickhouse, database, brokers, args.engine_consumers)?;
    std::thread::sleep(Duration::from_secs(args.engine_join_secs));

    // The engine consumes while the events are produced, which takes a
    // small share of its run.
    let expected = args.events as u64;
    let events: Vec<Vec<u8>> = (0..args.events).map(event).collect();
    let bytes: usize = events.iter().map(Vec::len).sum();
    let server_cpu_before = clickhouse_pid.and_then(|pid| cpu_seconds(pid).ok());
    let started = Instant::now();
    produce(producer, &events, args.partitions)?;
    println!(
        "produced {} events, {:.0} bytes each on average, in {:.1} s",
        args.events,
        bytes as f64 / args.events as f64,
        started.elapsed().as_secs_f64()
    );
    let engine = wait_for_rows_since(clickhouse, &format!("{database}.engine_events"), expected, started, timeout)
        .context("the Kafka engine did not store every event")?;
    let server_cpu = cpu_delta(clickhouse_pid, server_cpu_before);
    report("Kafka engine", expected, &engine, server_cpu);

    // seismo-ingest drains the same topic from the earliest offset.
    let server_cpu_before = clickhouse_pid.and_then(|pid| cpu_seconds(pid).ok());
    let started = Instant::now();
    let mut child = spawn_ingest(binary, brokers, &args.clickhouse_url, database, &args.ingest_args)?;
    let ours = wait_for_rows_since(clickhouse, &format!("{database}.events"), expected, started, timeout);
    let usage = read_usage(child.id());
    stop(&mut child)?;
    let ours = ours.context("seismo-ingest did not store every event")?;
    let server_cpu = cpu_delta(clickhouse_pid, server_cpu_before);
    let usage = usage?;
    report("seismo-ingest", expected, &ours, server_cpu);
    println!(
        "seismo-ingest process: CPU {:.2} s (user {:.2} s, system {:.2} s), peak RSS {:.1} MiB",
        usage.user_seconds + usage.system_seconds,
        usage.user_seconds,
        usage.system_seconds,
        usage.peak_rss_kib as f64 / 1024.0
    );

    let steady_ratio = match (ours.steady_rate(expected), engine.steady_rate(expected)) {
        (Some(ours), Some(engine)) => format!("{:.2}", ours / engine),
        _ => "n/a".to_string(),
    };
    println!(
        "rate ratio seismo-ingest / Kafka engine: overall {:.2}, steady state {steady_ratio}",
        engine.last_row.as_secs_f64() / ours.last_row.as_secs_f64(),
    );
    Ok(())
}

fn default_binary() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("release/seismo-ingest")
}

/// Returns a realistic event of about 200 bytes with id `e-<index>`.
fn event(index: usize) -> Vec<u8> {
    let event_time = 1_714_564_800_000_u64 + index as u64 * 10;
    serde_json::json!({
        "event_time": event_time,
        "event": if index.is_multiple_of(5) { "like" } else { "view" },
        "user_id": format!("user-{}", index % 50_000),
        "event_id": format!("e-{index}"),
        "post_id": index % 3_000,
        "os": if index.is_multiple_of(3) { "iOS" } else { "Android" },
        "country": "Portugal",
        "city": "Porto",
        "source": if index.is_multiple_of(2) { "ads" } else { "organic" },
        "age": 18 + index % 50,
        "exp_group": (index % 4).to_string(),
    })
    .to_string()
    .into_bytes()
}

fn produce(
    producer: &ThreadedProducer<DefaultProducerContext>,
    events: &[Vec<u8>],
    partitions: i32,
) -> anyhow::Result<()> {
    for (index, payload) in events.iter().enumerate() {
        let partition = (index % partitions as usize) as i32;
        loop {
            let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(TOPIC).partition(partition).payload(payload);
            match producer.send(record) {
                Ok(()) => break,
                // A full local queue drains while this thread waits.
                Err((error, _record)) if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _record)) => bail!("producing event {index} failed: {error}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).context("flushing the producer")?;
    Ok(())
}

/// Creates the Kafka engine table, its MergeTree target and the
/// materialized view between them.
fn create_engine_tables(clickhouse: &ClickHouse, database: &str, brokers: &str, consumers: u32) -> anyhow::Result<()> {
    // JSONEachRow in 18.16 rejects unknown keys, so the columns list every
    // key of the benchmark events.
    clickhouse.execute(&format!(
        "CREATE TABLE {database}.engine_queue (event_time UInt64, event String, user_id String, \
         event_id String, post_id UInt64, os String, country String, city String, source String, \
         age UInt16, exp_group String) \
         ENGINE = Kafka SETTINGS kafka_broker_list = '{brokers}', kafka_topic_list = '{TOPIC}', \
         kafka_group_name = 'clickhouse-bench', kafka_format = 'JSONEachRow', kafka_num_consumers = {consumers}"
    ))?;
    clickhouse.execute(&format!(
        "CREATE TABLE {database}.engine_events (event_time DateTime('UTC'), event_time_ms UInt16, \
         event String, user_id String, event_id String, post_id UInt64, os String, country String, \
         city String, source String, age UInt16, exp_group String) \
         ENGINE = MergeTree PARTITION BY toYYYYMMDD(event_time) ORDER BY (event, event_time)"
    ))?;
    clickhouse.execute(&format!(
        "CREATE MATERIALIZED VIEW {database}.engine_view TO {database}.engine_events AS \
         SELECT toDateTime(intDiv(event_time, 1000)) AS event_time, toUInt16(event_time % 1000) AS event_time_ms, \
         event, user_id, event_id, post_id, os, country, city, source, age, exp_group \
         FROM {database}.engine_queue"
    ))?;
    Ok(())
}

fn spawn_ingest(
    binary: &PathBuf,
    brokers: &str,
    clickhouse_url: &str,
    database: &str,
    extra_args: &[String],
) -> anyhow::Result<Child> {
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    Command::new(binary)
        .args(["--brokers", brokers, "--topic", TOPIC, "--group-id", "seismo-bench"])
        .args(["--dead-letter-topic", "bench-events.dlq", "--clickhouse-url", clickhouse_url])
        .args(["--database", database, "--no-future-check"])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args(extra_args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

fn stop(child: &mut Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    ensure!(status.success(), "kill -TERM failed");
    let status = child.wait()?;
    ensure!(status.success(), "seismo-ingest exited with {status}");
    Ok(())
}

/// When a table reached given row counts, relative to the start of a run.
struct Progress {
    first_row: Duration,
    steady_from: Duration,
    steady_to: Duration,
    last_row: Duration,
}

impl Progress {
    /// Rows per second between [`STEADY_FROM`] and [`STEADY_TO`] of `rows`,
    /// or `None` when both arrived within two polls (e.g. in one insert), so
    /// there is no rate to measure.
    fn steady_rate(&self, rows: u64) -> Option<f64> {
        let span = self.steady_to - self.steady_from;
        if span < 2 * POLL_INTERVAL {
            return None;
        }
        let steady_rows = rows as f64 * (STEADY_TO - STEADY_FROM);
        Some(steady_rows / span.as_secs_f64())
    }
}

fn count_rows(clickhouse: &ClickHouse, table: &str) -> anyhow::Result<u64> {
    Ok(clickhouse.query(&format!("SELECT count() FROM {table}"))?.trim().parse()?)
}

/// Polls `count()` of `table` every 50 ms until it reaches `expected`,
/// timing progress from `started`.
fn wait_for_rows_since(
    clickhouse: &ClickHouse,
    table: &str,
    expected: u64,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<Progress> {
    let (mut first_row, mut steady_from, mut steady_to) = (None, None, None);
    loop {
        // seismo-ingest creates its table only once it has started.
        let rows = count_rows(clickhouse, table).unwrap_or(0);
        let elapsed = started.elapsed();
        if rows > 0 {
            first_row.get_or_insert(elapsed);
        }
        if rows as f64 >= expected as f64 * STEADY_FROM {
            steady_from.get_or_insert(elapsed);
        }
        if rows as f64 >= expected as f64 * STEADY_TO {
            steady_to.get_or_insert(elapsed);
        }
        if rows >= expected {
            ensure!(rows == expected, "{table} has {rows} rows, expected {expected}");
            return Ok(Progress {
                first_row: first_row.unwrap_or(elapsed),
                steady_from: steady_from.unwrap_or(elapsed),
                steady_to: steady_to.unwrap_or(elapsed),
                last_row: elapsed,
            });
        }
        if elapsed > timeout {
            bail!("{table} has {rows} of {expected} rows after {} s", timeout.as_secs());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn report(name: &str, rows: u64, progress: &Progress, server_cpu: Option<f64>) {
    println!(
        "{name}: {rows} rows; first row after {:.2} s, last after {:.2} s ({:.0} rows/s overall); \
         steady state {}; ClickHouse server CPU {}",
        progress.first_row.as_secs_f64(),
        progress.last_row.as_secs_f64(),
        rows as f64 / progress.last_row.as_secs_f64(),
        progress
            .steady_rate(rows)
            .map_or("n/a (one insert)".to_string(), |rate| format!("{rate:.0} rows/s")),
        server_cpu.map_or("unknown".to_string(), |seconds| format!("{seconds:.2} s")),
    );
}

/// CPU time and peak memory of a process, from `/proc/<pid>`.
struct Usage {
    user_seconds: f64,
    system_seconds: f64,
    peak_rss_kib: u64,
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Returns user and system CPU seconds from `/proc/<pid>/stat`.
fn cpu_times(pid: u32) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are fields 14 and 15 of the whole line.
    let after_name = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = clock_ticks_per_second();
    let user: f64 = fields.get(11).context("no utime")?.parse()?;
    let system: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok((user / ticks, system / ticks))
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let (user, system) = cpu_times(pid)?;
    Ok(user + system)
}

fn cpu_delta(pid: Option<u32>, before: Option<f64>) -> Option<f64> {
    Some(cpu_seconds(pid?).ok()? - before?)
}

fn read_usage(pid: u32) -> anyhow::Result<Usage> {
    let (user_seconds, system_seconds) = cpu_times(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc status")?;
    Ok(Usage {
        user_seconds,
        system_seconds,
        peak_rss_kib,
    })
}

/// Finds the ClickHouse server among the processes, to read its CPU time.
fn find_clickhouse_server_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let command = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        command.starts_with("clickhouse-serv").then_some(pid)
    })
}

/// Minimal blocking client of the HTTP interface, which every server
/// version accepts.
struct ClickHouse {
    runtime: tokio::runtime::Runtime,
    client: clickhouse::Client,
}

impl ClickHouse {
    fn new(url: &str) -> anyhow::Result<ClickHouse> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = clickhouse::Client::default().with_url(url).with_validation(false);
        Ok(ClickHouse { runtime, client })
    }

    fn execute(&self, sql: &str) -> anyhow::Result<()> {
        self.runtime
            .block_on(self.client.query(sql).execute())
            .with_context(|| format!("running {sql}"))
    }

    fn query(&self, sql: &str) -> anyhow::Result<String> {
        let bytes = self
            .runtime
            .block_on(async { self.client.query(sql).fetch_bytes("TabSeparated")?.collect().await })
            .with_context(|| format!("running {sql}"))?;
        Ok(String::from_utf8(bytes.to_vec())?)
    }
}
