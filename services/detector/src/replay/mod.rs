//! Offline replay: runs NAB-format series files through the same
//! [`SeriesDetector`] the live service uses, one window per row, and writes
//! NAB's results format so detection quality can be scored without Kafka.
//!
//! A file input `<dir>/<file>.csv` becomes `<output>/<detector>_<file>.csv`.
//! A directory input is searched recursively and mirrored:
//! `<input>/<group>/<file>.csv` becomes `<output>/<group>/<detector>_<file>.csv`,
//! the names NAB's scorer expects under its results directory.
//!
//! Each output row is `timestamp,value,anomaly_score,label`: the input's
//! timestamp and value as written, the window's score in [0, 1] (see
//! [`ScoreMode`]), and 1 when the row lies in a labelled window of the
//! `--labels` file, else 0. Rows that do not start a new window (repeated or
//! out-of-order times) get score 0 and are counted as skipped.
//!
//! Pure file I/O, no async runtime.

mod args;
mod labels;
mod series_file;
mod step;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::detection::{DetectionParams, SeriesDetector, Transition};

pub use args::{ReplayArgs, read_params, run};
use labels::LabelSet;

/// Score written for a firing whose calibrated score is 0 (too little
/// history to rank it), so every firing shows in `alert` mode.
const LOWEST_ALERT_SCORE: f64 = 1e-6;

/// Score written in each output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScoreMode {
    /// The window's anomaly score (0.5 at the band edge), so a scorer can
    /// pick its own threshold.
    Window,
    /// The window's calibrated score (what the service sends with an
    /// alert), at least 1e-6, only where an episode fires, 0 elsewhere.
    Alert,
}

/// Settings of a replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Detector name in the output file names.
    pub detector_name: String,
    /// Window length in ms, or `None` for each file's most common time step.
    pub window_ms: Option<i64>,
    /// Labels file for the `label` column. Without one the column is 0.
    pub labels: Option<PathBuf>,
    pub params: DetectionParams,
    pub score: ScoreMode,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            detector_name: "seismo".to_string(),
            window_ms: None,
            labels: None,
            params: DetectionParams::default(),
            score: ScoreMode::Alert,
        }
    }
}

/// Record of the files a replay read and wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    pub files: Vec<FileSummary>,
}

impl ReplaySummary {
    pub fn rows(&self) -> usize {
        self.files.iter().map(|file| file.rows).sum()
    }

    pub fn fired(&self) -> usize {
        self.files.iter().map(|file| file.fired).sum()
    }
}

/// One replayed file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSummary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub rows: usize,
    /// Rows at or before the previous row's window, scored 0.
    pub skipped_rows: usize,
    pub window_ms: i64,
    /// Episodes fired.
    pub fired: usize,
    /// Windows learnt as a new daily shape (`learn_daily_recurrence`).
    pub daily_shapes_learnt: u64,
    /// Rows inside a labelled window.
    pub labelled_rows: usize,
    /// The labels file had an entry for this file.
    pub has_labels: bool,
}

/// Replays the series file or directory tree `input` into the directory
/// `output`. Stops at the first file that fails, with an error that names
/// the file, the line and the fix.
pub fn replay_path(input: &Path, output: &Path, options: &ReplayOptions) -> anyhow::Result<ReplaySummary> {
    if options.window_ms.is_some_and(|window_ms| window_ms <= 0) {
        bail!("window length must be positive, got {:?} ms", options.window_ms);
    }
    let metadata = std::fs::metadata(input).with_context(|| {
        format!(
            "input {} not found; pass a NAB-format CSV file or a directory of them",
            input.display()
        )
    })?;
    let labels = options.labels.as_deref().map(LabelSet::load).transpose()?;

    let inputs = if metadata.is_dir() {
        let mut files = Vec::new();
        collect_csv_files(input, output, &mut files)?;
        files.sort();
        files
    } else {
        vec![input.to_path_buf()]
    };

    let mut summary = ReplaySummary::default();
    for file in inputs {
        let relative = if metadata.is_dir() {
            file.strip_prefix(input).unwrap_or(&file).to_path_buf()
        } else {
            PathBuf::from(file.file_name().unwrap_or_default())
        };
        let file_summary = replay_file(&file, &relative, output, options, labels.as_ref())?;
        tracing::info!(
            input = %file_summary.input.display(),
            output = %file_summary.output.display(),
            rows = file_summary.rows,
            skipped_rows = file_summary.skipped_rows,
            window_ms = file_summary.window_ms,
            fired = file_summary.fired,
            daily_shapes_learnt = file_summary.daily_shapes_learnt,
            "replayed series file"
        );
        summary.files.push(file_summary);
    }
    Ok(summary)
}

/// Adds the `.csv` files under `directory` to `files`, recursively, except
/// those in `output`, which may lie inside the input tree.
fn collect_csv_files(directory: &Path, output: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(directory).with_context(|| format!("cannot list directory {}", directory.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list directory {}", directory.display()))?
            .path();
        if path == output {
            continue;
        }
        if path.is_dir() {
            collect_csv_files(&path, output, files)?;
        } else if path.extension().is_some_and(|extension| extension == "csv") {
            files.push(path);
        }
    }
    Ok(())
}

fn replay_file(
    input: &Path,
    relative: &Path,
    output_directory: &Path,
    options: &ReplayOptions,
    labels: Option<&LabelSet>,
) -> anyhow::Result<FileSummary> {
    let rows = series_file::read_series(input)?;
    let window_ms = match options.window_ms {
        Some(window_ms) => window_ms,
        None => step::infer_step_ms(rows.iter().map(|row| row.time_ms)).with_context(|| {
            format!(
                "{}: cannot infer the sampling step, which needs two rows with increasing times; pass --window",
                input.display()
            )
        })?,
    };

    let key = relative.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
    let windows = match labels {
        Some(labels) => labels.windows_for(&key)?,
        None => None,
    };
    if labels.is_some() && windows.is_none() {
        tracing::warn!(file = %key, "labels file has no entry for this file; writing label 0");
    }

    let file_name = relative.file_name().unwrap_or_default().to_string_lossy();
    let output = output_directory
        .join(relative.parent().unwrap_or(Path::new("")))
        .join(format!("{}_{file_name}", options.detector_name));
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    let mut writer =
        csv::Writer::from_path(&output).with_context(|| format!("cannot create results file {}", output.display()))?;
    let write_error = || format!("cannot write results file {}", output.display());
    writer
        .write_record(["timestamp", "value", "anomaly_score", "label"])
        .with_context(write_error)?;

    let mut detector = SeriesDetector::new(&options.params, window_ms);
    let mut summary = FileSummary {
        input: input.to_path_buf(),
        output: output.clone(),
        rows: rows.len(),
        skipped_rows: 0,
        window_ms,
        fired: 0,
        daily_shapes_learnt: 0,
        labelled_rows: 0,
        has_labels: windows.is_some(),
    };
    for row in &rows {
        let score = match detector.observe(row.time_ms, row.value) {
            None => {
                summary.skipped_rows += 1;
                0.0
            }
            Some(evaluation) => {
                let fired = matches!(evaluation.transition, Some(Transition::Fired { .. }));
                summary.fired += usize::from(fired);
                match options.score {
                    ScoreMode::Window => evaluation.score,
                    ScoreMode::Alert if fired => evaluation.calibrated_score.max(LOWEST_ALERT_SCORE),
                    ScoreMode::Alert => 0.0,
                }
            }
        };

        let labelled = windows.is_some_and(|windows| labels::is_labelled(row.time_ms, windows));
        summary.labelled_rows += usize::from(labelled);
        let score_text = score.to_string();
        let label = if labelled { "1" } else { "0" };
        writer
            .write_record([
                row.timestamp.as_str(),
                row.value_text.as_str(),
                score_text.as_str(),
                label,
            ])
            .with_context(write_error)?;
    }

    writer.flush().with_context(write_error)?;
    summary.daily_shapes_learnt = detector.recurrences_learnt();
    Ok(summary)
}
