//! `evaluate business`: the detection methods and the IQR rule on the
//! seeded synthetic business series.

use seismo_detector::config::DetectionDefaults;
use seismo_detector::detection::{DetectionParams, LevelAdjustment, MethodName, ResidualScale};
use seismo_detector::evaluate::business::{compare, detector_alerts};
use seismo_detector::evaluate::business_match::MatchOutcome;
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
            seeds: None,
            // Every method but the forecast, whose fits take seconds in a
            // debug build; its own tests cover it.
            methods: Some(
                MethodName::ALL
                    .into_iter()
                    .filter(|&method| method != MethodName::Forecast)
                    .collect(),
            ),
            params: None,
            defaults: DetectionDefaults::Count,
            window: 30 * 60_000,
            level: None,
            poisson: false,
            iqr_windows: None,
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
    let outcomes = compare(&suite[..2], &[DetectionParams::default()], &RULE);

    assert_eq!(outcomes[0].name, "robust_band");
    for (series, outcome) in suite.iter().zip(&outcomes[0].series) {
        assert_eq!(outcome.detected(), 3, "{}: {outcome:?}", series.name);
        assert_eq!(outcome.false_positives, 0, "{}: {outcome:?}", series.name);
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
    let methods = [MethodName::RobustBand, MethodName::PercentChange].map(|method| DetectionParams {
        method,
        ..DetectionParams::default()
    });
    let outcomes = compare(&suite, &methods, &RULE);

    let names: Vec<&str> = outcomes.iter().map(|method| method.name.as_str()).collect();
    assert_eq!(names, ["robust_band", "percent_change", "iqr_rule"]);
    let anomalies: usize = suite.iter().map(|series| series.anomalies.len()).sum();
    for method in &outcomes {
        let total = method.total();
        assert_eq!(total.anomalies(), anomalies, "{}", method.name);
        let false_positives: usize = method.series.iter().map(|series| series.false_positives).sum();
        assert_eq!(total.false_positives, false_positives, "{}", method.name);
    }
}

#[test]
fn report_is_deterministic() {
    let first = seismo_detector::evaluate::run(business_args(5)).unwrap();
    let second = seismo_detector::evaluate::run(business_args(5)).unwrap();

    assert_eq!(first, second);
    assert!(first.contains("seeds 5"), "{first}");
    for method in MethodName::ALL
        .into_iter()
        .filter(|&method| method != MethodName::Forecast)
    {
        assert!(
            first.contains(&format!("\n{method} ")),
            "{method} missing from:\n{first}"
        );
    }
    for line in [
        "\niqr_rule ",
        "\ndst_change ",
        "median delay",
        "both a method and iqr_rule detect",
    ] {
        assert!(first.contains(line), "{line} missing from:\n{first}");
    }
}

#[test]
fn plain_default_method_beats_iqr_rule() {
    for seed in 1..=5 {
        let suite = generate_suite(seed);
        let outcomes = compare(&suite, &[DetectionParams::default()], &RULE);
        let (robust, iqr) = (outcomes[0].total(), outcomes[1].total());

        assert!(robust.f1() >= 0.9, "seed {seed}: F1 {} {robust:?}", robust.f1());
        assert!(robust.median_delay().unwrap() <= 1.0, "seed {seed}: {robust:?}");
        assert!(robust.precision() > iqr.precision(), "seed {seed}");
        assert!(robust.recall() > iqr.recall(), "seed {seed}");
        let shared = robust.shared_delay(&iqr).unwrap();
        assert!(shared.method <= shared.baseline, "seed {seed}: {shared:?}");
    }
}

#[test]
fn count_noise_model_catches_night_dips() {
    // Square-root residuals keep the night band in proportion to the night's
    // noise, and a multiplicative level carries a −35 % shift to every hour.
    // Both are among the defaults of count metrics.
    let params = seismo_detector::replay::read_params(None, None, DetectionDefaults::Count).unwrap();
    assert_eq!(params.residual_scale, Some(ResidualScale::Sqrt));
    assert_eq!(params.level_adjustment, LevelAdjustment::Multiplicative);
    for seed in 1..=3 {
        let suite = generate_suite(seed);
        let outcomes = compare(&suite, std::slice::from_ref(&params), &RULE);
        let by_name = |name: &str| {
            let index = suite.iter().position(|series| series.name == name).unwrap();
            outcomes[0].series[index].clone()
        };

        let dips = by_name("dips");
        assert_eq!(dips.detected(), 3, "seed {seed}: {dips:?}");
        let level_shift = by_name("level_shift");
        assert_eq!(level_shift.false_positives, 0, "seed {seed}: {level_shift:?}");
        let total = outcomes[0].total();
        assert!(total.f1() >= 0.95, "seed {seed}: F1 {} {total:?}", total.f1());
        assert!(total.median_delay().unwrap() <= 1.0, "seed {seed}: {total:?}");
        let shared = total.shared_delay(&outcomes[1].total()).unwrap();
        assert!(shared.method <= shared.baseline, "seed {seed}: {shared:?}");
    }
}

#[test]
fn count_defaults_beat_iqr_rule() {
    // On every column, over five seeds together as `evaluate business
    // --seeds 1,2,3,4,5` reports them. Each mean delay is over that side's
    // own detections, so the band must also be fast on the kinds the IQR
    // rule never detects.
    let params = seismo_detector::replay::read_params(None, None, DetectionDefaults::Count).unwrap();
    let (mut band, mut iqr) = (MatchOutcome::default(), MatchOutcome::default());
    for seed in 1..=5 {
        let outcomes = compare(&generate_suite(seed), std::slice::from_ref(&params), &RULE);
        band.add(&outcomes[0].total());
        iqr.add(&outcomes[1].total());
    }

    assert!(band.precision() > iqr.precision(), "{band:?} {iqr:?}");
    assert!(band.recall() > iqr.recall(), "{band:?} {iqr:?}");
    assert!(band.f1() >= 0.9, "F1 {}", band.f1());
    assert!(band.median_delay() <= iqr.median_delay(), "{band:?} {iqr:?}");
    assert!(
        band.mean_delay() < iqr.mean_delay(),
        "mean delay {:?} against {:?}",
        band.mean_delay(),
        iqr.mean_delay()
    );
}

#[test]
fn count_defaults_are_the_count_model() {
    // `--defaults count` (the default) scores as `--defaults plain` with the
    // count model's six keys in the params file.
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("count.toml");
    std::fs::write(
        &path,
        "[detection]\nresidual_scale = \"sqrt\"\nlevel_adjustment = \"multiplicative\"\n\
         reference_windows = 3\nfire_outside = 2\nfire_lookback = 3\nfire_ratio = 1.4\n",
    )
    .unwrap();
    let run = |defaults, params| {
        seismo_detector::evaluate::run(EvaluateArgs {
            suite: EvaluateSuite::Business(BusinessArgs {
                methods: Some(vec![MethodName::RobustBand]),
                params,
                defaults,
                ..business_args_of(business_args(2))
            }),
        })
        .unwrap()
    };

    let counted = run(DetectionDefaults::Count, None);
    let explicit = run(DetectionDefaults::Plain, Some(path));
    let plain = run(DetectionDefaults::Plain, None);

    assert!(
        counted.lines().next().unwrap().contains("count metric defaults"),
        "{counted}"
    );
    assert_eq!(without_first_line(&counted), without_first_line(&explicit));
    assert_ne!(without_first_line(&counted), without_first_line(&plain));
}

#[test]
fn count_defaults_leave_other_methods() {
    let run = |defaults| {
        seismo_detector::evaluate::run(EvaluateArgs {
            suite: EvaluateSuite::Business(BusinessArgs {
                methods: Some(vec![MethodName::PercentChange]),
                defaults,
                ..business_args_of(business_args(2))
            }),
        })
        .unwrap()
    };

    assert_eq!(
        without_first_line(&run(DetectionDefaults::Count)),
        without_first_line(&run(DetectionDefaults::Plain))
    );
}

/// Returns the report without its first line, which names the defaults.
fn without_first_line(report: &str) -> &str {
    report.split_once('\n').map_or("", |(_, rest)| rest)
}

fn business_args_of(args: EvaluateArgs) -> BusinessArgs {
    match args.suite {
        EvaluateSuite::Business(business) => business,
        EvaluateSuite::Nab(_) => unreachable!("business_args builds a business suite"),
    }
}

#[test]
fn invalid_iqr_rule_rejected() {
    let mut args = business_args(1);
    let EvaluateSuite::Business(business) = &mut args.suite else {
        unreachable!("business_args builds a business suite");
    };
    business.iqr_windows = Some(0);

    let error = seismo_detector::evaluate::run(args).unwrap_err().to_string();

    assert!(error.contains("--iqr-windows 0"), "{error}");
}

#[test]
fn invalid_iqr_coefficient_rejected() {
    let mut business = business_args_of(business_args(1));
    business.iqr_coefficient = -1.0;

    let error = seismo_detector::evaluate::run(EvaluateArgs {
        suite: EvaluateSuite::Business(business),
    })
    .unwrap_err()
    .to_string();

    assert!(error.contains("--iqr-coefficient -1"), "{error}");
    assert!(!error.contains("--iqr-windows"), "{error}");
}

#[test]
fn invalid_level_rejected() {
    let mut business = business_args_of(business_args(1));
    business.level = Some(0.0);

    let error = seismo_detector::evaluate::run(EvaluateArgs {
        suite: EvaluateSuite::Business(business),
    })
    .unwrap_err()
    .to_string();

    assert!(error.contains("--level 0"), "{error}");
}

#[test]
fn invalid_window_rejected() {
    let mut business = business_args_of(business_args(1));
    business.window = 7 * 60_000;

    let error = seismo_detector::evaluate::run(EvaluateArgs {
        suite: EvaluateSuite::Business(business),
    })
    .unwrap_err()
    .to_string();

    assert!(error.contains("invalid --window 7m:"), "{error}");
    assert!(error.contains("divides an hour"), "{error}");
}

#[test]
fn five_minute_windows_scale_level_and_iqr_rule() {
    let mut business = business_args_of(business_args(1));
    business.window = 5 * 60_000;
    business.methods = Some(vec![MethodName::ThreeSigma]);

    let report = seismo_detector::evaluate::run(EvaluateArgs {
        suite: EvaluateSuite::Business(business),
    })
    .unwrap();

    let header = report.lines().next().unwrap();
    assert!(header.contains("5-minute windows"), "{header}");
    assert!(header.contains("level 83.3"), "{header}");
    assert!(header.contains("IQR rule n = 288 windows"), "{header}");
}

#[test]
fn iqr_method_matches_iqr_rule() {
    // With single-window alert rules the `iqr` method alerts exactly where
    // the evaluator's IQR baseline does.
    let params = DetectionParams {
        method: MethodName::Iqr,
        fire_outside: 1,
        fire_lookback: 1,
        resolve_inside: 1,
        cooldown_windows: 0,
        ..DetectionParams::default()
    };
    for series in &generate_suite(2) {
        let method_alerts = detector_alerts(series, &params);
        let rule_alerts = seismo_detector::evaluate::iqr::alert_starts(&seismo_detector::evaluate::iqr::iqr_outliers(
            &series.values,
            &RULE,
        ));
        assert_eq!(method_alerts, rule_alerts, "{}", series.name);
    }
}
