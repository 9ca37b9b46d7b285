//! NAB's scoring rules as pure functions over row indices: probationary
//! period, scaled sigmoid rewards and costs, cost profiles, normalisation and
//! the threshold sweep.
//!
//! The rules follow NAB's scorer (`nab/sweeper.py` in github.com/numenta/NAB).
//! A row counts as a detection when its score is at or above the threshold.
//! The first detection inside a window earns `A_tp · σ(y) / σ(−1)`. A
//! detection outside every window costs `A_fp · σ(y)`, relative to the
//! preceding window, and a window without detection costs `−A_fn`. A window
//! that ends inside the probationary period counts neither way.
//!
//! Windows here are row ranges, so unlike NAB a window whose bounds fall
//! between two rows still counts.

/// Weights of one NAB cost profile, read from NAB's `profiles.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct CostProfile {
    pub name: String,
    /// Reward of the earliest possible detection in a window.
    pub tp_weight: f64,
    /// Cost of a detection far from any window.
    pub fp_weight: f64,
    /// Cost of a window without detection.
    pub fn_weight: f64,
}

/// Anomaly scores of one series, with its labelled windows as inclusive row
/// ranges. Windows are sorted and do not overlap.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSeries {
    pub name: String,
    pub scores: Vec<f64>,
    pub windows: Vec<(usize, usize)>,
}

/// Outcome of one series at one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeriesOutcome {
    /// Windows with at least one detection.
    pub true_positives: usize,
    /// Detections outside every window, after the probationary period.
    pub false_positives: usize,
    /// Windows without detection.
    pub false_negatives: usize,
    /// Sum of the weighted rewards and costs.
    pub raw_score: f64,
}

/// Best threshold of a profile over a corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepResult {
    pub threshold: f64,
    pub raw_score: f64,
    /// `100 · (S − S_null) / (S_perfect − S_null)`.
    pub normalised_score: f64,
}

/// Fraction of each series scored before the probationary period ends.
pub const PROBATION_FRACTION: f64 = 0.15;

/// NAB caps the probationary period at 15 % of 5000 rows.
pub const MAX_PROBATION_ROWS: usize = 750;

/// Rows at the start of a series of `rows` rows whose detections NAB ignores:
/// 15 % of the series, at most 750 rows.
pub fn probation_rows(rows: usize) -> usize {
    let fraction = (PROBATION_FRACTION * rows as f64).floor() as usize;
    fraction.min(MAX_PROBATION_ROWS)
}

/// NAB's scaled sigmoid `2 / (1 + e^(5y)) − 1`: 0.987 at `y = −1`, 0 at
/// `y = 0`, and −1 from `y = 3` on.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position >= 3.0 {
        return -1.0;
    }
    2.0 / (1.0 + (5.0 * position).exp()) - 1.0
}

/// Weighted term of a detection at `row`: the reward it earns as the first
/// detection of its window, or the cost it adds outside every window.
/// Returns the index of the window it lies in, if any.
pub fn detection_term(row: usize, windows: &[(usize, usize)], profile: &CostProfile) -> (Option<usize>, f64) {
    let mut preceding: Option<(usize, usize)> = None;
    for (index, &(start, end)) in windows.iter().enumerate() {
        if (start..=end).contains(&row) {
            // -1 at the window's first row, -1/width at its last.
            let width = (end - start + 1) as f64;
            let position = -((end - row + 1) as f64) / width;
            let reward = profile.tp_weight * scaled_sigmoid(position) / scaled_sigmoid(-1.0);
            return (Some(index), reward);
        }
        if end < row {
            preceding = Some((start, end));
        }
    }

    let unweighted = match preceding {
        None => -1.0,
        Some((start, end)) => {
            // A one-row window has no length to divide by, so it counts as two rows.
            let length = (end - start).max(1) as f64;
            scaled_sigmoid((row - end) as f64 / length)
        }
    };
    (None, profile.fp_weight * unweighted)
}

/// Scores one series at `threshold`: every row from the probationary period
/// on whose score is at or above the threshold is a detection.
pub fn score_series(series: &ScoredSeries, profile: &CostProfile, threshold: f64) -> SeriesOutcome {
    let probation = probation_rows(series.scores.len());
    let mut first_detection: Vec<Option<f64>> = vec![None; series.windows.len()];
    let mut outcome = SeriesOutcome::default();

    for (row, &score) in series.scores.iter().enumerate().skip(probation) {
        if score < threshold {
            continue;
        }
        match detection_term(row, &series.windows, profile) {
            (Some(window), reward) => {
                // Rows arrive in order, so the first detection is the earliest.
                first_detection[window].get_or_insert(reward);
            }
            (None, cost) => {
                outcome.false_positives += 1;
                outcome.raw_score += cost;
            }
        }
    }

    let counted = series.windows.iter().map(|&(_, end)| end >= probation);
    for (reward, _) in first_detection.into_iter().zip(counted).filter(|(_, counted)| *counted) {
        match reward {
            Some(reward) => {
                outcome.true_positives += 1;
                outcome.raw_score += reward;
            }
            None => {
                outcome.false_negatives += 1;
                outcome.raw_score -= profile.fn_weight;
            }
        }
    }
    outcome
}

/// Raw score of the detector that never fires: `−A_fn` per counted window.
pub fn null_score(corpus: &[ScoredSeries], profile: &CostProfile) -> f64 {
    -profile.fn_weight * window_count(corpus) as f64
}

/// Raw score of the detector that fires once at the start of every window:
/// `A_tp` per counted window.
pub fn perfect_score(corpus: &[ScoredSeries], profile: &CostProfile) -> f64 {
    profile.tp_weight * window_count(corpus) as f64
}

/// Counts the windows that end after their series' probationary period.
pub fn window_count(corpus: &[ScoredSeries]) -> usize {
    corpus
        .iter()
        .map(|series| {
            let probation = probation_rows(series.scores.len());
            series.windows.iter().filter(|&&(_, end)| end >= probation).count()
        })
        .sum()
}

/// Normalises a raw corpus score: 100 for the perfect detector, 0 for the
/// null detector. A corpus without windows has no scale and gives 0.
pub fn normalise(raw: f64, null: f64, perfect: f64) -> f64 {
    if perfect == null {
        return 0.0;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// Finds the threshold with the highest corpus score for `profile`.
///
/// Lowering the threshold from above the highest score to each distinct
/// score adds that score's rows as detections. An added row outside every
/// window adds its fixed cost. An added row inside a window replaces the
/// window's reward if it is earlier than the window's current first
/// detection. So one pass over the rows sorted by descending score gives
/// the exact score at every distinct threshold. Ties keep the highest
/// threshold; with no gain over the null detector the threshold lies above
/// every score (`f64::INFINITY`).
pub fn sweep_threshold(corpus: &[ScoredSeries], profile: &CostProfile) -> SweepResult {
    let null = null_score(corpus, profile);
    let perfect = perfect_score(corpus, profile);

    // (score, series, row) of every row after the probationary periods.
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for (series_index, series) in corpus.iter().enumerate() {
        let probation = probation_rows(series.scores.len());
        for (row, &score) in series.scores.iter().enumerate().skip(probation) {
            candidates.push((score, series_index, row));
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));

    // Earliest detected row and its reward, per series and window.
    let mut first: Vec<Vec<Option<(usize, f64)>>> =
        corpus.iter().map(|series| vec![None; series.windows.len()]).collect();
    let mut raw = null;
    let mut best = (f64::INFINITY, null);

    let mut index = 0;
    while index < candidates.len() {
        let threshold = candidates[index].0;
        while index < candidates.len() && candidates[index].0 == threshold {
            let (_, series_index, row) = candidates[index];
            let series = &corpus[series_index];
            match detection_term(row, &series.windows, profile) {
                (Some(window), reward) => match first[series_index][window] {
                    None => {
                        raw += reward + profile.fn_weight;
                        first[series_index][window] = Some((row, reward));
                    }
                    Some((earliest, previous_reward)) if row < earliest => {
                        raw += reward - previous_reward;
                        first[series_index][window] = Some((row, reward));
                    }
                    Some(_) => {}
                },
                (None, cost) => raw += cost,
            }
            index += 1;
        }

        if raw > best.1 {
            best = (threshold, raw);
        }
    }

    SweepResult {
        threshold: best.0,
        raw_score: best.1,
        normalised_score: normalise(best.1, null, perfect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard() -> CostProfile {
        CostProfile {
            name: "standard".to_string(),
            tp_weight: 1.0,
            fp_weight: 0.11,
            fn_weight: 1.0,
        }
    }

    fn series(scores: Vec<f64>, windows: Vec<(usize, usize)>) -> ScoredSeries {
        ScoredSeries {
            name: "test".to_string(),
            scores,
            windows,
        }
    }

    /// 20 rows: probation 3 rows, one window over rows 10..=14.
    fn detections_at(rows: &[usize]) -> ScoredSeries {
        let mut scores = vec![0.0; 20];
        for &row in rows {
            scores[row] = 1.0;
        }
        series(scores, vec![(10, 14)])
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-6, "expected {expected}, got {actual}");
    }

    #[test]
    fn probation_is_fifteen_percent_capped() {
        assert_eq!(probation_rows(0), 0);
        assert_eq!(probation_rows(20), 3);
        assert_eq!(probation_rows(4032), 604);
        assert_eq!(probation_rows(5000), 750);
        assert_eq!(probation_rows(22_695), 750);
    }

    #[test]
    fn sigmoid_values() {
        assert_close(scaled_sigmoid(-1.0), 0.986_614_298);
        assert_close(scaled_sigmoid(0.0), 0.0);
        assert_close(scaled_sigmoid(0.5), -0.848_283_639);
        assert_close(scaled_sigmoid(2.99), -0.999_999_3);
        assert_eq!(scaled_sigmoid(3.0), -1.0);
    }

    #[test]
    fn earliest_detection_earns_full_reward() {
        let outcome = score_series(&detections_at(&[10]), &standard(), 0.5);

        assert_eq!(outcome.true_positives, 1);
        assert_eq!(outcome.false_positives, 0);
        assert_eq!(outcome.false_negatives, 0);
        assert_close(outcome.raw_score, 1.0);
    }

    #[test]
    fn later_detection_earns_less() {
        // Row 12: y = -(14 - 12 + 1) / 5 = -0.6, σ(-0.6) / σ(-1) = 0.905148 / 0.986614.
        let outcome = score_series(&detections_at(&[12, 13]), &standard(), 0.5);

        assert_eq!(outcome.true_positives, 1);
        assert_close(outcome.raw_score, 0.917_428_7);
    }

    #[test]
    fn false_positive_costs() {
        // Row 5 precedes every window: -0.11. Row 16: y = (16 - 14) / 4 = 0.5,
        // 0.11 · σ(0.5) = -0.093311. Row 1 is in the probationary period.
        let outcome = score_series(&detections_at(&[1, 5, 16]), &standard(), 0.5);

        assert_eq!(outcome.true_positives, 0);
        assert_eq!(outcome.false_positives, 2);
        assert_eq!(outcome.false_negatives, 1);
        assert_close(outcome.raw_score, -0.11 - 0.093_311_2 - 1.0);
    }

    #[test]
    fn missed_window_costs_fn_weight() {
        let profile = CostProfile {
            fn_weight: 2.0,
            ..standard()
        };
        let outcome = score_series(&detections_at(&[]), &profile, 0.5);

        assert_eq!(outcome.false_negatives, 1);
        assert_close(outcome.raw_score, -2.0);
    }

    #[test]
    fn normalise_scale() {
        assert_close(normalise(2.0, -2.0, 2.0), 100.0);
        assert_close(normalise(-2.0, -2.0, 2.0), 0.0);
        assert_close(normalise(0.0, -2.0, 2.0), 50.0);
        assert_close(normalise(1.0, 0.0, 0.0), 0.0);
    }

    #[test]
    fn sweep_matches_threshold_scan() {
        // Scores on a coarse grid so thresholds tie across rows and series.
        let mut state = 12_345_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % 10) as f64 / 10.0
        };
        let corpus: Vec<ScoredSeries> = (0..4)
            .map(|_| series((0..200).map(|_| next()).collect(), vec![(50, 60), (120, 140)]))
            .collect();
        let profile = standard();

        let swept = sweep_threshold(&corpus, &profile);

        let mut best = (f64::INFINITY, null_score(&corpus, &profile));
        for step in (0..10).rev() {
            let threshold = step as f64 / 10.0;
            let raw: f64 = corpus
                .iter()
                .map(|series| score_series(series, &profile, threshold).raw_score)
                .sum();
            if raw > best.1 {
                best = (threshold, raw);
            }
        }
        assert_eq!(swept.threshold, best.0);
        assert_close(swept.raw_score, best.1);
    }

    #[test]
    fn sweep_without_gain_stays_above_scores() {
        // 70 rows before the window outscore it and cost 0.11 each, more
        // than the window's reward of 1 plus its saved cost of 1.
        let mut scores = vec![1.0; 200];
        scores[100..=104].fill(0.5);
        let corpus = vec![series(scores, vec![(100, 104)])];

        let swept = sweep_threshold(&corpus, &standard());

        assert_eq!(swept.threshold, f64::INFINITY);
        assert_close(swept.normalised_score, 0.0);
    }

    #[test]
    fn window_in_probation_not_counted() {
        // 20 rows, probation 3: the window over rows 0..=2 is neither a miss
        // nor a reward, and the detection at row 4 costs as a false positive
        // 2 rows past a 3-row window: 0.11 · σ(2 / 2).
        let mut scores = vec![0.0; 20];
        scores[4] = 1.0;
        let corpus = vec![series(scores, vec![(0, 2), (10, 14)])];
        let profile = standard();

        let outcome = score_series(&corpus[0], &profile, 0.5);

        assert_eq!(outcome.false_negatives, 1);
        assert_eq!(outcome.false_positives, 1);
        assert_close(outcome.raw_score, 0.11 * scaled_sigmoid(1.0) - 1.0);
        assert_eq!(window_count(&corpus), 1);
        assert_close(null_score(&corpus, &profile), -1.0);
    }
}
