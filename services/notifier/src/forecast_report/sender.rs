//! Builds the forecast report and sends it to Telegram, on the weekly
//! schedule or on request.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use seismo_forecast::clickhouse_source::ClickHouseSettings;
use seismo_forecast::metric_query::SeriesQuery;
use teloxide::Bot;
use teloxide::payloads::SendPhotoSetters;
use teloxide::requests::Requester;
use teloxide::types::{ChatId, InputFile};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::build::{forecast_metrics, format_forecast_report, split_into_messages};
use super::chart::{ForecastPanel, render_forecast_grid};
use super::schedule::next_weekly_run;
use super::settings::ForecastReportSettings;
use crate::commands::bot::ReportTrigger;
use crate::config::{ChatTarget, TelegramConfig};
use crate::report_delivery::ReportDelivery;
use crate::telegram::recipient;

/// One built forecast report.
#[derive(Debug, Clone)]
pub struct ForecastReport {
    /// The text, split into messages Telegram accepts (usually one).
    pub messages: Vec<String>,
    /// History and forecast of every metric that has a forecast; `None`
    /// when no metric has one or rendering failed.
    pub chart: Option<Vec<u8>>,
}

/// Builds and sends forecast reports.
pub struct ForecastReporter {
    source: ClickHouseSettings,
    settings: ForecastReportSettings,
    bot: Bot,
    delivery: ReportDelivery,
}

impl ForecastReporter {
    pub fn new(source: ClickHouseSettings, settings: ForecastReportSettings, telegram: &TelegramConfig) -> Self {
        Self {
            source,
            settings,
            bot: Bot::new(telegram.token.expose()).set_api_url(telegram.api_url.clone()),
            delivery: ReportDelivery::for_telegram(telegram),
        }
    }

    pub fn settings(&self) -> &ForecastReportSettings {
        &self.settings
    }

    /// Forecasts every metric from its history up to the bucket containing
    /// `now`. A metric that fails gets its error in its part of the text.
    /// Returns an error only when no metric could be forecast, such as when
    /// the events table is missing, so that a broken setup fails instead of
    /// posting nothing but errors to the chats.
    pub async fn build(&self, now: DateTime<Utc>) -> Result<ForecastReport, String> {
        let forecasts = forecast_metrics(&self.source, &self.settings, now).await;
        if forecasts.iter().all(|forecast| forecast.outcome.is_err()) {
            let errors: Vec<String> = forecasts
                .iter()
                .filter_map(|forecast| {
                    let error = forecast.outcome.as_ref().err()?;
                    Some(format!("{}: {error}", forecast.metric))
                })
                .collect();
            return Err(format!(
                "no metric of the forecast report could be forecast: {}",
                errors.join("; ")
            ));
        }

        let history_end = SeriesQuery::default_end(self.settings.granularity, now);
        let text = format_forecast_report(&forecasts, history_end);

        let panels: Vec<ForecastPanel> = forecasts
            .iter()
            .filter_map(|forecast| {
                let (series, result) = forecast.outcome.as_ref().ok()?;
                Some(ForecastPanel::new(&forecast.metric, series, result))
            })
            .collect();
        let chart = if panels.is_empty() {
            None
        } else {
            match tokio::task::spawn_blocking(move || render_forecast_grid(&panels)).await {
                Ok(Ok(png)) => Some(png),
                Ok(Err(error)) => {
                    warn!(error = %error, "rendering the forecast chart failed; sending text only");
                    None
                }
                Err(error) => {
                    warn!(error = %error, "the forecast chart task failed; sending text only");
                    None
                }
            }
        };
        Ok(ForecastReport {
            messages: split_into_messages(&text),
            chart,
        })
    }

    /// Sends `report` to one chat: the text, then the chart, each within the
    /// rate limits and retried as [`ReportDelivery`] does.
    pub async fn send_to(&self, report: &ForecastReport, chat: &ChatTarget) -> Result<(), String> {
        let recipient = recipient(chat);
        for message in &report.messages {
            self.delivery
                .send(chat, "the forecast report text", || {
                    self.bot.send_message(recipient.clone(), message.clone())
                })
                .await?;
        }
        if let Some(png) = &report.chart {
            let caption = format!(
                "History and forecast with its {}% prediction interval",
                self.settings.level * 100.0
            );
            self.delivery
                .send(chat, "the forecast chart", || {
                    self.bot
                        .send_photo(
                            recipient.clone(),
                            InputFile::memory(png.clone()).file_name("forecast.png"),
                        )
                        .caption(caption.clone())
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
                Ok(()) => info!(chat = %chat, "forecast report sent"),
                Err(error) => {
                    error!(chat = %chat, error = %error, "sending the forecast report failed");
                    failed.push(chat.to_string());
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("the forecast report did not reach chats {}", failed.join(", ")))
        }
    }

    /// Sends the report every week on the configured weekday and local time
    /// until `cancel` fires. A failed report is logged and not repeated that
    /// week.
    pub async fn run_schedule(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let now = Utc::now();
            let settings = &self.settings;
            let at = next_weekly_run(now, settings.weekday, settings.send_at, settings.time_zone);
            info!(next_forecast_report_at = %at, "weekly forecast report scheduled");
            let wait = (at - now).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return,
            }
            if let Err(error) = self.send_now(Utc::now()).await {
                error!(error = %error, "the scheduled forecast report failed");
            }
        }
    }
}

impl ReportTrigger for ForecastReporter {
    fn send_report(&self, chat: ChatId) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let report = self.build(Utc::now()).await?;
            self.send_to(&report, &ChatTarget::Id(chat.0)).await
        })
    }
}
