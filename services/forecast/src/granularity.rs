use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Length of one series step. Buckets are aligned to UTC hours or UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    /// Step length in seconds.
    pub fn step_seconds(self) -> i64 {
        match self {
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    pub fn step(self) -> TimeDelta {
        TimeDelta::seconds(self.step_seconds())
    }

    /// Seasonal periods in steps, shortest first: a day and a week for hourly
    /// series, a week and a year for daily ones.
    pub fn candidate_periods(self) -> &'static [usize] {
        match self {
            Granularity::Hour => &[24, 168],
            Granularity::Day => &[7, 365],
        }
    }

    /// Seasonal periods that a series of `points` steps can fit. MSTL needs
    /// at least two full cycles of every period, so longer ones are dropped.
    pub fn seasonal_periods(self, points: usize) -> Vec<usize> {
        self.candidate_periods()
            .iter()
            .copied()
            .filter(|period| points >= 2 * period)
            .collect()
    }

    /// Start of the bucket that contains `time`.
    pub fn bucket_start(self, time: DateTime<Utc>) -> DateTime<Utc> {
        // Rounding a UTC time down to whole hours or days cannot overflow
        // for times ClickHouse can store.
        time.duration_trunc(self.step()).unwrap_or(time)
    }

    /// Name used on the command line and in the gRPC API.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }
}

impl std::str::FromStr for Granularity {
    type Err = String;

    fn from_str(text: &str) -> Result<Granularity, String> {
        match text {
            "hour" | "hourly" => Ok(Granularity::Hour),
            "day" | "daily" => Ok(Granularity::Day),
            other => Err(format!("invalid granularity `{other}`; use `hour` or `day`")),
        }
    }
}

impl std::fmt::Display for Granularity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_periods_need_two_cycles() {
        assert_eq!(Granularity::Hour.seasonal_periods(47), Vec::<usize>::new());
        assert_eq!(Granularity::Hour.seasonal_periods(48), vec![24]);
        assert_eq!(Granularity::Hour.seasonal_periods(335), vec![24]);
        assert_eq!(Granularity::Hour.seasonal_periods(336), vec![24, 168]);
    }

    #[test]
    fn daily_periods_need_two_cycles() {
        assert_eq!(Granularity::Day.seasonal_periods(14), vec![7]);
        assert_eq!(Granularity::Day.seasonal_periods(729), vec![7]);
        assert_eq!(Granularity::Day.seasonal_periods(730), vec![7, 365]);
    }

    #[test]
    fn bucket_start_truncates_to_utc() {
        let time: DateTime<Utc> = "2026-03-05T13:47:12Z".parse().unwrap();

        assert_eq!(
            Granularity::Hour.bucket_start(time),
            "2026-03-05T13:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            Granularity::Day.bucket_start(time),
            "2026-03-05T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
