//! Detection defaults of metrics that count events (`count` and
//! `unique_users`).
//!
//! The noise of a count grows like the square root of its level, and a
//! lasting change scales every hour alike. So with the default method,
//! `robust_band`, these metrics get the count noise model (`residual_scale
//! = "sqrt"`, `level_adjustment = "multiplicative"`, `reference_windows =
//! 3`), whose band is tight enough to fire on 2 of the last 3 windows
//! outside rather than 4 of 6, and on one window 1.4 half-widths out (7
//! robust standard deviations) rather than 2.5. Averaging three windows
//! into the seasonal reference cuts the Poisson noise variance of one
//! window to a third.
//! With `forecast` they get `residual_scale = "sqrt"` only, which scales
//! its forecast errors: `level_adjustment` does not apply to it, and the
//! 2-of-3 rule made the ensemble worse. The other methods keep the plain
//! defaults. With the plain defaults a count's quiet hours get the busy
//! hours' band, and a sparse slice alerts on a few events. The figures
//! are in docs/benchmarks.md ("Defaults of count metrics").
//!
//! A key the file's `[detection]` table or the metric's own table sets wins.
//! The defaults go with the `sqrt` scale: a table that chooses another
//! residual scale (`residual_scale`, or `relative_residuals = true`) gets
//! none of them. The firing rule is one pair: setting either of its keys
//! drops both defaults, so `fire_outside = 5` alone cannot clash with a
//! lookback of 3. A table that sets `critical_ratio` keeps the critical
//! window as the one that fires alone, so it gets no `fire_ratio` default.

/// Defaults an offline run (`replay`, `evaluate`) scores with under its
/// params file, as the metrics file would give them to one kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DetectionDefaults {
    /// Those of a `count` or `unique_users` metric: with `robust_band`,
    /// `residual_scale = "sqrt"`, `level_adjustment = "multiplicative"`,
    /// `reference_windows = 3`, firing on 2 of 3 windows and `fire_ratio =
    /// 1.4`; with `forecast`,
    /// `residual_scale = "sqrt"`.
    Count,
    /// Those of a `sum` or `ratio` metric: the plain defaults.
    Plain,
}

/// Adds the count defaults of the method `table` selects to `table`, a
/// metric's merged detection table, for every key it leaves out.
pub fn apply_count_defaults(table: &mut toml::Table) {
    let method = table
        .get("method")
        .and_then(toml::Value::as_str)
        .unwrap_or("robust_band");
    let (robust_band, forecast) = (method == "robust_band", method == "forecast");
    if !robust_band && !forecast {
        return;
    }

    let relative = table.get("relative_residuals").and_then(toml::Value::as_bool) == Some(true);
    match table.get("residual_scale").map(|scale| scale.as_str()) {
        _ if relative => return,
        Some(Some("sqrt")) => {}
        Some(_) => return,
        None => {
            table.insert("residual_scale".into(), "sqrt".into());
        }
    }
    if forecast {
        return;
    }
    if !table.contains_key("level_adjustment") {
        table.insert("level_adjustment".into(), "multiplicative".into());
    }
    if !table.contains_key("reference_windows") {
        table.insert("reference_windows".into(), 3.into());
    }
    if !table.contains_key("fire_outside") && !table.contains_key("fire_lookback") {
        table.insert("fire_outside".into(), 2.into());
        table.insert("fire_lookback".into(), 3.into());
    }
    if !table.contains_key("fire_ratio") && !table.contains_key("critical_ratio") {
        table.insert("fire_ratio".into(), COUNT_FIRE_RATIO.into());
    }
}

/// `fire_ratio` of count metrics with `robust_band`. On the synthetic
/// business suite it cut the mean delay from about 0.33 to 0.07 windows,
/// and lower ratios added false alerts (docs/benchmarks.md, "One window
/// far outside").
const COUNT_FIRE_RATIO: f64 = 1.4;

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(text: &str) -> toml::Table {
        let mut table: toml::Table = toml::from_str(text).unwrap();
        apply_count_defaults(&mut table);
        table
    }

    #[test]
    fn empty_table_gets_every_default() {
        let table = applied("");
        assert_eq!(table["residual_scale"].as_str(), Some("sqrt"));
        assert_eq!(table["level_adjustment"].as_str(), Some("multiplicative"));
        assert_eq!(table["reference_windows"].as_integer(), Some(3));
        assert_eq!(table["fire_outside"].as_integer(), Some(2));
        assert_eq!(table["fire_lookback"].as_integer(), Some(3));
        assert_eq!(table["fire_ratio"].as_float(), Some(1.4));
    }

    #[test]
    fn critical_ratio_keeps_its_firing() {
        let table = applied("critical_ratio = 3.0");
        assert!(!table.contains_key("fire_ratio"), "{table:?}");

        let table = applied("fire_ratio = 2.0");
        assert_eq!(table["fire_ratio"].as_float(), Some(2.0));
    }

    #[test]
    fn set_keys_win() {
        let table = applied("level_adjustment = \"additive\"\nreference_windows = 1\nfire_outside = 5");
        assert_eq!(table["residual_scale"].as_str(), Some("sqrt"));
        assert_eq!(table["level_adjustment"].as_str(), Some("additive"));
        assert_eq!(table["reference_windows"].as_integer(), Some(1));
        assert_eq!(table["fire_outside"].as_integer(), Some(5));
        assert!(!table.contains_key("fire_lookback"), "{table:?}");
    }

    #[test]
    fn other_scale_drops_every_default() {
        for text in [
            "residual_scale = \"absolute\"",
            "residual_scale = \"relative\"",
            "relative_residuals = true",
        ] {
            assert_eq!(applied(text).len(), 1, "{text}: {:?}", applied(text));
        }
    }

    #[test]
    fn sqrt_or_plain_flag_keeps_defaults() {
        assert_eq!(applied("residual_scale = \"sqrt\"").len(), 6);
        let table = applied("relative_residuals = false");
        assert_eq!(table["residual_scale"].as_str(), Some("sqrt"));
        assert_eq!(table.len(), 7, "{table:?}");
    }

    #[test]
    fn forecast_gets_sqrt_scale_only() {
        let table = applied("method = \"forecast\"");
        assert_eq!(table["residual_scale"].as_str(), Some("sqrt"));
        assert_eq!(table.len(), 2, "{table:?}");
    }

    #[test]
    fn other_methods_keep_plain_defaults() {
        for method in ["iqr", "percent_change", "three_sigma", "novelty", "ensemble"] {
            let table = applied(&format!("method = \"{method}\""));
            assert_eq!(table.len(), 1, "{method}: {table:?}");
        }
        assert_eq!(applied("method = \"robust_band\"").len(), 7);
    }
}
