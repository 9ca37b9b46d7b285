//! Tests of a whole series: method selection, alert hygiene and local-time
//! references, through [`SeriesDetector::observe`].

use super::test_noise::Noise;
use super::*;

const HALF_HOUR_MS: i64 = 30 * 60 * 1000;
const WINDOWS_PER_DAY: i64 = 48;

/// Returns a value of a daily cycle around 1000 with ±2 % noise.
fn normal_value(number: i64, noise: &mut Noise) -> f64 {
    let phase = (number % WINDOWS_PER_DAY) as f64 / WINDOWS_PER_DAY as f64 * std::f64::consts::TAU;
    (1000.0 + 400.0 * phase.sin()) * (1.0 + 0.02 * noise.next())
}

/// Firings and resolutions as "F<window>" and "R<window>"; escalations are
/// left out.
fn transitions(detector: &mut SeriesDetector, values: &[(i64, f64)]) -> Vec<String> {
    let mut events = Vec::new();
    for &(number, value) in values {
        let evaluation = detector.observe(number * HALF_HOUR_MS, value).unwrap();
        match evaluation.transition {
            Some(Transition::Fired { .. }) => events.push(format!("F{number}")),
            Some(Transition::Resolved { .. }) => events.push(format!("R{number}")),
            Some(Transition::Escalated { .. }) | None => {}
        }
    }
    events
}

fn params_for(method: MethodName) -> DetectionParams {
    DetectionParams {
        method,
        forecast: ForecastParams {
            refit_every: 48,
            fit_windows: 480,
            level: 0.99,
            ..ForecastParams::default()
        },
        ensemble: EnsembleParams {
            methods: vec![MethodName::RobustBand, MethodName::Iqr],
            ..EnsembleParams::default()
        },
        ..DetectionParams::default()
    }
}

#[test]
fn oscillation_gives_one_episode_per_method() {
    for method in MethodName::ALL {
        let mut noise = Noise(3);
        let params = params_for(method);
        let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
        let start = 10 * WINDOWS_PER_DAY;
        let mut values: Vec<(i64, f64)> = (0..start)
            .map(|number| (number, normal_value(number, &mut noise)))
            .collect();
        // Twenty windows that leave the band twice and return once, far
        // enough out for every method, then normal windows again.
        for number in start..start + 30 {
            let normal = normal_value(number, &mut noise);
            let value = if (number - start) % 3 == 2 {
                normal
            } else {
                normal * 2.0
            };
            values.push((number, value));
        }
        // Normal windows long enough for the novelty method's 256-window
        // spread to forget the oscillation.
        for number in start + 30..start + 330 {
            values.push((number, normal_value(number, &mut noise)));
        }

        let events = transitions(&mut detector, &values[..start as usize]);
        assert_eq!(events, Vec::<String>::new(), "{method}: alerts before the oscillation");
        let events = transitions(&mut detector, &values[start as usize..]);
        assert_eq!(events.len(), 2, "{method}: {events:?}");
        assert!(events[0].starts_with('F'), "{method}: {events:?}");
        assert!(events[1].starts_with('R'), "{method}: {events:?}");
    }
}

#[test]
fn method_is_chosen_by_params() {
    // A flat series with one outlier: the IQR band of a flat series has
    // zero width, the robust band has a 5 % floor.
    let daily = |method| DetectionParams {
        seasonality: Seasonality::Daily,
        ..params_for(method)
    };
    let mut iqr = SeriesDetector::new(&daily(MethodName::Iqr), HALF_HOUR_MS);
    let mut robust = SeriesDetector::new(&daily(MethodName::RobustBand), HALF_HOUR_MS);
    for number in 0..100 {
        iqr.observe(number * HALF_HOUR_MS, 100.0);
        robust.observe(number * HALF_HOUR_MS, 100.0);
    }
    let iqr_band = iqr.observe(100 * HALF_HOUR_MS, 101.0).unwrap();
    let robust_band = robust.observe(100 * HALF_HOUR_MS, 101.0).unwrap();
    assert!(iqr_band.outside);
    assert!(!robust_band.outside);
    assert_eq!(robust_band.band.unwrap().upper, 105.0);
}

#[test]
fn small_slices_do_not_alert() {
    let params = DetectionParams {
        min_volume: 50.0,
        min_absolute_deviation: 5.0,
        ..params_for(MethodName::ThreeSigma)
    };
    let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
    for number in 0..100 {
        detector.observe(number * HALF_HOUR_MS, 10.0 + (number % 2) as f64);
    }
    // Far outside the 3-sigma band, but below the minimum volume.
    let low = detector.observe(100 * HALF_HOUR_MS, 40.0).unwrap();
    assert!(!low.outside);
    assert!(low.score <= 0.5);
    // Above the minimum volume and the minimum deviation: outside.
    let high = detector.observe(101 * HALF_HOUR_MS, 60.0).unwrap();
    assert!(high.outside);
}

#[test]
fn negative_series_alerts() {
    // With the default minimum volume, and with one the series exceeds in
    // magnitude.
    for min_volume in [0.0, 50.0] {
        let params = DetectionParams {
            min_volume,
            ..params_for(MethodName::ThreeSigma)
        };
        let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
        for number in 0..100 {
            detector.observe(number * HALF_HOUR_MS, -100.0 + (number % 2) as f64);
        }

        let drop = detector.observe(100 * HALF_HOUR_MS, -1000.0).unwrap();

        assert!(drop.outside, "min_volume = {min_volume}");
    }
}

#[test]
fn level_shift_alerts_once_and_becomes_normal() {
    let mut noise = Noise(5);
    let params = DetectionParams {
        rebaseline_windows: 12,
        ..DetectionParams::default()
    };
    let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
    let shift = 15 * WINDOWS_PER_DAY;
    let values: Vec<(i64, f64)> = (0..shift + 7 * WINDOWS_PER_DAY)
        .map(|number| {
            let value = normal_value(number, &mut noise);
            (number, if number >= shift { value * 0.6 } else { value })
        })
        .collect();

    let events = transitions(&mut detector, &values);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with('F'), "{events:?}");
    let fired: i64 = events[0][1..].parse().unwrap();
    assert!((shift..shift + 6).contains(&fired), "{events:?}");
    assert_eq!(events[1], format!("R{}", shift + 11), "{events:?}");
}

#[test]
fn without_rebaseline_level_shift_stays_open() {
    // The same shift with re-baselining off keeps its episode open for more
    // than a day, which is what the rule above prevents.
    let mut noise = Noise(5);
    let params = DetectionParams {
        rebaseline_windows: 0,
        ..DetectionParams::default()
    };
    let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
    let shift = 15 * WINDOWS_PER_DAY;
    let values: Vec<(i64, f64)> = (0..shift + 7 * WINDOWS_PER_DAY)
        .map(|number| {
            let value = normal_value(number, &mut noise);
            (number, if number >= shift { value * 0.6 } else { value })
        })
        .collect();
    let events = transitions(&mut detector, &values[..(shift + WINDOWS_PER_DAY) as usize]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with('F'), "{events:?}");
}

/// Berlin switches to summer time on 2026-03-29 at 01:00 UTC.
const BERLIN_SUMMER_TIME_MS: i64 = 1_774_746_000_000;

/// Returns a value of a daily cycle on Berlin wall-clock time with a sharp
/// evening peak.
fn berlin_value(window_start_ms: i64) -> f64 {
    let offset_ms = if window_start_ms >= BERLIN_SUMMER_TIME_MS {
        2 * 3_600_000
    } else {
        3_600_000
    };
    let local_hour = ((window_start_ms + offset_ms).rem_euclid(86_400_000)) as f64 / 3_600_000.0;
    if (19.0..21.0).contains(&local_hour) {
        2000.0
    } else {
        1000.0
    }
}

fn outside_windows_after_clock_change(time_zone: &str) -> usize {
    let params = DetectionParams {
        time_zone: time_zone.parse().unwrap(),
        seasonality: Seasonality::Daily,
        ..DetectionParams::default()
    };
    let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
    let first = BERLIN_SUMMER_TIME_MS - 10 * 86_400_000;
    let mut outside = 0;
    for number in 0..14 * WINDOWS_PER_DAY {
        let start_ms = first + number * HALF_HOUR_MS;
        let evaluation = detector.observe(start_ms, berlin_value(start_ms)).unwrap();
        if start_ms >= BERLIN_SUMMER_TIME_MS && evaluation.outside {
            outside += 1;
        }
    }
    outside
}

#[test]
fn local_time_references_survive_clock_change() {
    assert_eq!(outside_windows_after_clock_change("Europe/Berlin"), 0);
    // In UTC the evening peak moves by an hour against yesterday's.
    assert!(outside_windows_after_clock_change("UTC") > 0);
}

#[test]
fn memory_is_reported_per_method() {
    for method in MethodName::ALL {
        let detector = SeriesDetector::new(&params_for(method), HALF_HOUR_MS);
        assert!(detector.memory_bytes() >= size_of::<SeriesDetector>(), "{method}");
    }
}

#[test]
fn percent_change_alone_keeps_one_day_in_full() {
    const FIVE_MINUTES_MS: i64 = 5 * 60 * 1000;
    let alone = params_for(MethodName::PercentChange);
    let ensemble = DetectionParams {
        ensemble: EnsembleParams {
            methods: vec![MethodName::RobustBand, MethodName::PercentChange],
            ..EnsembleParams::default()
        },
        ..params_for(MethodName::Ensemble)
    };
    let mut noise = Noise(3);
    let mut detectors = [
        SeriesDetector::new(&alone, FIVE_MINUTES_MS),
        SeriesDetector::new(&ensemble, FIVE_MINUTES_MS),
    ];
    // Eight days of 5-minute windows fill the week the rule reaches back.
    for number in 0..8 * 288 {
        let value = normal_value(number, &mut noise);
        for detector in &mut detectors {
            detector.observe(number * FIVE_MINUTES_MS, value);
        }
    }

    let [alone, ensemble] = &detectors;
    let full = |detector: &SeriesDetector| detector.points().filter(|point| !point.reference_only).count();
    assert_eq!(full(alone), 288);
    assert!(full(ensemble) > 7 * 288, "{}", full(ensemble));
    assert!(alone.memory_bytes() < 16_000, "{} bytes", alone.memory_bytes());
    assert!(ensemble.memory_bytes() > 40_000, "{} bytes", ensemble.memory_bytes());
}

#[test]
fn novelty_band_follows_the_closest_earlier_run() {
    let params = params_for(MethodName::Novelty);
    let mut detector = SeriesDetector::new(&params, HALF_HOUR_MS);
    let mut noise = Noise(5);
    // Fifteen days of a daily cycle with 2 % noise, past the 512 learning windows.
    for number in 0..15 * WINDOWS_PER_DAY {
        detector.observe(number * HALF_HOUR_MS, normal_value(number, &mut noise));
    }
    assert!(!detector.is_learning());

    // The method keeps its own values; the history keeps a day for charts.
    assert_eq!(detector.points().count(), WINDOWS_PER_DAY as usize);
    let latest = detector.points().last().unwrap();
    let band = latest.band.unwrap();
    // The closest run is an earlier day at the same time, so its last value
    // lies within the noise of the latest one.
    assert!((band.expected - latest.value).abs() < 0.1 * latest.value, "{latest:?}");
    assert!(band.lower < band.expected, "{band:?}");
    assert!(band.expected < band.upper, "{band:?}");
    assert!(!latest.anomalous, "{latest:?}");
}

/// Returns the half-width of the band at the trough (window 36 of the last
/// day) of nine days of a daily cycle from 200 to 1800. `value_of` turns
/// the cycle's level and a noise draw in [-1, 1] into the window's value.
fn trough_half_width(params: &DetectionParams, seed: u64, value_of: impl Fn(f64, f64) -> f64) -> f64 {
    let mut noise = Noise(seed);
    let mut detector = SeriesDetector::new(params, HALF_HOUR_MS);
    let mut half_width = 0.0;
    for number in 0..9 * WINDOWS_PER_DAY {
        let phase = (number % WINDOWS_PER_DAY) as f64 / WINDOWS_PER_DAY as f64 * std::f64::consts::TAU;
        let value = value_of(1000.0 + 800.0 * phase.sin(), noise.next());
        let evaluation = detector.observe(number * HALF_HOUR_MS, value).unwrap();
        if let (36, Some(band)) = (number % WINDOWS_PER_DAY, evaluation.band) {
            half_width = (band.upper - band.lower) / 2.0;
        }
    }
    half_width
}

#[test]
fn relative_residuals_scale_band_with_level() {
    // ±2 % noise: relative residuals give a night band in proportion to the
    // night level, absolute ones a band as wide as by day.
    let night_half_width = |relative_residuals: bool| {
        let params = DetectionParams {
            relative_residuals,
            min_relative_width: 0.0,
            ..DetectionParams::default()
        };
        trough_half_width(&params, 11, |level, noise| level * (1.0 + 0.02 * noise))
    };

    let relative = night_half_width(true);
    let absolute = night_half_width(false);
    assert!(relative < absolute / 2.0, "relative {relative}, absolute {absolute}");
}

/// Returns the trough half-width under `scale` when the noise grows with
/// √level (up to ±√level), as for counts of events.
fn count_trough_half_width(scale: ResidualScale) -> f64 {
    let params = DetectionParams {
        residual_scale: Some(scale),
        min_relative_width: 0.0,
        ..DetectionParams::default()
    };
    trough_half_width(&params, 17, |level, noise| level + level.sqrt() * noise)
}

#[test]
fn sqrt_residuals_fit_count_noise() {
    // At the trough (level 200) the noise is up to ±√200 ≈ ±14. Absolute residuals
    // take their scale from the whole day, square-root ones from the
    // trough's own noise, and relative ones shrink it further.
    let absolute = count_trough_half_width(ResidualScale::Absolute);
    let sqrt = count_trough_half_width(ResidualScale::Sqrt);
    let relative = count_trough_half_width(ResidualScale::Relative);

    assert!(sqrt < absolute * 0.7, "sqrt {sqrt}, absolute {absolute}");
    assert!(relative < sqrt * 0.7, "relative {relative}, sqrt {sqrt}");
}

#[test]
fn ensemble_stores_first_method_expected() {
    // The robust band listed first in an ensemble must see the same
    // residuals as alone, so its bands must match.
    let mut noise = Noise(13);
    let values: Vec<f64> = (0..10 * WINDOWS_PER_DAY)
        .map(|number| normal_value(number, &mut noise))
        .collect();
    // Without the 5 % floor the band width follows the residual scale.
    let ensemble_params = DetectionParams {
        min_relative_width: 0.0,
        ensemble: EnsembleParams {
            methods: vec![MethodName::RobustBand, MethodName::ThreeSigma],
            ..EnsembleParams::default()
        },
        ..params_for(MethodName::Ensemble)
    };
    let alone_params = DetectionParams {
        method: MethodName::RobustBand,
        ..ensemble_params.clone()
    };
    let mut ensemble = SeriesDetector::new(&ensemble_params, HALF_HOUR_MS);
    let mut alone = SeriesDetector::new(&alone_params, HALF_HOUR_MS);
    let mut compared = 0;
    for (number, &value) in values.iter().enumerate() {
        let start_ms = number as i64 * HALF_HOUR_MS;
        let with_others = ensemble.observe(start_ms, value).unwrap();
        let Some(band) = alone.observe(start_ms, value).unwrap().band else {
            continue;
        };
        assert_eq!(with_others.band, Some(band), "window {number}");
        compared += 1;
    }
    assert!(compared > 8 * WINDOWS_PER_DAY as usize, "{compared} windows compared");
}

/// Returns a Poisson draw with mean `mean` (Knuth's product of uniforms).
fn poisson(mean: f64, noise: &mut Noise) -> f64 {
    let limit = (-mean).exp();
    let mut product = 1.0;
    let mut count = 0.0;
    loop {
        product *= (noise.next() + 1.0) / 2.0;
        if product < limit {
            return count;
        }
        count += 1.0;
    }
}

/// Runs 35 days of 5-minute Poisson counts with a daily cycle between 20 %
/// and 100 % of `peak` events per window, plus 20 events more in each
/// window of `burst` (window numbers). Returns the alerts outside the burst
/// and its next 24 windows, and whether an alert fired within the burst.
fn sparse_count_alerts(params: &DetectionParams, peak: f64, seed: u64, burst: std::ops::Range<i64>) -> (usize, bool) {
    let five_minutes = 5 * 60 * 1000;
    let per_day = 288;
    let mut noise = Noise(seed);
    let mut detector = SeriesDetector::new(params, five_minutes);
    let (mut false_alerts, mut caught) = (0, false);
    for number in 0..35 * per_day {
        let phase = (number % per_day) as f64 / per_day as f64 * std::f64::consts::TAU;
        let mut value = poisson(peak * (0.6 + 0.4 * phase.sin()), &mut noise);
        if burst.contains(&number) {
            value += 20.0;
        }

        let evaluation = detector.observe(number * five_minutes, value).unwrap();
        if matches!(evaluation.transition, Some(Transition::Fired { .. })) {
            if burst.contains(&number) {
                caught = true;
            } else if !(burst.start..burst.end + 24).contains(&number) {
                false_alerts += 1;
            }
        }
    }
    (false_alerts, caught)
}

/// The defaults a `count` metric with `robust_band` gets, read through the
/// same function as the metrics file, so these tests follow them.
fn count_model() -> DetectionParams {
    let mut table = toml::Table::new();
    crate::config::apply_count_defaults(&mut table);
    toml::Value::Table(table).try_into().expect("count defaults are valid")
}

#[test]
fn count_model_is_the_count_defaults() {
    let params = count_model();

    assert_eq!(params.residual_scale, Some(ResidualScale::Sqrt));
    assert_eq!(params.level_adjustment, LevelAdjustment::Multiplicative);
    assert_eq!(params.reference_windows, 3);
    assert_eq!((params.fire_outside, params.fire_lookback), (2, 3));
    assert_eq!(params.fire_ratio, Some(1.4));
}

#[test]
fn sparse_counts_do_not_flap_with_count_model() {
    // Each series' MAD is 0 or near it. Before the scale floors of the
    // `sqrt` model these raised 490 to 650 alerts in 5 series × 35 days.
    // A burst of 20 extra events per window for 3 afternoon windows must
    // still fire.
    let burst = 30 * 288 + 150..30 * 288 + 153;
    for peak in [0.5, 2.0, 5.0] {
        let mut false_alerts = 0;
        for seed in 1..=5 {
            let (alerts, caught) = sparse_count_alerts(&count_model(), peak, seed, burst.clone());
            assert!(caught, "peak {peak}, seed {seed}: burst not caught");
            false_alerts += alerts;
        }
        // At most one false alert per 20 series-days.
        assert!(
            false_alerts <= 8,
            "peak {peak}: {false_alerts} false alerts in 175 series-days"
        );
    }
}

#[test]
fn daily_one_window_spike_becomes_normal() {
    // A job at 03:00 every day adds 400 events to one 30-minute window of
    // a count near 200. Averaged with its neighbours the spike would stay a
    // third of its size in the reference, and the neighbours would expect a
    // third of it, so every day would alert. Neighbours beyond the band's
    // half-width are left out of the mean instead.
    let mut detector = SeriesDetector::new(&count_model(), HALF_HOUR_MS);
    let mut noise = Noise(5);
    let mut alerts_after_day_3 = Vec::new();
    for number in 0..35 * WINDOWS_PER_DAY {
        let spike = if number % WINDOWS_PER_DAY == 6 { 400.0 } else { 0.0 };
        let value = (200.0 + 14.0 * noise.next()).round() + spike;

        let evaluation = detector.observe(number * HALF_HOUR_MS, value).unwrap();
        if number >= 3 * WINDOWS_PER_DAY && matches!(evaluation.transition, Some(Transition::Fired { .. })) {
            alerts_after_day_3.push(number);
        }
    }
    assert_eq!(alerts_after_day_3, Vec::<i64>::new());
}

const DAY_MS: i64 = 86_400_000;

/// What a daily-shape run saw: the days (from 0) with a firing, the local
/// hours of the firing windows, and the days of the windows learnt as a
/// new daily shape.
#[derive(Debug)]
struct DailyShapeRun {
    alert_days: Vec<i64>,
    alert_hours: Vec<i64>,
    learnt_days: Vec<i64>,
}

impl DailyShapeRun {
    /// Returns the days with a firing from `first` on.
    fn alert_days_from(&self, first: i64) -> Vec<i64> {
        self.alert_days.iter().copied().filter(|&day| day >= first).collect()
    }
}

/// Runs 42 days of a count near 200 on weekdays and 140 on weekends, with
/// `window_ms` windows from `first_ms`, a local midnight in UTC ms.
/// `offset_ms(t)` is local time − UTC at t, and `change(day, local hour,
/// count)` returns each window's value.
fn daily_shape_run(
    params: &DetectionParams,
    window_ms: i64,
    first_ms: i64,
    offset_ms: impl Fn(i64) -> i64,
    change: impl Fn(i64, i64, f64) -> f64,
) -> DailyShapeRun {
    let mut detector = SeriesDetector::new(params, window_ms);
    let mut noise = Noise(5);
    let mut run = DailyShapeRun {
        alert_days: Vec::new(),
        alert_hours: Vec::new(),
        learnt_days: Vec::new(),
    };
    for number in 0..42 * DAY_MS / window_ms {
        let start_ms = first_ms + number * window_ms;
        let local_ms = start_ms - first_ms + offset_ms(start_ms) - offset_ms(first_ms);
        let (day, hour) = (local_ms.div_euclid(DAY_MS), local_ms.rem_euclid(DAY_MS) / 3_600_000);
        let base = if day % 7 >= 5 { 140.0 } else { 200.0 };
        let value = change(day, hour, (base + 0.07 * base * noise.next()).round());

        let learnt = detector.recurrences_learnt();
        let evaluation = detector.observe(start_ms, value).unwrap();
        if matches!(evaluation.transition, Some(Transition::Fired { .. })) {
            run.alert_days.push(day);
            run.alert_hours.push(hour);
        }
        if detector.recurrences_learnt() > learnt {
            run.learnt_days.push(day);
        }
    }
    run
}

/// Returns a window's value from its day, local hour and unchanged count.
type ValueChange = fn(i64, i64, f64) -> f64;

/// Adds a new job's 400 events to each window from 03:00 to 04:00, every
/// day from day 15 on.
fn job_from_day_15(day: i64, hour: i64, value: f64) -> f64 {
    if day >= 15 && hour == 3 { value + 400.0 } else { value }
}

/// Returns each of `params` as given and with `weekly_reference = "hourly"`.
fn with_hourly_weekly(params: [DetectionParams; 2]) -> Vec<DetectionParams> {
    let hourly = params.clone().map(|params| DetectionParams {
        weekly_reference: WeeklyReference::Hourly,
        ..params
    });
    params.into_iter().chain(hourly).collect()
}

#[test]
fn hourly_reference_lookback_is_a_week() {
    let window_ms = 5 * 60 * 1000;
    let hourly = SeriesDetector::new(
        &DetectionParams {
            weekly_reference: WeeklyReference::Hourly,
            ..DetectionParams::default()
        },
        window_ms,
    );
    let window = SeriesDetector::new(&DetectionParams::default(), window_ms);

    assert_eq!(
        hourly.history_windows(),
        337,
        "the residual sample's reach, above a day"
    );
    assert!(hourly.lookback_windows() > 7 * 288, "{}", hourly.lookback_windows());
    assert_eq!(window.lookback_windows(), window.history_windows());
    assert!(window.history_windows() > 7 * 288);
}

#[test]
fn hourly_reference_survives_gaps() {
    // Gaps of one window, of more than the windows kept and of more than
    // the hour means kept, in a daily cycle of counts near 100.
    let window_ms = 5 * 60 * 1000;
    let per_day = calendar::DAY_MS / window_ms;
    for params in with_hourly_weekly([DetectionParams::default(), count_model()]).split_off(2) {
        let mut detector = SeriesDetector::new(&params, window_ms);
        let value =
            |number: i64| 100.0 + 50.0 * ((number % per_day) as f64 / per_day as f64 * std::f64::consts::TAU).sin();
        let gaps = [
            (9 * per_day, 1),
            (11 * per_day, 2 * per_day),
            (20 * per_day, 9 * per_day),
        ];
        let mut alerts = 0;
        let mut number = 0;
        while number < 40 * per_day {
            if let Some(&(_, skipped)) = gaps.iter().find(|&&(at, _)| at == number) {
                number += skipped;
            }
            let evaluation = detector.observe(number * window_ms, value(number)).unwrap();
            alerts += usize::from(matches!(evaluation.transition, Some(Transition::Fired { .. })));
            number += 1;
        }

        assert_eq!(alerts, 0, "{params:?}");
    }
}

#[test]
fn hourly_reference_follows_a_rebaseline() {
    // A daily cycle near 1000 that drops to half at noon on day 15 and
    // stays there. Once re-baselined, the hour means of the week before
    // the drop must follow, or the day a week later alerts.
    let window_ms = 5 * 60 * 1000;
    let per_day = calendar::DAY_MS / window_ms;
    let params = DetectionParams {
        weekly_reference: WeeklyReference::Hourly,
        ..DetectionParams::default()
    };
    let mut detector = SeriesDetector::new(&params, window_ms);
    let mut noise = Noise(7);
    let drop_at = 15 * per_day + per_day / 2;
    let mut fired = Vec::new();
    for number in 0..30 * per_day {
        let phase = (number % per_day) as f64 / per_day as f64 * std::f64::consts::TAU;
        let level = if number >= drop_at { 500.0 } else { 1000.0 };
        let value = level * (1.0 + 0.4 * phase.sin()) * (1.0 + 0.02 * noise.next());
        let evaluation = detector.observe(number * window_ms, value).unwrap();
        if let Some(Transition::Fired { .. }) = evaluation.transition {
            fired.push(number / per_day);
        }
    }

    assert_eq!(fired, vec![15], "days that fired");
}

#[test]
fn new_daily_job_learnt_in_four_days() {
    // The job starts after two weeks of history, so the week-old
    // reference has the old shape. Weekends are quieter, so a reference
    // rewritten with a weekday's value would alert on them.
    for window_ms in [HALF_HOUR_MS, 5 * 60 * 1000] {
        for params in with_hourly_weekly([DetectionParams::default(), count_model()]) {
            let run = daily_shape_run(&params, window_ms, 0, |_| 0, job_from_day_15);
            let case = format!("{window_ms} ms windows, {params:?}");

            // The first weekend may alert, judged against the day before.
            let alert_days: Vec<i64> = run.alert_days_from(14);
            assert_eq!(alert_days.first(), Some(&15), "{case}: {run:?}");
            assert!(alert_days.iter().all(|&day| day < 19), "{case}: {run:?}");
            assert!(!run.learnt_days.is_empty(), "{case}: {run:?}");
        }
    }
}

#[test]
fn job_from_saturday_keeps_weekend_level() {
    // Weekdays near 1000 and weekends near 300. The job starts on a
    // Saturday, so the rewritten Saturday and Sunday, no longer kept in
    // full with 5-minute windows, must keep the weekend level.
    let levels = |day: i64, hour: i64, value: f64| {
        let level = if day % 7 >= 5 {
            value * 300.0 / 140.0
        } else {
            value * 5.0
        };
        if day >= 19 && hour == 3 { level + 1000.0 } else { level }
    };
    for window_ms in [HALF_HOUR_MS, 5 * 60 * 1000] {
        for params in with_hourly_weekly([DetectionParams::default(), count_model()]) {
            let run = daily_shape_run(&params, window_ms, 0, |_| 0, levels);
            let case = format!("{window_ms} ms windows, {params:?}");

            assert!(!run.learnt_days.is_empty(), "{case}: {run:?}");
            assert!(run.alert_days.iter().all(|&day| day < 23), "{case}: {run:?}");
        }
    }
}

#[test]
fn count_drop_learnt_in_proportion() {
    // The windows from 03:00 to 04:00 fall to a tenth from day 15 on, on
    // weekdays and weekends alike.
    let drop = |day: i64, hour: i64, value: f64| {
        if day >= 15 && hour == 3 {
            (value / 10.0).round()
        } else {
            value
        }
    };
    for window_ms in [HALF_HOUR_MS, 5 * 60 * 1000] {
        let run = daily_shape_run(&count_model(), window_ms, 0, |_| 0, drop);

        assert!(!run.learnt_days.is_empty(), "{window_ms} ms windows: {run:?}");
        assert!(
            run.alert_days.iter().all(|&day| day < 19),
            "{window_ms} ms windows: {run:?}"
        );
    }
}

#[test]
fn learnt_windows_stay_anomalous_in_points() {
    let mut detector = SeriesDetector::new(&count_model(), HALF_HOUR_MS);
    let mut noise = Noise(5);
    let mut outside = std::collections::HashMap::new();
    for number in 0..19 * WINDOWS_PER_DAY {
        let (day, hour) = (number / WINDOWS_PER_DAY, number % WINDOWS_PER_DAY / 2);
        let value = job_from_day_15(day, hour, (200.0 + 14.0 * noise.next()).round());
        let evaluation = detector.observe(number * HALF_HOUR_MS, value).unwrap();
        outside.insert(number * HALF_HOUR_MS, evaluation.outside);
    }
    assert!(detector.recurrences_learnt() > 0);

    for point in detector.points().filter(|point| !point.reference_only) {
        assert_eq!(
            Some(&point.anomalous),
            outside.get(&point.window_start_ms),
            "window at {} ms",
            point.window_start_ms
        );
    }
}

#[test]
fn negative_daily_job_learnt() {
    // A gauge near 10 whose 03:00 window drops to about −40 every day
    // from day 15 on. The rewritten days must not stop at 0.
    let gauge = |day: i64, hour: i64, value: f64| {
        let level = value / 20.0;
        if day >= 15 && hour == 3 { level - 50.0 } else { level }
    };

    let run = daily_shape_run(&DetectionParams::default(), HALF_HOUR_MS, 0, |_| 0, gauge);

    assert!(!run.learnt_days.is_empty(), "{run:?}");
    assert!(run.alert_days.iter().all(|&day| day < 19), "{run:?}");
}

#[test]
fn ensemble_does_not_learn_daily_shapes() {
    let params = DetectionParams {
        method: MethodName::Ensemble,
        ensemble: EnsembleParams {
            methods: vec![MethodName::RobustBand, MethodName::Iqr],
            ..EnsembleParams::default()
        },
        ..DetectionParams::default()
    };

    let run = daily_shape_run(&params, HALF_HOUR_MS, 0, |_| 0, job_from_day_15);

    assert_eq!(run.learnt_days, Vec::<i64>::new(), "{run:?}");
}

#[test]
fn unlearnt_daily_job_alerts_for_weeks() {
    let params = DetectionParams {
        learn_daily_recurrence: false,
        ..count_model()
    };
    let run = daily_shape_run(&params, HALF_HOUR_MS, 0, |_| 0, job_from_day_15);

    assert_eq!(run.learnt_days, Vec::<i64>::new());
    assert!(run.alert_days.iter().any(|&day| day >= 22), "{run:?}");
}

#[test]
fn other_daily_changes_not_learnt() {
    let cases: [(&str, ValueChange); 8] = [
        (
            "a window that alternates between high and low",
            |day, hour, value| match (day >= 15, hour, day % 2) {
                (true, 3, 0) => value + 400.0,
                (true, 3, _) => value * 0.2,
                _ => value,
            },
        ),
        ("a 4-day holiday", |day, _, value| {
            if (15..19).contains(&day) { value * 0.5 } else { value }
        }),
        ("a 2-hour outage on 3 nights", |day, hour, value| {
            if (15..18).contains(&day) && (2..4).contains(&hour) {
                value * 0.2
            } else {
                value
            }
        }),
        // Windows outside at other times of the day, as in a series that
        // is outside here and there all day, stop the rule.
        ("a job at 03:00 and another at 15:00", |day, hour, value| {
            if day >= 15 && (hour == 3 || hour == 15) {
                value + 400.0
            } else {
                value
            }
        }),
        ("a job that runs on 3 days only", |day, hour, value| {
            if day < 18 {
                job_from_day_15(day, hour, value)
            } else {
                value
            }
        }),
        (
            "a level shift",
            |day, _, value| if day >= 15 { value * 1.6 } else { value },
        ),
        ("an outage every evening", |day, hour, value| {
            if day >= 15 && (18..24).contains(&hour) {
                value * 0.3
            } else {
                value
            }
        }),
        ("a daily job on a level shift", |day, hour, value| {
            let shifted = if day >= 15 { value * 1.6 } else { value };
            job_from_day_15(day, hour, shifted)
        }),
    ];
    // Also with re-baselining off, so that only the level offsets follow a
    // shift or a holiday.
    let without_rebaseline = DetectionParams {
        rebaseline_windows: 0,
        ..count_model()
    };
    for (name, change) in cases.iter().take(7) {
        for params in [DetectionParams::default(), count_model(), without_rebaseline.clone()] {
            let run = daily_shape_run(&params, HALF_HOUR_MS, 0, |_| 0, change);
            assert_eq!(run.learnt_days, Vec::<i64>::new(), "{name}, {params:?}: {run:?}");
        }
    }

    // The job is learnt once the shift is: each day of it is outside on the
    // same side, and the rest of the day is inside after the re-baseline.
    let (name, change) = cases[7];
    let run = daily_shape_run(&count_model(), HALF_HOUR_MS, 0, |_| 0, change);
    assert!(!run.learnt_days.is_empty(), "{name}: {run:?}");
}

#[test]
fn clock_change_week_not_learnt() {
    // Berlin, from 2026-03-01 00:00 local time. The job starts on day 26,
    // 2026-03-27, so its fourth day is the day after the change to summer
    // time on day 28.
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let offset_ms = move |utc_ms: i64| {
        use chrono::{Offset, TimeZone as _};
        let time = chrono::DateTime::from_timestamp_millis(utc_ms).unwrap();
        i64::from(
            berlin
                .offset_from_utc_datetime(&time.naive_utc())
                .fix()
                .local_minus_utc(),
        ) * 1000
    };
    let params = DetectionParams {
        time_zone: "Europe/Berlin".parse().unwrap(),
        ..count_model()
    };
    let first_ms = 1_772_319_600_000; // 2026-02-28T23:00Z
    let job = |day: i64, hour: i64, value: f64| if day >= 26 && hour == 3 { value + 400.0 } else { value };

    let run = daily_shape_run(&params, HALF_HOUR_MS, first_ms, offset_ms, job);

    // Nothing alerts but the job, which is learnt from day 36 on, 8 days
    // after the change on day 28.
    assert!(run.alert_hours.iter().all(|&hour| hour == 3), "{run:?}");
    assert_eq!(run.learnt_days.first(), Some(&36), "{run:?}");
}

/// Prints the days on which a new daily job alerts, with and without
/// learning it, the figures in docs/benchmarks.md:
/// `cargo test --release -p seismo-detector --lib daily_job_figures -- --ignored --nocapture`.
#[test]
#[ignore = "prints figures for the docs"]
fn daily_job_figures() {
    for window_ms in [HALF_HOUR_MS, 5 * 60 * 1000] {
        for (name, params) in [
            ("plain defaults", DetectionParams::default()),
            ("count defaults", count_model()),
        ] {
            for learn in [true, false] {
                let params = DetectionParams {
                    learn_daily_recurrence: learn,
                    ..params.clone()
                };
                let run = daily_shape_run(&params, window_ms, 0, |_| 0, job_from_day_15);
                let job_days: Vec<i64> = run.alert_days_from(14);
                println!(
                    "{} minute windows, {name}, learn_daily_recurrence = {learn}: alerts on days {job_days:?}",
                    window_ms / 60_000
                );
            }
        }
    }

    let stops = |day: i64, hour: i64, value: f64| {
        if day < 29 {
            job_from_day_15(day, hour, value)
        } else {
            value
        }
    };
    for learn in [true, false] {
        let params = DetectionParams {
            learn_daily_recurrence: learn,
            ..count_model()
        };
        let run = daily_shape_run(&params, HALF_HOUR_MS, 0, |_| 0, stops);
        let job_days: Vec<i64> = run.alert_days_from(14);
        println!(
            "30 minute windows, count defaults, a job on days 15 to 28, learn_daily_recurrence = {learn}: \
             alerts on days {job_days:?}"
        );
    }

    // Days 5 and 6 of each week are the weekend.
    let weekdays_only = |day: i64, hour: i64, value: f64| {
        if day % 7 < 5 {
            job_from_day_15(day, hour, value)
        } else {
            value
        }
    };
    for window_ms in [HALF_HOUR_MS, 5 * 60 * 1000] {
        for learn in [true, false] {
            let params = DetectionParams {
                learn_daily_recurrence: learn,
                ..count_model()
            };
            let run = daily_shape_run(&params, window_ms, 0, |_| 0, weekdays_only);
            let job_days: Vec<i64> = run.alert_days_from(14);
            println!(
                "{} minute windows, count defaults, a job on weekdays only, learn_daily_recurrence = {learn}: \
                 alerts on days {job_days:?}",
                window_ms / 60_000
            );
        }
    }
}

#[test]
fn long_windows_not_learnt() {
    // Two windows a day: one of them is half the day's shape.
    let params = DetectionParams {
        min_history_windows: 8,
        ..DetectionParams::default()
    };
    let half_day = |day: i64, hour: i64, value: f64| if day >= 15 && hour < 12 { value * 3.0 } else { value };

    let run = daily_shape_run(&params, DAY_MS / 2, 0, |_| 0, half_day);

    assert_eq!(run.learnt_days, Vec::<i64>::new(), "{run:?}");
}

#[test]
fn windows_not_dividing_a_day_not_learnt() {
    // 7-minute windows divide a week but not a day, so the day before is
    // not the same time of day.
    let run = daily_shape_run(&DetectionParams::default(), 7 * 60 * 1000, 0, |_| 0, job_from_day_15);

    assert_eq!(run.learnt_days, Vec::<i64>::new(), "{run:?}");
}

#[test]
fn jobs_up_to_three_hours_learnt() {
    let job_hours = |hours: i64| {
        move |day: i64, hour: i64, value: f64| {
            if day >= 15 && (3..3 + hours).contains(&hour) {
                value + 400.0
            } else {
                value
            }
        }
    };

    let three = daily_shape_run(&count_model(), HALF_HOUR_MS, 0, |_| 0, job_hours(3));
    let four = daily_shape_run(&count_model(), HALF_HOUR_MS, 0, |_| 0, job_hours(4));

    assert!(!three.learnt_days.is_empty(), "{three:?}");
    assert_eq!(four.learnt_days, Vec::<i64>::new(), "{four:?}");
}

#[test]
fn spike_after_learnt_job_not_learnt() {
    // The days that taught the job are spent afterwards, so a one-day
    // spike at the same time is no recurrence. A spike on day 22 reads a
    // spent day as its reference and must be stored clamped, or it would
    // become day 29's reference and alert then.
    for spike_day in [19, 22] {
        let spike = move |day: i64, hour: i64, value: f64| {
            let value = job_from_day_15(day, hour, value);
            if day == spike_day && hour == 3 {
                value + 800.0
            } else {
                value
            }
        };

        let run = daily_shape_run(&count_model(), HALF_HOUR_MS, 0, |_| 0, spike);

        assert_eq!(
            run.learnt_days.iter().max(),
            Some(&18),
            "spike on day {spike_day}: {run:?}"
        );
        let late_alerts: Vec<i64> = run.alert_days_from(spike_day + 1);
        assert_eq!(late_alerts, Vec::<i64>::new(), "spike on day {spike_day}: {run:?}");
    }
}

#[test]
fn dip_after_learnt_drop_not_learnt() {
    // A drop of the 03:00 windows to half is learnt on day 18; on day 19
    // they fall to 0. The spent days below the band are no evidence for
    // that dip.
    let dip = |day: i64, hour: i64, value: f64| match (day, hour) {
        (19, 3) => 0.0,
        (15.., 3) => (value / 2.0).round(),
        _ => value,
    };

    let run = daily_shape_run(&count_model(), HALF_HOUR_MS, 0, |_| 0, dip);

    assert_eq!(run.learnt_days.iter().max(), Some(&18), "{run:?}");
}

#[test]
fn negative_gauge_job_keeps_weekend_level() {
    // A gauge near 100 on weekdays and 40 at weekends, whose 03:00 windows
    // drop by 80 from day 15 on: below 0 at weekends.
    let gauge = |day: i64, hour: i64, value: f64| {
        let level = if day % 7 >= 5 {
            value * 40.0 / 140.0
        } else {
            value / 2.0
        };
        if day >= 15 && hour == 3 { level - 80.0 } else { level }
    };

    // Firing on 2 of 3 windows, because the job lasts 2 windows.
    let params = DetectionParams {
        fire_outside: 2,
        fire_lookback: 3,
        ..DetectionParams::default()
    };

    let run = daily_shape_run(&params, HALF_HOUR_MS, 0, |_| 0, gauge);

    // The first two Saturdays alert, judged against a Friday.
    let job_alerts: Vec<i64> = run.alert_days_from(14);
    assert!(!run.learnt_days.is_empty(), "{run:?}");
    assert!(job_alerts.iter().all(|&day| day < 19), "{run:?}");
}

/// Prints the false alerts of the plain defaults and the count model on
/// sparse counts, the figures in docs/benchmarks.md:
/// `cargo test --release -p seismo-detector --lib sparse_count_figures -- --ignored --nocapture`.
#[test]
#[ignore = "prints figures for the docs"]
fn sparse_count_figures() {
    for peak in [0.1, 0.5, 1.0, 2.0, 5.0, 30.0] {
        let alerts = |params: &DetectionParams| -> usize {
            (1..=5)
                .map(|seed| sparse_count_alerts(params, peak, seed, 0..0).0)
                .sum()
        };
        let without_tail_rule = DetectionParams {
            fire_tail_probability: 0.0,
            ..count_model()
        };
        println!(
            "peak {peak:>4} events: plain defaults {:>3}, count model {:>3}, \
             count model without the tail rule {:>3} alerts in 5 series x 35 days",
            alerts(&DetectionParams::default()),
            alerts(&count_model()),
            alerts(&without_tail_rule)
        );
    }
}
