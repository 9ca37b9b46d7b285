//! Command-line options of `seismo-detector evaluate` and the text reports
//! it prints.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::business::{MethodOutcomes, compare};
use super::business_match::MatchOutcome;
use super::business_series::{DEFAULT_LEVEL_PER_30_MINUTES, DEFAULT_WINDOW_MS, SuiteOptions, generate_suite_with};
use super::iqr::IqrRule;
use super::nab_corpus::{ProfileReport, read_profiles, replay_corpus, score_corpus};
use super::nab_score::window_count;
use crate::config::{DetectionDefaults, format_duration_ms, parse_duration_ms};
use crate::detection::{DetectionParams, MethodName};
use crate::replay::{ReplayOptions, ScoreMode, read_params};

/// Measure detection quality: NAB's score on a NAB corpus, or precision and
/// recall on synthetic business metrics against an IQR baseline.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    #[command(subcommand)]
    pub suite: EvaluateSuite,
}

#[derive(Debug, Clone, Subcommand)]
pub enum EvaluateSuite {
    /// Score every series of a NAB corpus with NAB's rules, the threshold
    /// chosen per cost profile.
    Nab(NabArgs),
    /// Compare the detector with the IQR rule on seeded synthetic business
    /// metrics with labelled anomalies.
    Business(BusinessArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NabArgs {
    /// NAB corpus directory, with `data/<group>/<file>.csv`,
    /// `labels/combined_windows.json` and `profiles.json`.
    pub corpus: PathBuf,

    /// TOML file whose `[detection]` table overrides the default detection
    /// parameters, e.g. the service's metrics file. A metric's own
    /// `detection` table in that file is not applied: copy its keys into
    /// `[detection]` to score with them.
    #[arg(long)]
    pub params: Option<PathBuf>,

    /// Defaults under the params file: `plain`, those of a sum or ratio
    /// metric, or `count`, those of a count or unique_users metric in the
    /// metrics file.
    #[arg(long, value_enum, default_value = "plain")]
    pub defaults: DetectionDefaults,

    /// Anomaly score per row: `window` scores every window (0.5 at the band
    /// edge), `alert` scores only windows where an episode fires.
    #[arg(long, value_enum, default_value = "window")]
    pub score: ScoreMode,

    /// Detection method to score, replacing the `method` of the params
    /// file: robust_band, iqr, percent_change, three_sigma, forecast, novelty or ensemble.
    #[arg(long)]
    pub method: Option<MethodName>,

    /// Directory to keep the replay results files in. Default: a temporary
    /// directory, removed afterwards.
    #[arg(long)]
    pub results: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct BusinessArgs {
    /// Seed of the synthetic series; the same seed gives the same series.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Several seeds, comma-separated, e.g. 1,2,3,4,5, in place of `--seed`.
    /// The report sums the outcomes over all of them.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,

    /// Methods to compare with the IQR rule, comma-separated. Default: every method.
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<MethodName>>,

    /// TOML file whose `[detection]` table overrides the default detection
    /// parameters. A metric's own `detection` table in that file is not
    /// applied: copy its keys into `[detection]` to score with them.
    #[arg(long)]
    pub params: Option<PathBuf>,

    /// Defaults under the params file: `count`, those of a count metric in
    /// the metrics file (the suite's series count orders), or `plain`, those
    /// of a sum or ratio metric.
    #[arg(long, value_enum, default_value = "count")]
    pub defaults: DetectionDefaults,

    /// Window length of the series, e.g. 5m or 1h: a whole number of
    /// minutes that divides an hour, because the anomalies start and end
    /// on whole hours.
    #[arg(long, default_value = "30m", value_parser = parse_duration_ms)]
    pub window: i64,

    /// Orders per window at the weekly mean of every series, before the
    /// daily cycle (±60 %), the weekly cycle and the trend. Default: 500 per
    /// 30 minutes, so about 83 with 5-minute windows.
    #[arg(long, allow_negative_numbers = true)]
    pub level: Option<f64>,

    /// Draw each window's value as a Poisson count around the generated
    /// value, so the series also have the noise of counted events.
    #[arg(long)]
    pub poisson: bool,

    /// Previous windows the IQR rule takes its quartiles over. Default: one
    /// day of windows (48 with 30-minute windows).
    #[arg(long)]
    pub iqr_windows: Option<usize>,

    /// IQRs beyond the quartiles from which the IQR rule flags a window.
    #[arg(long, default_value_t = 1.5, allow_negative_numbers = true)]
    pub iqr_coefficient: f64,
}

/// Runs `seismo-detector evaluate` and returns the report to print.
pub fn run(args: EvaluateArgs) -> anyhow::Result<String> {
    match args.suite {
        EvaluateSuite::Nab(args) => run_nab(args),
        EvaluateSuite::Business(args) => run_business(args),
    }
}

fn run_nab(args: NabArgs) -> anyhow::Result<String> {
    let profiles = read_profiles(&args.corpus.join("profiles.json"))?;
    let params = read_params(args.params.as_deref(), args.method, args.defaults)?;
    let options = ReplayOptions {
        detector_name: "seismo".to_string(),
        params,
        score: args.score,
        ..ReplayOptions::default()
    };

    let temporary;
    let results = match &args.results {
        Some(results) => results.as_path(),
        None => {
            temporary = tempfile::tempdir().context("cannot create a temporary directory for the replay results")?;
            temporary.path()
        }
    };
    let corpus = replay_corpus(&args.corpus, results, &options)?;
    let reports = score_corpus(&corpus, &profiles);

    let windows = window_count(&corpus);
    tracing::info!(series = corpus.len(), windows, "scored NAB corpus");
    Ok(format_nab_report(args.score, corpus.len(), windows, &reports))
}

fn run_business(args: BusinessArgs) -> anyhow::Result<String> {
    let options = SuiteOptions {
        level: args
            .level
            .unwrap_or(DEFAULT_LEVEL_PER_30_MINUTES * args.window as f64 / DEFAULT_WINDOW_MS as f64),
        poisson: args.poisson,
        window_ms: args.window,
    };
    if let Err(problem) = options.validate() {
        bail!("invalid --window {}: {problem}", format_duration_ms(args.window));
    }
    let iqr_windows = args.iqr_windows.unwrap_or_else(|| options.windows_per_day());
    if iqr_windows == 0 {
        bail!("invalid --iqr-windows 0: give the previous windows the IQR rule reads as a positive number, e.g. 48");
    }
    if !(args.iqr_coefficient.is_finite() && args.iqr_coefficient >= 0.0) {
        bail!(
            "invalid --iqr-coefficient {}: give a finite number of IQRs, 0 or more, e.g. 1.5",
            args.iqr_coefficient
        );
    }
    if !(options.level.is_finite() && options.level > 0.0) {
        bail!(
            "invalid --level {}: give the orders per window as a positive number, e.g. 500",
            options.level
        );
    }
    let methods = args.methods.clone().unwrap_or_else(|| MethodName::ALL.to_vec());
    let method_params = methods
        .iter()
        .map(|&method| read_params(args.params.as_deref(), Some(method), args.defaults))
        .collect::<anyhow::Result<Vec<DetectionParams>>>()?;
    let rule = IqrRule {
        windows: iqr_windows,
        coefficient: args.iqr_coefficient,
        // Quartiles of fewer values than a quarter of the window count, or
        // than 8, swing too much to judge by.
        min_windows: (iqr_windows / 4).max(8).min(iqr_windows),
    };

    let seeds = args.seeds.clone().unwrap_or_else(|| vec![args.seed]);

    // Per seed, then summed per method and series over the seeds.
    let mut summed: Vec<MethodOutcomes> = Vec::new();
    let mut per_seed_f1: Vec<Vec<f64>> = Vec::new();
    let mut names: Vec<&'static str> = Vec::new();
    for &seed in &seeds {
        let suite = generate_suite_with(seed, &options);
        names = suite.iter().map(|series| series.name).collect();
        let outcomes = compare(&suite, &method_params, &rule);
        per_seed_f1.push(outcomes.iter().map(|method| method.total().f1()).collect());
        if summed.is_empty() {
            summed = outcomes;
        } else {
            for (sum, outcome) in summed.iter_mut().zip(&outcomes) {
                for (series_sum, series) in sum.series.iter_mut().zip(&outcome.series) {
                    series_sum.add(series);
                }
            }
        }
    }

    let suite = SuiteDescription {
        seeds: &seeds,
        options,
        defaults: args.defaults,
    };
    Ok(format_business_report(&suite, &rule, &names, &summed, &per_seed_f1))
}

/// Suite a business report was run on, named in its first line.
struct SuiteDescription<'a> {
    seeds: &'a [u64],
    options: SuiteOptions,
    defaults: DetectionDefaults,
}

/// Formats the totals per method, the delays on the anomalies each method
/// shares with the baseline (the last outcome), F1 per seed, and
/// detected/FP and the mean delay per series.
fn format_business_report(
    suite: &SuiteDescription,
    rule: &IqrRule,
    names: &[&str],
    outcomes: &[MethodOutcomes],
    per_seed_f1: &[Vec<f64>],
) -> String {
    let seed_list: Vec<String> = suite.seeds.iter().map(u64::to_string).collect();
    let counts = if suite.options.poisson { ", Poisson counts" } else { "" };
    let defaults = match suite.defaults {
        DetectionDefaults::Count => "count metric defaults",
        DetectionDefaults::Plain => "plain defaults",
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "synthetic business metrics, seeds {}, {}-minute windows, level {} orders per window{counts}, {defaults}; \
         IQR rule n = {} windows, a = {}",
        seed_list.join(","),
        suite.options.window_ms / 60_000,
        // One decimal: the default level with 5-minute windows is 500 / 6.
        (suite.options.level * 10.0).round() / 10.0,
        rule.windows,
        rule.coefficient
    );
    let _ = writeln!(
        report,
        "{:<16} {:>9} {:>8} {:>4} {:>9} {:>6} {:>6} {:>10} {:>12}",
        "method", "anomalies", "detected", "FP", "precision", "recall", "F1", "mean delay", "median delay"
    );
    for method in outcomes {
        let _ = writeln!(report, "{:<16} {}", method.name, outcome_row(&method.total()));
    }

    // The mean delay above is over each method's own detections, which
    // favours a method that detects only the easy anomalies at once.
    if let Some((baseline, methods)) = outcomes.split_last() {
        let baseline_total = baseline.total();
        let _ = write!(
            report,
            "\nmean delay on the anomalies both a method and {0} detect\n{1:<16} {2:>9} {3:>9} {4:>14}\n",
            baseline.name,
            "method",
            "anomalies",
            "its delay",
            format!("{} delay", baseline.name)
        );
        for method in methods {
            let cells = match method.total().shared_delay(&baseline_total) {
                Some(shared) => format!("{:>9} {:>9.2} {:>14.2}", shared.shared, shared.method, shared.baseline),
                None => format!("{:>9} {:>9} {:>14}", 0, "-", "-"),
            };
            let _ = writeln!(report, "{:<16} {cells}", method.name);
        }
    }

    let _ = write!(report, "\nF1 per seed\n{:<16}", "method");
    for seed in suite.seeds {
        let _ = write!(report, " {:>6}", format!("seed {seed}"));
    }
    report.push('\n');
    for (index, method) in outcomes.iter().enumerate() {
        let _ = write!(report, "{:<16}", method.name);
        for seed_f1 in per_seed_f1 {
            let _ = write!(report, " {:>6.2}", seed_f1[index]);
        }
        report.push('\n');
    }

    write_series_table(
        &mut report,
        "detected/FP per series, summed over the seeds",
        names,
        outcomes,
        |outcome| {
            format!(
                "{}/{} of {}",
                outcome.detected(),
                outcome.false_positives,
                outcome.anomalies()
            )
        },
    );

    // Within one series the anomalies are of one kind, so a method's mean
    // delay there compares fairly with the baseline's.
    write_series_table(
        &mut report,
        "mean delay per series, over the seeds",
        names,
        outcomes,
        |outcome| {
            outcome
                .mean_delay()
                .map_or_else(|| "-".to_string(), |delay| format!("{delay:.2}"))
        },
    );
    let _ = writeln!(
        report,
        "delay: windows from an anomaly's first window to its first alert; iqr_rule is the baseline"
    );
    report
}

/// Writes a table titled `title` with a row per series in `names` and a
/// column per method, each cell `cell` of that method's outcome there.
fn write_series_table(
    report: &mut String,
    title: &str,
    names: &[&str],
    outcomes: &[MethodOutcomes],
    cell: impl Fn(&MatchOutcome) -> String,
) {
    let _ = write!(report, "\n{title}\n{:<12}", "series");
    for method in outcomes {
        let _ = write!(report, " {:>14}", method.name);
    }
    report.push('\n');

    for (index, name) in names.iter().enumerate() {
        let _ = write!(report, "{name:<12}");
        for method in outcomes {
            let _ = write!(report, " {:>14}", cell(&method.series[index]));
        }
        report.push('\n');
    }
}

fn outcome_row(outcome: &MatchOutcome) -> String {
    // Two decimals for the mean, as in the tables below: at one decimal,
    // means of 0.07 and 0.09 windows would both print as 0.1.
    let format_delay = |delay: Option<f64>, decimals: usize| {
        delay.map_or_else(|| "-".to_string(), |delay| format!("{delay:.decimals$}"))
    };
    format!(
        "{:>9} {:>8} {:>4} {:>9.2} {:>6.2} {:>6.2} {:>10} {:>12}",
        outcome.anomalies(),
        outcome.detected(),
        outcome.false_positives,
        outcome.precision(),
        outcome.recall(),
        outcome.f1(),
        format_delay(outcome.mean_delay(), 2),
        format_delay(outcome.median_delay(), 1)
    )
}

/// Formats the per-profile scores and the per-series TP/FP/FN counts at
/// each profile's threshold.
pub fn format_nab_report(score: ScoreMode, series: usize, windows: usize, reports: &[ProfileReport]) -> String {
    let mut report = String::new();
    let mode = match score {
        ScoreMode::Window => "window",
        ScoreMode::Alert => "alert",
    };
    let _ = writeln!(
        report,
        "NAB score, score mode {mode}, {series} series, {windows} windows after probation"
    );
    let _ = writeln!(
        report,
        "{:<20} {:>10} {:>10} {:>10}",
        "profile", "threshold", "raw", "score"
    );
    for profile in reports {
        let _ = writeln!(
            report,
            "{:<20} {:>10.4} {:>10.3} {:>10.1}",
            profile.profile.name, profile.sweep.threshold, profile.sweep.raw_score, profile.sweep.normalised_score
        );
    }

    let _ = write!(
        report,
        "\nTP/FP/FN per series at each profile's threshold\n{:<56}",
        "series"
    );
    for profile in reports {
        let _ = write!(report, " {:>20}", profile.profile.name);
    }
    report.push('\n');
    let names = reports.first().map_or(&[][..], |profile| profile.series.as_slice());
    for (index, (name, _)) in names.iter().enumerate() {
        let _ = write!(report, "{name:<56}");
        for profile in reports {
            let outcome = profile.series[index].1;
            let counts = format!(
                "{}/{}/{}",
                outcome.true_positives, outcome.false_positives, outcome.false_negatives
            );
            let _ = write!(report, " {counts:>20}");
        }
        report.push('\n');
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(delays: Vec<Option<usize>>, false_positives: usize) -> MatchOutcome {
        MatchOutcome {
            delays,
            false_positives,
        }
    }

    #[test]
    fn business_report_mean_delay_per_series() {
        let suite = SuiteDescription {
            seeds: &[1, 2],
            options: SuiteOptions {
                level: 500.0,
                ..SuiteOptions::default()
            },
            defaults: DetectionDefaults::Count,
        };
        let rule = IqrRule {
            windows: 48,
            coefficient: 1.5,
            min_windows: 12,
        };
        let outcomes = [
            MethodOutcomes {
                name: "robust_band".to_string(),
                series: vec![outcome(vec![Some(0), Some(1)], 0), outcome(vec![Some(2), Some(1)], 1)],
            },
            MethodOutcomes {
                name: "iqr_rule".to_string(),
                series: vec![outcome(vec![Some(0), None], 3), outcome(vec![None, None], 2)],
            },
        ];

        let report = format_business_report(
            &suite,
            &rule,
            &["spikes", "level_shift"],
            &outcomes,
            &[vec![1.0, 0.5], vec![1.0, 0.5]],
        );

        let table = report
            .split("mean delay per series, over the seeds\n")
            .nth(1)
            .expect("the report has a per-series delay table");
        let rows: Vec<Vec<&str>> = table
            .lines()
            .take(3)
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["series", "robust_band", "iqr_rule"]);
        assert_eq!(rows[1], ["spikes", "0.50", "0.00"]);
        assert_eq!(rows[2], ["level_shift", "1.50", "-"]);
    }
}
