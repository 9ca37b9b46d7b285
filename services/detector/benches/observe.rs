//! Cost of one window update plus scoring per series, for each detection
//! method, and the memory one series occupies.
//!
//! Run: `cargo bench -p seismo-detector --bench observe`. Each benchmark
//! feeds the next window of a traffic-like series (a daily cycle with 5 %
//! noise and rare spikes) to one warmed-up `SeriesDetector`, so a forecast's
//! refits are amortised over the windows between them.
//! `robust_band_count_model` is the default method with the count noise
//! model (`residual_scale = "sqrt"`, `level_adjustment =
//! "multiplicative"`, `reference_windows = 3`), and `robust_band_hourly` the
//! default method with `weekly_reference = "hourly"`. Before the benchmarks
//! it prints the bytes per series of each method once its history is full.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use seismo_detector::detection::{
    DetectionParams, EnsembleParams, LevelAdjustment, MethodName, ResidualScale, SeriesDetector, WeeklyReference,
};

/// Traffic-like value of window `number`: a daily cycle with 5 % noise and
/// a spike in about one window of 1000, from a hash of the number so any
/// window can be generated on its own.
fn value(number: i64, windows_per_day: i64) -> f64 {
    let hash = (number as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let unit = (hash >> 11) as f64 / (1u64 << 53) as f64;
    let phase = (number % windows_per_day) as f64 / windows_per_day as f64 * std::f64::consts::TAU;
    let spike = if unit < 0.001 { 3.0 } else { 1.0 };
    (1000.0 + 500.0 * phase.sin()) * (1.0 + 0.05 * (unit - 0.5)) * spike
}

fn params(method: MethodName) -> DetectionParams {
    DetectionParams {
        method,
        ensemble: EnsembleParams {
            methods: vec![MethodName::RobustBand, MethodName::PercentChange],
            ..EnsembleParams::default()
        },
        ..DetectionParams::default()
    }
}

/// Returns the robust band's parameters with the count noise model:
/// square-root residuals, a multiplicative level adjustment and a
/// reference averaged over 3 windows.
fn count_params() -> DetectionParams {
    DetectionParams {
        residual_scale: Some(ResidualScale::Sqrt),
        level_adjustment: LevelAdjustment::Multiplicative,
        reference_windows: 3,
        ..DetectionParams::default()
    }
}

/// Returns the default method's parameters with a weekly reference by the
/// hour, which keeps hourly means in place of a week of windows.
fn hourly_params() -> DetectionParams {
    DetectionParams {
        weekly_reference: WeeklyReference::Hourly,
        ..DetectionParams::default()
    }
}

/// Returns a detector with `params` fed `days` days of windows, and the
/// next window number.
fn warmed_up(params: &DetectionParams, window_minutes: i64, days: i64) -> (SeriesDetector, i64) {
    let window_ms = window_minutes * 60_000;
    let windows_per_day = 24 * 60 / window_minutes;
    let mut detector = SeriesDetector::new(params, window_ms);
    let windows = days * windows_per_day;
    for number in 0..windows {
        detector.observe(number * window_ms, value(number, windows_per_day));
    }
    (detector, windows)
}

fn print_memory() {
    for window_minutes in [30, 5] {
        for method in MethodName::ALL {
            // Fifteen days fill every method's history. The longest is the
            // forecast's 672 windows, 14 days of 30-minute windows.
            let (detector, _) = warmed_up(&params(method), window_minutes, 15);
            eprintln!(
                "memory: {window_minutes}-minute windows, {method}: {} bytes per series ({} windows kept)",
                detector.memory_bytes(),
                detector.history_windows()
            );
        }
        let (detector, _) = warmed_up(&hourly_params(), window_minutes, 15);
        eprintln!(
            "memory: {window_minutes}-minute windows, robust_band_hourly: {} bytes per series ({} windows kept)",
            detector.memory_bytes(),
            detector.history_windows()
        );
    }
}

fn observe(criterion: &mut Criterion) {
    print_memory();

    for window_minutes in [30, 5] {
        let mut group = criterion.benchmark_group(format!("observe_{window_minutes}m"));
        let window_ms = window_minutes * 60_000;
        let windows_per_day = 24 * 60 / window_minutes;
        for method in MethodName::ALL {
            if method == MethodName::Forecast {
                // A refit takes tens of milliseconds, so fewer samples.
                group.sample_size(10).measurement_time(Duration::from_secs(20));
            } else {
                group.sample_size(50).measurement_time(Duration::from_secs(3));
            }
            let (mut detector, mut number) = warmed_up(&params(method), window_minutes, 15);
            group.bench_function(method.as_str(), |bencher| {
                bencher.iter(|| {
                    let evaluation = detector.observe(number * window_ms, value(number, windows_per_day));
                    number += 1;
                    black_box(evaluation)
                })
            });
        }

        group.sample_size(50).measurement_time(Duration::from_secs(3));
        for (name, params) in [
            ("robust_band_count_model", count_params()),
            ("robust_band_hourly", hourly_params()),
        ] {
            let (mut detector, mut number) = warmed_up(&params, window_minutes, 15);
            group.bench_function(name, |bencher| {
                bencher.iter(|| {
                    let evaluation = detector.observe(number * window_ms, value(number, windows_per_day));
                    number += 1;
                    black_box(evaluation)
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, observe);
criterion_main!(benches);
