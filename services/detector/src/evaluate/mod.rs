//! Offline measurement of detection quality, with no Kafka or gRPC:
//!
//! - `nab`: NAB's scoring rules ([`nab_score`]) over a NAB corpus replayed
//!   through the live detector ([`nab_corpus`]).
//! - `business`: seeded synthetic business metrics with labelled anomalies
//!   ([`business_series`]), on which the detector and the classic IQR rule
//!   ([`iqr`]) are compared by precision, recall, F1 and detection delay
//!   ([`business_match`], [`business`]).

mod args;
pub mod business;
pub mod business_match;
pub mod business_series;
pub mod iqr;
pub mod nab_corpus;
pub mod nab_score;

pub use args::{BusinessArgs, EvaluateArgs, EvaluateSuite, NabArgs, format_nab_report, run};
