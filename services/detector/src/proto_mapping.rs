//! Conversions between the detector's types and the `seismo.v1` messages.

use seismo_proto::v1::{self, AnomalyEvent, AnomalyState};

use crate::anomaly_id::anomaly_id;
use crate::config::WindowLength;
use crate::detection::{Direction, Severity};
use crate::root_cause::Contribution;
use crate::series::{EpisodeChange, Judgement};
use crate::slice::SliceKey;
use crate::windowing::ClosedWindow;

pub fn slice_to_proto(slice: &SliceKey) -> Vec<v1::Dimension> {
    slice
        .dimensions()
        .iter()
        .map(|(name, value)| v1::Dimension {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Builds a slice from request dimensions; the error names the repeated
/// dimension.
pub fn slice_from_proto(dimensions: &[v1::Dimension]) -> Result<SliceKey, String> {
    SliceKey::from_pairs(
        dimensions
            .iter()
            .map(|dimension| (dimension.name.clone(), dimension.value.clone())),
    )
}

pub fn direction_to_proto(direction: Direction) -> v1::Direction {
    match direction {
        Direction::Up => v1::Direction::Up,
        Direction::Down => v1::Direction::Down,
    }
}

pub fn severity_to_proto(severity: Severity) -> v1::Severity {
    match severity {
        Severity::Info => v1::Severity::Info,
        Severity::Warning => v1::Severity::Warning,
        Severity::Critical => v1::Severity::Critical,
    }
}

/// Raises a band's expected value and lower edge to 0 where they fell
/// below it, for metrics that cannot be negative; NaN stays NaN. The
/// detection maths works on unbounded reals, so a band around a value near
/// zero can reach below it, which reads as nonsense for a count.
pub fn clamp_at_zero(value: f64) -> f64 {
    if value < 0.0 { 0.0 } else { value }
}

/// Builds the `AnomalyEvent` of a window that fired, escalated or resolved
/// an episode; `None` if it did none of these. The hub assigns `sequence`. Band fields are NaN
/// if the detector gave no band, which a firing detector does not do.
pub fn anomaly_event(
    metric: &str,
    window: WindowLength,
    closed: &ClosedWindow,
    judgement: &Judgement,
    detected_at_ms: i64,
) -> Option<AnomalyEvent> {
    let change = judgement.change?;
    let (state, start_ms, episode) = match change {
        EpisodeChange::Fired(episode) => (AnomalyState::Firing, episode.start_ms, Some(episode)),
        EpisodeChange::Escalated(episode) => (AnomalyState::Escalated, episode.start_ms, Some(episode)),
        EpisodeChange::Resolved { start_ms, fired } => (AnomalyState::Resolved, start_ms, fired),
    };
    // A firing names its severity in `severity`; later changes list all.
    let announced_severities = match (state, episode) {
        (AnomalyState::Firing, _) | (_, None) => Vec::new(),
        (_, Some(episode)) => episode
            .announced
            .iter()
            .map(|severity| i32::from(severity_to_proto(severity)))
            .collect(),
    };
    let evaluation = &judgement.evaluation;
    let band = evaluation.band;

    Some(AnomalyEvent {
        id: anomaly_id(metric, &closed.slice, start_ms),
        sequence: 0,
        state: state.into(),
        metric: metric.to_string(),
        slice: slice_to_proto(&closed.slice),
        window_start_ms: closed.window_start_ms,
        window_end_ms: closed.window_end_ms,
        value: evaluation.value,
        expected: band.map_or(f64::NAN, |band| band.expected),
        lower: band.map_or(f64::NAN, |band| band.lower),
        upper: band.map_or(f64::NAN, |band| band.upper),
        // The calibrated score, so alerts of different series rank by how
        // rare each deviation is for its own series.
        score: evaluation.calibrated_score,
        severity: episode
            .map_or(v1::Severity::Unspecified, |episode| severity_to_proto(episode.severity))
            .into(),
        direction: episode
            .map_or(v1::Direction::Unspecified, |episode| {
                direction_to_proto(episode.direction)
            })
            .into(),
        window_seconds: window.as_seconds(),
        detected_at_ms,
        // Set by the pipeline from its window evaluation span.
        traceparent: String::new(),
        // Set by the hub when it publishes the change.
        stream_epoch: 0,
        gap_before: false,
        // Set by the pipeline for a firing or escalation of a total.
        contributors: Vec::new(),
        announced_severities,
        episode_start_ms: start_ms,
    })
}

pub fn contributions_to_proto(contributions: &[Contribution]) -> Vec<v1::SliceContribution> {
    contributions
        .iter()
        .map(|contribution| v1::SliceContribution {
            slice: slice_to_proto(&contribution.slice),
            value: contribution.value,
            expected: contribution.expected,
            share: contribution.share,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{Band, Evaluation};
    use crate::series::{OpenEpisode, SeveritySet};

    fn closed() -> ClosedWindow {
        ClosedWindow {
            metric_index: 0,
            slice: SliceKey::single("os", "iOS"),
            window_start_ms: 1_700_000_100_000,
            window_end_ms: 1_700_000_160_000,
            value: 42.0,
        }
    }

    fn judgement(change: Option<EpisodeChange>) -> Judgement {
        Judgement {
            evaluation: Evaluation {
                window_start_ms: 1_700_000_100_000,
                value: 42.0,
                band: Some(Band {
                    expected: 10.0,
                    lower: 5.0,
                    upper: 15.0,
                }),
                score: 0.7,
                calibrated_score: 0.9,
                outside: true,
                transition: None,
            },
            change,
        }
    }

    const EPISODE: OpenEpisode = OpenEpisode {
        start_ms: 1_700_000_040_000,
        direction: Direction::Up,
        severity: Severity::Critical,
        announced: SeveritySet::of(Severity::Critical),
    };

    #[test]
    fn clamp_keeps_nan_and_positive_values() {
        assert_eq!(clamp_at_zero(-55.7), 0.0);
        assert_eq!(clamp_at_zero(3.5), 3.5);
        assert!(clamp_at_zero(f64::NAN).is_nan());
    }

    #[test]
    fn firing_carries_window_and_band() {
        let window = WindowLength::from_ms(60_000).unwrap();

        let event = anomaly_event(
            "views",
            window,
            &closed(),
            &judgement(Some(EpisodeChange::Fired(EPISODE))),
            99,
        )
        .unwrap();

        assert_eq!(event.state(), AnomalyState::Firing);
        assert_eq!(
            event.id,
            anomaly_id("views", &SliceKey::single("os", "iOS"), EPISODE.start_ms)
        );
        assert_eq!(event.metric, "views");
        assert_eq!(
            event.slice,
            vec![v1::Dimension {
                name: "os".to_string(),
                value: "iOS".to_string()
            }]
        );
        assert_eq!(event.window_start_ms, 1_700_000_100_000);
        assert_eq!(event.window_end_ms, 1_700_000_160_000);
        assert_eq!(event.window_seconds, 60);
        assert_eq!(event.value, 42.0);
        assert_eq!(event.expected, 10.0);
        assert_eq!(event.lower, 5.0);
        assert_eq!(event.upper, 15.0);
        assert_eq!(event.score, 0.9);
        assert_eq!(event.severity(), v1::Severity::Critical);
        assert_eq!(event.direction(), v1::Direction::Up);
        assert_eq!(event.detected_at_ms, 99);
    }

    #[test]
    fn resolution_shares_firing_id() {
        let window = WindowLength::from_ms(60_000).unwrap();
        let fired = anomaly_event(
            "views",
            window,
            &closed(),
            &judgement(Some(EpisodeChange::Fired(EPISODE))),
            1,
        )
        .unwrap();

        let resolved = anomaly_event(
            "views",
            window,
            &closed(),
            &judgement(Some(EpisodeChange::Resolved {
                start_ms: EPISODE.start_ms,
                fired: Some(EPISODE),
            })),
            2,
        )
        .unwrap();

        assert_eq!(resolved.state(), AnomalyState::Resolved);
        assert_eq!(resolved.id, fired.id);
        assert_eq!(resolved.severity(), v1::Severity::Critical);
    }

    #[test]
    fn later_changes_list_announced_severities() {
        let window = WindowLength::from_ms(60_000).unwrap();
        let fired = OpenEpisode {
            severity: Severity::Info,
            announced: SeveritySet::of(Severity::Info),
            ..EPISODE
        };
        let escalated = OpenEpisode {
            severity: Severity::Critical,
            announced: fired.announced.with(Severity::Critical),
            ..fired
        };
        let event = |change| anomaly_event("views", window, &closed(), &judgement(Some(change)), 1).unwrap();

        let firing = event(EpisodeChange::Fired(fired));
        let escalation = event(EpisodeChange::Escalated(escalated));
        let resolution = event(EpisodeChange::Resolved {
            start_ms: EPISODE.start_ms,
            fired: Some(escalated),
        });

        assert_eq!(firing.severity(), v1::Severity::Info);
        assert!(firing.announced_severities.is_empty());
        assert_eq!(escalation.state(), AnomalyState::Escalated);
        assert_eq!(escalation.id, firing.id);
        assert_eq!(escalation.severity(), v1::Severity::Critical);
        let info_and_critical = vec![v1::Severity::Info as i32, v1::Severity::Critical as i32];
        assert_eq!(escalation.announced_severities, info_and_critical);
        assert_eq!(resolution.id, firing.id);
        assert_eq!(resolution.severity(), v1::Severity::Critical);
        assert_eq!(resolution.announced_severities, info_and_critical);
        for change in [&firing, &escalation, &resolution] {
            assert_eq!(change.episode_start_ms, EPISODE.start_ms);
        }
    }

    #[test]
    fn resolution_without_firing_is_unspecified() {
        let window = WindowLength::from_ms(60_000).unwrap();

        let resolved = anomaly_event(
            "views",
            window,
            &closed(),
            &judgement(Some(EpisodeChange::Resolved {
                start_ms: 0,
                fired: None,
            })),
            2,
        )
        .unwrap();

        assert_eq!(resolved.direction(), v1::Direction::Unspecified);
        assert_eq!(resolved.severity(), v1::Severity::Unspecified);
    }

    #[test]
    fn quiet_window_makes_no_event() {
        let window = WindowLength::from_ms(60_000).unwrap();

        assert_eq!(anomaly_event("views", window, &closed(), &judgement(None), 1), None);
    }

    #[test]
    fn slice_round_trips() {
        let slice = SliceKey::from_pairs([("os".to_string(), "iOS".to_string())]).unwrap();

        assert_eq!(slice_from_proto(&slice_to_proto(&slice)), Ok(slice));
        assert_eq!(slice_from_proto(&[]), Ok(SliceKey::total()));
    }
}
