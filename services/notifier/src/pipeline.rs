//! Wires the detector subscriptions to the alert sinks and runs them until
//! cancelled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use seismo_telemetry::Readiness;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::chat_queue::QueueContext;
use crate::config::{ConfigError, NotifierConfig};
use crate::console::ConsoleSink;
use crate::delivery::deliver_all;
use crate::hooks::DeliveryHooks;
use crate::notification_log::NotificationLog;
use crate::prometheus_metrics::describe_metrics;
use crate::readiness::ReadinessTracker;
use crate::routing::Routing;
use crate::sink::AlertSink;
use crate::stats::NotifierStats;
use crate::subscription::Subscription;
use crate::telegram::TelegramSink;
use crate::templates::Templates;

/// Creates the sinks that `config` enables: Telegram when it is configured,
/// and the console when `config.console` is set.
pub fn build_sinks(config: &NotifierConfig, stats: &Arc<NotifierStats>) -> Vec<Arc<dyn AlertSink>> {
    let mut sinks: Vec<Arc<dyn AlertSink>> = Vec::new();
    if let Some(telegram) = &config.telegram {
        sinks.push(Arc::new(TelegramSink::new(
            telegram,
            config.delivery,
            Arc::clone(stats),
        )));
    }
    if config.console {
        sinks.push(Arc::new(ConsoleSink::stdout()));
    }
    sinks
}

/// Runs the notifier with the sinks from [`build_sinks`] until `cancel`
/// fires. See [`run_with_sinks`].
pub async fn run(
    config: NotifierConfig,
    stats: Arc<NotifierStats>,
    readiness: Readiness,
    cancel: CancellationToken,
) -> Result<(), ConfigError> {
    let sinks = build_sinks(&config, &stats);
    run_with_sinks(config, sinks, stats, readiness, cancel).await
}

/// Runs the notifier with `sinks` and the default [`DeliveryHooks`] until
/// `cancel` fires. See [`run_with_hooks`].
pub async fn run_with_sinks(
    config: NotifierConfig,
    sinks: Vec<Arc<dyn AlertSink>>,
    stats: Arc<NotifierStats>,
    readiness: Readiness,
    cancel: CancellationToken,
) -> Result<(), ConfigError> {
    run_with_hooks(config, sinks, DeliveryHooks::default(), stats, readiness, cancel).await
}

/// Follows every configured detector and delivers each anomaly event to the
/// chats of its route through `sinks`, asking `hooks` before each send and
/// updating `stats` and the `seismo_notifier_*` metrics as it goes.
///
/// Each state change is written to the notification log (in
/// `config.state_dir`, else in memory) before it is sent, and each
/// detector's cursor after it. On start, alerts left pending by the last run
/// are sent again and each detector is resumed from its stored cursor.
///
/// `readiness` turns ready once a detector stream is open, and not ready while
/// no detector stream is open, after a sink failed to deliver an alert (until
/// it delivers one again) and from cancellation on. Pass
/// `Readiness::default()` when nothing reads it.
///
/// Returns an error only for an unusable configuration, before connecting.
/// Unreachable detectors and failing sinks are logged and retried. After
/// `cancel` fires, the subscriptions stop, and alerts already received are
/// still delivered for up to `config.shutdown_grace`. The function returns
/// once every received alert is counted as sent or failed.
pub async fn run_with_hooks(
    config: NotifierConfig,
    sinks: Vec<Arc<dyn AlertSink>>,
    hooks: DeliveryHooks,
    stats: Arc<NotifierStats>,
    readiness: Readiness,
    cancel: CancellationToken,
) -> Result<(), ConfigError> {
    config.validate()?;
    if sinks.is_empty() {
        return Err(ConfigError::NoSinks);
    }
    let subscriptions = config
        .detectors
        .iter()
        .map(|address| {
            Subscription::new(
                address,
                config.metrics.clone(),
                config.reconnect,
                config.connect_timeout,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let log = match &config.state_dir {
        Some(state_dir) => NotificationLog::open(state_dir)?,
        None => NotificationLog::open_in_memory()?,
    };
    let cursors = log.cursors()?;
    let mut subscriptions = subscriptions;
    for subscription in &mut subscriptions {
        if let Some(&cursor) = cursors.get(subscription.detector().as_ref()) {
            info!(detector = %subscription.detector(), after_sequence = cursor.after_sequence,
                stream_epoch = cursor.stream_epoch, "resuming from the stored cursor");
            subscription.resume_after(cursor);
        }
    }
    let routing = config.routing.clone().unwrap_or_else(|| {
        Routing::default_only(
            config
                .telegram
                .as_ref()
                .map(|telegram| telegram.chats.clone())
                .unwrap_or_default(),
        )
    });

    let templates = Templates::load(config.templates_dir.as_deref())?;
    let mut chat_templates = HashMap::new();
    for (chat, name) in routing.chat_templates() {
        chat_templates.insert(chat.to_string(), templates.get(name, chat)?);
    }

    describe_metrics();
    let readiness = Arc::new(ReadinessTracker::new(
        readiness,
        subscriptions
            .iter()
            .map(|subscription| Arc::clone(subscription.detector())),
    ));
    let stopping = tokio::spawn(mark_stopping(cancel.clone(), Arc::clone(&readiness)));

    let (queue, alerts) = mpsc::channel(config.queue_capacity);
    let mut subscription_tasks = JoinSet::new();
    for subscription in subscriptions {
        subscription_tasks.spawn(subscription.run(
            queue.clone(),
            Arc::clone(&stats),
            Arc::clone(&readiness),
            cancel.clone(),
        ));
    }
    // The queue closes once every subscription has stopped.
    drop(queue);

    let abort = CancellationToken::new();
    let grace_timer = tokio::spawn(abort_after_grace(cancel.clone(), config.shutdown_grace, abort.clone()));
    let sink_names: Vec<&str> = sinks.iter().map(|sink| sink.name()).collect();
    info!(detectors = ?config.detectors, metrics = ?config.metrics, sinks = ?sink_names, "notifier started");

    let context = Arc::new(QueueContext {
        log,
        hooks,
        stats: Arc::clone(&stats),
        readiness: Arc::clone(&readiness),
        chat_templates,
        grouping_window: config.grouping_window,
        queue_capacity: config.queue_capacity,
        cancel: cancel.clone(),
        abort: abort.clone(),
    });
    deliver_all(
        alerts,
        &sinks,
        &routing,
        config.repeat_interval,
        config.log_retention,
        context,
    )
    .await;

    while let Some(joined) = subscription_tasks.join_next().await {
        if let Err(error) = joined {
            error!(error = %error, "a detector subscription task panicked");
        }
    }
    grace_timer.abort();
    // Not ready from here on, even if `mark_stopping` has not run yet.
    stopping.abort();
    readiness.stopping();

    let totals = stats.snapshot();
    info!(
        received = totals.received,
        sent = totals.sent,
        failed = totals.failed,
        retries = totals.retries,
        duplicates = totals.duplicates,
        suppressed = totals.suppressed,
        reconnects = totals.reconnects,
        plain_text_fallbacks = totals.plain_text_fallbacks,
        "notifier stopped"
    );
    Ok(())
}

/// Marks the notifier not ready as soon as `cancel` fires.
async fn mark_stopping(cancel: CancellationToken, readiness: Arc<ReadinessTracker>) {
    cancel.cancelled().await;
    readiness.stopping();
}

/// Fires `abort` once `grace` has passed after `cancel`.
async fn abort_after_grace(cancel: CancellationToken, grace: Duration, abort: CancellationToken) {
    cancel.cancelled().await;
    tokio::time::sleep(grace).await;
    abort.cancel();
}
