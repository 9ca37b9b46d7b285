//! The A/B and A/A runs shared by the command and the gRPC service: fetch
//! from ClickHouse, analyse off the async runtime, render.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use crate::aa::{AaCheck, AaSettings, simulate_aa};
use crate::analysis::{AbAnalysis, AnalysisSettings, analyze};
use crate::chart::render_ab_chart;
use crate::clickhouse_source::{EventsTable, fetch_groups};
use crate::report::{render_aa_report, render_ab_report};

/// One A/B comparison to run.
#[derive(Debug, Clone, PartialEq)]
pub struct AbRequest {
    /// `exp_group` values.
    pub control: String,
    pub treatment: String,
    /// Time range of `event_time`, start inclusive, end exclusive.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub settings: AnalysisSettings,
    pub with_chart: bool,
}

/// The analysis with its rendered report and chart.
#[derive(Debug, Clone)]
pub struct AbOutput {
    pub analysis: AbAnalysis,
    pub report: String,
    /// PNG bytes, when requested.
    pub chart_png: Option<Vec<u8>>,
}

/// Fetches both groups and compares them. A statistics error comes back as
/// a [`crate::stats::error::StatsError`] inside the `anyhow::Error`.
pub async fn run_ab_test(table: &EventsTable, request: &AbRequest) -> anyhow::Result<AbOutput> {
    let groups = [request.control.clone(), request.treatment.clone()];
    let mut samples = fetch_groups(table, &groups, request.from, request.to).await?;
    let empty: Vec<String> = samples
        .iter()
        .filter(|sample| sample.users.is_empty())
        .map(|sample| format!("`{}`", sample.name))
        .collect();
    let treatment = samples.pop().expect("one sample per requested group");
    let control = samples.pop().expect("one sample per requested group");

    let where_searched = format!(
        "{}.{} in {}",
        table.database,
        table.table,
        period(request.from, request.to)
    );
    let request = request.clone();
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking(move || -> anyhow::Result<AbOutput> {
        let analysis = analyze(&control, &treatment, &request.settings)?;
        let report = render_ab_report(&analysis, &period(request.from, request.to));
        let chart_png = if request.with_chart {
            Some(render_ab_chart(&analysis)?)
        } else {
            None
        };
        Ok(AbOutput {
            analysis,
            report,
            chart_png,
        })
    })
    .await
    .context("the analysis task panicked")?
    .map_err(|error| {
        // An empty group fails inside the statistics, which know neither
        // the table nor the period, so the context names them. The error
        // stays a StatsError for callers that check its type.
        if empty.is_empty() {
            error
        } else {
            let subject = match empty.as_slice() {
                [group] => format!("group {group} has"),
                groups => format!("groups {} have", groups.join(" and ")),
            };
            error.context(format!(
                "{subject} no users in {where_searched}; check the group names and the time range"
            ))
        }
    })?;

    tracing::info!(
        control_users = output.analysis.control.users,
        treatment_users = output.analysis.treatment.users,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "A/B analysis finished"
    );
    Ok(output)
}

/// One A/A check to run over the pooled users of `groups`.
#[derive(Debug, Clone, PartialEq)]
pub struct AaRequest {
    pub groups: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub settings: AaSettings,
}

/// Fetches the users and runs the A/A check; returns it with its report.
pub async fn run_aa_check(table: &EventsTable, request: &AaRequest) -> anyhow::Result<(AaCheck, String)> {
    let samples = fetch_groups(table, &request.groups, request.from, request.to).await?;
    let empty: Vec<&str> = samples
        .iter()
        .filter(|sample| sample.users.is_empty())
        .map(|sample| sample.name.as_str())
        .collect();
    if !empty.is_empty() {
        bail!(
            "group {} has no users in {}.{} in {}; check the group names and the time range",
            empty.join(", "),
            table.database,
            table.table,
            period(request.from, request.to)
        );
    }
    let users: Vec<_> = samples.into_iter().flat_map(|sample| sample.users).collect();

    let request = request.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<(AaCheck, String)> {
        let check = simulate_aa(&users, &request.settings)?;
        let population = format!(
            "groups {}, {}",
            request.groups.join(","),
            period(request.from, request.to)
        );
        let report = render_aa_report(&check, &population);
        Ok((check, report))
    })
    .await
    .context("the A/A task panicked")?
}

fn period(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "{} .. {}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}
