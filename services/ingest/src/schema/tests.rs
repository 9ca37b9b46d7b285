use super::*;
use crate::server_version::{ServerFeatures, ServerVersion};

fn features(major: u32, minor: u32, patch: u32) -> ServerFeatures {
    ServerFeatures::for_version(ServerVersion::new(major, minor, patch))
}

/// The script a deploy file must contain for `features` and the default names.
fn deploy_script(features: &ServerFeatures) -> String {
    format!(
        "{};\n\n{};\n",
        create_database_sql("seismo"),
        create_table_sql(features, "seismo", "events")
    )
}

fn column_type<'a>(columns: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    columns
        .iter()
        .find(|(column, _)| *column == name)
        .map(|(_, column_type)| column_type.as_str())
}

#[test]
fn ddl_for_18_16_avoids_new_types() {
    let sql = create_table_sql(&features(18, 16, 1), "seismo", "events");
    assert!(!sql.contains("LowCardinality"), "{sql}");
    assert!(!sql.contains("DateTime64"), "{sql}");
    assert!(sql.contains("`event_time` DateTime('UTC')"), "{sql}");
    assert!(sql.contains("`event_time_ms` UInt16"), "{sql}");
    assert!(sql.contains("`os` Nullable(String)"), "{sql}");
}

#[test]
fn ddl_for_24_8_uses_new_types() {
    let sql = create_table_sql(&features(24, 8, 4), "seismo", "events");
    assert!(sql.contains("`event_time` DateTime64(3, 'UTC')"), "{sql}");
    assert!(!sql.contains("event_time_ms"), "{sql}");
    assert!(sql.contains("`event` LowCardinality(String)"), "{sql}");
    assert!(sql.contains("`os` LowCardinality(Nullable(String))"), "{sql}");
}

#[test]
fn ddl_partitions_by_day_and_dedups_by_offset() {
    for version in [features(18, 16, 1), features(24, 8, 4)] {
        let sql = create_table_sql(&version, "analytics", "raw_events");
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS `analytics`.`raw_events`"),
            "{sql}"
        );
        assert!(sql.contains("PARTITION BY toYYYYMMDD(event_time)"), "{sql}");
        assert!(sql.contains("ENGINE = ReplacingMergeTree\n"), "{sql}");
        assert!(
            sql.contains("ORDER BY (event, event_time, kafka_partition, kafka_offset)"),
            "{sql}"
        );
    }
}

#[test]
fn columns_cover_every_event_field() {
    let event_fields = [
        "event_time",
        "event",
        "user_id",
        "event_id",
        "post_id",
        "receiver_id",
        "os",
        "country",
        "city",
        "source",
        "gender",
        "age",
        "exp_group",
        "value",
        "extra",
    ];
    for version in [features(18, 16, 1), features(19, 3, 0), features(24, 8, 4)] {
        let columns = table_columns(&version);
        for field in event_fields {
            assert!(
                column_type(&columns, field).is_some(),
                "{field} missing for {}",
                version.version
            );
        }
        assert_eq!(column_type(&columns, "kafka_partition"), Some("Int32"));
        assert_eq!(column_type(&columns, "kafka_offset"), Some("Int64"));
        assert_eq!(
            column_type(&columns, "inserted_at"),
            Some("DateTime('UTC') DEFAULT now()")
        );
    }
}

#[test]
fn columns_for_19_3_mix_generations() {
    let columns = table_columns(&features(19, 3, 0));
    assert_eq!(column_type(&columns, "event"), Some("LowCardinality(String)"));
    assert_eq!(column_type(&columns, "event_time"), Some("DateTime('UTC')"));
    assert_eq!(column_type(&columns, "event_time_ms"), Some("UInt16"));
}

#[test]
fn deploy_file_before_19_3_matches() {
    let file = include_str!("../../../../deploy/clickhouse/events-before-19.3.sql");
    assert_eq!(file, deploy_script(&features(18, 16, 1)));
}

#[test]
fn deploy_file_19_3_to_20_1_matches() {
    let file = include_str!("../../../../deploy/clickhouse/events-19.3-to-20.1.sql");
    assert_eq!(file, deploy_script(&features(19, 3, 0)));
}

#[test]
fn deploy_file_from_20_1_matches() {
    let file = include_str!("../../../../deploy/clickhouse/events-20.1-and-later.sql");
    assert_eq!(file, deploy_script(&features(24, 8, 4)));
}
