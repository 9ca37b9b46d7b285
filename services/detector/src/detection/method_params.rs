//! Settings of the detection methods other than the robust band, and the
//! method and time zone names of the `[detection]` table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::params::{check_count, check_positive};

/// Detection method of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    /// Median/MAD band around a seasonal reference (weekly, daily) or the
    /// rolling median (`seasonality = "none"`).
    RobustBand,
    /// Quartiles of the previous windows ± a·IQR.
    Iqr,
    /// Relative change against the same local time yesterday and a week ago.
    PercentChange,
    /// Rolling mean ± k standard deviations.
    ThreeSigma,
    /// MSTL + AutoETS forecast with prediction intervals (augurs).
    Forecast,
    /// Combination of other methods' scores.
    Ensemble,
    /// Novelty of the recent shape and of the rolling mean and spread.
    Novelty,
}

impl MethodName {
    /// Every method, in documentation order.
    pub const ALL: [MethodName; 7] = [
        MethodName::RobustBand,
        MethodName::Iqr,
        MethodName::PercentChange,
        MethodName::ThreeSigma,
        MethodName::Forecast,
        MethodName::Ensemble,
        MethodName::Novelty,
    ];

    /// Returns the name used in the TOML file.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::RobustBand => "robust_band",
            MethodName::Iqr => "iqr",
            MethodName::PercentChange => "percent_change",
            MethodName::ThreeSigma => "three_sigma",
            MethodName::Forecast => "forecast",
            MethodName::Ensemble => "ensemble",
            MethodName::Novelty => "novelty",
        }
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for MethodName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MethodName::ALL
            .into_iter()
            .find(|method| method.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = MethodName::ALL.iter().map(|method| method.as_str()).collect();
                format!("unknown method \"{text}\"; use one of {}", names.join(", "))
            })
    }
}

/// An IANA time zone, "UTC" by default. Serialised as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::Tz::UTC)
    }
}

impl TimeZone {
    pub fn is_utc(self) -> bool {
        self.0 == chrono_tz::Tz::UTC
    }
}

impl FromStr for TimeZone {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| format!("unknown time zone \"{text}\"; use an IANA name such as \"Europe/Berlin\" or \"UTC\""))
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The analysts' interquartile-range rule: a window is outside when it lies
/// more than `coefficient` IQRs beyond the quartiles of the previous
/// `windows` windows (Tukey's fences, Tukey 1977, "Exploratory Data Analysis").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IqrParams {
    /// Previous windows the quartiles are taken over (n).
    pub windows: usize,
    /// IQRs beyond the quartiles from which a window is outside (a).
    pub coefficient: f64,
}

impl Default for IqrParams {
    fn default() -> Self {
        IqrParams {
            windows: 48,
            coefficient: 1.5,
        }
    }
}

impl IqrParams {
    pub fn validate(&self) -> Result<(), String> {
        check_count("iqr.windows", self.windows, 4, usize::MAX)?;
        check_positive("iqr.coefficient", self.coefficient)
    }
}

/// The analysts' day-over-day and week-over-week rule: a window is outside
/// when it differs by more than `max_change` (a fraction) from both the
/// same local time yesterday and a week ago. Either reference alone is used
/// when the other is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PercentChangeParams {
    /// Relative change, as a fraction (0.3 = 30 %), from which a window is outside.
    pub max_change: f64,
}

impl Default for PercentChangeParams {
    fn default() -> Self {
        PercentChangeParams { max_change: 0.3 }
    }
}

impl PercentChangeParams {
    pub fn validate(&self) -> Result<(), String> {
        check_positive("percent_change.max_change", self.max_change)
    }
}

/// The rolling three-sigma rule: a window is outside when it lies more than
/// `sigmas` standard deviations from the mean of the previous `windows`
/// windows (Shewhart's control chart limits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreeSigmaParams {
    /// Previous windows the mean and standard deviation are taken over.
    pub windows: usize,
    /// Standard deviations from the mean to the band edge.
    pub sigmas: f64,
}

impl Default for ThreeSigmaParams {
    fn default() -> Self {
        ThreeSigmaParams {
            windows: 48,
            sigmas: 3.0,
        }
    }
}

impl ThreeSigmaParams {
    pub fn validate(&self) -> Result<(), String> {
        check_count("three_sigma.windows", self.windows, 2, usize::MAX)?;
        check_positive("three_sigma.sigmas", self.sigmas)
    }
}

/// Forecast bands: MSTL decomposition (Bandara, Hyndman & Bergmeir 2021,
/// "MSTL: A Seasonal-Trend Decomposition Algorithm for Time Series with
/// Multiple Seasonal Patterns") with an exponential smoothing (ETS) model
/// of the seasonally adjusted series (Hyndman et al. 2008, "Forecasting
/// with Exponential Smoothing"), both from the augurs crate. The
/// prediction interval at `level` is the band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastParams {
    /// Coverage probability of the prediction interval, between 0 and 1.
    pub level: f64,
    /// Windows between refits. Each fit forecasts this many windows ahead.
    pub refit_every: usize,
    /// Most recent windows each fit reads.
    pub fit_windows: usize,
    /// The ETS model of the seasonally adjusted series.
    pub trend: ForecastTrend,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            level: 0.99,
            refit_every: 48,
            fit_windows: 672,
            trend: ForecastTrend::Linear,
        }
    }
}

/// ETS model of the seasonally adjusted series, all with additive errors
/// except what `Auto` picks. A fixed model costs one optimisation per fit;
/// `Auto` runs one per candidate model, about five times as long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastTrend {
    /// Holt's linear trend, ETS(A,A,N): a level and a slope.
    Linear,
    /// Damped additive trend, ETS(A,Ad,N): the slope fades over the horizon.
    Damped,
    /// AutoETS: additive or multiplicative errors, with no trend or an
    /// additive (damped or not) one, the fit with the lowest AICc.
    Auto,
}

impl ForecastParams {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(format!(
                "forecast.level = {} is invalid; use a probability between 0 and 1, e.g. 0.99",
                self.level
            ));
        }
        check_count("forecast.refit_every", self.refit_every, 1, usize::MAX)?;
        check_count("forecast.fit_windows", self.fit_windows, 16, usize::MAX)
    }
}

/// The novelty method (see `novelty.rs`): the distance from the recent
/// shape to its nearest earlier run, and a range test of rolling means and
/// standard deviations. Lengths are in windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoveltyParams {
    /// Length of the runs of values whose shapes are compared.
    pub shape_windows: usize,
    /// How far back the most similar run is searched. Memory and time per
    /// window grow with it: 16 bytes and about 2 ns per window.
    pub memory_windows: usize,
    /// Half-life of the largest shape distance seen, which the current
    /// distance is divided by.
    pub half_life_windows: usize,
    /// Windows whose shape ratios are averaged.
    pub smoothing_windows: usize,
    /// Lengths of the rolling means and standard deviations tested.
    pub range_scales: Vec<usize>,
    /// Windows of earlier statistics that form the range.
    pub range_windows: usize,
    /// Excess beyond the range, in units of the range, that makes a window
    /// anomalous.
    pub range_margin: f64,
}

impl Default for NoveltyParams {
    fn default() -> Self {
        NoveltyParams {
            shape_windows: 16,
            memory_windows: 2000,
            half_life_windows: 1000,
            smoothing_windows: 10,
            range_scales: vec![16, 256],
            range_windows: 4000,
            range_margin: 0.2,
        }
    }
}

impl NoveltyParams {
    pub fn validate(&self) -> Result<(), String> {
        check_count("novelty.shape_windows", self.shape_windows, 2, 1000)?;
        check_count(
            "novelty.memory_windows",
            self.memory_windows,
            self.shape_windows,
            100_000,
        )?;
        check_count("novelty.half_life_windows", self.half_life_windows, 1, usize::MAX)?;
        check_count("novelty.smoothing_windows", self.smoothing_windows, 1, 1000)?;
        if self.range_scales.len() > 8 {
            return Err(format!(
                "novelty.range_scales lists {} scales; test at most 8",
                self.range_scales.len()
            ));
        }
        let longest = self.memory_windows + self.shape_windows + 1;
        for &scale in &self.range_scales {
            if !(2..=longest).contains(&scale) {
                return Err(format!(
                    "novelty.range_scales contains {scale} (the default is [16, 256]); use lengths from 2 to \
                     memory_windows + shape_windows + 1 ({longest}): lower range_scales or raise memory_windows"
                ));
            }
        }
        check_count("novelty.range_windows", self.range_windows, 1, 1_000_000)?;
        check_positive("novelty.range_margin", self.range_margin)
    }
}

/// Most methods an ensemble combines.
pub const MAX_ENSEMBLE_METHODS: usize = 8;

/// Rule by which the ensemble combines its methods' scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombineRule {
    /// The largest score: outside when any method is outside.
    Max,
    /// The weighted mean of the scores: outside when the weighted methods
    /// lean outside on balance.
    Mean,
}

/// An ensemble of methods. Each method's deviation d (in band half-widths)
/// is mapped to the score d² / (1 + d²) in [0, 1], 0.5 at its band edge,
/// and the scores are combined by `combine`. The window is outside when the
/// combined score exceeds 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleParams {
    /// Methods to combine, each with its own settings. The first one's band
    /// is the one stored and shown.
    pub methods: Vec<MethodName>,
    pub combine: CombineRule,
    /// Weight of each method for `combine = "mean"`, in `methods` order.
    /// Empty for equal weights.
    pub weights: Vec<f64>,
}

impl Default for EnsembleParams {
    fn default() -> Self {
        EnsembleParams {
            methods: vec![MethodName::RobustBand, MethodName::PercentChange],
            combine: CombineRule::Max,
            weights: Vec::new(),
        }
    }
}

impl EnsembleParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.methods.is_empty() {
            return Err(
                "ensemble.methods is empty; list at least one method, e.g. [\"robust_band\", \"iqr\"]".to_string(),
            );
        }
        if self.methods.len() > MAX_ENSEMBLE_METHODS {
            return Err(format!(
                "ensemble.methods lists {} methods; combine at most {MAX_ENSEMBLE_METHODS}",
                self.methods.len()
            ));
        }
        if self.methods.contains(&MethodName::Ensemble) {
            return Err("ensemble.methods contains \"ensemble\"; an ensemble cannot contain itself".to_string());
        }
        // The robust band and the forecast read their residuals back from
        // the stored expected value, which is the first method's.
        for method in [MethodName::RobustBand, MethodName::Forecast] {
            if self.methods[1..].contains(&method) {
                return Err(format!(
                    "ensemble.methods lists \"{method}\" after another method; put it first, \
                     and combine at most one of robust_band and forecast"
                ));
            }
        }
        if !self.weights.is_empty() && self.weights.len() != self.methods.len() {
            return Err(format!(
                "ensemble.weights has {} values for {} methods; give one weight per method or none",
                self.weights.len(),
                self.methods.len()
            ));
        }
        for weight in &self.weights {
            if !(weight.is_finite() && *weight >= 0.0) {
                return Err(format!(
                    "ensemble.weights contains {weight}; use finite weights, 0 or above"
                ));
            }
        }
        if !self.weights.is_empty() && self.weights.iter().sum::<f64>() <= 0.0 {
            return Err("ensemble.weights are all 0; give at least one method a positive weight".to_string());
        }
        Ok(())
    }
}
