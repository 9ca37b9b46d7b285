//! Runs the A/B analysis of `/ab` and sends its report and chart to the
//! chat that sent the command.

use std::time::Instant;

use futures::future::BoxFuture;
use seismo_experiments::analysis::AnalysisSettings;
use seismo_experiments::clickhouse_source::EventsTable;
use seismo_experiments::run::{AbRequest, run_ab_test};
use teloxide::Bot;
use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::requests::Requester;
use teloxide::types::{ChatId, InputFile, ParseMode};
use tracing::{info, warn};

use super::arguments::AbArguments;
use crate::commands::bot::AbReportTrigger;
use crate::config::{ChatTarget, TelegramConfig};
use crate::escape::escape_html;
use crate::forecast_report::build::split_into_messages;
use crate::report_delivery::ReportDelivery;

/// Runs A/B analyses over one events table and sends their reports.
pub struct AbReporter {
    table: EventsTable,
    /// Settings of every analysis; `/ab` sets only the metric.
    settings: AnalysisSettings,
    bot: Bot,
    delivery: ReportDelivery,
}

impl AbReporter {
    /// Builds a reporter with seismo-experiments' default analysis settings:
    /// alpha 0.05, power 0.8, an expected 50/50 split, 50 buckets and 2000
    /// bootstrap replicates.
    pub fn new(table: EventsTable, telegram: &TelegramConfig) -> Self {
        Self {
            table,
            settings: AnalysisSettings::default(),
            bot: Bot::new(telegram.token.expose()).set_api_url(telegram.api_url.clone()),
            delivery: ReportDelivery::for_telegram(telegram),
        }
    }

    /// Returns the analysis request of `arguments`, with a chart.
    pub fn request(&self, arguments: &AbArguments) -> AbRequest {
        AbRequest {
            control: arguments.control.clone(),
            treatment: arguments.treatment.clone(),
            from: arguments.start(),
            to: arguments.end(),
            settings: AnalysisSettings {
                metric: arguments.metric,
                ..self.settings.clone()
            },
            with_chart: true,
        }
    }

    /// Runs the analysis and sends the report to `chat` as monospaced
    /// messages, then the chart as a photo. On failure, returns the reply
    /// text: the analysis error (such as an empty group) or the send error.
    pub async fn send_to(&self, chat: ChatId, arguments: &AbArguments) -> Result<(), String> {
        let started = Instant::now();
        let output = run_ab_test(&self.table, &self.request(arguments)).await.map_err(|error| {
            warn!(chat_id = chat.0, control = %arguments.control, treatment = %arguments.treatment, error = %format!("{error:#}"), "the A/B analysis of /ab failed");
            format!(
                "The A/B analysis of control {} and treatment {} failed: {error:#}",
                arguments.control, arguments.treatment
            )
        })?;

        // Telegram limits the visible text, without the <pre> tags and with
        // entities decoded, so the split works on the unescaped report.
        let messages = split_into_messages(&output.report);
        let target = ChatTarget::Id(chat.0);
        for message in &messages {
            let html = format!("<pre>{}</pre>", escape_html(message));
            self.delivery
                .send(&target, "the A/B report text", || {
                    self.bot.send_message(chat, html.clone()).parse_mode(ParseMode::Html)
                })
                .await
                .map_err(|error| send_failure(chat, error))?;
        }

        if let Some(png) = output.chart_png {
            let caption = format!(
                "Per-user {} of control {} and treatment {}",
                arguments.metric.name(),
                arguments.control,
                arguments.treatment
            );
            self.delivery
                .send(&target, "the A/B report chart", || {
                    self.bot
                        .send_photo(chat, InputFile::memory(png.clone()).file_name("ab-test.png"))
                        .caption(caption.clone())
                })
                .await
                .map_err(|error| send_failure(chat, error))?;
        }

        info!(
            chat_id = chat.0,
            control = %arguments.control,
            treatment = %arguments.treatment,
            messages = messages.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "A/B report sent"
        );
        Ok(())
    }
}

/// Logs a send error of the A/B report and returns it as the reply text.
fn send_failure(chat: ChatId, error: String) -> String {
    warn!(chat_id = chat.0, error = %error, "sending the A/B report failed");
    format!("Sending the A/B report failed: {error}")
}

impl AbReportTrigger for AbReporter {
    fn send_ab_report(&self, chat: ChatId, arguments: AbArguments) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.send_to(chat, &arguments).await })
    }
}
