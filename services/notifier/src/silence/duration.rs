//! Human durations such as `90m`, `1h30m`, `2d` or `1w` for `/mute`.

use std::fmt::Write;

use chrono::TimeDelta;

/// Maximum length of a silence created by command: 90 days.
pub const MAX_SILENCE: TimeDelta = TimeDelta::days(90);

/// Parses a duration made of `<number><unit>` parts, units `s`, `m`, `h`,
/// `d` and `w`, such as `1h30m`. It must be above zero and at most
/// [`MAX_SILENCE`].
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let invalid = || format!("invalid duration `{text}`: use e.g. 30m, 1h, 1h30m, 2d or 1w");
    let mut total = TimeDelta::zero();
    let mut digits = String::new();

    for character in text.trim().chars() {
        if character.is_ascii_digit() {
            digits.push(character);
            continue;
        }
        let amount: i64 = digits.parse().map_err(|_| invalid())?;
        digits.clear();
        let part = match character.to_ascii_lowercase() {
            's' => TimeDelta::try_seconds(amount),
            'm' => TimeDelta::try_minutes(amount),
            'h' => TimeDelta::try_hours(amount),
            'd' => TimeDelta::try_days(amount),
            'w' => TimeDelta::try_weeks(amount),
            _ => None,
        }
        .ok_or_else(invalid)?;
        total = total.checked_add(&part).ok_or_else(invalid)?;
    }

    if !digits.is_empty() || total <= TimeDelta::zero() {
        return Err(invalid());
    }
    if total > MAX_SILENCE {
        return Err(format!("duration `{text}` is longer than the maximum of 90d"));
    }
    Ok(total)
}

/// Formats a duration as days, hours and minutes, e.g. `1d 2h 5m`; below a
/// minute it shows `<1m`.
pub fn format_duration(duration: TimeDelta) -> String {
    let minutes = duration.num_minutes();
    if minutes < 1 {
        return "<1m".to_string();
    }
    let (days, hours, minutes) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut text = String::new();
    for (amount, unit) in [(days, 'd'), (hours, 'h'), (minutes, 'm')] {
        if amount > 0 {
            let _ = write!(text, "{}{amount}{unit}", if text.is_empty() { "" } else { " " });
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_parses_units_and_sums() {
        assert_eq!(parse_duration("30m"), Ok(TimeDelta::minutes(30)));
        assert_eq!(parse_duration("1h30m"), Ok(TimeDelta::minutes(90)));
        assert_eq!(parse_duration("2D"), Ok(TimeDelta::days(2)));
        assert_eq!(parse_duration("1w"), Ok(TimeDelta::weeks(1)));
        assert_eq!(parse_duration("45s"), Ok(TimeDelta::seconds(45)));
    }

    #[test]
    fn duration_rejects_bad_text() {
        for text in ["", "h", "10", "1x", "0m", "-1h", "1.5h", "91d"] {
            assert!(parse_duration(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn duration_formats_largest_units() {
        assert_eq!(format_duration(TimeDelta::minutes(1565)), "1d 2h 5m");
        assert_eq!(format_duration(TimeDelta::hours(1)), "1h");
        assert_eq!(format_duration(TimeDelta::seconds(20)), "<1m");
    }
}
