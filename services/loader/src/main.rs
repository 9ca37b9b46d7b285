//! `seismo-loader`: replays a NAB-format CSV into Kafka as Seismo events.

use std::path::PathBuf;

use clap::Parser;
use seismo_loader::{EventTemplate, ExperimentConfig, LoaderConfig, load_with_experiment};
use seismo_telemetry::{LogFormat, init_telemetry};
use tokio_util::sync::CancellationToken;

/// Replays a `timestamp,value` CSV into Kafka, one event per row carrying the
/// row's number in `value`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// NAB-format CSV to replay (header `timestamp,value`, UTC timestamps).
    input: PathBuf,

    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,

    /// Topic to produce the events to.
    #[arg(long, env = "SEISMO_EVENTS_TOPIC", default_value = "events")]
    topic: String,

    /// Value of each event's `event` field.
    #[arg(long, env = "SEISMO_LOADER_EVENT", default_value = "taxi_trips")]
    event: String,

    /// Value of each event's `user_id` field.
    #[arg(long, env = "SEISMO_LOADER_USER_ID", default_value = "nab-loader")]
    user_id: String,

    /// Prefix of `event_id` (`<prefix>-<row>`); defaults to the file name without extension.
    #[arg(long, env = "SEISMO_LOADER_ID_PREFIX")]
    id_prefix: Option<String>,

    /// Event-time seconds replayed per wall-clock second; 0 replays as fast as possible.
    #[arg(long, env = "SEISMO_LOADER_SPEEDUP", default_value_t = 0.0)]
    speedup: f64,

    /// Replay only the first N rows.
    #[arg(long)]
    limit: Option<usize>,

    #[command(flatten)]
    experiment: ExperimentArgs,
}

/// Synthetic A/B test traffic, off unless `--experiment-users` is given.
#[derive(Debug, clap::Args)]
struct ExperimentArgs {
    /// Also produce views and likes of this many simulated users per replay,
    /// assigned to `exp_group` 1, 2, … by a salted hash of `user_id`.
    #[arg(long)]
    experiment_users: Option<u32>,

    /// Salt of the group assignment: group = position of
    /// sipHash64(concat(salt, user_id)) % sum(split) in the split.
    #[arg(long, default_value = "seismo-experiment")]
    experiment_salt: String,

    /// Relative weights of groups 1, 2, …
    #[arg(long, value_delimiter = ',', default_value = "50,50")]
    experiment_split: Vec<u32>,

    /// View events per CSV row.
    #[arg(long, default_value_t = 10)]
    views_per_row: u32,

    /// Mean probability that a view is followed by a like.
    #[arg(long, default_value_t = 0.2)]
    like_probability: f64,

    /// Group whose like probability `--effect` changes.
    #[arg(long, default_value_t = 2)]
    effect_group: u32,

    /// Relative change of the effect group's like probability, e.g. 0.1 for
    /// +10 %; 0 gives an A/A setup.
    #[arg(long, default_value_t = 0.0)]
    effect: f64,

    /// Seed of the simulated users' views and likes.
    #[arg(long, default_value_t = 1)]
    experiment_seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Kept to the end of main, so the last spans are flushed.
    let _telemetry = init_telemetry(LogFormat::Text, "seismo-loader")?;

    let id_prefix = args.id_prefix.unwrap_or_else(|| {
        args.input
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "row".to_string())
    });
    let config = LoaderConfig {
        brokers: args.brokers,
        topic: args.topic,
        input: args.input,
        template: EventTemplate {
            event: args.event,
            user_id: args.user_id,
            event_id_prefix: id_prefix,
        },
        speedup: args.speedup,
        limit: args.limit,
    };

    let experiment = args.experiment.experiment_users.map(|users| ExperimentConfig {
        users,
        salt: args.experiment.experiment_salt,
        split: args.experiment.experiment_split,
        views_per_row: args.experiment.views_per_row,
        like_probability: args.experiment.like_probability,
        effect_group: args.experiment.effect_group,
        effect: args.experiment.effect,
        seed: args.experiment.experiment_seed,
    });

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        on_signal.cancel();
    });

    let summary = load_with_experiment(&config, experiment.as_ref(), shutdown).await?;
    println!(
        "produced {} events from {} rows to `{}` in {:.1} s",
        summary.produced,
        summary.rows,
        config.topic,
        summary.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM, the signal container runtimes send to stop.
async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds in a tokio runtime");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
