//! Root cause of a deviation of a metric's total: which slices moved with
//! it. Pure and synchronous.

use crate::slice::SliceKey;

/// Contributors attached to one firing of a total, at most.
pub const MAX_CONTRIBUTORS: usize = 5;

/// One slice's value and expected value in the window the total deviated.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceOutcome {
    pub slice: SliceKey,
    pub value: f64,
    pub expected: f64,
}

/// A slice's part in the total's deviation.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub slice: SliceKey,
    pub value: f64,
    pub expected: f64,
    /// (value − expected) / (total value − total expected), greater than 0.
    pub share: f64,
}

/// Ranks `slices` by their share of the total's deviation
/// (`total_value − total_expected`) and returns the `limit` largest shares,
/// largest first, ties by slice.
///
/// Only slices that moved in the total's direction (share > 0) count.
/// Returns nothing when the total did not deviate or a number is not finite.
pub fn rank_contributors(
    total_value: f64,
    total_expected: f64,
    slices: impl IntoIterator<Item = SliceOutcome>,
    limit: usize,
) -> Vec<Contribution> {
    let deviation = total_value - total_expected;
    if deviation == 0.0 || !deviation.is_finite() {
        return Vec::new();
    }

    let mut contributions: Vec<Contribution> = slices
        .into_iter()
        .map(|outcome| Contribution {
            share: (outcome.value - outcome.expected) / deviation,
            slice: outcome.slice,
            value: outcome.value,
            expected: outcome.expected,
        })
        .filter(|contribution| contribution.share.is_finite() && contribution.share > 0.0)
        .collect();

    contributions.sort_by(|left, right| {
        right
            .share
            .total_cmp(&left.share)
            .then_with(|| left.slice.cmp(&right.slice))
    });
    contributions.truncate(limit);
    contributions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(dimension: &str, value_name: &str, value: f64, expected: f64) -> SliceOutcome {
        SliceOutcome {
            slice: SliceKey::single(dimension, value_name),
            value,
            expected,
        }
    }

    fn names(contributions: &[Contribution]) -> Vec<String> {
        contributions
            .iter()
            .map(|contribution| contribution.slice.to_string())
            .collect()
    }

    #[test]
    fn spike_slice_ranks_first() {
        let ranked = rank_contributors(
            300.0,
            100.0,
            [outcome("os", "Android", 52.0, 50.0), outcome("os", "iOS", 248.0, 50.0)],
            5,
        );

        assert_eq!(names(&ranked), vec!["os=iOS", "os=Android"]);
        assert_eq!(ranked[0].share, 198.0 / 200.0);
        assert_eq!(ranked[0].value, 248.0);
        assert_eq!(ranked[0].expected, 50.0);
        assert_eq!(ranked[1].share, 2.0 / 200.0);
    }

    #[test]
    fn drop_ranks_by_share_of_drop() {
        let ranked = rank_contributors(
            40.0,
            100.0,
            [
                outcome("country", "DE", 10.0, 50.0),
                outcome("country", "RU", 30.0, 50.0),
            ],
            5,
        );

        assert_eq!(names(&ranked), vec!["country=DE", "country=RU"]);
        assert_eq!(ranked[0].share, 40.0 / 60.0);
    }

    #[test]
    fn opposite_and_unchanged_slices_are_left_out() {
        let ranked = rank_contributors(
            200.0,
            100.0,
            [
                outcome("os", "iOS", 160.0, 50.0),
                outcome("os", "Android", 40.0, 50.0),
                outcome("os", "Linux", 7.0, 7.0),
            ],
            5,
        );

        assert_eq!(names(&ranked), vec!["os=iOS"]);
    }

    #[test]
    fn dimensions_are_ranked_together() {
        let ranked = rank_contributors(
            200.0,
            100.0,
            [
                outcome("os", "iOS", 150.0, 60.0),
                outcome("source", "ads", 190.0, 95.0),
                outcome("os", "Android", 50.0, 40.0),
            ],
            5,
        );

        assert_eq!(names(&ranked), vec!["source=ads", "os=iOS", "os=Android"]);
    }

    #[test]
    fn limit_keeps_largest_shares() {
        let slices = (0..8).map(|index| outcome("city", &format!("c{index}"), 10.0 + index as f64, 10.0));

        let ranked = rank_contributors(200.0, 100.0, slices, 3);

        assert_eq!(names(&ranked), vec!["city=c7", "city=c6", "city=c5"]);
    }

    #[test]
    fn equal_shares_sort_by_slice() {
        let ranked = rank_contributors(
            20.0,
            10.0,
            [outcome("os", "b", 6.0, 1.0), outcome("os", "a", 6.0, 1.0)],
            5,
        );

        assert_eq!(names(&ranked), vec!["os=a", "os=b"]);
    }

    #[test]
    fn no_deviation_has_no_contributors() {
        let slices = || [outcome("os", "iOS", 90.0, 10.0)];

        assert!(rank_contributors(100.0, 100.0, slices(), 5).is_empty());
        assert!(rank_contributors(f64::NAN, 100.0, slices(), 5).is_empty());
        assert!(rank_contributors(100.0, f64::INFINITY, slices(), 5).is_empty());
    }

    #[test]
    fn non_finite_slice_is_left_out() {
        let ranked = rank_contributors(
            200.0,
            100.0,
            [
                outcome("os", "iOS", f64::NAN, 10.0),
                outcome("os", "Android", 150.0, 60.0),
            ],
            5,
        );

        assert_eq!(names(&ranked), vec!["os=Android"]);
    }
}
