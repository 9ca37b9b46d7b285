use super::*;
use crate::format::format_alert;
use seismo_proto::v1::Dimension;

fn event(state: AnomalyState, slice: &[(&str, &str)], value: f64, expected: f64) -> AnomalyEvent {
    AnomalyEvent {
        id: "ep-42".to_string(),
        state: state as i32,
        metric: "checkout_conversion".to_string(),
        slice: slice
            .iter()
            .map(|(name, value)| Dimension {
                name: name.to_string(),
                value: value.to_string(),
            })
            .collect(),
        window_start_ms: 1_714_557_600_000,
        window_end_ms: 1_714_557_900_000,
        window_seconds: 300,
        value,
        expected,
        lower: expected * 0.8,
        upper: expected * 1.2,
        score: 0.87,
        severity: Severity::Critical as i32,
        direction: Direction::Up as i32,
        ..AnomalyEvent::default()
    }
}

/// Returns an escalation to the last of `announced`, from the one before it.
fn escalation(announced: &[Severity]) -> AnomalyEvent {
    AnomalyEvent {
        severity: *announced.last().unwrap() as i32,
        announced_severities: announced.iter().map(|severity| *severity as i32).collect(),
        ..event(AnomalyState::Escalated, &[("os", "iOS")], 300.0, 40.0)
    }
}

fn built_in(name: &str) -> Arc<TemplateSet> {
    Templates::load(None).unwrap().get(name, "1").unwrap()
}

#[test]
fn english_template_matches_built_in_format() {
    let english = built_in("en");
    let events = [
        event(AnomalyState::Firing, &[("os", "iOS"), ("country", "RU")], 120.0, 40.0),
        escalation(&[Severity::Warning, Severity::Critical]),
        escalation(&[Severity::Critical]),
        event(AnomalyState::Resolved, &[], 41.0, 40.0),
        event(AnomalyState::Firing, &[("os", "<script>&")], 3.0, 0.0),
    ];

    for event in &events {
        let rendered = english
            .render(event, false)
            .expect("firing, escalation and resolution render");
        assert_eq!(rendered.html(), format_alert(event).html());
        assert_eq!(rendered.plain_text(), format_alert(event).plain_text());
    }
}

#[test]
fn values_are_escaped_before_substitution() {
    let english = built_in("en");
    let mut hostile = event(AnomalyState::Firing, &[("os", "</code><b>x")], 1.0, 2.0);
    hostile.metric = "<b>bold</b> & co".to_string();

    let rendered = english.render(&hostile, false).unwrap();

    assert!(
        rendered
            .plain_text()
            .starts_with("🔴 Anomaly firing: <b>bold</b> & co\n"),
        "{}",
        rendered.plain_text()
    );
    assert!(
        rendered.html().contains("<b>&lt;b&gt;bold&lt;/b&gt; &amp; co</b>"),
        "{}",
        rendered.html()
    );
    assert!(
        rendered.html().contains("<code>os=&lt;/code&gt;&lt;b&gt;x</code>"),
        "{}",
        rendered.html()
    );
}

#[test]
fn russian_template_translates_text_and_names() {
    let russian = built_in("ru");

    let firing = russian
        .render(&event(AnomalyState::Firing, &[], 120.0, 40.0), false)
        .unwrap()
        .plain_text();
    let resolved = russian
        .render(&event(AnomalyState::Resolved, &[], 41.0, 40.0), true)
        .unwrap()
        .plain_text();

    assert!(
        firing.starts_with("🔴 Аномалия: checkout_conversion\nСрез: весь показатель\n"),
        "{firing}"
    );
    assert!(firing.contains("Отклонение: +200.0% от ожидаемого"), "{firing}");
    assert!(
        firing.contains("Важность: критическая, направление: вверх (выше диапазона)"),
        "{firing}"
    );
    assert!(
        resolved.starts_with("🔁 Всё ещё активно с 2024-05-01 10:00 UTC\n✅ Вернулось в норму"),
        "{resolved}"
    );
}

#[test]
fn escalation_names_both_severities() {
    let escalated = escalation(&[Severity::Info, Severity::Warning]);

    let english = built_in("en").render(&escalated, false).unwrap().plain_text();
    let russian = built_in("ru").render(&escalated, false).unwrap().plain_text();
    let group = built_in("en")
        .render_grouped(&[&escalated, &escalated], false)
        .unwrap()
        .plain_text();

    assert!(
        english.starts_with("🔺 Anomaly escalated to warning: checkout_conversion\nSeverity was info;"),
        "{english}"
    );
    assert!(
        russian.starts_with("🔺 Аномалия усилилась (важность: предупреждение): checkout_conversion\nБыла: информация;"),
        "{russian}"
    );
    assert!(
        group.starts_with("🔺 2 anomalies escalated: checkout_conversion\n"),
        "{group}"
    );
}

#[test]
fn old_set_renders_escalations_as_firings() {
    let english = include_str!("../../templates/en.toml");
    let start = english.find("\nescalated = ").unwrap();
    let end = start + english[start + 1..].find("\n\n").unwrap();
    let older = english[..start].to_string() + &english[end..];
    let older = older.replace(
        "group_escalated = \"🔺 {count} anomalies escalated: <b>{metric}</b>\"\n",
        "",
    );
    assert!(!older.contains("escalated ="), "{older}");

    let set = TemplateSet::parse("older", "older.toml", &older).unwrap();
    let escalated = escalation(&[Severity::Warning, Severity::Critical]);

    let single = set.render(&escalated, false).unwrap().plain_text();
    let group = set
        .render_grouped(&[&escalated, &escalated], false)
        .unwrap()
        .plain_text();
    assert!(
        single.starts_with("🔴 Anomaly firing: checkout_conversion\n"),
        "{single}"
    );
    assert!(single.contains("Severity: critical"), "{single}");
    assert!(group.starts_with("🔴 2 anomalies firing: "), "{group}");
}

#[test]
fn previous_severity_only_in_escalated() {
    let english = include_str!("../../templates/en.toml");
    let text = english.replacen(
        "Severity: {severity}, direction",
        "Severity: {previous_severity}, direction",
        1,
    );

    let error = TemplateSet::parse("custom", "custom.toml", &text)
        .unwrap_err()
        .to_string();

    assert!(
        error.contains("`firing`: unknown placeholder {previous_severity}"),
        "{error}"
    );
}

#[test]
fn group_lists_top_anomalies_and_counts_the_rest() {
    let english = built_in("en");
    let events: Vec<AnomalyEvent> = (0..12)
        .map(|index| {
            let mut anomaly = event(AnomalyState::Firing, &[("country", &format!("C{index}"))], 1.0, 2.0);
            anomaly.score = f64::from(index) / 100.0;
            anomaly
        })
        .collect();
    let references: Vec<&AnomalyEvent> = events.iter().collect();

    let text = english.render_grouped(&references, false).unwrap().plain_text();

    assert!(
        text.starts_with("🔴 12 anomalies firing: checkout_conversion\nTop 10 of 12 by score:\n• country=C11:"),
        "{text}"
    );
    assert_eq!(text.matches("• ").count(), 10);
    assert!(text.ends_with("and 2 more\n"), "{text}");
}

#[test]
fn invalid_templates_are_rejected() {
    let english = include_str!("../../templates/en.toml");
    let cases = [
        (english.replace("{metric}", "{metrik}"), "unknown placeholder {metrik}"),
        (
            english.replace("Episode: <code>{episode}</code>", "Episode: <i>{episode}</i>"),
            "unsupported or misplaced tag <i>",
        ),
        (
            english.replace("Episode: <code>{episode}</code>", "Episode: <code>{episode}"),
            "<code> is not closed",
        ),
        (
            english.replace("Window: {window}", "Window & {window}"),
            "a `&` that starts no entity",
        ),
        (
            english.replacen("\nrepeat = ", "\nrepeats = ", 1),
            "unknown field `repeats`",
        ),
        (
            english.replace("and {rest} more", "and {count} more"),
            "unknown placeholder {count}",
        ),
    ];

    for (text, expected) in cases {
        let error = TemplateSet::parse("custom", "custom.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "expected {expected:?} in: {error}");
        assert!(error.contains("custom.toml"), "{error}");
    }
}

#[test]
fn directory_sets_add_and_replace_built_in_ones() {
    let directory = tempfile::tempdir().unwrap();
    let english = include_str!("../../templates/en.toml");
    std::fs::write(
        directory.path().join("team.toml"),
        english.replace("Anomaly firing", "Team alert"),
    )
    .unwrap();
    std::fs::write(
        directory.path().join("ru.toml"),
        english.replace("Anomaly firing", "Replaced"),
    )
    .unwrap();
    std::fs::write(directory.path().join("notes.txt"), "not a template").unwrap();

    let templates = Templates::load(Some(directory.path())).unwrap();
    let firing = event(AnomalyState::Firing, &[], 1.0, 2.0);

    let team = templates.get("team", "1").unwrap().render(&firing, false).unwrap();
    let replaced = templates.get("ru", "1").unwrap().render(&firing, false).unwrap();
    assert!(team.plain_text().starts_with("🔴 Team alert"), "{}", team.plain_text());
    assert!(
        replaced.plain_text().starts_with("🔴 Replaced"),
        "{}",
        replaced.plain_text()
    );
    let error = templates.get("missing", "-1001").unwrap_err().to_string();
    assert!(
        error.contains("unknown template set `missing` for chat -1001; available: en, ru, team"),
        "{error}"
    );
}
