//! `evaluate nab` on a small NAB-layout corpus built from the demo series
//! (NYC taxi passengers per 30 minutes, five labelled windows): NAB's
//! reference detectors score 100 and 0, and the live detector's report.

use std::path::{Path, PathBuf};

use seismo_detector::config::DetectionDefaults;
use seismo_detector::evaluate::nab_corpus::{read_profiles, replay_corpus};
use seismo_detector::evaluate::nab_score::{
    CostProfile, ScoredSeries, normalise, null_score, perfect_score, score_series, sweep_threshold,
};
use seismo_detector::evaluate::{EvaluateArgs, EvaluateSuite, NabArgs};
use seismo_detector::replay::{ReplayOptions, ScoreMode};

/// NAB's three cost profiles, in its `profiles.json` format.
const PROFILES: &str = r#"{
  "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}},
  "reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0}},
  "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}}
}"#;

fn demo_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/demo")
        .join(name)
}

/// Builds `<directory>/data/realKnownCause/nyc_taxi.csv` with its windows in
/// `combined_windows.json` and the profiles, NAB's corpus layout.
fn build_corpus(directory: &Path) {
    let data = directory.join("data").join("realKnownCause");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(demo_path("nyc_taxi.csv"), data.join("nyc_taxi.csv")).unwrap();

    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo_path("nyc_taxi.windows.json")).unwrap()).unwrap();
    let windows = serde_json::json!({ "realKnownCause/nyc_taxi.csv": demo["windows"] });
    std::fs::create_dir_all(directory.join("labels")).unwrap();
    std::fs::write(
        directory.join("labels").join("combined_windows.json"),
        windows.to_string(),
    )
    .unwrap();
    std::fs::write(directory.join("profiles.json"), PROFILES).unwrap();
}

/// Replays the demo corpus with window scores.
fn demo_series() -> (Vec<ScoredSeries>, Vec<CostProfile>) {
    let corpus = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    build_corpus(corpus.path());

    let options = ReplayOptions {
        score: ScoreMode::Window,
        ..ReplayOptions::default()
    };
    let series = replay_corpus(corpus.path(), results.path(), &options).unwrap();
    let profiles = read_profiles(&corpus.path().join("profiles.json")).unwrap();
    (series, profiles)
}

fn with_scores(series: &ScoredSeries, scores: Vec<f64>) -> Vec<ScoredSeries> {
    vec![ScoredSeries {
        scores,
        ..series.clone()
    }]
}

#[test]
fn corpus_has_demo_windows() {
    let (series, profiles) = demo_series();

    assert_eq!(series.len(), 1);
    assert_eq!(series[0].name, "realKnownCause/nyc_taxi.csv");
    assert_eq!(series[0].scores.len(), 10_320);
    assert_eq!(series[0].windows.len(), 5);
    let names: Vec<&str> = profiles.iter().map(|profile| profile.name.as_str()).collect();
    assert_eq!(names, ["standard", "reward_low_FN_rate", "reward_low_FP_rate"]);
    assert_eq!(profiles[1].fn_weight, 2.0);
    assert_eq!(profiles[2].fp_weight, 0.22);
}

#[test]
fn perfect_detector_scores_hundred() {
    let (series, profiles) = demo_series();
    let mut scores = vec![0.0; series[0].scores.len()];
    for &(start, _) in &series[0].windows {
        scores[start] = 1.0;
    }
    let corpus = with_scores(&series[0], scores);

    for profile in &profiles {
        let swept = sweep_threshold(&corpus, profile);
        assert_eq!(swept.threshold, 1.0, "{}", profile.name);
        assert!(
            (swept.normalised_score - 100.0).abs() < 1e-9,
            "{}: {swept:?}",
            profile.name
        );
    }
}

#[test]
fn null_detector_scores_zero() {
    let (series, profiles) = demo_series();
    let corpus = with_scores(&series[0], vec![0.0; series[0].scores.len()]);

    for profile in &profiles {
        let outcome = score_series(&corpus[0], profile, 0.5);
        let score = normalise(
            outcome.raw_score,
            null_score(&corpus, profile),
            perfect_score(&corpus, profile),
        );
        assert_eq!(outcome.false_negatives, 5, "{}", profile.name);
        assert_eq!(score, 0.0, "{}", profile.name);
    }
}

#[test]
fn detector_firing_everywhere_scores_negative() {
    let (series, profiles) = demo_series();
    let corpus = with_scores(&series[0], vec![1.0; series[0].scores.len()]);

    for profile in &profiles {
        let outcome = score_series(&corpus[0], profile, 1.0);
        let score = normalise(
            outcome.raw_score,
            null_score(&corpus, profile),
            perfect_score(&corpus, profile),
        );
        assert_eq!(outcome.true_positives, 5, "{}", profile.name);
        assert!(score < 0.0, "{}: {score}", profile.name);
    }
}

#[test]
fn sweep_beats_fixed_thresholds() {
    let (series, profiles) = demo_series();

    for profile in &profiles {
        let swept = sweep_threshold(&series, profile);
        for step in 0..=20 {
            let threshold = f64::from(step) / 20.0;
            let raw = score_series(&series[0], profile, threshold).raw_score;
            assert!(
                raw <= swept.raw_score + 1e-9,
                "{} at {threshold}: {raw} > {swept:?}",
                profile.name
            );
        }
    }
}

#[test]
fn report_names_profiles_and_series() {
    let corpus = tempfile::tempdir().unwrap();
    build_corpus(corpus.path());
    let args = EvaluateArgs {
        suite: EvaluateSuite::Nab(NabArgs {
            corpus: corpus.path().to_path_buf(),
            params: None,
            defaults: DetectionDefaults::Plain,
            score: ScoreMode::Alert,
            method: None,
            results: None,
        }),
    };

    let report = seismo_detector::evaluate::run(args).unwrap();

    assert!(
        report.contains("score mode alert, 1 series, 5 windows after probation"),
        "{report}"
    );
    for name in [
        "standard",
        "reward_low_FN_rate",
        "reward_low_FP_rate",
        "realKnownCause/nyc_taxi.csv",
    ] {
        assert!(report.contains(name), "{name} missing from:\n{report}");
    }
}

#[test]
fn missing_corpus_named() {
    let args = EvaluateArgs {
        suite: EvaluateSuite::Nab(NabArgs {
            corpus: PathBuf::from("/nonexistent/corpus"),
            params: None,
            defaults: DetectionDefaults::Plain,
            score: ScoreMode::Window,
            method: None,
            results: None,
        }),
    };

    let error = format!("{:#}", seismo_detector::evaluate::run(args).unwrap_err());

    assert!(error.contains("/nonexistent/corpus/profiles.json"), "{error}");
}

#[test]
fn novelty_settings_find_every_demo_window() {
    let corpus = tempfile::tempdir().unwrap();
    build_corpus(corpus.path());
    let args = EvaluateArgs {
        suite: EvaluateSuite::Nab(NabArgs {
            corpus: corpus.path().to_path_buf(),
            params: Some(demo_path("../config/novelty.toml")),
            defaults: DetectionDefaults::Plain,
            score: ScoreMode::Alert,
            method: None,
            results: None,
        }),
    };

    let report = seismo_detector::evaluate::run(args).unwrap();

    // The standard profile's column: true positives / false positives / misses.
    let row = report
        .lines()
        .find(|line| line.starts_with("realKnownCause/nyc_taxi.csv"))
        .unwrap_or_else(|| panic!("no taxi row in:\n{report}"));
    let counts: Vec<usize> = row
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('/')
        .map(|count| count.parse().unwrap())
        .collect();
    assert_eq!(counts[0], 5, "{row}");
    assert_eq!(counts[2], 0, "{row}");
    assert!(counts[1] <= 3, "{row}");
}
