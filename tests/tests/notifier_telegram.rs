//! The notifier's Telegram sink against the fake Bot API on 127.0.0.1:
//! rate limits, escaping, server and client errors, and the bot token in logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seismo_notifier::{
    Alert, AlertSink, DeliveryError, ExponentialBackoff, NotifierStats, RetryPolicy, TelegramConfig, TelegramSink,
    format_alert,
};
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, Direction, Severity};
use seismo_tests::fake_telegram::{FakeTelegram, Reply, parse_telegram_html};
use tokio_util::sync::CancellationToken;

/// Upper bound of every test, far above its expected run time (at most
/// about 12 s, for the 10 s teloxide waits after a 5xx).
const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Shaped like a real token (bot id, colon, 35-character secret), which
/// teloxide recognises and rewrites in network errors.
const TOKEN: &str = "123456789:AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";
const TOKEN_SECRET: &str = "AAF7-g0gYncWnm5IyfZlpPRqRRv6kNAGlao";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        backoff: ExponentialBackoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        max_retry_after: Duration::from_secs(30),
    }
}

fn telegram_sink(api_url: &str, chat_ids: &str, token: &str, stats: &Arc<NotifierStats>) -> TelegramSink {
    let config = TelegramConfig::new(token, chat_ids, api_url).expect("test Telegram settings are valid");
    TelegramSink::new(&config, fast_policy(), Arc::clone(stats))
}

fn event(id: &str, metric: &str, slice: &[(&str, &str)]) -> AnomalyEvent {
    AnomalyEvent {
        id: id.to_string(),
        sequence: 1,
        state: AnomalyState::Firing as i32,
        metric: metric.to_string(),
        slice: slice
            .iter()
            .map(|(name, value)| Dimension {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        window_start_ms: 1_714_557_600_000,
        window_end_ms: 1_714_557_900_000,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        score: 0.93,
        severity: Severity::Critical as i32,
        direction: Direction::Down as i32,
        window_seconds: 300,
        detected_at_ms: 1_714_557_901_000,
        traceparent: String::new(),
        ..Default::default()
    }
}

fn alert(event: &AnomalyEvent) -> Alert {
    Alert::new(
        "http://127.0.0.1:50051",
        event.id.clone(),
        event.sequence,
        format_alert(event),
    )
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

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        fake.push_replies([Reply::RetryAfter(1), Reply::RetryAfter(1)]);
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake.api_url(), "1001", TOKEN, &stats);
        let abort = CancellationToken::new();

        for id in ["ep-1", "ep-2", "ep-3"] {
            let alert = alert(&event(id, "checkout_conversion", &[]));
            sink.deliver(&alert, &abort)
                .await
                .expect("the alert is delivered after the 429s");
        }

        let requests = fake.requests();
        let statuses: Vec<u16> = requests.iter().map(|request| request.status).collect();
        assert_eq!(statuses, [429, 429, 200, 200, 200]);
        for pair in requests[..3].windows(2) {
            let waited = pair[1].received_at - pair[0].received_at;
            assert!(
                waited >= Duration::from_secs(1),
                "retried after {waited:?}, before retry_after"
            );
        }
        for id in ["ep-1", "ep-2", "ep-3"] {
            let copies = fake
                .delivered()
                .iter()
                .filter(|request| request.text.as_deref().is_some_and(|text| text.contains(id)))
                .count();
            assert_eq!(copies, 1, "{id} delivered {copies} times");
        }
        assert_eq!(stats.retries(), 2);
        assert!(requests.iter().all(|request| request.token == TOKEN));
        assert!(requests.iter().all(|request| request.method == "sendmessage"));
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn markup_values_arrive_intact() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake.api_url(), "1001,@seismo_alerts", TOKEN, &stats);
        let values = ["A&B <control>", "drop_rate*", "a_b", "[x]"];
        let event = event(
            "ep_<1>&2",
            "A&B <control>",
            &[("campaign", "drop_rate*"), ("a_b", "[x]"), ("quote", r#"say "hi""#)],
        );
        let alert = alert(&event);

        sink.deliver(&alert, &CancellationToken::new())
            .await
            .expect("Telegram accepts the escaped message");

        let delivered = fake.delivered();
        assert_eq!(delivered.len(), 2, "one message per chat");
        for request in &delivered {
            let html = request.text.as_deref().expect("sendMessage carries text");
            let displayed = parse_telegram_html(html).expect("the text is valid Telegram HTML");
            assert_eq!(request.parse_mode.as_deref(), Some("HTML"));
            assert_eq!(displayed, alert.message.plain_text());
            for value in values {
                assert!(displayed.contains(value), "{value:?} missing from {displayed:?}");
            }
            assert!(displayed.contains(r#"quote=say "hi""#), "{displayed}");
            assert!(displayed.contains("ep_<1>&2"), "{displayed}");
            assert!(!html.contains("<control>"), "unescaped tag in {html}");
        }
        let chats: Vec<String> = delivered.iter().map(|request| request.chat_id.to_string()).collect();
        assert_eq!(chats, ["1001", "\"@seismo_alerts\""]);
    })
    .await
    .expect("test finished in time");
}

#[test]
fn fake_rejects_unescaped_markup() {
    assert!(parse_telegram_html("A&B <control>").is_err());
    assert!(parse_telegram_html("<b>open").is_err());
    assert!(parse_telegram_html("1 > 0").is_err());
    assert_eq!(
        parse_telegram_html("<b>A&amp;B</b> &lt;x&gt; &quot;q&quot; &#39;").unwrap(),
        "A&B <x> \"q\" '"
    );
}

#[tokio::test]
async fn bad_request_fails_without_retry() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let logs = CapturedLogs::default();
        let _logging = logs.install();
        let fake = FakeTelegram::start().await;
        fake.push_replies([Reply::BadRequest("Bad Request: chat not found".to_string())]);
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake.api_url(), "1001", TOKEN, &stats);
        let abort = CancellationToken::new();

        let rejected = sink.deliver(&alert(&event("ep-1", "signups", &[])), &abort).await;
        let accepted = sink.deliver(&alert(&event("ep-2", "signups", &[])), &abort).await;

        assert!(
            matches!(rejected, Err(DeliveryError::Telegram { failed: 1, total: 1 })),
            "{rejected:?}"
        );
        assert!(accepted.is_ok(), "{accepted:?}");
        let statuses: Vec<u16> = fake.requests().iter().map(|request| request.status).collect();
        assert_eq!(statuses, [400, 200]);
        assert_eq!(stats.retries(), 0);
        let logged = logs.text();
        assert!(logged.contains("the chat did not receive the alert"), "{logged}");
        assert!(logged.contains("chat not found"), "{logged}");
        assert!(logged.contains("episode_id=ep-1"), "{logged}");
        assert!(logged.contains("reason=permanent error"), "{logged}");
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn server_error_is_retried() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fake = FakeTelegram::start().await;
        fake.push_replies([Reply::ServerError(502)]);
        let stats = Arc::new(NotifierStats::default());
        let sink = telegram_sink(&fake.api_url(), "1001", TOKEN, &stats);

        let result = sink
            .deliver(&alert(&event("ep-1", "signups", &[])), &CancellationToken::new())
            .await;

        assert!(result.is_ok(), "{result:?}");
        let statuses: Vec<u16> = fake.requests().iter().map(|request| request.status).collect();
        assert_eq!(statuses, [502, 200]);
        assert_eq!(fake.delivered().len(), 1);
        assert_eq!(stats.retries(), 1);
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn network_error_logs_hide_token() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let logs = CapturedLogs::default();
        let _logging = logs.install();
        // A port that was just free: connecting to it is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let api_url = format!("http://{closed}/");
        let stats = Arc::new(NotifierStats::default());
        let odd_token = "odd-token-without-colon-SECRET42";

        for token in [TOKEN, odd_token] {
            let sink = telegram_sink(&api_url, "1001", token, &stats);
            let result = sink
                .deliver(&alert(&event("ep-1", "signups", &[])), &CancellationToken::new())
                .await;
            assert!(result.is_err(), "{result:?}");
        }

        let logged = logs.text();
        assert!(logged.contains("Telegram request failed; retrying"), "{logged}");
        assert!(logged.contains("error sending request"), "{logged}");
        assert!(!logged.contains(TOKEN_SECRET), "{logged}");
        assert!(!logged.contains("SECRET42"), "{logged}");
        assert_eq!(stats.retries(), 8, "4 retries for each of the two sinks");
    })
    .await
    .expect("test finished in time");
}
