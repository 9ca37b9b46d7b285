//! The loader against a real Kafka protocol broker (librdkafka's mock cluster).

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use seismo_events::{Event, ParseLimits};
use seismo_loader::{EventTemplate, LoaderConfig, load};
use tokio_util::sync::CancellationToken;

fn nyc_taxi_csv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo/nyc_taxi.csv")
}

#[tokio::test]
async fn loader_produces_one_event_per_row() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("taxi", 2, 1).unwrap();
    let config = LoaderConfig {
        brokers: cluster.bootstrap_servers(),
        topic: "taxi".to_string(),
        input: nyc_taxi_csv(),
        template: EventTemplate {
            event: "taxi_trips".to_string(),
            user_id: "nab-loader".to_string(),
            event_id_prefix: "nyc_taxi".to_string(),
        },
        speedup: 0.0,
        limit: Some(500),
    };

    let summary = load(&config, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.rows, 500);
    assert_eq!(summary.produced, 500);

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "loader-test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["taxi"]).unwrap();

    let limits = ParseLimits {
        max_future: None,
        ..ParseLimits::default()
    };
    let mut partitions = std::collections::BTreeSet::new();
    let mut previous_time = None;
    for index in 0..500 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("the loader's events arrive within 30 s")
            .unwrap();
        partitions.insert(message.partition());

        let event = Event::parse_with(message.payload().unwrap(), &limits, chrono::Utc::now()).unwrap();
        assert_eq!(event.event_id, Some(format!("nyc_taxi-{index}")));
        assert!(previous_time < Some(event.event_time), "events arrive in time order");
        previous_time = Some(event.event_time);
    }
    assert_eq!(partitions.len(), 1, "one key keeps the series in one partition");
}
