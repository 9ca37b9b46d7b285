//! Command-line options of `seismo-detector replay`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::{ReplayOptions, ReplaySummary, ScoreMode, replay_path};
use crate::config::{DetectionDefaults, METRICS_FILE_KEYS, apply_count_defaults, parse_duration_ms};
use crate::detection::{DetectionParams, MethodName};

/// Score NAB-format series files offline with the live detector's maths and
/// write NAB results files.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Series file (`timestamp,value` CSV, UTC `YYYY-MM-DD HH:MM:SS` times)
    /// or a directory searched recursively for `.csv` files.
    pub input: PathBuf,

    /// Directory for the results. A directory input is mirrored as
    /// `<group>/<detector>_<file>.csv`.
    pub output: PathBuf,

    /// Label windows for the `label` column: NAB's `combined_windows.json`
    /// or a `{"file": ..., "windows": [...]}` file. Without it labels are 0.
    #[arg(long)]
    pub labels: Option<PathBuf>,

    /// Window length, e.g. 5m or 30m. Default: each file's most common time step.
    #[arg(long, value_parser = parse_duration_ms)]
    pub window: Option<i64>,

    /// Detector name used in the results file names.
    #[arg(long, default_value = "seismo")]
    pub detector: String,

    /// TOML file whose `[detection]` table overrides the default detection
    /// parameters, e.g. the service's metrics file. A metric's own
    /// `detection` table in that file is not applied: copy its keys into
    /// `[detection]` to score with them.
    #[arg(long)]
    pub params: Option<PathBuf>,

    /// Defaults under the params file: `plain`, those of a sum or ratio
    /// metric, or `count`, those of a count or unique_users metric in the
    /// metrics file (the count noise model with the default method).
    #[arg(long, value_enum, default_value = "plain")]
    pub defaults: DetectionDefaults,

    /// Score column: `alert` writes the window's calibrated score (at least
    /// 1e-6) where an episode fires and 0 elsewhere, `window` writes every
    /// window's score (0.5 at the band edge).
    #[arg(long, value_enum, default_value = "alert")]
    pub score: ScoreMode,
}

impl ReplayArgs {
    /// Reads the params file, if any, and builds the replay options.
    pub fn into_options(self) -> anyhow::Result<ReplayOptions> {
        let params = read_params(self.params.as_deref(), None, self.defaults)?;
        Ok(ReplayOptions {
            detector_name: self.detector,
            window_ms: self.window,
            labels: self.labels,
            params,
            score: self.score,
        })
    }
}

/// Runs `seismo-detector replay` and logs what it wrote.
pub fn run(args: ReplayArgs) -> anyhow::Result<ReplaySummary> {
    let (input, output) = (args.input.clone(), args.output.clone());
    let defaults = args.defaults;
    let options = args.into_options()?;
    let params = &options.params;
    tracing::info!(
        ?defaults,
        method = %params.method,
        residual_scale = params.effective_residual_scale().as_str(),
        level_adjustment = params.level_adjustment.as_str(),
        reference_windows = params.reference_windows,
        learn_daily_recurrence = params.learn_daily_recurrence,
        fire_outside = params.fire_outside,
        fire_lookback = params.fire_lookback,
        fire_ratio = params.fire_ratio.unwrap_or(params.critical_ratio),
        critical_ratio = params.critical_ratio,
        escalate = params.escalate,
        fire_tail_probability = params.fire_tail_probability,
        "detection settings"
    );

    let summary = replay_path(&input, &output, &options)?;
    tracing::info!(
        files = summary.files.len(),
        rows = summary.rows(),
        fired = summary.fired(),
        output = %output.display(),
        "replay finished"
    );
    Ok(summary)
}

/// Returns the detection parameters of an offline run: the `[detection]`
/// table of the params file at `path` (none without a file), its method
/// replaced by `method` if given, over the `defaults`.
pub fn read_params(
    path: Option<&Path>,
    method: Option<MethodName>,
    defaults: DetectionDefaults,
) -> anyhow::Result<DetectionParams> {
    let mut table = match path {
        Some(path) => read_detection_table(path)?,
        None => toml::Table::new(),
    };
    if let Some(method) = method {
        table.insert("method".to_string(), method.to_string().into());
    }
    if defaults == DetectionDefaults::Count {
        apply_count_defaults(&mut table);
    }
    params_from_table(table, path.unwrap_or(Path::new("the built-in defaults")))
}

/// Reads the `[detection]` table of a TOML file, empty when it has none.
/// An unknown top-level key is an error, because it is most likely a
/// detection setting written above the `[detection]` header.
fn read_detection_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read params file {}; check the --params path", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("params file {} is not valid TOML", path.display()))?;

    if let Some(key) = table.keys().find(|key| !METRICS_FILE_KEYS.contains(&key.as_str())) {
        anyhow::bail!(
            "unknown top-level key `{key}` in params file {}; put detection settings under a \
             [detection] table (a metrics file's top level has only {})",
            path.display(),
            METRICS_FILE_KEYS.join(", ")
        );
    }

    match table.remove("detection") {
        None => Ok(toml::Table::new()),
        Some(toml::Value::Table(detection)) => Ok(detection),
        Some(other) => anyhow::bail!(
            "[detection] in {} is a {}, not a table; write it as a [detection] table of settings",
            path.display(),
            other.type_str()
        ),
    }
}

/// Deserialises a `[detection]` table read from the params file `path`.
fn params_from_table(table: toml::Table, path: &Path) -> anyhow::Result<DetectionParams> {
    toml::Value::Table(table).try_into().map_err(|error: toml::de::Error| {
        anyhow::anyhow!(
            "invalid [detection] table in {}: {}",
            path.display(),
            crate::config::plain_error(&error.to_string())
        )
    })
}
