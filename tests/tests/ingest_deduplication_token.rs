//! The `insert_deduplication_token` on the wire: a fake ClickHouse HTTP
//! server reports a version and records every request, and the real sink
//! connects to it and inserts. Servers from 22.2 on get the batch's token
//! with each insert, the same one on a retry, and older servers get none. The
//! real 18.16 server of the other tests cannot show the first case.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::post;
use seismo_events::Event;
use seismo_ingest::{BatchRow, ClickHouseConfig, ClickHouseSink, ServerVersion};

/// URL parameters of each request the fake server received.
type Requests = Arc<Mutex<Vec<HashMap<String, String>>>>;

#[derive(Clone)]
struct FakeClickHouse {
    version: &'static str,
    requests: Requests,
}

/// Returns `text` as one `RowBinary` `String` value: its length as LEB128,
/// then its bytes.
fn row_binary_string(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut length = text.len();
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Responds to the queries the sink sends: the version, the table's
/// engine, DDL and inserts. Queries come in the body, inserts in `query`.
async fn handle(
    State(server): State<FakeClickHouse>,
    Query(parameters): Query<HashMap<String, String>>,
    body: Bytes,
) -> Vec<u8> {
    let sql = match parameters.get("query") {
        Some(query) => query.clone(),
        None => String::from_utf8_lossy(&body).into_owned(),
    };
    server
        .requests
        .lock()
        .expect("the request log lock is never poisoned")
        .push(parameters);

    if sql.contains("version()") {
        row_binary_string(server.version)
    } else if sql.contains("system.tables") {
        row_binary_string("ReplacingMergeTree")
    } else {
        Vec::new()
    }
}

/// Starts the fake server on 127.0.0.1 and returns its URL and request log.
async fn start_fake_clickhouse(version: &'static str) -> anyhow::Result<(String, Requests)> {
    let requests = Requests::default();
    let app = Router::new().route("/", post(handle)).with_state(FakeClickHouse {
        version,
        requests: requests.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the fake ClickHouse server")?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, requests))
}

fn rows() -> Vec<BatchRow> {
    let event =
        Event::parse(br#"{"event_time": 1714564800000, "event": "view", "user_id": "u-1"}"#).expect("valid event");
    [(0, 10), (0, 11), (3, 4)]
        .into_iter()
        .map(|(partition, offset)| BatchRow {
            event: event.clone(),
            partition,
            offset,
        })
        .collect()
}

/// Connects the sink to a fake server of `version`, inserts the same rows
/// twice, as a retry does, and returns the URL parameters of both inserts.
async fn insert_twice(version: &'static str) -> anyhow::Result<Vec<HashMap<String, String>>> {
    let (url, requests) = start_fake_clickhouse(version).await?;
    let config = ClickHouseConfig {
        url,
        insert_timeout: Duration::from_secs(10),
        ..ClickHouseConfig::default()
    };
    let sink = ClickHouseSink::connect(&config).await?;
    assert_eq!(sink.features().version, ServerVersion::parse(version)?);

    let rows = rows();
    sink.insert(&rows, "events").await?;
    sink.insert(&rows, "events").await?;

    let inserts: Vec<HashMap<String, String>> = requests
        .lock()
        .expect("the request log lock is never poisoned")
        .iter()
        .filter(|parameters| {
            parameters
                .get("query")
                .is_some_and(|sql| sql.starts_with("INSERT INTO"))
        })
        .cloned()
        .collect();
    Ok(inserts)
}

#[tokio::test]
async fn token_sent_from_22_2() -> anyhow::Result<()> {
    let inserts = insert_twice("23.8.2.7").await?;

    assert_eq!(inserts.len(), 2, "{inserts:?}");
    for parameters in &inserts {
        assert_eq!(
            parameters.get("insert_deduplication_token").map(String::as_str),
            Some("events/0:10-11:2,3:4-4:1"),
            "{parameters:?}"
        );
        assert_eq!(
            parameters.get("max_partitions_per_insert_block").map(String::as_str),
            Some("0"),
            "{parameters:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn no_token_for_18_16() -> anyhow::Result<()> {
    let inserts = insert_twice("18.16.1").await?;

    assert_eq!(inserts.len(), 2, "{inserts:?}");
    for parameters in &inserts {
        assert!(!parameters.contains_key("insert_deduplication_token"), "{parameters:?}");
    }
    Ok(())
}
