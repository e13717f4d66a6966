//! The relay database's schema: its numbered migrations, run by the core's
//! [`wardcheck_core::migrate`] (the same mechanism as the phone's store).

use rusqlite::Connection;

use wardcheck_core::migrate::MigrateError;

use super::OpenStoreError;

/// The schema version this build writes.
pub const VERSION: u32 = 7;

const MIGRATIONS: [&str; VERSION as usize] = [
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_evidence_checks.sql"),
    include_str!("migrations/003_console.sql"),
    include_str!("migrations/004_partial_uploads.sql"),
    include_str!("migrations/005_criteria_sets.sql"),
    include_str!("migrations/006_snapshot_hash.sql"),
    include_str!("migrations/007_criteria_set_names.sql"),
];

/// Brings the database to [`VERSION`], or refuses one written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), OpenStoreError> {
    wardcheck_core::migrate::migrate(conn, &MIGRATIONS).map_err(|e| match e {
        MigrateError::TooNew { found, supported } => OpenStoreError::TooNew { found, supported },
        MigrateError::Sqlite(e) => OpenStoreError::Sqlite(e),
    })
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
