use super::*;

/// 2024-05-01 10:00:00 UTC in Unix epoch milliseconds.
const MAY_FIRST_10_00_MS: i64 = 1_714_557_600_000;

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension {
        name: name.to_string(),
        value: value.to_string(),
    }
}

fn firing_event() -> AnomalyEvent {
    AnomalyEvent {
        id: "ep-42".to_string(),
        sequence: 7,
        state: AnomalyState::Firing as i32,
        metric: "checkout_conversion".to_string(),
        slice: vec![dimension("os", "iOS"), dimension("country", "DE")],
        window_start_ms: MAY_FIRST_10_00_MS,
        window_end_ms: MAY_FIRST_10_00_MS + 300_000,
        value: 123.4,
        expected: 200.0,
        lower: 180.0,
        upper: 220.0,
        score: 0.97,
        severity: Severity::Critical as i32,
        direction: Direction::Down as i32,
        window_seconds: 300,
        detected_at_ms: MAY_FIRST_10_00_MS + 301_000,
        traceparent: String::new(),
        ..Default::default()
    }
}

#[test]
fn firing_message_lists_every_field() {
    let message = format_alert(&firing_event());

    let expected = "🔴 Anomaly firing: checkout_conversion\n\
                    Slice: os=iOS, country=DE\n\
                    Window: 2024-05-01 10:00–10:05 UTC (5 min)\n\
                    Value: 123.4, expected 200 in range [180, 220]\n\
                    Deviation: -38.3% from expected\n\
                    Severity: critical, direction: down (below the range), score: 0.97\n\
                    Episode: ep-42";
    assert_eq!(message.plain_text(), expected);
}

#[test]
fn firing_message_html_marks_metric_and_slice() {
    let html = format_alert(&firing_event()).html();

    assert!(html.contains("<b>checkout_conversion</b>"), "{html}");
    assert!(html.contains("<code>os=iOS</code>, <code>country=DE</code>"), "{html}");
    assert!(html.contains("<code>ep-42</code>"), "{html}");
}

#[test]
fn resolved_message_says_resolved() {
    let event = AnomalyEvent {
        state: AnomalyState::Resolved as i32,
        value: 201.0,
        ..firing_event()
    };

    let text = format_alert(&event).plain_text();

    assert!(text.starts_with("✅ Resolved: checkout_conversion\n"), "{text}");
    assert!(text.contains("back inside its expected range"), "{text}");
    assert!(!text.contains("firing"), "{text}");
    assert!(text.contains("Value: 201, expected 200"), "{text}");
    assert!(text.contains("Episode severity: "), "{text}");
}

#[test]
fn escalated_message_names_both_severities() {
    let escalated = AnomalyEvent {
        state: AnomalyState::Escalated as i32,
        severity: Severity::Critical as i32,
        announced_severities: vec![Severity::Warning as i32, Severity::Critical as i32],
        window_start_ms: MAY_FIRST_10_00_MS + 3_600_000,
        window_end_ms: MAY_FIRST_10_00_MS + 3_900_000,
        episode_start_ms: MAY_FIRST_10_00_MS,
        ..firing_event()
    };
    let without_list = AnomalyEvent {
        announced_severities: Vec::new(),
        ..escalated.clone()
    };

    let text = format_alert(&escalated).plain_text();
    let older = format_alert(&without_list).plain_text();

    assert!(
        text.starts_with(
            "🔺 Anomaly escalated to critical: checkout_conversion\n\
             Severity was warning; the episode started at 2024-05-01 10:00 UTC.\n"
        ),
        "{text}"
    );
    assert!(text.contains("\nDirection: down (below the range), score: "), "{text}");
    assert!(
        !text.contains("Severity: "),
        "the first line names the severity: {text}"
    );
    assert!(older.contains("\nSeverity was unspecified; the episode"), "{older}");
}

#[test]
fn unknown_state_is_shown_with_its_number() {
    let event = AnomalyEvent {
        state: 9,
        ..firing_event()
    };

    let text = format_alert(&event).plain_text();

    assert!(
        text.starts_with("⚪ Anomaly update (unknown state 9): checkout_conversion"),
        "{text}"
    );
}

#[test]
fn empty_slice_is_total() {
    let event = AnomalyEvent {
        slice: Vec::new(),
        ..firing_event()
    };

    let text = format_alert(&event).plain_text();

    assert!(text.contains("\nSlice: total\n"), "{text}");
}

#[test]
fn markup_values_escaped_and_intact() {
    let event = AnomalyEvent {
        metric: "A&B <control>".to_string(),
        slice: vec![
            dimension("event", "drop_rate*"),
            dimension("a_b", "[x]"),
            dimension("quote", r#"say "hi""#),
        ],
        id: "<ep&1>".to_string(),
        ..firing_event()
    };

    let message = format_alert(&event);
    let html = message.html();
    let text = message.plain_text();

    assert!(html.contains("<b>A&amp;B &lt;control&gt;</b>"), "{html}");
    assert!(html.contains("<code>event=drop_rate*</code>"), "{html}");
    assert!(html.contains("<code>a_b=[x]</code>"), "{html}");
    assert!(html.contains("<code>quote=say &quot;hi&quot;</code>"), "{html}");
    assert!(html.contains("<code>&lt;ep&amp;1&gt;</code>"), "{html}");
    assert!(text.contains("A&B <control>"), "{text}");
    assert!(text.contains("event=drop_rate*, a_b=[x], quote=say \"hi\""), "{text}");
}

#[test]
fn huge_slice_is_cut_well_below_telegram_limit() {
    let long_value = "v".repeat(5_000);
    let slice: Vec<Dimension> = (0..200)
        .map(|index| dimension(&format!("dimension_{index}_{}", "n".repeat(100)), &long_value))
        .collect();
    let event = AnomalyEvent {
        metric: "m".repeat(10_000),
        id: "e".repeat(10_000),
        slice,
        ..firing_event()
    };

    let message = format_alert(&event);
    let text = message.plain_text();

    assert!(text.chars().count() < 1_500, "{} characters", text.chars().count());
    assert!(message.html().chars().count() < 4_096);
    assert!(
        text.contains(&format!("{}…", "m".repeat(MAX_METRIC_CHARS - 1))),
        "{text}"
    );
    assert!(text.contains(" more\n"), "{text}");
    assert!(
        text.contains(&format!("={}…", "v".repeat(MAX_DIMENSION_VALUE_CHARS - 1))),
        "{text}"
    );
}

#[test]
fn truncation_never_splits_an_entity() {
    let event = AnomalyEvent {
        metric: "&".repeat(500),
        ..firing_event()
    };

    let html = format_alert(&event).html();

    let bold = html.split("<b>").nth(1).unwrap().split("</b>").next().unwrap();
    assert_eq!(bold, format!("{}…", "&amp;".repeat(MAX_METRIC_CHARS - 1)));
}

#[test]
fn slice_summarises_dimensions_past_budget() {
    let slice: Vec<Dimension> = (0..30)
        .map(|index| dimension(&format!("d{index:02}"), &"x".repeat(60)))
        .collect();
    let event = AnomalyEvent {
        slice,
        ..firing_event()
    };

    let text = format_alert(&event).plain_text();

    // Each pair is 64 characters, so 9 pairs (576) fit the 600 budget.
    assert!(text.contains(&format!("d08={}", "x".repeat(60))), "{text}");
    assert!(!text.contains("d09="), "{text}");
    assert!(text.contains(" and 21 more\n"), "{text}");
}

#[test]
fn window_across_midnight_shows_both_dates() {
    let end_ms = 1_714_608_000_000; // 2024-05-02 00:00:00 UTC
    assert_eq!(
        format_window(end_ms - 3_600_000, end_ms, 3_600),
        "2024-05-01 23:00 – 2024-05-02 00:00 UTC (1 h)"
    );
}

#[test]
fn window_with_seconds_shows_seconds() {
    assert_eq!(
        format_window(MAY_FIRST_10_00_MS + 30_000, MAY_FIRST_10_00_MS + 120_000, 0),
        "2024-05-01 10:00:30–10:02:00 UTC (90 s)"
    );
}

#[test]
fn window_out_of_range_falls_back_to_milliseconds() {
    assert_eq!(
        format_window(i64::MAX - 10, i64::MAX, 60),
        format!("{}–{} ms since the Unix epoch (1 min)", i64::MAX - 10, i64::MAX)
    );
}

#[test]
fn deviation_percent_cases() {
    let cases = [
        (123.4, 200.0, Some(-38.3)),
        (150.0, 100.0, Some(50.0)),
        (-50.0, -100.0, Some(50.0)),
        (-150.0, -100.0, Some(-50.0)),
        (0.0, 0.0, Some(0.0)),
        (5.0, 0.0, None),
        (f64::NAN, 1.0, None),
        (1.0, f64::INFINITY, None),
    ];

    for (value, expected, want) in cases {
        let got = deviation_percent(value, expected);
        match (got, want) {
            (Some(got), Some(want)) => assert!(
                (got - want).abs() < 1e-9,
                "value {value}, expected {expected}: got {got}, want {want}"
            ),
            (got, want) => assert_eq!(got, want, "value {value}, expected {expected}"),
        }
    }
}

#[test]
fn deviation_text_cases() {
    assert_eq!(format_deviation(123.4, 200.0), "-38.3% from expected");
    assert_eq!(format_deviation(220.0, 200.0), "+10.0% from expected");
    assert_eq!(format_deviation(5000.0, 2.0), "+249900% from expected");
    assert_eq!(format_deviation(5.0, 0.0), "n/a (expected value is 0)");
    assert_eq!(format_deviation(f64::NAN, 1.0), "n/a");
}

#[test]
fn number_format_cases() {
    let cases = [
        (1234.0, "1234"),
        (-3.0, "-3"),
        (12.5, "12.5"),
        (12.3456, "12.35"),
        (1234.56, "1234.6"),
        (0.012345, "0.0123"),
        (0.5, "0.5"),
        (0.00015, "0.00015"),
        (0.00000015, "1.50e-7"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ];

    for (number, want) in cases {
        assert_eq!(format_number(number), want, "number {number}");
    }
}
