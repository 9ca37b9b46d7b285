use chrono::NaiveDate;

use super::*;
use crate::synthetic::SeasonalShape;

fn hourly(values: Vec<f64>) -> Series {
    Series::new("2026-01-05T00:00:00Z".parse().unwrap(), Granularity::Hour, values)
}

fn options(horizon: usize, level: f64) -> ForecastOptions {
    ForecastOptions {
        horizon,
        level,
        event_dates: EventDates::default(),
    }
}

#[test]
fn interval_covers_about_its_level() {
    // Four weeks of history, one week held out, five noise draws: 840
    // held-out points per level.
    let shape = SeasonalShape::hourly_traffic();
    for level in [0.8, 0.95] {
        let mut inside = 0;
        let mut total = 0;
        for seed in 0..5 {
            let values = shape.generate(672 + 168, seed);
            let series = hourly(values[..672].to_vec());

            let result = forecast(&series, &options(168, level)).unwrap();

            for (step, actual) in result.steps.iter().zip(&values[672..]) {
                total += 1;
                if step.lower <= *actual && *actual <= step.upper {
                    inside += 1;
                }
            }
        }
        let coverage = inside as f64 / total as f64;
        assert!(
            (level - 0.1..=(level + 0.1).min(0.995)).contains(&coverage),
            "level {level}: coverage {coverage}"
        );
    }
}

#[test]
fn forecast_uses_daily_and_weekly_periods() {
    let series = hourly(SeasonalShape::hourly_traffic().generate(672, 1));

    let result = forecast(&series, &options(48, 0.95)).unwrap();

    assert_eq!(result.periods, vec![24, 168]);
    assert_eq!(result.steps.len(), 48);
    assert_eq!(result.steps[0].time, series.end());
    assert_eq!(result.steps[47].time, series.time_at(672 + 47));
    assert!(
        result
            .steps
            .iter()
            .all(|step| step.lower <= step.point && step.point <= step.upper)
    );
}

#[test]
fn point_forecast_follows_the_pattern() {
    let shape = SeasonalShape::hourly_traffic();
    let series = hourly(shape.generate(672, 2));

    let result = forecast(&series, &options(24, 0.95)).unwrap();

    for (offset, step) in result.steps.iter().enumerate() {
        let expected = shape.expected(672 + offset);
        assert!(
            (step.point - expected).abs() < 4.0 * shape.noise,
            "step {offset}: {} vs {expected}",
            step.point
        );
    }
}

#[test]
fn short_history_is_rejected() {
    let series = hourly(vec![1.0; 47]);

    let error = forecast(&series, &options(24, 0.95)).unwrap_err();

    assert_eq!(
        error,
        ForecastError::NotEnoughHistory {
            points: 47,
            needed: 48,
            period: 24
        }
    );
}

#[test]
fn invalid_request_is_rejected() {
    let series = hourly(vec![1.0; 100]);

    assert_eq!(
        forecast(&series, &options(0, 0.95)).unwrap_err(),
        ForecastError::InvalidHorizon(0)
    );
    assert_eq!(
        forecast(&series, &options(1, 1.0)).unwrap_err(),
        ForecastError::InvalidLevel(1.0)
    );
    let mut with_nan = series.clone();
    with_nan.values[3] = f64::NAN;
    assert!(matches!(
        forecast(&with_nan, &options(1, 0.9)).unwrap_err(),
        ForecastError::NonFiniteValue { index: 3, .. }
    ));
}

#[test]
fn holidays_are_masked_and_their_effect_applied() {
    // Ten weeks of a daily series with a weekly cycle. Four past holidays
    // run at 40 % of an ordinary day, and one holiday lies in the horizon.
    let shape = SeasonalShape {
        level: 1000.0,
        slope: 0.0,
        seasons: vec![(7, 200.0)],
        noise: 10.0,
    };
    let start = "2026-01-05T00:00:00Z".parse().unwrap();
    let holiday_days = [15, 29, 40, 55];
    let mut values = shape.generate(70, 3);
    for &day in &holiday_days {
        values[day] *= 0.4;
    }
    let series = Series::new(start, Granularity::Day, values);
    let future_holiday = 72;
    let day = |index: usize| (series.time_at(index)).date_naive();
    let dates: Vec<NaiveDate> = holiday_days
        .iter()
        .chain(&[future_holiday])
        .map(|&index| day(index))
        .collect();
    let with_flags = ForecastOptions {
        horizon: 7,
        level: 0.95,
        event_dates: EventDates::new(dates),
    };

    let result = forecast(&series, &with_flags).unwrap();
    let plain = forecast(&series, &options(7, 0.95)).unwrap();

    assert_eq!(result.masked_points, 4);
    let effect = result.event_effect.unwrap();
    assert!((effect - 0.4).abs() < 0.05, "effect {effect}");
    let holiday_step = &result.steps[future_holiday - 70];
    assert!(holiday_step.flagged);
    let ordinary = shape.expected(future_holiday);
    assert!(
        (holiday_step.point - 0.4 * ordinary).abs() < 0.1 * ordinary,
        "{holiday_step:?}"
    );
    // Masking keeps the holiday dips out of the ordinary days' forecast,
    // while the unmasked fit is pulled down on the holidays' weekdays.
    let masked_error: f64 = result
        .steps
        .iter()
        .enumerate()
        .filter(|(_, step)| !step.flagged)
        .map(|(offset, step)| (step.point - shape.expected(70 + offset)).abs())
        .sum();
    let plain_error: f64 = plain
        .steps
        .iter()
        .enumerate()
        .filter(|(offset, _)| 70 + offset != future_holiday)
        .map(|(offset, step)| (step.point - shape.expected(70 + offset)).abs())
        .sum();
    assert!(
        masked_error < plain_error,
        "masked {masked_error} vs plain {plain_error}"
    );
}
