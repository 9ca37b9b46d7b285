//! The interface between the alert pipeline and its outputs.

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::message::AlertMessage;

/// One anomaly state change, formatted and ready to deliver.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Address of the detector that sent the event.
    pub detector: String,
    /// Episode id from the detector.
    pub episode_id: String,
    /// Position of the event in the detector's stream.
    pub sequence: u64,
    pub message: AlertMessage,
}

/// An output for alerts, such as a Telegram chat or the console.
pub trait AlertSink: Send + Sync {
    /// Short name for logs, such as `telegram`.
    fn name(&self) -> &'static str;

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
