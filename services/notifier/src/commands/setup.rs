//! Command-line options of the interaction features and their start-up:
//! the send gate, bot command polling, charts and the report schedules.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use seismo_experiments::clickhouse_source::EventsTable as ExperimentsTable;
use seismo_forecast::clickhouse_source::ClickHouseSettings;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::access::{AllowList, parse_id_list};
use super::acknowledgements::AcknowledgementStore;
use super::bot::{AbReportTrigger, CommandBot, ReportTrigger};
use super::buttons::alert_buttons;
use super::status_view::StatusView;
use crate::ab_report::sender::AbReporter;
use crate::chart::provider::DetectorChartProvider;
use crate::config::{ChatTarget, TelegramConfig, parse_chat_targets};
use crate::forecast_report::sender::ForecastReporter;
use crate::forecast_report::settings::ForecastReportArgs;
use crate::hooks::{ChartProvider, DeliveryHooks, NoCharts};
use crate::quiet_hours::QuietHours;
use crate::report::metrics::parse_report_metrics;
use crate::report::query::EventsTable;
use crate::report::sender::{ReportSettings, Reporter};
use crate::silence::gate::AlertGate;
use crate::silence::selector::SeriesSelector;
use crate::silence::sqlite::state_file;
use crate::silence::store::{NewSilence, SilenceSource, SilenceStore};
use crate::stats::NotifierStats;

/// Subcommands of `seismo-notifier`; without one it follows the detectors.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum NotifierCommand {
    /// Sends the daily report of yesterday to the report chats and exits.
    Report {
        /// Send it now (required; the schedule runs inside the notifier).
        #[arg(long)]
        now: bool,
    },
    /// Sends the forecast report to the report chats and exits.
    ForecastReport {
        /// Send it now (required; the weekly schedule runs inside the notifier).
        #[arg(long)]
        now: bool,
    },
}

/// Options of silences, quiet hours, bot commands, charts and reports.
#[derive(Debug, Clone, clap::Args)]
pub struct InteractionArgs {
    /// IANA time zone of quiet hours, report days, the report times and chart labels.
    #[arg(long, env = "SEISMO_NOTIFIER_TIME_ZONE", default_value = "Europe/Moscow")]
    pub time_zone: String,

    /// Daily local window without non-critical alerts, such as 23:00-07:00; empty disables it.
    #[arg(long, env = "SEISMO_NOTIFIER_QUIET_HOURS", default_value = "")]
    pub quiet_hours: String,

    /// Silences from the configuration, `;`-separated `selector@end`, such as
    /// `views{os=iOS}@2026-12-31T00:00:00Z`; they replace earlier configured ones on start.
    #[arg(long, env = "SEISMO_NOTIFIER_SILENCES", default_value = "")]
    pub silences: String,

    /// Chats whose members may use bot commands and alert buttons, comma-separated numeric ids;
    /// empty turns commands and buttons off.
    #[arg(long, env = "TELEGRAM_COMMAND_CHAT_IDS", default_value = "")]
    pub command_chat_ids: String,

    /// Telegram user ids allowed to use commands and buttons, comma-separated; empty allows
    /// every member of the command chats.
    #[arg(long, env = "TELEGRAM_COMMAND_USER_IDS", default_value = "")]
    pub command_user_ids: String,

    /// Attach a chart of the series' last day (from the detector's GetSeries) to each alert.
    #[arg(long, env = "SEISMO_NOTIFIER_CHARTS")]
    pub charts: bool,

    /// ClickHouse HTTP URL of the events table; setting it turns the daily report on.
    #[arg(long, env = "SEISMO_REPORT_CLICKHOUSE_URL")]
    pub report_clickhouse_url: Option<String>,

    /// ClickHouse database of the events table.
    #[arg(long, env = "SEISMO_REPORT_DATABASE", default_value = "seismo")]
    pub report_database: String,

    /// Events table name, or `database.table`.
    #[arg(long, env = "SEISMO_REPORT_TABLE", default_value = "events")]
    pub report_table: String,

    /// ClickHouse user of the report queries.
    #[arg(long, env = "SEISMO_REPORT_CLICKHOUSE_USER")]
    pub report_clickhouse_user: Option<String>,

    /// ClickHouse password of the report queries; prefer the environment variable.
    #[arg(long, env = "SEISMO_REPORT_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub report_clickhouse_password: Option<String>,

    /// Report metrics, `;`-separated `name=ClickHouse aggregate`, such as
    /// `DAU=uniqExact(user_id);views=countIf(event = 'view')`; empty reports DAU, views, likes,
    /// CTR and messages.
    #[arg(long, env = "SEISMO_REPORT_METRICS", default_value = "")]
    pub report_metrics: String,

    /// Local time of the daily report (HH:MM in --time-zone).
    #[arg(long, env = "SEISMO_REPORT_TIME", default_value = "11:00")]
    pub report_time: String,

    /// Chats that receive the report, comma-separated; empty uses TELEGRAM_CHAT_IDS.
    #[arg(long, env = "SEISMO_REPORT_CHAT_IDS", default_value = "")]
    pub report_chat_ids: String,

    /// The weekly forecast report, which reads the daily report's ClickHouse table.
    #[command(flatten)]
    pub forecast_report: ForecastReportArgs,
}

/// The running interaction features: the hooks to pass to delivery and the
/// background tasks (command polling, report schedule), which stop when the
/// token given to [`Interaction::start`] fires.
pub struct Interaction {
    pub hooks: DeliveryHooks,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Interaction {
    /// Opens the silence and acknowledgement tables in `state_dir`, stores
    /// the configured silences, and starts command polling and the report
    /// schedule when they are configured. Fails on an invalid option or when
    /// silences or commands are configured without a state directory.
    pub fn start(
        args: &InteractionArgs,
        state_dir: Option<&Path>,
        detectors: &[String],
        telegram: Option<&TelegramConfig>,
        delivery_stats: &Arc<NotifierStats>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let time_zone = parse_time_zone(&args.time_zone)?;
        let quiet_hours = match args.quiet_hours.trim() {
            "" => None,
            window => Some(QuietHours::parse(window, &args.time_zone)?),
        };
        let allow_list = AllowList {
            chats: parse_id_list(&args.command_chat_ids, "TELEGRAM_COMMAND_CHAT_IDS").map_err(anyhow::Error::msg)?,
            users: parse_id_list(&args.command_user_ids, "TELEGRAM_COMMAND_USER_IDS").map_err(anyhow::Error::msg)?,
        };
        let configured_silences = parse_configured_silences(&args.silences, Utc::now())?;
        let commands_on = !allow_list.chats.is_empty();
        if commands_on && telegram.is_none() {
            bail!("bot commands need Telegram: set TELEGRAM_BOT_TOKEN, or leave TELEGRAM_COMMAND_CHAT_IDS empty");
        }

        if state_dir.is_none() && (commands_on || !configured_silences.is_empty()) {
            bail!("silences and bot commands are stored in SQLite: set --state-dir (SEISMO_NOTIFIER_STATE_DIR)");
        }

        let charts: Arc<dyn ChartProvider> = if args.charts {
            Arc::new(
                DetectorChartProvider::new(detectors, Duration::from_secs(5), time_zone).map_err(anyhow::Error::msg)?,
            )
        } else {
            Arc::new(NoCharts)
        };
        let reporter = build_reporter(args, telegram, time_zone)?.map(Arc::new);
        let mut tasks = Vec::new();
        if let Some(reporter) = &reporter {
            tasks.push(tokio::spawn(Arc::clone(reporter).run_schedule(cancel.clone())));
        }
        let forecast_reporter = build_forecast_reporter(args, telegram, time_zone)?.map(Arc::new);
        if let Some(forecast_reporter) = forecast_reporter.as_ref().filter(|reporter| reporter.settings().weekly) {
            tasks.push(tokio::spawn(Arc::clone(forecast_reporter).run_schedule(cancel.clone())));
        }

        let Some(state_dir) = state_dir else {
            let gate = quiet_hours.map_or_else(
                || Arc::new(crate::hooks::SendAll) as Arc<dyn crate::hooks::SendGate>,
                |quiet_hours| Arc::new(quiet_hours) as Arc<dyn crate::hooks::SendGate>,
            );
            let hooks = DeliveryHooks {
                gate,
                charts,
                buttons: None,
            };
            return Ok(Self { hooks, tasks });
        };

        let path = state_file(state_dir);
        let silences = Arc::new(SilenceStore::open(&path)?);
        silences.replace_config_silences(&configured_silences)?;
        let purged = silences.purge_expired(Utc::now())?;
        let acknowledgements = Arc::new(AcknowledgementStore::open(&path)?);
        let status = Arc::new(StatusView::default());
        let gate = AlertGate {
            silences: Arc::clone(&silences),
            acknowledgements: Arc::clone(&acknowledgements),
            quiet_hours,
            status: Arc::clone(&status),
        };

        if let Some(telegram) = telegram.filter(|_| commands_on) {
            let mut bot = CommandBot::new(telegram, allow_list, silences, acknowledgements, status);
            bot.report = reporter.map(|reporter| reporter as Arc<dyn ReportTrigger>);
            bot.forecast_report = forecast_reporter.map(|reporter| reporter as Arc<dyn ReportTrigger>);
            bot.ab_report =
                build_ab_reporter(args, telegram).map(|reporter| Arc::new(reporter) as Arc<dyn AbReportTrigger>);
            bot.delivery_stats = Some(Arc::clone(delivery_stats));
            tasks.push(tokio::spawn(bot.run(cancel.clone())));
        }
        info!(
            commands = commands_on,
            charts = args.charts,
            configured_silences = configured_silences.len(),
            expired_silences_deleted = purged,
            "interaction features started"
        );

        let hooks = DeliveryHooks {
            gate: Arc::new(gate),
            charts,
            // Buttons only work while commands are polled.
            buttons: commands_on.then_some(alert_buttons as crate::hooks::AlertButtons),
        };
        Ok(Self { hooks, tasks })
    }
}

/// Sends the report once, for `seismo-notifier report --now`.
pub async fn send_report_now(args: &InteractionArgs, telegram: Option<&TelegramConfig>) -> anyhow::Result<()> {
    let time_zone = parse_time_zone(&args.time_zone)?;
    let reporter = build_reporter(args, telegram, time_zone)?.context(
        "the report is not configured: set SEISMO_REPORT_CLICKHOUSE_URL and TELEGRAM_BOT_TOKEN with TELEGRAM_CHAT_IDS or SEISMO_REPORT_CHAT_IDS",
    )?;
    reporter.send_now(Utc::now()).await.map_err(anyhow::Error::msg)
}

/// Sends the forecast report once, for `seismo-notifier forecast-report --now`.
pub async fn send_forecast_report_now(args: &InteractionArgs, telegram: Option<&TelegramConfig>) -> anyhow::Result<()> {
    let time_zone = parse_time_zone(&args.time_zone)?;
    let reporter = build_forecast_reporter(args, telegram, time_zone)?.context(
        "the forecast report is not configured: set SEISMO_REPORT_CLICKHOUSE_URL and TELEGRAM_BOT_TOKEN with TELEGRAM_CHAT_IDS or SEISMO_REPORT_CHAT_IDS",
    )?;
    reporter.send_now(Utc::now()).await.map_err(anyhow::Error::msg)
}

/// Builds the forecast reporter when the report's ClickHouse URL is set.
fn build_forecast_reporter(
    args: &InteractionArgs,
    telegram: Option<&TelegramConfig>,
    time_zone: Tz,
) -> anyhow::Result<Option<ForecastReporter>> {
    let Some(url) = args
        .report_clickhouse_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
    else {
        return Ok(None);
    };
    let telegram = telegram.context("the forecast report goes to Telegram: set TELEGRAM_BOT_TOKEN")?;
    let (database, table) = args
        .report_table
        .split_once('.')
        .unwrap_or((args.report_database.as_str(), args.report_table.as_str()));
    let source = ClickHouseSettings {
        url: url.trim().to_string(),
        user: args.report_clickhouse_user.clone(),
        password: args.report_clickhouse_password.clone(),
        database: database.to_string(),
        table: table.to_string(),
        timeout: FORECAST_QUERY_TIMEOUT,
    };
    let settings = args
        .forecast_report
        .settings(time_zone, report_chats(args, telegram)?)
        .map_err(anyhow::Error::msg)?;
    Ok(Some(ForecastReporter::new(source, settings, telegram)))
}

/// Builds the `/ab` reporter when the report's ClickHouse URL is set. It
/// counts `view` and `like` events, as the daily report's default metrics do.
fn build_ab_reporter(args: &InteractionArgs, telegram: &TelegramConfig) -> Option<AbReporter> {
    let url = args
        .report_clickhouse_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())?;
    let (database, table) = args
        .report_table
        .split_once('.')
        .unwrap_or((args.report_database.as_str(), args.report_table.as_str()));
    let table = ExperimentsTable {
        url: url.to_string(),
        user: args
            .report_clickhouse_user
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        password: args.report_clickhouse_password.clone().unwrap_or_default(),
        database: database.to_string(),
        table: table.to_string(),
        view_event: "view".to_string(),
        like_event: "like".to_string(),
        query_timeout: AB_QUERY_TIMEOUT,
    };
    Some(AbReporter::new(table, telegram))
}

/// Limit of the `/ab` query, which aggregates the period's views and likes
/// per user; the same default as `seismo-experiments --clickhouse-timeout-seconds`.
const AB_QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Limit of one metric's history query in the forecast report, which
/// aggregates a year of the table's rows for daily buckets.
const FORECAST_QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Returns the report chats: SEISMO_REPORT_CHAT_IDS, or TELEGRAM_CHAT_IDS
/// when it is empty.
fn report_chats(args: &InteractionArgs, telegram: &TelegramConfig) -> anyhow::Result<Vec<ChatTarget>> {
    if args.report_chat_ids.trim().is_empty() {
        if telegram.chats.is_empty() {
            anyhow::bail!(
                "no report chats: set SEISMO_REPORT_CHAT_IDS or TELEGRAM_CHAT_IDS to the chats that get reports"
            );
        }
        Ok(telegram.chats.clone())
    } else {
        Ok(parse_chat_targets(&args.report_chat_ids)?)
    }
}

fn build_reporter(
    args: &InteractionArgs,
    telegram: Option<&TelegramConfig>,
    time_zone: Tz,
) -> anyhow::Result<Option<Reporter>> {
    let Some(url) = args
        .report_clickhouse_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
    else {
        return Ok(None);
    };
    let telegram = telegram.context("the daily report goes to Telegram: set TELEGRAM_BOT_TOKEN")?;
    let table = EventsTable::new(
        url,
        &args.report_database,
        &args.report_table,
        args.report_clickhouse_user.as_deref(),
        args.report_clickhouse_password.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let send_at = NaiveTime::parse_from_str(args.report_time.trim(), "%H:%M").with_context(|| {
        format!(
            "invalid SEISMO_REPORT_TIME `{}`: expected HH:MM such as 11:00",
            args.report_time
        )
    })?;
    let chats = report_chats(args, telegram)?;
    let settings = ReportSettings {
        metrics: parse_report_metrics(&args.report_metrics).map_err(anyhow::Error::msg)?,
        time_zone,
        send_at,
        chats,
    };
    Ok(Some(Reporter::new(table, settings, telegram)))
}

fn parse_time_zone(name: &str) -> anyhow::Result<Tz> {
    name.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid time zone `{name}`: expected an IANA name such as Europe/Moscow or UTC"))
}

/// Parses `selector@RFC 3339 end` entries separated by `;`.
fn parse_configured_silences(list: &str, now: DateTime<Utc>) -> anyhow::Result<Vec<NewSilence>> {
    list.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (selector, end) = entry.rsplit_once('@').with_context(|| {
                format!("invalid silence `{entry}`: expected selector@end such as views{{os=iOS}}@2026-12-31T00:00:00Z")
            })?;
            let expires_at = DateTime::parse_from_rfc3339(end.trim())
                .with_context(|| {
                    format!("invalid end `{end}` of silence `{entry}`: expected RFC 3339 such as 2026-12-31T00:00:00Z")
                })?
                .with_timezone(&Utc);
            Ok(NewSilence {
                selector: SeriesSelector::parse(selector)?,
                starts_at: now,
                expires_at,
                created_by: "config".to_string(),
                source: SilenceSource::Config,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use clap::Parser;
    use seismo_proto::v1::{AnomalyEvent, AnomalyState, Severity};

    use super::*;
    use crate::hooks::SendDecision;

    #[derive(Parser)]
    struct TestCommandLine {
        #[command(flatten)]
        interaction: InteractionArgs,
    }

    fn interaction_args(options: &[&str]) -> InteractionArgs {
        let command_line = std::iter::once("seismo-notifier").chain(options.iter().copied());
        TestCommandLine::parse_from(command_line).interaction
    }

    fn start(
        args: &InteractionArgs,
        state_dir: Option<&Path>,
        telegram: Option<&TelegramConfig>,
    ) -> anyhow::Result<Interaction> {
        let stats = Arc::new(NotifierStats::default());
        Interaction::start(args, state_dir, &[], telegram, &stats, &CancellationToken::new())
    }

    #[test]
    fn commands_need_state_dir() {
        let args = interaction_args(&["--command-chat-ids=-100"]);
        let telegram = TelegramConfig::new("1:token", "-100", crate::DEFAULT_TELEGRAM_API_URL).unwrap();

        let error = start(&args, None, Some(&telegram))
            .err()
            .expect("commands without a state directory fail");

        assert!(error.to_string().contains("--state-dir"), "{error}");
    }

    #[test]
    fn commands_need_telegram() {
        let dir = tempfile::tempdir().unwrap();
        let args = interaction_args(&["--command-chat-ids=-100"]);

        let error = start(&args, Some(dir.path()), None)
            .err()
            .expect("commands without Telegram fail");

        assert!(error.to_string().contains("TELEGRAM_BOT_TOKEN"), "{error}");
    }

    #[test]
    fn quiet_hours_work_without_state_dir() {
        let args = interaction_args(&["--quiet-hours=22:00-08:00", "--time-zone=UTC"]);
        let warning = AnomalyEvent {
            metric: "views".to_string(),
            state: AnomalyState::Firing as i32,
            severity: Severity::Warning as i32,
            ..AnomalyEvent::default()
        };
        let chat = ChatTarget::Id(1);

        let interaction = start(&args, None, None).unwrap();

        let night = Utc.with_ymd_and_hms(2026, 12, 4, 23, 0, 0).unwrap();
        let noon = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        assert!(matches!(
            interaction.hooks.gate.decide(&warning, &chat, night),
            SendDecision::Suppress { .. }
        ));
        assert_eq!(interaction.hooks.gate.decide(&warning, &chat, noon), SendDecision::Send);
        assert!(interaction.hooks.buttons.is_none());
        assert!(interaction.tasks.is_empty());
    }

    #[test]
    fn invalid_options_are_rejected() {
        for options in [
            &["--time-zone=Mars/Olympus"][..],
            &["--quiet-hours=late"],
            &["--command-chat-ids=abc"],
            &["--silences=views"],
        ] {
            let args = interaction_args(options);
            assert!(start(&args, None, None).is_err(), "{options:?}");
        }
    }

    #[test]
    fn configured_silences_parse() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap();

        let silences = parse_configured_silences(
            "views{os=iOS}@2026-12-31T00:00:00Z; likes*@2026-12-05T03:00:00+03:00",
            now,
        )
        .unwrap();

        assert_eq!(silences.len(), 2);
        assert_eq!(silences[0].selector.to_string(), "views{os=iOS}");
        assert_eq!(
            silences[1].expires_at,
            Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap()
        );
        assert_eq!(silences[1].source, SilenceSource::Config);
    }

    #[test]
    fn configured_silences_reject_bad_entries() {
        let now = Utc::now();
        for list in ["views", "views@tomorrow", "{x}@2026-12-31T00:00:00Z"] {
            assert!(parse_configured_silences(list, now).is_err(), "{list:?}");
        }
    }
}
