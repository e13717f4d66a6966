//! The relay database's schema and its migrations.
//!
//! The schema version lives in SQLite's `user_version`. Each step from one version to the
//! next is one numbered SQL file; all pending steps run in one transaction, so a crash
//! during an upgrade leaves the old version intact.

use rusqlite::Connection;

use super::OpenStoreError;

/// The schema version this build writes.
pub const VERSION: u32 = 2;

const MIGRATIONS: [&str; VERSION as usize] = [
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_evidence_checks.sql"),
];

/// Brings the database to [`VERSION`], or refuses one written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), OpenStoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > VERSION {
        return Err(OpenStoreError::TooNew {
            found,
            supported: VERSION,
        });
    }
    if found == VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for step in &MIGRATIONS[found as usize..] {
        tx.execute_batch(step)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> u32 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn fresh_database_reaches_the_current_version_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'
                 AND name IN ('units', 'users', 'devices', 'enrolment_codes',
                              'documents', 'document_chunks', 'blob_refs')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 7);
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(OpenStoreError::TooNew { found, supported })
                if found == VERSION + 1 && supported == VERSION
        ));
    }
}
