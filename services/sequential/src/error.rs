//! Errors of invalid test parameters.

/// A parameter that no test can run with; the message names the value and
/// the accepted range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SequentialError {
    #[error("expected shares must list at least two groups, got {count}")]
    TooFewGroups { count: usize },

    #[error("expected share {share} of group {group} is invalid: use a number above 0")]
    InvalidShare { group: usize, share: f64 },

    #[error("prior concentration {0} is invalid: use a finite number above 0 (100 is a common choice)")]
    InvalidConcentration(f64),

    #[error("alpha {0} is invalid: use a number between 0 and 1, e.g. 0.05")]
    InvalidAlpha(f64),

    #[error("mixture standard deviation {0} is invalid: use a finite number above 0, in the metric's units")]
    InvalidMixtureSd(f64),

    #[error("experiment {experiment:?} is invalid: {reason}")]
    InvalidExperiment { experiment: String, reason: String },
}
