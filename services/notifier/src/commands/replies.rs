//! Plain-text replies to `/help`, `/silences` and `/status`.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::status_view::StatusSnapshot;
use crate::silence::duration::format_duration;
use crate::silence::store::{Silence, SilenceSource};
use crate::stats::StatsSnapshot;

/// The `/help` reply.
pub const HELP_TEXT: &str = "Seismo notifier commands:
/mute <metric>[{dimension=value}] <duration> - silence alerts, e.g. /mute views{os=iOS} 2h (units s, m, h, d, w; at most 90d; * and ? match any metric characters)
/unmute <metric|id> - remove silences by metric or by the id /silences shows
/silences - list the silences in force
/status - firing anomalies, the last alert sent and silences
/report - send the daily report now
/forecast - send the forecast report now
/ab <control> <treatment> <from YYYY-MM-DD> <to YYYY-MM-DD> [ctr|likes|views] - A/B test of two exp_group values over UTC days, to exclusive; replies with the report and a chart
/help - this list
Buttons under an alert: Acknowledge records who handles it; Mute 1h and Mute 24h silence its series.";

/// Lists silences with id, selector, time left and creator.
pub fn format_silences(silences: &[Silence], now: DateTime<Utc>) -> String {
    if silences.is_empty() {
        return "No silences in force.".to_string();
    }
    let mut text = format!("Silences in force ({}):", silences.len());
    for silence in silences {
        let creator = match silence.source {
            SilenceSource::Config => "configuration".to_string(),
            SilenceSource::Command => silence.created_by.clone(),
        };
        let _ = write!(
            text,
            "\n#{} {} until {} ({} left), by {}",
            silence.id,
            silence.selector,
            silence.expires_at.format("%Y-%m-%d %H:%M UTC"),
            format_duration(silence.expires_at - now),
            creator,
        );
    }
    text
}

/// Describes what is firing (with who acknowledged it, from
/// `acknowledged_by` by anomaly id), the last alert cleared to be sent, the
/// delivery counters since start, and the number of silences.
pub fn format_status(
    status: &StatusSnapshot,
    acknowledged_by: &BTreeMap<String, String>,
    delivery: Option<&StatsSnapshot>,
    silences: &[Silence],
    now: DateTime<Utc>,
) -> String {
    let mut text = if status.firing.is_empty() {
        "Nothing is firing.".to_string()
    } else {
        format!("Firing ({}):", status.firing.len())
    };
    for episode in &status.firing {
        let slice = if episode.slice.is_empty() {
            String::new()
        } else {
            let pairs: Vec<String> = episode
                .slice
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            format!("{{{}}}", pairs.join(","))
        };
        let _ = write!(
            text,
            "\n- {}{slice}: {} (expected {}) for {}",
            episode.metric,
            crate::format_number(episode.value),
            crate::format_number(episode.expected),
            format_duration(now - episode.since),
        );
        if let Some(user_name) = acknowledged_by.get(&episode.anomaly_id) {
            let _ = write!(text, ", acknowledged by {user_name}");
        }
    }

    match status.last_alert_cleared_at {
        Some(at) => {
            let _ = write!(
                text,
                "\nLast alert cleared to send: {} ({} ago)",
                at.format("%Y-%m-%d %H:%M UTC"),
                format_duration(now - at)
            );
        }
        None => text.push_str("\nNo alert cleared to send since the notifier started."),
    }
    if let Some(delivery) = delivery {
        let _ = write!(
            text,
            "\nSince start: {} alerts delivered, {} failed, {} suppressed",
            delivery.sent, delivery.failed, delivery.suppressed
        );
    }
    let _ = write!(text, "\nSilences in force: {} (/silences lists them)", silences.len());
    text
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::commands::status_view::FiringEpisode;
    use crate::silence::selector::SeriesSelector;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
    }

    fn silence() -> Silence {
        Silence {
            id: 3,
            selector: SeriesSelector::parse("views{os=iOS}").unwrap(),
            created_at: now(),
            expires_at: now() + TimeDelta::minutes(90),
            created_by: "@alice".to_string(),
            source: SilenceSource::Command,
        }
    }

    #[test]
    fn silences_list_shows_id_selector_and_time_left() {
        let text = format_silences(&[silence()], now());

        assert!(
            text.contains("#3 views{os=iOS} until 2026-12-04 13:30 UTC (1h 30m left), by @alice"),
            "{text}"
        );
        assert_eq!(format_silences(&[], now()), "No silences in force.");
    }

    #[test]
    fn status_without_alerts_says_so() {
        let text = format_status(&StatusSnapshot::default(), &BTreeMap::new(), None, &[], now());

        assert_eq!(
            text,
            "Nothing is firing.\nNo alert cleared to send since the notifier started.\nSilences in force: 0 (/silences lists them)"
        );
    }

    #[test]
    fn status_lists_firing_and_last_alert() {
        let status = StatusSnapshot {
            firing: vec![FiringEpisode {
                anomaly_id: "a".to_string(),
                metric: "views".to_string(),
                slice: vec![("os".to_string(), "iOS".to_string())],
                value: 120.0,
                expected: 300.0,
                since: now() - TimeDelta::minutes(20),
            }],
            last_alert_cleared_at: Some(now() - TimeDelta::minutes(5)),
        };

        let acknowledged_by = BTreeMap::from([("a".to_string(), "@alice".to_string())]);
        let delivery = StatsSnapshot {
            sent: 12,
            failed: 1,
            suppressed: 3,
            ..StatsSnapshot::default()
        };

        let text = format_status(&status, &acknowledged_by, Some(&delivery), &[silence()], now());

        assert!(text.starts_with("Firing (1):"), "{text}");
        assert!(
            text.contains("views{os=iOS}: 120 (expected 300) for 20m, acknowledged by @alice"),
            "{text}"
        );
        assert!(
            text.contains("Last alert cleared to send: 2026-12-04 11:55 UTC (5m ago)"),
            "{text}"
        );
        assert!(
            text.contains("Since start: 12 alerts delivered, 1 failed, 3 suppressed"),
            "{text}"
        );
        assert!(text.contains("Silences in force: 1"), "{text}");
    }
}
