//! Running moments of a per-user ratio metric and the delta-method variance
//! of its ratio of sums.
//!
//! A ratio metric such as CTR is `Σ likes / Σ views` over a group's users.
//! Its events are not independent (one user's views are correlated), so its
//! variance comes from per-user totals: with `a_u` and `b_u` the numerator
//! and denominator of user `u`, the delta method gives
//!
//! ```text
//! Var(R) ≈ (s_aa − 2 R s_ab + R² s_bb) / (n · mean_b²),   R = Σa / Σb
//! ```
//!
//! with `s` the sample (co)variances over the group's `n` users (see A. Deng,
//! U. Knoblich and J. Lu, "Applying the Delta Method in Metric Analytics",
//! KDD 2018). A per-user mean ("messages per user") is the special case
//! `b_u = 1`.
//!
//! Users' totals grow as their events arrive, so the sums of squares are
//! updated by the change of one user's totals: O(1) per event, with the
//! per-user totals kept by the caller.

/// Sums over one group's users of `a`, `b`, `a²`, `b²` and `a·b`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RatioMoments {
    users: u64,
    sum_a: f64,
    sum_b: f64,
    sum_aa: f64,
    sum_bb: f64,
    sum_ab: f64,
}

/// The ratio of sums of a group and the delta-method variance of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioEstimate {
    pub users: u64,
    pub ratio: f64,
    pub variance: f64,
}

impl RatioMoments {
    /// Adds a user with totals `(a, b)`.
    pub fn add_user(&mut self, a: f64, b: f64) {
        self.users += 1;
        self.add(a, b, 1.0);
    }

    /// Replaces one user's totals `before` with `after`.
    pub fn update_user(&mut self, before: (f64, f64), after: (f64, f64)) {
        self.add(before.0, before.1, -1.0);
        self.add(after.0, after.1, 1.0);
    }

    fn add(&mut self, a: f64, b: f64, sign: f64) {
        self.sum_a += sign * a;
        self.sum_b += sign * b;
        self.sum_aa += sign * a * a;
        self.sum_bb += sign * b * b;
        self.sum_ab += sign * a * b;
    }

    pub fn users(&self) -> u64 {
        self.users
    }

    /// Returns the ratio of sums and its variance, or `None` with fewer than
    /// two users or a zero denominator.
    pub fn estimate(&self) -> Option<RatioEstimate> {
        if self.users < 2 || self.sum_b <= 0.0 {
            return None;
        }

        let n = self.users as f64;
        let ratio = self.sum_a / self.sum_b;
        let mean_a = self.sum_a / n;
        let mean_b = self.sum_b / n;
        let var_a = (self.sum_aa - n * mean_a * mean_a) / (n - 1.0);
        let var_b = (self.sum_bb - n * mean_b * mean_b) / (n - 1.0);
        let cov_ab = (self.sum_ab - n * mean_a * mean_b) / (n - 1.0);

        // Rounding can leave a tiny negative value when every user is alike.
        let variance = ((var_a - 2.0 * ratio * cov_ab + ratio * ratio * var_b) / (n * mean_b * mean_b)).max(0.0);
        Some(RatioEstimate {
            users: self.users,
            ratio,
            variance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-user (likes, views) used by the reference computation.
    const USERS: [(f64, f64); 6] = [
        (1.0, 10.0),
        (0.0, 4.0),
        (3.0, 12.0),
        (2.0, 5.0),
        (0.0, 1.0),
        (5.0, 30.0),
    ];

    #[test]
    fn estimate_matches_delta_method_reference() {
        let mut moments = RatioMoments::default();
        for (a, b) in USERS {
            moments.add_user(a, b);
        }

        // numpy 2.4:
        //   a = np.array([1, 0, 3, 2, 0, 5.]); b = np.array([10, 4, 12, 5, 1, 30.])
        //   R = a.sum() / b.sum(); c = np.cov(a, b)   # ddof = 1
        //   (c[0,0] - 2*R*c[0,1] + R*R*c[1,1]) / (len(a) * b.mean()**2)
        let estimate = moments.estimate().unwrap();
        assert_eq!(estimate.users, 6);
        assert!((estimate.ratio - 11.0 / 62.0).abs() < 1e-12);
        assert!(
            (estimate.variance - 0.001_010_101_556_975_966_9).abs() < 1e-12,
            "{}",
            estimate.variance
        );
    }

    #[test]
    fn updates_equal_adding_final_totals() {
        let mut incremental = RatioMoments::default();
        let mut totals = vec![(0.0, 0.0); USERS.len()];
        for _ in &USERS {
            incremental.add_user(0.0, 0.0);
        }
        // Events arrive one at a time: views first, then likes.
        for (index, (likes, views)) in USERS.iter().enumerate() {
            for _ in 0..*views as usize {
                let after = (totals[index].0, totals[index].1 + 1.0);
                incremental.update_user(totals[index], after);
                totals[index] = after;
            }
            for _ in 0..*likes as usize {
                let after = (totals[index].0 + 1.0, totals[index].1);
                incremental.update_user(totals[index], after);
                totals[index] = after;
            }
        }

        let mut direct = RatioMoments::default();
        for (a, b) in USERS {
            direct.add_user(a, b);
        }
        let (left, right) = (incremental.estimate().unwrap(), direct.estimate().unwrap());
        assert!((left.ratio - right.ratio).abs() < 1e-12);
        assert!((left.variance - right.variance).abs() < 1e-12);
    }

    #[test]
    fn no_estimate_without_two_users_or_a_denominator() {
        let mut moments = RatioMoments::default();
        assert!(moments.estimate().is_none());
        moments.add_user(1.0, 2.0);
        assert!(moments.estimate().is_none());
        let mut zeros = RatioMoments::default();
        zeros.add_user(0.0, 0.0);
        zeros.add_user(0.0, 0.0);
        assert!(zeros.estimate().is_none());
    }
}
