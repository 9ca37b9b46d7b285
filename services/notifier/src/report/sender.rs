//! Builds the daily report from ClickHouse and sends it to Telegram, on a
//! schedule or on request.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveTime, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use teloxide::Bot;
use teloxide::payloads::SendPhotoSetters;
use teloxide::requests::Requester;
use teloxide::types::{ChatId, InputFile};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::chart::{TrendPanel, render_trend_grid};
use super::metrics::ReportMetric;
use super::query::EventsTable;
use super::schedule::{next_run, report_day};
use super::summary::{format_report, summarize};
use crate::commands::bot::ReportTrigger;
use crate::config::{ChatTarget, TelegramConfig};
use crate::report_delivery::ReportDelivery;
use crate::telegram::recipient;

/// Contents, schedule and recipients of the daily report.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub metrics: Vec<ReportMetric>,
    /// Time zone of the report's days and of `send_at`.
    pub time_zone: Tz,
    /// Local time of the scheduled report.
    pub send_at: NaiveTime,
    /// Chats that receive the scheduled report.
    pub chats: Vec<ChatTarget>,
}

/// One built report.
#[derive(Debug, Clone)]
pub struct Report {
    pub text: String,
    /// The 7-day chart grid; `None` when rendering failed.
    pub chart: Option<Vec<u8>>,
}

/// Builds and sends reports.
pub struct Reporter {
    table: EventsTable,
    settings: ReportSettings,
    bot: Bot,
    delivery: ReportDelivery,
}

impl Reporter {
    pub fn new(table: EventsTable, settings: ReportSettings, telegram: &TelegramConfig) -> Self {
        Self {
            table,
            settings,
            bot: Bot::new(telegram.token.expose()).set_api_url(telegram.api_url.clone()),
            delivery: ReportDelivery::for_telegram(telegram),
        }
    }

    /// Builds the report of the local day before `now`.
    pub async fn build(&self, now: DateTime<Utc>) -> Result<Report, String> {
        let zone = self.settings.time_zone;
        let day = report_day(now, zone);
        let first = day - Days::new(7);
        let daily = self
            .table
            .daily_values(&self.settings.metrics, first, day, zone)
            .await?;

        let summaries = summarize(&self.settings.metrics, &daily);
        let text = format_report(day, zone.name(), &summaries);
        let panels: Vec<TrendPanel> = self
            .settings
            .metrics
            .iter()
            .zip(&daily.values)
            .map(|(metric, values)| TrendPanel {
                name: metric.name.clone(),
                // The last seven days; the eighth is only the week-before base.
                days: daily.days.iter().copied().zip(values.iter().copied()).skip(1).collect(),
            })
            .collect();

        let has_data = panels
            .iter()
            .any(|panel| panel.days.iter().any(|(_, value)| value.is_some()));
        if !has_data {
            info!(report_day = %day, metrics = panels.len(), "no metric has data in the last 7 days; sending the report without a chart");
            return Ok(Report { text, chart: None });
        }

        let chart = match tokio::task::spawn_blocking(move || render_trend_grid(&panels)).await {
            Ok(Ok(png)) => Some(png),
            Ok(Err(error)) => {
                warn!(report_day = %day, error = %error, "rendering the report chart failed; sending text only");
                None
            }
            Err(error) => {
                warn!(report_day = %day, error = %error, "the report chart task failed; sending text only");
                None
            }
        };
        Ok(Report { text, chart })
    }

    /// Sends `report` to one chat: the text, then the chart, each within the
    /// rate limits and retried as [`ReportDelivery`] does.
    pub async fn send_to(&self, report: &Report, chat: &ChatTarget) -> Result<(), String> {
        let recipient = recipient(chat);
        self.delivery
            .send(chat, "the report text", || {
                self.bot.send_message(recipient.clone(), report.text.clone())
            })
            .await?;
        if let Some(png) = &report.chart {
            self.delivery
                .send(chat, "the report chart", || {
                    self.bot
                        .send_photo(
                            recipient.clone(),
                            InputFile::memory(png.clone()).file_name("report.png"),
                        )
                        .caption("Last 7 days")
                })
                .await?;
        }
        Ok(())
    }

    /// Builds the report for `now` and sends it to every configured chat.
    /// Returns an error naming the chats that did not receive it.
    pub async fn send_now(&self, now: DateTime<Utc>) -> Result<(), String> {
        let report = self.build(now).await?;
        let mut failed = Vec::new();
        for chat in &self.settings.chats {
            match self.send_to(&report, chat).await {
                Ok(()) => info!(chat = %chat, "report sent"),
                Err(error) => {
                    error!(chat = %chat, error = %error, "sending the report failed");
                    failed.push(chat.to_string());
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("the report did not reach chats {}", failed.join(", ")))
        }
    }

    /// Sends the report every day at the configured local time until
    /// `cancel` fires. A failed report is logged and not repeated that day.
    pub async fn run_schedule(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let now = Utc::now();
            let at = next_run(now, self.settings.send_at, self.settings.time_zone);
            info!(next_report_at = %at, "daily report scheduled");
            let wait = (at - now).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return,
            }
            if let Err(error) = self.send_now(Utc::now()).await {
                error!(error = %error, "the scheduled report failed");
            }
        }
    }
}

impl ReportTrigger for Reporter {
    fn send_report(&self, chat: ChatId) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let report = self.build(Utc::now()).await?;
            self.send_to(&report, &ChatTarget::Id(chat.0)).await
        })
    }
}
