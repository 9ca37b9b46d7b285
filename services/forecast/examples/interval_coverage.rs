//! Measures how often held-out values fall inside the forecast interval,
//! with and without the conformal calibration, on synthetic hourly series
//! (four weeks of history, ten noise draws per row).
//!
//! Run: `cargo run --release -p seismo-forecast --example interval_coverage`

use seismo_forecast::model::fit_predict;
use seismo_forecast::synthetic::SeasonalShape;
use seismo_forecast::{EventDates, ForecastOptions, Granularity, Series, forecast};

const HISTORY: usize = 672;
const SEEDS: u64 = 10;

fn main() {
    let shape = SeasonalShape::hourly_traffic();
    println!("level  horizon  uncalibrated  calibrated");
    for level in [0.5, 0.8, 0.95] {
        for horizon in [24, 168] {
            let mut raw_inside = 0;
            let mut calibrated_inside = 0;
            let mut total = 0;
            for seed in 0..SEEDS {
                let values = shape.generate(HISTORY + horizon, seed);
                let history = &values[..HISTORY];
                let held_out = &values[HISTORY..];

                let raw = fit_predict(history, &[24, 168], horizon, level).expect("the synthetic series fits");
                let series = Series::new(
                    "2026-01-05T00:00:00Z".parse().unwrap(),
                    Granularity::Hour,
                    history.to_vec(),
                );
                let options = ForecastOptions {
                    horizon,
                    level,
                    event_dates: EventDates::default(),
                };
                let calibrated = forecast(&series, &options).expect("the synthetic series forecasts");

                for (step, &actual) in held_out.iter().enumerate() {
                    total += 1;
                    if raw.lower[step] <= actual && actual <= raw.upper[step] {
                        raw_inside += 1;
                    }
                    let calibrated_step = &calibrated.steps[step];
                    if calibrated_step.lower <= actual && actual <= calibrated_step.upper {
                        calibrated_inside += 1;
                    }
                }
            }
            println!(
                "{level:<5}  {horizon:>7}  {:>12.3}  {:>10.3}",
                raw_inside as f64 / total as f64,
                calibrated_inside as f64 / total as f64
            );
        }
    }
}
