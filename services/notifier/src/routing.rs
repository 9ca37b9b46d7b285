//! Routing rules: which chats receive an anomaly, and whom the alert
//! mentions, chosen by metric name, slice values and minimum severity.
//!
//! Rules are read from a TOML file and tried in file order. The first rule
//! that matches an event routes it, and an event no rule matches goes to the
//! default route. An escalation takes the route of its new severity, which
//! may differ from the firing's. A resolution goes to the routes of every
//! severity its episode was announced with, and delivery adds the chats the
//! notification log records as notified of the episode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seismo_proto::v1::{AnomalyEvent, AnomalyState, Severity};
use serde::Deserialize;

use crate::config::{ChatTarget, ConfigError, parse_chat_targets};

/// Name of the route that takes events no rule matches.
pub const DEFAULT_ROUTE: &str = "default";

/// The routing file as written. See `docs/notifier.md` for an example.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutingFile {
    #[serde(default, rename = "route")]
    routes: Vec<RuleFile>,
    default: Option<DefaultFile>,
    /// Settings per chat, keyed by chat id or `@username`.
    #[serde(default)]
    chats: BTreeMap<String, ChatFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFile {
    /// Name of the template set for the chat's alerts, such as `ru`.
    template: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    /// Metric name globs (`*` any run of characters, `?` one); empty matches
    /// every metric.
    #[serde(default)]
    metrics: Vec<String>,
    /// Dimension name to value glob; every entry has to match.
    #[serde(default)]
    slice: BTreeMap<String, String>,
    #[serde(default)]
    min_severity: Option<SeverityName>,
    chats: Vec<String>,
    #[serde(default)]
    mentions: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultFile {
    /// Overrides the chats of `TELEGRAM_CHAT_IDS` for the default route.
    chats: Option<Vec<String>>,
    #[serde(default)]
    mentions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SeverityName {
    Info,
    Warning,
    Critical,
}

impl SeverityName {
    fn rank(self) -> i32 {
        match self {
            SeverityName::Info => Severity::Info as i32,
            SeverityName::Warning => Severity::Warning as i32,
            SeverityName::Critical => Severity::Critical as i32,
        }
    }
}

/// One rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    route: Arc<Route>,
    metrics: Vec<String>,
    slice: BTreeMap<String, String>,
    min_severity: Option<i32>,
}

/// Destination of the events a rule matches: chats and mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub chats: Vec<ChatTarget>,
    /// Telegram usernames with `@`, added to each alert of the route.
    pub mentions: Vec<String>,
}

/// The checked routing rules with the default route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    rules: Vec<Rule>,
    default: Arc<Route>,
    /// Template set name per chat (as `ChatTarget` displays it).
    chat_templates: BTreeMap<String, String>,
}

impl Routing {
    /// Routes every event to `chats`, the routing without a file.
    pub fn default_only(chats: Vec<ChatTarget>) -> Self {
        Self {
            rules: Vec::new(),
            default: Arc::new(Route {
                name: DEFAULT_ROUTE.to_string(),
                chats,
                mentions: Vec::new(),
            }),
            chat_templates: BTreeMap::new(),
        }
    }

    /// Reads the rules from a TOML file. `default_chats` (from
    /// `TELEGRAM_CHAT_IDS`) serve the default route unless the file sets
    /// `[default] chats`.
    pub fn load(path: &Path, default_chats: Vec<ChatTarget>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::RoutingFileUnreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, default_chats)
    }

    /// Parses the TOML text of a routing file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path, default_chats: Vec<ChatTarget>) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidRoutingFile {
            path: path.to_path_buf(),
            reason,
        };
        let file: RoutingFile = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;

        let mut rules = Vec::with_capacity(file.routes.len());
        for rule in file.routes {
            if rule.name == DEFAULT_ROUTE {
                return Err(invalid(format!(
                    "a [[route]] is named `{DEFAULT_ROUTE}`; that name is reserved for [default]"
                )));
            }
            let chats = parse_chats(&rule.chats, &rule.name, path)?;
            check_mentions(&rule.mentions, &rule.name, path)?;
            rules.push(Rule {
                route: Arc::new(Route {
                    name: rule.name,
                    chats,
                    mentions: rule.mentions,
                }),
                metrics: rule.metrics,
                slice: rule.slice,
                min_severity: rule.min_severity.map(SeverityName::rank),
            });
        }

        let default_file = file.default.unwrap_or_default();
        let default_chats = match &default_file.chats {
            Some(chats) => parse_chats(chats, DEFAULT_ROUTE, path)?,
            None => default_chats,
        };
        check_mentions(&default_file.mentions, DEFAULT_ROUTE, path)?;

        let mut chat_templates = BTreeMap::new();
        for (chat, settings) in file.chats {
            let target = parse_chat_targets(&chat).map_err(|error| invalid(format!("[chats.\"{chat}\"]: {error}")))?;
            if let (Some(template), [target]) = (settings.template, target.as_slice()) {
                chat_templates.insert(target.to_string(), template);
            }
        }
        Ok(Self {
            rules,
            default: Arc::new(Route {
                name: DEFAULT_ROUTE.to_string(),
                chats: default_chats,
                mentions: default_file.mentions,
            }),
            chat_templates,
        })
    }

    /// Chats of the default route, which take every alert no rule matches.
    pub fn default_chats(&self) -> &[ChatTarget] {
        &self.default.chats
    }

    /// Returns the route of `event`: the first matching rule's, else the
    /// default.
    pub fn route(&self, event: &AnomalyEvent) -> &Arc<Route> {
        self.route_at(event, event.severity)
    }

    /// Returns the route `event` would take with severity `severity`.
    fn route_at(&self, event: &AnomalyEvent, severity: i32) -> &Arc<Route> {
        self.rules
            .iter()
            .find(|rule| rule.matches(event, severity))
            .map(|rule| &rule.route)
            .unwrap_or(&self.default)
    }

    /// Returns the routes of `event`: for a resolution those of each
    /// severity in `announced_severities`, without repeats, and otherwise
    /// (or from a detector that sends no such list) [`Routing::route`].
    pub fn routes_of(&self, event: &AnomalyEvent) -> Vec<&Arc<Route>> {
        if event.state != AnomalyState::Resolved as i32 || event.announced_severities.is_empty() {
            return vec![self.route(event)];
        }

        let mut routes: Vec<&Arc<Route>> = Vec::new();
        for &severity in &event.announced_severities {
            let route = self.route_at(event, severity);
            if !routes.iter().any(|known| Arc::ptr_eq(known, route)) {
                routes.push(route);
            }
        }
        routes
    }

    /// Returns the route through which `event` reaches the chat keyed
    /// `chat_key`, for its mentions: the first of [`Routing::routes_of`]
    /// with that chat. A chat on none of them (the console, or a chat that
    /// got the episode through an earlier routing) gets a route of its own
    /// without mentions, so no user of another route is mentioned there.
    pub fn route_for_chat(&self, event: &AnomalyEvent, chat_key: &str) -> Arc<Route> {
        let routes = self.routes_of(event);
        match routes
            .iter()
            .find(|route| route.chats.iter().any(|chat| chat.to_string() == chat_key))
        {
            Some(route) => Arc::clone(route),
            None => Arc::new(Route {
                name: routes[0].name.clone(),
                chats: Vec::new(),
                mentions: Vec::new(),
            }),
        }
    }

    /// Returns the chats with a template set, and the set's name.
    pub fn chat_templates(&self) -> impl Iterator<Item = (&str, &str)> {
        self.chat_templates
            .iter()
            .map(|(chat, template)| (chat.as_str(), template.as_str()))
    }

    /// Returns every route, the default last.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.rules
            .iter()
            .map(|rule| &rule.route)
            .chain(std::iter::once(&self.default))
    }
}

impl Rule {
    fn matches(&self, event: &AnomalyEvent, severity: i32) -> bool {
        let metric_matches =
            self.metrics.is_empty() || self.metrics.iter().any(|pattern| glob_matches(pattern, &event.metric));
        let slice_matches = self.slice.iter().all(|(name, pattern)| {
            event
                .slice
                .iter()
                .any(|dimension| &dimension.name == name && glob_matches(pattern, &dimension.value))
        });
        // Unspecified (0) and unknown severities rank below info.
        let severity_matches = self.min_severity.is_none_or(|minimum| severity >= minimum);
        metric_matches && slice_matches && severity_matches
    }
}

fn parse_chats(chats: &[String], route: &str, path: &Path) -> Result<Vec<ChatTarget>, ConfigError> {
    parse_chat_targets(&chats.join(",")).map_err(|error| ConfigError::InvalidRoutingFile {
        path: path.to_path_buf(),
        reason: format!("route `{route}`: {error}"),
    })
}

fn check_mentions(mentions: &[String], route: &str, path: &Path) -> Result<(), ConfigError> {
    for mention in mentions {
        let name = mention.strip_prefix('@').unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::InvalidRoutingFile {
                path: PathBuf::from(path),
                reason: format!(
                    "route `{route}`: invalid mention `{mention}`; expected a Telegram username such as @alice"
                ),
            });
        }
    }
    Ok(())
}

/// Matches `text` against a glob where `*` is any run of characters and `?`
/// one character; every other character matches itself. Routing rules and
/// silences both match metric names and slice values with it.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` and the text position it was tried at, to
    // backtrack to when a later character fails.
    let mut star: Option<(usize, usize)> = None;

    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p + 1, t));
            p += 1;
        } else if let Some((after_star, tried)) = star {
            p = after_star;
            t = tried + 1;
            star = Some((after_star, tried + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use seismo_proto::v1::Dimension;

    const FILE: &str = r#"
[[route]]
name = "payments-ru"
metrics = ["checkout_*", "payment_?"]
slice = { country = "RU" }
min_severity = "warning"
chats = ["-1001"]
mentions = ["@alice"]

[[route]]
name = "ios"
slice = { os = "iOS*" }
chats = ["-1002", "@ios_alerts"]

[default]
mentions = ["@oncall"]

[chats."-1001"]
template = "ru"
"#;

    fn event(metric: &str, slice: &[(&str, &str)], severity: Severity) -> AnomalyEvent {
        AnomalyEvent {
            metric: metric.to_string(),
            slice: slice
                .iter()
                .map(|(name, value)| Dimension {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            severity: severity as i32,
            ..AnomalyEvent::default()
        }
    }

    fn routing() -> Routing {
        Routing::parse(FILE, Path::new("routes.toml"), vec![ChatTarget::Id(1)]).unwrap()
    }

    #[test]
    fn first_matching_rule_routes() {
        let routing = routing();

        let route = routing.route(&event(
            "checkout_conversion",
            &[("country", "RU"), ("os", "iOS")],
            Severity::Critical,
        ));

        assert_eq!(route.name, "payments-ru");
        assert_eq!(route.chats, [ChatTarget::Id(-1001)]);
        assert_eq!(route.mentions, ["@alice"]);
    }

    #[test]
    fn resolution_takes_every_announced_route() {
        let routing = routing();
        let slice = [("country", "RU"), ("os", "Android")];
        let resolution = |announced: &[Severity]| AnomalyEvent {
            state: AnomalyState::Resolved as i32,
            announced_severities: announced.iter().map(|severity| *severity as i32).collect(),
            ..event(
                "checkout_conversion",
                &slice,
                *announced.last().unwrap_or(&Severity::Critical),
            )
        };
        let names = |event: &AnomalyEvent| -> Vec<String> {
            routing
                .routes_of(event)
                .iter()
                .map(|route| route.name.clone())
                .collect()
        };

        // Fired as info (default route), escalated to warning and critical
        // (the payments route): both hear the resolution, once each.
        let escalated = resolution(&[Severity::Info, Severity::Warning, Severity::Critical]);
        assert_eq!(names(&escalated), ["default", "payments-ru"]);
        assert_eq!(names(&resolution(&[Severity::Warning])), ["payments-ru"]);
        // A detector that lists nothing: the route of `severity`.
        assert_eq!(names(&resolution(&[])), ["payments-ru"]);
        // Only resolutions fan out; an escalation takes its own severity's route.
        let escalation = AnomalyEvent {
            state: AnomalyState::Escalated as i32,
            ..escalated.clone()
        };
        assert_eq!(names(&escalation), ["payments-ru"]);
    }

    #[test]
    fn severity_below_minimum_falls_through() {
        let routing = routing();

        let route = routing.route(&event(
            "checkout_conversion",
            &[("country", "RU"), ("os", "iOS 17")],
            Severity::Info,
        ));

        assert_eq!(route.name, "ios");
        assert_eq!(
            route.chats,
            [ChatTarget::Id(-1002), ChatTarget::Username("@ios_alerts".to_string())]
        );
    }

    #[test]
    fn unmatched_event_takes_default_route() {
        let routing = routing();

        let route = routing.route(&event("signups", &[("country", "RU")], Severity::Critical));

        assert_eq!(route.name, DEFAULT_ROUTE);
        assert_eq!(route.chats, [ChatTarget::Id(1)]);
        assert_eq!(route.mentions, ["@oncall"]);
    }

    #[test]
    fn chats_name_their_template() {
        let routing = routing();

        let templates: Vec<(&str, &str)> = routing.chat_templates().collect();

        assert_eq!(templates, [("-1001", "ru")]);
    }

    #[test]
    fn invalid_files_are_rejected() {
        let cases = [
            (
                "[[route]]\nname = \"a\"\nchats = [\"x\"]\n",
                "invalid Telegram chat id `x`",
            ),
            (
                "[[route]]\nname = \"a\"\nchats = [\"1\"]\nmentions = [\"alice\"]\n",
                "invalid mention `alice`",
            ),
            (
                "[[route]]\nname = \"a\"\nchats = [\"1\"]\nmin_severity = \"high\"\n",
                "unknown variant `high`",
            ),
            ("[[route]]\nname = \"default\"\nchats = [\"1\"]\n", "reserved"),
            ("[[route]]\nname = \"a\"\nchat = [\"1\"]\n", "unknown field `chat`"),
            ("[chats.\"x1\"]\ntemplate = \"ru\"\n", "invalid Telegram chat id `x1`"),
        ];
        for (text, expected) in cases {
            let error = Routing::parse(text, Path::new("routes.toml"), Vec::new()).unwrap_err();
            let message = error.to_string();
            assert!(message.contains(expected), "{text:?}: {message}");
            assert!(message.contains("routes.toml"), "{message}");
        }
    }

    #[test]
    fn glob_matches_stars_and_marks() {
        let cases = [
            ("checkout_*", "checkout_conversion", true),
            ("checkout_*", "checkout_", true),
            ("checkout_*", "signup", false),
            ("*_rate", "error_rate", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("payment_?", "payment_1", true),
            ("payment_?", "payment_12", false),
            ("*", "", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_matches(pattern, text), expected, "{pattern} vs {text}");
        }
    }
}
