//! The inline buttons under each alert and their callback data, which
//! Telegram limits to 64 bytes.

use chrono::TimeDelta;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

/// Telegram's limit on `callback_data` (Bot API, InlineKeyboardButton).
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// A button press, decoded from its callback data.
#[derive(Debug, Clone, PartialEq)]
pub enum ButtonAction {
    /// `ack:<anomaly id>`.
    Acknowledge { anomaly_id: String },
    /// `mute:<seconds>:<anomaly id>[:<metric>]`. The metric is included only
    /// when it fits the limit; the series is looked up by anomaly id first.
    Mute {
        anomaly_id: String,
        duration: TimeDelta,
        metric: Option<String>,
    },
}

/// Builds the keyboard of a new alert: Acknowledge, Mute 1h, Mute 24h.
pub fn alert_buttons(anomaly_id: &str, metric: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![InlineKeyboardButton::callback(
            "Acknowledge",
            acknowledge_data(anomaly_id),
        )],
        mute_row(anomaly_id, metric),
    ])
}

/// Builds the keyboard after an acknowledgement: the acknowledger's name in
/// place of the Acknowledge button, and the Mute buttons kept.
pub fn acknowledged_buttons(anomaly_id: &str, metric: &str, user_name: &str) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![
        vec![InlineKeyboardButton::callback(
            format!("✅ Acknowledged by {user_name}"),
            acknowledge_data(anomaly_id),
        )],
        mute_row(anomaly_id, metric),
    ])
}

fn mute_row(anomaly_id: &str, metric: &str) -> Vec<InlineKeyboardButton> {
    vec![
        InlineKeyboardButton::callback("Mute 1h", mute_data(anomaly_id, TimeDelta::hours(1), metric)),
        InlineKeyboardButton::callback("Mute 24h", mute_data(anomaly_id, TimeDelta::hours(24), metric)),
    ]
}

fn acknowledge_data(anomaly_id: &str) -> String {
    truncate_to_limit(format!("ack:{anomaly_id}"))
}

fn mute_data(anomaly_id: &str, duration: TimeDelta, metric: &str) -> String {
    let base = format!("mute:{}:{anomaly_id}", duration.num_seconds());
    let with_metric = format!("{base}:{metric}");
    if with_metric.len() <= MAX_CALLBACK_DATA_BYTES {
        with_metric
    } else {
        truncate_to_limit(base)
    }
}

/// Cuts `data` to the limit. Detector anomaly ids are 16 hex digits, so
/// their data fits. A longer id from another source is cut, because
/// Telegram rejects the whole keyboard otherwise.
fn truncate_to_limit(mut data: String) -> String {
    if data.len() > MAX_CALLBACK_DATA_BYTES {
        let mut end = MAX_CALLBACK_DATA_BYTES;
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        data.truncate(end);
    }
    data
}

/// Decodes callback data made by [`alert_buttons`]; `None` for anything else.
pub fn parse_button_data(data: &str) -> Option<ButtonAction> {
    if let Some(anomaly_id) = data.strip_prefix("ack:") {
        return (!anomaly_id.is_empty()).then(|| ButtonAction::Acknowledge {
            anomaly_id: anomaly_id.to_string(),
        });
    }

    let rest = data.strip_prefix("mute:")?;
    let mut parts = rest.splitn(3, ':');
    let seconds: i64 = parts.next()?.parse().ok()?;
    let anomaly_id = parts.next().filter(|id| !id.is_empty())?;
    let metric = parts.next().filter(|metric| !metric.is_empty()).map(str::to_string);
    let duration = TimeDelta::try_seconds(seconds).filter(|duration| *duration > TimeDelta::zero())?;
    Some(ButtonAction::Mute {
        anomaly_id: anomaly_id.to_string(),
        duration,
        metric,
    })
}

#[cfg(test)]
mod tests {
    use teloxide::types::InlineKeyboardButtonKind;

    use super::*;

    fn callback_data(markup: &InlineKeyboardMarkup) -> Vec<String> {
        markup
            .inline_keyboard
            .iter()
            .flatten()
            .map(|button| match &button.kind {
                InlineKeyboardButtonKind::CallbackData(data) => data.clone(),
                other => panic!("unexpected button kind {other:?}"),
            })
            .collect()
    }

    #[test]
    fn buttons_round_trip_their_actions() {
        let data = callback_data(&alert_buttons("0123456789abcdef", "views"));

        assert_eq!(
            data,
            vec![
                "ack:0123456789abcdef",
                "mute:3600:0123456789abcdef:views",
                "mute:86400:0123456789abcdef:views"
            ]
        );
        assert_eq!(
            parse_button_data(&data[1]),
            Some(ButtonAction::Mute {
                anomaly_id: "0123456789abcdef".to_string(),
                duration: TimeDelta::hours(1),
                metric: Some("views".to_string()),
            })
        );
        assert_eq!(
            parse_button_data(&data[0]),
            Some(ButtonAction::Acknowledge {
                anomaly_id: "0123456789abcdef".to_string()
            })
        );
    }

    #[test]
    fn callback_data_fits_telegram_limit() {
        let long_metric = "m".repeat(100);
        let long_id = "é".repeat(40);

        for data in callback_data(&alert_buttons("0123456789abcdef", &long_metric))
            .into_iter()
            .chain(callback_data(&alert_buttons(&long_id, "views")))
        {
            assert!(data.len() <= MAX_CALLBACK_DATA_BYTES, "{data} is {} bytes", data.len());
        }
        let data = callback_data(&alert_buttons("0123456789abcdef", &long_metric));
        assert_eq!(data[1], "mute:3600:0123456789abcdef");
    }

    #[test]
    fn foreign_callback_data_is_rejected() {
        for data in ["", "ack:", "mute:x:id", "mute:3600:", "mute:-5:id", "other:1"] {
            assert_eq!(parse_button_data(data), None, "{data:?}");
        }
    }
}
