//! An A/B report and its chart sent through the Bot API to the fake
//! Telegram server on 127.0.0.1.

use seismo_experiments::analysis::{AnalysisSettings, GroupSample, UserAggregate, analyze};
use seismo_experiments::chart::render_ab_chart;
use seismo_experiments::report::render_ab_report;
use seismo_experiments::telegram::{TelegramTarget, send_report};
use std::time::Duration;

use seismo_tests::fake_telegram::{FakeTelegram, Reply, parse_telegram_html};

/// 300 users whose views and likes vary with the index; the treatment has
/// one extra like per 10 views.
fn group(name: &str, extra_likes_per_10_views: u64) -> GroupSample {
    GroupSample {
        name: name.to_string(),
        users: (0..300)
            .map(|index| {
                let views = 5 + index % 17;
                UserAggregate {
                    user_id: format!("{name}-{index}"),
                    views,
                    likes: (index * 7) % (views / 2 + 1) + views / 10 * extra_likes_per_10_views,
                }
            })
            .collect(),
    }
}

#[tokio::test]
async fn report_and_chart_delivered() {
    let telegram = FakeTelegram::start().await;
    let settings = AnalysisSettings {
        bootstrap_iterations: 200,
        ..AnalysisSettings::default()
    };
    let analysis = analyze(&group("1", 0), &group("2", 1), &settings).unwrap();
    let report = render_ab_report(&analysis, "2014-07-01 .. 2014-08-01");
    let chart = render_ab_chart(&analysis).unwrap();
    let target = TelegramTarget {
        token: "123456:experiments-test".to_string(),
        api_url: telegram.api_url().parse().unwrap(),
        chat: "-1001".to_string(),
    };

    send_report(&target, &report, Some(chart.clone())).await.unwrap();

    let messages = telegram.requests_of("sendmessage");
    assert_eq!(messages.len(), 1, "the report fits one message");
    assert_eq!(messages[0].status, 200);
    assert_eq!(messages[0].chat_id, serde_json::json!(-1001));
    let visible = parse_telegram_html(messages[0].text.as_deref().unwrap()).unwrap();
    assert_eq!(
        visible.trim_end(),
        report.trim_end(),
        "Telegram shows the report unchanged"
    );

    let photos = telegram.requests_of("sendphoto");
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0].status, 200);
    assert_eq!(
        photos[0].photo.as_deref(),
        Some(chart.as_slice()),
        "the chart arrives byte for byte"
    );
}

#[tokio::test]
async fn rate_limited_report_sent_once() {
    let telegram = FakeTelegram::start().await;
    telegram.push_replies([Reply::RetryAfter(1), Reply::RetryAfter(1)]);
    let target = TelegramTarget {
        token: "123456:experiments-test".to_string(),
        api_url: telegram.api_url().parse().unwrap(),
        chat: "-1001".to_string(),
    };

    send_report(&target, "A/B report", Some(vec![1, 2, 3])).await.unwrap();

    let messages = telegram.requests_of("sendmessage");
    let statuses: Vec<u16> = messages.iter().map(|message| message.status).collect();
    assert_eq!(statuses, [429, 429, 200]);
    assert!(messages[2].received_at - messages[0].received_at >= Duration::from_secs(2));
    let photos = telegram.requests_of("sendphoto");
    assert_eq!(photos.len(), 1);
    assert!(photos[0].received_at - messages[2].received_at >= Duration::from_secs(1));
}

#[tokio::test]
async fn invalid_chat_rejected_before_sending() {
    let telegram = FakeTelegram::start().await;
    let target = TelegramTarget {
        token: "123456:experiments-test".to_string(),
        api_url: telegram.api_url().parse().unwrap(),
        chat: "team-chat".to_string(),
    };

    let error = send_report(&target, "report", None).await.unwrap_err().to_string();

    assert!(error.contains("Telegram chat `team-chat` is invalid"), "{error}");
    assert!(telegram.requests().is_empty());
}
