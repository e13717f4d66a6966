//! Schema migrations for SQLite databases, shared by the phone's store and the relay's.
//!
//! The schema version lives in SQLite's `user_version`. Each step from one version to the
//! next is one SQL script; all pending steps run in one transaction, so a crash during an
//! upgrade leaves the old version intact.

use rusqlite::Connection;

/// Why a database could not be brought to the current version.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The file was written by a newer build, which this one will not touch.
    #[error("schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// The version found in the file.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Runs the scripts of `steps` the database has not run yet (step `n` brings version `n`
/// to `n + 1`), and sets `user_version` to `steps.len()`.
pub fn migrate(conn: &mut Connection, steps: &[&str]) -> Result<(), MigrateError> {
    let supported = steps.len() as u32;
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(MigrateError::TooNew { found, supported });
    }
    if found == supported {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for step in &steps[found as usize..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}
