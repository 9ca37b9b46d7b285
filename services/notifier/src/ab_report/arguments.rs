//! Parses the arguments of `/ab <control> <treatment> <from> <to> [metric]`.

use chrono::{DateTime, NaiveDate, Utc};
use seismo_experiments::analysis::Metric;

/// The usage line of `/ab`, sent with every argument error.
pub const AB_USAGE: &str = "Usage: /ab <control> <treatment> <from YYYY-MM-DD> <to YYYY-MM-DD> [ctr|likes|views], \
e.g. /ab 1 2 2026-11-01 2026-11-08 ctr (UTC days, to is exclusive, ctr by default)";

/// One A/B comparison requested by `/ab`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbArguments {
    /// `exp_group` value of the control group.
    pub control: String,
    /// `exp_group` value of the treatment group.
    pub treatment: String,
    /// First UTC day of the period, inclusive.
    pub from: NaiveDate,
    /// UTC day that ends the period, exclusive, as `--to` of
    /// `seismo-experiments ab`.
    pub to: NaiveDate,
    pub metric: Metric,
}

impl AbArguments {
    /// Returns the start of the period: `from` at 00:00 UTC.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// Returns the end of the period, exclusive: `to` at 00:00 UTC.
    pub fn end(&self) -> DateTime<Utc> {
        self.to.and_time(chrono::NaiveTime::MIN).and_utc()
    }
}

/// Parses the words after `/ab`. An error is the reply to send: the reason
/// on its first line, then [`AB_USAGE`].
pub fn parse_ab_arguments(arguments: &[&str]) -> Result<AbArguments, String> {
    parse(arguments).map_err(|reason| format!("{reason}\n{AB_USAGE}"))
}

fn parse(arguments: &[&str]) -> Result<AbArguments, String> {
    let (control, treatment, from, to, metric) = match arguments {
        [control, treatment, from, to] => (control, treatment, from, to, "ctr"),
        [control, treatment, from, to, metric] => (control, treatment, from, to, *metric),
        _ => return Err(format!("/ab takes 4 or 5 arguments, got {}.", arguments.len())),
    };
    if control == treatment {
        return Err(format!(
            "control and treatment are both `{control}`; give two different groups, the control first."
        ));
    }

    let from = parse_day("from", from)?;
    let to = parse_day("to", to)?;
    if from >= to {
        return Err(format!(
            "from {from} must be before to {to}; to is exclusive, so to {} covers the single day {from}.",
            from.succ_opt().unwrap_or(from)
        ));
    }

    let metric = match metric.to_ascii_lowercase().as_str() {
        "ctr" => Metric::Ctr,
        "likes" => Metric::Likes,
        "views" => Metric::Views,
        _ => return Err(format!("unknown metric `{metric}`; use ctr, likes or views.")),
    };
    Ok(AbArguments {
        control: control.to_string(),
        treatment: treatment.to_string(),
        from,
        to,
        metric,
    })
}

fn parse_day(name: &str, text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("invalid {name} date `{text}`; expected YYYY-MM-DD such as 2026-11-01."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn arguments_parse_with_default_metric() {
        let arguments = parse_ab_arguments(&["1", "2", "2026-11-01", "2026-11-08"]).unwrap();

        assert_eq!(
            arguments,
            AbArguments {
                control: "1".to_string(),
                treatment: "2".to_string(),
                from: day("2026-11-01"),
                to: day("2026-11-08"),
                metric: Metric::Ctr,
            }
        );
        assert_eq!(arguments.start().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(arguments.end().to_rfc3339(), "2026-11-08T00:00:00+00:00");
    }

    #[test]
    fn metric_argument_selects_metric() {
        for (text, metric) in [("likes", Metric::Likes), ("VIEWS", Metric::Views), ("ctr", Metric::Ctr)] {
            let arguments = parse_ab_arguments(&["a", "b", "2026-11-01", "2026-11-02", text]).unwrap();
            assert_eq!(arguments.metric, metric, "{text}");
        }
    }

    #[test]
    fn bad_arguments_give_reason_and_usage() {
        for (arguments, reason) in [
            (&["1", "2", "2026-11-01"][..], "/ab takes 4 or 5 arguments, got 3."),
            (&["1", "2", "2026-11-01", "2026-11-08", "ctr", "x"], "got 6"),
            (&["1", "1", "2026-11-01", "2026-11-08"], "both `1`"),
            (
                &["1", "2", "2026-11-31", "2026-12-08"],
                "invalid from date `2026-11-31`",
            ),
            (&["1", "2", "2026-11-01", "08.11.2026"], "invalid to date `08.11.2026`"),
            (
                &["1", "2", "2026-11-08", "2026-11-01"],
                "from 2026-11-08 must be before to 2026-11-01",
            ),
            (
                &["1", "2", "2026-11-08", "2026-11-08"],
                "to 2026-11-09 covers the single day 2026-11-08",
            ),
            (
                &["1", "2", "2026-11-01", "2026-11-08", "revenue"],
                "unknown metric `revenue`",
            ),
        ] {
            let error = parse_ab_arguments(arguments).unwrap_err();
            assert!(error.contains(reason), "{arguments:?}: {error}");
            assert!(error.ends_with(AB_USAGE), "{arguments:?}: {error}");
        }
    }
}
