//! `replay` on real files: results format, directory mirroring, labels,
//! score modes and the errors for bad input.

use std::path::{Path, PathBuf};

use clap::Parser;
use seismo_detector::config::DetectionDefaults;
use seismo_detector::detection::{
    DetectionParams, LevelAdjustment, MethodName, ResidualScale, Seasonality, SeriesDetector, Transition,
};
use seismo_detector::replay::{ReplayArgs, ReplayOptions, ScoreMode, replay_path};

/// Creates an empty directory for one test under the system temp directory.
fn scratch_directory(test: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("seismo-replay-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn demo_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/demo")
        .join(name)
}

/// Hourly rows from 2014-07-01 00:00, one per value.
fn hourly_series(values: &[f64]) -> String {
    let mut text = String::from("timestamp,value\n");
    for (hour, value) in values.iter().enumerate() {
        text.push_str(&format!(
            "2014-07-{:02} {:02}:00:00,{value}\n",
            1 + hour / 24,
            hour % 24
        ));
    }
    text
}

/// Rows of a results file, without the header.
fn read_results(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["timestamp", "value", "anomaly_score", "label"]
    );
    reader
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn error_text(result: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", result.expect_err("replay should fail"))
}

#[test]
fn results_format_echoes_input() {
    let directory = scratch_directory("format");
    let input = directory.join("in/series.csv");
    let values: Vec<f64> = (0..100).map(|hour| 10.0 + (hour % 24) as f64).collect();
    write(&input, &hourly_series(&values));

    let options = ReplayOptions {
        score: ScoreMode::Window,
        ..ReplayOptions::default()
    };
    let summary = replay_path(&input, &directory.join("out"), &options).unwrap();

    assert_eq!(summary.files.len(), 1);
    let file = &summary.files[0];
    assert_eq!(file.output, directory.join("out/seismo_series.csv"));
    assert_eq!(file.rows, 100);
    assert_eq!(file.window_ms, 3_600_000, "hourly step inferred");
    assert_eq!(file.skipped_rows, 0);
    assert!(!file.has_labels);

    let rows = read_results(&file.output);
    assert_eq!(rows.len(), 100);
    assert_eq!(rows[0][0], "2014-07-01 00:00:00");
    assert_eq!(rows[0][1], "10");
    assert_eq!(rows[99][0], "2014-07-05 03:00:00");
    for row in &rows {
        let score: f64 = row[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "score {score}");
        assert_eq!(row[3], "0");
    }
}

#[test]
fn directory_tree_mirrored() {
    let directory = scratch_directory("mirror");
    let input = directory.join("data");
    let series = hourly_series(&[1.0, 2.0, 3.0]);
    write(&input.join("groupA/one.csv"), &series);
    write(&input.join("groupA/nested/two.csv"), &series);
    write(&input.join("groupB/three.csv"), &series);
    write(&input.join("groupB/notes.txt"), "not a series");

    let options = ReplayOptions {
        detector_name: "mine".to_string(),
        ..ReplayOptions::default()
    };
    let output = directory.join("results");
    let summary = replay_path(&input, &output, &options).unwrap();

    let outputs: Vec<PathBuf> = summary.files.iter().map(|file| file.output.clone()).collect();
    assert_eq!(
        outputs,
        vec![
            output.join("groupA/nested/mine_two.csv"),
            output.join("groupA/mine_one.csv"),
            output.join("groupB/mine_three.csv"),
        ]
    );
    for path in &outputs {
        assert_eq!(read_results(path).len(), 3, "{}", path.display());
    }
}

#[test]
fn output_inside_input_not_replayed() {
    let directory = scratch_directory("nested-output");
    write(&directory.join("group/one.csv"), &hourly_series(&[1.0, 2.0, 3.0]));

    let output = directory.join("results");
    replay_path(&directory, &output, &ReplayOptions::default()).unwrap();
    // A second run must not pick up the first run's results.
    let summary = replay_path(&directory, &output, &ReplayOptions::default()).unwrap();
    assert_eq!(summary.files.len(), 1);
}

#[test]
fn nab_labels_mark_rows() {
    let directory = scratch_directory("labels");
    let input = directory.join("data");
    write(&input.join("group/series.csv"), &hourly_series(&[1.0; 10]));
    let labels = directory.join("combined_windows.json");
    write(
        &labels,
        r#"{"group/series.csv": [["2014-07-01 02:00:00.000000", "2014-07-01 04:00:00.000000"],
                                  ["2014-07-01 08:00:00.000000", "2014-07-01 08:00:00.000000"]]}"#,
    );

    let options = ReplayOptions {
        labels: Some(labels),
        ..ReplayOptions::default()
    };
    let summary = replay_path(&input, &directory.join("out"), &options).unwrap();

    assert!(summary.files[0].has_labels);
    assert_eq!(summary.files[0].labelled_rows, 4);
    let labels: Vec<String> = read_results(&summary.files[0].output)
        .into_iter()
        .map(|row| row[3].clone())
        .collect();
    assert_eq!(labels, ["0", "0", "1", "1", "1", "0", "0", "0", "1", "0"]);
}

#[test]
fn file_without_label_entry() {
    let directory = scratch_directory("labels-missing");
    let input = directory.join("series.csv");
    write(&input, &hourly_series(&[1.0; 5]));
    let labels = directory.join("labels.json");
    write(&labels, r#"{"other/file.csv": []}"#);

    let options = ReplayOptions {
        labels: Some(labels),
        ..ReplayOptions::default()
    };
    let summary = replay_path(&input, &directory.join("out"), &options).unwrap();
    assert!(!summary.files[0].has_labels);
    assert_eq!(summary.files[0].labelled_rows, 0);
}

#[test]
fn demo_series_matches_detector() {
    let directory = scratch_directory("demo");
    let options = ReplayOptions {
        labels: Some(demo_path("nyc_taxi.windows.json")),
        ..ReplayOptions::default()
    };
    let summary = replay_path(&demo_path("nyc_taxi.csv"), &directory, &options).unwrap();
    let file = &summary.files[0];
    assert_eq!(file.window_ms, 30 * 60 * 1000);
    assert_eq!(file.rows, 10_320);
    assert!(file.has_labels);
    assert!(file.labelled_rows > 0);

    // The same detector run directly fires on the same rows.
    let rows = read_results(&file.output);
    let mut detector = SeriesDetector::new(&DetectionParams::default(), 30 * 60 * 1000);
    let mut fired_rows = Vec::new();
    let mut reader = csv::Reader::from_path(demo_path("nyc_taxi.csv")).unwrap();
    for (index, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let time_ms = chrono::NaiveDateTime::parse_from_str(&record[0], "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis();
        let evaluation = detector.observe(time_ms, record[1].parse().unwrap()).unwrap();
        if let Some(Transition::Fired { .. }) = evaluation.transition {
            fired_rows.push(index);
        }
    }
    let scored_rows: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| row[2] != "0")
        .map(|(index, _)| index)
        .collect();
    assert_eq!(scored_rows, fired_rows, "alert mode scores exactly the firing rows");
    assert_eq!(file.fired, fired_rows.len());
}

#[test]
fn window_mode_scores_every_judged_row() {
    let directory = scratch_directory("window-mode");
    let options = ReplayOptions {
        score: ScoreMode::Window,
        ..ReplayOptions::default()
    };
    let summary = replay_path(&demo_path("nyc_taxi.csv"), &directory, &options).unwrap();
    let rows = read_results(&summary.files[0].output);
    let scored = rows.iter().filter(|row| row[2] != "0").count();
    assert!(scored > 9_000, "only {scored} rows scored");
}

#[test]
fn window_override_and_skipped_rows() {
    let directory = scratch_directory("override");
    let input = directory.join("series.csv");
    // The 00:30 row falls in the 00:00 window of a one-hour window; the 00:00
    // row after 02:00 is out of order.
    write(
        &input,
        "timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01 00:30:00,2\n2014-07-01 01:00:00,3\n\
         2014-07-01 02:00:00,4\n2014-07-01 00:00:00,5\n",
    );

    let options = ReplayOptions {
        window_ms: Some(3_600_000),
        ..ReplayOptions::default()
    };
    let summary = replay_path(&input, &directory.join("out"), &options).unwrap();
    assert_eq!(summary.files[0].window_ms, 3_600_000);
    assert_eq!(summary.files[0].skipped_rows, 2);
    let rows = read_results(&summary.files[0].output);
    assert_eq!(rows.len(), 5, "every input row has an output row");
    assert_eq!(rows[1][2], "0");
    assert_eq!(rows[4][2], "0");
}

#[test]
fn invalid_rows_name_file_and_line() {
    let directory = scratch_directory("bad-rows");
    let cases = [
        (
            "header.csv",
            "time,count\n2014-07-01 00:00:00,1\n",
            "header.csv:1",
            "timestamp,value",
        ),
        (
            "time.csv",
            "timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01T01:00:00,2\n",
            "time.csv:3",
            "invalid timestamp \"2014-07-01T01:00:00\"",
        ),
        (
            "value.csv",
            "timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01 01:00:00,many\n",
            "value.csv:3",
            "invalid value \"many\"",
        ),
        (
            "nan.csv",
            "timestamp,value\n2014-07-01 00:00:00,NaN\n",
            "nan.csv:2",
            "invalid value \"NaN\"",
        ),
        (
            "columns.csv",
            "timestamp,value\n2014-07-01 00:00:00,1,extra\n",
            "columns.csv:2",
            "expected 2 columns",
        ),
        (
            "single.csv",
            "timestamp,value\n2014-07-01 00:00:00,1\n",
            "single.csv",
            "pass --window",
        ),
    ];

    for (name, text, location, problem) in cases {
        let input = directory.join(name);
        write(&input, text);
        let message = error_text(replay_path(&input, &directory.join("out"), &ReplayOptions::default()));
        assert!(message.contains(location), "{name}: {message}");
        assert!(message.contains(problem), "{name}: {message}");
    }
}

#[test]
fn missing_input_named() {
    let directory = scratch_directory("missing");
    let input = directory.join("nope.csv");
    let message = error_text(replay_path(&input, &directory.join("out"), &ReplayOptions::default()));
    assert!(message.contains("nope.csv not found"), "{message}");
}

#[test]
fn invalid_labels_file_named() {
    let directory = scratch_directory("bad-labels");
    let input = directory.join("series.csv");
    write(&input, &hourly_series(&[1.0, 2.0]));
    let labels = directory.join("labels.json");
    write(&labels, r#"{"series.csv": [["2014-07-01 00:00:00", "later"]]}"#);

    let options = ReplayOptions {
        labels: Some(labels),
        ..ReplayOptions::default()
    };
    let message = error_text(replay_path(&input, &directory.join("out"), &options));
    assert!(message.contains("labels.json"), "{message}");
    assert!(message.contains("entry \"series.csv\""), "{message}");
    assert!(message.contains("invalid timestamp \"later\""), "{message}");
}

#[test]
fn count_defaults_under_params_file() {
    let directory = scratch_directory("count-defaults");
    let params = directory.join("params.toml");
    write(&params, "[detection]\nband_sigmas = 4.0\n");
    let options = |params: Option<PathBuf>, defaults| {
        ReplayArgs {
            input: directory.join("in.csv"),
            output: directory.join("out"),
            labels: None,
            window: None,
            detector: "seismo".to_string(),
            params,
            defaults,
            score: ScoreMode::Alert,
        }
        .into_options()
        .unwrap()
        .params
    };

    let counted = options(Some(params.clone()), DetectionDefaults::Count);
    assert_eq!(counted.band_sigmas, 4.0);
    assert_eq!(counted.residual_scale, Some(ResidualScale::Sqrt));
    assert_eq!(counted.level_adjustment, LevelAdjustment::Multiplicative);
    assert_eq!((counted.fire_outside, counted.fire_lookback), (2, 3));

    let plain = options(Some(params.clone()), DetectionDefaults::Plain);
    assert_eq!(plain.residual_scale, None);
    assert_eq!((plain.fire_outside, plain.fire_lookback), (4, 6));

    let without_file = options(None, DetectionDefaults::Count);
    assert_eq!(without_file.residual_scale, Some(ResidualScale::Sqrt));

    write(&params, "[detection]\nmethod = \"novelty\"\n");
    let novelty = options(Some(params), DetectionDefaults::Count);
    assert_eq!(novelty.method, MethodName::Novelty);
    assert_eq!(novelty.residual_scale, None);
}

#[test]
fn params_file_sets_detection() {
    let directory = scratch_directory("params");
    let params = directory.join("metrics.toml");
    write(
        &params,
        "[windowing]\nallowed_lateness = \"2m\"\n\n[detection]\nband_sigmas = 3.5\nfire_outside = 2\n",
    );

    let args = ReplayArgs {
        input: directory.join("in.csv"),
        output: directory.join("out"),
        labels: None,
        window: Some(60_000),
        detector: "seismo".to_string(),
        params: Some(params.clone()),
        defaults: DetectionDefaults::Plain,
        score: ScoreMode::Window,
    };
    let options = args.clone().into_options().unwrap();
    assert_eq!(options.params.band_sigmas, 3.5);
    assert_eq!(options.params.fire_outside, 2);
    assert_eq!(options.params.resolve_inside, DetectionParams::default().resolve_inside);
    assert_eq!(options.window_ms, Some(60_000));
    assert_eq!(options.score, ScoreMode::Window);

    // A setting above the [detection] header would otherwise be ignored, so it is an error.
    write(&params, "critical_ratio = 1.4\n\n[detection]\nband_sigmas = 3.5\n");
    let message = error_text(args.clone().into_options());
    assert!(message.contains("metrics.toml"), "{message}");
    assert!(
        message.contains("unknown top-level key `critical_ratio`") && message.contains("[detection] table"),
        "{message}"
    );

    write(&params, "[detection]\nfire_outside = 9\nfire_lookback = 6\n");
    let message = error_text(args.into_options());
    assert!(message.contains("metrics.toml"), "{message}");
    assert!(
        message.contains("fire_outside = 9 exceeds fire_lookback = 6"),
        "{message}"
    );
}

/// Command line of `seismo-detector replay`, as the binary would parse it.
#[derive(Debug, Parser)]
struct ReplayCommand {
    #[command(flatten)]
    args: ReplayArgs,
}

#[test]
fn command_line_options() {
    let parsed = ReplayCommand::try_parse_from([
        "replay",
        "data",
        "results",
        "--labels",
        "labels.json",
        "--window",
        "30m",
        "--score",
        "window",
        "--detector",
        "mine",
    ])
    .unwrap()
    .args;
    assert_eq!(parsed.input, PathBuf::from("data"));
    assert_eq!(parsed.output, PathBuf::from("results"));
    assert_eq!(parsed.labels, Some(PathBuf::from("labels.json")));
    assert_eq!(parsed.window, Some(30 * 60 * 1000));
    assert_eq!(parsed.score, ScoreMode::Window);
    assert_eq!(parsed.detector, "mine");

    let defaults = ReplayCommand::try_parse_from(["replay", "data", "results"])
        .unwrap()
        .args;
    assert_eq!(defaults.window, None);
    assert_eq!(defaults.score, ScoreMode::Alert);
    assert_eq!(defaults.detector, "seismo");
    assert_eq!(defaults.params, None);

    let error = ReplayCommand::try_parse_from(["replay", "data", "results", "--window", "soon"]).unwrap_err();
    assert!(error.to_string().contains("soon"), "{error}");
}

#[test]
fn run_writes_results() {
    let directory = scratch_directory("run");
    let input = directory.join("series.csv");
    write(&input, &hourly_series(&[1.0, 2.0, 3.0]));

    let args = ReplayCommand::try_parse_from([
        "replay",
        input.to_str().unwrap(),
        directory.join("out").to_str().unwrap(),
    ])
    .unwrap()
    .args;
    let summary = seismo_detector::replay::run(args).unwrap();
    assert_eq!(summary.rows(), 3);
    assert!(directory.join("out/seismo_series.csv").exists());
}

#[test]
fn replay_uses_configured_method() {
    // A flat hourly series with one small step: the robust band's 5 % floor
    // keeps it inside, while the IQR band of a flat series has zero width.
    let directory = scratch_directory("method");
    let mut values = vec![100.0; 72];
    values[70] = 102.0;
    write(&directory.join("in.csv"), &hourly_series(&values));

    let score_of_step = |method: &str| {
        let params = directory.join(format!("{method}.toml"));
        write(
            &params,
            &format!("[detection]\nmethod = \"{method}\"\nseasonality = \"none\"\n"),
        );
        let options = ReplayArgs {
            input: directory.join("in.csv"),
            output: directory.join(method),
            labels: None,
            window: None,
            detector: "seismo".to_string(),
            params: Some(params),
            defaults: DetectionDefaults::Plain,
            score: ScoreMode::Window,
        }
        .into_options()
        .unwrap();
        assert_eq!(options.params.method.as_str(), method);
        let summary = replay_path(&directory.join("in.csv"), &directory.join(method), &options).unwrap();
        let rows = read_results(&summary.files[0].output);
        rows[70][2].parse::<f64>().unwrap()
    };

    let robust = score_of_step("robust_band");
    let iqr = score_of_step("iqr");
    assert!(robust < 0.5, "robust band scored the 2 % step {robust}");
    assert_eq!(iqr, 1.0, "IQR of a flat series scored the step {iqr}");
}

#[test]
fn firing_without_calibration_history_still_scores() {
    let directory = scratch_directory("uncalibrated-firing");
    let mut values: Vec<f64> = (0..12).map(|hour| if hour % 2 == 0 { 99.0 } else { 101.0 }).collect();
    values.extend([1000.0; 3]);
    values.extend([100.0; 20]);
    let input = directory.join("spike.csv");
    write(&input, &hourly_series(&values));
    // The spike fires on the first window judged, where the calibrated
    // score has no earlier deviation to rank against and is 0.
    let options = ReplayOptions {
        params: DetectionParams {
            seasonality: Seasonality::None,
            min_history_windows: 12,
            fire_outside: 1,
            fire_lookback: 1,
            ..DetectionParams::default()
        },
        ..ReplayOptions::default()
    };

    let summary = replay_path(&input, &directory.join("out"), &options).unwrap();

    let file = &summary.files[0];
    assert_eq!(file.fired, 1);
    let scores: Vec<f64> = read_results(&file.output)
        .iter()
        .map(|row| row[2].parse().unwrap())
        .collect();
    let scored: Vec<usize> = (0..scores.len()).filter(|&row| scores[row] > 0.0).collect();
    assert_eq!(scored, vec![13], "{scores:?}");
    assert_eq!(scores[13], 1e-6);
}

/// Returns 35 days of 30-minute counts near 200 from 2014-07-01, with a job that
/// adds 400 events to the 03:00 window every day from day 15 on.
fn daily_job_series() -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2014, 7, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut text = String::from("timestamp,value\n");
    // xorshift64: reproducible noise without a random-number crate.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for window in 0..35 * 48_i64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let time = start + chrono::Duration::minutes(30 * window);
        let noise = (state % 29) as f64 - 14.0;
        let job = if window / 48 >= 15 && window % 48 == 6 {
            400.0
        } else {
            0.0
        };
        text.push_str(&format!(
            "{},{}\n",
            time.format("%Y-%m-%d %H:%M:%S"),
            200.0 + noise + job
        ));
    }
    text
}

#[test]
fn replay_reports_learnt_daily_shapes() {
    let directory = scratch_directory("daily-job");
    let input = directory.join("job.csv");
    write(&input, &daily_job_series());

    let learning = replay_path(&input, &directory.join("learning"), &ReplayOptions::default()).unwrap();
    let options = ReplayOptions {
        params: DetectionParams {
            learn_daily_recurrence: false,
            ..DetectionParams::default()
        },
        ..ReplayOptions::default()
    };
    let not_learning = replay_path(&input, &directory.join("not-learning"), &options).unwrap();

    assert!(learning.files[0].daily_shapes_learnt > 0, "{learning:?}");
    assert_eq!(not_learning.files[0].daily_shapes_learnt, 0);
    assert!(learning.fired() < not_learning.fired(), "{learning:?} {not_learning:?}");
}
