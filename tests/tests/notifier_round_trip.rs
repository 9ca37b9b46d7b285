//! Round trips through the whole notifier: an in-test detector gRPC server on
//! 127.0.0.1 streams anomalies, the notifier follows it, and the fake Telegram
//! Bot API receives the alerts. Covers resuming from the cursor after a lost
//! stream and after a detector restart, without sending anything twice.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seismo_notifier::{
    AlertSink, ConsoleSink, ExponentialBackoff, NotifierConfig, NotifierStats, RetryPolicy, StatsSnapshot,
    TelegramConfig, TelegramSink, run, run_with_sinks,
};
use seismo_proto::v1::detector_server::{Detector, DetectorServer};
use seismo_proto::v1::{
    AnomalyEvent, AnomalyState, Dimension, Direction, GetSeriesRequest, GetSeriesResponse, ListSeriesRequest,
    ListSeriesResponse, Severity, StreamAnomaliesRequest,
};
use seismo_tests::fake_telegram::{FakeTelegram, RecordedRequest, Reply, parse_telegram_html};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Upper bound of every test, far above its expected run time of a few
/// seconds.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound of each wait for a condition inside a test.
const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";
const CHAT_ID: &str = "1001";

type EventSender = mpsc::UnboundedSender<Result<AnomalyEvent, Status>>;

/// The detector side of the test: a replay buffer, the open streams and the
/// `after_sequence` of every subscription. Survives server restarts, like a
/// detector's buffer would.
#[derive(Clone, Default)]
struct DetectorState {
    inner: Arc<Mutex<DetectorInner>>,
}

#[derive(Default)]
struct DetectorInner {
    buffer: Vec<AnomalyEvent>,
    streams: Vec<EventSender>,
    after_sequences: Vec<u64>,
    /// Sequences up to this one were dropped from the replay buffer.
    evicted_through: u64,
}

impl DetectorState {
    /// Buffers the event and sends it on every open stream.
    fn publish(&self, event: AnomalyEvent) {
        let mut inner = self.inner.lock().unwrap();
        inner.buffer.push(event.clone());
        inner.streams.retain(|stream| stream.send(Ok(event.clone())).is_ok());
    }

    /// Ends every open stream with `UNAVAILABLE`, as a detector going down.
    fn end_streams(&self) {
        let mut inner = self.inner.lock().unwrap();
        for stream in inner.streams.drain(..) {
            let _ = stream.send(Err(Status::unavailable("detector is restarting")));
        }
    }

    /// Drops the events up to `sequence` from the replay buffer, so that an
    /// older cursor is rejected with `OUT_OF_RANGE`.
    fn evict_through(&self, sequence: u64) {
        let mut inner = self.inner.lock().unwrap();
        inner.buffer.retain(|event| event.sequence > sequence);
        inner.evicted_through = sequence;
    }

    fn after_sequences(&self) -> Vec<u64> {
        self.inner.lock().unwrap().after_sequences.clone()
    }

    async fn wait_for_subscriptions(&self, count: usize) {
        wait_until(&format!("{count} subscriptions"), || {
            self.after_sequences().len() >= count
        })
        .await;
    }
}

/// A `Detector` service that follows the proto contract: `after_sequence = 0`
/// follows live events only, and a cursor first replays the buffered events
/// after it. A cursor older than the buffer gets `OUT_OF_RANGE`.
struct ScriptedDetector {
    state: DetectorState,
}

#[tonic::async_trait]
impl Detector for ScriptedDetector {
    type StreamAnomaliesStream = UnboundedReceiverStream<Result<AnomalyEvent, Status>>;

    async fn stream_anomalies(
        &self,
        request: Request<StreamAnomaliesRequest>,
    ) -> Result<Response<Self::StreamAnomaliesStream>, Status> {
        let after_sequence = request.into_inner().after_sequence;
        let (sender, receiver) = mpsc::unbounded_channel();

        let mut inner = self.state.inner.lock().unwrap();
        inner.after_sequences.push(after_sequence);
        if after_sequence > 0 && after_sequence < inner.evicted_through {
            return Err(Status::out_of_range(format!(
                "changes after sequence {after_sequence} are no longer buffered"
            )));
        }
        if after_sequence > 0 {
            for event in inner.buffer.iter().filter(|event| event.sequence > after_sequence) {
                let _ = sender.send(Ok(event.clone()));
            }
        }
        inner.streams.push(sender);

        Ok(Response::new(UnboundedReceiverStream::new(receiver)))
    }

    async fn get_series(&self, _: Request<GetSeriesRequest>) -> Result<Response<GetSeriesResponse>, Status> {
        Err(Status::unimplemented("the notifier does not read series"))
    }

    async fn list_series(&self, _: Request<ListSeriesRequest>) -> Result<Response<ListSeriesResponse>, Status> {
        Err(Status::unimplemented("the notifier does not list series"))
    }
}

/// A detector gRPC server running on 127.0.0.1.
struct DetectorServerHandle {
    address: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl DetectorServerHandle {
    /// Serves `state` on `address`, where port 0 picks a free port.
    async fn start(state: &DetectorState, address: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|error| panic!("binding the test detector to {address} failed: {error}"));
        let address = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let service = DetectorServer::new(ScriptedDetector { state: state.clone() });

        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
                .await
                .expect("the test detector serves until stopped");
        });
        Self { address, stop, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Ends the open streams and stops the server, so that connects are refused.
    async fn stop(self, state: &DetectorState) {
        self.stop.cancel();
        // Graceful shutdown waits for open streams, so streams opened while
        // it starts are ended too.
        let deadline = Instant::now() + WAIT;
        while !self.task.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the test detector did not stop within {WAIT:?}"
            );
            state.end_streams();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.task.await.expect("the test detector task did not panic");
    }
}

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
        traceparent: String::new(),
        ..Default::default()
    }
}

fn notifier_config(detectors: Vec<String>, fake: &FakeTelegram) -> NotifierConfig {
    NotifierConfig {
        detectors,
        metrics: Vec::new(),
        telegram: Some(TelegramConfig::new(TOKEN, CHAT_ID, &fake.api_url()).expect("test Telegram settings are valid")),
        console: false,
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
        queue_capacity: 1024,
        ..NotifierConfig::default()
    }
}

/// Polls `condition` every 20 ms and panics naming `what` after [`WAIT`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts delivered messages per `(episode id, firing or resolved)`, read
/// from the text Telegram displays.
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

/// A `Write` target whose bytes stay readable after a sink took ownership.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn resumes_after_lost_stream() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = DetectorState::default();
        let server = DetectorServerHandle::start(&detector, "127.0.0.1:0".parse().unwrap()).await;
        let config = notifier_config(vec![server.url()], &fake);
        let stats = Arc::new(NotifierStats::default());
        let console = SharedBuffer::default();
        let sinks: Vec<Arc<dyn AlertSink>> = vec![
            Arc::new(TelegramSink::new(
                config.telegram.as_ref().unwrap(),
                config.delivery,
                Arc::clone(&stats),
            )),
            Arc::new(ConsoleSink::new(console.clone())),
        ];
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run_with_sinks(
            config,
            sinks,
            Arc::clone(&stats),
            seismo_notifier::Readiness::default(),
            cancel.clone(),
        ));

        detector.wait_for_subscriptions(1).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        detector.publish(anomaly(3, "ep-1", AnomalyState::Resolved));
        fake.wait_for_delivered(3, WAIT).await;

        // Without an await in between, no stream is open when 4 and 5 are
        // published, so only a replay after the cursor can deliver them.
        detector.end_streams();
        detector.publish(anomaly(4, "ep-3", AnomalyState::Firing));
        detector.publish(anomaly(5, "ep-2", AnomalyState::Resolved));
        fake.wait_for_delivered(5, WAIT).await;

        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop(&detector).await;

        assert_eq!(detector.after_sequences(), [0, 3]);
        let delivered = fake.delivered();
        assert_eq!(delivered.len(), 5);
        let counts = deliveries_per_state_change(&delivered);
        assert_eq!(counts.len(), 5, "{counts:?}");
        assert!(counts.values().all(|copies| *copies == 1), "{counts:?}");
        let totals = stats.snapshot();
        assert_eq!(
            (totals.received, totals.sent, totals.failed, totals.duplicates),
            (5, 5, 0, 0)
        );
        assert!(totals.reconnects >= 1, "{totals:?}");

        let displayed: Vec<String> = delivered
            .iter()
            .map(|request| parse_telegram_html(request.text.as_deref().unwrap()).unwrap() + "\n\n")
            .collect();
        let printed = String::from_utf8(console.0.lock().unwrap().clone()).unwrap();
        assert_eq!(printed, displayed.concat(), "the console prints what Telegram shows");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn resumes_after_detector_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = DetectorState::default();
        let server = DetectorServerHandle::start(&detector, "127.0.0.1:0".parse().unwrap()).await;
        let address = server.address;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let config = notifier_config(vec![server.url()], &fake);
        let notifier = tokio::spawn(run(
            config,
            Arc::clone(&stats),
            seismo_notifier::Readiness::default(),
            cancel.clone(),
        ));

        detector.wait_for_subscriptions(1).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        fake.wait_for_delivered(2, WAIT).await;

        server.stop(&detector).await;
        detector.publish(anomaly(3, "ep-1", AnomalyState::Resolved));
        // The first reconnect follows the lost stream; later ones mean that
        // connecting to the stopped server failed and was retried.
        wait_until("reconnects to the stopped detector", || {
            stats.snapshot().reconnects >= 3
        })
        .await;
        let restarted = DetectorServerHandle::start(&detector, address).await;
        fake.wait_for_delivered(3, WAIT).await;

        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        restarted.stop(&detector).await;

        assert_eq!(detector.after_sequences(), [0, 2]);
        let delivered = fake.delivered();
        let counts = deliveries_per_state_change(&delivered);
        assert_eq!(delivered.len(), 3);
        assert_eq!(counts.get(&("ep-1".to_string(), true)), Some(&1), "{counts:?}");
        assert!(counts.values().all(|copies| *copies == 1), "{counts:?}");
        let totals = stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.failed), (3, 3, 0));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn rejected_cursor_falls_back_to_live() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = DetectorState::default();
        let server = DetectorServerHandle::start(&detector, "127.0.0.1:0".parse().unwrap()).await;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let config = notifier_config(vec![server.url()], &fake);
        let notifier = tokio::spawn(run(
            config,
            Arc::clone(&stats),
            seismo_notifier::Readiness::default(),
            cancel.clone(),
        ));

        detector.wait_for_subscriptions(1).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        fake.wait_for_delivered(2, WAIT).await;

        // The notifier is disconnected while 3 and 4 pass and leave the buffer.
        detector.end_streams();
        detector.publish(anomaly(3, "ep-3", AnomalyState::Firing));
        detector.publish(anomaly(4, "ep-4", AnomalyState::Firing));
        detector.evict_through(4);
        detector.wait_for_subscriptions(3).await;
        detector.publish(anomaly(5, "ep-5", AnomalyState::Firing));
        fake.wait_for_delivered(3, WAIT).await;

        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop(&detector).await;

        assert_eq!(detector.after_sequences(), [0, 2, 0]);
        let episodes: Vec<String> = deliveries_per_state_change(&fake.delivered())
            .into_keys()
            .map(|(episode, _)| episode)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(episodes, ["ep-1", "ep-2", "ep-5"]);
        let totals = stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.failed), (3, 3, 0));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn rejected_alert_counts_as_failed() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        fake.push_replies([Reply::BadRequest("Bad Request: chat not found".to_string())]);
        let detector = DetectorState::default();
        let server = DetectorServerHandle::start(&detector, "127.0.0.1:0".parse().unwrap()).await;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let notifier = tokio::spawn(run(
            notifier_config(vec![server.url()], &fake),
            Arc::clone(&stats),
            seismo_notifier::Readiness::default(),
            cancel.clone(),
        ));

        detector.wait_for_subscriptions(1).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        detector.publish(anomaly(2, "ep-2", AnomalyState::Firing));
        wait_until("both alerts handled", || {
            let totals = stats.snapshot();
            totals.sent + totals.failed == 2
        })
        .await;

        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        server.stop(&detector).await;

        let statuses: Vec<u16> = fake.requests().iter().map(|request| request.status).collect();
        assert_eq!(statuses, [400, 200], "a 400 is not retried");
        let totals = stats.snapshot();
        assert_eq!(
            totals,
            StatsSnapshot {
                received: 2,
                sent: 1,
                failed: 1,
                retries: 0,
                duplicates: 0,
                reconnects: 0,
                plain_text_fallbacks: 0,
                suppressed: 0,
            }
        );
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn shutdown_abandons_pending_retry() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        fake.push_replies([Reply::RetryAfter(25)]);
        let detector = DetectorState::default();
        let server = DetectorServerHandle::start(&detector, "127.0.0.1:0".parse().unwrap()).await;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let config = NotifierConfig {
            shutdown_grace: Duration::from_millis(300),
            ..notifier_config(vec![server.url()], &fake)
        };
        let notifier = tokio::spawn(run(
            config,
            Arc::clone(&stats),
            seismo_notifier::Readiness::default(),
            cancel.clone(),
        ));

        detector.wait_for_subscriptions(1).await;
        detector.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        wait_until("the rate-limited request", || stats.retries() == 1).await;
        let cancelled_at = Instant::now();
        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        let stopped_after = cancelled_at.elapsed();
        server.stop(&detector).await;

        assert!(
            stopped_after < Duration::from_secs(10),
            "stopped after {stopped_after:?}"
        );
        assert_eq!(fake.requests().len(), 1, "no request after the 429");
        let totals = stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.failed), (1, 0, 1));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn follows_several_detectors() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let first = DetectorState::default();
        let second = DetectorState::default();
        let first_server = DetectorServerHandle::start(&first, "127.0.0.1:0".parse().unwrap()).await;
        let second_server = DetectorServerHandle::start(&second, "127.0.0.1:0".parse().unwrap()).await;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let config = notifier_config(vec![first_server.url(), second_server.url()], &fake);
        let notifier = tokio::spawn(run(
            config,
            Arc::clone(&stats),
            seismo_notifier::Readiness::default(),
            cancel.clone(),
        ));

        first.wait_for_subscriptions(1).await;
        second.wait_for_subscriptions(1).await;
        // Both detectors number their streams from 1 and may reuse episode ids.
        first.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        second.publish(anomaly(1, "ep-1", AnomalyState::Firing));
        fake.wait_for_delivered(2, WAIT).await;

        cancel.cancel();
        notifier.await.unwrap().expect("the notifier configuration is valid");
        first_server.stop(&first).await;
        second_server.stop(&second).await;

        assert_eq!(fake.delivered().len(), 2);
        let totals = stats.snapshot();
        assert_eq!((totals.received, totals.sent, totals.duplicates), (2, 2, 0));
    })
    .await
    .expect("test finished in time");
}
