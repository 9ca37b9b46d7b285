//! The text report of an A/B analysis and of an A/A check, for terminals
//! and Telegram (monospaced).

use std::fmt::Write;

use crate::aa::AaCheck;
use crate::analysis::{AbAnalysis, Metric, TestOutcome};

/// p-value of the sample-ratio test below which the report flags a
/// mismatch. Lower than the usual alpha because the check runs on every
/// experiment and a false alarm stops the analysis.
pub const SRM_ALERT_P_VALUE: f64 = 0.001;

/// Bins of the terminal histograms.
const HISTOGRAM_BINS: usize = 10;

/// Width of the longest terminal histogram bar, in characters.
const HISTOGRAM_WIDTH: usize = 30;

/// Renders the A/B report. `period` describes the analysed time range.
pub fn render_ab_report(analysis: &AbAnalysis, period: &str) -> String {
    let mut text = String::new();
    let (control, treatment) = (&analysis.control, &analysis.treatment);
    let _ = writeln!(
        text,
        "A/B test: {} (control {} vs treatment {})",
        metric_title(analysis.metric),
        control.name,
        treatment.name
    );
    let _ = writeln!(text, "Period: {period}");
    let _ = writeln!(text);

    let _ = writeln!(
        text,
        "{:<10} {:>8} {:>10} {:>9} {:>8} {:>12}",
        "group", "users", "views", "likes", "CTR", "mean/user"
    );
    for group in [control, treatment] {
        let _ = writeln!(
            text,
            "{:<10} {:>8} {:>10} {:>9} {:>8.4} {:>12.4}",
            group.name, group.users, group.views, group.likes, group.ctr, group.metric_mean
        );
    }
    let _ = writeln!(text);

    let ratio = &analysis.sample_ratio;
    let verdict = if ratio.p_value < SRM_ALERT_P_VALUE {
        "MISMATCH: check the assignment and logging before trusting the results"
    } else {
        "ok"
    };
    let _ = writeln!(
        text,
        "Sample ratio: expected {}/{}, chi-square {:.3}, p = {:.4} ({verdict})",
        analysis.expected_split[0], analysis.expected_split[1], ratio.chi_square, ratio.p_value
    );
    let _ = writeln!(text);

    let confidence = (1.0 - analysis.alpha) * 100.0;
    let _ = writeln!(
        text,
        "{:<32} {:>10} {:>24} {:>9} {:>9}",
        "test",
        "effect",
        format!("{confidence:.0} % CI"),
        "relative",
        "p-value"
    );
    for test in &analysis.tests {
        let _ = writeln!(text, "{}", test_row(test, analysis.alpha));
    }
    let _ = writeln!(
        text,
        "Effects are treatment minus control; * marks p < {}.",
        analysis.alpha
    );
    let _ = writeln!(text);

    match &analysis.detectable_effect {
        Ok(effect) => {
            let _ = writeln!(
                text,
                "Minimum detectable effect (alpha {}, power {}): {:.5} {} ({:.2} % of control)",
                analysis.alpha,
                analysis.power,
                effect.absolute,
                metric_unit(analysis.metric),
                effect.relative * 100.0
            );
        }
        Err(error) => {
            let _ = writeln!(text, "Minimum detectable effect: not computed: {error}");
        }
    }
    let _ = writeln!(text);

    let _ = writeln!(text, "Per-user {} distribution:", analysis.metric.name());
    text.push_str(&terminal_histograms(&[
        (control.name.as_str(), &analysis.control_values),
        (treatment.name.as_str(), &analysis.treatment_values),
    ]));
    text
}

/// Renders the A/A check as one line per test.
pub fn render_aa_report(check: &AaCheck, population: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "A/A check: {} random splits of {} users ({population}), alpha {}",
        check.simulations, check.users, check.alpha
    );
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "{:<32} {:>10} {:>8} {:>20}",
        "test", "rejected", "rate", "95 % CI of rate"
    );
    for rate in &check.rates {
        let _ = writeln!(
            text,
            "{:<32} {:>10} {:>8.4} {:>20}",
            rate.label,
            format!("{}/{}", rate.rejections, rate.runs),
            rate.rate,
            format!("[{:.4}, {:.4}]", rate.ci_lower, rate.ci_upper)
        );
    }
    let _ = writeln!(
        text,
        "A test whose interval lies above alpha = {} rejects too often on this data.",
        check.alpha
    );
    text
}

fn metric_title(metric: Metric) -> &'static str {
    match metric {
        Metric::Ctr => "CTR, likes per view",
        Metric::Likes => "likes per user",
        Metric::Views => "views per user",
    }
}

fn metric_unit(metric: Metric) -> &'static str {
    match metric {
        Metric::Ctr => "CTR",
        Metric::Likes => "likes per user",
        Metric::Views => "views per user",
    }
}

fn test_row(test: &TestOutcome, alpha: f64) -> String {
    let values = match &test.result {
        Ok(values) => values,
        Err(error) => return format!("{:<32} not computed: {error}", test.label),
    };

    let (effect, interval) = match values.effect {
        Some(effect) => (
            format!("{:+.5}", effect.estimate),
            format!("[{:+.5}, {:+.5}]", effect.lower, effect.upper),
        ),
        None => ("-".to_string(), "-".to_string()),
    };
    let relative = values.relative.map_or_else(
        || "-".to_string(),
        |relative| format!("{:+.2} %", relative.estimate * 100.0),
    );
    let marker = if values.p_value < alpha { "*" } else { "" };
    format!(
        "{:<32} {:>10} {:>24} {:>9} {:>8.4}{marker}",
        test.label, effect, interval, relative, values.p_value
    )
}

/// Draws one bar histogram per sample over shared bins, for terminals.
fn terminal_histograms(samples: &[(&str, &Vec<f64>)]) -> String {
    let values = samples.iter().flat_map(|(_, values)| values.iter().copied());
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    if !low.is_finite() || !high.is_finite() {
        return "  (no values)\n".to_string();
    }
    let width = if high > low {
        (high - low) / HISTOGRAM_BINS as f64
    } else {
        1.0
    };

    let mut text = String::new();
    for (name, values) in samples {
        let _ = writeln!(text, "  group {name}:");
        let shares = histogram_shares(values, low, width, HISTOGRAM_BINS);
        for (bin, share) in shares.iter().enumerate() {
            let start = low + width * bin as f64;
            let bar = "#".repeat(
                (share * HISTOGRAM_WIDTH as f64 * 2.0)
                    .round()
                    .min(HISTOGRAM_WIDTH as f64) as usize,
            );
            let _ = writeln!(
                text,
                "  {:>9.4} .. {:>9.4} {:>6.1} % {bar}",
                start,
                start + width,
                share * 100.0
            );
        }
    }
    text
}

/// Share of `values` in each of `bins` bins of `width` from `low`; the last
/// bin also takes values at its upper edge.
pub fn histogram_shares(values: &[f64], low: f64, width: f64, bins: usize) -> Vec<f64> {
    let mut counts = vec![0usize; bins];
    for value in values {
        let bin = (((value - low) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    counts
        .iter()
        .map(|&count| count as f64 / values.len().max(1) as f64)
        .collect()
}
