//! Series selectors of silences: a metric name glob and optional dimension
//! values, written `views_*` or `views{os=iOS,country=RU}`.

use std::fmt;

use seismo_proto::v1::Dimension;

use crate::routing::glob_matches;

/// A metric glob plus the dimension values a series must have. An empty
/// `slice` matches every series of the metric, the total included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSelector {
    /// Metric name pattern: `*` matches any run of characters, `?` one.
    pub metric_glob: String,
    /// `(dimension, value)` pairs the series must all have.
    pub slice: Vec<(String, String)>,
}

impl SeriesSelector {
    /// Parses `metric_glob` or `metric_glob{dim=value,...}`.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let text = text.trim();
        let (metric_glob, slice_text) = match text.split_once('{') {
            Some((metric, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| SelectorError::new(text, "a `{` without a closing `}` at the end"))?;
                (metric.trim(), Some(inner))
            }
            None => (text, None),
        };
        if metric_glob.is_empty() {
            return Err(SelectorError::new(text, "the metric name is empty"));
        }
        if !metric_glob.chars().all(|c| c.is_alphanumeric() || "_-.:*?".contains(c)) {
            return Err(SelectorError::new(
                text,
                "a metric name contains only letters, digits, `_-.:` and the wildcards `*` and `?`",
            ));
        }

        let mut slice = Vec::new();
        for pair in slice_text
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| SelectorError::new(text, "each slice entry is `dimension=value`"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || value.is_empty() {
                return Err(SelectorError::new(
                    text,
                    "a slice entry has an empty dimension or value",
                ));
            }
            slice.push((name.to_string(), value.to_string()));
        }
        slice.sort();

        Ok(Self {
            metric_glob: metric_glob.to_string(),
            slice,
        })
    }

    /// Builds the selector of exactly one series: its metric (with any glob
    /// characters kept literal only if it has none) and all its dimensions.
    pub fn for_series(metric: &str, slice: &[Dimension]) -> Self {
        let mut pairs: Vec<(String, String)> = slice
            .iter()
            .map(|dimension| (dimension.name.clone(), dimension.value.clone()))
            .collect();
        pairs.sort();
        Self {
            metric_glob: metric.to_string(),
            slice: pairs,
        }
    }

    /// Returns whether the series `metric` with dimension values `slice` is
    /// covered.
    pub fn matches(&self, metric: &str, slice: &[Dimension]) -> bool {
        glob_matches(&self.metric_glob, metric)
            && self.slice.iter().all(|(name, value)| {
                slice
                    .iter()
                    .any(|dimension| &dimension.name == name && &dimension.value == value)
            })
    }
}

impl fmt::Display for SeriesSelector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.metric_glob)?;
        if !self.slice.is_empty() {
            let pairs: Vec<String> = self
                .slice
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            write!(formatter, "{{{}}}", pairs.join(","))?;
        }
        Ok(())
    }
}

/// A selector text that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid series selector `{text}`: {reason}; expected e.g. `views` or `views_*{{os=iOS}}`")]
pub struct SelectorError {
    pub text: String,
    pub reason: &'static str,
}

impl SelectorError {
    fn new(text: &str, reason: &'static str) -> Self {
        Self {
            text: text.to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dimension(name: &str, value: &str) -> Dimension {
        Dimension {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn glob_matches_wildcards() {
        assert!(glob_matches("views", "views"));
        assert!(!glob_matches("views", "views_ios"));
        assert!(glob_matches("views*", "views_ios"));
        assert!(glob_matches("*_ios", "views_ios"));
        assert!(glob_matches("v?ews", "views"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(!glob_matches("?", ""));
    }

    #[test]
    fn selector_parses_metric_and_slice() {
        let selector = SeriesSelector::parse(" views_*{country=RU, os=iOS} ").unwrap();

        assert_eq!(selector.metric_glob, "views_*");
        assert_eq!(
            selector.slice,
            vec![
                ("country".to_string(), "RU".to_string()),
                ("os".to_string(), "iOS".to_string())
            ]
        );
        assert_eq!(selector.to_string(), "views_*{country=RU,os=iOS}");
    }

    #[test]
    fn selector_rejects_malformed_text() {
        for text in [
            "",
            "{os=iOS}",
            "views{os=iOS",
            "views{os}",
            "views{=iOS}",
            "vie ws",
            "views/x",
        ] {
            assert!(SeriesSelector::parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn selector_matches_slice_subset() {
        let selector = SeriesSelector::parse("views{os=iOS}").unwrap();
        let ios_ru = [dimension("country", "RU"), dimension("os", "iOS")];
        let android = [dimension("os", "Android")];

        assert!(selector.matches("views", &ios_ru));
        assert!(!selector.matches("views", &android));
        assert!(!selector.matches("views", &[]));
        assert!(!selector.matches("likes", &ios_ru));
        assert!(SeriesSelector::parse("views").unwrap().matches("views", &android));
    }
}
