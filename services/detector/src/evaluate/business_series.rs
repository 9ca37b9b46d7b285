//! Deterministic synthetic business metrics with labelled anomalies: orders
//! per window (30 minutes unless set) with daily and weekly seasonality,
//! trend and noise, and one kind of anomaly per series.
//!
//! Late events need no series here: the detector receives one value per
//! closed window, and lateness only decides which events that value includes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use statrs::distribution::{DiscreteCDF, Poisson};

/// Default window length of the synthetic series, in ms (30 minutes).
pub const DEFAULT_WINDOW_MS: i64 = 30 * 60 * 1000;

/// Orders per 30-minute window at the weekly mean, before seasonality.
pub const DEFAULT_LEVEL_PER_30_MINUTES: f64 = 500.0;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// 2026-02-23 00:00 UTC, a Monday. Six weeks later the series ends on
/// 2026-04-06, after the EU's spring clock change of 2026-03-29.
const START_MS: i64 = 1_771_804_800_000;

/// Six weeks, in hours.
const SERIES_HOURS: usize = 42 * 24;

/// One generated series with its labelled anomalies.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSeries {
    pub name: &'static str,
    pub description: &'static str,
    /// IANA name of the time zone whose wall clock drives the cycles, as a
    /// metric's `time_zone` setting would name it.
    pub time_zone: &'static str,
    /// Start of the first window, Unix epoch ms.
    pub start_ms: i64,
    /// Window length, ms.
    pub window_ms: i64,
    /// One value per window, from `start_ms` on.
    pub values: Vec<f64>,
    /// Labelled anomalies as inclusive window index ranges, sorted.
    pub anomalies: Vec<(usize, usize)>,
}

/// Time zone whose wall clock drives the daily and weekly cycles.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    Utc,
    /// Europe/Berlin: UTC+1, UTC+2 from the last Sunday of March 01:00 UTC
    /// (the EU rule; 2026-03-29 in these series, which end before October).
    Berlin,
}

/// Berlin's clock change of 2026-03-29 01:00 UTC, Unix epoch ms.
const BERLIN_SUMMER_TIME_MS: i64 = 1_774_746_000_000;

impl Zone {
    fn name(self) -> &'static str {
        match self {
            Zone::Utc => "UTC",
            Zone::Berlin => "Europe/Berlin",
        }
    }

    fn offset_ms(self, utc_ms: i64) -> i64 {
        match self {
            Zone::Utc => 0,
            Zone::Berlin if utc_ms >= BERLIN_SUMMER_TIME_MS => 2 * HOUR_MS,
            Zone::Berlin => HOUR_MS,
        }
    }
}

/// Shape of a series before its anomaly.
#[derive(Debug, Clone, Copy)]
struct Shape {
    zone: Zone,
    /// Orders per window at the weekly mean, before seasonality.
    level: f64,
    /// Relative growth per week.
    trend_per_week: f64,
    /// Standard deviation of the multiplicative noise.
    noise: f64,
}

const BASE_SHAPE: Shape = Shape {
    zone: Zone::Utc,
    level: DEFAULT_LEVEL_PER_30_MINUTES,
    trend_per_week: 0.01,
    noise: 0.04,
};

/// Anomalies applied to a series as factors on its values, placed in
/// hours from the series' start, so they cover the same time at any
/// window length.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// `factor` on `hours` hours from hour `at`, all labelled.
    Burst { at: usize, hours: usize, factor: f64 },
    /// `factor` on every window from hour `at` on; the first `labelled`
    /// hours are the anomaly, the rest the new normal.
    LevelShift { at: usize, labelled: usize, factor: f64 },
}

/// Options for drawing the suite's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuiteOptions {
    /// Orders per window at the weekly mean, before seasonality and trend.
    pub level: f64,
    /// Whether each window's value is a Poisson count with the generated
    /// value as its mean, anomalies included, so the series has at least the
    /// noise of counted events.
    pub poisson: bool,
    /// Window length in ms: a whole number of minutes that divides an
    /// hour (see [`SuiteOptions::validate`]).
    pub window_ms: i64,
}

impl SuiteOptions {
    /// Checks that the window length is a whole number of minutes that
    /// divides an hour, because every anomaly starts and ends on a whole
    /// hour. The error gives the reason and valid lengths, without the value.
    pub fn validate(&self) -> Result<(), String> {
        let minute_ms = 60_000;
        let whole_minutes = self.window_ms >= minute_ms && self.window_ms % minute_ms == 0;
        if !whole_minutes || HOUR_MS % self.window_ms != 0 {
            return Err(
                "the suite's anomalies start and end on whole hours, so give a whole number of \
                 minutes that divides an hour, e.g. 5m, 10m, 15m, 30m or 1h"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// Windows in a day.
    pub fn windows_per_day(&self) -> usize {
        (DAY_MS / self.window_ms) as usize
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            level: BASE_SHAPE.level,
            poisson: false,
            window_ms: DEFAULT_WINDOW_MS,
        }
    }
}

/// Generates the suite with the default options. The same seed gives the
/// same series.
pub fn generate_suite(seed: u64) -> Vec<SyntheticSeries> {
    generate_suite_with(seed, &SuiteOptions::default())
}

/// Generates the suite with `options`. The same seed and options give the
/// same series.
///
/// # Panics
/// If `options` fails [`SuiteOptions::validate`].
pub fn generate_suite_with(seed: u64, options: &SuiteOptions) -> Vec<SyntheticSeries> {
    if let Err(problem) = options.validate() {
        panic!("invalid window of {} ms: {problem}", options.window_ms);
    }
    let day = |day: usize, hour: usize| day * 24 + hour;
    let specs: [(&'static str, &'static str, Shape, usize, Vec<Effect>); 7] = [
        (
            "spikes",
            "three 1-hour spikes of +80 %",
            BASE_SHAPE,
            SERIES_HOURS,
            vec![
                Effect::Burst {
                    at: day(22, 14),
                    hours: 1,
                    factor: 1.8,
                },
                Effect::Burst {
                    at: day(29, 10),
                    hours: 1,
                    factor: 1.8,
                },
                Effect::Burst {
                    at: day(36, 20),
                    hours: 1,
                    factor: 1.8,
                },
            ],
        ),
        (
            "dips",
            "three 2-hour dips of -50 %",
            BASE_SHAPE,
            SERIES_HOURS,
            vec![
                Effect::Burst {
                    at: day(23, 11),
                    hours: 2,
                    factor: 0.5,
                },
                Effect::Burst {
                    at: day(30, 16),
                    hours: 2,
                    factor: 0.5,
                },
                Effect::Burst {
                    at: day(37, 3),
                    hours: 2,
                    factor: 0.5,
                },
            ],
        ),
        (
            "level_shift",
            "a lasting drop of -35 %, the first day labelled",
            BASE_SHAPE,
            SERIES_HOURS,
            vec![Effect::LevelShift {
                at: day(30, 12),
                labelled: 24,
                factor: 0.65,
            }],
        ),
        (
            "trend_noise",
            "+5 %/week trend, 8 % noise, one 3-hour dip of -60 %",
            Shape {
                trend_per_week: 0.05,
                noise: 0.08,
                ..BASE_SHAPE
            },
            SERIES_HOURS,
            vec![Effect::Burst {
                at: day(33, 9),
                hours: 3,
                factor: 0.4,
            }],
        ),
        (
            "holiday",
            "a public holiday at -55 % for a whole day",
            BASE_SHAPE,
            SERIES_HOURS,
            vec![Effect::Burst {
                at: day(31, 0),
                hours: 24,
                factor: 0.45,
            }],
        ),
        (
            "dst_change",
            "Berlin wall-clock cycles across the 2026-03-29 clock change, one spike of +80 % after it",
            Shape {
                zone: Zone::Berlin,
                ..BASE_SHAPE
            },
            SERIES_HOURS,
            vec![Effect::Burst {
                at: day(38, 10),
                hours: 1,
                factor: 1.8,
            }],
        ),
        (
            "new_metric",
            "four days of history, one spike of +100 % on the fourth",
            BASE_SHAPE,
            4 * 24,
            vec![Effect::Burst {
                at: day(3, 15),
                hours: 1,
                factor: 2.0,
            }],
        ),
    ];

    specs
        .into_iter()
        .enumerate()
        .map(|(index, (name, description, shape, hours, effects))| {
            // A series' own seed keeps it unchanged when others are added.
            let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000).wrapping_add(index as u64));
            let shape = Shape {
                level: options.level,
                ..shape
            };
            let mut series = generate(name, description, shape, hours, &effects, options.window_ms, &mut rng);
            if options.poisson {
                for value in &mut series.values {
                    *value = poisson_draw(*value, &mut rng);
                }
            }
            series
        })
        .collect()
}

fn generate(
    name: &'static str,
    description: &'static str,
    shape: Shape,
    hours: usize,
    effects: &[Effect],
    window_ms: i64,
    rng: &mut StdRng,
) -> SyntheticSeries {
    let windows_per_hour = (HOUR_MS / window_ms) as usize;
    let windows = hours * windows_per_hour;
    let mut values = Vec::with_capacity(windows);
    for window in 0..windows {
        let time_ms = START_MS + window as i64 * window_ms;
        let noise = 1.0 + shape.noise * standard_normal(rng);
        values.push(expected_value(shape, time_ms) * noise.max(0.0));
    }

    let mut anomalies = Vec::new();
    for effect in effects {
        let (at, affected, labelled, factor) = match *effect {
            Effect::Burst { at, hours, factor } => (at, hours, hours, factor),
            Effect::LevelShift { at, labelled, factor } => (at, hours.saturating_sub(at), labelled, factor),
        };
        let (at, affected, labelled) = (
            at * windows_per_hour,
            affected * windows_per_hour,
            labelled * windows_per_hour,
        );
        for value in values.iter_mut().skip(at).take(affected) {
            *value *= factor;
        }
        anomalies.push((at, at + labelled - 1));
    }
    anomalies.sort_unstable();

    SyntheticSeries {
        name,
        description,
        time_zone: shape.zone.name(),
        start_ms: START_MS,
        window_ms,
        values,
        anomalies,
    }
}

/// Mean orders of the window starting at `time_ms`: peak in the local
/// afternoon, trough at night, quieter weekends, and the trend.
fn expected_value(shape: Shape, time_ms: i64) -> f64 {
    let local_ms = time_ms + shape.zone.offset_ms(time_ms);
    let hour = local_ms.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
    // 1970-01-01 was a Thursday, so day 0 maps to weekday index 3 (Monday 0).
    let weekday = (local_ms.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize;

    let daily = 1.0 + 0.6 * (std::f64::consts::TAU * (hour - 8.0) / 24.0).sin();
    let weekly = [1.0, 1.0, 1.0, 1.0, 1.05, 0.8, 0.75][weekday];
    let weeks = (time_ms - START_MS) as f64 / (7 * DAY_MS) as f64;
    shape.level * daily * weekly * (1.0 + shape.trend_per_week * weeks)
}

/// Mean above which a Poisson count is drawn from its normal approximation:
/// the skewness, 1/√mean, is then below 0.01, and the CDF inversion takes
/// seconds per series.
const POISSON_NORMAL_ABOVE: f64 = 10_000.0;

/// Draws a Poisson count with mean `mean`: by inverting its CDF at a
/// uniform draw, or for a mean above [`POISSON_NORMAL_ABOVE`] from the
/// normal distribution with the same mean and variance, rounded.
fn poisson_draw(mean: f64, rng: &mut StdRng) -> f64 {
    if mean > POISSON_NORMAL_ABOVE {
        return (mean + mean.sqrt() * standard_normal(rng)).round().max(0.0);
    }
    let Ok(poisson) = Poisson::new(mean) else {
        // Only a mean of 0 gets here: the generated values are finite and
        // not negative.
        return 0.0;
    };
    let uniform: f64 = rng.random();
    poisson.inverse_cdf(uniform) as f64
}

/// Draws from N(0, 1) by the Box-Muller transform.
fn standard_normal(rng: &mut StdRng) -> f64 {
    let uniform: f64 = 1.0 - rng.random::<f64>();
    let angle: f64 = rng.random::<f64>() * std::f64::consts::TAU;
    (-2.0 * uniform.ln()).sqrt() * angle.cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_scales_every_value() {
        let base = generate_suite(4);
        let small = generate_suite_with(
            4,
            &SuiteOptions {
                level: 50.0,
                ..SuiteOptions::default()
            },
        );

        for (base, small) in base.iter().zip(&small) {
            assert_eq!(base.anomalies, small.anomalies, "{}", base.name);
            for (big, little) in base.values.iter().zip(&small.values) {
                assert!((big / 10.0 - little).abs() < 1e-9, "{}: {big} and {little}", base.name);
            }
        }
    }

    #[test]
    fn shorter_windows_cover_the_same_hours() {
        let half_hours = generate_suite(4);
        let options = SuiteOptions {
            window_ms: 5 * 60_000,
            ..SuiteOptions::default()
        };
        let five_minutes = generate_suite_with(4, &options);

        for (half_hours, five_minutes) in half_hours.iter().zip(&five_minutes) {
            assert_eq!(five_minutes.window_ms, 5 * 60_000);
            assert_eq!(
                five_minutes.values.len(),
                6 * half_hours.values.len(),
                "{}",
                half_hours.name
            );
            let scaled: Vec<(usize, usize)> = half_hours
                .anomalies
                .iter()
                .map(|&(start, end)| (6 * start, 6 * end + 5))
                .collect();
            assert_eq!(five_minutes.anomalies, scaled, "{}", half_hours.name);
        }
    }

    #[test]
    fn window_must_divide_an_hour() {
        // 5 ms is a typo for 5m that would ask for gigabytes of windows.
        for window_ms in [7 * 60_000, 2 * 3_600_000, 0, -60_000, 90_000, 30_000, 5] {
            let options = SuiteOptions {
                window_ms,
                ..SuiteOptions::default()
            };
            let problem = options.validate().unwrap_err();
            assert!(
                problem.contains("whole number of minutes that divides an hour"),
                "{problem}"
            );
        }
        for minutes in [1, 5, 10, 15, 30, 60] {
            let options = SuiteOptions {
                window_ms: minutes * 60_000,
                ..SuiteOptions::default()
            };
            assert_eq!(options.validate(), Ok(()), "{minutes} minutes");
        }
    }

    #[test]
    fn poisson_counts_keep_the_mean() {
        let options = SuiteOptions {
            level: 40.0,
            poisson: true,
            ..SuiteOptions::default()
        };
        let counted = generate_suite_with(4, &options);
        let smooth = generate_suite_with(
            4,
            &SuiteOptions {
                poisson: false,
                ..options
            },
        );

        for (counted, smooth) in counted.iter().zip(&smooth) {
            assert!(
                counted.values.iter().all(|value| value.fract() == 0.0 && *value >= 0.0),
                "{}: values are not counts",
                counted.name
            );
            let sum = |values: &[f64]| values.iter().sum::<f64>();
            let ratio = sum(&counted.values) / sum(&smooth.values);
            assert!((ratio - 1.0).abs() < 0.02, "{}: mean ratio {ratio}", counted.name);
            assert_ne!(counted.values, smooth.values, "{}", counted.name);
        }
    }

    #[test]
    fn poisson_draw_of_huge_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        let draws: Vec<f64> = (0..200).map(|_| poisson_draw(1e12, &mut rng)).collect();

        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean / 1e12 - 1.0).abs() < 1e-5, "mean {mean}");
        assert!(draws.iter().all(|draw| draw.fract() == 0.0), "{draws:?}");
    }

    #[test]
    fn start_is_monday_midnight() {
        let start = chrono::DateTime::from_timestamp_millis(START_MS).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-02-23T00:00:00+00:00");
        assert_eq!(chrono::Datelike::weekday(&start), chrono::Weekday::Mon);
    }

    #[test]
    fn berlin_changes_clock_on_last_march_sunday() {
        let change = chrono::DateTime::from_timestamp_millis(BERLIN_SUMMER_TIME_MS).unwrap();
        assert_eq!(change.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        assert_eq!(Zone::Berlin.offset_ms(BERLIN_SUMMER_TIME_MS - 1), HOUR_MS);
        assert_eq!(Zone::Berlin.offset_ms(BERLIN_SUMMER_TIME_MS), 2 * HOUR_MS);
    }

    #[test]
    fn same_seed_same_series() {
        assert_eq!(generate_suite(7), generate_suite(7));
        assert_ne!(generate_suite(7)[0].values, generate_suite(8)[0].values);
    }

    #[test]
    fn anomalies_change_labelled_windows() {
        let suite = generate_suite(1);
        let spikes = &suite[0];
        let (start, end) = spikes.anomalies[0];

        // The same window a week earlier has the same seasonal mean.
        let ratio = spikes.values[start] / spikes.values[start - 7 * 48];
        assert!(ratio > 1.4, "spike ratio {ratio}");
        assert_eq!(end - start + 1, 2);
    }

    #[test]
    fn every_series_has_an_anomaly_inside_it() {
        for series in generate_suite(1) {
            assert!(!series.anomalies.is_empty(), "{}", series.name);
            for &(start, end) in &series.anomalies {
                assert!(
                    start <= end && end < series.values.len(),
                    "{}: {start}..={end}",
                    series.name
                );
            }
            assert!(
                series.values.iter().all(|value| value.is_finite() && *value >= 0.0),
                "{}",
                series.name
            );
        }
    }
}
