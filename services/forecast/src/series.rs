use chrono::{DateTime, Utc};

use crate::Granularity;

/// A regular metric series: one value per bucket from `start`, without gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Start of the first bucket.
    pub start: DateTime<Utc>,
    pub granularity: Granularity,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(start: DateTime<Utc>, granularity: Granularity, values: Vec<f64>) -> Series {
        Series {
            start,
            granularity,
            values,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Start of bucket `index`; `index` may lie past the end, for forecasts.
    pub fn time_at(&self, index: usize) -> DateTime<Utc> {
        self.start + self.granularity.step() * index as i32
    }

    /// Start of the bucket after the last one: the first forecast step.
    pub fn end(&self) -> DateTime<Utc> {
        self.time_at(self.len())
    }

    /// Builds a series from `(bucket start, value)` pairs in any order.
    /// Buckets between the first and the last pair that have no pair get
    /// `missing`, e.g. 0 for counts or NaN for a ratio to interpolate later.
    /// Times are truncated to their bucket; a repeated bucket keeps the last
    /// value. Returns `None` for no pairs.
    pub fn from_points(
        granularity: Granularity,
        points: impl IntoIterator<Item = (DateTime<Utc>, f64)>,
        missing: f64,
    ) -> Option<Series> {
        let mut points: Vec<(DateTime<Utc>, f64)> = points
            .into_iter()
            .map(|(time, value)| (granularity.bucket_start(time), value))
            .collect();
        points.sort_by_key(|(time, _)| *time);
        let (first, _) = *points.first()?;
        let (last, _) = *points.last()?;

        let step = granularity.step_seconds();
        let len = ((last - first).num_seconds() / step) as usize + 1;
        let mut values = vec![missing; len];
        for (time, value) in points {
            let index = ((time - first).num_seconds() / step) as usize;
            values[index] = value;
        }
        Some(Series::new(first, granularity, values))
    }

    /// Pads the series with `value` up to (excluding) bucket `end`, so
    /// buckets after the last event still count as observed zeros.
    pub fn extend_until(&mut self, end: DateTime<Utc>, value: f64) {
        while self.end() < end {
            self.values.push(value);
        }
    }
}

/// Replaces NaN values by linear interpolation between the nearest finite
/// neighbours; NaNs before the first or after the last finite value take
/// that value. Returns how many values were filled; all-NaN input stays
/// unchanged.
pub fn interpolate_gaps(values: &mut [f64]) -> usize {
    let known: Vec<usize> = (0..values.len()).filter(|&index| values[index].is_finite()).collect();
    let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
        return 0;
    };
    let mut filled = 0;

    for index in 0..first {
        values[index] = values[first];
        filled += 1;
    }
    for index in last + 1..values.len() {
        values[index] = values[last];
        filled += 1;
    }

    for pair in known.windows(2) {
        let (left, right) = (pair[0], pair[1]);
        let slope = (values[right] - values[left]) / (right - left) as f64;
        for index in left + 1..right {
            values[index] = values[left] + slope * (index - left) as f64;
            filled += 1;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn from_points_fills_missing_buckets() {
        let points = [
            (time("2026-01-01T03:00:00Z"), 5.0),
            (time("2026-01-01T00:10:00Z"), 1.0),
            (time("2026-01-01T01:59:59Z"), 2.0),
        ];

        let series = Series::from_points(Granularity::Hour, points, 0.0).unwrap();

        assert_eq!(series.start, time("2026-01-01T00:00:00Z"));
        assert_eq!(series.values, vec![1.0, 2.0, 0.0, 5.0]);
        assert_eq!(series.end(), time("2026-01-01T04:00:00Z"));
    }

    #[test]
    fn from_points_empty_is_none() {
        assert!(Series::from_points(Granularity::Day, [], 0.0).is_none());
    }

    #[test]
    fn extend_until_pads_trailing_buckets() {
        let mut series = Series::new(time("2026-01-01T00:00:00Z"), Granularity::Day, vec![3.0]);

        series.extend_until(time("2026-01-04T00:00:00Z"), 0.0);

        assert_eq!(series.values, vec![3.0, 0.0, 0.0]);
    }

    #[test]
    fn interpolate_fills_inner_and_edge_gaps() {
        let mut values = [f64::NAN, 1.0, f64::NAN, f64::NAN, 4.0, f64::NAN];

        let filled = interpolate_gaps(&mut values);

        assert_eq!(filled, 4);
        assert_eq!(values, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
    }
}
