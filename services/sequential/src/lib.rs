//! Anytime-valid sequential tests for experiments that are watched while
//! they run.
//!
//! A classical test (chi-square, t-test) keeps its false-positive rate only
//! when it is run once, at a sample size fixed in advance. A monitor that
//! re-runs it after every batch of users stops at the first lucky fluctuation
//! and raises far more false alarms than its alpha. The tests here are built
//! on test martingales instead: by Ville's inequality, the probability that
//! the statistic *ever* crosses `1 / alpha` under the null hypothesis is at
//! most `alpha`, however often it is checked.
//!
//! - [`SequentialSrm`]: sample-ratio mismatch of users across groups, the
//!   Dirichlet–multinomial Bayes factor of Lindon and Malek.
//! - [`MixtureSprt`]: a difference between two groups' means, the normal
//!   mixture sequential probability ratio test (mSPRT) of Johari, Koomen,
//!   Pekelis and Walsh.
//! - [`RatioMoments`]: per-user running moments of a ratio metric (likes per
//!   view, messages per user) and the delta-method variance of its ratio of
//!   sums, the input the mSPRT needs.
//! - [`ExperimentMonitor`]: the three above applied to a stream of user
//!   events of one experiment.
//!
//! Everything is pure and synchronous: callers feed observations and read
//! decisions.

mod error;
mod monitor;
mod msprt;
mod ratio_moments;
mod srm;

pub use error::SequentialError;
pub use monitor::{
    Degradation, ExperimentConfig, ExperimentMonitor, ExperimentStatus, GuardrailConfig, GuardrailStatus,
    ObserveOutcome, SrmStatus,
};
pub use msprt::{MixtureSprt, MsprtResult};
pub use ratio_moments::{RatioEstimate, RatioMoments};
pub use srm::SequentialSrm;
