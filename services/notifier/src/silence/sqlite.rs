//! Opens the notifier's SQLite state file the way every table owner shares
//! it: WAL mode, so readers and one writer do not block each other, and a
//! busy timeout for the moments two connections write at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// File name of the notifier's state inside its state directory.
pub const STATE_FILE_NAME: &str = "notifier.sqlite3";

/// Returns the state file path inside `state_dir`.
pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE_NAME)
}

/// Opens (creating if needed) the SQLite file at `path` in WAL mode.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let failed = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }

    let connection = Connection::open(path).map_err(failed)?;
    connection.busy_timeout(Duration::from_secs(5)).map_err(failed)?;
    // `journal_mode` returns the resulting mode as a row, so it is read
    // rather than executed.
    let _mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(failed)?;
    Ok(connection)
}

/// A failure of the silence or acknowledgement tables.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating the state directory {path:?} failed: {source}; check that the notifier can write there")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("opening the state file {path:?} failed: {source}; check --state-dir and its permissions")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("SQLite {operation} failed: {source}")]
    Query {
        operation: &'static str,
        source: rusqlite::Error,
    },
}

impl StoreError {
    pub(crate) fn query(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Query { operation, source }
    }
}
