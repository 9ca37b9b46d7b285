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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_version::ServerVersion;

    fn features(major: u32, minor: u32, patch: u32) -> ServerFeatures {
        ServerFeatures::for_version(ServerVersion::new(major, minor, patch))
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
