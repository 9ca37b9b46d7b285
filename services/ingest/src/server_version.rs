use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A ClickHouse server version as `SELECT version()` returns it, e.g.
/// `18.16.1` or `24.8.4.13`. Only the first three components take part in
/// comparisons; a fourth (the build number) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// Reason a version text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid ClickHouse version {text:?}: expected numbers separated by dots, e.g. \"24.8.4.13\"")]
pub struct VersionParseError {
    pub text: String,
}

impl ServerVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ServerVersion { major, minor, patch }
    }

    /// Parses `major.minor[.patch[.build]]`, ignoring a trailing non-numeric
    /// suffix of the last part such as `-testing` or `+lts`.
    pub fn parse(text: &str) -> Result<ServerVersion, VersionParseError> {
        let error = || VersionParseError { text: text.to_string() };

        let mut numbers = text.trim().split('.').map(leading_number);
        let major = numbers.next().flatten().ok_or_else(error)?;
        let minor = numbers.next().flatten().ok_or_else(error)?;
        let patch = match numbers.next() {
            None => 0,
            Some(number) => number.ok_or_else(error)?,
        };
        Ok(ServerVersion { major, minor, patch })
    }
}

/// Parses the digits at the start of one dot-separated component.
fn leading_number(component: &str) -> Option<u32> {
    let end = component.find(|c: char| !c.is_ascii_digit()).unwrap_or(component.len());
    component[..end].parse().ok()
}

impl FromStr for ServerVersion {
    type Err = VersionParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ServerVersion::parse(text)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// First release where `LowCardinality` needs no experimental setting: 19.3
/// removed `allow_experimental_low_cardinality_type` and declared the type
/// production ready (ClickHouse changelog, release 19.3.3). On 18.16 creating
/// such a column fails unless that setting is on.
pub const LOW_CARDINALITY_SINCE: ServerVersion = ServerVersion::new(19, 3, 0);

/// First release with the `max_partitions_per_insert_block` setting
/// (ClickHouse changelog, release 19.5), which rejects an insert touching
/// more than 100 partitions by default.
pub const PARTITION_LIMIT_SINCE: ServerVersion = ServerVersion::new(19, 5, 0);

/// First release with `DateTime64` (ClickHouse changelog, release 20.1).
pub const DATETIME64_SINCE: ServerVersion = ServerVersion::new(20, 1, 0);

/// First release with the `async_insert` setting (ClickHouse changelog,
/// release 21.11).
pub const ASYNC_INSERT_SINCE: ServerVersion = ServerVersion::new(21, 11, 0);

/// First release with the `insert_deduplication_token` setting (ClickHouse
/// changelog, release 22.2.1.2139: "The setting allows a user to provide
/// own deduplication semantic in MergeTree/ReplicatedMergeTree").
pub const DEDUPLICATION_TOKEN_SINCE: ServerVersion = ServerVersion::new(22, 2, 0);

/// Oldest server on which the clickhouse crate's row validation is enabled.
/// Validation reads `RowBinaryWithNamesAndTypes` and sends
/// `describe_include_subcolumns`; 18.16 rejects both. The crate promises to
/// support only server releases that still get security fixes.
// NOTE: 24.8 (an LTS release) is a conservative choice, not the measured
// first working version; only 18.16 was available to test against.
pub const ROW_VALIDATION_SINCE: ServerVersion = ServerVersion::new(24, 8, 0);

/// Server capabilities that change the table layout or the client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFeatures {
    pub version: ServerVersion,
    /// `LowCardinality` columns can be created without experimental settings.
    pub low_cardinality: bool,
    /// `DateTime64(3)` can store `event_time` with its milliseconds. Older
    /// servers get a `DateTime` plus an `event_time_ms` column.
    pub datetime64: bool,
    /// The server accepts the `max_partitions_per_insert_block` setting.
    pub partition_limit_setting: bool,
    /// The server accepts the `async_insert` and `wait_for_async_insert`
    /// settings.
    pub async_insert: bool,
    /// The server accepts the `insert_deduplication_token` setting.
    pub deduplication_token: bool,
    /// The clickhouse crate may validate rows against the table schema.
    pub row_validation: bool,
}

impl ServerFeatures {
    pub fn for_version(version: ServerVersion) -> ServerFeatures {
        ServerFeatures {
            version,
            low_cardinality: version >= LOW_CARDINALITY_SINCE,
            datetime64: version >= DATETIME64_SINCE,
            partition_limit_setting: version >= PARTITION_LIMIT_SINCE,
            async_insert: version >= ASYNC_INSERT_SINCE,
            deduplication_token: version >= DEDUPLICATION_TOKEN_SINCE,
            row_validation: version >= ROW_VALIDATION_SINCE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_three_components() {
        assert_eq!(ServerVersion::parse("18.16.1"), Ok(ServerVersion::new(18, 16, 1)));
    }

    #[test]
    fn parse_ignores_build_number() {
        assert_eq!(ServerVersion::parse("24.8.4.13"), Ok(ServerVersion::new(24, 8, 4)));
    }

    #[test]
    fn parse_two_components_and_suffix() {
        assert_eq!(ServerVersion::parse("25.3"), Ok(ServerVersion::new(25, 3, 0)));
        assert_eq!(
            ServerVersion::parse(" 23.8.2.7-lts\n"),
            Ok(ServerVersion::new(23, 8, 2))
        );
    }

    #[test]
    fn parse_rejects_garbage() {
        for text in ["", "abc", "24", "24.x", ".8.1", "24..1"] {
            assert!(ServerVersion::parse(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn versions_order_numerically() {
        assert!(ServerVersion::new(19, 10, 0) > ServerVersion::new(19, 3, 0));
        assert!(ServerVersion::new(20, 1, 0) > ServerVersion::new(19, 17, 9));
    }

    #[test]
    fn features_of_18_16() {
        let features = ServerFeatures::for_version(ServerVersion::new(18, 16, 1));
        assert!(!features.low_cardinality);
        assert!(!features.datetime64);
        assert!(!features.partition_limit_setting);
        assert!(!features.async_insert);
        assert!(!features.deduplication_token);
        assert!(!features.row_validation);
    }

    #[test]
    fn features_of_24_8() {
        let features = ServerFeatures::for_version(ServerVersion::new(24, 8, 4));
        assert!(features.low_cardinality);
        assert!(features.datetime64);
        assert!(features.partition_limit_setting);
        assert!(features.async_insert);
        assert!(features.deduplication_token);
        assert!(features.row_validation);
    }

    #[test]
    fn features_switch_at_their_first_release() {
        let before = ServerFeatures::for_version(ServerVersion::new(19, 2, 9));
        let at = ServerFeatures::for_version(ServerVersion::new(19, 3, 0));
        assert!(!before.low_cardinality);
        assert!(at.low_cardinality);

        let before = ServerFeatures::for_version(ServerVersion::new(19, 17, 0));
        let at = ServerFeatures::for_version(ServerVersion::new(20, 1, 2));
        assert!(!before.datetime64);
        assert!(at.datetime64);

        let before = ServerFeatures::for_version(ServerVersion::new(21, 10, 5));
        let at = ServerFeatures::for_version(ServerVersion::new(21, 11, 0));
        assert!(!before.async_insert);
        assert!(at.async_insert);

        let before = ServerFeatures::for_version(ServerVersion::new(22, 1, 4));
        let at = ServerFeatures::for_version(ServerVersion::new(22, 2, 1));
        assert!(!before.deduplication_token);
        assert!(at.deduplication_token);
    }
}
