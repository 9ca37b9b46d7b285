//! `evaluate business`: the detector and the IQR rule on the seeded
//! synthetic business series.

use seismo_detector::detection::DetectionParams;
use seismo_detector::evaluate::business::{compare, detector_alerts, totals};
use seismo_detector::evaluate::business_series::generate_suite;
use seismo_detector::evaluate::iqr::IqrRule;
use seismo_detector::evaluate::{BusinessArgs, EvaluateArgs, EvaluateSuite};

const RULE: IqrRule = IqrRule {
    windows: 48,
    coefficient: 1.5,
    min_windows: 12,
};

fn business_args(seed: u64) -> EvaluateArgs {
    EvaluateArgs {
        suite: EvaluateSuite::Business(BusinessArgs {
            seed,
            params: None,
            iqr_windows: 48,
            iqr_coefficient: 1.5,
        }),
    }
}

#[test]
fn suite_covers_business_cases() {
    let names: Vec<&str> = generate_suite(1).iter().map(|series| series.name).collect();

    assert_eq!(
        names,
        [
            "spikes",
            "dips",
            "level_shift",
            "trend_noise",
            "holiday",
            "dst_change",
            "new_metric"
        ]
    );
}

#[test]
fn detector_finds_spikes_and_dips() {
    let suite = generate_suite(1);
    let comparisons = compare(&suite[..2], &DetectionParams::default(), &RULE);

    for comparison in &comparisons {
        assert_eq!(
            comparison.detector.detected, 3,
            "{}: {:?}",
            comparison.name, comparison.detector
        );
        assert_eq!(
            comparison.detector.false_positives, 0,
            "{}: {:?}",
            comparison.name, comparison.detector
        );
    }
}

#[test]
fn alerts_are_fired_episodes() {
    let suite = generate_suite(1);
    let alerts = detector_alerts(&suite[0], &DetectionParams::default());

    // Each spike lasts two windows and fires one episode.
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    for (alert, &(start, end)) in alerts.iter().zip(&suite[0].anomalies) {
        assert!(
            (start..=end + 1).contains(alert),
            "alert {alert} outside {start}..={end}"
        );
    }
}

#[test]
fn totals_sum_series() {
    let suite = generate_suite(3);
    let comparisons = compare(&suite, &DetectionParams::default(), &RULE);

    let (detector, iqr) = totals(&comparisons);

    let anomalies: usize = suite.iter().map(|series| series.anomalies.len()).sum();
    assert_eq!(detector.anomalies, anomalies);
    assert_eq!(iqr.anomalies, anomalies);
    let iqr_false_positives: usize = comparisons
        .iter()
        .map(|comparison| comparison.iqr.false_positives)
        .sum();
    assert_eq!(iqr.false_positives, iqr_false_positives);
}

#[test]
fn report_is_deterministic() {
    let first = seismo_detector::evaluate::run(business_args(5)).unwrap();
    let second = seismo_detector::evaluate::run(business_args(5)).unwrap();

    assert_eq!(first, second);
    assert!(first.contains("seed 5"), "{first}");
    for line in ["all          detector", "all          iqr", "dst_change   detector"] {
        assert!(first.contains(line), "{line} missing from:\n{first}");
    }
}

#[test]
fn invalid_iqr_rule_rejected() {
    let mut args = business_args(1);
    let EvaluateSuite::Business(business) = &mut args.suite else {
        unreachable!("business_args builds a business suite");
    };
    business.iqr_windows = 0;

    let error = seismo_detector::evaluate::run(args).unwrap_err().to_string();

    assert!(error.contains("--iqr-windows 0"), "{error}");
}
