//! Throughput of `SeriesDetector::observe` and memory per series.
//!
//! Run: `cargo bench -p seismo-detector --bench observe`. Prints one line per
//! case: updates per second on one core (one thread, after a warm-up of two
//! weeks of windows) and the bytes one series occupies once its history is
//! full. Plain `Instant` timing, no statistics: repeat runs to see the spread.

use std::hint::black_box;
use std::time::Instant;

use seismo_detector::detection::{DetectionParams, SeriesDetector};

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
}

/// Traffic-like values: a daily cycle with 5 % noise and a rare spike.
fn values(windows_per_day: i64, count: i64) -> Vec<f64> {
    let mut random = Lcg(42);
    (0..count)
        .map(|i| {
            let phase = (i % windows_per_day) as f64 / windows_per_day as f64 * std::f64::consts::TAU;
            let spike = if random.unit() < 0.001 { 3.0 } else { 1.0 };
            (1000.0 + 500.0 * phase.sin()) * (1.0 + 0.05 * (random.unit() - 0.5)) * spike
        })
        .collect()
}

fn bench(name: &str, window_minutes: i64, series_count: usize) {
    let window_ms = window_minutes * 60_000;
    let windows_per_day = 24 * 60 / window_minutes;
    let warm_up = 14 * windows_per_day;
    let measured = 4 * windows_per_day;
    let values = values(windows_per_day, warm_up + measured);

    let params = DetectionParams::default();
    let mut detectors: Vec<SeriesDetector> = (0..series_count)
        .map(|_| SeriesDetector::new(&params, window_ms))
        .collect();
    for (i, &value) in values[..warm_up as usize].iter().enumerate() {
        for detector in &mut detectors {
            black_box(detector.observe(i as i64 * window_ms, value));
        }
    }

    // Round-robin over the series, as the service closes one window of every
    // series in turn.
    let started = Instant::now();
    for i in warm_up..warm_up + measured {
        let value = values[i as usize];
        for detector in &mut detectors {
            black_box(detector.observe(i * window_ms, value));
        }
    }
    let elapsed = started.elapsed();

    let updates = measured as f64 * series_count as f64;
    let bytes = detectors[0].memory_bytes();
    println!(
        "{name}: {:.2} M updates/s ({:.0} ns/update), {} bytes per series ({} windows kept)",
        updates / elapsed.as_secs_f64() / 1e6,
        elapsed.as_nanos() as f64 / updates,
        bytes,
        detectors[0].history_windows()
    );
}

fn main() {
    bench("30-minute windows, 1 series", 30, 1);
    bench("30-minute windows, 1000 series", 30, 1_000);
    bench("5-minute windows, 1 series", 5, 1);
    bench("5-minute windows, 1000 series", 5, 1_000);
}
