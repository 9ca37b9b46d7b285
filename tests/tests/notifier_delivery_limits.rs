//! The notifier's Telegram delivery limits against the fake Bot API on
//! 127.0.0.1: rate limits during an alert storm, backpressure on the detector
//! stream, 429s, message length limits and the plain-text fallback.
//!
//! The rate limits run with Telegram's message counts but every window 20
//! times shorter ([`RateLimits::with_windows_divided_by`]): 1 message per
//! 50 ms per chat, 20 per 3 s per group, 30 per 50 ms overall. The sending
//! pattern is the same as with the real limits, 20 times faster.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seismo_notifier::{
    Alert, AlertMessage, AlertSink, ExponentialBackoff, MAX_MESSAGE_UTF16, NotifierConfig, NotifierStats, RateLimits,
    Readiness, RetryPolicy, TelegramConfig, TelegramSink, format_alert, run,
};
use seismo_proto::v1::detector_server::{Detector, DetectorServer};
use seismo_proto::v1::{
    AnomalyEvent, AnomalyState, Dimension, Direction, GetSeriesRequest, GetSeriesResponse, ListSeriesRequest,
    ListSeriesResponse, Severity, StreamAnomaliesRequest,
};
use seismo_tests::fake_telegram::{FakeTelegram, RecordedRequest, Reply, parse_telegram_html};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Upper bound of every test, far above the longest expected run time (about
/// 8 s for the storm).
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound of each wait for deliveries.
const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";
/// A supergroup: negative ids are groups, with the 20-per-window limit.
const GROUP_CHAT_ID: i64 = -1_001_234_567_890;
/// Divisor of Telegram's limit windows in these tests.
const TIME_SCALE: u32 = 20;

fn scaled_limits() -> RateLimits {
    RateLimits::default().with_windows_divided_by(TIME_SCALE)
}

type EventSender = mpsc::UnboundedSender<Result<AnomalyEvent, Status>>;

/// A detector that streams the events the test publishes to every open
/// subscription, without replay.
#[derive(Clone, Default)]
struct LiveDetector {
    streams: Arc<Mutex<Vec<EventSender>>>,
}

impl LiveDetector {
    fn publish(&self, event: AnomalyEvent) {
        self.streams
            .lock()
            .unwrap()
            .retain(|stream| stream.send(Ok(event.clone())).is_ok());
    }
}

#[tonic::async_trait]
impl Detector for LiveDetector {
    type StreamAnomaliesStream = UnboundedReceiverStream<Result<AnomalyEvent, Status>>;

    async fn stream_anomalies(
        &self,
        _: Request<StreamAnomaliesRequest>,
    ) -> Result<Response<Self::StreamAnomaliesStream>, Status> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.streams.lock().unwrap().push(sender);
        Ok(Response::new(UnboundedReceiverStream::new(receiver)))
    }

    async fn get_series(&self, _: Request<GetSeriesRequest>) -> Result<Response<GetSeriesResponse>, Status> {
        Err(Status::unimplemented("the notifier does not read series"))
    }

    async fn list_series(&self, _: Request<ListSeriesRequest>) -> Result<Response<ListSeriesResponse>, Status> {
        Err(Status::unimplemented("the notifier does not list series"))
    }
}

/// Serves `detector` on an ephemeral port of 127.0.0.1 until `stop` fires
/// and returns the address.
async fn serve_detector(detector: &LiveDetector, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding an ephemeral port on 127.0.0.1 succeeds");
    let address = listener.local_addr().unwrap();
    let service = DetectorServer::new(detector.clone());
    tokio::spawn(async move {
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.cancelled_owned())
            .await
            .expect("the test detector serves until stopped");
    });
    address
}

/// Builds a firing anomaly of episode `storm-<index>`, all in the same 5-minute
/// window and each in its own `country` slice.
fn storm_anomaly(index: u64) -> AnomalyEvent {
    let window_start_ms = 1_714_557_600_000;
    AnomalyEvent {
        id: format!("storm-{index}"),
        sequence: index + 1,
        state: AnomalyState::Firing as i32,
        metric: "checkout_conversion".to_string(),
        slice: vec![Dimension {
            name: "country".to_string(),
            value: format!("C{index:02}"),
        }],
        window_start_ms,
        window_end_ms: window_start_ms + 300_000,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        score: 0.9,
        severity: Severity::Critical as i32,
        direction: Direction::Down as i32,
        window_seconds: 300,
        detected_at_ms: window_start_ms + 301_000,
        traceparent: String::new(),
        ..Default::default()
    }
}

fn telegram_config(fake: &FakeTelegram) -> TelegramConfig {
    let mut telegram = TelegramConfig::new(TOKEN, &GROUP_CHAT_ID.to_string(), &fake.api_url())
        .expect("test Telegram settings are valid");
    telegram.rate_limits = scaled_limits();
    telegram
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        backoff: ExponentialBackoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        max_retry_after: Duration::from_secs(30),
    }
}

fn notifier_config(detector: SocketAddr, fake: &FakeTelegram, queue_capacity: usize) -> NotifierConfig {
    NotifierConfig {
        detectors: vec![format!("http://{detector}")],
        telegram: Some(telegram_config(fake)),
        reconnect: ExponentialBackoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
        connect_timeout: Duration::from_secs(2),
        delivery: retry_policy(),
        shutdown_grace: Duration::from_secs(5),
        queue_capacity,
        ..NotifierConfig::default()
    }
}

/// Starts the notifier against `detector` and waits until its anomaly stream
/// is open, because the detector does not replay earlier events.
async fn start_notifier(
    config: NotifierConfig,
    stats: &Arc<NotifierStats>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let readiness = Readiness::default();
    let notifier = tokio::spawn({
        let stats = Arc::clone(stats);
        let readiness = readiness.clone();
        let cancel = cancel.clone();
        async move {
            run(config, stats, readiness, cancel)
                .await
                .expect("the notifier configuration is valid");
        }
    });

    let deadline = Instant::now() + WAIT;
    while readiness.status().is_err() {
        assert!(Instant::now() < deadline, "the notifier did not subscribe in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    notifier
}

/// Returns the largest number of `requests` to one chat that arrived within
/// any half-open span `[t, t + window)`.
fn max_requests_in_any_window(requests: &[RecordedRequest], window: Duration) -> usize {
    requests
        .iter()
        .map(|first| {
            requests
                .iter()
                .filter(|other| other.chat_id == first.chat_id)
                .filter(|other| {
                    other.received_at >= first.received_at && other.received_at < first.received_at + window
                })
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Counts the delivered messages whose text contains `needle`.
fn copies_delivered(fake: &FakeTelegram, needle: &str) -> usize {
    fake.delivered()
        .iter()
        .filter(|request| request.text.as_deref().is_some_and(|text| text.contains(needle)))
        .count()
}

fn visible_utf16_len(request: &RecordedRequest) -> usize {
    let text = request.text.as_deref().expect("sendMessage carries text");
    let visible = if request.parse_mode.as_deref() == Some("HTML") {
        parse_telegram_html(text).expect("the text is valid Telegram HTML")
    } else {
        text.to_string()
    };
    visible.encode_utf16().count()
}

#[tokio::test]
async fn group_storm_stays_within_limits() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let detector = LiveDetector::default();
        let detector_stop = CancellationToken::new();
        let detector_address = serve_detector(&detector, detector_stop.clone()).await;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        // A queue far smaller than the storm, so that the storm relies on
        // backpressure to the detector stream.
        let queue_capacity = 4;
        let notifier = start_notifier(
            notifier_config(detector_address, &fake, queue_capacity),
            &stats,
            &cancel,
        )
        .await;

        for index in 0..60 {
            detector.publish(storm_anomaly(index));
        }
        // Alerts inside the notifier: in a subscription waiting for queue
        // space, in the detector queue, in the dispatcher, in the chat's
        // queue, or in delivery.
        let mut max_pending = 0;
        let deadline = Instant::now() + WAIT;
        while fake.delivered().len() < 60 {
            let totals = stats.snapshot();
            let pending = totals
                .received
                .saturating_sub(totals.sent + totals.failed + totals.duplicates);
            max_pending = max_pending.max(pending);
            assert!(Instant::now() < deadline, "60 alerts not delivered in time");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cancel.cancel();
        notifier.await.expect("the notifier task did not panic");
        detector_stop.cancel();

        let requests = fake.requests();
        assert_eq!(requests.len(), 60, "one request per alert, no retries");
        assert!(requests.iter().all(RecordedRequest::delivered));
        for index in 0..60 {
            let episode = format!("storm-{index}<");
            // The episode id is shown in <code>, so the tag ends it.
            let copies = copies_delivered(&fake, &episode);
            assert_eq!(copies, 1, "storm-{index} delivered {copies} times");
        }
        assert!(
            requests
                .iter()
                .all(|request| request.chat_id.as_i64() == Some(GROUP_CHAT_ID))
        );

        let limits = scaled_limits();
        let per_group = max_requests_in_any_window(&requests, limits.per_group.window);
        assert_eq!(
            per_group, 20,
            "group limit: at most 20 per {:?}",
            limits.per_group.window
        );
        let per_chat = max_requests_in_any_window(&requests, limits.per_chat.window);
        assert_eq!(per_chat, 1, "chat limit: at most 1 per {:?}", limits.per_chat.window);
        for request in &requests {
            assert!(visible_utf16_len(request) <= MAX_MESSAGE_UTF16);
        }
        // 60 messages at 20 per 3 s take at least two full windows.
        let span = requests[59].received_at - requests[0].received_at;
        assert!(span >= 2 * limits.per_group.window, "storm sent within {span:?}");

        assert!(
            max_pending <= 2 * queue_capacity as u64 + 3,
            "{max_pending} alerts held in the notifier with a queue of {queue_capacity}"
        );
        let totals = stats.snapshot();
        assert_eq!(totals.received, 60);
        assert_eq!(totals.sent, 60);
        assert_eq!(totals.failed, 0);
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn retry_after_delivers_each_alert_once() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        fake.push_replies([
            Reply::Ok,
            Reply::RetryAfter(1),
            Reply::Ok,
            Reply::RetryAfter(1),
            Reply::RetryAfter(1),
        ]);
        let detector = LiveDetector::default();
        let detector_stop = CancellationToken::new();
        let detector_address = serve_detector(&detector, detector_stop.clone()).await;
        let stats = Arc::new(NotifierStats::default());
        let cancel = CancellationToken::new();
        let notifier = start_notifier(notifier_config(detector_address, &fake, 1024), &stats, &cancel).await;

        for index in 0..5 {
            detector.publish(storm_anomaly(index));
        }
        fake.wait_for_delivered(5, WAIT).await;
        cancel.cancel();
        notifier.await.expect("the notifier task did not panic");
        detector_stop.cancel();

        let requests = fake.requests();
        let statuses: Vec<u16> = requests.iter().map(|request| request.status).collect();
        assert_eq!(statuses, [200, 429, 200, 429, 429, 200, 200, 200]);
        for pair in requests.windows(2) {
            if pair[0].status == 429 {
                let waited = pair[1].received_at - pair[0].received_at;
                assert!(waited >= Duration::from_secs(1), "sent {waited:?} after a 429");
            }
        }
        for index in 0..5 {
            let copies = copies_delivered(&fake, &format!("storm-{index}<"));
            assert_eq!(copies, 1, "storm-{index} delivered {copies} times");
        }
        let totals = stats.snapshot();
        assert_eq!(totals.sent, 5);
        assert_eq!(totals.failed, 0);
        assert_eq!(totals.retries, 3);
    })
    .await
    .expect("test finished in time");
}

/// Log output of the current thread, as the notifier writes it.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Routes this thread's `tracing` events into the capture until the
    /// guard drops. The tests run on tokio's current-thread runtime, so
    /// every notifier future logs on this thread.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn telegram_sink(fake: &FakeTelegram, stats: &Arc<NotifierStats>) -> TelegramSink {
    TelegramSink::new(&telegram_config(fake), retry_policy(), Arc::clone(stats))
}

fn alert(message: AlertMessage) -> Alert {
    Alert::new("http://127.0.0.1:50051", "ep-1", 1, message)
}

const ENTITY_ERROR: &str = "Bad Request: can't parse entities: Unsupported start tag \"control\" at byte offset 20";

#[tokio::test]
async fn entity_error_falls_back_to_plain_text() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let logs = CapturedLogs::default();
        let _logging = logs.install();
        let fake = FakeTelegram::start().await;
        fake.push_replies([Reply::BadRequest(ENTITY_ERROR.to_string())]);
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake, &stats);
        let alert = alert(format_alert(&storm_anomaly(1)));

        let result = sink.deliver(&alert, &CancellationToken::new()).await;

        assert!(result.is_ok(), "{result:?}");
        let requests = fake.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].status, 400);
        assert_eq!(requests[0].parse_mode.as_deref(), Some("HTML"));
        assert_eq!(requests[1].status, 200);
        assert_eq!(requests[1].parse_mode, None);
        assert_eq!(requests[1].text.as_deref(), Some(alert.message.plain_text().as_str()));
        assert_eq!(stats.plain_text_fallbacks(), 1);
        assert_eq!(stats.retries(), 0);
        let logged = logs.text();
        assert!(logged.contains("sending it as plain text"), "{logged}");
        assert!(logged.contains("can't parse entities"), "{logged}");
        assert!(logged.contains("episode_id=ep-1"), "{logged}");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn plain_text_fallback_happens_once() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        fake.push_replies([
            Reply::BadRequest(ENTITY_ERROR.to_string()),
            Reply::BadRequest(ENTITY_ERROR.to_string()),
        ]);
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake, &stats);

        let result = sink
            .deliver(&alert(format_alert(&storm_anomaly(1))), &CancellationToken::new())
            .await;

        assert!(result.is_err(), "{result:?}");
        let statuses: Vec<u16> = fake.requests().iter().map(|request| request.status).collect();
        assert_eq!(statuses, [400, 400], "no third request after the fallback failed");
        assert_eq!(stats.plain_text_fallbacks(), 1);
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn long_alert_arrives_in_valid_parts() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake, &stats);
        let mut message = AlertMessage::default();
        message
            .plain("🔴 Anomaly firing: ")
            .bold("checkout <conversion> & co")
            .plain("\n");
        for index in 0..200 {
            message
                .plain(format!("Slice {index:03} 🌍: "))
                .code(format!("country=<C{index:03}>&city=\"Zürich\""))
                .plain("\n");
        }
        // A single line longer than a whole message.
        message.bold("x".repeat(5000));
        let alert = alert(message);
        assert!(alert.message.visible_utf16_len() > 2 * MAX_MESSAGE_UTF16);

        let result = sink.deliver(&alert, &CancellationToken::new()).await;

        assert!(result.is_ok(), "{result:?}");
        let requests = fake.requests();
        assert!(requests.len() >= 4, "{} parts", requests.len());
        assert!(requests.iter().all(RecordedRequest::delivered), "{requests:#?}");
        let mut displayed = String::new();
        for request in &requests {
            let html = request.text.as_deref().expect("sendMessage carries text");
            let visible = parse_telegram_html(html).expect("each part is valid Telegram HTML");
            assert!(visible.encode_utf16().count() <= MAX_MESSAGE_UTF16);
            displayed.push_str(&visible);
        }
        assert_eq!(displayed, alert.message.plain_text(), "parts joined lose nothing");
        // Parts other than the cut long line end at a line end.
        let line_ends = requests
            .iter()
            .filter(|request| request.text.as_deref().is_some_and(|text| text.ends_with('\n')))
            .count();
        assert!(
            line_ends >= requests.len() - 2,
            "{line_ends} of {} parts end a line",
            requests.len()
        );
    })
    .await
    .expect("test finished in time");
}
