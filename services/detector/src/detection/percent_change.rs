//! The analysts' day-over-day and week-over-week rule: a window is outside
//! when its value differs by more than `max_change` from both the window at
//! the same local time yesterday and the one a week ago. The band is that of
//! the closer reference, `reference · (1 ± max_change)`. With only one
//! reference kept (the first week, or after a gap) that one decides.
//!
//! The rule cleans nothing, so alone it stores each raw value as the
//! window's reference and reads the references a day and a week back (5
//! bytes per window). In an ensemble the references are another method's
//! cleaned values, so it reads the raw values, which every window then keeps.

use super::calendar::{Calendar, DAY_MS, WEEK_MS};
use super::history::History;
use super::method::{DetectionMethod, MethodOutput, MethodVerdict};
use super::method_params::PercentChangeParams;
use super::{Band, band};

/// Source of the value of an earlier window that the rule compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PastValues {
    /// The stored reference, which is the raw value when nothing cleans it.
    Reference,
    /// The raw value, kept only within the history's detail depth.
    Raw,
}

#[derive(Debug, Clone)]
pub(crate) struct PercentChange {
    max_change: f64,
    /// The day and the week, each when the window divides it.
    periods_ms: Vec<i64>,
    past_values: PastValues,
    judged_last: bool,
}

impl PercentChange {
    pub fn new(params: &PercentChangeParams, window_ms: i64, past_values: PastValues) -> PercentChange {
        PercentChange {
            max_change: params.max_change,
            periods_ms: [DAY_MS, WEEK_MS]
                .into_iter()
                .filter(|period_ms| period_ms % window_ms == 0)
                .collect(),
            past_values,
            judged_last: false,
        }
    }

    fn past_value(&self, history: &History, number: i64) -> Option<f32> {
        match self.past_values {
            PastValues::Reference => history.reference(number).map(|reference| reference.cleaned),
            PastValues::Raw => history.get(number).map(|slot| slot.value),
        }
    }

    /// One week of windows plus the clock change slack.
    pub fn history_needed(calendar: &Calendar, window_ms: i64) -> usize {
        (WEEK_MS / window_ms) as usize + 1 + calendar.lag_slack()
    }
}

impl DetectionMethod for PercentChange {
    fn judge(&mut self, number: i64, value: f64, history: &History, calendar: &Calendar) -> MethodOutput {
        let mut best: Option<(f64, Band)> = None;
        for &period_ms in &self.periods_ms {
            let Some(reference) = self.past_value(history, calendar.lag(number, period_ms)) else {
                continue;
            };
            let reference = f64::from(reference);
            let width = self.max_change * reference.abs();
            let band = Band {
                expected: reference,
                lower: reference - width,
                upper: reference + width,
            };
            let ratio = band::deviation_ratio(value, &band);
            if best.is_none_or(|(best_ratio, _)| ratio < best_ratio) {
                best = Some((ratio, band));
            }
        }

        self.judged_last = best.is_some();
        let Some((deviation_ratio, band)) = best else {
            return MethodOutput::default();
        };
        MethodOutput {
            expected: Some(band.expected),
            verdict: Some(MethodVerdict {
                band,
                deviation_ratio,
                cleaned: value,
            }),
        }
    }

    fn is_learning(&self) -> bool {
        !self.judged_last
    }

    fn heap_bytes(&self) -> usize {
        self.periods_ms.capacity() * size_of::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Slot;
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn slot(value: f32) -> Slot {
        Slot {
            value,
            cleaned: value,
            expected: f32::NAN,
            lower: f32::NAN,
            upper: f32::NAN,
            outside: false,
        }
    }

    #[test]
    fn outside_only_when_both_references_differ() {
        let calendar = Calendar::new(Default::default(), HOUR_MS);
        let mut history = History::new(200);
        history.push(0, slot(100.0));
        history.push(144, slot(200.0));
        let mut rule = PercentChange::new(&PercentChangeParams { max_change: 0.3 }, HOUR_MS, PastValues::Raw);

        // Window 168: yesterday (144) was 200, a week ago (0) was 100.
        let near_week = rule.judge(168, 125.0, &history, &calendar).verdict.unwrap();
        assert_eq!(near_week.band.expected, 100.0);
        assert!(near_week.deviation_ratio < 1.0);

        let near_day = rule.judge(168, 250.0, &history, &calendar).verdict.unwrap();
        assert_eq!(near_day.band.expected, 200.0);
        assert!(near_day.deviation_ratio < 1.0);

        let far = rule.judge(168, 400.0, &history, &calendar).verdict.unwrap();
        assert!(far.deviation_ratio > 1.0);
    }

    #[test]
    fn alone_reads_references_beyond_detail() {
        let calendar = Calendar::new(Default::default(), HOUR_MS);
        // Every field of the newest 30 windows only: window 0 keeps its reference.
        let mut history = History::with_detail(200, 30);
        history.push(0, slot(100.0));
        history.push(144, slot(200.0));
        let params = PercentChangeParams { max_change: 0.3 };

        let mut alone = PercentChange::new(&params, HOUR_MS, PastValues::Reference);
        let near_week = alone.judge(168, 125.0, &history, &calendar).verdict.unwrap();
        assert_eq!(near_week.band.expected, 100.0);

        // A member of an ensemble reads raw values, so only yesterday is left.
        let mut member = PercentChange::new(&params, HOUR_MS, PastValues::Raw);
        let yesterday_only = member.judge(168, 125.0, &history, &calendar).verdict.unwrap();
        assert_eq!(yesterday_only.band.expected, 200.0);
    }

    #[test]
    fn learning_without_references() {
        let calendar = Calendar::new(Default::default(), HOUR_MS);
        let history = History::new(200);
        let mut rule = PercentChange::new(&PercentChangeParams::default(), HOUR_MS, PastValues::Raw);
        assert_eq!(rule.judge(5, 1.0, &history, &calendar), MethodOutput::default());
        assert!(rule.is_learning());
    }
}
