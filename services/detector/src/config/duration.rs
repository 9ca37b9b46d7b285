//! Durations written as `<integer><unit>`, e.g. `30s`, `5m`, `1h`, `7d`.

/// Milliseconds per accepted unit suffix.
const UNITS: &[(&str, i64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses a duration such as `90s`, `5m`, `1h` or `7d` into milliseconds.
///
/// The error text says what is wrong and gives the accepted form.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);

    if trimmed.starts_with('-') {
        return Err(format!(
            "\"{text}\" is negative; write a duration of 0 or more, such as \"30s\""
        ));
    }
    if digits.is_empty() {
        return Err(format!(
            "\"{text}\" does not start with a whole number; write a duration such as \"30s\", \"5m\", \"1h\" or \"7d\""
        ));
    }
    if unit.starts_with(['.', ',']) {
        return Err(fraction_error(text, trimmed));
    }
    let Some(&(_, unit_ms)) = UNITS.iter().find(|(suffix, _)| *suffix == unit) else {
        return Err(format!(
            "\"{text}\" has no valid unit; end it with ms, s, m, h or d, e.g. \"5m\""
        ));
    };
    let amount: i64 = digits
        .parse()
        .map_err(|_| format!("\"{text}\" is too large; use a larger unit"))?;
    amount
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("\"{text}\" is too large; use a shorter duration"))
}

/// Error for a duration with a fraction, such as `1.5h`, with the same
/// duration in a smaller unit when it is a whole number of milliseconds.
fn fraction_error(text: &str, trimmed: &str) -> String {
    let number_end = trimmed
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let suggestion = UNITS
        .iter()
        .find(|(suffix, _)| *suffix == unit)
        .and_then(|&(_, unit_ms)| Some(number.parse::<f64>().ok()? * unit_ms as f64))
        .filter(|milliseconds| milliseconds.fract() == 0.0 && *milliseconds < i64::MAX as f64)
        .map(|milliseconds| format!(" such as \"{}\"", format_duration_ms(milliseconds as i64)));
    format!(
        "\"{text}\" is not a whole number of its unit; write it in a smaller unit{}",
        suggestion.unwrap_or_default()
    )
}

/// Formats milliseconds in the largest unit that divides them, e.g. `300000` as `5m`.
pub fn format_duration_ms(milliseconds: i64) -> String {
    for (suffix, unit_ms) in UNITS.iter().rev() {
        if milliseconds != 0 && milliseconds % unit_ms == 0 {
            return format!("{}{suffix}", milliseconds / unit_ms);
        }
    }
    format!("{milliseconds}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
    }

    #[test]
    fn rejects_malformed_text() {
        for text in ["", "m", "5", "5 minutes", "5M"] {
            let error = parse_duration_ms(text).expect_err(text);
            assert!(error.contains("5m"), "error for {text:?} gives no example: {error}");
        }
    }

    #[test]
    fn rejects_negative_and_fractional_durations_by_name() {
        let negative = parse_duration_ms("-5s").unwrap_err();
        assert!(negative.contains("negative"), "{negative}");

        let fraction = parse_duration_ms("1.5s").unwrap_err();
        assert!(fraction.contains("not a whole number"), "{fraction}");
        assert!(fraction.contains("\"1500ms\""), "{fraction}");

        let hours = parse_duration_ms("1.5h").unwrap_err();
        assert!(hours.contains("\"90m\""), "{hours}");

        let unknown_unit = parse_duration_ms("1.5x").unwrap_err();
        assert!(unknown_unit.contains("smaller unit"), "{unknown_unit}");
    }

    #[test]
    fn rejects_overflow() {
        assert!(parse_duration_ms("99999999999999999999d").is_err());
        assert!(parse_duration_ms("999999999999999d").is_err());
    }

    #[test]
    fn formats_in_largest_unit() {
        assert_eq!(format_duration_ms(300_000), "5m");
        assert_eq!(format_duration_ms(5_400_000), "90m");
        assert_eq!(format_duration_ms(86_400_000), "1d");
        assert_eq!(format_duration_ms(1_500), "1500ms");
        assert_eq!(format_duration_ms(0), "0ms");
    }
}
