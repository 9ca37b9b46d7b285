use crate::deduplication_token::deduplication_token;
use crate::row::BatchRow;
use crate::server_version::ServerFeatures;

/// Client settings for a server with given features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Use the crate's row validation (`RowBinaryWithNamesAndTypes`);
    /// otherwise plain `RowBinary`, where a schema mismatch shows only as
    /// `NotEnoughData` or as wrong values.
    pub validation: bool,
    /// Settings sent with every insert.
    pub insert_settings: Vec<(&'static str, &'static str)>,
    /// `async_insert` was requested but the server does not support it.
    pub async_insert_unsupported: bool,
    /// Send an `insert_deduplication_token` with each insert, derived from
    /// the batch's Kafka positions (see [`Self::batch_settings`]).
    pub deduplication_token: bool,
}

impl ClientOptions {
    pub fn for_server(features: &ServerFeatures, async_insert_requested: bool) -> ClientOptions {
        let mut insert_settings = Vec::new();

        if features.partition_limit_setting {
            // The table has one partition per day, so a batch replaying
            // months of history touches more than the default limit of 100
            // partitions and would be rejected on every retry. Batch size
            // already bounds the parts one insert creates.
            insert_settings.push(("max_partitions_per_insert_block", "0"));
        }

        let async_insert = async_insert_requested && features.async_insert;
        if async_insert {
            // Waiting keeps the acknowledgement meaning "stored", which the
            // offset commits rely on.
            insert_settings.push(("async_insert", "1"));
            insert_settings.push(("wait_for_async_insert", "1"));
        }

        ClientOptions {
            validation: features.row_validation,
            insert_settings,
            async_insert_unsupported: async_insert_requested && !features.async_insert,
            deduplication_token: features.deduplication_token,
        }
    }

    /// Returns the settings of the insert of `rows` consumed from `topic`:
    /// [`Self::insert_settings`] plus, on servers from 22.2 on, the batch's
    /// `insert_deduplication_token`. With the token, a server that stored an
    /// attempt whose acknowledgement was lost drops the retry. That needs a
    /// Replicated table, or a table whose `non_replicated_deduplication_window`
    /// is above 0. Otherwise the server ignores the token, and the table's
    /// ReplacingMergeTree merges the copies later, as on older servers.
    pub fn batch_settings(&self, topic: &str, rows: &[BatchRow]) -> Vec<(&'static str, String)> {
        let mut settings: Vec<(&'static str, String)> = self
            .insert_settings
            .iter()
            .map(|&(name, value)| (name, value.to_string()))
            .collect();
        if self.deduplication_token {
            settings.push(("insert_deduplication_token", deduplication_token(topic, rows)));
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use seismo_events::Event;

    use super::*;
    use crate::server_version::ServerVersion;

    fn features(major: u32, minor: u32, patch: u32) -> ServerFeatures {
        ServerFeatures::for_version(ServerVersion::new(major, minor, patch))
    }

    /// Options for the server whose `SELECT version()` returned `text`.
    fn options_for_version_text(text: &str) -> ClientOptions {
        let version = ServerVersion::parse(text).expect("valid version text");
        ClientOptions::for_server(&ServerFeatures::for_version(version), false)
    }

    fn rows() -> Vec<BatchRow> {
        let event =
            Event::parse(br#"{"event_time": 1714564800000, "event": "view", "user_id": "u"}"#).expect("valid event");
        [(0, 10), (0, 11), (3, 4)]
            .into_iter()
            .map(|(partition, offset)| BatchRow {
                event: event.clone(),
                partition,
                offset,
            })
            .collect()
    }

    #[test]
    fn batch_settings_for_18_16_have_no_token() {
        let options = options_for_version_text("18.16.1");
        assert!(!options.deduplication_token);
        assert_eq!(options.batch_settings("events", &rows()), []);
    }

    #[test]
    fn batch_settings_for_23_8_send_token() {
        let options = options_for_version_text("23.8.2.7");
        assert!(options.deduplication_token);
        assert_eq!(
            options.batch_settings("events", &rows()),
            [
                ("max_partitions_per_insert_block", "0".to_string()),
                ("insert_deduplication_token", "events/0:10-11:2,3:4-4:1".to_string()),
            ]
        );
    }

    #[test]
    fn batch_settings_for_22_1_have_no_token() {
        let options = options_for_version_text("22.1.3.7");
        assert_eq!(
            options.batch_settings("events", &rows()),
            [("max_partitions_per_insert_block", "0".to_string())]
        );
    }

    #[test]
    fn options_for_18_16_are_plain() {
        let options = ClientOptions::for_server(&features(18, 16, 1), false);
        assert!(!options.validation);
        assert_eq!(options.insert_settings, []);
        assert!(!options.async_insert_unsupported);
    }

    #[test]
    fn options_for_18_16_reject_async_insert() {
        let options = ClientOptions::for_server(&features(18, 16, 1), true);
        assert_eq!(options.insert_settings, []);
        assert!(options.async_insert_unsupported);
    }

    #[test]
    fn options_for_24_8_validate() {
        let options = ClientOptions::for_server(&features(24, 8, 4), false);
        assert!(options.validation);
        assert_eq!(options.insert_settings, [("max_partitions_per_insert_block", "0")]);
    }

    #[test]
    fn options_for_24_8_with_async_insert_wait() {
        let options = ClientOptions::for_server(&features(24, 8, 4), true);
        assert!(options.insert_settings.contains(&("async_insert", "1")));
        assert!(options.insert_settings.contains(&("wait_for_async_insert", "1")));
        assert!(!options.async_insert_unsupported);
    }

    #[test]
    fn options_for_21_8_have_no_async_insert() {
        let options = ClientOptions::for_server(&features(21, 8, 0), true);
        assert!(!options.validation);
        assert_eq!(options.insert_settings, [("max_partitions_per_insert_block", "0")]);
        assert!(options.async_insert_unsupported);
    }
}
