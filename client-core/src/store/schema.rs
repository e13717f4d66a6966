//! The store's schema: its numbered migrations, run by [`crate::migrate`].

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::migrate::MigrateError;

/// The schema version this build writes.
pub(crate) const VERSION: u32 = 3;

const MIGRATIONS: [&str; VERSION as usize] = [
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_view_cache.sql"),
    include_str!("migrations/003_fetching.sql"),
];

/// Brings the database to [`VERSION`], or refuses one written by a newer build.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    crate::migrate::migrate(conn, &MIGRATIONS).map_err(|e| match e {
        MigrateError::TooNew { found, supported } => Error::StoreTooNew { found, supported },
        MigrateError::Sqlite(e) => Error::Store(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_the_current_version_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
    }

    #[test]
    fn a_version_1_database_upgrades_with_its_data() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO documents (id, unit_id, period, snapshot, updated_at)
             VALUES ('d', 'u', '2025', x'01', 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (snapshot, heads): (Vec<u8>, Vec<u8>) = conn
            .query_row("SELECT snapshot, heads FROM documents", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((snapshot, heads), (vec![1], vec![]));
        // The upgraded schema is the fresh one.
        let schema = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn
                .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
                .unwrap();
            stmt.query_map([], |row| row.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(schema(&conn), schema(&fresh));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(Error::StoreTooNew { found, .. }) if found == VERSION + 1
        ));
    }
}
