//! Sampling step of a series file, used as its window length.

use std::collections::BTreeMap;

/// Returns the most common positive difference between consecutive times
/// (ms), the smaller one on a tie, or `None` without two increasing times.
pub(crate) fn infer_step_ms(times: impl IntoIterator<Item = i64>) -> Option<i64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut previous: Option<i64> = None;
    for time in times {
        if let Some(previous) = previous {
            let step = time - previous;
            if step > 0 {
                *counts.entry(step).or_default() += 1;
            }
        }
        previous = Some(time);
    }

    // `max_by_key` keeps the last maximum, so iterate from the largest step
    // to end on the smallest among equals.
    counts
        .into_iter()
        .rev()
        .max_by_key(|&(_, count)| count)
        .map(|(step, _)| step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_steps() {
        assert_eq!(infer_step_ms([0, 300, 600, 900]), Some(300));
    }

    #[test]
    fn most_common_step_wins() {
        // A gap, a duplicate and an out-of-order row around a 5-minute grid.
        assert_eq!(
            infer_step_ms([0, 300, 600, 1_500, 1_500, 1_200, 1_800, 2_100]),
            Some(300)
        );
    }

    #[test]
    fn tie_takes_smaller_step() {
        assert_eq!(infer_step_ms([0, 600, 900]), Some(300));
    }

    #[test]
    fn too_few_times() {
        assert_eq!(infer_step_ms([]), None);
        assert_eq!(infer_step_ms([5]), None);
        assert_eq!(infer_step_ms([5, 5]), None);
    }
}
