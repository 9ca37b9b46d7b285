//! Labelled anomaly windows of a demo series and how alerts fall on them.

use std::path::Path;

use anyhow::Context;
use chrono::NaiveDateTime;
use serde::Deserialize;

/// A labelled anomaly window, Unix epoch milliseconds, both ends inclusive as
/// in NAB's `combined_windows.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelWindow {
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Deserialize)]
struct WindowsFile {
    windows: Vec<(String, String)>,
}

/// Reads `{"windows": [["YYYY-MM-DD HH:MM:SS.ffffff", "…"], …]}` (UTC).
pub fn read_label_windows(path: &Path) -> anyhow::Result<Vec<LabelWindow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: WindowsFile =
        serde_json::from_str(&text).with_context(|| format!("{} is not a label windows file", path.display()))?;

    file.windows
        .iter()
        .map(|(start, end)| {
            Ok(LabelWindow {
                start_ms: parse_label_time(start)
                    .with_context(|| format!("{}: bad start `{start}`", path.display()))?,
                end_ms: parse_label_time(end).with_context(|| format!("{}: bad end `{end}`", path.display()))?,
            })
        })
        .collect()
}

fn parse_label_time(text: &str) -> anyhow::Result<i64> {
    Ok(NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")?
        .and_utc()
        .timestamp_millis())
}

/// Alert times matched against the labelled windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatch {
    /// Windows with at least one alert inside.
    pub windows_hit: usize,
    pub windows_total: usize,
    /// Alerts outside every window.
    pub alerts_outside: usize,
}

/// Matches alert times (the start of each firing window, epoch ms) against the
/// labelled windows.
pub fn match_alerts(alert_times_ms: &[i64], windows: &[LabelWindow]) -> LabelMatch {
    let inside = |time: i64, window: &LabelWindow| window.start_ms <= time && time <= window.end_ms;

    let windows_hit = windows
        .iter()
        .filter(|window| alert_times_ms.iter().any(|&time| inside(time, window)))
        .count();
    let alerts_outside = alert_times_ms
        .iter()
        .filter(|&&time| !windows.iter().any(|window| inside(time, window)))
        .count();

    LabelMatch {
        windows_hit,
        windows_total: windows.len(),
        alerts_outside,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_matched_to_windows() {
        let windows = [
            LabelWindow {
                start_ms: 100,
                end_ms: 200,
            },
            LabelWindow {
                start_ms: 500,
                end_ms: 600,
            },
            LabelWindow {
                start_ms: 900,
                end_ms: 950,
            },
        ];

        let matched = match_alerts(&[100, 150, 300, 600, 1000], &windows);

        assert_eq!(matched.windows_hit, 2);
        assert_eq!(matched.windows_total, 3);
        assert_eq!(matched.alerts_outside, 2);
    }

    #[test]
    fn demo_windows_file_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/demo/nyc_taxi.windows.json");

        let windows = read_label_windows(&path).unwrap();

        assert_eq!(windows.len(), 5);
        // 2014-10-30 15:30:00 UTC
        assert_eq!(windows[0].start_ms, 1_414_683_000_000);
        assert!(windows.iter().all(|window| window.start_ms < window.end_ms));
    }
}
