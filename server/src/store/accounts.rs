//! Units, users, devices and enrolment codes, and the one scope rule.

use std::fmt;
use std::str::FromStr;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{RelayStore, StoreError, StoreResult, is_unique_violation};
use crate::auth::{Principal, Role};

/// What level of the police hierarchy a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// A ward police unit (Công an phường): the level that collects evidence.
    Ward,
    /// A city police unit.
    City,
    /// A province police department (Công an tỉnh).
    Province,
}

impl UnitKind {
    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Ward => "ward",
            UnitKind::City => "city",
            UnitKind::Province => "province",
        }
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnitKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ward" => Ok(UnitKind::Ward),
            "city" => Ok(UnitKind::City),
            "province" => Ok(UnitKind::Province),
            _ => Err(StoreError::Invalid("a unit kind is ward, city or province")),
        }
    }
}

/// A unit as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitRecord {
    /// Stable id, e.g. "kontum-ngo-may".
    pub id: String,
    /// Display name.
    pub name: String,
    /// Ward, city or province.
    pub kind: UnitKind,
    /// The unit above: a city or province for a ward, a province for a city, none for a
    /// province.
    pub parent_id: Option<String>,
}

/// A user as stored (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Officer, supervisor or admin.
    pub role: Role,
    /// An officer's ward, a supervisor's city or province, an admin's unit.
    pub unit_id: String,
    /// Whether a console password is set.
    pub has_password: bool,
}

/// An enrolled device as stored (without its token hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    /// Device id, given by the relay at enrolment.
    pub id: String,
    /// The user it acts for.
    pub user_id: String,
    /// The name the phone gave itself.
    pub name: String,
    /// Its ed25519 public key, 64 hex digits.
    pub public_key: String,
    /// When it enrolled (ms since the epoch).
    pub created_at: i64,
    /// When it last called the relay (ms; updated at most once a minute).
    pub last_seen: Option<i64>,
    /// When it was revoked (ms), if it was.
    pub revoked_at: Option<i64>,
}

/// A device about to be created by [`RelayStore::enrol`].
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Its new id.
    pub id: String,
    /// The name the phone gave.
    pub name: String,
    /// SHA-256 of its bearer token.
    pub token_hash: [u8; 32],
    /// Its ed25519 public key, 64 hex digits, already validated.
    pub public_key: String,
}

/// Who a successful enrolment enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    /// The user the code was made for.
    pub user_id: String,
    /// Their role.
    pub role: Role,
    /// Their unit.
    pub unit_id: String,
}

/// `last_seen` is refreshed at most this often, so that authentication is not a disk
/// write on every request.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

impl RelayStore {
    /// Adds a unit. A ward's parent must be a city or a province, a city's a province;
    /// a province has no parent.
    ///
    /// Errors: [`StoreError::Duplicate`], [`StoreError::UnknownParent`],
    /// [`StoreError::Invalid`] for a wrong parent kind or a missing parent.
    pub fn add_unit(&self, unit: &UnitRecord) -> StoreResult<()> {
        self.write(|tx| {
            let parent_kind = match &unit.parent_id {
                None => None,
                Some(parent) => Some(
                    tx.query_row("SELECT kind FROM units WHERE id = ?1", [parent], |row| {
                        row.get::<_, String>(0)
                    })
                    .optional()?
                    .ok_or(StoreError::UnknownParent)?
                    .parse::<UnitKind>()
                    .map_err(|_| StoreError::Malformed("unit kind"))?,
                ),
            };
            match (unit.kind, parent_kind) {
                (UnitKind::Ward, Some(UnitKind::City | UnitKind::Province)) => {}
                (UnitKind::Ward, _) => {
                    return Err(StoreError::Invalid(
                        "a ward's parent must be a city or a province",
                    ));
                }
                (UnitKind::City, Some(UnitKind::Province)) => {}
                (UnitKind::City, _) => {
                    return Err(StoreError::Invalid("a city's parent must be a province"));
                }
                (UnitKind::Province, None) => {}
                (UnitKind::Province, Some(_)) => {
                    return Err(StoreError::Invalid("a province has no parent"));
                }
            }
            tx.execute(
                "INSERT INTO units (id, name, kind, parent_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    unit.id,
                    unit.name,
                    unit.kind.as_str(),
                    unit.parent_id,
                    super::now_ms()
                ],
            )
            .map_err(|e| duplicate_or(e, "unit"))?;
            Ok(())
        })
    }

    /// Every unit, provinces first, then cities, then wards, each by id.
    pub fn units(&self) -> StoreResult<Vec<UnitRecord>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT id, name, kind, parent_id FROM units
                 ORDER BY CASE kind WHEN 'province' THEN 0 WHEN 'city' THEN 1 ELSE 2 END, id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get::<_, String>(2)?,
                    row.get(3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, kind, parent_id) = row?;
                out.push(UnitRecord {
                    id,
                    name,
                    kind: kind
                        .parse()
                        .map_err(|_| StoreError::Malformed("unit kind"))?,
                    parent_id,
                });
            }
            Ok(out)
        })
    }

    /// Adds a user. An officer must belong to a ward, a supervisor to a city or a
    /// province; an admin to any unit. `password_hash` is an argon2 PHC string
    /// ([`crate::auth::hash_password`]), never the password.
    ///
    /// Errors: [`StoreError::Duplicate`], [`StoreError::UnknownUnit`],
    /// [`StoreError::Invalid`] for a wrong unit kind.
    pub fn add_user(
        &self,
        id: &str,
        display_name: &str,
        role: Role,
        unit_id: &str,
        password_hash: Option<&str>,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let kind: UnitKind = tx
                .query_row("SELECT kind FROM units WHERE id = ?1", [unit_id], |row| {
                    row.get::<_, String>(0)
                })
                .optional()?
                .ok_or(StoreError::UnknownUnit)?
                .parse()
                .map_err(|_| StoreError::Malformed("unit kind"))?;
            match (role, kind) {
                (Role::Officer, UnitKind::Ward) => {}
                (Role::Officer, _) => {
                    return Err(StoreError::Invalid("an officer must belong to a ward"));
                }
                (Role::Supervisor, UnitKind::City | UnitKind::Province) => {}
                (Role::Supervisor, UnitKind::Ward) => {
                    return Err(StoreError::Invalid(
                        "a supervisor must belong to a city or a province",
                    ));
                }
                (Role::Admin, _) => {}
            }
            tx.execute(
                "INSERT INTO users (id, display_name, role, unit_id, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    display_name,
                    role.as_str(),
                    unit_id,
                    password_hash,
                    super::now_ms()
                ],
            )
            .map_err(|e| duplicate_or(e, "user"))?;
            Ok(())
        })
    }

    /// Every user, by id.
    pub fn users(&self) -> StoreResult<Vec<UserRecord>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT id, display_name, role, unit_id, password_hash IS NOT NULL
                 FROM users ORDER BY id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get::<_, String>(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, display_name, role, unit_id, has_password) = row?;
                out.push(UserRecord {
                    id,
                    display_name,
                    role: parse_role(&role)?,
                    unit_id,
                    has_password,
                });
            }
            Ok(out)
        })
    }

    /// The user's argon2 PHC string, if they have a password; `None` also for an
    /// unknown user.
    pub fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT password_hash FROM users WHERE id = ?1",
                    [user_id],
                    |row| row.get(0),
                )
                .optional()?
                .flatten())
        })
    }

    /// Stores a one-time enrolment code (its SHA-256) for `user_id`, valid until
    /// `expires_at` (ms).
    ///
    /// Errors: [`StoreError::UnknownUser`].
    pub fn create_enrolment_code(
        &self,
        code_hash: &[u8; 32],
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let known: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)",
                [user_id],
                |row| row.get(0),
            )?;
            if !known {
                return Err(StoreError::UnknownUser);
            }
            tx.execute(
                "INSERT INTO enrolment_codes (code_hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&code_hash[..], user_id, now, expires_at],
            )
            .map_err(|e| duplicate_or(e, "enrolment code"))?;
            Ok(())
        })
    }

    /// Uses the code with hash `code_hash` to create `device`, in one transaction: the
    /// code is marked used and can never enrol another device.
    ///
    /// Errors: [`StoreError::InvalidCode`] for an unknown, used or expired code (the
    /// same error for all three).
    pub fn enrol(
        &self,
        code_hash: &[u8; 32],
        device: &NewDevice,
        now: i64,
    ) -> StoreResult<Enrolled> {
        self.write(|tx| {
            let user_id: String = tx
                .query_row(
                    "SELECT user_id FROM enrolment_codes
                     WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                    params![&code_hash[..], now],
                    |row| row.get(0),
                )
                .optional()?
                .ok_or(StoreError::InvalidCode)?;
            let (role, unit_id): (String, String) = tx.query_row(
                "SELECT role, unit_id FROM users WHERE id = ?1",
                [&user_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            tx.execute(
                "INSERT INTO devices (id, user_id, name, token_hash, public_key, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    device.id,
                    user_id,
                    device.name,
                    &device.token_hash[..],
                    device.public_key,
                    now
                ],
            )?;
            tx.execute(
                "UPDATE enrolment_codes SET used_at = ?2, device_id = ?3 WHERE code_hash = ?1",
                params![&code_hash[..], now, device.id],
            )?;
            Ok(Enrolled {
                user_id,
                role: parse_role(&role)?,
                unit_id,
            })
        })
    }

    /// The principal of the device whose token hashes to `token_hash`, or `None` when no
    /// device has it or the device is revoked. Refreshes the device's `last_seen` (at
    /// most once a minute, to keep authentication a read).
    pub fn authenticate(&self, token_hash: &[u8; 32], now: i64) -> StoreResult<Option<Principal>> {
        let found = self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT d.id, d.last_seen, u.id, u.role, u.unit_id
                     FROM devices d JOIN users u ON u.id = d.user_id
                     WHERE d.token_hash = ?1 AND d.revoked_at IS NULL",
                    [&token_hash[..]],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                        ))
                    },
                )
                .optional()?)
        })?;
        let Some((device_id, last_seen, user_id, role, unit_id)) = found else {
            return Ok(None);
        };
        if last_seen.is_none_or(|seen| now - seen >= LAST_SEEN_RESOLUTION_MS) {
            self.write(|tx| {
                tx.execute(
                    "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
                    params![device_id, now],
                )?;
                Ok(())
            })?;
        }
        Ok(Some(Principal {
            user_id,
            role: parse_role(&role)?,
            unit_id,
            device_id: Some(device_id),
        }))
    }

    /// Every device, by user then creation time.
    pub fn devices(&self) -> StoreResult<Vec<DeviceRecord>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT id, user_id, name, public_key, created_at, last_seen, revoked_at
                 FROM devices ORDER BY user_id, created_at, id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(DeviceRecord {
                    id: row.get(0)?,
                    user_id: row.get(1)?,
                    name: row.get(2)?,
                    public_key: row.get(3)?,
                    created_at: row.get(4)?,
                    last_seen: row.get(5)?,
                    revoked_at: row.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Revokes a device: its token stops working at once, and running relays close its
    /// open connections within about a second (see [`crate::Revocations`]). Returns
    /// `false` if it was already revoked.
    ///
    /// Errors: [`StoreError::UnknownDevice`].
    pub fn revoke_device(&self, device_id: &str, now: i64) -> StoreResult<bool> {
        self.write(|tx| {
            let revoked: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM devices WHERE id = ?1",
                    [device_id],
                    |row| row.get(0),
                )
                .optional()?;
            match revoked {
                None => Err(StoreError::UnknownDevice),
                Some(Some(_)) => Ok(false),
                Some(None) => {
                    tx.execute(
                        "UPDATE devices SET revoked_at = ?2 WHERE id = ?1",
                        params![device_id, now],
                    )?;
                    Ok(true)
                }
            }
        })
    }

    /// Ids of every revoked device.
    pub fn revoked_device_ids(&self) -> StoreResult<Vec<String>> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT id FROM devices WHERE revoked_at IS NOT NULL")?;
            let ids = stmt
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(ids)
        })
    }

    /// **The scope rule**, the only place it is written: the wards whose documents and
    /// photos `principal` may read and write, sorted.
    ///
    /// - an officer: their own ward;
    /// - a supervisor: every ward under their city or province (at any depth);
    /// - an admin: every ward.
    pub fn wards_in_scope(&self, principal: &Principal) -> StoreResult<Vec<String>> {
        self.read(|tx| {
            let sql = match principal.role {
                Role::Officer => "SELECT id FROM units WHERE id = ?1 AND kind = 'ward'",
                Role::Supervisor => {
                    "WITH RECURSIVE under(id, kind) AS (
                         SELECT id, kind FROM units WHERE id = ?1
                         UNION
                         SELECT u.id, u.kind FROM units u JOIN under ON u.parent_id = under.id
                     )
                     SELECT id FROM under WHERE kind = 'ward' ORDER BY id"
                }
                Role::Admin => {
                    "SELECT id FROM units WHERE kind = 'ward' AND ?1 IS NOT NULL ORDER BY id"
                }
            };
            let mut stmt = tx.prepare_cached(sql)?;
            let wards = stmt
                .query_map([&principal.unit_id], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(wards)
        })
    }

    /// Whether `ward_id` is among [`RelayStore::wards_in_scope`] for `principal`.
    pub fn may_access_ward(&self, principal: &Principal, ward_id: &str) -> StoreResult<bool> {
        Ok(self
            .wards_in_scope(principal)?
            .iter()
            .any(|ward| ward == ward_id))
    }
}

fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse().map_err(|_| StoreError::Malformed("role"))
}

fn duplicate_or(err: rusqlite::Error, what: &'static str) -> StoreError {
    if is_unique_violation(&err) {
        StoreError::Duplicate(what)
    } else {
        StoreError::Sqlite(err)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::tests::temp_store;

    /// Province "kt" → city "kt-city" → wards "ngo-may", "tran-hung-dao"; province "th"
    /// → ward "an-hung" directly (two-tier); users for each role.
    pub(crate) fn seed(store: &RelayStore) {
        let unit = |id: &str, kind, parent: Option<&str>| UnitRecord {
            id: id.into(),
            name: format!("Unit {id}"),
            kind,
            parent_id: parent.map(Into::into),
        };
        store
            .add_unit(&unit("kt", UnitKind::Province, None))
            .unwrap();
        store
            .add_unit(&unit("kt-city", UnitKind::City, Some("kt")))
            .unwrap();
        store
            .add_unit(&unit("ngo-may", UnitKind::Ward, Some("kt-city")))
            .unwrap();
        store
            .add_unit(&unit("tran-hung-dao", UnitKind::Ward, Some("kt-city")))
            .unwrap();
        store
            .add_unit(&unit("th", UnitKind::Province, None))
            .unwrap();
        store
            .add_unit(&unit("an-hung", UnitKind::Ward, Some("th")))
            .unwrap();
        store
            .add_user("officer-a", "Officer A", Role::Officer, "ngo-may", None)
            .unwrap();
        store
            .add_user(
                "officer-b",
                "Officer B",
                Role::Officer,
                "tran-hung-dao",
                None,
            )
            .unwrap();
        store
            .add_user(
                "sup-city",
                "Supervisor City",
                Role::Supervisor,
                "kt-city",
                None,
            )
            .unwrap();
        store
            .add_user("sup-kt", "Supervisor KT", Role::Supervisor, "kt", None)
            .unwrap();
        store
            .add_user("admin", "Admin", Role::Admin, "kt", None)
            .unwrap();
    }

    fn principal(user: &str, role: Role, unit: &str) -> Principal {
        Principal {
            user_id: user.into(),
            role,
            unit_id: unit.into(),
            device_id: None,
        }
    }

    #[test]
    fn unit_tree_rules_are_enforced() {
        let (_dir, store) = temp_store();
        seed(&store);
        let unit = |id: &str, kind, parent: Option<&str>| UnitRecord {
            id: id.into(),
            name: "x".into(),
            kind,
            parent_id: parent.map(Into::into),
        };
        assert!(matches!(
            store.add_unit(&unit("kt", UnitKind::Province, None)),
            Err(StoreError::Duplicate("unit"))
        ));
        assert!(matches!(
            store.add_unit(&unit("w", UnitKind::Ward, Some("nowhere"))),
            Err(StoreError::UnknownParent)
        ));
        assert!(matches!(
            store.add_unit(&unit("w", UnitKind::Ward, Some("ngo-may"))),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.add_unit(&unit("w", UnitKind::Ward, None)),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.add_unit(&unit("c", UnitKind::City, Some("kt-city"))),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.add_unit(&unit("p", UnitKind::Province, Some("kt"))),
            Err(StoreError::Invalid(_))
        ));
        let kinds: Vec<_> = store.units().unwrap().iter().map(|u| u.kind).collect();
        assert_eq!(kinds[0], UnitKind::Province);
        assert_eq!(kinds.len(), 6);
    }

    #[test]
    fn user_roles_must_fit_their_unit() {
        let (_dir, store) = temp_store();
        seed(&store);
        assert!(matches!(
            store.add_user("x", "X", Role::Officer, "kt-city", None),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.add_user("x", "X", Role::Supervisor, "ngo-may", None),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.add_user("x", "X", Role::Officer, "nowhere", None),
            Err(StoreError::UnknownUnit)
        ));
        assert!(matches!(
            store.add_user("officer-a", "X", Role::Officer, "ngo-may", None),
            Err(StoreError::Duplicate("user"))
        ));
        store
            .add_user("x", "X", Role::Officer, "ngo-may", Some("$argon2id$fake"))
            .unwrap();
        let x = store
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.id == "x")
            .unwrap();
        assert!(x.has_password);
        assert_eq!(
            store.password_hash("x").unwrap().as_deref(),
            Some("$argon2id$fake")
        );
        assert_eq!(store.password_hash("officer-a").unwrap(), None);
    }

    #[test]
    fn scope_follows_the_unit_tree() {
        let (_dir, store) = temp_store();
        seed(&store);
        let officer = principal("officer-a", Role::Officer, "ngo-may");
        let city = principal("sup-city", Role::Supervisor, "kt-city");
        let province = principal("sup-kt", Role::Supervisor, "kt");
        let admin = principal("admin", Role::Admin, "kt");
        assert_eq!(store.wards_in_scope(&officer).unwrap(), ["ngo-may"]);
        assert_eq!(
            store.wards_in_scope(&city).unwrap(),
            ["ngo-may", "tran-hung-dao"]
        );
        assert_eq!(
            store.wards_in_scope(&province).unwrap(),
            ["ngo-may", "tran-hung-dao"]
        );
        assert_eq!(
            store.wards_in_scope(&admin).unwrap(),
            ["an-hung", "ngo-may", "tran-hung-dao"]
        );
        assert!(store.may_access_ward(&officer, "ngo-may").unwrap());
        assert!(!store.may_access_ward(&officer, "tran-hung-dao").unwrap());
        assert!(store.may_access_ward(&province, "tran-hung-dao").unwrap());
        assert!(!store.may_access_ward(&province, "an-hung").unwrap());
        assert!(store.may_access_ward(&admin, "an-hung").unwrap());
        assert!(!store.may_access_ward(&admin, "kt-city").unwrap());
    }

    fn new_device(id: &str, token: u8) -> NewDevice {
        NewDevice {
            id: id.into(),
            name: "phone".into(),
            token_hash: [token; 32],
            public_key: "00".repeat(32),
        }
    }

    #[test]
    fn a_code_enrols_once_before_it_expires() {
        let (_dir, store) = temp_store();
        seed(&store);
        assert!(matches!(
            store.create_enrolment_code(&[1; 32], "nobody", 0, 10),
            Err(StoreError::UnknownUser)
        ));
        store
            .create_enrolment_code(&[1; 32], "officer-a", 0, 1_000)
            .unwrap();
        store
            .create_enrolment_code(&[2; 32], "officer-a", 0, 1_000)
            .unwrap();
        // Expired.
        assert!(matches!(
            store.enrol(&[2; 32], &new_device("d0", 9), 1_000),
            Err(StoreError::InvalidCode)
        ));
        // Unknown.
        assert!(matches!(
            store.enrol(&[3; 32], &new_device("d0", 9), 10),
            Err(StoreError::InvalidCode)
        ));
        let enrolled = store.enrol(&[1; 32], &new_device("d1", 7), 10).unwrap();
        assert_eq!(enrolled.user_id, "officer-a");
        assert_eq!(enrolled.role, Role::Officer);
        assert_eq!(enrolled.unit_id, "ngo-may");
        // Used.
        assert!(matches!(
            store.enrol(&[1; 32], &new_device("d2", 8), 20),
            Err(StoreError::InvalidCode)
        ));
        assert_eq!(store.devices().unwrap().len(), 1);
    }

    #[test]
    fn revoked_devices_stop_authenticating() {
        let (_dir, store) = temp_store();
        seed(&store);
        store
            .create_enrolment_code(&[1; 32], "officer-a", 0, i64::MAX)
            .unwrap();
        store.enrol(&[1; 32], &new_device("d1", 7), 10).unwrap();
        let p = store.authenticate(&[7; 32], 100).unwrap().unwrap();
        assert_eq!(p.device_id.as_deref(), Some("d1"));
        assert_eq!(p.unit_id, "ngo-may");
        assert_eq!(store.devices().unwrap()[0].last_seen, Some(100));
        // Within a minute, last_seen is not rewritten.
        store.authenticate(&[7; 32], 200).unwrap().unwrap();
        assert_eq!(store.devices().unwrap()[0].last_seen, Some(100));
        assert!(store.authenticate(&[8; 32], 100).unwrap().is_none());
        assert!(store.revoke_device("d1", 300).unwrap());
        assert!(!store.revoke_device("d1", 400).unwrap());
        assert!(matches!(
            store.revoke_device("nope", 400),
            Err(StoreError::UnknownDevice)
        ));
        assert!(store.authenticate(&[7; 32], 500).unwrap().is_none());
        assert_eq!(store.revoked_device_ids().unwrap(), ["d1"]);
        assert_eq!(store.devices().unwrap()[0].revoked_at, Some(300));
    }
}
