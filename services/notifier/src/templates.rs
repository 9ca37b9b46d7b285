//! Message templates that users can edit: one TOML file per template set
//! (`en.toml`, `ru.toml` built in), with Telegram HTML text and `{name}`
//! placeholders. Values are HTML-escaped before substitution, and the result
//! is parsed back into styled spans, so that splitting, the plain-text
//! fallback and the console output work as for the built-in format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seismo_proto::v1::{AnomalyEvent, AnomalyState, Direction, Severity};
use serde::Deserialize;

use crate::escape::escape_html;
use crate::format::{format_deviation, format_number, format_score, format_window, push_slice, truncate_chars};
use crate::group_format::MAX_LISTED;
use crate::message::{AlertMessage, Span};

const BUILT_IN: [(&str, &str); 2] = [
    ("en", include_str!("../templates/en.toml")),
    ("ru", include_str!("../templates/ru.toml")),
];

/// Maximum length of the metric name shown, in characters.
const MAX_METRIC_CHARS: usize = 128;
/// Maximum length of the episode id shown, in characters.
const MAX_EPISODE_ID_CHARS: usize = 64;

/// Placeholders of one anomaly, allowed in `firing`, `resolved` and
/// `group_line`.
const EVENT_FIELDS: &[&str] = &[
    "metric",
    "slice",
    "window",
    "value",
    "expected",
    "lower",
    "upper",
    "deviation",
    "deviation_percent",
    "severity",
    "direction",
    "score",
    "episode",
];

/// Placeholders `escalated` allows beyond those of one anomaly: the
/// severity before the escalation and the start of the episode.
const ESCALATION_FIELDS: [&str; 2] = ["previous_severity", "since"];

/// A template set as written in its file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    firing: String,
    /// Optional so that sets written before escalations still load; they
    /// show escalations with `firing`.
    escalated: Option<String>,
    resolved: String,
    repeat: String,
    group_firing: String,
    group_escalated: Option<String>,
    group_resolved: String,
    group_repeat: String,
    group_top: String,
    group_line: String,
    group_more: String,
    total: String,
    severity: SeverityNames,
    direction: DirectionNames,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityNames {
    info: String,
    warning: String,
    critical: String,
    unspecified: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectionNames {
    up: String,
    down: String,
    unspecified: String,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Template HTML, inserted as written.
    Html(String),
    /// A placeholder name.
    Field(String),
}

/// A template parsed into text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    pieces: Vec<Piece>,
}

/// Error that makes the template sets unusable.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("reading the templates directory {path} failed: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("invalid template set `{name}` ({origin}): {reason}")]
    Invalid {
        name: String,
        origin: String,
        reason: String,
    },
    #[error("unknown template set `{name}` for chat {chat}; available: {available}")]
    Unknown {
        name: String,
        chat: String,
        available: String,
    },
}

/// A checked template set.
#[derive(Debug)]
pub struct TemplateSet {
    name: String,
    firing: Template,
    escalated: Template,
    resolved: Template,
    repeat: Template,
    group_firing: Template,
    group_escalated: Template,
    group_resolved: Template,
    group_repeat: Template,
    group_top: Template,
    group_line: Template,
    group_more: Template,
    total: String,
    severity: SeverityNames,
    direction: DirectionNames,
}

/// The template sets by name: the built-in `en` and `ru`, and those of the
/// templates directory, which replace a built-in set of the same name.
#[derive(Debug, Clone)]
pub struct Templates {
    sets: HashMap<String, Arc<TemplateSet>>,
}

impl Templates {
    /// Loads the built-in sets and every `*.toml` file of `directory`.
    pub fn load(directory: Option<&Path>) -> Result<Self, TemplateError> {
        let mut sets = HashMap::new();
        for (name, text) in BUILT_IN {
            let set = TemplateSet::parse(name, "built in", text)?;
            sets.insert(name.to_string(), Arc::new(set));
        }

        if let Some(directory) = directory {
            let unreadable = |source| TemplateError::Unreadable {
                path: directory.to_path_buf(),
                source,
            };
            let mut paths: Vec<PathBuf> = std::fs::read_dir(directory)
                .map_err(unreadable)?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).map_err(unreadable)?;
                let set = TemplateSet::parse(&name, &path.display().to_string(), &text)?;
                sets.insert(name, Arc::new(set));
            }
        }
        Ok(Self { sets })
    }

    /// Returns the set named `name`; `chat` names the chat in the error.
    pub fn get(&self, name: &str, chat: &str) -> Result<Arc<TemplateSet>, TemplateError> {
        self.sets.get(name).cloned().ok_or_else(|| {
            let mut available: Vec<&str> = self.sets.keys().map(String::as_str).collect();
            available.sort();
            TemplateError::Unknown {
                name: name.to_string(),
                chat: chat.to_string(),
                available: available.join(", "),
            }
        })
    }
}

impl TemplateSet {
    /// Parses and checks a template file. Every template is rendered once
    /// with a sample anomaly whose values contain HTML special characters, so
    /// a template that would produce invalid HTML is rejected here.
    fn parse(name: &str, origin: &str, text: &str) -> Result<Self, TemplateError> {
        let invalid = |reason: String| TemplateError::Invalid {
            name: name.to_string(),
            origin: origin.to_string(),
            reason,
        };
        let file: TemplateFile = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
        let template = |key: &str, source: &str, allowed: &[&str]| {
            Template::parse(source, allowed).map_err(|reason| invalid(format!("`{key}`: {reason}")))
        };
        let group_header = &["count", "metric"];
        let escalated_fields: Vec<&str> = EVENT_FIELDS.iter().copied().chain(ESCALATION_FIELDS).collect();
        let missing: Vec<&str> = [
            ("escalated", file.escalated.is_none()),
            ("group_escalated", file.group_escalated.is_none()),
        ]
        .into_iter()
        .filter_map(|(key, missing)| missing.then_some(key))
        .collect();
        if !missing.is_empty() {
            tracing::warn!(template_set = %name, origin = %origin, missing = %missing.join(", "),
                "the template set lacks templates for escalations, so they use `firing` or `group_firing` in \
                 their place. Copy the missing keys from the built-in en.toml");
        }

        let set = Self {
            name: name.to_string(),
            firing: template("firing", &file.firing, EVENT_FIELDS)?,
            escalated: match &file.escalated {
                Some(escalated) => template("escalated", escalated, &escalated_fields)?,
                None => template("firing", &file.firing, EVENT_FIELDS)?,
            },
            resolved: template("resolved", &file.resolved, EVENT_FIELDS)?,
            repeat: template("repeat", &file.repeat, &["since"])?,
            group_firing: template("group_firing", &file.group_firing, group_header)?,
            group_escalated: template(
                "group_escalated",
                file.group_escalated.as_ref().unwrap_or(&file.group_firing),
                group_header,
            )?,
            group_resolved: template("group_resolved", &file.group_resolved, group_header)?,
            group_repeat: template("group_repeat", &file.group_repeat, group_header)?,
            group_top: template("group_top", &file.group_top, &["shown", "count"])?,
            group_line: template("group_line", &file.group_line, EVENT_FIELDS)?,
            group_more: template("group_more", &file.group_more, &["rest"])?,
            total: file.total,
            severity: file.severity,
            direction: file.direction,
        };

        for state in [AnomalyState::Firing, AnomalyState::Escalated, AnomalyState::Resolved] {
            let sample = AnomalyEvent {
                state: state as i32,
                ..sample_event()
            };
            set.render_single(&sample, true).map_err(invalid)?;
            let many: Vec<&AnomalyEvent> = std::iter::repeat_n(&sample, MAX_LISTED + 1).collect();
            set.render_group(&many, false).map_err(invalid)?;
        }
        Ok(set)
    }

    /// Name of the set, such as `en`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders one firing, escalation or resolution, below the repeat line
    /// for a repeat. Returns `None` for an unknown state, which the built-in
    /// format covers.
    pub fn render(&self, event: &AnomalyEvent, repeat: bool) -> Option<AlertMessage> {
        match AnomalyState::try_from(event.state) {
            Ok(AnomalyState::Firing | AnomalyState::Escalated | AnomalyState::Resolved) => {
                self.render_single(event, repeat).ok()
            }
            _ => None,
        }
    }

    /// Renders several anomalies of one metric and state as one message, the
    /// [`MAX_LISTED`] highest scores one per line.
    pub fn render_grouped(&self, events: &[&AnomalyEvent], repeat: bool) -> Option<AlertMessage> {
        self.render_group(events, repeat).ok()
    }

    fn render_single(&self, event: &AnomalyEvent, repeat: bool) -> Result<AlertMessage, String> {
        let template = match AnomalyState::try_from(event.state) {
            Ok(AnomalyState::Resolved) => &self.resolved,
            Ok(AnomalyState::Escalated) => &self.escalated,
            _ => &self.firing,
        };
        let mut html = String::new();
        if repeat {
            let since = crate::format::format_episode_start(event);
            html.push_str(&self.repeat.render(&|_| Some(escape_html(&since).into_owned())));
            html.push('\n');
        }
        html.push_str(&template.render(&|field| self.event_field(event, field)));
        parse_html(&html)
    }

    fn render_group(&self, events: &[&AnomalyEvent], repeat: bool) -> Result<AlertMessage, String> {
        let Some(first) = events.first() else {
            return Ok(AlertMessage::default());
        };
        let count = events.len().to_string();
        let metric = escape_html(&truncate_chars(&first.metric, MAX_METRIC_CHARS)).into_owned();
        let header = match (repeat, AnomalyState::try_from(first.state)) {
            (true, _) => &self.group_repeat,
            (false, Ok(AnomalyState::Resolved)) => &self.group_resolved,
            (false, Ok(AnomalyState::Escalated)) => &self.group_escalated,
            (false, _) => &self.group_firing,
        };

        let mut html = header.render(&|field| match field {
            "count" => Some(count.clone()),
            "metric" => Some(metric.clone()),
            _ => None,
        });
        html.push('\n');
        if events.len() > MAX_LISTED {
            let shown = MAX_LISTED.to_string();
            html.push_str(&self.group_top.render(&|field| match field {
                "shown" => Some(shown.clone()),
                "count" => Some(count.clone()),
                _ => None,
            }));
            html.push('\n');
        }

        let mut ranked: Vec<&AnomalyEvent> = events.to_vec();
        // Highest score first; NaN scores sort last.
        ranked.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Less));
        for event in ranked.iter().take(MAX_LISTED) {
            html.push_str(&self.group_line.render(&|field| self.event_field(event, field)));
            html.push('\n');
        }
        if events.len() > MAX_LISTED {
            let rest = (events.len() - MAX_LISTED).to_string();
            html.push_str(&self.group_more.render(&|_| Some(rest.clone())));
            html.push('\n');
        }
        parse_html(&html)
    }

    /// Returns the HTML of one placeholder of `event`.
    fn event_field(&self, event: &AnomalyEvent, field: &str) -> Option<String> {
        let text = match field {
            "metric" => truncate_chars(&event.metric, MAX_METRIC_CHARS),
            // Already HTML: escaped `name=value` pairs in <code>.
            "slice" if event.slice.is_empty() => return Some(escape_html(&self.total).into_owned()),
            "slice" => {
                let mut slice = AlertMessage::default();
                push_slice(&mut slice, &event.slice);
                return Some(slice.html());
            }
            "window" => format_window(event.window_start_ms, event.window_end_ms, event.window_seconds),
            "value" => format_number(event.value),
            "expected" => format_number(event.expected),
            "lower" => format_number(event.lower),
            "upper" => format_number(event.upper),
            "deviation" => format_deviation(event.value, event.expected),
            "deviation_percent" => match crate::format::deviation_percent(event.value, event.expected) {
                Some(percent) if percent.abs() >= 1000.0 => format!("{percent:+.0}%"),
                Some(percent) => format!("{percent:+.1}%"),
                None => "n/a".to_string(),
            },
            "severity" => self.severity_name(event.severity),
            "since" => crate::format::format_episode_start(event),
            "previous_severity" => self.severity_name(crate::format::previous_severity(event).unwrap_or_default()),
            "direction" => self.direction_name(event.direction),
            "score" => format_score(event.score),
            "episode" => truncate_chars(&event.id, MAX_EPISODE_ID_CHARS),
            _ => return None,
        };
        Some(escape_html(&text).into_owned())
    }

    fn severity_name(&self, severity: i32) -> String {
        let names = &self.severity;
        match Severity::try_from(severity) {
            Ok(Severity::Critical) => names.critical.clone(),
            Ok(Severity::Warning) => names.warning.clone(),
            Ok(Severity::Info) => names.info.clone(),
            Ok(Severity::Unspecified) => names.unspecified.clone(),
            Err(_) => format!("{} ({severity})", names.unspecified),
        }
    }

    fn direction_name(&self, direction: i32) -> String {
        let names = &self.direction;
        match Direction::try_from(direction) {
            Ok(Direction::Up) => names.up.clone(),
            Ok(Direction::Down) => names.down.clone(),
            Ok(Direction::Unspecified) => names.unspecified.clone(),
            Err(_) => format!("{} ({direction})", names.unspecified),
        }
    }
}

impl Template {
    /// Splits `source` into HTML and `{name}` placeholders; `{{` and `}}`
    /// are literal braces. Rejects a placeholder not in `allowed`.
    fn parse(source: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut characters = source.chars().peekable();

        while let Some(character) = characters.next() {
            match character {
                '{' if characters.peek() == Some(&'{') => {
                    characters.next();
                    text.push('{');
                }
                '}' if characters.peek() == Some(&'}') => {
                    characters.next();
                    text.push('}');
                }
                '{' => {
                    let name: String = characters.by_ref().take_while(|&c| c != '}').collect();
                    if !allowed.contains(&name.as_str()) {
                        return Err(format!(
                            "unknown placeholder {{{name}}}; allowed here: {}",
                            allowed
                                .iter()
                                .map(|field| format!("{{{field}}}"))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Html(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name));
                }
                '}' => return Err("a `}` without `{`; write `}}` for a literal brace".to_string()),
                other => text.push(other),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Html(text));
        }
        Ok(Self { pieces })
    }

    /// Renders the template with the HTML `value` returns per placeholder.
    fn render(&self, value: &dyn Fn(&str) -> Option<String>) -> String {
        let mut html = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Html(text) => html.push_str(text),
                Piece::Field(name) => html.push_str(&value(name).unwrap_or_default()),
            }
        }
        html
    }
}

/// Parses Telegram HTML with `<b>` and `<code>` (not nested) and the
/// entities `&lt;`, `&gt;`, `&amp;` and `&quot;` into styled spans.
fn parse_html(html: &str) -> Result<AlertMessage, String> {
    let mut message = AlertMessage::default();
    let mut style: Option<&str> = None;
    let mut text = String::new();
    let mut rest = html;

    let flush = |message: &mut AlertMessage, style: Option<&str>, text: &mut String| {
        if text.is_empty() {
            return;
        }
        let content = std::mem::take(text);
        message.spans.push(match style {
            Some("b") => Span::Bold(content),
            Some(_) => Span::Code(content),
            None => Span::Plain(content),
        });
    };

    while let Some(character) = rest.chars().next() {
        match character {
            '<' => {
                let end = rest.find('>').ok_or("a `<` without `>`; write &lt; for a literal <")?;
                let tag = &rest[1..end];
                match (tag, style) {
                    ("b" | "code", None) => {
                        flush(&mut message, style, &mut text);
                        style = Some(if tag == "b" { "b" } else { "code" });
                    }
                    ("/b", Some("b")) | ("/code", Some("code")) => {
                        flush(&mut message, style, &mut text);
                        style = None;
                    }
                    _ => {
                        return Err(format!(
                            "unsupported or misplaced tag <{tag}>; only <b> and <code>, not nested, are allowed"
                        ));
                    }
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let name_length = rest[1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
                    .unwrap_or(rest.len() - 1);
                let end = name_length + 1;
                if !rest[end..].starts_with(';') {
                    return Err("a `&` that starts no entity; write &amp; for a literal &".to_string());
                }
                let decoded = match &rest[..=end] {
                    "&lt;" => '<',
                    "&gt;" => '>',
                    "&amp;" => '&',
                    "&quot;" => '"',
                    entity => return Err(format!("unsupported entity {entity}; use &lt; &gt; &amp; or &quot;")),
                };
                text.push(decoded);
                rest = &rest[end + 1..];
            }
            '>' => return Err("a `>` outside a tag; write &gt; for a literal >".to_string()),
            other => {
                text.push(other);
                rest = &rest[other.len_utf8()..];
            }
        }
    }
    if let Some(open) = style {
        return Err(format!("<{open}> is not closed"));
    }
    flush(&mut message, style, &mut text);
    Ok(message)
}

/// Returns an anomaly whose text values contain every HTML special character.
fn sample_event() -> AnomalyEvent {
    AnomalyEvent {
        id: "ep-<&\">".to_string(),
        state: AnomalyState::Firing as i32,
        metric: "metric<&\">".to_string(),
        slice: vec![seismo_proto::v1::Dimension {
            name: "os<>".to_string(),
            value: "a&b\"".to_string(),
        }],
        window_start_ms: 1_714_557_600_000,
        window_end_ms: 1_714_557_900_000,
        window_seconds: 300,
        value: 12.0,
        expected: 40.0,
        lower: 30.0,
        upper: 50.0,
        score: 0.9,
        severity: Severity::Warning as i32,
        direction: Direction::Down as i32,
        ..AnomalyEvent::default()
    }
}

#[cfg(test)]
mod tests;
