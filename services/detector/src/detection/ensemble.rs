//! An ensemble of methods with one anomaly score. Each method's deviation d
//! (in half-widths of its band, 1 at the edge) maps to the score
//! s = d² / (1 + d²) in [0, 1], 0.5 at its band edge. The ensemble's score
//! is the largest s (`combine = "max"`, outside when any method is) or the
//! weighted mean of the methods that judged the window (`combine = "mean"`).
//! The ensemble reports the deviation whose score is the combined one,
//! d = √(S / (1 − S)), so its window is outside when S > 0.5.
//!
//! The band and the cleaned value are the first judging method's, so the
//! band shown may not contain the reason for an alert of another method.
//! The stored expected value is the first method's.

use super::band::anomaly_score;
use super::calendar::Calendar;
use super::history::History;
use super::method::{DetectionMethod, MethodOutput, MethodVerdict};
use super::method_params::{CombineRule, EnsembleParams, MAX_ENSEMBLE_METHODS};

#[derive(Debug)]
pub(crate) struct Ensemble {
    methods: Vec<Box<dyn DetectionMethod>>,
    combine: CombineRule,
    /// One weight per method.
    weights: Vec<f64>,
}

impl Ensemble {
    pub fn new(methods: Vec<Box<dyn DetectionMethod>>, params: &EnsembleParams) -> Ensemble {
        let weights = if params.weights.is_empty() {
            vec![1.0; methods.len()]
        } else {
            params.weights.clone()
        };
        Ensemble {
            methods,
            combine: params.combine,
            weights,
        }
    }
}

/// Combines `(score, weight)` pairs by `rule`; `None` when there are none.
pub(crate) fn combine_scores(scores: &[(f64, f64)], rule: CombineRule) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    match rule {
        CombineRule::Max => scores.iter().map(|&(score, _)| score).reduce(f64::max),
        CombineRule::Mean => {
            let total: f64 = scores.iter().map(|&(_, weight)| weight).sum();
            if total <= 0.0 {
                return Some(0.0);
            }
            Some(scores.iter().map(|&(score, weight)| score * weight).sum::<f64>() / total)
        }
    }
}

/// Returns the deviation ratio d whose score d² / (1 + d²) is `score`.
pub(crate) fn ratio_of_score(score: f64) -> f64 {
    if score >= 1.0 {
        return f64::INFINITY;
    }
    (score / (1.0 - score)).max(0.0).sqrt()
}

impl DetectionMethod for Ensemble {
    fn prepare(&mut self, number: i64, history: &History, calendar: &Calendar) {
        for method in &mut self.methods {
            method.prepare(number, history, calendar);
        }
    }

    fn judge(&mut self, number: i64, value: f64, history: &History, calendar: &Calendar) -> MethodOutput {
        let mut expected = None;
        let mut shown: Option<MethodVerdict> = None;
        let mut scores = [(0.0, 0.0); MAX_ENSEMBLE_METHODS];
        let mut count = 0;
        for (method, &weight) in self.methods.iter_mut().zip(&self.weights) {
            let output = method.judge(number, value, history, calendar);
            expected = expected.or(output.expected);
            let Some(verdict) = output.verdict else {
                continue;
            };
            shown.get_or_insert(verdict);
            if count < scores.len() {
                scores[count] = (anomaly_score(verdict.deviation_ratio), weight);
                count += 1;
            }
        }

        let (Some(shown), Some(score)) = (shown, combine_scores(&scores[..count], self.combine)) else {
            return MethodOutput {
                expected,
                verdict: None,
            };
        };
        // The first method's expected value is stored even when another
        // method's band is shown, because a robust band or forecast listed
        // first reads its residuals back from the stored expected values.
        MethodOutput {
            expected: expected.or(Some(shown.band.expected)),
            verdict: Some(MethodVerdict {
                deviation_ratio: ratio_of_score(score),
                ..shown
            }),
        }
    }

    fn record(&mut self, number: i64, history: &History, calendar: &Calendar) {
        for method in &mut self.methods {
            method.record(number, history, calendar);
        }
    }

    // `learn_recurrence` is not passed on: the stored outside flags are the
    // combined verdict, not the robust band's own, so they would teach it
    // shapes its own band never flagged.
    fn rebaseline(&mut self, first: i64, history: &mut History, calendar: &Calendar) {
        for method in &mut self.methods {
            method.rebaseline(first, history, calendar);
        }
    }

    fn is_learning(&self) -> bool {
        self.methods.iter().all(|method| method.is_learning())
    }

    fn heap_bytes(&self) -> usize {
        self.methods.capacity() * size_of::<Box<dyn DetectionMethod>>()
            + self.weights.capacity() * size_of::<f64>()
            + self
                .methods
                .iter()
                .map(|method| size_of_val(method.as_ref()) + method.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_weighted_mean() {
        let scores = [(0.2, 1.0), (0.8, 3.0)];
        assert_eq!(combine_scores(&scores, CombineRule::Max), Some(0.8));
        let mean = combine_scores(&scores, CombineRule::Mean).unwrap();
        assert!((mean - 0.65).abs() < 1e-12, "{mean}");
        assert_eq!(combine_scores(&[], CombineRule::Max), None);
    }

    #[test]
    fn ratio_inverts_score() {
        for ratio in [0.0, 0.5, 1.0, 2.0, 10.0] {
            let back = ratio_of_score(anomaly_score(ratio));
            assert!((back - ratio).abs() < 1e-9, "{ratio} came back as {back}");
        }
        assert_eq!(ratio_of_score(1.0), f64::INFINITY);
    }
}
