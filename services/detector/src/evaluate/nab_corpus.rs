//! Runs the live detector over a NAB corpus directory through the replay
//! module and scores the results with NAB's rules.
//!
//! The corpus directory has NAB's layout: `data/<group>/<file>.csv`,
//! `labels/combined_windows.json` and `profiles.json`.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;

use super::nab_score::{CostProfile, ScoredSeries, SeriesOutcome, SweepResult, score_series, sweep_threshold};
use crate::replay::{ReplayOptions, replay_path};

/// Scores of a corpus for one cost profile.
#[derive(Debug, Clone)]
pub struct ProfileReport {
    pub profile: CostProfile,
    pub sweep: SweepResult,
    /// Outcome of each series at the profile's best threshold, in corpus order.
    pub series: Vec<(String, SeriesOutcome)>,
}

/// Reads NAB's `profiles.json`. The standard profile comes first, the
/// others follow in name order.
pub fn read_profiles(path: &Path) -> anyhow::Result<Vec<CostProfile>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read profiles file {}; is the corpus directory right?",
            path.display()
        )
    })?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("profiles file {} is not valid JSON", path.display()))?;
    let Some(entries) = json.as_object() else {
        bail!(
            "profiles file {} must be a JSON object of profile name → CostMatrix",
            path.display()
        );
    };

    let mut profiles = Vec::new();
    for (name, entry) in entries {
        let weight = |key: &str| {
            entry["CostMatrix"][key].as_f64().with_context(|| {
                format!(
                    "profiles file {}: profile \"{name}\" has no number CostMatrix.{key}",
                    path.display()
                )
            })
        };
        profiles.push(CostProfile {
            name: name.clone(),
            tp_weight: weight("tpWeight")?,
            fp_weight: weight("fpWeight")?,
            fn_weight: weight("fnWeight")?,
        });
    }
    profiles.sort_by_key(|profile| (profile.name != "standard", profile.name.clone()));
    Ok(profiles)
}

/// Replays every series of the corpus into `results_directory` with
/// `options` (its labels path is replaced by the corpus' windows file) and
/// reads back each series' scores and labelled windows.
pub fn replay_corpus(
    corpus: &Path,
    results_directory: &Path,
    options: &ReplayOptions,
) -> anyhow::Result<Vec<ScoredSeries>> {
    let data = corpus.join("data");
    let options = ReplayOptions {
        labels: Some(corpus.join("labels").join("combined_windows.json")),
        ..options.clone()
    };

    let summary = replay_path(&data, results_directory, &options)?;

    let mut corpus_series = Vec::new();
    for file in &summary.files {
        let name = file
            .input
            .strip_prefix(&data)
            .unwrap_or(&file.input)
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        if !file.has_labels {
            tracing::warn!(file = %name, "windows file has no entry for this series; scoring it without windows");
        }
        let (scores, labels) = read_results(&file.output)?;
        corpus_series.push(ScoredSeries {
            name,
            scores,
            windows: label_runs(&labels),
        });
    }
    Ok(corpus_series)
}

/// Finds each profile's best threshold and the per-series outcomes there.
pub fn score_corpus(corpus: &[ScoredSeries], profiles: &[CostProfile]) -> Vec<ProfileReport> {
    profiles
        .iter()
        .map(|profile| {
            let sweep = sweep_threshold(corpus, profile);
            let series = corpus
                .iter()
                .map(|series| (series.name.clone(), score_series(series, profile, sweep.threshold)))
                .collect();
            ProfileReport {
                profile: profile.clone(),
                sweep,
                series,
            }
        })
        .collect()
}

/// Reads the `anomaly_score` and `label` columns of a replay results file.
fn read_results(path: &Path) -> anyhow::Result<(Vec<f64>, Vec<bool>)> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot open results file {}", path.display()))?;
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read results file {}", path.display()))?;
        let score: f64 = record.get(2).and_then(|text| text.parse().ok()).with_context(|| {
            format!(
                "results file {}: row {} has no numeric anomaly_score",
                path.display(),
                scores.len() + 1
            )
        })?;
        scores.push(score);
        labels.push(record.get(3) == Some("1"));
    }
    Ok((scores, labels))
}

/// Turns a per-row label column into inclusive row ranges. NAB's windows do
/// not touch each other, so each run of labelled rows is one window.
// NOTE: two windows with no unlabelled row between them would merge into one.
pub fn label_runs(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut windows = Vec::new();
    let mut start = None;
    for (row, &labelled) in labels.iter().enumerate() {
        match (labelled, start) {
            (true, None) => start = Some(row),
            (false, Some(first)) => {
                windows.push((first, row - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(first) = start {
        windows.push((first, labels.len() - 1));
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_runs_become_windows() {
        let labels = [false, true, true, false, false, true, false, true];

        assert_eq!(label_runs(&labels), vec![(1, 2), (5, 5), (7, 7)]);
        assert_eq!(label_runs(&[]), Vec::<(usize, usize)>::new());
        assert_eq!(label_runs(&[true, true]), vec![(0, 1)]);
    }
}
