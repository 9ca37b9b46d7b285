//! Per-user transformations of a ratio metric such as CTR (likes / views),
//! whose users contribute unequal numbers of views.

use super::error::StatsError;

/// Numerator and denominator events of one user, e.g. likes and views.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioCounts {
    pub numerator: f64,
    pub denominator: f64,
}

/// Σ numerator / Σ denominator over all users: the group's global ratio.
pub fn global_ratio(group: &str, users: &[RatioCounts]) -> Result<f64, StatsError> {
    let numerator: f64 = users.iter().map(|user| user.numerator).sum();
    let denominator: f64 = users.iter().map(|user| user.denominator).sum();
    if denominator > 0.0 {
        Ok(numerator / denominator)
    } else {
        Err(StatsError::ZeroDenominator {
            group: group.to_string(),
            denominator: "denominator",
        })
    }
}

/// Computes each user's own ratio, leaving out users without denominator
/// events.
pub fn per_user_ratios(users: &[RatioCounts]) -> Vec<f64> {
    users
        .iter()
        .filter(|user| user.denominator > 0.0)
        .map(|user| user.numerator / user.denominator)
        .collect()
}

/// Computes the linearised metric numerator − `control_ratio` × denominator
/// per user.
///
/// Its difference of means between groups has the sign of the difference of
/// global ratios, and it is a plain per-user mean, so a t-test applies. The
/// control group's global ratio must be used for every group: with each
/// group's own ratio both means are exactly 0 and any effect disappears.
pub fn linearize(users: &[RatioCounts], control_ratio: f64) -> Vec<f64> {
    users
        .iter()
        .map(|user| user.numerator - control_ratio * user.denominator)
        .collect()
}

/// Smoothed per-user ratio (numerator + a·prior) / (denominator + a), which
/// pulls users with few events towards `prior_ratio` (the control's global
/// ratio) and is defined for users without denominator events. `strength`
/// (a) is in denominator events and must be positive.
pub fn smooth(users: &[RatioCounts], prior_ratio: f64, strength: f64) -> Result<Vec<f64>, StatsError> {
    if !(strength.is_finite() && strength > 0.0) {
        return Err(StatsError::InvalidParameter {
            name: "smoothing strength",
            value: strength,
            expected: "a positive number of denominator events, e.g. 5",
        });
    }
    Ok(users
        .iter()
        .map(|user| (user.numerator + strength * prior_ratio) / (user.denominator + strength))
        .collect())
}

/// Global ratio of each bucket, where `buckets[i]` is the bucket of
/// `users[i]` in `0..bucket_count`. Buckets without denominator events are
/// left out, so the result may be shorter than `bucket_count`.
pub fn bucket_ratios(users: &[RatioCounts], buckets: &[u32], bucket_count: u32) -> Vec<f64> {
    let mut numerators = vec![0.0; bucket_count as usize];
    let mut denominators = vec![0.0; bucket_count as usize];
    for (user, &bucket) in users.iter().zip(buckets) {
        numerators[bucket as usize] += user.numerator;
        denominators[bucket as usize] += user.denominator;
    }

    numerators
        .iter()
        .zip(&denominators)
        .filter(|(_, denominator)| **denominator > 0.0)
        .map(|(numerator, denominator)| numerator / denominator)
        .collect()
}
