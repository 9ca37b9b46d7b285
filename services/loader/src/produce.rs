use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use seismo_telemetry::{TRACEPARENT, span_traceparent};
use tokio_util::sync::CancellationToken;

use crate::experiment::{ExperimentConfig, ExperimentEvents};
use crate::{EventTemplate, Pacer, event_json, read_nab_csv};

/// Maximum number of produced messages awaiting their delivery report.
const MAX_IN_FLIGHT: usize = 10_000;

/// How long librdkafka keeps trying to deliver one message, so an
/// unreachable broker fails the replay in 30 s rather than librdkafka's
/// default 5 minutes.
const DELIVERY_TIMEOUT_MS: &str = "30000";

/// Rows produced under one `produce_rows` span, whose trace context every
/// message of those rows carries in its `traceparent` header.
const ROWS_PER_SPAN: usize = 100;

/// Settings of one replay.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    pub topic: String,
    /// NAB-format CSV to replay.
    pub input: PathBuf,
    pub template: EventTemplate,
    /// Event-time seconds replayed per wall-clock second; 0 replays as fast as
    /// possible.
    pub speedup: f64,
    /// Replays only the first `limit` rows when set.
    pub limit: Option<usize>,
}

/// Counts and duration of one replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSummary {
    /// Rows read from the CSV (after `limit`).
    pub rows: usize,
    /// Events acknowledged by Kafka, including experiment events.
    pub produced: usize,
    pub elapsed: Duration,
}

/// Replays the CSV into Kafka and returns once every event is acknowledged
/// (`acks=all`, idempotent producer), or when `shutdown` fires.
///
/// All events share one key, the template's `event_id_prefix`, so they land in
/// one partition and the detector reads them in time order.
pub async fn load(config: &LoaderConfig, shutdown: CancellationToken) -> anyhow::Result<LoadSummary> {
    load_with_experiment(config, None, shutdown).await
}

/// Replays the CSV like [`load`] and, with `experiment`, also produces each
/// row's synthetic views and likes right after the row's own event.
pub async fn load_with_experiment(
    config: &LoaderConfig,
    experiment: Option<&ExperimentConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<LoadSummary> {
    let started = Instant::now();
    if let Some(experiment) = experiment {
        experiment.validate()?;
    }
    let mut experiment_events = experiment.cloned().map(ExperimentEvents::new);

    let mut rows = read_nab_csv(&config.input)?;
    if let Some(limit) = config.limit {
        rows.truncate(limit);
    }
    let Some(first) = rows.first() else {
        bail!("{} has no data rows; nothing to replay", config.input.display());
    };
    let pacer = Pacer::new(first.timestamp, config.speedup);

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", DELIVERY_TIMEOUT_MS)
        .create()
        .with_context(|| format!("cannot create a Kafka producer for brokers `{}`", config.brokers))?;

    tracing::info!(
        input = %config.input.display(),
        rows = rows.len(),
        topic = %config.topic,
        speedup = config.speedup,
        "replay started"
    );

    let key = config.template.event_id_prefix.as_str();
    let mut in_flight: Vec<DeliveryFuture> = Vec::with_capacity(MAX_IN_FLIGHT);
    let mut produced = 0;
    // The current `produce_rows` span and its `traceparent`, which is `None`
    // when no trace export is installed.
    let mut chunk: (tracing::Span, Option<String>) = (tracing::Span::none(), None);
    for (index, row) in rows.iter().enumerate() {
        if shutdown.is_cancelled() {
            tracing::info!(produced, "replay cancelled");
            break;
        }

        if let Some(due) = pacer.due_after(row.timestamp) {
            let wait = due.saturating_sub(started.elapsed());
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => continue,
                }
            }
        }

        if index % ROWS_PER_SPAN == 0 {
            let span = tracing::info_span!("produce_rows", first_row = index, topic = %config.topic);
            let traceparent = span_traceparent(&span);
            chunk = (span, traceparent);
        }
        let payload = event_json(&config.template, index, row);
        in_flight.push(enqueue(&producer, &config.topic, key, &payload, chunk.1.as_deref()).await?);
        if let Some(experiment_events) = experiment_events.as_mut() {
            for payload in experiment_events.row_events(&config.template, index, row) {
                in_flight.push(enqueue(&producer, &config.topic, key, &payload, chunk.1.as_deref()).await?);
            }
        }
        if in_flight.len() >= MAX_IN_FLIGHT {
            produced += await_deliveries(&mut in_flight, &shutdown).await?;
        }
    }
    produced += await_deliveries(&mut in_flight, &shutdown).await?;

    // After cancellation the unacknowledged rest is abandoned: it is not
    // counted in `produced`, and flushing would block for up to 30 s.
    if !shutdown.is_cancelled() {
        producer
            .flush(Duration::from_secs(30))
            .context("Kafka producer flush timed out after 30 s")?;
    }

    let summary = LoadSummary {
        rows: rows.len(),
        produced,
        elapsed: started.elapsed(),
    };
    tracing::info!(
        produced = summary.produced,
        elapsed_ms = summary.elapsed.as_millis() as u64,
        "replay finished"
    );
    Ok(summary)
}

/// Hands one message to librdkafka, waiting while its local queue is full.
async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    payload: &str,
    traceparent: Option<&str>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(traceparent) = traceparent {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: TRACEPARENT,
                value: Some(traceparent),
            }));
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((error, _)) => return Err(error).context(format!("cannot produce to topic `{topic}`")),
        }
    }
}

/// Waits for the delivery reports of `in_flight`, or returns early with the
/// count acknowledged so far when `shutdown` fires.
async fn await_deliveries(in_flight: &mut Vec<DeliveryFuture>, shutdown: &CancellationToken) -> anyhow::Result<usize> {
    let mut acknowledged = 0;
    for delivery in in_flight.drain(..) {
        let report = tokio::select! {
            report = delivery => report,
            _ = shutdown.cancelled() => return Ok(acknowledged),
        };
        match report {
            Ok(Ok(_)) => acknowledged += 1,
            Ok(Err((error, _))) => {
                return Err(error)
                    .context("an event was not delivered to Kafka; check --brokers and that the topic exists");
            }
            Err(_) => bail!("Kafka producer dropped a message before its delivery report"),
        }
    }
    Ok(acknowledged)
}
