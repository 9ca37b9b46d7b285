use chrono::{TimeZone, Utc};

use super::*;
use crate::detection::{LevelAdjustment, ResidualScale};

const VALID: &str = r#"
[windowing]
allowed_lateness = "2m"
max_future_jump = "30m"
future_confirmations = 2
max_held_events = 50
series_idle_limit = "1d"
max_slices_per_dimension = 10
partition_idle_timeout = "45s"

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"
dimensions = ["os", "source"]

[[metric]]
name = "likes"
events = ["like"]
filter = { country = "RU" }
aggregation = "count"
window = "5m"

[[metric]]
name = "ctr"
aggregation = "ratio"
numerator = "likes"
denominator = "views"
window = "15m"
dimensions = ["os"]

[[metric]]
name = "active_users"
events = ["view", "like"]
aggregation = "unique_users"
window = "1h"

[[metric]]
name = "revenue"
events = ["purchase"]
aggregation = "sum"
window = "1d"
"#;

/// Returns the `Invalid` error of `text`, failing the test on any other outcome.
fn invalid_error(text: &str) -> (String, &'static str, String) {
    match MetricsConfig::parse(text) {
        Err(ConfigError::Invalid { metric, key, problem }) => (metric, key, problem),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

fn metric_text(body: &str) -> String {
    format!("[[metric]]\nname = \"m\"\n{body}\n")
}

#[test]
fn parses_valid_file() {
    let config = MetricsConfig::parse(VALID).unwrap();

    assert_eq!(config.metrics.len(), 5);
    assert_eq!(config.windowing.allowed_lateness_ms, 120_000);
    assert_eq!(config.windowing.max_future_jump_ms, 1_800_000);
    assert_eq!(config.windowing.future_confirmations, 2);
    assert_eq!(config.windowing.max_held_events, 50);
    assert_eq!(config.windowing.series_idle_limit_ms, 86_400_000);
    assert_eq!(config.windowing.max_slices_per_dimension, 10);
    assert_eq!(config.windowing.partition_idle_timeout_ms, 45_000);

    let views = config.metric("views").unwrap();
    assert_eq!(views.window.as_ms(), 300_000);
    assert_eq!(views.window.as_seconds(), 300);
    assert_eq!(views.dimensions, vec!["os".to_string(), "source".to_string()]);
    let MetricValue::Aggregate(aggregate) = &views.value else {
        panic!("views is not an aggregate: {:?}", views.value);
    };
    assert_eq!(aggregate.aggregation, Aggregation::Count);
    assert!(aggregate.filter.events.contains("view"));

    assert_eq!(config.metric("revenue").unwrap().window.as_ms(), 86_400_000);
    let MetricValue::Aggregate(users) = &config.metric("active_users").unwrap().value else {
        panic!("active_users is not an aggregate");
    };
    assert_eq!(users.aggregation, Aggregation::UniqueUsers);
}

#[test]
fn ratio_copies_referenced_aggregates() {
    let config = MetricsConfig::parse(VALID).unwrap();

    let ctr = config.metric("ctr").unwrap();
    let MetricValue::Ratio { numerator, denominator } = &ctr.value else {
        panic!("ctr is not a ratio: {:?}", ctr.value);
    };
    assert_eq!(numerator.source_metric, "likes");
    assert_eq!(numerator.filter.fields.get("country").map(String::as_str), Some("RU"));
    assert_eq!(denominator.source_metric, "views");
    assert_eq!(ctr.window.as_ms(), 900_000);
}

#[test]
fn windowing_defaults_apply() {
    let config = MetricsConfig::parse(&metric_text(
        "events = [\"view\"]\naggregation = \"count\"\nwindow = \"1m\"",
    ))
    .unwrap();

    assert_eq!(config.windowing, WindowingSettings::default());
}

#[test]
fn filter_matches_event_and_fields() {
    let config = MetricsConfig::parse(VALID).unwrap();
    let MetricValue::Aggregate(likes) = &config.metric("likes").unwrap().value else {
        panic!("likes is not an aggregate");
    };
    let mut event = Event {
        event_time: Utc.timestamp_millis_opt(1_700_000_000_000).unwrap(),
        event: "like".to_string(),
        user_id: "1".to_string(),
        event_id: None,
        post_id: None,
        receiver_id: None,
        os: None,
        country: Some("RU".to_string()),
        city: None,
        source: None,
        gender: None,
        age: None,
        exp_group: None,
        value: None,
        extra: String::new(),
    };

    assert!(likes.filter.matches(&event));
    event.country = Some("DE".to_string());
    assert!(!likes.filter.matches(&event));
    event.country = None;
    assert!(!likes.filter.matches(&event));
    event.country = Some("RU".to_string());
    event.event = "view".to_string();
    assert!(!likes.filter.matches(&event));
}

#[test]
fn window_start_aligns_to_epoch() {
    let window = WindowLength::from_ms(300_000).unwrap();

    assert_eq!(window.start_of(0), 0);
    assert_eq!(window.start_of(299_999), 0);
    assert_eq!(window.start_of(300_000), 300_000);
    assert_eq!(window.start_of(-1), -300_000);
}

#[test]
fn rejects_unknown_aggregation() {
    let (metric, key, problem) = invalid_error(&metric_text(
        "events = [\"view\"]\naggregation = \"avg\"\nwindow = \"5m\"",
    ));

    assert_eq!(metric, "m");
    assert_eq!(key, "aggregation");
    assert!(problem.contains("\"avg\""), "{problem}");
    assert!(problem.contains("count, unique_users, sum or ratio"), "{problem}");
}

#[test]
fn rejects_missing_aggregation() {
    let (_, key, problem) = invalid_error(&metric_text("events = [\"view\"]\nwindow = \"5m\""));

    assert_eq!(key, "aggregation");
    assert!(problem.contains("missing"), "{problem}");
}

#[test]
fn rejects_bad_windows() {
    let cases = [
        ("7m", "does not divide a day"),
        ("5q", "no valid unit"),
        ("500ms", "whole number of seconds"),
        ("0s", "at least 1s"),
        ("1500ms", "whole number of seconds"),
        ("2d", "does not divide a day"),
    ];
    for (window, expected) in cases {
        let (metric, key, problem) = invalid_error(&metric_text(&format!(
            "events = [\"view\"]\naggregation = \"count\"\nwindow = \"{window}\""
        )));

        assert_eq!(metric, "m", "window {window}");
        assert_eq!(key, "window", "window {window}");
        assert!(problem.contains(expected), "window {window}: {problem}");
    }
}

#[test]
fn rejects_missing_window() {
    let (_, key, problem) = invalid_error(&metric_text("events = [\"view\"]\naggregation = \"count\""));

    assert_eq!(key, "window");
    assert!(problem.contains("window = \"5m\""), "{problem}");
}

#[test]
fn rejects_ratio_of_missing_metric() {
    let text = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "ctr"
aggregation = "ratio"
numerator = "likes"
denominator = "views"
window = "5m"
"#;
    let (metric, key, problem) = invalid_error(text);

    assert_eq!(metric, "ctr");
    assert_eq!(key, "numerator");
    assert!(problem.contains("\"likes\""), "{problem}");
    assert!(problem.contains("views"), "problem lists no defined metric: {problem}");
}

#[test]
fn rejects_ratio_without_denominator() {
    let text = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "ctr"
aggregation = "ratio"
numerator = "views"
window = "5m"
"#;
    let (metric, key, _) = invalid_error(text);

    assert_eq!(metric, "ctr");
    assert_eq!(key, "denominator");
}

#[test]
fn rejects_ratio_of_ratio() {
    let text = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "self_ratio"
aggregation = "ratio"
numerator = "views"
denominator = "views"
window = "5m"

[[metric]]
name = "nested"
aggregation = "ratio"
numerator = "self_ratio"
denominator = "views"
window = "5m"
"#;
    let (metric, key, problem) = invalid_error(text);

    assert_eq!(metric, "nested");
    assert_eq!(key, "numerator");
    assert!(problem.contains("itself a ratio"), "{problem}");
}

#[test]
fn rejects_ratio_with_events() {
    let text = r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "ctr"
events = ["like"]
aggregation = "ratio"
numerator = "views"
denominator = "views"
window = "5m"
"#;
    let (metric, key, _) = invalid_error(text);

    assert_eq!(metric, "ctr");
    assert_eq!(key, "events");
}

#[test]
fn rejects_numerator_without_ratio() {
    let (_, key, problem) = invalid_error(&metric_text(
        "events = [\"view\"]\naggregation = \"count\"\nnumerator = \"x\"\nwindow = \"5m\"",
    ));

    assert_eq!(key, "numerator");
    assert!(problem.contains("ratio"), "{problem}");
}

#[test]
fn rejects_unknown_dimension() {
    let (metric, key, problem) = invalid_error(&metric_text(
        "events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\ndimensions = [\"os\", \"platform\"]",
    ));

    assert_eq!(metric, "m");
    assert_eq!(key, "dimensions");
    assert!(problem.contains("\"platform\""), "{problem}");
    assert!(
        problem.contains("os, country"),
        "problem lists no valid dimension: {problem}"
    );
}

#[test]
fn rejects_repeated_dimension() {
    let (_, key, problem) = invalid_error(&metric_text(
        "events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\ndimensions = [\"os\", \"os\"]",
    ));

    assert_eq!(key, "dimensions");
    assert!(problem.contains("twice"), "{problem}");
}

#[test]
fn rejects_unknown_filter_field() {
    let (_, key, problem) = invalid_error(&metric_text(
        "events = [\"view\"]\nfilter = { plan = \"pro\" }\naggregation = \"count\"\nwindow = \"5m\"",
    ));

    assert_eq!(key, "filter");
    assert!(problem.contains("\"plan\""), "{problem}");
}

#[test]
fn rejects_missing_events() {
    let (_, key, problem) = invalid_error(&metric_text("aggregation = \"count\"\nwindow = \"5m\""));

    assert_eq!(key, "events");
    assert!(problem.contains("events = [\"view\"]"), "{problem}");
}

#[test]
fn rejects_duplicate_and_bad_names() {
    let duplicate = format!(
        "{}{}",
        metric_text("events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\""),
        metric_text("events = [\"like\"]\naggregation = \"count\"\nwindow = \"5m\"")
    );
    let (metric, key, problem) = invalid_error(&duplicate);
    assert_eq!(metric, "m");
    assert_eq!(key, "name");
    assert!(problem.contains("twice"), "{problem}");

    let bad = "[[metric]]\nname = \"page views\"\nevents = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\n";
    let (metric, key, _) = invalid_error(bad);
    assert_eq!(metric, "page views");
    assert_eq!(key, "name");
}

#[test]
fn rejects_unknown_detection_key() {
    let (metric, key, problem) = invalid_error(&metric_text(
        "events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\ndetection = { no_such_parameter = 1 }",
    ));

    assert_eq!(metric, "m");
    assert_eq!(key, "detection");
    assert!(problem.contains("no_such_parameter"), "{problem}");
}

#[test]
fn setting_above_headers_gets_table_hint() {
    let text = format!(
        "fire_ratio = 2.0\n\n{}",
        metric_text("events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"")
    );

    let error = MetricsConfig::parse(&text).unwrap_err().to_string();
    assert!(error.contains("line 1"), "{error}");
    assert!(error.contains("`fire_ratio` is a detection setting"), "{error}");
    assert!(error.contains("under a [detection] table"), "{error}");
}

#[test]
fn misspelt_table_gets_no_detection_hint() {
    let text = metric_text("events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"")
        .replace("[[metric]]", "[[metrics]]");

    let error = MetricsConfig::parse(&text).unwrap_err().to_string();
    assert!(error.contains("unknown field `metrics`"), "{error}");
    assert!(error.contains("line 1"), "{error}");
    assert!(!error.contains("detection setting"), "{error}");
}

#[test]
fn unquoted_duration_error_says_to_quote_it() {
    let text = "[windowing]\npartition_idle_timeout = 30\n[[metric]]\nname = \"views\"\nevents = [\"view\"]\naggregation = \"count\"\n";

    let error = MetricsConfig::parse(text).unwrap_err().to_string();

    assert!(error.contains("partition_idle_timeout = 30"), "{error}");
    assert!(error.contains("strings in quotes"), "{error}");
}

#[test]
fn rejects_unknown_metric_key() {
    let text = format!(
        "{}colour = \"red\"\n",
        metric_text("events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"")
    );

    let error = MetricsConfig::parse(&text).unwrap_err();
    assert!(matches!(error, ConfigError::Syntax(_)), "{error:?}");
    assert!(error.to_string().contains("colour"), "{error}");
}

#[test]
fn rejects_file_without_metrics() {
    let error = MetricsConfig::parse("[windowing]\nallowed_lateness = \"1m\"\n").unwrap_err();

    assert!(matches!(error, ConfigError::NoMetrics), "{error:?}");
}

#[test]
fn rejects_bad_windowing_values() {
    let metric = metric_text("events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"");
    let cases = [
        ("allowed_lateness = \"soon\"", "allowed_lateness"),
        ("max_future_jump = \"0s\"", "max_future_jump"),
        ("future_confirmations = 0", "future_confirmations"),
        ("future_confirmations = 5\nmax_held_events = 4", "max_held_events"),
        ("max_slices_per_dimension = 0", "max_slices_per_dimension"),
        ("series_idle_limit = \"1 week\"", "series_idle_limit"),
    ];
    for (windowing, expected_key) in cases {
        let text = format!("[windowing]\n{windowing}\n{metric}");
        match MetricsConfig::parse(&text) {
            Err(ConfigError::InvalidWindowing { key, .. }) => assert_eq!(key, expected_key, "{windowing}"),
            other => panic!("{windowing}: expected InvalidWindowing, got {other:?}"),
        }
    }
}

#[test]
fn load_names_missing_file() {
    let path = Path::new("/nonexistent/seismo/metrics.toml");

    let error = MetricsConfig::load(path).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/seismo/metrics.toml"),
        "{error}"
    );
}

#[test]
fn shipped_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");

    let product = MetricsConfig::load(&root.join("deploy/config/metrics.toml")).unwrap();
    for name in ["active_users", "views", "likes", "ctr", "messages_sent"] {
        let metric = product
            .metric(name)
            .unwrap_or_else(|| panic!("deploy/config/metrics.toml lacks {name}"));
        assert_eq!(
            metric.dimensions,
            vec!["os".to_string(), "source".to_string()],
            "{name}"
        );
        // Counts get the count noise model; the ratio keeps the defaults.
        let (scale, adjustment) = if name == "ctr" {
            (ResidualScale::Absolute, LevelAdjustment::Additive)
        } else {
            (ResidualScale::Sqrt, LevelAdjustment::Multiplicative)
        };
        assert_eq!(metric.detection.effective_residual_scale(), scale, "{name}");
        assert_eq!(metric.detection.level_adjustment, adjustment, "{name}");
        // The count model fires on 2 of 3 windows, the ratio on the default 4 of 6.
        let firing = (metric.detection.fire_outside, metric.detection.fire_lookback);
        assert_eq!(firing, if name == "ctr" { (4, 6) } else { (2, 3) }, "{name}");
    }

    let demo = MetricsConfig::load(&root.join("deploy/demo/metrics.toml")).unwrap();
    assert_eq!(demo.metrics.len(), 1);
    let taxi = &demo.metrics[0];
    assert_eq!(taxi.window.as_ms(), 1_800_000);
    assert!(taxi.dimensions.is_empty());
    let MetricValue::Aggregate(aggregate) = &taxi.value else {
        panic!("demo metric is not an aggregate");
    };
    assert_eq!(aggregate.aggregation, Aggregation::Sum);
    assert!(aggregate.filter.events.contains("taxi_trips"));
}

#[test]
fn method_chosen_per_metric() {
    let text = r#"
[detection]
method = "iqr"
time_zone = "Europe/Berlin"
iqr = { windows = 96 }

[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "orders"
events = ["order"]
aggregation = "count"
window = "30m"
detection = { method = "ensemble", ensemble = { methods = ["robust_band", "three_sigma"], combine = "mean" } }

[[metric]]
name = "cpu"
events = ["cpu_sample"]
aggregation = "count"
window = "1m"
detection = { method = "novelty", cooldown_from = "firing", novelty = { shape_windows = 8 } }
"#;
    let config = MetricsConfig::parse(text).unwrap();

    let views = &config.metric("views").unwrap().detection;
    assert_eq!(views.method, crate::detection::MethodName::Iqr);
    assert_eq!(views.iqr.windows, 96);
    assert_eq!(
        views.iqr.coefficient, 1.5,
        "unset keys of a method table keep their defaults"
    );
    assert_eq!(views.time_zone.0, chrono_tz::Tz::Europe__Berlin);

    let orders = &config.metric("orders").unwrap().detection;
    assert_eq!(orders.method, crate::detection::MethodName::Ensemble);
    assert_eq!(orders.ensemble.combine, crate::detection::CombineRule::Mean);
    assert_eq!(
        orders.time_zone.0,
        chrono_tz::Tz::Europe__Berlin,
        "file defaults still apply"
    );

    let cpu = &config.metric("cpu").unwrap().detection;
    assert_eq!(cpu.method, crate::detection::MethodName::Novelty);
    assert_eq!(cpu.novelty.shape_windows, 8);
    assert_eq!(cpu.cooldown_from, crate::detection::CooldownStart::Firing);
}

#[test]
fn bad_detection_default_names_the_table() {
    let text = r#"
[detection]
novelty = { shape_windows = 1 }

[[metric]]
name = "cpu"
events = ["cpu_sample"]
aggregation = "count"
window = "1m"
"#;

    let error = MetricsConfig::parse(text).unwrap_err().to_string();

    assert!(error.starts_with("[detection] table:"), "{error}");
    assert!(error.contains("novelty.shape_windows = 1 is invalid"), "{error}");
    assert!(!error.contains("metric `cpu`"), "{error}");
}

#[test]
fn rejects_bad_method_settings() {
    let cases = [
        ("method = \"magic\"", "unknown variant `magic`"),
        ("time_zone = \"Mars/Olympus\"", "unknown time zone \"Mars/Olympus\""),
        ("iqr = { windows = 2 }", "iqr.windows = 2 is invalid"),
        ("forecast = { level = 1.5 }", "forecast.level = 1.5 is invalid"),
        ("ensemble = { methods = [] }", "ensemble.methods is empty"),
        ("ensemble = { methods = [\"iqr\", \"robust_band\"] }", "put it first"),
        (
            "ensemble = { methods = [\"robust_band\", \"forecast\"] }",
            "at most one of robust_band and forecast",
        ),
        (
            "ensemble = { methods = [\"iqr\"], weights = [1.0, 2.0] }",
            "2 values for 1 methods",
        ),
        ("min_volume = -1.0", "min_volume = -1 is invalid"),
        ("novelty = { range_scales = [1] }", "novelty.range_scales contains 1"),
        ("cooldown_from = \"never\"", "unknown variant `never`"),
        (
            "novelty = { shape_windows = -3 }",
            "expected a whole number, 0 or more\nin `novelty.shape_windows`",
        ),
    ];
    for (setting, expected) in cases {
        let (metric, key, problem) = invalid_error(&metric_text(&format!(
            "events = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\ndetection = {{ {setting} }}"
        )));
        assert_eq!(metric, "m", "{setting}");
        assert_eq!(key, "detection", "{setting}");
        assert!(problem.contains(expected), "{setting}: {problem}");
    }
}

#[test]
fn non_negative_metrics_are_counts_and_their_ratios() {
    let config = MetricsConfig::parse(
        r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "users"
events = ["view"]
aggregation = "unique_users"
window = "5m"

[[metric]]
name = "revenue"
events = ["purchase"]
aggregation = "sum"
window = "5m"

[[metric]]
name = "views_per_user"
aggregation = "ratio"
numerator = "views"
denominator = "users"
window = "5m"

[[metric]]
name = "revenue_per_user"
aggregation = "ratio"
numerator = "revenue"
denominator = "users"
window = "5m"
"#,
    )
    .unwrap();

    let non_negative = |name: &str| config.metric(name).unwrap().value.is_non_negative();
    assert!(non_negative("views"));
    assert!(non_negative("users"));
    assert!(!non_negative("revenue"));
    assert!(non_negative("views_per_user"));
    assert!(!non_negative("revenue_per_user"));
}

#[test]
fn count_metrics_get_count_model() {
    let config = MetricsConfig::parse(
        r#"
[[metric]]
name = "views"
events = ["view"]
aggregation = "count"
window = "5m"

[[metric]]
name = "users"
events = ["view"]
aggregation = "unique_users"
window = "5m"

[[metric]]
name = "revenue"
events = ["purchase"]
aggregation = "sum"
window = "5m"

[[metric]]
name = "ctr"
aggregation = "ratio"
numerator = "views"
denominator = "users"
window = "5m"

[[metric]]
name = "views_iqr"
events = ["view"]
aggregation = "count"
window = "5m"
detection = { method = "iqr" }

[[metric]]
name = "views_slow"
events = ["view"]
aggregation = "count"
window = "5m"
detection = { fire_lookback = 8, level_adjustment = "additive" }

[[metric]]
name = "views_forecast"
events = ["view"]
aggregation = "count"
window = "5m"
detection = { method = "forecast" }
"#,
    )
    .unwrap();
    let detection = |name: &str| &config.metric(name).unwrap().detection;
    let model = |name: &str| {
        let params = detection(name);
        (
            params.effective_residual_scale(),
            params.level_adjustment,
            params.reference_windows,
            params.fire_outside,
            params.fire_lookback,
        )
    };
    let counted = (ResidualScale::Sqrt, LevelAdjustment::Multiplicative, 3, 2, 3);
    let plain = (ResidualScale::Absolute, LevelAdjustment::Additive, 1, 4, 6);

    assert_eq!(model("views"), counted);
    assert_eq!(model("users"), counted);
    assert_eq!(model("revenue"), plain);
    assert_eq!(model("ctr"), plain);
    assert_eq!(model("views_iqr"), plain);
    // The forecast scales its errors like counts and keeps the rest.
    assert_eq!(
        model("views_forecast"),
        (ResidualScale::Sqrt, LevelAdjustment::Additive, 1, 4, 6)
    );
    // Keys the metric sets win, and a lookback alone keeps the default count of 4.
    assert_eq!(
        model("views_slow"),
        (ResidualScale::Sqrt, LevelAdjustment::Additive, 3, 4, 8)
    );
}

#[test]
fn file_defaults_override_count_model() {
    let config = MetricsConfig::parse(
        "[detection]\nresidual_scale = \"absolute\"\n\n\
         [[metric]]\nname = \"views\"\nevents = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\n",
    )
    .unwrap();
    let views = &config.metric("views").unwrap().detection;

    // Another scale opts out of the whole count model.
    assert_eq!(views.effective_residual_scale(), ResidualScale::Absolute);
    assert_eq!(views.level_adjustment, LevelAdjustment::Additive);
    assert_eq!((views.fire_outside, views.fire_lookback), (4, 6));
}

#[test]
fn one_firing_key_on_count_metric_explained() {
    let error = MetricsConfig::parse(
        "[[metric]]\nname = \"views\"\nevents = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\n\
         detection = { fire_lookback = 3 }\n",
    )
    .unwrap_err()
    .to_string();

    assert!(error.contains("fire_outside = 4 exceeds fire_lookback = 3"), "{error}");
    assert!(error.contains("so set both"), "{error}");
}

#[test]
fn fire_ratio_error_has_no_firing_pair_hint() {
    let error = MetricsConfig::parse(
        "[[metric]]\nname = \"views\"\nevents = [\"view\"]\naggregation = \"count\"\nwindow = \"5m\"\n\
         detection = { fire_outside = 2, fire_ratio = 0.5 }\n",
    )
    .unwrap_err()
    .to_string();

    assert!(error.contains("fire_ratio = 0.5 is invalid"), "{error}");
    assert!(!error.contains("so set both"), "{error}");
}

#[test]
fn metrics_file_keys_match_the_parser() {
    let error = MetricsConfig::parse("no_such_key = 1\n").unwrap_err().to_string();

    let listed = METRICS_FILE_KEYS.map(|key| format!("`{key}`")).join(", ");
    assert!(error.contains(&format!("expected one of {listed}")), "{error}");
}
