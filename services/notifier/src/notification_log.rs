//! The persisted notification log and stream cursors, in one SQLite file.
//!
//! Every state change is written as `pending`, once per chat, before it is
//! sent, and the detector's stream cursor is advanced in the same
//! transaction. A notifier that stops at any point therefore finds on start
//! what it still has to send, and the detector replays only what came after
//! the rows it has written. SQLite is local and transactional, so alerting
//! depends on no other service being up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use seismo_proto::v1::{AnomalyEvent, AnomalyState};

/// Name of the SQLite file inside the state directory. Other parts of the
/// notifier keep their own tables in the same file.
pub const STATE_FILE_NAME: &str = "notifier.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notification_log (
    detector TEXT NOT NULL,
    anomaly_id TEXT NOT NULL,
    state INTEGER NOT NULL,
    -- An escalation's new severity, as an episode escalates once per
    -- severity; 0 for a firing or a resolution, which happen once.
    severity INTEGER NOT NULL DEFAULT 0,
    chat TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    -- The AnomalyEvent in protobuf encoding, to send it again after a restart.
    event BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'suppressed', 'failed')),
    reason TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    -- Messages sent for this row: 1 after the first send, more after repeats.
    notifications INTEGER NOT NULL DEFAULT 0,
    last_notified_at_ms INTEGER,
    PRIMARY KEY (detector, anomaly_id, state, severity, chat)
);
CREATE INDEX IF NOT EXISTS notification_log_status ON notification_log (status);
CREATE TABLE IF NOT EXISTS stream_cursor (
    detector TEXT PRIMARY KEY,
    after_sequence INTEGER NOT NULL,
    -- The detector process that numbered after_sequence; 0 when unknown.
    stream_epoch INTEGER NOT NULL DEFAULT 0,
    updated_at_ms INTEGER NOT NULL
);
";

/// Delivery status of one state change in one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStatus {
    /// Written before the send; still pending after a crash means "send again".
    Pending,
    Sent,
    /// A [`crate::SendGate`] held it back (silence, quiet hours).
    Suppressed,
    /// The sink gave up on it.
    Failed,
}

impl LogStatus {
    fn as_str(self) -> &'static str {
        match self {
            LogStatus::Pending => "pending",
            LogStatus::Sent => "sent",
            LogStatus::Suppressed => "suppressed",
            LogStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(LogStatus::Pending),
            "sent" => Some(LogStatus::Sent),
            "suppressed" => Some(LogStatus::Suppressed),
            "failed" => Some(LogStatus::Failed),
            _ => None,
        }
    }
}

/// Identity of one log row. The detector address is part of it because two
/// detectors may use the same episode ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    pub detector: String,
    pub anomaly_id: String,
    pub state: i32,
    /// An escalation's new severity; 0 for a firing or a resolution.
    pub severity: i32,
    /// The chat as configured (`-1001234567890`, `@alerts`), or `console`.
    pub chat: String,
}

impl LogKey {
    /// Returns the key of `event`'s row for `detector` and `chat`.
    pub fn of(detector: &str, event: &AnomalyEvent, chat: &str) -> LogKey {
        LogKey {
            detector: detector.to_string(),
            anomaly_id: event.id.clone(),
            state: event.state,
            severity: escalation_severity(event),
            chat: chat.to_string(),
        }
    }
}

/// Returns an escalation's severity, which distinguishes the escalations of
/// one episode, and 0 for other state changes.
pub fn escalation_severity(event: &AnomalyEvent) -> i32 {
    if event.state == AnomalyState::Escalated as i32 {
        event.severity
    } else {
        0
    }
}

/// Resume position of a detector's stream: the last change processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamCursor {
    pub after_sequence: u64,
    /// `stream_epoch` of that change; 0 when the detector sends none.
    pub stream_epoch: u64,
}

/// A row that was written but not finished before the last stop.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub key: LogKey,
    pub event: AnomalyEvent,
}

/// A firing whose episode has not resolved, for repeat notifications.
#[derive(Debug, Clone)]
pub struct FiringEntry {
    pub key: LogKey,
    pub event: AnomalyEvent,
    pub last_notified_at_ms: i64,
}

/// Failure to open, read or write the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("creating the state directory {path} failed: {source}; create it or pass another --state-dir")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("notification log {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("notification log row {key:?} has an undecodable event: {source}")]
    Decode { key: LogKey, source: prost::DecodeError },
}

/// The notification log and cursor tables. Calls block on SQLite (an fsync
/// per commit), so async code runs them through `spawn_blocking`.
#[derive(Debug)]
pub struct NotificationLog {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl NotificationLog {
    /// Opens or creates `state_dir/notifier.sqlite3` in WAL mode with full
    /// synchronisation, so that a committed row survives a crash or power loss.
    pub fn open(state_dir: &Path) -> Result<Arc<Self>, LogError> {
        std::fs::create_dir_all(state_dir).map_err(|source| LogError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(STATE_FILE_NAME);
        let sqlite = |source| LogError::Sqlite {
            path: path.clone(),
            source,
        };

        let connection = Connection::open(&path).map_err(sqlite)?;
        // Other connections (silences, acknowledgements) write to the same file.
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        connection.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        add_severity_column(&connection).map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;

        Ok(Arc::new(Self {
            path,
            connection: Mutex::new(connection),
        }))
    }

    /// Opens a log that lives in memory only, for a notifier without a state
    /// directory: it still skips repeats, but nothing survives a restart.
    pub fn open_in_memory() -> Result<Arc<Self>, LogError> {
        let path = PathBuf::from(":memory:");
        let sqlite = |source| LogError::Sqlite {
            path: path.clone(),
            source,
        };
        let connection = Connection::open_in_memory().map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;
        Ok(Arc::new(Self {
            path,
            connection: Mutex::new(connection),
        }))
    }

    /// Path of the SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the stored cursor of every detector.
    pub fn cursors(&self) -> Result<HashMap<String, StreamCursor>, LogError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT detector, after_sequence, stream_epoch FROM stream_cursor")
            .map_err(|source| self.sqlite(source))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            })
            .map_err(|source| self.sqlite(source))?;

        let mut cursors = HashMap::new();
        for row in rows {
            let (detector, sequence, epoch) = row.map_err(|source| self.sqlite(source))?;
            // SQLite stores u64 values as their i64 bit pattern.
            let cursor = StreamCursor {
                after_sequence: sequence as u64,
                stream_epoch: epoch as u64,
            };
            cursors.insert(detector, cursor);
        }
        Ok(cursors)
    }

    /// Writes a `pending` row per chat for `event` and stores its sequence
    /// and stream epoch as `detector`'s cursor, in one transaction. Returns, per chat, whether
    /// the row is new; an existing row (sent before a restart, or pending and
    /// already queued) is left as it is.
    pub fn record_received(
        &self,
        detector: &str,
        event: &AnomalyEvent,
        chats: &[String],
        now_ms: i64,
    ) -> Result<Vec<bool>, LogError> {
        let encoded = event.encode_to_vec();
        let mut connection = self.lock();
        let transaction = connection.transaction().map_err(|source| self.sqlite(source))?;

        let mut inserted = Vec::with_capacity(chats.len());
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO notification_log
                     (detector, anomaly_id, state, severity, chat, sequence, event, status, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?8, ?4, ?5, ?6, 'pending', ?7, ?7)",
                )
                .map_err(|source| self.sqlite(source))?;
            for chat in chats {
                let changed = insert
                    .execute(params![
                        detector,
                        event.id,
                        event.state,
                        chat,
                        event.sequence as i64,
                        encoded,
                        now_ms,
                        escalation_severity(event)
                    ])
                    .map_err(|source| self.sqlite(source))?;
                inserted.push(changed == 1);
            }
        }
        transaction
            .execute(
                "INSERT INTO stream_cursor (detector, after_sequence, stream_epoch, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (detector) DO UPDATE SET after_sequence = ?2, stream_epoch = ?3, updated_at_ms = ?4",
                params![detector, event.sequence as i64, event.stream_epoch as i64, now_ms],
            )
            .map_err(|source| self.sqlite(source))?;
        transaction.commit().map_err(|source| self.sqlite(source))?;
        Ok(inserted)
    }

    /// Sets the status of one row; `Sent` also counts a notification.
    pub fn set_status(
        &self,
        key: &LogKey,
        status: LogStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let notified = i64::from(status == LogStatus::Sent);
        self.lock()
            .execute(
                "UPDATE notification_log
                 SET status = ?5, reason = ?6, updated_at_ms = ?7,
                     notifications = notifications + ?8,
                     last_notified_at_ms = CASE WHEN ?8 = 1 THEN ?7 ELSE last_notified_at_ms END
                 WHERE detector = ?1 AND anomaly_id = ?2 AND state = ?3 AND chat = ?4 AND severity = ?9",
                params![
                    key.detector,
                    key.anomaly_id,
                    key.state,
                    key.chat,
                    status.as_str(),
                    reason,
                    now_ms,
                    notified,
                    key.severity
                ],
            )
            .map_err(|source| self.sqlite(source))?;
        Ok(())
    }

    /// Records that a repeat of a firing was queued at `now_ms`, so that the
    /// next check does not queue it again while it waits in a slow chat.
    pub fn mark_repeat_queued(&self, key: &LogKey, now_ms: i64) -> Result<(), LogError> {
        self.lock()
            .execute(
                "UPDATE notification_log SET last_notified_at_ms = ?5
                 WHERE detector = ?1 AND anomaly_id = ?2 AND state = ?3 AND chat = ?4 AND severity = ?6",
                params![key.detector, key.anomaly_id, key.state, key.chat, now_ms, key.severity],
            )
            .map_err(|source| self.sqlite(source))?;
        Ok(())
    }

    /// Deletes the finished rows (not `pending`) last updated before
    /// `updated_before_ms` and returns how many. A detector replays far less
    /// than the retention, so a deleted row's state change does not come back.
    pub fn prune(&self, updated_before_ms: i64) -> Result<usize, LogError> {
        self.lock()
            .execute(
                "DELETE FROM notification_log WHERE status <> 'pending' AND updated_at_ms < ?1",
                params![updated_before_ms],
            )
            .map_err(|source| self.sqlite(source))
    }

    /// Returns the status of one row, `None` when it was never written.
    pub fn status(&self, key: &LogKey) -> Result<Option<LogStatus>, LogError> {
        let status: Option<String> = self
            .lock()
            .query_row(
                "SELECT status FROM notification_log
                 WHERE detector = ?1 AND anomaly_id = ?2 AND state = ?3 AND chat = ?4 AND severity = ?5",
                params![key.detector, key.anomaly_id, key.state, key.chat, key.severity],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| self.sqlite(source))?;
        Ok(status.as_deref().and_then(LogStatus::parse))
    }

    /// Returns the rows still `pending`, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingEntry>, LogError> {
        let rows = self.query_entries(
            "SELECT detector, anomaly_id, state, chat, event, 0, severity FROM notification_log
             WHERE status = 'pending' ORDER BY created_at_ms, sequence",
            [],
        )?;
        Ok(rows
            .into_iter()
            .map(|(key, event, _)| PendingEntry { key, event })
            .collect())
    }

    /// Returns, for each chat with a firing or escalation row of episode
    /// `anomaly_id` from `detector`, whether any of those rows was not
    /// suppressed: sent, still pending, or failed after it was tried.
    pub fn chats_notified(&self, detector: &str, anomaly_id: &str) -> Result<HashMap<String, bool>, LogError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare_cached(
                "SELECT chat, MAX(status <> 'suppressed') FROM notification_log
                 WHERE detector = ?1 AND anomaly_id = ?2 AND state IN (?3, ?4)
                 GROUP BY chat",
            )
            .map_err(|source| self.sqlite(source))?;
        let rows = statement
            .query_map(
                params![
                    detector,
                    anomaly_id,
                    AnomalyState::Firing as i32,
                    AnomalyState::Escalated as i32
                ],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
            )
            .map_err(|source| self.sqlite(source))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|source| self.sqlite(source))
    }

    /// Returns, per episode and chat, the latest firing or escalation sent
    /// there, when the episode has no resolution row in any chat and that
    /// row's last notification is older than `notified_before_ms`. So a
    /// repeat shows the severity the chat last heard, a chat that heard only
    /// an escalation is reminded too, and a resolution that missed a chat
    /// still ends its repeats.
    pub fn firing_unresolved(&self, notified_before_ms: i64) -> Result<Vec<FiringEntry>, LogError> {
        let rows = self.query_entries(
            "SELECT f.detector, f.anomaly_id, f.state, f.chat, f.event, f.last_notified_at_ms, f.severity
             FROM notification_log f
             WHERE f.state IN (?1, ?2) AND f.status = 'sent' AND f.last_notified_at_ms < ?4
               AND NOT EXISTS (
                 SELECT 1 FROM notification_log r
                 WHERE r.detector = f.detector AND r.anomaly_id = f.anomaly_id
                   AND (r.state = ?3
                        OR (r.chat = f.chat AND r.state = ?2 AND r.status = 'sent' AND r.severity > f.severity)))
             ORDER BY f.last_notified_at_ms",
            params![
                AnomalyState::Firing as i32,
                AnomalyState::Escalated as i32,
                AnomalyState::Resolved as i32,
                notified_before_ms
            ],
        )?;
        Ok(rows
            .into_iter()
            .map(|(key, event, last_notified_at_ms)| FiringEntry {
                key,
                event,
                last_notified_at_ms,
            })
            .collect())
    }

    fn query_entries(
        &self,
        sql: &str,
        parameters: impl rusqlite::Params,
    ) -> Result<Vec<(LogKey, AnomalyEvent, i64)>, LogError> {
        let connection = self.lock();
        let mut statement = connection.prepare(sql).map_err(|source| self.sqlite(source))?;
        let rows = statement
            .query_map(parameters, |row| {
                let key = LogKey {
                    detector: row.get(0)?,
                    anomaly_id: row.get(1)?,
                    state: row.get(2)?,
                    severity: row.get(6)?,
                    chat: row.get(3)?,
                };
                let event: Vec<u8> = row.get(4)?;
                let number: Option<i64> = row.get(5)?;
                Ok((key, event, number.unwrap_or(0)))
            })
            .map_err(|source| self.sqlite(source))?;

        let mut entries = Vec::new();
        for row in rows {
            let (key, bytes, number) = row.map_err(|source| self.sqlite(source))?;
            let event = AnomalyEvent::decode(bytes.as_slice()).map_err(|source| LogError::Decode {
                key: key.clone(),
                source,
            })?;
            entries.push((key, event, number));
        }
        Ok(entries)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-call leaves at most an open transaction, which SQLite
        // rolls back when the next one starts.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sqlite(&self, source: rusqlite::Error) -> LogError {
        LogError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// Rebuilds a `notification_log` table written before escalations, whose
/// primary key lacks `severity`, keeping its rows. SQLite cannot change a
/// primary key in place. Does nothing on a new or current file.
fn add_severity_column(connection: &Connection) -> rusqlite::Result<()> {
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('notification_log')")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if columns.is_empty() || columns.iter().any(|column| column == "severity") {
        return Ok(());
    }

    tracing::info!("adding the escalation severity to the notification log's rows");
    let copied = "detector, anomaly_id, state, chat, sequence, event, status, reason, created_at_ms, updated_at_ms, \
                  notifications, last_notified_at_ms";
    connection.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         ALTER TABLE notification_log RENAME TO notification_log_before_escalations;
         DROP INDEX IF EXISTS notification_log_status;
         {SCHEMA}
         INSERT INTO notification_log ({copied}) SELECT {copied} FROM notification_log_before_escalations;
         DROP TABLE notification_log_before_escalations;
         COMMIT;"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seismo_proto::v1::Severity;

    fn event(id: &str, state: AnomalyState, sequence: u64) -> AnomalyEvent {
        AnomalyEvent {
            id: id.to_string(),
            state: state as i32,
            sequence,
            metric: "checkout".to_string(),
            ..AnomalyEvent::default()
        }
    }

    fn key(id: &str, state: AnomalyState, chat: &str) -> LogKey {
        LogKey {
            detector: "http://d:1/".to_string(),
            anomaly_id: id.to_string(),
            state: state as i32,
            severity: 0,
            chat: chat.to_string(),
        }
    }

    fn escalation(id: &str, severity: Severity, sequence: u64) -> AnomalyEvent {
        AnomalyEvent {
            severity: severity as i32,
            ..event(id, AnomalyState::Escalated, sequence)
        }
    }

    #[test]
    fn rows_and_cursor_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = NotificationLog::open(dir.path()).unwrap();
        let chats = ["1".to_string(), "2".to_string()];

        let mut firing = event("ep-1", AnomalyState::Firing, 7);
        firing.stream_epoch = 1_700_000_000_000_000;
        let inserted = log.record_received("http://d:1/", &firing, &chats, 100).unwrap();
        log.set_status(&key("ep-1", AnomalyState::Firing, "1"), LogStatus::Sent, None, 200)
            .unwrap();
        drop(log);
        let log = NotificationLog::open(dir.path()).unwrap();

        assert_eq!(inserted, [true, true]);
        let cursor = StreamCursor {
            after_sequence: 7,
            stream_epoch: 1_700_000_000_000_000,
        };
        assert_eq!(log.cursors().unwrap().get("http://d:1/"), Some(&cursor));
        let pending = log.pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].key, key("ep-1", AnomalyState::Firing, "2"));
        assert_eq!(pending[0].event.sequence, 7);
    }

    #[test]
    fn existing_row_is_not_inserted_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = NotificationLog::open(dir.path()).unwrap();
        let firing = event("ep-1", AnomalyState::Firing, 1);
        let chats = ["1".to_string()];
        log.record_received("http://d:1/", &firing, &chats, 1).unwrap();
        log.set_status(&key("ep-1", AnomalyState::Firing, "1"), LogStatus::Sent, None, 2)
            .unwrap();

        let again = log.record_received("http://d:1/", &firing, &chats, 3).unwrap();

        assert_eq!(again, [false]);
        assert_eq!(
            log.status(&key("ep-1", AnomalyState::Firing, "1")).unwrap(),
            Some(LogStatus::Sent)
        );
    }

    #[test]
    fn prune_keeps_pending_and_recent_rows() {
        let dir = tempfile::tempdir().unwrap();
        let log = NotificationLog::open(dir.path()).unwrap();
        let chats = ["1".to_string()];
        for (id, sequence) in [("old-sent", 1), ("old-pending", 2), ("new-sent", 3)] {
            log.record_received("http://d:1/", &event(id, AnomalyState::Firing, sequence), &chats, 0)
                .unwrap();
        }
        log.set_status(&key("old-sent", AnomalyState::Firing, "1"), LogStatus::Sent, None, 100)
            .unwrap();
        log.set_status(&key("new-sent", AnomalyState::Firing, "1"), LogStatus::Sent, None, 300)
            .unwrap();

        let deleted = log.prune(200).unwrap();

        assert_eq!(deleted, 1);
        assert_eq!(log.status(&key("old-sent", AnomalyState::Firing, "1")).unwrap(), None);
        assert_eq!(
            log.status(&key("old-pending", AnomalyState::Firing, "1")).unwrap(),
            Some(LogStatus::Pending)
        );
        assert_eq!(
            log.status(&key("new-sent", AnomalyState::Firing, "1")).unwrap(),
            Some(LogStatus::Sent)
        );
    }

    #[test]
    fn unresolved_firings_are_listed_for_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let log = NotificationLog::open(dir.path()).unwrap();
        let chats = ["1".to_string()];
        for (id, sequence) in [("ep-1", 1), ("ep-2", 2)] {
            log.record_received("http://d:1/", &event(id, AnomalyState::Firing, sequence), &chats, 0)
                .unwrap();
            log.set_status(&key(id, AnomalyState::Firing, "1"), LogStatus::Sent, None, 10)
                .unwrap();
        }
        log.record_received("http://d:1/", &event("ep-2", AnomalyState::Resolved, 3), &chats, 20)
            .unwrap();

        let firing = log.firing_unresolved(11).unwrap();
        let too_recent = log.firing_unresolved(10).unwrap();

        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0].key.anomaly_id, "ep-1");
        assert_eq!(firing[0].last_notified_at_ms, 10);
        assert!(too_recent.is_empty());
    }

    #[test]
    fn escalations_get_own_rows() {
        let log = NotificationLog::open_in_memory().unwrap();
        let chats = ["1".to_string()];

        let firing = log
            .record_received("http://d:1/", &event("ep-1", AnomalyState::Firing, 1), &chats, 0)
            .unwrap();
        let to_warning = log
            .record_received("http://d:1/", &escalation("ep-1", Severity::Warning, 2), &chats, 0)
            .unwrap();
        let to_critical = log
            .record_received("http://d:1/", &escalation("ep-1", Severity::Critical, 3), &chats, 0)
            .unwrap();
        let critical_again = log
            .record_received("http://d:1/", &escalation("ep-1", Severity::Critical, 3), &chats, 0)
            .unwrap();

        assert_eq!(
            [firing, to_warning, to_critical, critical_again],
            [[true], [true], [true], [false]]
        );
        let critical_key = LogKey::of("http://d:1/", &escalation("ep-1", Severity::Critical, 3), "1");
        assert_eq!(critical_key.severity, Severity::Critical as i32);
        assert_eq!(log.status(&critical_key).unwrap(), Some(LogStatus::Pending));
    }

    #[test]
    fn repeat_uses_latest_sent_severity() {
        let log = NotificationLog::open_in_memory().unwrap();
        let send = |event: &AnomalyEvent, chat: &str, status: LogStatus| {
            log.record_received("http://d:1/", event, &[chat.to_string()], 0)
                .unwrap();
            log.set_status(&LogKey::of("http://d:1/", event, chat), status, None, 10)
                .unwrap();
        };
        // Chat 1 received the firing and both escalations, and chat 2 only
        // the escalation to critical. Chat 3 received the firing, and quiet
        // hours held back its escalation to critical.
        send(&event("ep-1", AnomalyState::Firing, 1), "1", LogStatus::Sent);
        send(&escalation("ep-1", Severity::Warning, 2), "1", LogStatus::Sent);
        send(&escalation("ep-1", Severity::Critical, 3), "1", LogStatus::Sent);
        send(&escalation("ep-1", Severity::Critical, 3), "2", LogStatus::Sent);
        send(&event("ep-1", AnomalyState::Firing, 1), "3", LogStatus::Sent);
        send(&escalation("ep-1", Severity::Critical, 3), "3", LogStatus::Suppressed);

        let mut repeats: Vec<(String, i32)> = log
            .firing_unresolved(11)
            .unwrap()
            .into_iter()
            .map(|entry| (entry.key.chat, entry.event.severity))
            .collect();
        repeats.sort();

        let critical = Severity::Critical as i32;
        assert_eq!(
            repeats,
            [
                ("1".to_string(), critical),
                ("2".to_string(), critical),
                ("3".to_string(), 0)
            ]
        );
    }

    #[test]
    fn old_log_keeps_rows_on_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let connection = Connection::open(dir.path().join(STATE_FILE_NAME)).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE notification_log (
                    detector TEXT NOT NULL, anomaly_id TEXT NOT NULL, state INTEGER NOT NULL,
                    chat TEXT NOT NULL, sequence INTEGER NOT NULL, event BLOB NOT NULL,
                    status TEXT NOT NULL, reason TEXT, created_at_ms INTEGER NOT NULL,
                    updated_at_ms INTEGER NOT NULL, notifications INTEGER NOT NULL DEFAULT 0,
                    last_notified_at_ms INTEGER,
                    PRIMARY KEY (detector, anomaly_id, state, chat));
                 CREATE INDEX notification_log_status ON notification_log (status);",
            )
            .unwrap();
        let old_row = event("ep-1", AnomalyState::Firing, 1);
        connection
            .execute(
                "INSERT INTO notification_log VALUES ('http://d:1/', 'ep-1', 1, '1', 1, ?1, 'pending', NULL, 5, 5, 0, NULL)",
                params![old_row.encode_to_vec()],
            )
            .unwrap();
        drop(connection);

        let log = NotificationLog::open(dir.path()).unwrap();
        let chats = ["1".to_string()];
        let to_warning = log
            .record_received("http://d:1/", &escalation("ep-1", Severity::Warning, 2), &chats, 6)
            .unwrap();
        let to_critical = log
            .record_received("http://d:1/", &escalation("ep-1", Severity::Critical, 3), &chats, 7)
            .unwrap();

        let pending = log.pending().unwrap();
        assert_eq!(pending[0].key, key("ep-1", AnomalyState::Firing, "1"));
        assert_eq!(pending[0].event, old_row);
        assert_eq!(pending.len(), 3);
        assert_eq!([to_warning, to_critical], [[true], [true]]);
        drop(log);
        NotificationLog::open(dir.path()).unwrap();
    }

    #[test]
    fn suppressed_rows_do_not_notify() {
        let log = NotificationLog::open_in_memory().unwrap();
        let firing = event("ep-1", AnomalyState::Firing, 1);
        let to_critical = escalation("ep-1", Severity::Critical, 2);
        let chats = ["1".to_string(), "2".to_string(), "3".to_string()];
        log.record_received("http://d:1/", &firing, &chats[..2], 0).unwrap();
        log.set_status(&key("ep-1", AnomalyState::Firing, "1"), LogStatus::Suppressed, None, 1)
            .unwrap();
        log.set_status(&key("ep-1", AnomalyState::Firing, "2"), LogStatus::Suppressed, None, 1)
            .unwrap();
        log.record_received("http://d:1/", &to_critical, &chats[1..], 2)
            .unwrap();

        let notified = log.chats_notified("http://d:1/", "ep-1").unwrap();

        // Chat 1 had only a suppressed firing. Chats 2 and 3 have a pending
        // escalation, which counts as notified.
        assert_eq!(notified.get("1"), Some(&false));
        assert_eq!(notified.get("2"), Some(&true));
        assert_eq!(notified.get("3"), Some(&true));
        assert_eq!(notified.get("4"), None);
        assert_eq!(log.chats_notified("http://d:2/", "ep-1").unwrap().len(), 0);
    }

    #[test]
    fn resolution_in_any_chat_ends_repeats() {
        let log = NotificationLog::open_in_memory().unwrap();
        let firing = event("ep-1", AnomalyState::Firing, 1);
        let chats = ["1".to_string(), "2".to_string()];
        log.record_received("http://d:1/", &firing, &chats, 0).unwrap();
        for chat in &chats {
            log.set_status(&LogKey::of("http://d:1/", &firing, chat), LogStatus::Sent, None, 10)
                .unwrap();
        }

        log.record_received(
            "http://d:1/",
            &event("ep-1", AnomalyState::Resolved, 2),
            &chats[..1],
            20,
        )
        .unwrap();

        assert!(log.firing_unresolved(11).unwrap().is_empty());
    }
}
