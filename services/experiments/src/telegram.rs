//! Sends a report and its chart to a Telegram chat through the Bot API.

use std::time::Duration;

use anyhow::Context;
use teloxide::payloads::{SendMessageSetters, SendPhotoSetters};
use teloxide::requests::{Request, Requester};
use teloxide::types::{ChatId, InputFile, ParseMode, Recipient};
use teloxide::{Bot, RequestError};

/// Maximum text length of one message, in characters, below Telegram's
/// 4096 (Bot API, sendMessage) to leave room for the `<pre>` tags and
/// escaped characters.
const MAX_CHUNK_CHARS: usize = 3500;

/// Requests per message, the first included. A 429 is waited out for its
/// `retry_after` and the message sent again.
const MAX_ATTEMPTS: u32 = 5;

/// Pause before each message after the first, because Telegram allows about
/// one message per second in one chat.
const MESSAGE_SPACING: Duration = Duration::from_secs(1);

/// Bot API access. The token is secret: it is neither logged nor shown by
/// `Debug`.
#[derive(Clone)]
pub struct TelegramTarget {
    pub token: String,
    /// Bot API base URL: `https://api.telegram.org`, or a self-hosted or
    /// fake Bot API server.
    pub api_url: url::Url,
    /// Numeric chat id, or `@channelusername`.
    pub chat: String,
}

impl std::fmt::Debug for TelegramTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TelegramTarget")
            .field("api_url", &self.api_url.as_str())
            .field("chat", &self.chat)
            .finish_non_exhaustive()
    }
}

/// Sends `report` as monospaced HTML messages (split at line ends when
/// long), then `chart_png` as a photo when given.
pub async fn send_report(target: &TelegramTarget, report: &str, chart_png: Option<Vec<u8>>) -> anyhow::Result<()> {
    let bot = Bot::new(&target.token).set_api_url(target.api_url.clone());
    let recipient = parse_recipient(&target.chat)?;

    let chunks = split_lines(report, MAX_CHUNK_CHARS);
    for (index, chunk) in chunks.iter().enumerate() {
        if index > 0 {
            tokio::time::sleep(MESSAGE_SPACING).await;
        }
        let html = format!("<pre>{}</pre>", escape_html(chunk));
        send_retrying(|| {
            bot.send_message(recipient.clone(), html.clone())
                .parse_mode(ParseMode::Html)
        })
        .await
        .with_context(|| format!("sending the report to Telegram chat {} failed", target.chat))?;
    }
    if let Some(png) = chart_png {
        tokio::time::sleep(MESSAGE_SPACING).await;
        send_retrying(|| {
            bot.send_photo(
                recipient.clone(),
                InputFile::memory(png.clone()).file_name("ab-test.png"),
            )
            .caption("Per-group distributions")
        })
        .await
        .with_context(|| format!("sending the chart to Telegram chat {} failed", target.chat))?;
    }

    tracing::info!(chat = %target.chat, messages = chunks.len(), "report sent to Telegram");
    Ok(())
}

/// Sends the request that `build` makes, building it again after each 429
/// until [`MAX_ATTEMPTS`] requests were made.
async fn send_retrying<R>(build: impl Fn() -> R) -> Result<(), RequestError>
where
    R: Request<Err = RequestError>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match build().send().await {
            Ok(_) => return Ok(()),
            Err(RequestError::RetryAfter(wait)) if attempts < MAX_ATTEMPTS => {
                tracing::warn!(
                    attempt = attempts,
                    retry_after_s = wait.seconds(),
                    "Telegram rate-limited the report; sending again after its retry_after"
                );
                tokio::time::sleep(wait.duration()).await;
            }
            Err(error) => return Err(error),
        }
    }
}

fn parse_recipient(chat: &str) -> anyhow::Result<Recipient> {
    if chat.starts_with('@') {
        return Ok(Recipient::ChannelUsername(chat.to_string()));
    }
    let id = chat.parse::<i64>().with_context(|| {
        format!("Telegram chat `{chat}` is invalid; pass a numeric chat id such as -1001234567890 or @channelusername")
    })?;
    Ok(Recipient::Id(ChatId(id)))
}

/// Escapes the characters Telegram's HTML parse mode treats as markup.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Splits `text` into chunks of at most `max_chars` characters at line
/// ends; a longer single line is cut.
fn split_lines(text: &str, max_chars: usize) -> Vec<String> {
    let mut chunks = vec![String::new()];
    for line in text.lines() {
        let current = chunks.last_mut().expect("starts with one chunk");
        if !current.is_empty() && current.chars().count() + line.chars().count() + 1 > max_chars {
            chunks.push(String::new());
        }
        let current = chunks.last_mut().expect("starts with one chunk");
        current.extend(line.chars().take(max_chars));
        current.push('\n');
    }
    chunks.retain(|chunk| !chunk.trim().is_empty());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_report_split_at_lines() {
        let text = "a".repeat(10) + "\n" + &"b".repeat(10) + "\n" + &"c".repeat(5) + "\n";

        let chunks = split_lines(&text, 20);

        assert_eq!(
            chunks,
            vec!["aaaaaaaaaa\n".to_string(), "bbbbbbbbbb\nccccc\n".to_string()]
        );
    }

    #[test]
    fn invalid_chat_named() {
        let message = parse_recipient("my-chat").unwrap_err().to_string();

        assert!(message.contains("Telegram chat `my-chat` is invalid"), "{message}");
    }

    #[test]
    fn markup_escaped() {
        assert_eq!(escape_html("p < 0.05 & x > 1"), "p &lt; 0.05 &amp; x &gt; 1");
    }
}
