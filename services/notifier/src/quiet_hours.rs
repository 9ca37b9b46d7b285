//! Quiet hours: a daily local-time window in a configured time zone during
//! which alerts below a severity are suppressed.

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use seismo_proto::v1::{AnomalyEvent, Severity};

use crate::config::ChatTarget;
use crate::hooks::{SendDecision, SendGate};

/// A daily window `[start, end)` of wall-clock time in `time_zone`. A window
/// whose end is not after its start spans midnight, e.g. 23:00–07:00.
/// Because the window is wall-clock time, it follows DST changes: on the
/// day clocks move, the window is an hour shorter or longer in real time.
#[derive(Debug, Clone, PartialEq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub time_zone: Tz,
    /// Alerts of this severity or above still go out during quiet hours.
    pub min_severity_sent: Severity,
}

impl QuietHours {
    /// Parses a window written `HH:MM-HH:MM` in `time_zone` (an IANA name
    /// such as `Europe/Moscow`). Critical alerts still go out.
    pub fn parse(window: &str, time_zone: &str) -> Result<Self, QuietHoursError> {
        let invalid_window = || QuietHoursError::InvalidWindow {
            value: window.to_string(),
        };
        let (start, end) = window.split_once('-').ok_or_else(invalid_window)?;
        let start = NaiveTime::parse_from_str(start.trim(), "%H:%M").map_err(|_| invalid_window())?;
        let end = NaiveTime::parse_from_str(end.trim(), "%H:%M").map_err(|_| invalid_window())?;
        if start == end {
            return Err(invalid_window());
        }
        let time_zone: Tz = time_zone.trim().parse().map_err(|_| QuietHoursError::InvalidTimeZone {
            value: time_zone.to_string(),
        })?;

        Ok(Self {
            start,
            end,
            time_zone,
            min_severity_sent: Severity::Critical,
        })
    }

    /// Returns whether `now` falls inside the window in the configured zone.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.time_zone).time();
        if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }
}

impl SendGate for QuietHours {
    fn decide(&self, event: &AnomalyEvent, _chat: &ChatTarget, now: DateTime<Utc>) -> SendDecision {
        if !self.contains(now) || event.severity() as i32 >= self.min_severity_sent as i32 {
            return SendDecision::Send;
        }
        SendDecision::Suppress {
            reason: format!(
                "quiet hours {}-{} {}; only {} alerts are sent",
                self.start.format("%H:%M"),
                self.end.format("%H:%M"),
                self.time_zone.name(),
                severity_name(self.min_severity_sent),
            ),
        }
    }
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning and critical",
        Severity::Info | Severity::Unspecified => "all",
    }
}

/// A quiet-hours setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuietHoursError {
    #[error(
        "invalid quiet hours `{value}`: expected a local time window such as 23:00-07:00 with a different start and end"
    )]
    InvalidWindow { value: String },
    #[error("invalid time zone `{value}`: expected an IANA name such as Europe/Moscow or UTC")]
    InvalidTimeZone { value: String },
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
    }

    fn event(severity: Severity) -> AnomalyEvent {
        AnomalyEvent {
            metric: "views".to_string(),
            severity: severity as i32,
            ..AnomalyEvent::default()
        }
    }

    #[test]
    fn quiet_hours_span_midnight() {
        let quiet = QuietHours::parse("23:00-07:00", "UTC").unwrap();

        assert!(quiet.contains(utc(10, 23, 0)));
        assert!(quiet.contains(utc(10, 3, 0)));
        assert!(quiet.contains(utc(10, 6, 59)));
        assert!(!quiet.contains(utc(10, 7, 0)));
        assert!(!quiet.contains(utc(10, 22, 59)));
    }

    #[test]
    fn quiet_hours_within_one_day() {
        let quiet = QuietHours::parse("12:00-14:00", "Europe/Moscow").unwrap();

        // Moscow is UTC+3 all year.
        assert!(quiet.contains(utc(10, 9, 0)));
        assert!(!quiet.contains(utc(10, 11, 0)));
        assert!(!quiet.contains(utc(10, 8, 59)));
    }

    #[test]
    fn quiet_hours_follow_dst_change() {
        // Berlin moves from UTC+1 to UTC+2 at 01:00 UTC on 29 March 2026.
        let quiet = QuietHours::parse("22:00-07:00", "Europe/Berlin").unwrap();

        // 05:30 UTC is 06:30 local the day before the change: quiet.
        assert!(quiet.contains(utc(28, 5, 30)));
        // 05:30 UTC is 07:30 local on the change day: no longer quiet.
        assert!(!quiet.contains(utc(29, 5, 30)));
        // The window ends at 05:00 UTC that morning instead of 06:00.
        assert!(quiet.contains(utc(29, 4, 59)));
        assert!(!quiet.contains(utc(29, 5, 0)));
        // It starts at 20:00 UTC that evening, 22:00 local in summer time.
        assert!(!quiet.contains(utc(29, 19, 59)));
        assert!(quiet.contains(utc(29, 20, 0)));
    }

    #[test]
    fn quiet_hours_pass_critical_alerts() {
        let quiet = QuietHours::parse("00:00-23:59", "UTC").unwrap();
        let chat = ChatTarget::Id(1);
        let now = utc(10, 12, 0);

        assert_eq!(quiet.decide(&event(Severity::Critical), &chat, now), SendDecision::Send);
        assert!(matches!(
            quiet.decide(&event(Severity::Warning), &chat, now),
            SendDecision::Suppress { .. }
        ));
        assert_eq!(
            quiet.decide(&event(Severity::Warning), &chat, utc(10, 23, 59)),
            SendDecision::Send
        );
    }

    #[test]
    fn quiet_hours_reject_bad_settings() {
        assert!(matches!(
            QuietHours::parse("23:00", "UTC"),
            Err(QuietHoursError::InvalidWindow { .. })
        ));
        assert!(matches!(
            QuietHours::parse("07:00-07:00", "UTC"),
            Err(QuietHoursError::InvalidWindow { .. })
        ));
        assert!(matches!(
            QuietHours::parse("23:00-07:00", "Mars/Olympus"),
            Err(QuietHoursError::InvalidTimeZone { .. })
        ));
    }
}
