CREATE DATABASE IF NOT EXISTS `seismo`;

CREATE TABLE IF NOT EXISTS `seismo`.`events`
(
    `event_time` DateTime64(3, 'UTC'),
    `event` LowCardinality(String),
    `user_id` String,
    `event_id` Nullable(String),
    `post_id` Nullable(UInt64),
    `receiver_id` Nullable(String),
    `os` LowCardinality(Nullable(String)),
    `country` LowCardinality(Nullable(String)),
    `city` LowCardinality(Nullable(String)),
    `source` LowCardinality(Nullable(String)),
    `gender` LowCardinality(Nullable(String)),
    `age` Nullable(UInt16),
    `exp_group` LowCardinality(Nullable(String)),
    `value` Nullable(Float64),
    `extra` String,
    `kafka_partition` Int32,
    `kafka_offset` Int64,
    `inserted_at` DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event, event_time, kafka_partition, kafka_offset);
