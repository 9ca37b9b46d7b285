//! The interface between the alert pipeline and its outputs.

use futures::future::BoxFuture;
use teloxide::types::InlineKeyboardMarkup;
use tokio_util::sync::CancellationToken;

use crate::config::ChatTarget;
use crate::message::AlertMessage;

/// One anomaly state change, or a group of them, formatted and ready to
/// deliver.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Address of the detector that sent the event.
    pub detector: String,
    /// Episode id from the detector; the first one's for a group.
    pub episode_id: String,
    /// Position of the event in the detector's stream; the first one's for a
    /// group.
    pub sequence: u64,
    pub message: AlertMessage,
    /// The one chat to send to; `None` sends to every chat the sink was
    /// configured with. Sinks without chats ignore it.
    pub chat: Option<ChatTarget>,
    /// PNG chart sent as a photo with the message as its caption.
    pub chart: Option<Vec<u8>>,
    /// Inline keyboard attached to the (last part of the) message.
    pub buttons: Option<InlineKeyboardMarkup>,
}

impl Alert {
    /// Creates an alert for the sink's configured chats, without chart or
    /// buttons.
    pub fn new(
        detector: impl Into<String>,
        episode_id: impl Into<String>,
        sequence: u64,
        message: AlertMessage,
    ) -> Self {
        Self {
            detector: detector.into(),
            episode_id: episode_id.into(),
            sequence,
            message,
            chat: None,
            chart: None,
            buttons: None,
        }
    }
}

/// An output for alerts, such as a Telegram chat or the console.
pub trait AlertSink: Send + Sync {
    /// Short name for logs, such as `telegram`.
    fn name(&self) -> &'static str;

    /// Returns whether the sink sends to chats, so that delivery queues its
    /// alerts per chat and sets [`Alert::chat`]. A sink without chats (the console)
    /// gets each alert once.
    fn sends_to_chats(&self) -> bool {
        false
    }

    /// Delivers one alert, with the sink's own retries. When `abort` fires,
    /// the sink stops waiting for retries and returns an error.
    fn deliver<'a>(
        &'a self,
        alert: &'a Alert,
        abort: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// Why a sink did not deliver an alert. The sink has logged each cause with
/// its details already.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{failed} of {total} Telegram chats did not receive the alert")]
    Telegram { failed: usize, total: usize },
    #[error("writing the alert to the console failed: {0}")]
    Console(#[from] std::io::Error),
}
