//! Every reference value comes from `reference/scipy_reference.py` (SciPy
//! 1.17.1, NumPy 2.4.6); the comment above each names the call.

use super::bootstrap::{poisson_bootstrap_ratio, weighted_ratio};
use super::bucket::{bucket_of, salted_hash};
use super::descriptive::quantile_sorted;
use super::effect::relative_difference;
use super::error::StatsError;
use super::mann_whitney::mann_whitney_u;
use super::power::minimum_detectable_effect;
use super::ratio::{RatioCounts, bucket_ratios, global_ratio, linearize, smooth};
use super::srm::sample_ratio_mismatch;
use super::welch::welch_t_test;

const CONTROL: [f64; 10] = [3.1, 2.4, 5.6, 4.4, 3.3, 2.9, 4.8, 3.7, 5.1, 2.2];
const TREATMENT: [f64; 8] = [4.2, 5.3, 3.9, 6.1, 4.8, 5.5, 4.4, 6.3];
const TIED_CONTROL: [f64; 8] = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 0.0, 1.0];
const TIED_TREATMENT: [f64; 9] = [2.0, 3.0, 3.0, 4.0, 4.0, 1.0, 2.0, 5.0, 5.0];
const RATIO_CONTROL: [(f64, f64); 8] = [
    (1., 10.),
    (0., 3.),
    (2., 8.),
    (5., 20.),
    (0., 0.),
    (3., 12.),
    (1., 7.),
    (2., 9.),
];
const RATIO_TREATMENT: [(f64, f64); 8] = [
    (2., 10.),
    (1., 4.),
    (3., 9.),
    (6., 18.),
    (1., 5.),
    (4., 11.),
    (0., 2.),
    (3., 10.),
];
const BUCKETS_CONTROL: [u32; 8] = [0, 1, 2, 0, 1, 2, 0, 1];
const BUCKETS_TREATMENT: [u32; 8] = [2, 1, 0, 2, 1, 0, 2, 1];

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

fn counts(pairs: &[(f64, f64)]) -> Vec<RatioCounts> {
    pairs
        .iter()
        .map(|&(numerator, denominator)| RatioCounts { numerator, denominator })
        .collect()
}

#[test]
fn welch_matches_scipy() {
    // stats.ttest_ind(TREATMENT, CONTROL, equal_var=False) and its
    // .confidence_interval(0.95)
    let result = welch_t_test(&CONTROL, &TREATMENT, 0.05).unwrap();

    assert_close(result.statistic, 2.7095318837677107, 1e-12);
    assert_close(result.p_value, 0.01548701476587166, 1e-9);
    assert_close(result.degrees_of_freedom, 15.968386731096665, 1e-9);
    assert_close(result.ci_lower, 0.28545046787004624, 1e-9);
    assert_close(result.ci_upper, 2.3395495321299538, 1e-9);
}

#[test]
fn welch_one_constant_group() {
    // stats.ttest_ind(VARYING, CONSTANT, equal_var=False)
    let result = welch_t_test(&[2.0; 4], &[1.0, 3.0, 2.0, 4.0, 3.0], 0.05).unwrap();

    assert_close(result.statistic, 1.1766968108291043, 1e-12);
    assert_close(result.p_value, 0.3045587846805349, 1e-9);
}

#[test]
fn welch_both_constant_rejected() {
    let error = welch_t_test(&[2.0; 4], &[3.0; 5], 0.05).unwrap_err();

    assert!(matches!(error, StatsError::ZeroVariance { .. }), "{error:?}");
    assert!(error.to_string().contains("control 2, treatment 3"), "{error}");
}

#[test]
fn welch_constant_after_rounding_rejected() {
    // The mean of ten 0.2s is not exactly 0.2 in binary floating point.
    let error = welch_t_test(&[0.2; 10], &[0.26; 7], 0.05).unwrap_err();

    assert!(matches!(error, StatsError::ZeroVariance { .. }), "{error:?}");
}

#[test]
fn welch_empty_group_named() {
    let error = welch_t_test(&CONTROL, &[], 0.05).unwrap_err();
    let message = error.to_string();

    assert!(message.contains("group `treatment` has 0 values"), "{message}");
    assert!(message.contains("widen the time range"), "{message}");
}

#[test]
fn welch_rejects_non_finite_and_bad_alpha() {
    let nan = welch_t_test(&[1.0, f64::NAN, 2.0], &TREATMENT, 0.05)
        .unwrap_err()
        .to_string();
    let alpha = welch_t_test(&CONTROL, &TREATMENT, 5.0).unwrap_err().to_string();

    assert!(nan.contains("value 1 of sample `control` is NaN"), "{nan}");
    assert!(alpha.contains("`alpha` is 5"), "{alpha}");
}

#[test]
fn mann_whitney_matches_scipy() {
    // stats.mannwhitneyu(TREATMENT, CONTROL, alternative='two-sided', method='asymptotic')
    let result = mann_whitney_u(&CONTROL, &TREATMENT).unwrap();

    assert_eq!(result.u_statistic, 64.0);
    assert_close(result.p_value, 0.03660091820858935, 1e-9);
    assert_close(result.common_language_effect, 64.0 / 80.0, 1e-15);
}

#[test]
fn mann_whitney_ties_match_scipy() {
    // stats.mannwhitneyu(TIED_TREATMENT, TIED_CONTROL, alternative='two-sided', method='asymptotic')
    let result = mann_whitney_u(&TIED_CONTROL, &TIED_TREATMENT).unwrap();

    assert_eq!(result.u_statistic, 55.0);
    assert_close(result.p_value, 0.06864020724854022, 1e-9);
}

#[test]
fn mann_whitney_is_symmetric() {
    let forward = mann_whitney_u(&CONTROL, &TREATMENT).unwrap();
    let backward = mann_whitney_u(&TREATMENT, &CONTROL).unwrap();

    assert_eq!(forward.p_value, backward.p_value);
    assert_eq!(forward.u_statistic + backward.u_statistic, 80.0);
    assert_close(forward.z, -backward.z, 1e-12);
}

#[test]
fn mann_whitney_all_tied_rejected() {
    let error = mann_whitney_u(&[0.0; 5], &[0.0; 3]).unwrap_err();

    assert!(matches!(error, StatsError::AllTied { count: 8, .. }), "{error:?}");
}

#[test]
fn mann_whitney_empty_group_named() {
    let message = mann_whitney_u(&[], &TREATMENT).unwrap_err().to_string();

    assert!(message.contains("group `control` has 0 values"), "{message}");
}

#[test]
fn srm_matches_scipy() {
    // stats.chisquare([5032, 4968], f_exp=[5000, 5000])
    let two = sample_ratio_mismatch(&[5032, 4968], &[50.0, 50.0]).unwrap();
    // stats.chisquare([1010, 2050, 2940], f_exp=[1000, 2000, 3000])
    let three = sample_ratio_mismatch(&[1010, 2050, 2940], &[1.0, 2.0, 3.0]).unwrap();
    // stats.chisquare([5200, 4800], f_exp=[5000, 5000])
    let mismatch = sample_ratio_mismatch(&[5200, 4800], &[0.5, 0.5]).unwrap();

    assert_close(two.chi_square, 0.4096, 1e-12);
    assert_close(two.p_value, 0.5221725993857229, 1e-10);
    assert_close(three.chi_square, 2.55, 1e-12);
    assert_close(three.p_value, 0.27943096822140745, 1e-10);
    assert_eq!(three.degrees_of_freedom, 2);
    assert_close(mismatch.p_value, 6.334248366623988e-05, 1e-12);
}

#[test]
fn srm_rejects_bad_split_and_empty_groups() {
    let wrong_length = sample_ratio_mismatch(&[10, 10], &[1.0]).unwrap_err().to_string();
    let zero_share = sample_ratio_mismatch(&[10, 10], &[1.0, 0.0]).unwrap_err().to_string();
    let empty = sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]).unwrap_err().to_string();

    assert!(wrong_length.contains("one share per group"), "{wrong_length}");
    assert!(zero_share.contains("a positive number"), "{zero_share}");
    assert!(empty.contains("has 0 values"), "{empty}");
}

#[test]
fn mde_matches_scipy() {
    // (norm.ppf(0.975) + norm.ppf(0.8)) * sqrt(1.3**2/1000 + 1.5**2/1200)
    let mde = minimum_detectable_effect(1.3, 1000, 1.5, 1200, 0.05, 0.8).unwrap();

    assert_close(mde, 0.1672759882737343, 1e-12);
}

#[test]
fn mde_rejects_empty_group_and_bad_power() {
    let empty = minimum_detectable_effect(1.0, 0, 1.0, 10, 0.05, 0.8)
        .unwrap_err()
        .to_string();
    let power = minimum_detectable_effect(1.0, 10, 1.0, 10, 0.05, 1.0)
        .unwrap_err()
        .to_string();

    assert!(empty.contains("`control size` is 0"), "{empty}");
    assert!(power.contains("`power` is 1"), "{power}");
}

#[test]
fn relative_difference_matches_numpy() {
    // Delta method with np.var(ddof=1) and norm.ppf(0.975), see relative()
    // in the reference script.
    let interval = relative_difference(&CONTROL, &TREATMENT, 0.05).unwrap();

    assert_close(interval.estimate, 0.3500000000000001, 1e-12);
    assert_close(interval.lower, 0.04191419685389991, 1e-12);
    assert_close(interval.upper, 0.6580858031461003, 1e-12);
}

#[test]
fn linearized_ctr_matches_scipy() {
    let control = counts(&RATIO_CONTROL);
    let treatment = counts(&RATIO_TREATMENT);
    // likes_c.sum() / views_c.sum()
    let control_ratio = global_ratio("control", &control).unwrap();
    assert_close(control_ratio, 0.2028985507246377, 1e-15);

    // stats.ttest_ind(likes_t - ctr_c*views_t, likes_c - ctr_c*views_c, equal_var=False)
    let result = welch_t_test(
        &linearize(&control, control_ratio),
        &linearize(&treatment, control_ratio),
        0.05,
    )
    .unwrap();

    assert_close(result.statistic, 1.8071195227317716, 1e-12);
    assert_close(result.p_value, 0.09540088065008494, 1e-9);
}

#[test]
fn smoothed_ctr_matches_scipy() {
    let control = counts(&RATIO_CONTROL);
    let treatment = counts(&RATIO_TREATMENT);
    let control_ratio = global_ratio("control", &control).unwrap();

    // stats.ttest_ind((likes_t + 5*ctr_c)/(views_t + 5), (likes_c + 5*ctr_c)/(views_c + 5), equal_var=False)
    let result = welch_t_test(
        &smooth(&control, control_ratio, 5.0).unwrap(),
        &smooth(&treatment, control_ratio, 5.0).unwrap(),
        0.05,
    )
    .unwrap();

    assert_close(result.statistic, 1.8273933963431153, 1e-12);
    assert_close(result.p_value, 0.09043932818367736, 1e-9);
}

#[test]
fn smoothing_strength_must_be_positive() {
    let message = smooth(&counts(&RATIO_CONTROL), 0.2, 0.0).unwrap_err().to_string();

    assert!(message.contains("`smoothing strength` is 0"), "{message}");
}

#[test]
fn bucketed_ctr_matches_scipy() {
    let control = bucket_ratios(&counts(&RATIO_CONTROL), &BUCKETS_CONTROL, 3);
    let treatment = bucket_ratios(&counts(&RATIO_TREATMENT), &BUCKETS_TREATMENT, 3);
    // per-bucket likes.sum()/views.sum()
    for (actual, expected) in control.iter().zip([0.1891891891891892, 0.16666666666666666, 0.25]) {
        assert_close(*actual, expected, 1e-15);
    }

    // stats.ttest_ind(bucket_t, bucket_c, equal_var=False)
    let result = welch_t_test(&control, &treatment, 0.05).unwrap();

    assert_close(result.statistic, 2.419298488706859, 1e-12);
    assert_close(result.p_value, 0.07390643088046217, 1e-9);
}

#[test]
fn empty_buckets_left_out() {
    let ratios = bucket_ratios(&counts(&[(1.0, 4.0), (0.0, 0.0)]), &[0, 2], 3);

    assert_eq!(ratios, vec![0.25]);
}

#[test]
fn zero_views_ratio_rejected() {
    let message = global_ratio("2", &counts(&[(0.0, 0.0)])).unwrap_err().to_string();

    assert!(message.contains("group `2` has no denominator events"), "{message}");
}

#[test]
fn own_group_ctr_hides_effect() {
    // The treatment's likes per view are 50 % higher for every user, yet
    // linearising each group with its own CTR centres both groups at 0.
    let control: Vec<RatioCounts> = (0..400)
        .map(|i| RatioCounts {
            numerator: f64::from(i % 5),
            denominator: 10.0 + f64::from(i % 7),
        })
        .collect();
    let treatment: Vec<RatioCounts> = control
        .iter()
        .map(|user| RatioCounts {
            numerator: user.numerator * 1.5,
            denominator: user.denominator,
        })
        .collect();
    let control_ratio = global_ratio("control", &control).unwrap();
    let treatment_ratio = global_ratio("treatment", &treatment).unwrap();

    let correct = welch_t_test(
        &linearize(&control, control_ratio),
        &linearize(&treatment, control_ratio),
        0.05,
    )
    .unwrap();
    let pitfall = welch_t_test(
        &linearize(&control, control_ratio),
        &linearize(&treatment, treatment_ratio),
        0.05,
    )
    .unwrap();

    assert!(
        correct.p_value < 1e-6,
        "control-CTR linearisation p = {}",
        correct.p_value
    );
    assert!(pitfall.p_value > 0.999, "own-CTR linearisation p = {}", pitfall.p_value);
}

#[test]
fn quantile_matches_numpy() {
    let mut values = vec![0.3, -1.2, 4.5, 2.2, 0.0, 1.1, -0.4];
    values.sort_by(f64::total_cmp);

    // np.quantile(values, [0.025, 0.5, 0.975])
    assert_close(quantile_sorted(&values, 0.025), -1.0799999999999998, 1e-12);
    assert_close(quantile_sorted(&values, 0.5), 0.3, 1e-15);
    assert_close(quantile_sorted(&values, 0.975), 4.154999999999999, 1e-12);
}

#[test]
fn weighted_ratio_matches_numpy() {
    let control_weights = [1.0, 0.0, 2.0, 1.0, 3.0, 0.0, 1.0, 1.0];
    let treatment_weights = [0.0, 1.0, 1.0, 2.0, 1.0, 1.0, 0.0, 3.0];

    let difference = weighted_ratio(&counts(&RATIO_TREATMENT), &treatment_weights).unwrap()
        - weighted_ratio(&counts(&RATIO_CONTROL), &control_weights).unwrap();

    // (w_t*likes_t).sum()/(w_t*views_t).sum() - (w_c*likes_c).sum()/(w_c*views_c).sum()
    assert_close(difference, 0.10611205432937179, 1e-15);
}

/// views = 1 + (7 i) % 13, likes = ((3 i) % (views + 1)) / 3 for 2000
/// users from `offset`, as `bootstrap_standard_error` in the script.
fn synthetic_users(offset: u64) -> Vec<RatioCounts> {
    (offset..offset + 2000)
        .map(|i| {
            let views = 1 + (7 * i) % 13;
            let likes = ((3 * i) % (views + 1)) / 3;
            RatioCounts {
                numerator: likes as f64,
                denominator: views as f64,
            }
        })
        .collect()
}

#[test]
fn bootstrap_spread_matches_delta_method() {
    let control = synthetic_users(0);
    let treatment = synthetic_users(1000);

    let result = poisson_bootstrap_ratio(&control, &treatment, 2000, 0.05, 7).unwrap();
    let spread: Vec<f64> = result
        .treatment_replicates
        .iter()
        .zip(&result.control_replicates)
        .map(|(treatment, control)| treatment - control)
        .collect();
    let standard_error = super::descriptive::sample_variance(&spread).sqrt();

    // lt.sum()/vt.sum() - lc.sum()/vc.sum()
    assert_close(result.difference, -0.0004363274558080166, 1e-15);
    // Delta-method standard error 0.003939516136683339 from the script; 2000
    // replicates estimate it within about 3 % (one standard error of an SD
    // estimate is 1/sqrt(2 * 2000) = 1.6 %).
    assert_close(standard_error, 0.003939516136683339, 0.05 * 0.003939516136683339);
    assert!(
        result.ci_lower < result.difference,
        "interval starts at {}",
        result.ci_lower
    );
    assert!(
        result.ci_upper > result.difference,
        "interval ends at {}",
        result.ci_upper
    );
    assert!(result.p_value > 0.5, "no effect, yet p = {}", result.p_value);
}

#[test]
fn bootstrap_relative_interval_brackets_estimate() {
    let control = synthetic_users(0);
    let treatment: Vec<RatioCounts> = synthetic_users(1000)
        .into_iter()
        .map(|user| RatioCounts {
            numerator: user.numerator * 1.2,
            denominator: user.denominator,
        })
        .collect();

    let result = poisson_bootstrap_ratio(&control, &treatment, 1000, 0.05, 3).unwrap();
    let relative = result.treatment_ratio / result.control_ratio - 1.0;

    assert!(
        result.relative_ci_lower < relative,
        "{} vs {relative}",
        result.relative_ci_lower
    );
    assert!(
        result.relative_ci_upper > relative,
        "{} vs {relative}",
        result.relative_ci_upper
    );
    // The relative interval is roughly the absolute one over the control
    // ratio, within the control ratio's own spread of a few percent.
    let scaled_width = (result.ci_upper - result.ci_lower) / result.control_ratio;
    let width = result.relative_ci_upper - result.relative_ci_lower;
    assert!(
        (width / scaled_width - 1.0).abs() < 0.2,
        "widths {width} and {scaled_width}"
    );
}

#[test]
fn bootstrap_single_users_do_not_panic() {
    let one = counts(&[(1.0, 2.0)]);

    let result = poisson_bootstrap_ratio(&one, &one, 200, 0.05, 1).unwrap();

    // About e^-1 of the replicates weigh a group's only user 0 and are
    // skipped; the rest give a difference of 0.
    assert_eq!(result.difference, 0.0);
    assert!(result.control_replicates.len() < 200);
    assert_eq!(result.p_value, 1.0);
}

#[test]
fn bootstrap_is_seeded() {
    let control = synthetic_users(0);
    let treatment = synthetic_users(1000);

    let first = poisson_bootstrap_ratio(&control, &treatment, 200, 0.05, 42).unwrap();
    let second = poisson_bootstrap_ratio(&control, &treatment, 200, 0.05, 42).unwrap();
    let other_seed = poisson_bootstrap_ratio(&control, &treatment, 200, 0.05, 43).unwrap();

    assert_eq!(first, second);
    assert_ne!(first.ci_lower, other_seed.ci_lower);
}

#[test]
fn bootstrap_finds_large_effect() {
    let control = synthetic_users(0);
    let treatment: Vec<RatioCounts> = synthetic_users(1000)
        .into_iter()
        .map(|user| RatioCounts {
            numerator: user.numerator + 1.0,
            denominator: user.denominator,
        })
        .collect();

    let result = poisson_bootstrap_ratio(&control, &treatment, 500, 0.05, 1).unwrap();

    assert!(
        result.ci_lower > 0.0,
        "interval {}..{}",
        result.ci_lower,
        result.ci_upper
    );
    assert_eq!(result.p_value, 0.0);
}

#[test]
fn salted_hash_matches_clickhouse() {
    // clickhouse-client -q "SELECT sipHash64(concat('a', 'bc'))" on 18.16.1
    assert_eq!(salted_hash("a", "bc"), 4596069200710135518);
    // clickhouse-client -q "SELECT sipHash64('')"
    assert_eq!(salted_hash("", ""), 2202906307356721367);
}

#[test]
fn buckets_spread_users_evenly() {
    let mut sizes = [0u32; 10];
    for user in 0..10_000 {
        sizes[bucket_of(&format!("user-{user}"), "buckets", 10) as usize] += 1;
    }

    for size in sizes {
        assert!((900..=1100).contains(&size), "bucket sizes {sizes:?}");
    }
}
