//! Throughput benchmark: `seismo-ingest` against ClickHouse's own Kafka table
//! engine, draining the same backlog of events from the same mock-cluster
//! topic into the same ClickHouse server.
//!
//! ```sh
//! cargo build --release -p seismo-ingest --bin seismo-ingest --example throughput_bench
//! target/release/examples/throughput_bench --events 1000000 --partitions 64 --ingest-arg=--batch-max-rows=100000
//! ```
//!
//! Steps:
//! 1. Start librdkafka's mock cluster in this process, with one topic, and
//!    produce the events (about 200 bytes of JSON each) before any consumer
//!    starts.
//! 2. Commit offset 0 of every partition for the engine's consumer group, so
//!    the engine drains the backlog from the start like seismo-ingest does.
//!    Without a committed offset it would start at the latest offset.
//! 3. Create the `Kafka` engine table and the materialized view into a
//!    MergeTree table, which starts the engine's streaming, and time it from
//!    the creation of the Kafka table to the last stored row. The engine
//!    tables are dropped afterwards, so its idle consumer does not run
//!    during the second measurement.
//! 4. Run the release `seismo-ingest` binary on the same topic, timed from
//!    its spawn to the last stored row. Its CPU time and peak memory are
//!    read from `/proc` before SIGTERM.
//!
//! The compared figure is the time from the consumer's creation to the last
//! stored row, which includes the group join for both. Each run also
//! reports when seismo-ingest's `/readyz` turned ready (ClickHouse set up
//! and partitions assigned) and its rate from then on, the first stored
//! row, the rate between 10 % and 90 % of the rows, and the CPU time that
//! the ClickHouse server process used. Linux only, because it reads
//! `/proc`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

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

    /// seismo-ingest binary; defaults to target/release/seismo-ingest.
    #[arg(long)]
    ingest_binary: Option<PathBuf>,

    /// Extra argument for seismo-ingest, e.g. `--ingest-arg=--batch-max-rows=50000`;
    /// repeat for several.
    #[arg(long = "ingest-arg", allow_hyphen_values = true)]
    ingest_args: Vec<String>,

    /// File that receives seismo-ingest's log at debug level, with the
    /// timings of each batch; by default only warnings go to the terminal.
    #[arg(long)]
    ingest_log: Option<PathBuf>,

    /// Maximum time one run may take, in seconds.
    #[arg(long, default_value_t = 600)]
    run_timeout_secs: u64,
}

const TOPIC: &str = "bench-events";

/// Consumer group of the Kafka engine table.
const ENGINE_GROUP: &str = "clickhouse-bench";

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

    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).context("starting the mock cluster")?;
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
    let result = run_benchmark(
        &args,
        &binary,
        &clickhouse,
        clickhouse_pid,
        &producer,
        &brokers,
        &database,
    );
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

    // Both consumers drain the same backlog, produced before either starts.
    let events: Vec<Vec<u8>> = (0..args.events).map(event).collect();
    let bytes: usize = events.iter().map(Vec::len).sum();
    let started = Instant::now();
    produce(producer, &events, args.partitions)?;
    println!(
        "produced {} events, {:.0} bytes each on average, in {:.1} s",
        args.events,
        bytes as f64 / args.events as f64,
        started.elapsed().as_secs_f64()
    );
    drop(events);

    let engine = measure_engine(args, clickhouse, clickhouse_pid, brokers, database, timeout)?;
    let ours = measure_ingest(args, binary, clickhouse, clickhouse_pid, brokers, database, timeout)?;

    println!(
        "rate ratio seismo-ingest / Kafka engine, consumer start to last row: {:.2}",
        engine.progress.last_row.as_secs_f64() / ours.progress.last_row.as_secs_f64()
    );
    Ok(())
}

/// Times the Kafka engine from the creation of its table to the last stored
/// row.
fn measure_engine(
    args: &Args,
    clickhouse: &ClickHouse,
    clickhouse_pid: Option<u32>,
    brokers: &str,
    database: &str,
    timeout: Duration,
) -> anyhow::Result<Run> {
    let expected = args.events as u64;
    commit_start_offsets(brokers, ENGINE_GROUP, args.partitions)?;
    let server_cpu_before = clickhouse_pid.and_then(|pid| cpu_seconds(pid).ok());
    let started = Instant::now();
    create_engine_queue(clickhouse, database, brokers, args.engine_consumers)?;
    create_engine_view(clickhouse, database)?;
    let progress = wait_for_rows_since(
        clickhouse,
        &format!("{database}.engine_events"),
        expected,
        started,
        timeout,
    )
    .context("the Kafka engine did not store every event")?;
    let server_cpu = cpu_delta(clickhouse_pid, server_cpu_before);
    drop_engine_queue(clickhouse, database)?;

    let run = Run {
        progress,
        joined: None,
        server_cpu,
    };
    report("Kafka engine (timed from its table's creation)", expected, &run);
    Ok(run)
}

/// Times seismo-ingest from its spawn and from its readiness to the last
/// stored row, and reads its CPU time and peak memory.
#[allow(clippy::too_many_arguments)]
fn measure_ingest(
    args: &Args,
    binary: &PathBuf,
    clickhouse: &ClickHouse,
    clickhouse_pid: Option<u32>,
    brokers: &str,
    database: &str,
    timeout: Duration,
) -> anyhow::Result<Run> {
    let expected = args.events as u64;
    let server_cpu_before = clickhouse_pid.and_then(|pid| cpu_seconds(pid).ok());
    let started = Instant::now();
    let (mut child, admin_port) = spawn_ingest(
        binary,
        brokers,
        &args.clickhouse_url,
        database,
        &args.ingest_args,
        args.ingest_log.as_deref(),
    )?;
    let measured = wait_until_ready(admin_port, started, timeout).and_then(|joined| {
        let progress = wait_for_rows_since(clickhouse, &format!("{database}.events"), expected, started, timeout)?;
        Ok((joined, progress))
    });
    let usage = read_usage(child.id());
    stop(&mut child)?;
    let (joined, progress) = measured.context("seismo-ingest did not store every event")?;
    let usage = usage?;

    let run = Run {
        progress,
        joined: Some(joined),
        server_cpu: cpu_delta(clickhouse_pid, server_cpu_before),
    };
    report("seismo-ingest (timed from its spawn)", expected, &run);
    println!(
        "seismo-ingest process: CPU {:.2} s (user {:.2} s, system {:.2} s), peak RSS {:.1} MiB",
        usage.user_seconds + usage.system_seconds,
        usage.user_seconds,
        usage.system_seconds,
        usage.peak_rss_kib as f64 / 1024.0
    );
    Ok(run)
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
                Err((error, _record))
                    if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _record)) => bail!("producing event {index} failed: {error}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the producer")?;
    Ok(())
}

/// Commits offset 0 of every partition for `group`, so a consumer of that
/// group starts at the beginning of the topic. A commit from outside the
/// group is accepted while the group has no members.
fn commit_start_offsets(brokers: &str, group: &str, partitions: i32) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the consumer that sets the engine's start offsets")?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(TOPIC, partition, Offset::Offset(0))?;
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .with_context(|| format!("committing the start offsets of group {group}"))
}

/// Creates the Kafka engine table; it streams once a view is attached.
fn create_engine_queue(clickhouse: &ClickHouse, database: &str, brokers: &str, consumers: u32) -> anyhow::Result<()> {
    // JSONEachRow in 18.16 rejects unknown keys, so the columns list every
    // key of the benchmark events.
    clickhouse.execute(&format!(
        "CREATE TABLE {database}.engine_queue (event_time UInt64, event String, user_id String, \
         event_id String, post_id UInt64, os String, country String, city String, source String, \
         age UInt16, exp_group String) \
         ENGINE = Kafka SETTINGS kafka_broker_list = '{brokers}', kafka_topic_list = '{TOPIC}', \
         kafka_group_name = '{ENGINE_GROUP}', kafka_format = 'JSONEachRow', kafka_num_consumers = {consumers}"
    ))
}

/// Creates the MergeTree target and the materialized view into it, which
/// starts the engine's streaming.
fn create_engine_view(clickhouse: &ClickHouse, database: &str) -> anyhow::Result<()> {
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
    ))
}

/// Drops the view and the Kafka engine table, which stops the engine's
/// consumer; the stored rows stay.
fn drop_engine_queue(clickhouse: &ClickHouse, database: &str) -> anyhow::Result<()> {
    clickhouse.execute(&format!("DROP TABLE {database}.engine_view"))?;
    clickhouse.execute(&format!("DROP TABLE {database}.engine_queue"))
}

/// Starts seismo-ingest and returns it with the port of its admin server.
fn spawn_ingest(
    binary: &PathBuf,
    brokers: &str,
    clickhouse_url: &str,
    database: &str,
    extra_args: &[String],
    log: Option<&Path>,
) -> anyhow::Result<(Child, u16)> {
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut command = Command::new(binary);
    command
        .args(["--brokers", brokers, "--topic", TOPIC, "--group-id", "seismo-bench"])
        .args([
            "--dead-letter-topic",
            "bench-events.dlq",
            "--clickhouse-url",
            clickhouse_url,
        ])
        .args(["--database", database, "--no-future-check"])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args(extra_args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    if let Some(path) = log {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        command
            .env("RUST_LOG", "info,seismo_ingest=debug")
            .stdout(file.try_clone()?)
            .stderr(file);
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok((child, admin_port))
}

/// Polls `/readyz` every 10 ms until it returns 200 and returns the time
/// since `started`.
fn wait_until_ready(admin_port: u16, started: Instant, timeout: Duration) -> anyhow::Result<Duration> {
    loop {
        // The admin server is not listening yet right after the spawn.
        if let Ok(true) = is_ready(admin_port) {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < timeout,
            "seismo-ingest was not ready after {} s",
            timeout.as_secs()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `GET /readyz` over HTTP/1.0 and returns whether the status is 200.
fn is_ready(admin_port: u16) -> anyhow::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", admin_port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"))
}

fn stop(child: &mut Child) -> anyhow::Result<()> {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
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

/// One measured consumer: its progress, when it had joined its group if
/// known (both relative to the start of its timing) and the ClickHouse
/// server's CPU time meanwhile.
struct Run {
    progress: Progress,
    joined: Option<Duration>,
    server_cpu: Option<f64>,
}

fn count_rows(clickhouse: &ClickHouse, table: &str) -> anyhow::Result<u64> {
    Ok(clickhouse
        .query(&format!("SELECT count() FROM {table}"))?
        .trim()
        .parse()?)
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

fn report(name: &str, rows: u64, run: &Run) {
    let progress = &run.progress;
    let after_join = run.joined.map_or(String::new(), |joined| {
        let rate = rows as f64 / (progress.last_row - joined).as_secs_f64();
        format!(
            "ready after {:.2} s ({rate:.0} rows/s from then on), ",
            joined.as_secs_f64()
        )
    });
    println!(
        "{name}: {rows} rows; {after_join}first row after {:.2} s, last after {:.2} s ({:.0} rows/s); \
         steady state {}; ClickHouse server CPU {}",
        progress.first_row.as_secs_f64(),
        progress.last_row.as_secs_f64(),
        rows as f64 / progress.last_row.as_secs_f64(),
        progress
            .steady_rate(rows)
            .map_or("n/a (one insert)".to_string(), |rate| format!("{rate:.0} rows/s")),
        run.server_cpu
            .map_or("unknown".to_string(), |seconds| format!("{seconds:.2} s")),
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
