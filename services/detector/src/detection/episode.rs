//! Episode state machine of one series: which window starts an anomaly
//! episode and which one ends it, so an episode yields one `Fired` and one
//! `Resolved` however long it lasts, with at most two `Escalated` between
//! them.
//!
//! Rules, a k-of-n trigger with a separate release count so a series
//! wavering around the band edge does not open episode after episode:
//! - Fire when the current window is outside the band and at least
//!   `fire_outside` of the last `fire_lookback` windows (current included)
//!   are outside, or at once when the current window is at least
//!   `fire_ratio` band half-widths out (by default the critical ratio) or
//!   its recent deviation is rare for the series (see `tail_score.rs`).
//! - Escalate an open episode when one of its outside windows, on the side
//!   it fired on, is of a higher severity than the episode so far. So a
//!   drop that starts small and deepens reaches the people who only take
//!   critical alerts. The severity never falls within an episode.
//! - Resolve after `resolve_inside` consecutive windows inside the band.
//!   Windows before a resolution do not count towards the next firing.
//! - Missing windows count as inside for firing and do not count towards
//!   resolution.
//! - A learning window resolves an open episode: the history the episode
//!   was judged against is gone (a gap longer than the kept history).
//!
//! Alert hygiene on top:
//! - Cool-down: no episode fires within `cooldown_windows` windows after a
//!   resolution, or after the firing with `cooldown_from = "firing"`.
//! - Daily cap: at most `max_alerts_per_day` firings per local day.
//! - Re-baseline: after `rebaseline_windows` consecutive windows outside on
//!   the same side, the step returns a re-baseline request for the method and
//!   resolves the open episode, so a lasting level shift alerts once.

use super::band::Judgement;
use super::params::{CooldownStart, DetectionParams};
use super::{Direction, Severity, Transition};

/// The episode and alert hygiene settings, copied from [`DetectionParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AlertRules {
    pub fire_outside: usize,
    pub fire_lookback: usize,
    /// Deviation, in band half-widths, from which one window fires:
    /// `fire_ratio`, or `critical_ratio` when that is unset.
    pub fire_ratio: f64,
    /// Whether a higher-severity window of an open episode escalates it.
    pub escalate: bool,
    pub resolve_inside: usize,
    pub cooldown_windows: usize,
    pub cooldown_from: CooldownStart,
    pub max_alerts_per_day: usize,
    pub rebaseline_windows: usize,
}

impl From<&DetectionParams> for AlertRules {
    fn from(params: &DetectionParams) -> Self {
        AlertRules {
            fire_outside: params.fire_outside,
            fire_lookback: params.fire_lookback,
            fire_ratio: params.fire_ratio.unwrap_or(params.critical_ratio),
            escalate: params.escalate,
            resolve_inside: params.resolve_inside,
            cooldown_windows: params.cooldown_windows,
            cooldown_from: params.cooldown_from,
            max_alerts_per_day: params.max_alerts_per_day,
            rebaseline_windows: params.rebaseline_windows,
        }
    }
}

/// Changes caused by one window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Step {
    pub transition: Option<Transition>,
    /// Re-baseline on this many windows, the current one and those before
    /// it, which were all outside on one side.
    pub rebaseline_windows: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct EpisodeTracker {
    /// Bit i is set when the window i windows before the latest was outside.
    recent_outside: u64,
    inside_streak: usize,
    /// Start of the window that fired the open episode, Unix epoch ms.
    open_since_ms: Option<i64>,
    /// Highest severity the open episode was announced with, and the side
    /// of the band it fired on.
    open_severity: Severity,
    open_direction: Option<Direction>,
    /// Windows during which no episode may fire yet.
    cooldown_left: usize,
    /// Local day of the latest firing and the firings on it.
    day: i64,
    fired_on_day: usize,
    /// Consecutive outside windows on one side, and that side.
    side_streak: usize,
    side: Option<Direction>,
}

impl EpisodeTracker {
    pub fn new() -> EpisodeTracker {
        EpisodeTracker::default()
    }

    /// Records `windows` missing windows.
    pub fn skip(&mut self, windows: u64) {
        self.recent_outside = if windows >= 64 {
            0
        } else {
            self.recent_outside << windows
        };
        self.cooldown_left = self
            .cooldown_left
            .saturating_sub(usize::try_from(windows).unwrap_or(usize::MAX));
        if windows > 0 {
            self.side_streak = 0;
        }
    }

    /// Advances by one window that starts on local day `local_day`.
    /// `judgement` is `None` while the series is learning. `rare` lets an
    /// outside window fire at once: its recent deviation is rarer than
    /// `fire_tail_probability` for the series.
    pub fn step(
        &mut self,
        window_start_ms: i64,
        local_day: i64,
        judgement: Option<&Judgement>,
        rare: bool,
        rules: &AlertRules,
    ) -> Step {
        let cooling = self.cooldown_left > 0;
        self.cooldown_left = self.cooldown_left.saturating_sub(1);
        self.track_side(judgement);

        if rules.rebaseline_windows > 0 && self.side_streak >= rules.rebaseline_windows {
            let windows = self.side_streak;
            self.side_streak = 0;
            // The shifted windows are the new normal, so none counts towards firing.
            self.recent_outside = 0;
            let transition = self.resolve(rules);
            return Step {
                transition,
                rebaseline_windows: Some(windows),
            };
        }

        Step {
            transition: self.advance(window_start_ms, local_day, judgement, rare, rules, cooling),
            rebaseline_windows: None,
        }
    }

    fn track_side(&mut self, judgement: Option<&Judgement>) {
        match judgement {
            Some(judgement) if judgement.outside => {
                if self.side == Some(judgement.direction) {
                    self.side_streak += 1;
                } else {
                    self.side = Some(judgement.direction);
                    self.side_streak = 1;
                }
            }
            _ => {
                self.side = None;
                self.side_streak = 0;
            }
        }
    }

    fn advance(
        &mut self,
        window_start_ms: i64,
        local_day: i64,
        judgement: Option<&Judgement>,
        rare: bool,
        params: &AlertRules,
        cooling: bool,
    ) -> Option<Transition> {
        let outside = judgement.is_some_and(|judgement| judgement.outside);
        self.recent_outside = (self.recent_outside << 1) | u64::from(outside);

        let Some(judgement) = judgement else {
            return self.resolve(params);
        };

        if let Some(episode_start_ms) = self.open_since_ms {
            if outside {
                self.inside_streak = 0;
                // A window on the other side is a new kind of deviation, not
                // a deeper one, so it does not raise the episode's severity.
                if !params.escalate
                    || judgement.severity <= self.open_severity
                    || self.open_direction != Some(judgement.direction)
                {
                    return None;
                }
                self.open_severity = judgement.severity;
                return Some(Transition::Escalated {
                    episode_start_ms,
                    severity: judgement.severity,
                });
            }
            self.inside_streak += 1;
            return if self.inside_streak >= params.resolve_inside {
                self.resolve(params)
            } else {
                None
            };
        }

        let lookback_mask = if params.fire_lookback >= 64 {
            u64::MAX
        } else {
            (1u64 << params.fire_lookback) - 1
        };
        // TODO: a long drop that stays inside the band in every window (a
        // day at half level on 5-minute counts of tens of events) never
        // fires. A second detector on 30-minute sums found all of them in
        // an experiment ("Other window lengths" in docs/benchmarks.md).
        let outside_count = (self.recent_outside & lookback_mask).count_ones() as usize;
        let fires =
            outside && (outside_count >= params.fire_outside || judgement.deviation_ratio >= params.fire_ratio || rare);
        if !fires || cooling {
            return None;
        }
        if local_day != self.day {
            self.day = local_day;
            self.fired_on_day = 0;
        }
        if params.max_alerts_per_day > 0 && self.fired_on_day >= params.max_alerts_per_day {
            return None;
        }

        self.fired_on_day += 1;
        self.open_since_ms = Some(window_start_ms);
        self.open_severity = judgement.severity;
        self.open_direction = Some(judgement.direction);
        self.inside_streak = 0;
        if params.cooldown_from == CooldownStart::Firing {
            self.cooldown_left = params.cooldown_windows;
        }
        Some(Transition::Fired {
            episode_start_ms: window_start_ms,
            direction: judgement.direction,
            severity: judgement.severity,
        })
    }

    fn resolve(&mut self, params: &AlertRules) -> Option<Transition> {
        let episode_start_ms = self.open_since_ms.take()?;
        self.inside_streak = 0;
        if params.cooldown_from == CooldownStart::Resolution {
            self.cooldown_left = params.cooldown_windows;
        }
        // Outside windows of the ended episode must not count towards the next.
        self.recent_outside = 0;
        Some(Transition::Resolved { episode_start_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Band, Direction, Severity};
    use super::*;

    fn params() -> AlertRules {
        AlertRules {
            fire_outside: 3,
            fire_lookback: 5,
            fire_ratio: 2.5,
            escalate: true,
            resolve_inside: 2,
            cooldown_windows: 0,
            cooldown_from: CooldownStart::Resolution,
            max_alerts_per_day: 0,
            rebaseline_windows: 0,
        }
    }

    /// A window inside or outside the band, with a deviation ratio that
    /// matches `severity` under warning and critical ratios of 1.5 and 2.5.
    fn judgement(outside: bool, severity: Severity) -> Judgement {
        let deviation_ratio = match (outside, severity) {
            (false, _) => 0.5,
            (true, Severity::Info) => 1.2,
            (true, Severity::Warning) => 2.0,
            (true, Severity::Critical) => 3.0,
        };
        with_ratio(outside, severity, deviation_ratio)
    }

    fn with_ratio(outside: bool, severity: Severity, deviation_ratio: f64) -> Judgement {
        Judgement {
            band: Band {
                expected: 0.0,
                lower: -1.0,
                upper: 1.0,
            },
            deviation_ratio,
            score: 0.5,
            outside,
            direction: Direction::Down,
            severity,
            cleaned: 0.0,
        }
    }

    /// Runs windows described by `pattern`: `o` outside, `.` inside, `w`
    /// warning, `!` critical, `l` learning, `_` missing. Returns "F<i>" for a
    /// firing at window i and "E<i>w@<s>" or "E<i>!@<s>" for an escalation at
    /// window i, to warning or critical, of the episode fired at window s.
    /// "R<i>@<s>" is the resolution at window i of that episode.
    fn run(pattern: &str) -> Vec<String> {
        run_with(pattern, &params(), 1_000)
    }

    /// Like `run`, with `rules` and `windows_per_day` windows per local day,
    /// and "B<i>:<n>" for a re-baseline on n windows at window i.
    fn run_with(pattern: &str, params: &AlertRules, windows_per_day: i64) -> Vec<String> {
        let params = *params;
        let mut tracker = EpisodeTracker::new();
        let mut events = Vec::new();
        for (i, symbol) in pattern.chars().enumerate() {
            let judged = match symbol {
                'o' => Some(judgement(true, Severity::Info)),
                '.' => Some(judgement(false, Severity::Info)),
                'w' => Some(judgement(true, Severity::Warning)),
                '!' => Some(judgement(true, Severity::Critical)),
                'l' => None,
                '_' => {
                    tracker.skip(1);
                    continue;
                }
                other => panic!("unknown pattern symbol {other}"),
            };
            let step = tracker.step(
                i as i64 * 1000,
                i as i64 / windows_per_day,
                judged.as_ref(),
                false,
                &params,
            );
            if let Some(windows) = step.rebaseline_windows {
                events.push(format!("B{i}:{windows}"));
            }
            match step.transition {
                Some(Transition::Fired { episode_start_ms, .. }) => {
                    assert_eq!(episode_start_ms, i as i64 * 1000);
                    events.push(format!("F{i}"));
                }
                Some(Transition::Escalated {
                    episode_start_ms,
                    severity,
                }) => {
                    let symbol = match severity {
                        Severity::Info => "o",
                        Severity::Warning => "w",
                        Severity::Critical => "!",
                    };
                    events.push(format!("E{i}{symbol}@{}", episode_start_ms / 1000));
                }
                Some(Transition::Resolved { episode_start_ms }) => {
                    events.push(format!("R{i}@{}", episode_start_ms / 1000));
                }
                None => {}
            }
        }
        events
    }

    #[test]
    fn fires_after_k_of_n_outside() {
        assert_eq!(run("..oo.o.."), vec!["F5", "R7@5"]);
        assert_eq!(run("ooo"), vec!["F2"]);
        assert_eq!(run("oo.o"), vec!["F3"]);
    }

    #[test]
    fn no_fire_when_outside_windows_are_spread() {
        // Never three outside windows within five.
        assert_eq!(run("o...o...o...o"), Vec::<String>::new());
    }

    #[test]
    fn one_fire_per_episode() {
        assert_eq!(run("oooooooooo"), vec!["F2"]);
    }

    #[test]
    fn resolves_after_consecutive_inside() {
        assert_eq!(run("ooo..."), vec!["F2", "R4@2"]);
    }

    #[test]
    fn hysteresis_against_oscillation() {
        // Alternating windows keep the episode open: the inside streak never reaches two.
        assert_eq!(run("ooo.o.o.o.o.."), vec!["F2", "R12@2"]);
    }

    #[test]
    fn refires_after_resolution() {
        assert_eq!(run("ooo..ooo"), vec!["F2", "R4@2", "F7"]);
    }

    #[test]
    fn critical_fires_at_once() {
        assert_eq!(run("..!"), vec!["F2"]);
    }

    #[test]
    fn escalates_once_per_severity() {
        assert_eq!(run("ooowow!w!.."), vec!["F2", "E3w@2", "E6!@2", "R10@2"]);
        // A jump from info to critical is one escalation.
        assert_eq!(run("ooo!!.."), vec!["F2", "E3!@2", "R6@2"]);
        // A critical firing has nothing to escalate to.
        assert_eq!(run("!!w!.."), vec!["F0", "R5@0"]);
    }

    #[test]
    fn window_on_the_other_side_does_not_escalate() {
        let rules = params();
        let mut tracker = EpisodeTracker::new();
        let up_critical = Judgement {
            direction: Direction::Up,
            ..judgement(true, Severity::Critical)
        };
        let mut transitions = Vec::new();

        for (i, judged) in [
            judgement(true, Severity::Info),
            judgement(true, Severity::Info),
            judgement(true, Severity::Info),
            up_critical,
            judgement(true, Severity::Critical),
        ]
        .iter()
        .enumerate()
        {
            transitions.push(tracker.step(i as i64 * 1000, 0, Some(judged), false, &rules).transition);
        }

        assert!(matches!(transitions[2], Some(Transition::Fired { .. })));
        assert_eq!(transitions[3], None);
        assert_eq!(
            transitions[4],
            Some(Transition::Escalated {
                episode_start_ms: 2000,
                severity: Severity::Critical
            })
        );
    }

    #[test]
    fn escalation_can_be_turned_off() {
        let rules = AlertRules {
            escalate: false,
            ..params()
        };

        assert_eq!(run_with("ooow!..", &rules, 1_000), vec!["F2", "R6@2"]);
    }

    #[test]
    fn escalation_resets_per_episode() {
        assert_eq!(run("ooo!..ooo!.."), vec!["F2", "E3!@2", "R5@2", "F8", "E9!@8", "R11@8"]);
    }

    #[test]
    fn escalates_after_an_inside_window() {
        // One inside window does not end the episode, so a critical window
        // after it escalates instead of firing anew.
        assert_eq!(run("ooo.!.."), vec!["F2", "E4!@2", "R6@2"]);
    }

    #[test]
    fn missing_windows_count_as_inside_for_firing() {
        // o o _ _ _ o: the first two fall out of the five-window lookback.
        assert_eq!(run("oo___o"), Vec::<String>::new());
        assert_eq!(run("oo_o"), vec!["F3"]);
    }

    #[test]
    fn missing_windows_do_not_resolve() {
        assert_eq!(run("ooo.___."), vec!["F2", "R7@2"]);
    }

    #[test]
    fn learning_resolves_open_episode() {
        assert_eq!(run("ooolooo"), vec!["F2", "R3@2", "F6"]);
        assert_eq!(run("l.l"), Vec::<String>::new());
    }

    #[test]
    fn cooldown_delays_next_firing() {
        let rules = AlertRules {
            cooldown_windows: 4,
            ..params()
        };
        // Resolved at window 4, so windows 5 to 8 cannot fire.
        assert_eq!(run_with("ooo..ooooo", &rules, 1_000), vec!["F2", "R4@2", "F9"]);
        assert_eq!(run("ooo..ooooo"), vec!["F2", "R4@2", "F7"]);
    }

    #[test]
    fn cooldown_can_count_from_firing() {
        let from_resolution = AlertRules {
            cooldown_windows: 6,
            ..params()
        };
        let from_firing = AlertRules {
            cooldown_from: CooldownStart::Firing,
            ..from_resolution
        };

        // Fired at window 2 and resolved at 4: windows 3 to 8 cannot fire
        // when counting from the firing, 5 to 10 from the resolution.
        assert_eq!(run_with("ooo..oooooooo", &from_firing, 1_000), vec!["F2", "R4@2", "F9"]);
        assert_eq!(
            run_with("ooo..oooooooo", &from_resolution, 1_000),
            vec!["F2", "R4@2", "F11"]
        );
    }

    #[test]
    fn daily_cap_suppresses_extra_firings() {
        let rules = AlertRules {
            max_alerts_per_day: 1,
            ..params()
        };
        // Ten windows per day: the second episode of day 0 is suppressed,
        // the one on day 1 fires.
        assert_eq!(run_with("ooo..ooo.....ooo", &rules, 10), vec!["F2", "R4@2", "F15"]);
    }

    #[test]
    fn sustained_shift_rebaselines_once() {
        let rules = AlertRules {
            rebaseline_windows: 6,
            ..params()
        };
        assert_eq!(run_with("..oooooooo....", &rules, 1_000), vec!["F4", "B7:6", "R7@4"]);
    }

    #[test]
    fn oscillation_gives_one_episode() {
        // Around the band edge: two windows out, one in, for 30 windows.
        let pattern = format!("...{}......", "oo.".repeat(10));
        let rules = AlertRules {
            rebaseline_windows: 6,
            cooldown_windows: 3,
            ..params()
        };
        assert_eq!(run_with(&pattern, &rules, 1_000), vec!["F6", "R33@6"]);
    }

    #[test]
    fn rare_window_fires_at_once() {
        let mut tracker = EpisodeTracker::new();
        let warning = judgement(true, Severity::Warning);

        let common = tracker.step(7, 0, Some(&warning), false, &params()).transition;
        let rare = tracker.step(8, 0, Some(&warning), true, &params()).transition;

        assert_eq!(common, None);
        assert!(
            matches!(
                rare,
                Some(Transition::Fired {
                    episode_start_ms: 8,
                    ..
                })
            ),
            "{rare:?}"
        );
    }

    #[test]
    fn fire_ratio_fires_one_window() {
        let fired = |judgement: Judgement, fire_ratio: f64| {
            let rules = AlertRules { fire_ratio, ..params() };
            let step = EpisodeTracker::new().step(7, 0, Some(&judgement), false, &rules);
            step.transition.is_some()
        };

        // The ratio decides, not the severity label.
        assert!(fired(with_ratio(true, Severity::Info, 1.4), 1.4));
        assert!(!fired(with_ratio(true, Severity::Info, 1.39), 1.4));
        assert!(!fired(with_ratio(true, Severity::Critical, 3.0), 4.0));
        assert!(fired(with_ratio(true, Severity::Critical, 3.0), 2.5));
    }

    #[test]
    fn rare_window_inside_band_does_not_fire() {
        let mut tracker = EpisodeTracker::new();
        let inside = judgement(false, Severity::Warning);

        assert_eq!(tracker.step(7, 0, Some(&inside), true, &params()).transition, None);
    }

    #[test]
    fn fired_carries_direction_and_severity() {
        let mut tracker = EpisodeTracker::new();
        let critical = judgement(true, Severity::Critical);
        let transition = tracker.step(7, 0, Some(&critical), false, &params()).transition;
        assert_eq!(
            transition,
            Some(Transition::Fired {
                episode_start_ms: 7,
                direction: Direction::Down,
                severity: Severity::Critical
            })
        );
    }
}
