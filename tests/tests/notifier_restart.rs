//! Restarts of the notifier with a state directory: the notifier task is
//! aborted (as a crash would end it) after it wrote an alert to the
//! notification log and before it sent it, then started again. The fake
//! Telegram Bot API must receive exactly one message per state change.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use seismo_notifier::{
    Alert, AlertSink, DeliveryError, ExponentialBackoff, LogKey, LogStatus, NotificationLog, NotifierConfig,
    NotifierStats, Readiness, RetryPolicy, TelegramConfig, TelegramSink, run_with_sinks,
};
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, Direction, Severity};
use seismo_tests::fake_telegram::{FakeTelegram, RecordedRequest, Reply, parse_telegram_html};
use seismo_tests::scripted_detector::ScriptedDetector;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";
const CHAT_ID: &str = "1001";
/// The detector process's stream epoch (its start time in microseconds).
const EPOCH: u64 = 1_714_557_000_000_000;

fn anomaly(sequence: u64, episode: &str, state: AnomalyState) -> AnomalyEvent {
    let window_start_ms = 1_714_557_600_000 + sequence as i64 * 300_000;
    AnomalyEvent {
        id: episode.to_string(),
        sequence,
        state: state as i32,
        metric: "checkout_conversion".to_string(),
        slice: vec![Dimension {
            name: "os".to_string(),
            value: "iOS".to_string(),
        }],
        window_start_ms,
        window_end_ms: window_start_ms + 300_000,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        score: 0.9,
        severity: Severity::Warning as i32,
        direction: Direction::Down as i32,
        window_seconds: 300,
        detected_at_ms: window_start_ms + 301_000,
        stream_epoch: EPOCH,
        ..AnomalyEvent::default()
    }
}

fn notifier_config(detector: String, fake: &FakeTelegram, state_dir: &Path) -> NotifierConfig {
    NotifierConfig {
        detectors: vec![detector],
        telegram: Some(TelegramConfig::new(TOKEN, CHAT_ID, &fake.api_url()).expect("test Telegram settings are valid")),
        reconnect: ExponentialBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
        connect_timeout: Duration::from_secs(2),
        delivery: RetryPolicy {
            max_attempts: 4,
            backoff: ExponentialBackoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            max_retry_after: Duration::from_secs(30),
        },
        shutdown_grace: Duration::from_secs(5),
        state_dir: Some(state_dir.to_path_buf()),
        ..NotifierConfig::default()
    }
}

/// Passes the first `pass` alerts to the Telegram sink, then keeps every
/// later one waiting forever before sending it: the process is alive, its log row
/// is written, and nothing went to Telegram yet.
struct StallingSink {
    inner: TelegramSink,
    pass: usize,
    started: AtomicUsize,
}

impl AlertSink for StallingSink {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn sends_to_chats(&self) -> bool {
        true
    }

    fn deliver<'a>(
        &'a self,
        alert: &'a Alert,
        abort: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let number = self.started.fetch_add(1, Ordering::SeqCst);
        if number < self.pass {
            self.inner.deliver(alert, abort)
        } else {
            Box::pin(std::future::pending())
        }
    }
}

/// Starts the notifier as one task, so that aborting it drops the whole
/// notifier, as a crash would.
fn start(
    config: NotifierConfig,
    sink: Arc<dyn AlertSink>,
    stats: &Arc<NotifierStats>,
) -> (NotifierTask, CancellationToken) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_with_sinks(
        config,
        vec![sink],
        Arc::clone(stats),
        Readiness::default(),
        cancel.clone(),
    ));
    (task, cancel)
}

type NotifierTask = JoinHandle<Result<(), seismo_notifier::ConfigError>>;

/// Waits for a notifier task that was cancelled.
async fn stopped(task: NotifierTask) {
    task.await
        .expect("the notifier did not panic")
        .expect("the notifier configuration is valid");
}

fn telegram_sink(config: &NotifierConfig, stats: &Arc<NotifierStats>) -> TelegramSink {
    TelegramSink::new(config.telegram.as_ref().unwrap(), config.delivery, Arc::clone(stats))
}

/// Counts delivered messages per `(episode id, resolved)`, read from the
/// text Telegram displays.
fn deliveries_per_state_change(delivered: &[RecordedRequest]) -> HashMap<(String, bool), usize> {
    let mut counts = HashMap::new();
    for request in delivered {
        let displayed = parse_telegram_html(request.text.as_deref().unwrap()).unwrap();
        let episode = displayed
            .lines()
            .find_map(|line| line.strip_prefix("Episode: "))
            .expect("every alert names its episode")
            .to_string();
        let resolved = displayed.starts_with("✅ Resolved");
        *counts.entry((episode, resolved)).or_insert(0) += 1;
    }
    counts
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_key(detector: &str, episode: &str, state: AnomalyState) -> LogKey {
    LogKey {
        detector: format!("{detector}/"),
        anomaly_id: episode.to_string(),
        state: state as i32,
        severity: 0,
        chat: CHAT_ID.to_string(),
    }
}

#[tokio::test]
async fn crash_before_send_sends_once_after_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let state_dir = tempfile::tempdir().unwrap();
        let config = notifier_config(server.url(), &fake, state_dir.path());

        // First run: ep-1 is sent, ep-2 is written to the log and then stalls.
        let first_stats = Arc::new(NotifierStats::default());
        let stalling = Arc::new(StallingSink {
            inner: telegram_sink(&config, &first_stats),
            pass: 1,
            started: AtomicUsize::new(0),
        });
        let (first_run, _first_cancel) = start(
            config.clone(),
            Arc::clone(&stalling) as Arc<dyn AlertSink>,
            &first_stats,
        );
        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        fake.wait_for_delivered(1, WAIT).await;
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        wait_until("the second alert to stall", || {
            stalling.started.load(Ordering::SeqCst) == 2
        })
        .await;

        // The crash: the task is dropped mid-delivery, no shutdown runs.
        first_run.abort();
        let _ = first_run.await;
        // Published while the notifier is down; only the stored cursor finds it.
        detector.publish(anomaly(3, "ep-1", AnomalyState::Resolved));

        let log = NotificationLog::open(state_dir.path()).unwrap();
        assert_eq!(
            log.status(&log_key(&server.url(), "ep-1", AnomalyState::Firing))
                .unwrap(),
            Some(LogStatus::Sent)
        );
        assert_eq!(
            log.status(&log_key(&server.url(), "ep-2", AnomalyState::Firing))
                .unwrap(),
            Some(LogStatus::Pending)
        );
        let cursor = log.cursors().unwrap()[&format!("{}/", server.url())];
        assert_eq!((cursor.after_sequence, cursor.stream_epoch), (2, EPOCH));
        drop(log);

        // Second run with the same state directory.
        let second_stats = Arc::new(NotifierStats::default());
        let sink = Arc::new(telegram_sink(&config, &second_stats));
        let (second_run, second_cancel) = start(config, sink, &second_stats);
        fake.wait_for_delivered(3, WAIT).await;
        // Time for a wrong extra message to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        second_cancel.cancel();
        stopped(second_run).await;
        server.stop().await;

        assert_eq!(
            detector.after_sequences(),
            [0, 2],
            "the second run resumes from the stored cursor"
        );
        let delivered = fake.delivered();
        let counts = deliveries_per_state_change(&delivered);
        assert_eq!(delivered.len(), 3, "{counts:?}");
        for state_change in [("ep-1", false), ("ep-2", false), ("ep-1", true)] {
            let key = (state_change.0.to_string(), state_change.1);
            assert_eq!(counts.get(&key), Some(&1), "{state_change:?}: {counts:?}");
        }
        let totals = second_stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.failed), (2, 2, 0), "{totals:?}");

        let log = NotificationLog::open(state_dir.path()).unwrap();
        assert!(log.pending().unwrap().is_empty());
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn replayed_alerts_already_sent_are_skipped() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        // Every subscription gets the whole buffer, whatever its cursor.
        detector.replay_everything();
        let server = detector.serve().await;
        let state_dir = tempfile::tempdir().unwrap();
        let config = notifier_config(server.url(), &fake, state_dir.path());

        let first_stats = Arc::new(NotifierStats::default());
        let (first_run, first_cancel) = start(
            config.clone(),
            Arc::new(telegram_sink(&config, &first_stats)),
            &first_stats,
        );
        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        fake.wait_for_delivered(2, WAIT).await;
        first_cancel.cancel();
        stopped(first_run).await;

        detector.publish(anomaly(3, "ep-1", AnomalyState::Resolved));
        let second_stats = Arc::new(NotifierStats::default());
        let (second_run, second_cancel) = start(
            config.clone(),
            Arc::new(telegram_sink(&config, &second_stats)),
            &second_stats,
        );
        fake.wait_for_delivered(3, WAIT).await;
        wait_until("the replayed alerts counted", || second_stats.snapshot().received == 3).await;
        second_cancel.cancel();
        stopped(second_run).await;
        server.stop().await;

        let delivered = fake.delivered();
        assert_eq!(delivered.len(), 3, "{:?}", deliveries_per_state_change(&delivered));
        let totals = second_stats.snapshot();
        assert_eq!(
            (totals.received, totals.sent, totals.duplicates),
            (3, 1, 2),
            "{totals:?}"
        );
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn too_old_cursor_resumes_from_oldest_available() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let state_dir = tempfile::tempdir().unwrap();
        let config = notifier_config(server.url(), &fake, state_dir.path());

        let first_stats = Arc::new(NotifierStats::default());
        let (first_run, first_cancel) = start(
            config.clone(),
            Arc::new(telegram_sink(&config, &first_stats)),
            &first_stats,
        );
        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        fake.wait_for_delivered(1, WAIT).await;
        first_cancel.cancel();
        stopped(first_run).await;

        // While the notifier is down, 2 and 3 pass and leave the buffer; 4 and
        // 5 are still buffered.
        for (sequence, episode) in [(2, "ep-2"), (3, "ep-3"), (4, "ep-4"), (5, "ep-5")] {
            detector.publish(anomaly(sequence, episode, AnomalyState::Firing));
        }
        detector.evict_through(3);

        let second_stats = Arc::new(NotifierStats::default());
        let (second_run, second_cancel) = start(
            config.clone(),
            Arc::new(telegram_sink(&config, &second_stats)),
            &second_stats,
        );
        fake.wait_for_delivered(3, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        second_cancel.cancel();
        stopped(second_run).await;
        server.stop().await;

        assert_eq!(
            detector.after_sequences(),
            [0, 1, 3],
            "stored cursor 1 rejected, resumed before the oldest available sequence 4"
        );
        let mut episodes: Vec<String> = deliveries_per_state_change(&fake.delivered())
            .into_keys()
            .map(|(episode, _)| episode)
            .collect();
        episodes.sort();
        assert_eq!(episodes, ["ep-1", "ep-4", "ep-5"]);
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn abandoned_alert_sent_on_next_start() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        // A 429 whose retry_after outlasts the shutdown grace period.
        fake.push_replies([Reply::RetryAfter(25)]);
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let state_dir = tempfile::tempdir().unwrap();
        let config = NotifierConfig {
            shutdown_grace: Duration::from_millis(300),
            ..notifier_config(server.url(), &fake, state_dir.path())
        };

        let first_stats = Arc::new(NotifierStats::default());
        let (first_run, first_cancel) = start(
            config.clone(),
            Arc::new(telegram_sink(&config, &first_stats)),
            &first_stats,
        );
        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        wait_until("the rate-limited request", || first_stats.retries() == 1).await;
        first_cancel.cancel();
        stopped(first_run).await;

        let log = NotificationLog::open(state_dir.path()).unwrap();
        assert_eq!(
            log.status(&log_key(&server.url(), "ep-1", AnomalyState::Firing))
                .unwrap(),
            Some(LogStatus::Pending),
            "an alert abandoned at shutdown is not marked failed"
        );
        drop(log);
        assert!(fake.delivered().is_empty());

        let second_stats = Arc::new(NotifierStats::default());
        let (second_run, second_cancel) = start(
            config.clone(),
            Arc::new(telegram_sink(&config, &second_stats)),
            &second_stats,
        );
        fake.wait_for_delivered(1, WAIT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        second_cancel.cancel();
        stopped(second_run).await;
        server.stop().await;

        assert_eq!(fake.delivered().len(), 1);
        assert_eq!(
            first_stats.snapshot().failed,
            1,
            "the first run counts the alert as failed"
        );
        assert_eq!(second_stats.snapshot().sent, 1);
    })
    .await
    .expect("test finished in time");
}

/// A TCP server on 127.0.0.1 that accepts connections and reads requests but
/// never responds, so a Telegram request to it stays in flight.
struct SilentServer {
    address: std::net::SocketAddr,
    bytes_read: Arc<AtomicUsize>,
}

impl SilentServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let bytes_read = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&bytes_read);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut buffer = [0_u8; 4096];
                    while let Ok(read) = socket.read(&mut buffer).await {
                        if read == 0 {
                            break;
                        }
                        counter.fetch_add(read, Ordering::SeqCst);
                    }
                });
            }
        });
        Self { address, bytes_read }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.address)
    }
}

/// Starts the notifier as a child process with the state directory.
fn spawn_notifier(detector: &str, api_url: &str, state_dir: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_notifier_process"))
        .env_clear()
        .env("RUST_LOG", "info")
        .env("SEISMO_DETECTORS", detector)
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_CHAT_IDS", CHAT_ID)
        .env("TELEGRAM_API_URL", api_url)
        .env("SEISMO_NOTIFIER_STATE_DIR", state_dir)
        .env("SEISMO_NOTIFIER_RECONNECT_INITIAL_MS", "100")
        .env("SEISMO_NOTIFIER_RECONNECT_MAX_MS", "400")
        .kill_on_drop(true)
        .spawn()
        .expect("the notifier test process starts")
}

/// Sends SIGTERM to `child` and waits until it exits.
async fn terminate(mut child: tokio::process::Child) {
    let pid = child.id().expect("the child is running").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "kill -TERM {pid} failed");
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("the notifier stops after SIGTERM")
        .unwrap();
    assert!(exit.success(), "the notifier exited with {exit}");
}

#[tokio::test]
async fn sigkill_mid_send_sends_once_after_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let silent = SilentServer::start().await;
        let detector = ScriptedDetector::default();
        let server = detector.serve().await;
        let state_dir = tempfile::tempdir().unwrap();

        // First process: ep-1 fires and is sent; then a graceful stop.
        let first = spawn_notifier(&server.url(), &fake.api_url(), state_dir.path());
        detector.wait_for_subscriptions(1, WAIT).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        fake.wait_for_delivered(1, WAIT).await;
        terminate(first).await;

        // Second process: its Telegram request for ep-2 never gets a
        // response, and SIGKILL ends it while the request is in flight.
        let mut second = spawn_notifier(&server.url(), &silent.url(), state_dir.path());
        detector.wait_for_subscriptions(2, WAIT).await;
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        wait_until("the request for ep-2 to reach Telegram", || {
            silent.bytes_read.load(Ordering::SeqCst) > 0
        })
        .await;
        second.start_kill().expect("SIGKILL reaches the notifier");
        let killed = second.wait().await.unwrap();
        assert!(!killed.success(), "the notifier was killed, not stopped: {killed}");

        // Published while no notifier runs; only the stored cursor finds it.
        detector.publish(anomaly(3, "ep-1", AnomalyState::Resolved));

        // Third process: sends the pending ep-2 and the missed resolution.
        let third = spawn_notifier(&server.url(), &fake.api_url(), state_dir.path());
        fake.wait_for_delivered(3, WAIT).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        terminate(third).await;
        server.stop().await;

        assert_eq!(
            detector.after_sequences(),
            [0, 1, 2],
            "each process resumes from the stored cursor"
        );
        let delivered = fake.delivered();
        let counts = deliveries_per_state_change(&delivered);
        assert_eq!(delivered.len(), 3, "{counts:?}");
        for state_change in [("ep-1", false), ("ep-2", false), ("ep-1", true)] {
            let key = (state_change.0.to_string(), state_change.1);
            assert_eq!(counts.get(&key), Some(&1), "{state_change:?}: {counts:?}");
        }
    })
    .await
    .expect("test finished in time");
}
