//! The `acknowledgements` table (who acknowledged which alert) and the
//! `alert_series` table (the series behind each alert id), so that a button
//! press on an alert can name its series after a restart.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use seismo_proto::v1::Dimension;

use crate::silence::sqlite::{StoreError, open_connection};
use crate::silence::store::{decode_slice, encode_slice, from_millis};

/// Alert ids older than this are forgotten, so their buttons no longer mute.
const SERIES_RETENTION: TimeDelta = TimeDelta::days(30);

/// One acknowledgement of an alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledgement {
    pub anomaly_id: String,
    pub user_id: u64,
    /// `@username`, or the first name when the user has none.
    pub user_name: String,
    pub acknowledged_at: DateTime<Utc>,
}

/// The result of [`AcknowledgementStore::acknowledge`].
#[derive(Debug, Clone, PartialEq)]
pub enum AcknowledgeOutcome {
    Recorded,
    /// The episode was acknowledged before; the earlier one is kept.
    AlreadyAcknowledged(Acknowledgement),
}

/// Acknowledgements and the alert id index, on their own SQLite connection.
pub struct AcknowledgementStore {
    /// Held only for one statement at a time, never across an await.
    connection: Mutex<Connection>,
}

impl AcknowledgementStore {
    /// Opens the state file at `path` and creates the tables if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = open_connection(path)?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS acknowledgements (
                    anomaly_id TEXT PRIMARY KEY,
                    user_id INTEGER NOT NULL,
                    user_name TEXT NOT NULL,
                    acknowledged_at_ms INTEGER NOT NULL
                );
                -- The next getUpdates offset, one row.
                CREATE TABLE IF NOT EXISTS bot_update_offset (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    next_offset INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS alert_series (
                    anomaly_id TEXT PRIMARY KEY,
                    metric TEXT NOT NULL,
                    -- One `dimension=value` per line, sorted.
                    slice TEXT NOT NULL,
                    seen_at_ms INTEGER NOT NULL
                );",
            )
            .map_err(StoreError::query("creating the acknowledgement tables"))?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Each statement is atomic in SQLite, so a panicked holder leaves
        // no half-written row.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the first acknowledgement of an episode.
    pub fn acknowledge(&self, acknowledgement: &Acknowledgement) -> Result<AcknowledgeOutcome, StoreError> {
        let inserted = self
            .connection()
            .execute(
                "INSERT OR IGNORE INTO acknowledgements (anomaly_id, user_id, user_name, acknowledged_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    acknowledgement.anomaly_id,
                    acknowledgement.user_id as i64,
                    acknowledgement.user_name,
                    acknowledgement.acknowledged_at.timestamp_millis(),
                ],
            )
            .map_err(StoreError::query("inserting an acknowledgement"))?;
        if inserted > 0 {
            return Ok(AcknowledgeOutcome::Recorded);
        }

        match self.acknowledgement(&acknowledgement.anomaly_id)? {
            Some(earlier) => Ok(AcknowledgeOutcome::AlreadyAcknowledged(earlier)),
            // Only a concurrent delete gets here; the table has none.
            None => Ok(AcknowledgeOutcome::Recorded),
        }
    }

    /// Returns the acknowledgement of an episode, if any.
    pub fn acknowledgement(&self, anomaly_id: &str) -> Result<Option<Acknowledgement>, StoreError> {
        self.connection()
            .query_row(
                "SELECT anomaly_id, user_id, user_name, acknowledged_at_ms FROM acknowledgements WHERE anomaly_id = ?1",
                [anomaly_id],
                |row| {
                    Ok(Acknowledgement {
                        anomaly_id: row.get(0)?,
                        user_id: row.get::<_, i64>(1)? as u64,
                        user_name: row.get(2)?,
                        acknowledged_at: from_millis(row.get(3)?),
                    })
                },
            )
            .optional()
            .map_err(StoreError::query("reading an acknowledgement"))
    }

    /// Returns the getUpdates offset stored by [`Self::store_update_offset`],
    /// 0 when none is stored.
    pub fn update_offset(&self) -> Result<i32, StoreError> {
        self.connection()
            .query_row("SELECT next_offset FROM bot_update_offset WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(StoreError::query("reading the bot update offset"))
    }

    /// Stores the offset of the next getUpdates request, so that a restarted
    /// notifier does not handle an update twice.
    pub fn store_update_offset(&self, next_offset: i32) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "INSERT INTO bot_update_offset (id, next_offset) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET next_offset = excluded.next_offset",
                [next_offset],
            )
            .map(|_| ())
            .map_err(StoreError::query("storing the bot update offset"))
    }

    /// Records which series an alert id belongs to, and deletes the ids not
    /// seen for [`SERIES_RETENTION`].
    pub fn remember_series(
        &self,
        anomaly_id: &str,
        metric: &str,
        slice: &[Dimension],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut pairs: Vec<(String, String)> = slice
            .iter()
            .map(|dimension| (dimension.name.clone(), dimension.value.clone()))
            .collect();
        pairs.sort();
        let connection = self.connection();
        connection
            .execute(
                "INSERT INTO alert_series (anomaly_id, metric, slice, seen_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (anomaly_id) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
                params![anomaly_id, metric, encode_slice(&pairs), now.timestamp_millis()],
            )
            .map_err(StoreError::query("recording an alert's series"))?;
        connection
            .execute(
                "DELETE FROM alert_series WHERE seen_at_ms < ?1",
                [(now - SERIES_RETENTION).timestamp_millis()],
            )
            .map_err(StoreError::query("forgetting old alert ids"))?;
        Ok(())
    }

    /// Returns the metric and slice of an alert id recorded by
    /// [`Self::remember_series`].
    pub fn series_of(&self, anomaly_id: &str) -> Result<Option<(String, Vec<Dimension>)>, StoreError> {
        self.connection()
            .query_row(
                "SELECT metric, slice FROM alert_series WHERE anomaly_id = ?1",
                [anomaly_id],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(StoreError::query("reading an alert's series"))
            .map(|found| {
                found.map(|(metric, slice)| {
                    let slice = decode_slice(&slice)
                        .into_iter()
                        .map(|(name, value)| Dimension { name, value })
                        .collect();
                    (metric, slice)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn store() -> (tempfile::TempDir, AcknowledgementStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = AcknowledgementStore::open(&dir.path().join("notifier.sqlite3")).unwrap();
        (dir, store)
    }

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, hour, 0, 0).unwrap()
    }

    #[test]
    fn first_acknowledgement_wins() {
        let (_dir, store) = store();
        let first = Acknowledgement {
            anomaly_id: "a1".to_string(),
            user_id: 7,
            user_name: "@alice".to_string(),
            acknowledged_at: at(10),
        };
        let second = Acknowledgement {
            user_id: 8,
            user_name: "@bob".to_string(),
            acknowledged_at: at(11),
            ..first.clone()
        };

        assert_eq!(store.acknowledge(&first).unwrap(), AcknowledgeOutcome::Recorded);
        assert_eq!(
            store.acknowledge(&second).unwrap(),
            AcknowledgeOutcome::AlreadyAcknowledged(first.clone())
        );
        assert_eq!(store.acknowledgement("a1").unwrap(), Some(first));
        assert_eq!(store.acknowledgement("a2").unwrap(), None);
    }

    #[test]
    fn update_offset_round_trips() {
        let (_dir, store) = store();

        assert_eq!(store.update_offset().unwrap(), 0);
        store.store_update_offset(42).unwrap();
        store.store_update_offset(43).unwrap();
        assert_eq!(store.update_offset().unwrap(), 43);
    }

    #[test]
    fn alert_series_round_trip_and_expire() {
        let (_dir, store) = store();
        let slice = vec![Dimension {
            name: "os".to_string(),
            value: "iOS".to_string(),
        }];
        store.remember_series("old", "likes", &[], at(0)).unwrap();
        store
            .remember_series("a1", "views", &slice, at(10) + TimeDelta::days(31))
            .unwrap();

        assert_eq!(store.series_of("a1").unwrap(), Some(("views".to_string(), slice)));
        assert_eq!(store.series_of("old").unwrap(), None);
    }
}
