//! Reservations of unfinished uploads: each partial blob file is held by a row saying
//! whose it is and how large it will be, so that an owner's unfinished uploads, and all
//! of them together, stay within their quotas, and abandoned ones expire. See
//! [`crate::uploads`] for the policy around them.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};
use wardcheck_core::blob::BlobHash;

use super::{RelayStore, StoreError, StoreResult};

/// How much room unfinished uploads may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialQuota {
    /// Unfinished uploads of one owner (a device).
    pub per_owner: u32,
    /// Their declared bytes, together.
    pub bytes_per_owner: u64,
    /// Declared bytes of all unfinished uploads.
    pub bytes_total: u64,
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The upload may go on: new, or continuing one of the same length.
    Granted,
    /// An unfinished upload of this blob declared another length.
    LengthMismatch,
    /// The owner has as many unfinished uploads, or as many bytes, as its quota allows.
    OwnerFull,
    /// All unfinished uploads together take the room allowed.
    AllFull,
}

impl RelayStore {
    /// Reserves room for `owner`'s upload of `hash`, `total` bytes, at `now` (ms):
    /// continuing an unfinished upload of the same length renews it (whoever started
    /// it); a new one is granted if it fits `quota`, counting only reservations touched at
    /// or after `live_since` (older ones have expired, swept or not).
    pub fn reserve_partial(
        &self,
        hash: &BlobHash,
        owner: &str,
        total: u64,
        quota: &PartialQuota,
        live_since: i64,
        now: i64,
    ) -> StoreResult<Reservation> {
        let hex = hash.to_hex();
        let total = to_sql(total)?;
        self.write(|tx| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT total FROM partial_uploads WHERE hash = ?1",
                    [&hex],
                    |row| row.get(0),
                )
                .optional()?;
            match existing {
                Some(declared) if declared != total => return Ok(Reservation::LengthMismatch),
                Some(_) => {
                    tx.execute(
                        "UPDATE partial_uploads SET touched_at = ?2 WHERE hash = ?1",
                        params![hex, now],
                    )?;
                    return Ok(Reservation::Granted);
                }
                None => {}
            }
            let (count, bytes): (u32, i64) = tx.query_row(
                "SELECT count(*), coalesce(sum(total), 0) FROM partial_uploads
                 WHERE owner = ?1 AND touched_at >= ?2",
                params![owner, live_since],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            if count >= quota.per_owner || bytes + total > to_sql(quota.bytes_per_owner)? {
                return Ok(Reservation::OwnerFull);
            }
            let all: i64 = tx.query_row(
                "SELECT coalesce(sum(total), 0) FROM partial_uploads WHERE touched_at >= ?1",
                [live_since],
                |row| row.get(0),
            )?;
            if all + total > to_sql(quota.bytes_total)? {
                return Ok(Reservation::AllFull);
            }
            tx.execute(
                "INSERT INTO partial_uploads (hash, owner, total, touched_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![hex, owner, total, now],
            )?;
            Ok(Reservation::Granted)
        })
    }

    /// Ends the reservation of `hash` (its upload completed or left nothing).
    pub fn release_partial(&self, hash: &BlobHash) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM partial_uploads WHERE hash = ?1",
                [hash.to_hex()],
            )?;
            Ok(())
        })
    }

    /// Ends the reservations not touched since `live_since` (ms).
    pub fn expire_partials(&self, live_since: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM partial_uploads WHERE touched_at < ?1",
                [live_since],
            )?;
            Ok(())
        })
    }

    /// The hashes with a reservation.
    pub fn reserved_partials(&self) -> StoreResult<HashSet<BlobHash>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached("SELECT hash FROM partial_uploads")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            let mut out = HashSet::new();
            for row in rows {
                out.insert(
                    row?.parse()
                        .map_err(|_| StoreError::Malformed("blob hash"))?,
                );
            }
            Ok(out)
        })
    }
}

fn to_sql(bytes: u64) -> StoreResult<i64> {
    i64::try_from(bytes).map_err(|_| StoreError::Malformed("byte count"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

    const QUOTA: PartialQuota = PartialQuota {
        per_owner: 2,
        bytes_per_owner: 100,
        bytes_total: 150,
    };

    fn hash(n: u8) -> BlobHash {
        BlobHash::of(&[n])
    }

    #[test]
    fn owners_and_everyone_stay_within_their_quotas() {
        let (_dir, store) = temp_store();
        let reserve = |n, owner, total, now| {
            store
                .reserve_partial(&hash(n), owner, total, &QUOTA, 0, now)
                .unwrap()
        };
        assert_eq!(reserve(1, "a", 60, 1), Reservation::Granted);
        // Bytes per owner.
        assert_eq!(reserve(2, "a", 41, 1), Reservation::OwnerFull);
        assert_eq!(reserve(2, "a", 40, 1), Reservation::Granted);
        // Count per owner.
        assert_eq!(reserve(3, "a", 0, 1), Reservation::OwnerFull);
        // Everyone: 100 held, 50 left.
        assert_eq!(reserve(3, "b", 51, 1), Reservation::AllFull);
        assert_eq!(reserve(3, "b", 50, 1), Reservation::Granted);
        // Continuing is granted to anyone, at the same length only.
        assert_eq!(reserve(1, "b", 60, 2), Reservation::Granted);
        assert_eq!(reserve(1, "a", 61, 2), Reservation::LengthMismatch);
        // A released one makes room.
        store.release_partial(&hash(1)).unwrap();
        assert!(!store.reserved_partials().unwrap().contains(&hash(1)));
        assert_eq!(reserve(4, "a", 60, 3), Reservation::Granted);
    }

    #[test]
    fn untouched_reservations_expire() {
        let (_dir, store) = temp_store();
        for n in 0..2 {
            let granted = store.reserve_partial(&hash(n), "a", 50, &QUOTA, 0, 10);
            assert_eq!(granted.unwrap(), Reservation::Granted);
        }
        // Touched at 10: expired for a reservation that counts from 11 on.
        let later = store.reserve_partial(&hash(5), "a", 50, &QUOTA, 11, 20);
        assert_eq!(later.unwrap(), Reservation::Granted);
        store.expire_partials(11).unwrap();
        let reserved = store.reserved_partials().unwrap();
        assert!(!reserved.contains(&hash(0)) && reserved.contains(&hash(5)));
    }
}
