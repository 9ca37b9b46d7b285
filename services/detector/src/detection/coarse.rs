//! Coarse check: the same series judged again at longer windows, so a long
//! drop that stays inside the band in every short window still alerts.
//!
//! On a count of 40 events per 5-minute window Poisson noise alone is
//! √40 ≈ 6 events, so a band of 5 standard deviations misses a day at half
//! level in every window. Six windows summed into 30 minutes are √6 ≈ 2.4
//! times further out, and at 30-minute windows the same day is found.
//!
//! Method: the values of the short windows that make up one coarse window
//! (aligned to the epoch) are summed. When its last short window arrives
//! and none is missing, the sum goes to a second [`SeriesDetector`] with
//! the same settings at the coarse length, alert rules included. While
//! that detector has an episode open, a short window on the episode's
//! side counts as outside for the alert rules of the series (see
//! `mod.rs`). A coarse window with a missing short window is not judged,
//! which the second detector treats as a gap. Episodes the second
//! detector opens before it has two of its longest seasons and a day are
//! ignored. In its first week it judges against the day before, with a
//! band widened for a change of weekday that a Monday after a Sunday can
//! still leave. It also stores that week clamped towards the day before,
//! so a Saturday of the second week is judged against a Friday's level.
//! The short windows' own band covers that time.

use super::calendar::{DAY_MS, WEEK_MS};
use super::params::Seasonality;
use super::{DetectionParams, Direction, SeriesDetector, Transition};

/// The second detector of one series and the coarse window being summed.
#[derive(Debug)]
pub(crate) struct CoarseCheck {
    detector: Box<SeriesDetector>,
    coarse_ms: i64,
    /// Short windows per coarse window.
    windows: usize,
    /// Start of the coarse window being summed, Unix epoch ms.
    current_ms: Option<i64>,
    sum: f64,
    summed: usize,
    /// Side of the second detector's open episode.
    side: Option<Direction>,
    /// Coarse windows judged so far, and how many the second detector
    /// needs before its episodes count.
    judged: usize,
    needed: usize,
}

impl CoarseCheck {
    /// Returns the check for `window_ms` windows, or `None` when
    /// `params.coarse_window_minutes` is 0 or is not a multiple of the
    /// window longer than it.
    pub fn new(params: &DetectionParams, window_ms: i64) -> Option<CoarseCheck> {
        let coarse_ms = i64::try_from(params.coarse_window_minutes).ok()?.checked_mul(60_000)?;
        if coarse_ms <= window_ms || coarse_ms % window_ms != 0 {
            return None;
        }

        let coarse_params = DetectionParams {
            coarse_window_minutes: 0,
            ..params.clone()
        };
        Some(CoarseCheck {
            detector: Box::new(SeriesDetector::new(&coarse_params, coarse_ms)),
            coarse_ms,
            windows: (coarse_ms / window_ms) as usize,
            current_ms: None,
            sum: 0.0,
            summed: 0,
            side: None,
            judged: 0,
            needed: usize::try_from((2 * season_ms(params.seasonality) + DAY_MS) / coarse_ms).unwrap_or(usize::MAX),
        })
    }

    /// Adds the short window starting at `window_start_ms` and returns the
    /// side of the second detector's open episode, if any.
    pub fn observe(&mut self, window_start_ms: i64, value: f64) -> Option<Direction> {
        let coarse_start_ms = window_start_ms.div_euclid(self.coarse_ms) * self.coarse_ms;
        if self.current_ms != Some(coarse_start_ms) {
            self.current_ms = Some(coarse_start_ms);
            self.sum = 0.0;
            self.summed = 0;
        }
        self.sum += value;
        self.summed += 1;

        if self.summed == self.windows {
            self.summed = 0;
            let transition = self
                .detector
                .observe(coarse_start_ms, self.sum)
                .and_then(|evaluation| evaluation.transition);
            self.judged += 1;
            match transition {
                Some(Transition::Fired { direction, .. }) if self.judged > self.needed => self.side = Some(direction),
                Some(Transition::Resolved { .. }) => self.side = None,
                Some(Transition::Fired { .. }) | None => {}
            }
        }
        self.side
    }

    /// Bytes this check occupies on the heap, the second detector included.
    pub fn heap_bytes(&self) -> usize {
        self.detector.memory_bytes()
    }
}

/// Length of the longest season of `seasonality`, in ms.
fn season_ms(seasonality: Seasonality) -> i64 {
    match seasonality {
        Seasonality::Weekly => WEEK_MS,
        Seasonality::Daily => DAY_MS,
        Seasonality::None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn params(coarse_window_minutes: usize) -> DetectionParams {
        DetectionParams {
            coarse_window_minutes,
            ..DetectionParams::default()
        }
    }

    #[test]
    fn check_needs_longer_multiple() {
        assert!(CoarseCheck::new(&params(0), 5 * MINUTE_MS).is_none());
        assert!(CoarseCheck::new(&params(30), 30 * MINUTE_MS).is_none());
        assert!(CoarseCheck::new(&params(30), 60 * MINUTE_MS).is_none());
        assert!(CoarseCheck::new(&params(30), 7 * MINUTE_MS).is_none());

        let check = CoarseCheck::new(&params(30), 5 * MINUTE_MS).unwrap();
        assert_eq!(check.windows, 6);
        assert_eq!(check.detector.history.capacity(), check.detector.history_windows());
    }

    #[test]
    fn coarse_window_with_gap_not_judged() {
        let mut check = CoarseCheck::new(&params(30), 5 * MINUTE_MS).unwrap();
        // Three coarse windows of 1 per short window; the second misses
        // its fourth short window.
        for short in (0..18).filter(|&short| short != 9) {
            check.observe(short * 5 * MINUTE_MS, 1.0);
        }

        let judged: Vec<(i64, f64)> = check
            .detector
            .points()
            .map(|point| (point.window_start_ms / (30 * MINUTE_MS), point.value))
            .collect();
        assert_eq!(judged, [(0, 6.0), (2, 6.0)]);
    }

    #[test]
    fn windows_aligned_to_epoch() {
        let mut check = CoarseCheck::new(&params(30), 10 * MINUTE_MS).unwrap();
        // Starts at 00:20: its first coarse window lacks 00:00 and 00:10.
        for short in 2..9 {
            check.observe(short * 10 * MINUTE_MS, f64::from(short as i32));
        }

        let judged: Vec<(i64, f64)> = check
            .detector
            .points()
            .map(|point| (point.window_start_ms, point.value))
            .collect();
        assert_eq!(
            judged,
            [(30 * MINUTE_MS, 3.0 + 4.0 + 5.0), (60 * MINUTE_MS, 6.0 + 7.0 + 8.0)]
        );
    }
}
