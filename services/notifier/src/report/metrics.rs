//! The metrics of the daily report: a name and a ClickHouse aggregate
//! expression over the events table.

/// One report metric, such as `DAU = uniqExact(user_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportMetric {
    pub name: String,
    /// A ClickHouse aggregate expression over the events table's columns,
    /// evaluated per day; the result is read as `Float64`.
    pub expression: String,
}

/// Returns the metrics reported when none are configured.
pub fn default_report_metrics() -> Vec<ReportMetric> {
    [
        ("DAU", "uniqExact(user_id)"),
        ("views", "countIf(event = 'view')"),
        ("likes", "countIf(event = 'like')"),
        ("CTR", "countIf(event = 'like') / countIf(event = 'view')"),
        ("messages", "countIf(event = 'message')"),
    ]
    .into_iter()
    .map(|(name, expression)| ReportMetric {
        name: name.to_string(),
        expression: expression.to_string(),
    })
    .collect()
}

/// Parses `name=expression` entries separated by `;`, such as
/// `DAU=uniqExact(user_id);views=countIf(event = 'view')`. Blank entries are
/// skipped; an empty list returns the defaults.
pub fn parse_report_metrics(list: &str) -> Result<Vec<ReportMetric>, String> {
    let mut metrics = Vec::new();
    for entry in list.split(';').map(str::trim).filter(|entry| !entry.is_empty()) {
        let (name, expression) = entry.split_once('=').ok_or_else(|| {
            format!("invalid report metric `{entry}`: expected name=expression, such as DAU=uniqExact(user_id)")
        })?;
        let (name, expression) = (name.trim(), expression.trim());
        if name.is_empty() || expression.is_empty() {
            return Err(format!(
                "invalid report metric `{entry}`: the name and the expression must not be empty"
            ));
        }
        // The expression goes into the SQL text as written, so it must not
        // end the statement or start another.
        if expression.contains(';') {
            return Err(format!(
                "invalid report metric `{entry}`: the expression must not contain `;`"
            ));
        }
        metrics.push(ReportMetric {
            name: name.to_string(),
            expression: expression.to_string(),
        });
    }
    if metrics.is_empty() {
        return Ok(default_report_metrics());
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_name_and_expression() {
        let metrics =
            parse_report_metrics(" DAU = uniqExact(user_id) ; CTR=countIf(event = 'like') / countIf(event = 'view');")
                .unwrap();

        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[0].name, "DAU");
        assert_eq!(
            metrics[1].expression,
            "countIf(event = 'like') / countIf(event = 'view')"
        );
    }

    #[test]
    fn empty_list_gives_defaults() {
        assert_eq!(parse_report_metrics("  ").unwrap(), default_report_metrics());
    }

    #[test]
    fn malformed_metrics_are_rejected() {
        for list in ["DAU", "=count()", "DAU="] {
            assert!(parse_report_metrics(list).is_err(), "{list:?}");
        }
    }
}
