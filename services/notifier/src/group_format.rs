//! Text of a grouped alert (several anomalies of one metric in one message),
//! of a repeat notification, and of the route's mentions.

use seismo_proto::v1::{AnomalyEvent, AnomalyState};

use crate::format::{format_alert, format_deviation, format_number, push_slice, severity_name, truncate_chars};
use crate::message::AlertMessage;

/// Anomalies listed one per line in a grouped alert; the rest are counted.
pub(crate) const MAX_LISTED: usize = 10;
/// Maximum length of the metric name shown, in characters.
const MAX_METRIC_CHARS: usize = 128;

/// Formats several state changes of one metric and state as one message:
/// the [`MAX_LISTED`] highest scores one per line, the others counted as
/// "and N more". Every anomaly is counted in the header, none is dropped.
pub(crate) fn format_group(events: &[&AnomalyEvent], repeat: bool) -> AlertMessage {
    let mut message = AlertMessage::default();
    let Some(first) = events.first() else {
        return message;
    };
    let metric = truncate_chars(&first.metric, MAX_METRIC_CHARS);
    let count = events.len();

    let header = match (repeat, AnomalyState::try_from(first.state)) {
        (true, _) => format!("🔁 Still firing: {count} anomalies of "),
        (false, Ok(AnomalyState::Firing)) => format!("🔴 {count} anomalies firing: "),
        (false, Ok(AnomalyState::Escalated)) => format!("🔺 {count} anomalies escalated: "),
        (false, Ok(AnomalyState::Resolved)) => format!("✅ {count} anomalies resolved: "),
        (false, _) => format!("⚪ {count} anomaly updates: "),
    };
    message.plain(header).bold(metric).plain("\n");
    if count > MAX_LISTED {
        message.plain(format!("Top {MAX_LISTED} of {count} by score:\n"));
    }

    let mut ranked: Vec<&AnomalyEvent> = events.to_vec();
    // Highest score first; NaN scores sort last.
    ranked.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Less));
    for event in ranked.iter().take(MAX_LISTED) {
        message.plain("• ");
        push_slice(&mut message, &event.slice);
        message.plain(format!(
            ": {}, expected {} ({}), {}, episode ",
            format_number(event.value),
            format_number(event.expected),
            format_deviation(event.value, event.expected),
            severity_name(event.severity),
        ));
        message.code(truncate_chars(&event.id, 64)).plain("\n");
    }
    if count > MAX_LISTED {
        message.plain(format!("and {} more\n", count - MAX_LISTED));
    }
    message
}

/// Formats a reminder that an episode is still firing: the firing alert
/// under a "Still firing" line.
pub(crate) fn format_repeat(event: &AnomalyEvent) -> AlertMessage {
    let mut message = AlertMessage::default();
    let since = crate::format::format_episode_start(event);
    message.plain(format!("🔁 Still firing since {since}\n"));
    message.spans.extend(format_alert(event).spans);
    message
}

/// Appends a line with the route's `@username` mentions, if any.
pub(crate) fn push_mentions(message: &mut AlertMessage, mentions: &[String]) {
    if mentions.is_empty() {
        return;
    }
    message.plain(format!("\n{}", mentions.join(" ")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use seismo_proto::v1::Dimension;

    fn firing(index: usize, score: f64) -> AnomalyEvent {
        AnomalyEvent {
            id: format!("ep-{index}"),
            state: AnomalyState::Firing as i32,
            metric: "checkout".to_string(),
            slice: vec![Dimension {
                name: "country".to_string(),
                value: format!("C{index}"),
            }],
            value: 5.0,
            expected: 10.0,
            score,
            ..AnomalyEvent::default()
        }
    }

    #[test]
    fn long_group_lists_top_scores_and_counts_rest() {
        let events: Vec<AnomalyEvent> = (0..60).map(|index| firing(index, index as f64 / 100.0)).collect();
        let references: Vec<&AnomalyEvent> = events.iter().collect();

        let text = format_group(&references, false).plain_text();

        assert!(
            text.starts_with("🔴 60 anomalies firing: checkout\nTop 10 of 60 by score:\n"),
            "{text}"
        );
        assert!(text.contains("country=C59"), "{text}");
        assert!(text.contains("country=C50"), "{text}");
        assert!(!text.contains("country=C49:"), "{text}");
        assert!(text.ends_with("and 50 more\n"), "{text}");
        assert_eq!(text.matches("• ").count(), MAX_LISTED);
    }

    #[test]
    fn short_group_lists_every_anomaly() {
        let events: Vec<AnomalyEvent> = (0..3).map(|index| firing(index, 0.5)).collect();
        let references: Vec<&AnomalyEvent> = events.iter().collect();

        let text = format_group(&references, false).plain_text();

        assert_eq!(text.matches("• ").count(), 3);
        assert!(!text.contains("more"), "{text}");
    }

    #[test]
    fn group_escapes_values_in_html() {
        let mut event = firing(1, 0.5);
        event.metric = "a<b>&c".to_string();
        event.slice[0].value = "<script>".to_string();

        let html = format_group(&[&event, &event], false).html();

        assert!(html.contains("<b>a&lt;b&gt;&amp;c</b>"), "{html}");
        assert!(html.contains("country=&lt;script&gt;"), "{html}");
    }

    #[test]
    fn mentions_are_appended_on_their_own_line() {
        let mut message = AlertMessage::default();
        message.plain("alert");

        push_mentions(&mut message, &["@alice".to_string(), "@bob".to_string()]);

        assert_eq!(message.plain_text(), "alert\n@alice @bob");
    }
}
