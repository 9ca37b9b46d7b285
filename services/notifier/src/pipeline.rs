//! Wires the detector subscriptions to the alert sinks and runs them until
//! cancelled.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::{ConfigError, NotifierConfig};
use crate::console::ConsoleSink;
use crate::format::format_alert;
use crate::sink::{Alert, AlertSink};
use crate::stats::NotifierStats;
use crate::subscription::{Received, Subscription};
use crate::telegram::TelegramSink;

/// Events buffered between the subscriptions and delivery. When delivery
/// falls behind, for example during a long 429 wait, the subscriptions stop
/// reading and gRPC flow control holds back the detectors' streams.
const QUEUE_CAPACITY: usize = 1024;

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
    cancel: CancellationToken,
) -> Result<(), ConfigError> {
    let sinks = build_sinks(&config, &stats);
    run_with_sinks(config, sinks, stats, cancel).await
}

/// Follows every configured detector and delivers each anomaly event to all
/// `sinks`, updating `stats` as it goes.
///
/// Returns an error only for an unusable configuration, before connecting.
/// Unreachable detectors and failing sinks are logged and retried. After
/// `cancel` fires, the subscriptions stop, and alerts already received are
/// still delivered for up to `config.shutdown_grace`. The function returns
/// once every received alert is counted as sent or failed.
pub async fn run_with_sinks(
    config: NotifierConfig,
    sinks: Vec<Arc<dyn AlertSink>>,
    stats: Arc<NotifierStats>,
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

    let (queue, alerts) = mpsc::channel(QUEUE_CAPACITY);
    let mut subscription_tasks = JoinSet::new();
    for subscription in subscriptions {
        subscription_tasks.spawn(subscription.run(
            queue.clone(),
            Arc::clone(&stats),
            cancel.clone(),
        ));
    }
    // The queue closes once every subscription has stopped.
    drop(queue);

    let abort = CancellationToken::new();
    let grace_timer = tokio::spawn(abort_after_grace(
        cancel.clone(),
        config.shutdown_grace,
        abort.clone(),
    ));
    let sink_names: Vec<&str> = sinks.iter().map(|sink| sink.name()).collect();
    info!(detectors = ?config.detectors, metrics = ?config.metrics, sinks = ?sink_names, "notifier started");

    deliver_all(alerts, &sinks, &stats, &abort).await;

    while let Some(joined) = subscription_tasks.join_next().await {
        if let Err(error) = joined {
            error!(error = %error, "a detector subscription task panicked");
        }
    }
    grace_timer.abort();

    let totals = stats.snapshot();
    info!(
        received = totals.received,
        sent = totals.sent,
        failed = totals.failed,
        retries = totals.retries,
        duplicates = totals.duplicates,
        reconnects = totals.reconnects,
        "notifier stopped"
    );
    Ok(())
}

/// Formats each received event and hands it to every sink, until the queue
/// closes.
async fn deliver_all(
    mut alerts: mpsc::Receiver<Received>,
    sinks: &[Arc<dyn AlertSink>],
    stats: &NotifierStats,
    abort: &CancellationToken,
) {
    while let Some(Received { detector, event }) = alerts.recv().await {
        info!(
            detector = %detector, sequence = event.sequence, episode_id = %event.id,
            metric = %event.metric, state = ?event.state(), "delivering alert"
        );
        let alert = Alert {
            detector: detector.to_string(),
            episode_id: event.id.clone(),
            sequence: event.sequence,
            message: format_alert(&event),
        };

        let results = join_all(sinks.iter().map(|sink| sink.deliver(&alert, abort))).await;

        let mut delivered_everywhere = true;
        for (sink, result) in sinks.iter().zip(results) {
            if let Err(error) = result {
                delivered_everywhere = false;
                error!(
                    sink = sink.name(), detector = %detector, sequence = event.sequence,
                    episode_id = %event.id, error = %error, "alert not delivered"
                );
            }
        }
        if delivered_everywhere {
            stats.record_sent();
        } else {
            stats.record_failed();
        }
    }
}

/// Fires `abort` once `grace` has passed after `cancel`.
async fn abort_after_grace(cancel: CancellationToken, grace: Duration, abort: CancellationToken) {
    cancel.cancelled().await;
    tokio::time::sleep(grace).await;
    abort.cancel();
}
