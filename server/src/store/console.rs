//! What the supervisors' console keeps: browser sessions, failed sign-ins (for the
//! lock-out), unit locations, and when each ward's phones last called.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{RelayStore, StoreError, StoreResult};
use crate::auth::{Principal, Role};

/// A user who may sign in to the console, with what sign-in needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleAccount {
    /// The user.
    pub user_id: String,
    /// Display name.
    pub display_name: String,
    /// Role (the console admits supervisors and admins only).
    pub role: Role,
    /// Their unit.
    pub unit_id: String,
    /// The argon2 PHC string, if a password is set.
    pub password_hash: Option<String>,
}

/// A live console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRecord {
    /// Who is signed in (`device_id` is `None`).
    pub principal: Principal,
    /// Their display name.
    pub display_name: String,
    /// The session's CSRF token, carried back by every form.
    pub csrf: String,
}

/// Where a unit is: a centre (WGS 84 degrees) and a radius in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitLocation {
    /// Latitude of the centre.
    pub lat: f64,
    /// Longitude of the centre.
    pub lon: f64,
    /// How far from the centre still counts as inside the unit.
    pub radius_m: f64,
}

/// Failed sign-ins older than this are pruned.
const FAILURES_KEPT_MS: i64 = 24 * 3600 * 1000;

impl RelayStore {
    /// The account `user_id`, or `None` if there is no such user.
    pub fn console_account(&self, user_id: &str) -> StoreResult<Option<ConsoleAccount>> {
        let row = self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT id, display_name, role, unit_id, password_hash FROM users WHERE id = ?1",
                    [user_id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()?)
        })?;
        let Some((user_id, display_name, role, unit_id, password_hash)) = row else {
            return Ok(None);
        };
        Ok(Some(ConsoleAccount {
            user_id,
            display_name,
            role: role.parse().map_err(|_| StoreError::Malformed("role"))?,
            unit_id,
            password_hash,
        }))
    }

    /// How many failed sign-ins were counted under `name` (a user name, or `ip:` and an
    /// address) at or after `since` (ms).
    pub fn sign_in_failures(&self, name: &str, since: i64) -> StoreResult<u32> {
        self.read(|tx| {
            Ok(tx.query_row(
                "SELECT count(*) FROM console_sign_in_failures WHERE name = ?1 AND at >= ?2",
                params![name, since],
                |row| row.get(0),
            )?)
        })
    }

    /// Records a failed sign-in under each of `names` (pruning day-old records).
    pub fn record_sign_in_failure(&self, names: &[&str], now: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM console_sign_in_failures WHERE at < ?1",
                [now - FAILURES_KEPT_MS],
            )?;
            for name in names {
                tx.execute(
                    "INSERT INTO console_sign_in_failures (name, at) VALUES (?1, ?2)",
                    params![name, now],
                )?;
            }
            Ok(())
        })
    }

    /// Creates a session for `user_id` (also clearing the user's failed sign-ins and
    /// pruning expired sessions), in one transaction.
    pub fn create_console_session(
        &self,
        token_hash: &[u8; 32],
        user_id: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM console_sessions WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "DELETE FROM console_sign_in_failures WHERE name = ?1",
                [user_id],
            )?;
            tx.execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&token_hash[..], user_id, csrf, now, expires_at],
            )?;
            Ok(())
        })
    }

    /// The session whose token hashes to `token_hash`, if it exists and has not expired.
    pub fn console_session(
        &self,
        token_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<ConsoleSessionRecord>> {
        let found = self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT user_id, csrf FROM console_sessions
                     WHERE token_hash = ?1 AND expires_at > ?2",
                    params![&token_hash[..], now],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()?)
        })?;
        let Some((user_id, csrf)) = found else {
            return Ok(None);
        };
        // The user cannot be gone: sessions are deleted with their user.
        Ok(self
            .console_account(&user_id)?
            .map(|account| ConsoleSessionRecord {
                principal: Principal {
                    user_id: account.user_id,
                    role: account.role,
                    unit_id: account.unit_id,
                    device_id: None,
                },
                display_name: account.display_name,
                csrf,
            }))
    }

    /// Ends a session (signing out). Unknown tokens are ignored.
    pub fn delete_console_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM console_sessions WHERE token_hash = ?1",
                [&token_hash[..]],
            )?;
            Ok(())
        })
    }

    /// Sets (or, with `None`, clears) where a unit is.
    ///
    /// Errors: [`StoreError::UnknownUnit`].
    pub fn set_unit_location(
        &self,
        unit_id: &str,
        location: Option<UnitLocation>,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE units SET lat = ?2, lon = ?3, radius_m = ?4 WHERE id = ?1",
                params![
                    unit_id,
                    location.map(|l| l.lat),
                    location.map(|l| l.lon),
                    location.map(|l| l.radius_m)
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownUnit);
            }
            Ok(())
        })
    }

    /// Every unit that has a location, by id.
    pub fn unit_locations(&self) -> StoreResult<HashMap<String, UnitLocation>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, lat, lon, radius_m FROM units
                 WHERE lat IS NOT NULL AND lon IS NOT NULL AND radius_m IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    UnitLocation {
                        lat: row.get(1)?,
                        lon: row.get(2)?,
                        radius_m: row.get(3)?,
                    },
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// When a device of each ward's officers last called the relay (ms), for the wards
    /// that have been seen.
    pub fn wards_last_seen(&self) -> StoreResult<HashMap<String, i64>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT u.unit_id, max(d.last_seen) FROM devices d JOIN users u ON u.id = d.user_id
                 WHERE d.last_seen IS NOT NULL GROUP BY u.unit_id",
            )?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::seed;
    use crate::store::tests::temp_store;

    #[test]
    fn sessions_expire_and_end() {
        let (_dir, store) = temp_store();
        seed(&store);
        let token = [7u8; 32];
        store
            .create_console_session(&token, "sup-kt", "csrf", 10, 100)
            .unwrap();
        let session = store.console_session(&token, 50).unwrap().unwrap();
        assert_eq!(session.principal.user_id, "sup-kt");
        assert_eq!(session.principal.device_id, None);
        assert_eq!(session.csrf, "csrf");
        assert_eq!(store.console_session(&token, 100).unwrap(), None);
        assert_eq!(store.console_session(&[8u8; 32], 50).unwrap(), None);
        store.delete_console_session(&token).unwrap();
        assert_eq!(store.console_session(&token, 50).unwrap(), None);
    }

    #[test]
    fn failures_are_counted_in_a_window_and_cleared_by_a_sign_in() {
        let (_dir, store) = temp_store();
        seed(&store);
        for at in [10, 20, 30] {
            store
                .record_sign_in_failure(&["sup-kt", "ip:a"], at)
                .unwrap();
        }
        store
            .record_sign_in_failure(&["nobody", "ip:a"], 30)
            .unwrap();
        assert_eq!(store.sign_in_failures("sup-kt", 15).unwrap(), 2);
        assert_eq!(store.sign_in_failures("nobody", 0).unwrap(), 1);
        assert_eq!(store.sign_in_failures("ip:a", 0).unwrap(), 4);
        store
            .create_console_session(&[1; 32], "sup-kt", "c", 40, 100)
            .unwrap();
        assert_eq!(store.sign_in_failures("sup-kt", 0).unwrap(), 0);
    }

    #[test]
    fn unit_locations_round_trip() {
        let (_dir, store) = temp_store();
        seed(&store);
        let here = UnitLocation {
            lat: 14.35,
            lon: 108.0,
            radius_m: 1500.0,
        };
        store.set_unit_location("ngo-may", Some(here)).unwrap();
        assert_eq!(store.unit_locations().unwrap()["ngo-may"], here);
        store.set_unit_location("ngo-may", None).unwrap();
        assert!(store.unit_locations().unwrap().is_empty());
        assert!(matches!(
            store.set_unit_location("nowhere", Some(here)),
            Err(StoreError::UnknownUnit)
        ));
    }
}
