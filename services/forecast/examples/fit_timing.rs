//! Times one MSTL + AutoETS fit and one full forecast (fit plus the two
//! calibration fits) on four weeks of synthetic hourly data.
//!
//! Run: `cargo run --release -p seismo-forecast --example fit_timing`

use std::time::{Duration, Instant};

use seismo_forecast::model::fit_predict;
use seismo_forecast::synthetic::SeasonalShape;
use seismo_forecast::{EventDates, ForecastOptions, Granularity, Series, forecast};

const RUNS: usize = 30;

fn main() {
    let values = SeasonalShape::hourly_traffic().generate(672, 1);
    let series = Series::new(
        "2026-01-05T00:00:00Z".parse().unwrap(),
        Granularity::Hour,
        values.clone(),
    );
    let options = ForecastOptions {
        horizon: 48,
        level: 0.95,
        event_dates: EventDates::default(),
    };

    let fit = median_time(|| {
        fit_predict(&values, &[24, 168], 48, 0.95).expect("the synthetic series fits");
    });
    let full = median_time(|| {
        forecast(&series, &options).expect("the synthetic series forecasts");
    });

    println!("672 hourly points, periods [24, 168], horizon 48, median of {RUNS} runs:");
    println!(
        "  one MSTL + AutoETS fit and prediction: {:.1} ms",
        fit.as_secs_f64() * 1e3
    );
    println!(
        "  forecast() with interval calibration:  {:.1} ms",
        full.as_secs_f64() * 1e3
    );
}

fn median_time(mut run: impl FnMut()) -> Duration {
    run(); // Warm-up.
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}
