//! Turns an [`AnomalyEvent`] into the text of an alert.
//!
//! Every dynamic value is length-limited here, before escaping, so that an
//! alert stays far below Telegram's 4096-character message limit whatever the
//! detector sends and no truncation can cut an HTML entity apart.

use std::borrow::Cow;

use chrono::{DateTime, Timelike, Utc};
use seismo_proto::v1::{AnomalyEvent, AnomalyState, Dimension, Direction, Severity};

use crate::message::AlertMessage;

/// Maximum length of the metric name shown, in characters.
const MAX_METRIC_CHARS: usize = 128;
/// Maximum length of a dimension name shown, in characters.
const MAX_DIMENSION_NAME_CHARS: usize = 32;
/// Maximum length of a dimension value shown, in characters.
const MAX_DIMENSION_VALUE_CHARS: usize = 64;
/// Budget for all `name=value` pairs of a slice together, in characters;
/// dimensions past it are summarised as "and N more".
const MAX_SLICE_CHARS: usize = 600;
/// Maximum length of the episode id shown, in characters.
const MAX_EPISODE_ID_CHARS: usize = 64;

/// Formats the alert for one anomaly state change.
pub fn format_alert(event: &AnomalyEvent) -> AlertMessage {
    let mut message = AlertMessage::default();

    let metric = truncate_chars(&event.metric, MAX_METRIC_CHARS);
    match AnomalyState::try_from(event.state) {
        Ok(AnomalyState::Firing) => {
            message.plain("🔴 Anomaly firing: ").bold(metric).plain("\n");
        }
        Ok(AnomalyState::Escalated) => {
            message
                .plain(format!("🔺 Anomaly escalated to {}: ", severity_name(event.severity)))
                .bold(metric)
                .plain("\n");
            message.plain(format!(
                "Severity was {}; the episode started at {}.\n",
                severity_name(previous_severity(event).unwrap_or_default()),
                format_episode_start(event)
            ));
        }
        Ok(AnomalyState::Resolved) => {
            message.plain("✅ Resolved: ").bold(metric).plain("\n");
            message.plain("The value is back inside its expected range.\n");
        }
        Ok(AnomalyState::Unspecified) | Err(_) => {
            message
                .plain(format!("⚪ Anomaly update (unknown state {}): ", event.state))
                .bold(metric)
                .plain("\n");
        }
    }

    message.plain("Slice: ");
    push_slice(&mut message, &event.slice);
    message.plain("\n");

    message.plain(format!(
        "Window: {}\n",
        format_window(event.window_start_ms, event.window_end_ms, event.window_seconds)
    ));

    message.plain(format!(
        "Value: {}, expected {} in range [{}, {}]\n",
        format_number(event.value),
        format_number(event.expected),
        format_number(event.lower),
        format_number(event.upper),
    ));
    message.plain(format!(
        "Deviation: {}\n",
        format_deviation(event.value, event.expected)
    ));

    // A resolution carries the severity and direction of the episode it
    // ends, not of its own window, so the label names the episode.
    // An escalation names its severity in its first line already.
    let severity = match AnomalyState::try_from(event.state) {
        Ok(AnomalyState::Resolved) => format!("Episode severity: {}, direction", severity_name(event.severity)),
        Ok(AnomalyState::Escalated) => "Direction".to_string(),
        _ => format!("Severity: {}, direction", severity_name(event.severity)),
    };
    message.plain(format!(
        "{severity}: {}, score: {}\n",
        direction_name(event.direction),
        format_score(event.score),
    ));

    message
        .plain("Episode: ")
        .code(truncate_chars(&event.id, MAX_EPISODE_ID_CHARS));
    message
}

/// Returns the start of the window that fired `event`'s episode, Unix epoch
/// ms: `episode_start_ms`, or the event's own window from a detector that
/// does not send it.
pub(crate) fn episode_start_ms(event: &AnomalyEvent) -> i64 {
    if event.episode_start_ms > 0 {
        event.episode_start_ms
    } else {
        event.window_start_ms
    }
}

/// Returns the start of `event`'s episode as `2024-05-01 10:00 UTC`, the
/// form of the repeat line.
pub(crate) fn format_episode_start(event: &AnomalyEvent) -> String {
    DateTime::from_timestamp_millis(episode_start_ms(event))
        .map(|start| start.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown time".to_string())
}

/// Returns the severity an escalated episode had before: the one announced
/// before the escalation's own. `None` for other changes and for producers
/// that do not list the announced severities, which show as unspecified.
pub(crate) fn previous_severity(event: &AnomalyEvent) -> Option<i32> {
    if event.state != AnomalyState::Escalated as i32 {
        return None;
    }
    match event.announced_severities.as_slice() {
        [.., previous, _] => Some(*previous),
        _ => None,
    }
}

/// Returns how far `value` lies from `expected`, in percent of `expected`
/// (positive when above). `None` when `expected` is 0 and `value` is not, or
/// when either is not finite, because no percentage describes that gap.
pub fn deviation_percent(value: f64, expected: f64) -> Option<f64> {
    if !value.is_finite() || !expected.is_finite() {
        return None;
    }
    if expected == 0.0 {
        return (value == 0.0).then_some(0.0);
    }
    Some((value - expected) / expected.abs() * 100.0)
}

pub(crate) fn format_deviation(value: f64, expected: f64) -> String {
    match deviation_percent(value, expected) {
        Some(percent) if percent.abs() >= 1000.0 => format!("{percent:+.0}% from expected"),
        Some(percent) => format!("{percent:+.1}% from expected"),
        None if expected == 0.0 => "n/a (expected value is 0)".to_string(),
        None => "n/a".to_string(),
    }
}

/// Formats a metric value with about three significant digits after the point
/// and no trailing zeros: `1234`, `12.5`, `0.0123`, `1.50e-7`.
pub fn format_number(number: f64) -> String {
    if !number.is_finite() {
        return number.to_string();
    }
    if number == number.trunc() && number.abs() < 1e15 {
        return format!("{number:.0}");
    }

    let magnitude = number.abs();
    if magnitude < 1e-4 {
        return format!("{number:.2e}");
    }
    let decimals = if magnitude >= 1000.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        // 0.0123 has log10 ≈ -1.9, so floor = -2 and 4 decimals keep 3 digits.
        (2 - magnitude.log10().floor() as i32) as usize
    };
    trim_fraction_zeros(format!("{number:.decimals$}"))
}

fn trim_fraction_zeros(formatted: String) -> String {
    if !formatted.contains('.') {
        return formatted;
    }
    formatted.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn format_score(score: f64) -> String {
    if score.is_finite() {
        format!("{score:.2}")
    } else {
        score.to_string()
    }
}

pub(crate) fn severity_name(severity: i32) -> Cow<'static, str> {
    match Severity::try_from(severity) {
        Ok(Severity::Critical) => "critical".into(),
        Ok(Severity::Warning) => "warning".into(),
        Ok(Severity::Info) => "info".into(),
        Ok(Severity::Unspecified) => "unspecified".into(),
        Err(_) => format!("unknown ({severity})").into(),
    }
}

pub(crate) fn direction_name(direction: i32) -> Cow<'static, str> {
    match Direction::try_from(direction) {
        Ok(Direction::Up) => "up (above the range)".into(),
        Ok(Direction::Down) => "down (below the range)".into(),
        Ok(Direction::Unspecified) => "unspecified".into(),
        Err(_) => format!("unknown ({direction})").into(),
    }
}

/// Appends `name=value` pairs, or `total` for the metric's total. Pairs past
/// the slice budget are counted, not shown.
pub(crate) fn push_slice(message: &mut AlertMessage, slice: &[Dimension]) {
    if slice.is_empty() {
        message.plain("total");
        return;
    }

    let mut used_chars = 0;
    for (index, dimension) in slice.iter().enumerate() {
        let pair = format!(
            "{}={}",
            truncate_chars(&dimension.name, MAX_DIMENSION_NAME_CHARS),
            truncate_chars(&dimension.value, MAX_DIMENSION_VALUE_CHARS)
        );
        let pair_chars = pair.chars().count();

        if index > 0 && used_chars + pair_chars > MAX_SLICE_CHARS {
            message.plain(format!(" and {} more", slice.len() - index));
            return;
        }

        if index > 0 {
            message.plain(", ");
        }
        message.code(pair);
        used_chars += pair_chars;
    }
}

/// Formats a window as UTC, e.g. `2024-05-01 10:00–10:05 UTC (5 min)`.
/// Seconds are shown only when a bound has them, and the end date only when
/// it differs from the start date.
pub(crate) fn format_window(start_ms: i64, end_ms: i64, window_seconds: u32) -> String {
    let length_seconds = if window_seconds > 0 {
        i64::from(window_seconds)
    } else {
        (end_ms - start_ms) / 1000
    };
    let length = format_duration(length_seconds);

    let (Some(start), Some(end)) = (
        DateTime::<Utc>::from_timestamp_millis(start_ms),
        DateTime::<Utc>::from_timestamp_millis(end_ms),
    ) else {
        return format!("{start_ms}–{end_ms} ms since the Unix epoch ({length})");
    };

    let time_format = if start.second() != 0 || end.second() != 0 {
        "%H:%M:%S"
    } else {
        "%H:%M"
    };
    let date_time_format = format!("%Y-%m-%d {time_format}");
    let start_text = start.format(&date_time_format);
    if start.date_naive() == end.date_naive() {
        format!("{start_text}–{} UTC ({length})", end.format(time_format))
    } else {
        let end_text = end.format(&date_time_format);
        format!("{start_text} – {end_text} UTC ({length})")
    }
}

fn format_duration(seconds: i64) -> String {
    match seconds {
        s if s > 0 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Cuts `text` to at most `max_chars` characters, ending a cut text with `…`.
pub(crate) fn truncate_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut truncated: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    truncated.push('…');
    truncated
}

#[cfg(test)]
mod tests;
