//! Extension points that delivery calls for every alert: a gate that may
//! suppress it (silences, quiet hours), a chart attached to it, and inline
//! buttons under it. The defaults send everything, without chart or buttons.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use seismo_proto::v1::AnomalyEvent;
use teloxide::types::InlineKeyboardMarkup;

use crate::config::ChatTarget;

/// Whether an alert goes to a chat now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    Send,
    /// Delivery records the alert as `suppressed` in the notification log,
    /// logs `reason` and counts it, and does not send it later.
    Suppress {
        reason: String,
    },
}

/// Decides whether an alert goes to a chat now (silences, quiet hours).
/// Called before each send, once per chat and state change.
pub trait SendGate: Send + Sync {
    fn decide(&self, event: &AnomalyEvent, chat: &ChatTarget, now: DateTime<Utc>) -> SendDecision;

    /// Records a change that delivery held back before asking the gate,
    /// such as a resolution for a chat that got nothing of its episode, so
    /// that state the gate keeps (the `/status` view) stays current.
    fn observe_held_back(&self, _event: &AnomalyEvent) {}
}

/// Renders the PNG chart attached to an alert. `None` sends the text alone.
pub trait ChartProvider: Send + Sync {
    fn chart(&self, event: &AnomalyEvent) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + '_>>;
}

/// Builds the inline keyboard attached to each alert (Acknowledge, Mute 1h,
/// Mute 24h) from the episode id and the metric name.
pub type AlertButtons = fn(anomaly_id: &str, metric: &str) -> InlineKeyboardMarkup;

/// The gate that sends every alert.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendAll;

impl SendGate for SendAll {
    fn decide(&self, _: &AnomalyEvent, _: &ChatTarget, _: DateTime<Utc>) -> SendDecision {
        SendDecision::Send
    }
}

/// The chart provider that attaches no chart.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCharts;

impl ChartProvider for NoCharts {
    fn chart(&self, _: &AnomalyEvent) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + '_>> {
        Box::pin(std::future::ready(None))
    }
}

/// The hooks delivery calls for every alert; pass them to [`crate::run_with_hooks`].
#[derive(Clone)]
pub struct DeliveryHooks {
    pub gate: Arc<dyn SendGate>,
    pub charts: Arc<dyn ChartProvider>,
    /// `None` sends alerts without buttons.
    pub buttons: Option<AlertButtons>,
}

impl Default for DeliveryHooks {
    fn default() -> Self {
        Self {
            gate: Arc::new(SendAll),
            charts: Arc::new(NoCharts),
            buttons: None,
        }
    }
}

impl std::fmt::Debug for DeliveryHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHooks")
            .field("buttons", &self.buttons.is_some())
            .finish_non_exhaustive()
    }
}
