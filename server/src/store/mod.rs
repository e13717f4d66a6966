//! The relay's SQLite database: accounts (units, users, devices, enrolment codes) and
//! assessment documents with the photo blobs they reference.
//!
//! **Concurrency.** [`RelayStore`] holds two connections, one writer and one reader, each
//! behind a `std::sync::Mutex`: WAL lets the reader see the last commit while a write is
//! in progress. Every method is synchronous and short (indexed lookups, one small
//! transaction), but a write ends in an fsync (`synchronous = FULL`), so async code calls
//! the store through [`crate::AppState::db`], which runs the closure on tokio's blocking
//! pool instead of stalling a runtime worker.
//!
//! **Durability.** Each write method is one `IMMEDIATE` transaction: when it returns
//! `Ok`, the change is on disk.
//!
//! **Identities.** Tokens and enrolment codes are stored only as SHA-256 digests,
//! passwords only as argon2 PHC strings. Errors name no user, unit or device.

pub(crate) mod accounts;
mod console;
mod criteria;
mod documents;
mod evidence;
mod partials;
pub mod schema;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use accounts::{DeviceRecord, Enrolled, NewDevice, UnitKind, UnitRecord, UserRecord};
pub use console::{ConsoleAccount, ConsoleSessionRecord, SignInAttempt, UnitLocation};
pub use criteria::{CriteriaSetRecord, MAX_CRITERIA_SET_BYTES, Published};
pub use documents::{DocumentSummary, SnapshotInfo, StoredDocument};
pub use evidence::{EvidenceCheck, Verdict};
pub use partials::{PartialQuota, Reservation};

/// The database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreError {
    /// SQLite failed (file missing permissions, not a database, ...).
    #[error("cannot open the relay database")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer relay; this build will not touch it.
    #[error("the relay database has schema version {found}; this build supports up to {supported}")]
    TooNew {
        /// The version found in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
}

/// A store operation failed. Messages name no user, unit, device or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The named unit does not exist.
    #[error("no such unit")]
    UnknownUnit,
    /// The named parent unit does not exist.
    #[error("no such parent unit")]
    UnknownParent,
    /// The named user does not exist.
    #[error("no such user")]
    UnknownUser,
    /// The named device does not exist.
    #[error("no such device")]
    UnknownDevice,
    /// The named document does not exist.
    #[error("no such document")]
    UnknownDocument,
    /// A record with this id already exists (what: "unit", "user", "document").
    #[error("this {0} already exists")]
    Duplicate(&'static str),
    /// The request breaks a rule of the unit tree or of roles; the text says which.
    #[error("{0}")]
    Invalid(&'static str),
    /// The enrolment code is wrong, already used or expired (deliberately not saying
    /// which).
    #[error("the enrolment code is not valid")]
    InvalidCode,
    /// A stored value could not be read back.
    #[error("malformed stored {0}")]
    Malformed(&'static str),
    /// The transaction that carried this write (with others') failed to commit.
    #[error("database commit failed: {0}")]
    Commit(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// The relay's database. Cheap to share behind an `Arc`; see the module docs for how to
/// call it from async code.
pub struct RelayStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Chunk appends waiting for the writer; see [`RelayStore::append_chunk`].
    appends: Mutex<Vec<documents::QueuedAppend>>,
}

impl RelayStore {
    /// Opens (creating if needed) the database at `path`, in WAL mode with
    /// `synchronous = FULL`, and migrates it to [`schema::VERSION`].
    pub fn open(path: &Path) -> Result<Self, OpenStoreError> {
        let mut writer = Connection::open(path)?;
        // WAL must be set outside a transaction; FULL makes every commit durable.
        writer.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        configure(&writer)?;
        schema::migrate(&mut writer)?;
        documents::name_contents(&mut writer, "documents", "snapshot", "snapshot_hash")?;
        documents::name_contents(&mut writer, "criteria_sets", "json", "sha256")?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        reader.pragma_update(None, "query_only", true)?;
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            appends: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` in one read transaction, so it sees a single committed state.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.finish()?;
        Ok(out)
    }

    /// Runs `f` in one `IMMEDIATE` transaction, committed when it returns `Ok`, rolled
    /// back otherwise. Durable when this returns.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // `admin` commands run as a separate process on the same file.
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(())
}

/// A poisoned lock only means a panic happened while it was held; the transaction it
/// held was rolled back when dropped, so the connection is still good.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whether `err` is a violated UNIQUE or PRIMARY KEY constraint.
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store on a fresh temporary file (the store needs a file: two connections).
    pub(crate) fn temp_store() -> (tempfile::TempDir, RelayStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RelayStore::open(&dir.path().join("relay.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RelayStore>();
    }

    #[test]
    fn opens_in_wal_with_full_sync() {
        let (_dir, store) = temp_store();
        let conn = lock(&store.writer);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2);
    }

    #[test]
    fn a_newer_file_is_refused_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.sqlite3");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
        assert!(matches!(
            RelayStore::open(&path),
            Err(OpenStoreError::TooNew { .. })
        ));
    }
}
