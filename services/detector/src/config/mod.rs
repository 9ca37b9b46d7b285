//! Metric definitions and windowing settings, loaded from a TOML file.
//!
//! A file has an optional `[windowing]` table, an optional `[detection]`
//! table of defaults for every metric, and one `[[metric]]` table per metric:
//!
//! ```toml
//! [[metric]]
//! name = "views"                 # letters, digits, `_`, `-`, `.`
//! events = ["view"]              # event names that count
//! filter = { country = "RU" }    # optional field equality filters
//! aggregation = "count"          # count | unique_users | sum | ratio
//! window = "5m"                  # tumbling window, must divide a day
//! dimensions = ["os", "source"]  # optional slices
//! detection = { }                # optional overrides of [detection]
//!
//! [[metric]]
//! name = "ctr"
//! aggregation = "ratio"
//! numerator = "likes"            # names of count, unique_users or sum metrics
//! denominator = "views"
//! window = "5m"
//! ```
//!
//! Slicing rule: a metric with dimensions `[os, source]` yields the total
//! series plus one series per value of each dimension on its own (`os=iOS`,
//! `os=Android`, `source=ads`, ...). Dimensions are not crossed, so the
//! number of series is the sum of the dimensions' cardinalities, not their
//! product. An event without a dimension's field counts in the total only.

mod count_defaults;
mod duration;
mod plain_errors;

pub use count_defaults::{DetectionDefaults, apply_count_defaults};
pub use plain_errors::plain_error;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use seismo_events::{DIMENSION_FIELDS, Event};
use serde::Deserialize;

use seismo_sequential::{ExperimentConfig, ExperimentMonitor};

use crate::detection::DetectionParams;

pub use duration::{format_duration_ms, parse_duration_ms};

const DAY_MS: i64 = 86_400_000;

/// Reason a metrics file was rejected. `Invalid` names the metric, the key
/// and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read metrics file {path}: {source}; check the path given with --config")]
    Read { path: PathBuf, source: std::io::Error },

    /// The parser's message, kept as text so the error chain does not
    /// print it twice.
    #[error("metrics file is invalid: {0}")]
    Syntax(String),

    #[error(
        "unknown top-level key `{key}`; put detection settings under a [detection] table or in a metric's \
         `detection` table (the top level has only windowing, detection, metric and experiment)"
    )]
    UnknownTopLevelKey { key: String },

    #[error("metrics file defines no [[metric]]; add at least one metric")]
    NoMetrics,

    #[error("[windowing] key `{key}`: {problem}")]
    InvalidWindowing { key: &'static str, problem: String },

    #[error("[detection] table: invalid detection parameters: {0}")]
    InvalidDetection(String),

    #[error("[[experiment]] `{experiment}`: {problem}")]
    InvalidExperiment { experiment: String, problem: String },

    #[error("metric `{metric}`, key `{key}`: {problem}")]
    Invalid {
        metric: String,
        key: &'static str,
        problem: String,
    },
}

/// A validated metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    pub windowing: WindowingSettings,
    /// In file order; a metric's position is its index in the service.
    pub metrics: Vec<MetricDefinition>,
    /// Running experiments whose sample ratio and guardrails the detector
    /// watches (`[[experiment]]` tables, see `crate::experiment_watch`).
    pub experiments: Vec<ExperimentConfig>,
}

/// Event-time rules shared by all metrics; see [`crate::windowing`].
#[derive(Debug, Clone, PartialEq)]
pub struct WindowingSettings {
    /// How far behind the latest accepted event time an event may be and
    /// still count: a window closes when the watermark
    /// (max accepted event time − this) reaches its end. Milliseconds.
    pub allowed_lateness_ms: i64,
    /// An event more than this ahead of the latest accepted event time is
    /// held back until confirmed. Milliseconds.
    pub max_future_jump_ms: i64,
    /// Number of held events within `max_future_jump_ms` of each other that
    /// confirm a jump of event time; 1 disables the hold-back.
    pub future_confirmations: usize,
    /// Held events beyond this number are rejected, latest first.
    pub max_held_events: usize,
    /// A series without events for this long stops getting empty (zero)
    /// windows and is forgotten by the windowing. Milliseconds.
    pub series_idle_limit_ms: i64,
    /// New values of one dimension of one metric beyond this number are not
    /// sliced (their events still count in the total).
    pub max_slices_per_dimension: usize,
    /// A Kafka partition that delivers no event while the consumer waits
    /// this long for messages, without reaching the partition's end, stops
    /// holding the watermark back until its next event (a stuck broker must
    /// not stop every window). 0 waits for it forever. Milliseconds of
    /// wall-clock waiting time.
    pub partition_idle_timeout_ms: i64,
}

impl Default for WindowingSettings {
    fn default() -> Self {
        WindowingSettings {
            allowed_lateness_ms: 60_000,
            max_future_jump_ms: 3_600_000,
            future_confirmations: 3,
            max_held_events: 1_000,
            series_idle_limit_ms: 7 * DAY_MS,
            max_slices_per_dimension: 200,
            partition_idle_timeout_ms: 30_000,
        }
    }
}

/// One validated metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDefinition {
    pub name: String,
    pub window: WindowLength,
    /// Event fields to slice by, each from [`DIMENSION_FIELDS`].
    pub dimensions: Vec<String>,
    pub value: MetricValue,
    /// `[detection]` defaults merged with the metric's own `detection` table.
    pub detection: DetectionParams,
}

/// Aggregation that turns the events of one window and slice into a number.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Aggregate(Aggregate),
    /// `numerator / denominator`, both aggregated over the same window and
    /// slice; a window whose denominator is 0 has no value.
    Ratio {
        numerator: Aggregate,
        denominator: Aggregate,
    },
}

impl MetricValue {
    /// Returns whether the value counts events or distinct users, so its
    /// noise is that of a count. Not for sums and ratios.
    pub fn counts_events(&self) -> bool {
        matches!(
            self,
            MetricValue::Aggregate(Aggregate {
                aggregation: Aggregation::Count | Aggregation::UniqueUsers,
                ..
            })
        )
    }

    /// Returns whether no window can have a negative value: counts, distinct
    /// users and ratios of them. A sum is not, because event values can be
    /// negative (refunds, corrections).
    pub fn is_non_negative(&self) -> bool {
        match self {
            MetricValue::Aggregate(aggregate) => aggregate.aggregation.is_non_negative(),
            MetricValue::Ratio { numerator, denominator } => {
                numerator.aggregation.is_non_negative() && denominator.aggregation.is_non_negative()
            }
        }
    }
}

/// An aggregation over the events that pass a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Name of the metric this aggregate is defined by.
    pub source_metric: String,
    pub filter: EventFilter,
    pub aggregation: Aggregation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Number of events.
    Count,
    /// Number of distinct `user_id`s.
    UniqueUsers,
    /// Sum of the events' `value` field; events without it add nothing.
    Sum,
}

impl Aggregation {
    fn is_non_negative(self) -> bool {
        matches!(self, Aggregation::Count | Aggregation::UniqueUsers)
    }
}

/// Events a metric counts: the event name is one of `events` and every
/// field in `fields` equals its value.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub events: BTreeSet<String>,
    /// Field name (from [`DIMENSION_FIELDS`]) to required value.
    pub fields: BTreeMap<String, String>,
}

impl EventFilter {
    pub fn matches(&self, event: &Event) -> bool {
        if !self.events.contains(&event.event) {
            return false;
        }
        self.fields
            .iter()
            .all(|(field, expected)| event.dimension(field) == Some(expected.as_str()))
    }
}

/// Length of a tumbling window: whole seconds that divide a day, so windows
/// aligned to the Unix epoch line up with days and weeks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowLength {
    milliseconds: i64,
}

impl WindowLength {
    /// Checks a length in milliseconds; the error explains the rule.
    pub fn from_ms(milliseconds: i64) -> Result<WindowLength, String> {
        if milliseconds < 1_000 || milliseconds % 1_000 != 0 {
            return Err(format!(
                "{} is not a whole number of seconds of at least 1s; use e.g. 1m, 5m or 1h",
                format_duration_ms(milliseconds)
            ));
        }
        if DAY_MS % milliseconds != 0 {
            return Err(format!(
                "{} does not divide a day evenly, so windows would not line up with days; use 1m, 5m, 10m, 15m, 30m, 1h, 2h, ... or 1d",
                format_duration_ms(milliseconds)
            ));
        }
        Ok(WindowLength { milliseconds })
    }

    pub fn as_ms(self) -> i64 {
        self.milliseconds
    }

    pub fn as_seconds(self) -> u32 {
        // At most one day, so the value fits.
        (self.milliseconds / 1_000) as u32
    }

    /// Start of the window containing `time_ms`, aligned to the Unix epoch.
    pub fn start_of(self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.milliseconds) * self.milliseconds
    }
}

impl MetricsConfig {
    /// Reads and validates a metrics file.
    pub fn load(path: &Path) -> Result<MetricsConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        MetricsConfig::parse(&text)
    }

    /// Parses and validates the text of a metrics file.
    pub fn parse(text: &str) -> Result<MetricsConfig, ConfigError> {
        let file: RawFile = toml::from_str(text).map_err(|error| syntax_error(text, &error))?;
        if file.metric.is_empty() {
            return Err(ConfigError::NoMetrics);
        }

        let windowing = file.windowing.validate()?;
        // Check the defaults alone first, so their errors are not blamed on a metric.
        toml::Value::Table(file.detection.clone())
            .try_into::<DetectionParams>()
            .map_err(|error| ConfigError::InvalidDetection(plain_error(&error.to_string())))?;
        let metrics = validate_metrics(&file.metric, &file.detection)?;
        validate_experiments(&file.experiment)?;
        Ok(MetricsConfig {
            windowing,
            metrics,
            experiments: file.experiment,
        })
    }

    pub fn metric(&self, name: &str) -> Option<&MetricDefinition> {
        self.metrics.iter().find(|metric| metric.name == name)
    }
}

/// Top-level keys of a metrics file, the fields of [`RawFile`].
pub const METRICS_FILE_KEYS: [&str; 4] = ["windowing", "detection", "metric", "experiment"];

/// Returns the parser's `error` for `text`, line and column included. An
/// unknown top-level key that is a detection setting most likely lost its
/// table header, so the message then also says where the key belongs.
fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.to_string();
    let top_level = toml::from_str::<toml::Table>(text).ok();
    let misplaced = unknown_field(error.message()).filter(|key| {
        top_level
            .as_ref()
            .and_then(|table| table.get(*key))
            .is_some_and(|value| is_detection_setting(key, value))
    });

    match misplaced {
        Some(key) => ConfigError::Syntax(format!(
            "{}\n`{key}` is a detection setting: put it under a [detection] table or in a metric's \
             `detection` table",
            message.trim_end()
        )),
        None if error.message().contains("expected a string") => ConfigError::Syntax(format!(
            "{}\ndurations, names and methods are strings in quotes, e.g. `allowed_lateness = \"30s\"`",
            message.trim_end()
        )),
        None => ConfigError::Syntax(message),
    }
}

/// Returns `key` from a serde message "unknown field `key`, expected ...".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.split_once("unknown field `")?.1;
    Some(rest.split_once('`')?.0)
}

/// Returns true when `key` is a field of [`DetectionParams`], because a
/// table of it alone then fails, if at all, for its value and not as an
/// unknown field.
fn is_detection_setting(key: &str, value: &toml::Value) -> bool {
    let table = toml::Table::from_iter([(key.to_string(), value.clone())]);
    match toml::Value::Table(table).try_into::<DetectionParams>() {
        Ok(_) => true,
        Err(error) => !error.to_string().contains("unknown field"),
    }
}

/// Checks that experiment names are unique and each experiment's tests can
/// be built from its settings.
fn validate_experiments(experiments: &[ExperimentConfig]) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    for experiment in experiments {
        if !names.insert(experiment.name.as_str()) {
            return Err(ConfigError::InvalidExperiment {
                experiment: experiment.name.clone(),
                problem: "the name appears twice; give each experiment its own name".to_string(),
            });
        }
        ExperimentMonitor::new(experiment.clone()).map_err(|error| ConfigError::InvalidExperiment {
            experiment: experiment.name.clone(),
            problem: error.to_string(),
        })?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    windowing: RawWindowing,
    #[serde(default)]
    detection: toml::Table,
    #[serde(default)]
    metric: Vec<RawMetric>,
    #[serde(default)]
    experiment: Vec<ExperimentConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindowing {
    allowed_lateness: Option<String>,
    max_future_jump: Option<String>,
    future_confirmations: Option<usize>,
    max_held_events: Option<usize>,
    series_idle_limit: Option<String>,
    max_slices_per_dimension: Option<usize>,
    partition_idle_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    filter: BTreeMap<String, String>,
    aggregation: Option<String>,
    numerator: Option<String>,
    denominator: Option<String>,
    window: Option<String>,
    #[serde(default)]
    dimensions: Vec<String>,
    #[serde(default)]
    detection: toml::Table,
}

impl RawWindowing {
    fn validate(&self) -> Result<WindowingSettings, ConfigError> {
        let defaults = WindowingSettings::default();
        let settings = WindowingSettings {
            allowed_lateness_ms: windowing_duration(
                "allowed_lateness",
                &self.allowed_lateness,
                defaults.allowed_lateness_ms,
            )?,
            max_future_jump_ms: windowing_duration(
                "max_future_jump",
                &self.max_future_jump,
                defaults.max_future_jump_ms,
            )?,
            future_confirmations: self.future_confirmations.unwrap_or(defaults.future_confirmations),
            max_held_events: self.max_held_events.unwrap_or(defaults.max_held_events),
            series_idle_limit_ms: windowing_duration(
                "series_idle_limit",
                &self.series_idle_limit,
                defaults.series_idle_limit_ms,
            )?,
            max_slices_per_dimension: self
                .max_slices_per_dimension
                .unwrap_or(defaults.max_slices_per_dimension),
            partition_idle_timeout_ms: windowing_duration(
                "partition_idle_timeout",
                &self.partition_idle_timeout,
                defaults.partition_idle_timeout_ms,
            )?,
        };

        if settings.max_future_jump_ms == 0 {
            return Err(ConfigError::InvalidWindowing {
                key: "max_future_jump",
                problem: "must be greater than 0; use e.g. \"1h\"".to_string(),
            });
        }
        if settings.future_confirmations == 0 {
            return Err(ConfigError::InvalidWindowing {
                key: "future_confirmations",
                problem: "must be at least 1 (1 accepts every jump at once); use e.g. 3".to_string(),
            });
        }
        if settings.max_held_events < settings.future_confirmations {
            return Err(ConfigError::InvalidWindowing {
                key: "max_held_events",
                problem: format!(
                    "{} is smaller than future_confirmations = {}, so no jump could ever be confirmed; raise it",
                    settings.max_held_events, settings.future_confirmations
                ),
            });
        }
        if settings.max_slices_per_dimension == 0 {
            return Err(ConfigError::InvalidWindowing {
                key: "max_slices_per_dimension",
                problem: "must be at least 1; remove the metric's dimensions to keep only totals".to_string(),
            });
        }
        Ok(settings)
    }
}

fn windowing_duration(key: &'static str, text: &Option<String>, default_ms: i64) -> Result<i64, ConfigError> {
    match text {
        None => Ok(default_ms),
        Some(text) => parse_duration_ms(text).map_err(|problem| ConfigError::InvalidWindowing { key, problem }),
    }
}

fn validate_metrics(
    raw_metrics: &[RawMetric],
    detection_defaults: &toml::Table,
) -> Result<Vec<MetricDefinition>, ConfigError> {
    let mut seen = BTreeSet::new();
    for raw in raw_metrics {
        check_name(raw)?;
        if !seen.insert(raw.name.as_str()) {
            return Err(invalid(
                raw,
                "name",
                "is defined twice; give each [[metric]] a unique name".to_string(),
            ));
        }
    }

    raw_metrics
        .iter()
        .map(|raw| validate_metric(raw, raw_metrics, detection_defaults))
        .collect()
}

fn validate_metric(
    raw: &RawMetric,
    all: &[RawMetric],
    detection_defaults: &toml::Table,
) -> Result<MetricDefinition, ConfigError> {
    let window_text = raw
        .window
        .as_deref()
        .ok_or_else(|| invalid(raw, "window", "is missing; add e.g. window = \"5m\"".to_string()))?;
    let window = parse_duration_ms(window_text)
        .and_then(WindowLength::from_ms)
        .map_err(|problem| invalid(raw, "window", format!("invalid window: {problem}")))?;

    let dimensions = validate_dimensions(raw)?;

    let aggregation = raw.aggregation.as_deref().ok_or_else(|| {
        invalid(
            raw,
            "aggregation",
            "is missing; add one of count, unique_users, sum or ratio".to_string(),
        )
    })?;
    let value = if aggregation == "ratio" {
        validate_ratio(raw, all)?
    } else {
        if raw.numerator.is_some() || raw.denominator.is_some() {
            let key = if raw.numerator.is_some() {
                "numerator"
            } else {
                "denominator"
            };
            return Err(invalid(
                raw,
                key,
                format!("is only valid with aggregation = \"ratio\", not \"{aggregation}\"; remove it"),
            ));
        }
        MetricValue::Aggregate(validate_aggregate(raw)?)
    };

    let detection = merged_detection(raw, detection_defaults, value.counts_events())?;

    Ok(MetricDefinition {
        name: raw.name.clone(),
        window,
        dimensions,
        value,
        detection,
    })
}

fn check_name(raw: &RawMetric) -> Result<(), ConfigError> {
    let valid = !raw.name.is_empty()
        && raw.name.len() <= 100
        && raw
            .name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            raw,
            "name",
            "must be 1 to 100 characters of ASCII letters, digits, `_`, `-` or `.`; e.g. \"active_users\"".to_string(),
        ))
    }
}

fn validate_dimensions(raw: &RawMetric) -> Result<Vec<String>, ConfigError> {
    let mut dimensions = Vec::new();
    for dimension in &raw.dimensions {
        if !DIMENSION_FIELDS.contains(&dimension.as_str()) {
            return Err(invalid(
                raw,
                "dimensions",
                format!(
                    "unknown dimension \"{dimension}\"; use event fields among {}",
                    DIMENSION_FIELDS.join(", ")
                ),
            ));
        }
        if dimensions.contains(dimension) {
            return Err(invalid(
                raw,
                "dimensions",
                format!("\"{dimension}\" is listed twice; list each dimension once"),
            ));
        }
        dimensions.push(dimension.clone());
    }
    Ok(dimensions)
}

/// Validates the event filter and aggregation of a count, unique_users or
/// sum metric.
fn validate_aggregate(raw: &RawMetric) -> Result<Aggregate, ConfigError> {
    let aggregation = match raw.aggregation.as_deref() {
        Some("count") => Aggregation::Count,
        Some("unique_users") => Aggregation::UniqueUsers,
        Some("sum") => Aggregation::Sum,
        other => {
            return Err(invalid(
                raw,
                "aggregation",
                format!(
                    "unknown aggregation \"{}\"; use one of count, unique_users, sum or ratio",
                    other.unwrap_or_default()
                ),
            ));
        }
    };

    if raw.events.is_empty() {
        return Err(invalid(
            raw,
            "events",
            "is missing or empty; list the event names to count, e.g. events = [\"view\"]".to_string(),
        ));
    }
    if let Some(empty) = raw.events.iter().find(|name| name.is_empty()) {
        return Err(invalid(
            raw,
            "events",
            format!("contains an empty name {empty:?}; remove it"),
        ));
    }
    for field in raw.filter.keys() {
        if !DIMENSION_FIELDS.contains(&field.as_str()) {
            return Err(invalid(
                raw,
                "filter",
                format!(
                    "unknown field \"{field}\"; filter on event fields among {}",
                    DIMENSION_FIELDS.join(", ")
                ),
            ));
        }
    }

    Ok(Aggregate {
        source_metric: raw.name.clone(),
        filter: EventFilter {
            events: raw.events.iter().cloned().collect(),
            fields: raw.filter.clone(),
        },
        aggregation,
    })
}

fn validate_ratio(raw: &RawMetric, all: &[RawMetric]) -> Result<MetricValue, ConfigError> {
    if !raw.events.is_empty() {
        return Err(invalid(
            raw,
            "events",
            "is not used by a ratio metric, whose events come from its numerator and denominator; remove it"
                .to_string(),
        ));
    }
    if !raw.filter.is_empty() {
        return Err(invalid(
            raw,
            "filter",
            "is not used by a ratio metric; put the filter on the numerator and denominator metrics".to_string(),
        ));
    }

    let numerator = ratio_part(raw, all, "numerator", raw.numerator.as_deref())?;
    let denominator = ratio_part(raw, all, "denominator", raw.denominator.as_deref())?;
    Ok(MetricValue::Ratio { numerator, denominator })
}

fn ratio_part(
    raw: &RawMetric,
    all: &[RawMetric],
    key: &'static str,
    name: Option<&str>,
) -> Result<Aggregate, ConfigError> {
    let name = name.ok_or_else(|| invalid(raw, key, format!("is missing; a ratio needs {key} = \"<metric name>\"")))?;
    let Some(referenced) = all.iter().find(|metric| metric.name == name) else {
        let names: Vec<&str> = all.iter().map(|metric| metric.name.as_str()).collect();
        return Err(invalid(
            raw,
            key,
            format!(
                "references metric \"{name}\", which is not defined; define it or use one of {}",
                names.join(", ")
            ),
        ));
    };
    if referenced.aggregation.as_deref() == Some("ratio") {
        return Err(invalid(
            raw,
            key,
            format!("references \"{name}\", which is itself a ratio; reference count, unique_users or sum metrics"),
        ));
    }

    validate_aggregate(referenced)
}

/// Merges the file's `[detection]` defaults with the metric's own table key
/// by key, adds the defaults of a metric that `counts_events` (see
/// `count_defaults.rs`), then deserialises the result.
fn merged_detection(
    raw: &RawMetric,
    defaults: &toml::Table,
    counts_events: bool,
) -> Result<DetectionParams, ConfigError> {
    let mut merged = defaults.clone();
    for (key, value) in &raw.detection {
        merged.insert(key.clone(), value.clone());
    }
    // Setting one key of the firing pair drops both count defaults, so the
    // other key is the plain default, which the user never wrote.
    let one_firing_key = merged.contains_key("fire_outside") != merged.contains_key("fire_lookback");
    let hint = if counts_events && one_firing_key {
        "; a count metric that sets only one of fire_outside and fire_lookback gets the plain default \
         for the other (4 of 6 windows), so set both"
    } else {
        ""
    };
    if counts_events {
        apply_count_defaults(&mut merged);
    }

    toml::Value::Table(merged).try_into().map_err(|error: toml::de::Error| {
        let problem = plain_error(&error.to_string());
        // Only errors about the pair itself; other messages may name it in their advice.
        let about_pair = problem.starts_with("fire_outside") || problem.starts_with("fire_lookback");
        let hint = if about_pair { hint } else { "" };
        invalid(
            raw,
            "detection",
            format!("invalid detection parameters: {problem}{hint}"),
        )
    })
}

fn invalid(raw: &RawMetric, key: &'static str, problem: String) -> ConfigError {
    ConfigError::Invalid {
        metric: raw.name.clone(),
        key,
        problem,
    }
}

#[cfg(test)]
mod tests;
