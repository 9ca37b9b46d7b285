//! The `silences` table: every silence with its expiry, kept in the shared
//! SQLite state file so silences survive a restart.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use seismo_proto::v1::Dimension;

use super::selector::SeriesSelector;
use super::sqlite::{StoreError, open_connection};

/// Origin of a silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceSource {
    /// `/mute` or a Mute button in Telegram.
    Command,
    /// The notifier's configuration; replaced on every start.
    Config,
}

impl SilenceSource {
    fn as_str(self) -> &'static str {
        match self {
            SilenceSource::Command => "command",
            SilenceSource::Config => "config",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "config" {
            SilenceSource::Config
        } else {
            SilenceSource::Command
        }
    }
}

/// One stored silence. It covers its selector's series from `created_at`
/// until `expires_at` (exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub selector: SeriesSelector,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Telegram user name or id, or `config`.
    pub created_by: String,
    pub source: SilenceSource,
}

/// A silence to create.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub selector: SeriesSelector,
    pub starts_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    pub source: SilenceSource,
}

/// The silences of one notifier, on its own SQLite connection.
pub struct SilenceStore {
    /// Held only for one statement at a time, never across an await.
    connection: Mutex<Connection>,
}

impl SilenceStore {
    /// Opens the state file at `path` and creates the `silences` table if
    /// it is missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = open_connection(path)?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS silences (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    metric_glob TEXT NOT NULL,
                    -- One `dimension=value` per line, sorted; empty for all slices.
                    slice TEXT NOT NULL,
                    created_at_ms INTEGER NOT NULL,
                    expires_at_ms INTEGER NOT NULL,
                    created_by TEXT NOT NULL,
                    source TEXT NOT NULL
                );
                CREATE INDEX IF NOT EXISTS silences_by_expiry ON silences (expires_at_ms);",
            )
            .map_err(StoreError::query("creating the silences table"))?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row,
        // because each statement is atomic in SQLite.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a silence and returns it with its id.
    pub fn add(&self, silence: NewSilence) -> Result<Silence, StoreError> {
        let connection = self.connection();
        connection
            .execute(
                "INSERT INTO silences (metric_glob, slice, created_at_ms, expires_at_ms, created_by, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    silence.selector.metric_glob,
                    encode_slice(&silence.selector.slice),
                    silence.starts_at.timestamp_millis(),
                    silence.expires_at.timestamp_millis(),
                    silence.created_by,
                    silence.source.as_str(),
                ],
            )
            .map_err(StoreError::query("inserting a silence"))?;

        Ok(Silence {
            id: connection.last_insert_rowid(),
            selector: silence.selector,
            created_at: silence.starts_at,
            expires_at: silence.expires_at,
            created_by: silence.created_by,
            source: silence.source,
        })
    }

    /// Returns the silences in force at `now`, soonest expiry first.
    pub fn active(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare_cached(
                "SELECT id, metric_glob, slice, created_at_ms, expires_at_ms, created_by, source
                 FROM silences WHERE created_at_ms <= ?1 AND expires_at_ms > ?1
                 ORDER BY expires_at_ms, id",
            )
            .map_err(StoreError::query("listing silences"))?;
        let rows = statement
            .query_map([now.timestamp_millis()], silence_from_row)
            .map_err(StoreError::query("listing silences"))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::query("reading a silence"))
    }

    /// Returns the first silence in force at `now` that covers the series.
    pub fn find_match(
        &self,
        metric: &str,
        slice: &[Dimension],
        now: DateTime<Utc>,
    ) -> Result<Option<Silence>, StoreError> {
        Ok(self
            .active(now)?
            .into_iter()
            .find(|silence| silence.selector.matches(metric, slice)))
    }

    /// Returns one silence by id, expired or not.
    pub fn get(&self, id: i64) -> Result<Option<Silence>, StoreError> {
        self.connection()
            .query_row(
                "SELECT id, metric_glob, slice, created_at_ms, expires_at_ms, created_by, source
                 FROM silences WHERE id = ?1",
                [id],
                silence_from_row,
            )
            .optional()
            .map_err(StoreError::query("reading a silence"))
    }

    /// Deletes a silence by id; returns whether it existed.
    pub fn remove(&self, id: i64) -> Result<bool, StoreError> {
        let deleted = self
            .connection()
            .execute("DELETE FROM silences WHERE id = ?1", [id])
            .map_err(StoreError::query("deleting a silence"))?;
        Ok(deleted > 0)
    }

    /// Deletes the silences in force at `now` whose selector is exactly
    /// `selector`; returns how many.
    pub fn remove_selector(&self, selector: &SeriesSelector, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let deleted = self
            .connection()
            .execute(
                "DELETE FROM silences WHERE metric_glob = ?1 AND slice = ?2 AND expires_at_ms > ?3",
                params![
                    selector.metric_glob,
                    encode_slice(&selector.slice),
                    now.timestamp_millis()
                ],
            )
            .map_err(StoreError::query("deleting silences"))?;
        Ok(deleted)
    }

    /// Replaces every configured silence with `silences`, in one
    /// transaction, so a restart with a changed configuration leaves no
    /// stale one behind. Command silences are kept.
    pub fn replace_config_silences(&self, silences: &[NewSilence]) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection
            .transaction()
            .map_err(StoreError::query("starting a transaction"))?;
        transaction
            .execute("DELETE FROM silences WHERE source = 'config'", [])
            .map_err(StoreError::query("deleting configured silences"))?;
        for silence in silences {
            transaction
                .execute(
                    "INSERT INTO silences (metric_glob, slice, created_at_ms, expires_at_ms, created_by, source)
                     VALUES (?1, ?2, ?3, ?4, 'config', 'config')",
                    params![
                        silence.selector.metric_glob,
                        encode_slice(&silence.selector.slice),
                        silence.starts_at.timestamp_millis(),
                        silence.expires_at.timestamp_millis(),
                    ],
                )
                .map_err(StoreError::query("inserting a configured silence"))?;
        }
        transaction
            .commit()
            .map_err(StoreError::query("committing configured silences"))
    }

    /// Deletes silences that expired before `cutoff`; returns how many.
    pub fn purge_expired(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.connection()
            .execute(
                "DELETE FROM silences WHERE expires_at_ms <= ?1",
                [cutoff.timestamp_millis()],
            )
            .map_err(StoreError::query("purging expired silences"))
    }
}

fn silence_from_row(row: &Row<'_>) -> rusqlite::Result<Silence> {
    let slice: String = row.get(2)?;
    let source: String = row.get(6)?;
    Ok(Silence {
        id: row.get(0)?,
        selector: SeriesSelector {
            metric_glob: row.get(1)?,
            slice: decode_slice(&slice),
        },
        created_at: from_millis(row.get(3)?),
        expires_at: from_millis(row.get(4)?),
        created_by: row.get(5)?,
        source: SilenceSource::parse(&source),
    })
}

pub(crate) fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn encode_slice(slice: &[(String, String)]) -> String {
    slice
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn decode_slice(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn store() -> (tempfile::TempDir, SilenceStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SilenceStore::open(&dir.path().join("notifier.sqlite3")).unwrap();
        (dir, store)
    }

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, hour, 0, 0).unwrap()
    }

    fn new_silence(selector: &str, from: DateTime<Utc>, hours: i64) -> NewSilence {
        NewSilence {
            selector: SeriesSelector::parse(selector).unwrap(),
            starts_at: from,
            expires_at: from + TimeDelta::hours(hours),
            created_by: "alice".to_string(),
            source: SilenceSource::Command,
        }
    }

    fn ios() -> Vec<Dimension> {
        vec![Dimension {
            name: "os".to_string(),
            value: "iOS".to_string(),
        }]
    }

    #[test]
    fn silence_expires_at_its_end() {
        let (_dir, store) = store();
        store.add(new_silence("views", at(10), 2)).unwrap();

        assert!(store.find_match("views", &[], at(9)).unwrap().is_none());
        assert!(store.find_match("views", &[], at(10)).unwrap().is_some());
        assert!(store.find_match("views", &[], at(11)).unwrap().is_some());
        assert!(store.find_match("views", &[], at(12)).unwrap().is_none());
        assert!(store.active(at(12)).unwrap().is_empty());
    }

    #[test]
    fn silence_matches_glob_and_slice() {
        let (_dir, store) = store();
        store.add(new_silence("like*{os=iOS}", at(10), 1)).unwrap();

        assert!(store.find_match("likes", &ios(), at(10)).unwrap().is_some());
        assert!(store.find_match("likes", &[], at(10)).unwrap().is_none());
        assert!(store.find_match("views", &ios(), at(10)).unwrap().is_none());
    }

    #[test]
    fn silences_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("notifier.sqlite3");
        let id = SilenceStore::open(&path)
            .unwrap()
            .add(new_silence("views{os=iOS}", at(10), 5))
            .unwrap()
            .id;

        let reopened = SilenceStore::open(&path).unwrap();
        let silence = reopened.get(id).unwrap().expect("the silence survives a reopen");

        assert_eq!(silence.selector.to_string(), "views{os=iOS}");
        assert_eq!(silence.expires_at, at(15));
        assert_eq!(silence.created_by, "alice");
    }

    #[test]
    fn silence_removal_by_id_and_selector() {
        let (_dir, store) = store();
        let first = store.add(new_silence("views", at(10), 1)).unwrap();
        store.add(new_silence("views", at(10), 3)).unwrap();
        store.add(new_silence("likes", at(10), 3)).unwrap();

        assert!(store.remove(first.id).unwrap());
        assert!(!store.remove(first.id).unwrap());
        let removed = store
            .remove_selector(&SeriesSelector::parse("views").unwrap(), at(10))
            .unwrap();

        assert_eq!(removed, 1);
        let left: Vec<String> = store
            .active(at(10))
            .unwrap()
            .iter()
            .map(|s| s.selector.to_string())
            .collect();
        assert_eq!(left, vec!["likes"]);
    }

    #[test]
    fn config_silences_are_replaced() {
        let (_dir, store) = store();
        store.add(new_silence("views", at(10), 1)).unwrap();
        store
            .replace_config_silences(&[new_silence("likes", at(10), 1)])
            .unwrap();
        store.replace_config_silences(&[new_silence("ctr", at(10), 1)]).unwrap();

        let mut left: Vec<(String, SilenceSource)> = store
            .active(at(10))
            .unwrap()
            .into_iter()
            .map(|silence| (silence.selector.to_string(), silence.source))
            .collect();
        left.sort_by(|a, b| a.0.cmp(&b.0));

        assert_eq!(
            left,
            vec![
                ("ctr".to_string(), SilenceSource::Config),
                ("views".to_string(), SilenceSource::Command)
            ]
        );
    }

    #[test]
    fn expired_silences_are_purged() {
        let (_dir, store) = store();
        store.add(new_silence("views", at(1), 1)).unwrap();
        store.add(new_silence("likes", at(1), 10)).unwrap();

        assert_eq!(store.purge_expired(at(5)).unwrap(), 1);
        assert_eq!(store.active(at(5)).unwrap().len(), 1);
    }
}
