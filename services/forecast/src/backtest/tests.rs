use super::*;
use crate::Granularity;
use crate::synthetic::SeasonalShape;

fn options(origins: Origins, window: usize) -> BacktestOptions {
    BacktestOptions {
        horizon: 24,
        step: 24,
        window,
        origins,
        level: 0.95,
        event_dates: EventDates::default(),
    }
}

fn hourly_series(len: usize, seed: u64) -> Series {
    let values = SeasonalShape::hourly_traffic().generate(len, seed);
    Series::new("2026-01-05T00:00:00Z".parse().unwrap(), Granularity::Hour, values)
}

#[test]
fn mstl_beats_seasonal_naive_with_trend_and_noise() {
    let series = hourly_series(672, 4);

    for origins in [Origins::Rolling, Origins::Expanding] {
        let report = backtest(&series, &options(origins, 504)).unwrap();

        assert_eq!(report.folds, 7, "{origins}");
        assert_eq!(report.model.count, 7 * 24);
        assert!(report.model.mae < report.baseline.mae, "{origins}: {report:?}");
        assert!(report.model.rmse < report.baseline.rmse, "{origins}: {report:?}");
        assert!(
            report.model.wmape.unwrap() < report.baseline.wmape.unwrap(),
            "{origins}: {report:?}"
        );
        assert_eq!(report.baseline_period, 168);
        assert!(
            report.interval_coverage >= 0.85,
            "{origins}: coverage {}",
            report.interval_coverage
        );
    }
}

#[test]
fn origins_count_follows_step() {
    let series = hourly_series(400, 5);
    let mut settings = options(Origins::Rolling, 336);
    settings.horizon = 10;
    settings.step = 20;

    let report = backtest(&series, &settings).unwrap();

    // Origins 336, 356, 376; 396 + 10 > 400.
    assert_eq!(report.folds, 3);
    assert_eq!(report.model.count, 30);
}

#[test]
fn rolling_and_expanding_differ_after_first_origin() {
    let series = hourly_series(600, 6);

    let rolling = backtest(&series, &options(Origins::Rolling, 336)).unwrap();
    let expanding = backtest(&series, &options(Origins::Expanding, 336)).unwrap();

    assert_eq!(rolling.folds, expanding.folds);
    assert_ne!(rolling.model, expanding.model);
    // Both baselines repeat the same last week before each origin.
    assert_eq!(rolling.baseline, expanding.baseline);
}

#[test]
fn window_too_long_is_rejected() {
    let series = hourly_series(100, 7);

    let error = backtest(&series, &options(Origins::Rolling, 90)).unwrap_err();

    assert_eq!(
        error,
        ForecastError::NoBacktestOrigin {
            window: 90,
            horizon: 24,
            points: 100
        }
    );
}

#[test]
fn zero_step_is_rejected() {
    let series = hourly_series(400, 8);
    let mut settings = options(Origins::Rolling, 336);
    settings.step = 0;

    assert_eq!(backtest(&series, &settings).unwrap_err(), ForecastError::InvalidStep(0));
}
