//! The default detector on the demo series: NYC taxi passengers per 30
//! minutes, with five labelled anomaly windows (NAB's labels: the NYC
//! marathon, Thanksgiving, Christmas, New Year and a snow storm).
//!
//! The demo streams this file through the live service, one window per row,
//! and alerts on `Fired` transitions, so this test runs the same
//! `SeriesDetector` with the same default parameters.

use std::path::PathBuf;

use chrono::NaiveDateTime;
use seismo_detector::detection::{DetectionParams, SeriesDetector, Transition};

const WINDOW_MS: i64 = 30 * 60 * 1000;

fn demo_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/demo")
        .join(name)
}

fn parse_time_ms(text: &str) -> i64 {
    let text = text.split('.').next().unwrap();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .unwrap_or_else(|error| panic!("bad timestamp {text}: {error}"))
        .and_utc()
        .timestamp_millis()
}

fn read_series() -> Vec<(i64, f64)> {
    let mut reader = csv::Reader::from_path(demo_path("nyc_taxi.csv")).unwrap();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            (parse_time_ms(&record[0]), record[1].parse().unwrap())
        })
        .collect()
}

/// Labelled windows as inclusive [start, end] in Unix epoch ms.
fn read_windows() -> Vec<(i64, i64)> {
    let text = std::fs::read_to_string(demo_path("nyc_taxi.windows.json")).unwrap();
    let labels: serde_json::Value = serde_json::from_str(&text).unwrap();
    labels["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|window| {
            (
                parse_time_ms(window[0].as_str().unwrap()),
                parse_time_ms(window[1].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn default_detector_finds_labelled_windows() {
    let series = read_series();
    let windows = read_windows();
    assert_eq!(series.len(), 10_320, "demo series changed");
    assert_eq!(windows.len(), 5, "demo labels changed");

    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    let mut fired_ms = Vec::new();
    for &(start_ms, value) in &series {
        let evaluation = detector.observe(start_ms, value).expect("every row is a new window");
        if let Some(Transition::Fired { .. }) = evaluation.transition {
            fired_ms.push(start_ms);
        }
    }

    let mut windows_hit = vec![false; windows.len()];
    let mut outside_labels = Vec::new();
    for &fired in &fired_ms {
        match windows.iter().position(|&(start, end)| (start..=end).contains(&fired)) {
            Some(index) => windows_hit[index] = true,
            None => outside_labels.push(fired),
        }
    }
    let hit_count = windows_hit.iter().filter(|&&hit| hit).count();
    let outside_times: Vec<String> = outside_labels
        .iter()
        .map(|&ms| chrono::DateTime::from_timestamp_millis(ms).unwrap().to_string())
        .collect();
    eprintln!("labelled windows hit: {windows_hit:?}; alerts outside them: {outside_times:?}");

    assert!(
        hit_count >= 3,
        "alerts in {hit_count} of 5 labelled windows, need at least 3: {windows_hit:?}"
    );
    assert!(
        outside_labels.len() <= 15,
        "{} alerts outside the labelled windows, at most 15 allowed: {outside_times:?}",
        outside_labels.len()
    );
}
