//! Runs the A/B analysis of `/ab` and sends its report and chart to the
//! chat that sent the command.

use std::time::Instant;

use futures::future::BoxFuture;
use seismo_experiments::analysis::AnalysisSettings;
use seismo_experiments::clickhouse_source::EventsTable;
use seismo_experiments::run::{AbRequest, run_ab_test};
use teloxide::Bot;
use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{ChatId, InputFile, ParseMode};
use tracing::{info, warn};

use super::arguments::AbArguments;
use crate::commands::bot::AbReportTrigger;
use crate::config::TelegramConfig;
use crate::escape::escape_html;
use crate::forecast_report::build::split_into_messages;
use crate::telegram_error::describe_request_error;

/// Runs A/B analyses over one events table and sends their reports.
pub struct AbReporter {
    table: EventsTable,
    /// Settings of every analysis; `/ab` sets only the metric.
    settings: AnalysisSettings,
    bot: Bot,
    /// The bot token, only to strip it from logged errors.
    token: String,
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
            token: telegram.token.expose().to_string(),
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
        for message in &messages {
            let html = format!("<pre>{}</pre>", escape_html(message));
            self.bot
                .send_message(chat, html)
                .parse_mode(ParseMode::Html)
                .send()
                .await
                .map_err(|error| self.send_failure("text", chat, &error))?;
        }

        if let Some(png) = output.chart_png {
            let caption = format!(
                "Per-user {} of control {} and treatment {}",
                arguments.metric.name(),
                arguments.control,
                arguments.treatment
            );
            self.bot
                .send_photo(chat, InputFile::memory(png).file_name("ab-test.png"))
                .caption(caption)
                .send()
                .await
                .map_err(|error| self.send_failure("chart", chat, &error))?;
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

    fn send_failure(&self, part: &str, chat: ChatId, error: &teloxide::RequestError) -> String {
        let error = describe_request_error(error, &self.token);
        warn!(chat_id = chat.0, error = %error, "sending the A/B report {part} failed");
        format!("Sending the A/B report {part} failed: {error}")
    }
}

impl AbReportTrigger for AbReporter {
    fn send_ab_report(&self, chat: ChatId, arguments: AbArguments) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.send_to(chat, &arguments).await })
    }
}
