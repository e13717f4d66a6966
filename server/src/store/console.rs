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

/// A sign-in attempt counted as a failure until it is known not to be one: the rows of
/// `console_sign_in_failures` it added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAttempt {
    rows: Vec<i64>,
}

fn delete_attempt(tx: &rusqlite::Transaction<'_>, attempt: &SignInAttempt) -> StoreResult<()> {
    for row in &attempt.rows {
        tx.execute(
            "DELETE FROM console_sign_in_failures WHERE rowid = ?1",
            [row],
        )?;
    }
    Ok(())
}

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

    /// Counts a sign-in attempt as a failure under each of `limits`' names (the user name
    /// typed, and `ip:` and the client's address), unless one of them has `limit` or more
    /// failures at or after `since` (ms): then `None`, and nothing is counted. Check and
    /// count are one transaction, so that attempts at once cannot all pass the check
    /// before any is counted. Failures older than `since` are pruned.
    ///
    /// The attempt stays a failure unless [`RelayStore::forget_sign_in_attempt`] (it was
    /// never checked) or [`RelayStore::create_console_session`] (it succeeded) take it
    /// back.
    pub fn begin_sign_in(
        &self,
        limits: &[(&str, u32)],
        since: i64,
        now: i64,
    ) -> StoreResult<Option<SignInAttempt>> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM console_sign_in_failures WHERE at < ?1",
                [since],
            )?;
            for (name, limit) in limits {
                let failures: u32 = tx.query_row(
                    "SELECT count(*) FROM console_sign_in_failures WHERE name = ?1 AND at >= ?2",
                    params![name, since],
                    |row| row.get(0),
                )?;
                if failures >= *limit {
                    return Ok(None);
                }
            }
            let mut rows = Vec::with_capacity(limits.len());
            for (name, _) in limits {
                tx.execute(
                    "INSERT INTO console_sign_in_failures (name, at) VALUES (?1, ?2)",
                    params![name, now],
                )?;
                rows.push(tx.last_insert_rowid());
            }
            Ok(Some(SignInAttempt { rows }))
        })
    }

    /// Takes back an attempt counted by [`RelayStore::begin_sign_in`] whose password was
    /// never checked.
    pub fn forget_sign_in_attempt(&self, attempt: &SignInAttempt) -> StoreResult<()> {
        self.write(|tx| delete_attempt(tx, attempt))
    }

    /// Creates a session for `user_id` after `attempt` succeeded (taking it back, clearing
    /// the user's failed sign-ins and pruning expired sessions), in one transaction.
    pub fn create_console_session(
        &self,
        token_hash: &[u8; 32],
        user_id: &str,
        csrf: &str,
        attempt: &SignInAttempt,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            delete_attempt(tx, attempt)?;
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

    /// An attempt counted now, for tests that need one.
    fn attempt(store: &RelayStore, name: &str) -> SignInAttempt {
        store.begin_sign_in(&[(name, 100)], 0, 1).unwrap().unwrap()
    }

    #[test]
    fn sessions_expire_and_end() {
        let (_dir, store) = temp_store();
        seed(&store);
        let token = [7u8; 32];
        let attempt = attempt(&store, "sup-kt");
        store
            .create_console_session(&token, "sup-kt", "csrf", &attempt, 10, 100)
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

    fn failures(store: &RelayStore, name: &str, since: i64) -> u32 {
        store
            .read(|tx| {
                Ok(tx.query_row(
                    "SELECT count(*) FROM console_sign_in_failures WHERE name = ?1 AND at >= ?2",
                    params![name, since],
                    |row| row.get(0),
                )?)
            })
            .unwrap()
    }

    #[test]
    fn attempts_count_before_they_are_checked_up_to_their_limits() {
        let (_dir, store) = temp_store();
        seed(&store);
        let limits = [("sup-kt", 3), ("ip:a", 4)];
        for at in [10, 20, 30] {
            assert!(store.begin_sign_in(&limits, 0, at).unwrap().is_some());
        }
        // The name has its 3 failures: refused, and nothing more is counted.
        assert_eq!(store.begin_sign_in(&limits, 0, 40).unwrap(), None);
        assert_eq!(failures(&store, "ip:a", 0), 3);
        // The address reaches its limit with another name.
        assert!(
            store
                .begin_sign_in(&[("x", 3), ("ip:a", 4)], 0, 40)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .begin_sign_in(&[("y", 3), ("ip:a", 4)], 0, 40)
                .unwrap(),
            None
        );
        // Failures before `since` no longer count, and are pruned.
        let later = store.begin_sign_in(&limits, 15, 50).unwrap().unwrap();
        assert_eq!(failures(&store, "sup-kt", 0), 3);
        // An attempt never checked is taken back.
        store.forget_sign_in_attempt(&later).unwrap();
        assert_eq!(failures(&store, "sup-kt", 0), 2);
        assert_eq!(failures(&store, "ip:a", 0), 3);
        // A sign-in clears the name's failures and takes its own attempt back.
        let success = store.begin_sign_in(&limits, 15, 60).unwrap().unwrap();
        store
            .create_console_session(&[1; 32], "sup-kt", "c", &success, 60, 100)
            .unwrap();
        assert_eq!(failures(&store, "sup-kt", 0), 0);
        assert_eq!(failures(&store, "ip:a", 0), 3);
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
