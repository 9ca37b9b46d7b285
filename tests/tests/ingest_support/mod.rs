//! Helpers shared by the ingest integration tests: logging, event payloads
//! and the real `seismo-ingest` binary as a child process. Polling and the
//! TCP proxy come from `seismo_tests`.

#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("seismo_ingest=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Returns a valid event of about 200 bytes with id `e-<index>`. Events are
/// one minute apart from 2024-05-01, so the rows span a few daily partitions.
pub fn valid_event(index: usize) -> Vec<u8> {
    let event_time = 1_714_564_800_000_i64 + index as i64 * 60_000;
    serde_json::json!({
        "event_time": event_time,
        "event": if index.is_multiple_of(2) { "view" } else { "like" },
        "user_id": format!("user-{}", index % 17),
        "event_id": format!("e-{index}"),
        "post_id": index % 1000,
        "os": if index.is_multiple_of(3) { "iOS" } else { "Android" },
        "country": "Portugal",
        "city": "Porto",
        "source": "ads",
        "age": 20 + index % 40,
        "exp_group": (index % 4).to_string(),
    })
    .to_string()
    .into_bytes()
}

/// Builds `seismo-ingest` once per test process with the cargo that runs
/// the tests, and returns the path of the debug binary.
pub fn ingest_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_ingest_binary().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_ingest_binary() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the tests crate has no parent directory")?
        .to_path_buf();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "seismo-ingest", "--bin", "seismo-ingest"])
        .current_dir(&workspace)
        .status()
        .context("running cargo build -p seismo-ingest")?;
    if !status.success() {
        bail!("cargo build -p seismo-ingest failed with {status}; build it by hand to see why");
    }

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let binary = target.join("debug").join("seismo-ingest");
    if !binary.is_file() {
        bail!(
            "{} is missing after the build; run `cargo build -p seismo-ingest`",
            binary.display()
        );
    }
    Ok(binary)
}

/// Returns a port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    Ok(listener.local_addr()?.port())
}

/// The `seismo-ingest` binary running as a child process, with its admin
/// server on a known port. The child is killed if this is dropped.
pub struct IngestProcess {
    child: Child,
    pub admin_port: u16,
}

impl IngestProcess {
    /// Starts the binary with `args` plus an admin address of its own. Its
    /// output is appended to `log_path`, which survives for debugging.
    pub async fn spawn(args: &[String], log_path: &Path) -> anyhow::Result<IngestProcess> {
        let binary = tokio::task::spawn_blocking(ingest_binary).await??;
        let admin_port = free_port()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;

        let child = Command::new(&binary)
            .args(args)
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{admin_port}"))
            .env("RUST_LOG", "seismo_ingest=debug,info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(IngestProcess { child, admin_port })
    }

    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends SIGTERM, the signal container runtimes send to stop.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.id().context("the ingest process has already exited")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {pid} failed with {status}");
        }
        Ok(())
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the ingest process")
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .with_context(|| format!("seismo-ingest did not exit within {} ms", timeout.as_millis()))?
            .context("waiting for seismo-ingest")
    }

    /// Returns the value of counter `name` from `/metrics`, 0 if not yet
    /// reported, or an error while the admin server is not up.
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let body = http_get(self.admin_port, "/metrics")?;
        let value = body
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once(' '))
            .filter(|(series, _)| *series == name || series.starts_with(&format!("{name}{{")))
            .map(|(_, value)| value.trim().parse::<f64>().unwrap_or(0.0))
            .sum();
        Ok(value)
    }
}

/// Sends a blocking HTTP/1.0 GET to 127.0.0.1:`port` and returns the body of
/// a 200 response.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let timeout = Duration::from_secs(5);
    let mut stream = StdTcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to :{port}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;

    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path} returned {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}

/// Returns the log file path of a child process of test `name`, in the
/// temporary directory.
pub fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("seismo-{name}-{}.log", std::process::id()))
}
