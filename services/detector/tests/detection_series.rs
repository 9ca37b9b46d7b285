//! `SeriesDetector` end to end on synthetic series: learning, ordering,
//! gaps, stored points, memory and the episodes of typical anomalies.

use seismo_detector::detection::{DetectionParams, Direction, Evaluation, SeriesDetector, Severity, Transition};

const WINDOW_MS: i64 = 30 * 60 * 1000;
const WINDOWS_PER_DAY: i64 = 48;

/// Deterministic pseudo-random numbers (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by the Box–Muller transform.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Traffic-like value of window `i`: a daily cycle between 500 and 1500,
/// 200 lower on the two weekend days, with 3 % noise.
fn normal_value(i: i64, random: &mut Lcg) -> f64 {
    let phase = (i % WINDOWS_PER_DAY) as f64 / WINDOWS_PER_DAY as f64 * 2.0 * std::f64::consts::PI;
    let weekend = if (i / WINDOWS_PER_DAY) % 7 >= 5 { 200.0 } else { 0.0 };
    (1000.0 + 500.0 * phase.sin() - weekend) * (1.0 + 0.03 * random.normal())
}

/// Feeds `days` days of the traffic-like series, changed by `anomaly`
/// (window index, normal value) → value, and returns every evaluation.
fn run(days: i64, anomaly: impl Fn(i64, f64) -> f64) -> Vec<Evaluation> {
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    let mut random = Lcg(1);
    (0..days * WINDOWS_PER_DAY)
        .map(|i| {
            let value = anomaly(i, normal_value(i, &mut random));
            detector.observe(i * WINDOW_MS, value).expect("windows are in order")
        })
        .collect()
}

/// Window indexes of the Fired transitions.
fn fired(evaluations: &[Evaluation]) -> Vec<i64> {
    evaluations
        .iter()
        .filter(|evaluation| matches!(evaluation.transition, Some(Transition::Fired { .. })))
        .map(|evaluation| evaluation.window_start_ms / WINDOW_MS)
        .collect()
}

fn resolved(evaluations: &[Evaluation]) -> Vec<i64> {
    evaluations
        .iter()
        .filter(|evaluation| matches!(evaluation.transition, Some(Transition::Resolved { .. })))
        .map(|evaluation| evaluation.window_start_ms / WINDOW_MS)
        .collect()
}

#[test]
fn normal_series_never_fires() {
    let evaluations = run(28, |_, value| value);
    assert_eq!(fired(&evaluations), Vec::<i64>::new());
}

#[test]
fn learning_until_min_history() {
    let params = DetectionParams::default();
    let mut detector = SeriesDetector::new(&params, WINDOW_MS);
    assert!(detector.is_learning());

    // The first window has no expected value, so the scale gets its first
    // residual from window 1 and is full after min_history_windows + 1 windows.
    let learning_windows = params.min_history_windows as i64 + 1;
    for i in 0..learning_windows {
        let evaluation = detector
            .observe(i * WINDOW_MS, if i % 2 == 0 { 10.0 } else { 1_000.0 })
            .unwrap();
        assert_eq!(evaluation.band, None, "window {i} has a band while learning");
        assert_eq!(evaluation.score, 0.0);
        assert_eq!(evaluation.calibrated_score, 0.0);
        assert!(!evaluation.outside);
        assert_eq!(evaluation.transition, None);
    }
    assert!(!detector.is_learning());

    let evaluation = detector.observe(learning_windows * WINDOW_MS, 500.0).unwrap();
    assert!(evaluation.band.is_some(), "no band after learning");
}

#[test]
fn learning_again_after_long_gap() {
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    let mut random = Lcg(3);
    for i in 0..10 * WINDOWS_PER_DAY {
        detector.observe(i * WINDOW_MS, normal_value(i, &mut random)).unwrap();
    }
    assert!(!detector.is_learning());

    // Thirty days without data: more than the kept history.
    let restart = 40 * WINDOWS_PER_DAY;
    let evaluation = detector.observe(restart * WINDOW_MS, 1_000.0).unwrap();
    assert_eq!(evaluation.band, None);
    assert!(detector.is_learning());
    assert_eq!(detector.points().count(), 1);
}

#[test]
fn old_or_repeated_windows_ignored() {
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    assert!(detector.observe(10 * WINDOW_MS, 1.0).is_some());
    assert!(
        detector.observe(10 * WINDOW_MS, 2.0).is_none(),
        "repeated window accepted"
    );
    assert!(detector.observe(9 * WINDOW_MS, 2.0).is_none(), "older window accepted");
    assert!(
        detector.observe(10 * WINDOW_MS + 1, 2.0).is_none(),
        "start inside the last window accepted"
    );
    assert!(detector.observe(11 * WINDOW_MS, 3.0).is_some());

    let values: Vec<f64> = detector.points().map(|point| point.value).collect();
    assert_eq!(values, vec![1.0, 3.0]);
}

#[test]
fn non_finite_values_ignored() {
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    assert!(detector.observe(0, f64::NAN).is_none());
    assert!(detector.observe(WINDOW_MS, f64::INFINITY).is_none());
    assert!(
        detector.observe(2 * WINDOW_MS, 1e300).is_none(),
        "value beyond f32 accepted"
    );
    assert!(detector.observe(3 * WINDOW_MS, 5.0).is_some());
    assert_eq!(detector.points().count(), 1);
}

#[test]
fn points_keep_unaligned_starts() {
    // Windows starting 7 minutes past the half hour.
    let offset_ms = 7 * 60 * 1000;
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    for i in [0, 1, 5] {
        detector.observe(i * WINDOW_MS + offset_ms, i as f64).unwrap();
    }
    let starts: Vec<i64> = detector.points().map(|point| point.window_start_ms).collect();
    assert_eq!(
        starts,
        vec![offset_ms, WINDOW_MS + offset_ms, 5 * WINDOW_MS + offset_ms]
    );
}

#[test]
fn points_match_evaluations() {
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    let mut random = Lcg(5);
    let mut evaluations = Vec::new();
    for i in 0..3 * WINDOWS_PER_DAY {
        let value = if i == 2 * WINDOWS_PER_DAY + 10 {
            5_000.0
        } else {
            normal_value(i, &mut random)
        };
        evaluations.push(detector.observe(i * WINDOW_MS, value).unwrap());
    }

    let points: Vec<_> = detector.points().collect();
    assert_eq!(points.len(), evaluations.len());
    for (point, evaluation) in points.iter().zip(&evaluations) {
        assert_eq!(point.window_start_ms, evaluation.window_start_ms);
        assert_eq!(point.value, evaluation.value as f32 as f64);
        assert_eq!(point.anomalous, evaluation.outside);
        match (point.band, evaluation.band) {
            (None, None) => {}
            (Some(stored), Some(judged)) => {
                let tolerance = 1e-3 * judged.expected.abs().max(1.0);
                assert!((stored.expected - judged.expected).abs() < tolerance);
                assert!((stored.lower - judged.lower).abs() < tolerance);
                assert!((stored.upper - judged.upper).abs() < tolerance);
            }
            (stored, judged) => panic!("band {stored:?} stored for judged {judged:?}"),
        }
    }
    assert!(points.iter().any(|point| point.anomalous), "the spike is not marked");
}

#[test]
fn history_bounded() {
    let params = DetectionParams::default();
    let mut detector = SeriesDetector::new(&params, WINDOW_MS);
    // One week plus the level windows, plus the window the oldest level
    // offset reads when a re-baseline rebuilds them.
    assert_eq!(detector.history_windows(), 7 * 48 + params.level_windows + 1);

    let mut random = Lcg(9);
    for i in 0..30 * WINDOWS_PER_DAY {
        detector.observe(i * WINDOW_MS, normal_value(i, &mut random)).unwrap();
    }
    assert_eq!(detector.points().count(), detector.history_windows());
    let first = detector.points().next().unwrap();
    assert_eq!(
        first.window_start_ms,
        (30 * WINDOWS_PER_DAY - detector.history_windows() as i64) * WINDOW_MS
    );

    // 5 bytes per window and 16 more per window kept in full, 4 per
    // residual, 8 per level offset of the two lags (sorted and in window
    // order), 256 for the calibrated score's histogram and 4 per window of
    // its lookback, plus the structs themselves.
    let full_windows = params.residual_windows + 1;
    let samples = (params.residual_windows + 1) + 2 * 2 * (params.level_windows + 1);
    let calibration = 256 + params.fire_lookback * 4;
    let bound = detector.history_windows() * 5 + full_windows * 16 + samples * 4 + calibration + 1024;
    assert!(
        detector.memory_bytes() <= bound,
        "{} bytes, bound {bound}",
        detector.memory_bytes()
    );
}

#[test]
fn five_minute_history_keeps_detail_recent() {
    const FIVE_MINUTES_MS: i64 = 5 * 60 * 1000;
    let params = DetectionParams::default();
    let mut detector = SeriesDetector::new(&params, FIVE_MINUTES_MS);
    let windows_per_day = 288;
    let mut random = Lcg(11);
    for i in 0..9 * windows_per_day {
        let value = normal_value(i * WINDOWS_PER_DAY / windows_per_day, &mut random);
        detector.observe(i * FIVE_MINUTES_MS, value).unwrap();
    }

    // A week of references, and the residual window (longer than a day)
    // with every field.
    let points: Vec<_> = detector.points().collect();
    let full = points.iter().filter(|point| !point.reference_only).count();
    assert_eq!(points.len(), 7 * windows_per_day as usize + params.level_windows + 1);
    assert_eq!(full, params.residual_windows + 1);
    assert!(points[..points.len() - full].iter().all(|point| point.reference_only));
    assert!(points[..points.len() - full].iter().all(|point| point.band.is_none()));
    assert!(points[points.len() - full..].iter().all(|point| point.band.is_some()));
    assert!(
        detector.memory_bytes() < 20 * 1024,
        "{} bytes for 5-minute windows",
        detector.memory_bytes()
    );
}

#[test]
fn history_cap_from_params() {
    let params = DetectionParams {
        history_windows: Some(400),
        ..DetectionParams::default()
    };
    let mut detector = SeriesDetector::new(&params, WINDOW_MS);
    for i in 0..1_000 {
        detector.observe(i * WINDOW_MS, 1.0).unwrap();
    }
    assert_eq!(detector.points().count(), 400);
}

#[test]
fn spike_fires_once_and_resolves() {
    let spike = 14 * WINDOWS_PER_DAY + 20;
    let evaluations = run(21, |i, value| if i == spike { value * 3.0 } else { value });

    assert_eq!(fired(&evaluations), vec![spike], "a critical window fires at once");
    let fired_at = &evaluations[spike as usize];
    assert!(fired_at.outside);
    assert!(fired_at.score > 0.9, "score {}", fired_at.score);
    // No earlier window of two weeks of noise came near the spike, so only
    // the +1 of the p-value keeps the calibrated score below 1.
    assert!(
        fired_at.calibrated_score > 0.99,
        "calibrated score {}",
        fired_at.calibrated_score
    );
    assert_eq!(
        fired_at.transition,
        Some(Transition::Fired {
            episode_start_ms: spike * WINDOW_MS,
            direction: Direction::Up,
            severity: Severity::Critical
        })
    );

    let params = DetectionParams::default();
    assert_eq!(resolved(&evaluations), vec![spike + params.resolve_inside as i64]);
    assert_eq!(
        evaluations[(spike + params.resolve_inside as i64) as usize].transition,
        Some(Transition::Resolved {
            episode_start_ms: spike * WINDOW_MS
        })
    );
}

#[test]
fn short_blip_below_firing_rule_does_not_fire() {
    // Three windows 28 % low: outside the band but short of four in six
    // and not critical.
    let start = 14 * WINDOWS_PER_DAY + 20;
    let evaluations = run(21, |i, value| {
        if (start..start + 3).contains(&i) {
            value * 0.72
        } else {
            value
        }
    });

    let outside = (start..start + 3).filter(|&i| evaluations[i as usize].outside).count();
    assert!(
        outside >= 2,
        "only {outside} of the blip windows outside; make the blip larger"
    );
    assert_eq!(fired(&evaluations), Vec::<i64>::new());
}

#[test]
fn holiday_fires_once_without_echo() {
    // Day 14 at half its usual traffic, like a public holiday.
    let holiday = 14;
    let evaluations = run(28, |i, value| {
        if i / WINDOWS_PER_DAY == holiday {
            value * 0.5
        } else {
            value
        }
    });

    let alerts = fired(&evaluations);
    assert_eq!(alerts.len(), 1, "alerts at {alerts:?}");
    assert_eq!(alerts[0] / WINDOWS_PER_DAY, holiday);
    match evaluations[alerts[0] as usize].transition {
        Some(Transition::Fired { direction, .. }) => assert_eq!(direction, Direction::Down),
        other => panic!("expected a firing, got {other:?}"),
    }

    // A week later the holiday is the weekly reference. It must not make
    // the normal day look anomalous, the echo a raw reference would cause.
    let week_later = (holiday + 7) * WINDOWS_PER_DAY;
    let echo_outside = (week_later..week_later + WINDOWS_PER_DAY)
        .filter(|&i| evaluations[i as usize].outside)
        .count();
    assert!(
        echo_outside <= 2,
        "{echo_outside} windows outside a week after the holiday"
    );
}

#[test]
fn level_shift_is_learned() {
    // From day 14 on the series is 50 % higher for good.
    let shift = 14;
    let evaluations = run(35, |i, value| {
        if i / WINDOWS_PER_DAY >= shift {
            value * 1.5
        } else {
            value
        }
    });

    let alerts = fired(&evaluations);
    assert!(!alerts.is_empty(), "the shift did not fire");
    assert_eq!(
        alerts[0] / WINDOWS_PER_DAY,
        shift,
        "first alert at window {}",
        alerts[0]
    );
    assert!(alerts.len() <= 3, "alerts at {alerts:?}");
    assert!(
        alerts.iter().all(|&i| i < (shift + 4) * WINDOWS_PER_DAY),
        "alerts long after the shift: {alerts:?}"
    );

    // Learned: the last week is inside the band.
    let last_week = (35 - 7) * WINDOWS_PER_DAY;
    let outside = evaluations[last_week as usize..]
        .iter()
        .filter(|evaluation| evaluation.outside)
        .count();
    assert!(outside <= 3, "{outside} windows of the last week outside");
}

#[test]
fn shape_change_learned_within_two_weeks() {
    // From day 14 on, two hours each morning run 60 % above the old shape.
    let change_day = 14;
    let changed = |i: i64| i / WINDOWS_PER_DAY >= change_day && (16..20).contains(&(i % WINDOWS_PER_DAY));
    let evaluations = run(42, |i, value| if changed(i) { value * 1.6 } else { value });

    // Each morning alerts while its weekly reference is an old morning
    // (week one) or an old morning clamped into the changed week (week
    // two). Once a changed morning stored raw is the reference, the new
    // shape is normal.
    let alerts = fired(&evaluations);
    let days: Vec<i64> = alerts.iter().map(|&i| i / WINDOWS_PER_DAY).collect();
    assert_eq!(days.first(), Some(&change_day), "alerts on days {days:?}");
    assert!(days.len() <= 14, "alerts on days {days:?}");
    assert!(
        days.iter().all(|&day| day < change_day + 14),
        "alerts after two weeks, on days {days:?}"
    );
}

#[test]
fn square_wave_quiet_after_first_day() {
    // Five-minute windows, 20 at night and 80 from 09:00 to 18:00, no noise.
    // Learning ends after 48 windows, so the first day is judged against the
    // rolling median, which misses both steps. Those values must still
    // become correct references for the second day.
    let window_ms = 5 * 60 * 1000;
    let windows_per_day = 288;
    let mut detector = SeriesDetector::new(&DetectionParams::default(), window_ms);
    let mut outside_first_day = 0;
    for i in 0..14 * windows_per_day {
        let hour = (i % windows_per_day) / 12;
        let value = if (9..18).contains(&hour) { 80.0 } else { 20.0 };
        let evaluation = detector.observe(i * window_ms, value).unwrap();
        if i < windows_per_day {
            outside_first_day += usize::from(evaluation.outside);
        } else {
            assert!(!evaluation.outside, "window {i} outside: {evaluation:?}");
        }
    }
    assert!(
        outside_first_day > 0,
        "the first day was expected to misjudge the steps"
    );
}

#[test]
fn drop_to_zero_fires_at_once() {
    let start = 14 * WINDOWS_PER_DAY + 20;
    let evaluations = run(
        21,
        |i, value| if (start..start + 10).contains(&i) { 0.0 } else { value },
    );

    assert_eq!(fired(&evaluations), vec![start]);
    assert_eq!(
        resolved(&evaluations),
        vec![start + 10 + 5],
        "resolves on the sixth window back inside"
    );
}

#[test]
fn gap_in_data_keeps_seasonal_lookup() {
    // Day 10 is missing entirely. Day 11 still finds its references by time.
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    let mut random = Lcg(11);
    let mut outside_after_gap = 0;
    for i in 0..14 * WINDOWS_PER_DAY {
        let value = normal_value(i, &mut random);
        if i / WINDOWS_PER_DAY == 10 {
            continue;
        }
        let evaluation = detector.observe(i * WINDOW_MS, value).unwrap();
        assert_eq!(evaluation.transition, None, "transition at window {i}");
        if i / WINDOWS_PER_DAY == 11 && evaluation.outside {
            outside_after_gap += 1;
        }
    }
    assert!(
        outside_after_gap <= 1,
        "{outside_after_gap} windows outside after the gap"
    );
}

#[test]
fn flat_series_respects_relative_floor() {
    // A constant series has zero scale, and the 5 % floor keeps a 3 % change
    // inside. Without a week of history the reference is the day before, so
    // the floor is `daily_fallback_width`, 35 %.
    let mut detector = SeriesDetector::new(&DetectionParams::default(), WINDOW_MS);
    for i in 0..100 {
        detector.observe(i * WINDOW_MS, 200.0).unwrap();
    }
    let small = detector.observe(100 * WINDOW_MS, 206.0).unwrap();
    assert!(!small.outside, "3 % change outside: {small:?}");
    let medium = detector.observe(101 * WINDOW_MS, 260.0).unwrap();
    assert!(!medium.outside, "30 % change outside: {medium:?}");
    let large = detector.observe(102 * WINDOW_MS, 300.0).unwrap();
    assert!(large.outside, "50 % change inside: {large:?}");
}
