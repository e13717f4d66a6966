//! The `wardcheck-relay admin` commands, as functions: units, users, enrolment codes,
//! devices, criteria sets (`admin/criteria.rs`). `main.rs` parses the command line and
//! prints what these return; tests call them directly.
//!
//! Unlike the HTTP API's errors, these speak to the operator at the relay's console and
//! name the ids they typed.

use std::path::Path;
use std::time::Duration;

mod criteria;
pub use criteria::{add_template, list_templates, retire_template};

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

use crate::auth::{self, Role};
use crate::names::{self, NameError};
use crate::store::{OpenStoreError, RelayStore, StoreError, UnitKind, UnitLocation, UnitRecord};

/// An admin command failed; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The data folder or database could not be opened.
    #[error("cannot open the data folder: {0}")]
    Open(String),
    /// No unit has this id.
    #[error("unit {0:?} does not exist (see `admin unit list`)")]
    UnknownUnit(String),
    /// No user has this id.
    #[error("user {0:?} does not exist (see `admin user list`)")]
    UnknownUser(String),
    /// No device has this id.
    #[error("device {0:?} does not exist (see `admin device list`)")]
    UnknownDevice(String),
    /// The id is taken.
    #[error("{what} {id:?} already exists")]
    Duplicate {
        /// "unit" or "user".
        what: &'static str,
        /// The id.
        id: String,
    },
    /// The request breaks a rule; the text says which.
    #[error("{0}")]
    Invalid(String),
    /// An id or a name that cannot be stored or looked up (see [`crate::names`]).
    #[error("the {what} {reason}")]
    Refused {
        /// What was typed: "unit id", "user name"...
        what: &'static str,
        /// Why it was refused.
        reason: NameError,
    },
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Opens the relay database of the data folder `data_dir`, creating both if needed.
pub fn open_store(data_dir: &Path) -> Result<RelayStore, AdminError> {
    crate::state::create_private_dir(data_dir).map_err(|e| AdminError::Open(e.to_string()))?;
    RelayStore::open(&data_dir.join("relay.sqlite3"))
        .map_err(|e: OpenStoreError| AdminError::Open(e.to_string()))
}

/// `id` checked by [`names::id`]; `what` names it in the error ("unit id").
fn checked_id<'a>(what: &'static str, id: &'a str) -> Result<&'a str, AdminError> {
    names::id(id).map_err(|reason| AdminError::Refused { what, reason })
}

/// `name` checked and trimmed by [`names::name`]; `what` names it in the error.
fn checked_name<'a>(what: &'static str, name: &'a str) -> Result<&'a str, AdminError> {
    names::name(name).map_err(|reason| AdminError::Refused { what, reason })
}

/// `admin unit add`.
pub fn add_unit(
    store: &RelayStore,
    id: &str,
    name: &str,
    kind: UnitKind,
    parent: Option<&str>,
) -> Result<(), AdminError> {
    let unit = UnitRecord {
        id: checked_id("unit id", id)?.to_owned(),
        name: checked_name("unit name", name)?.to_owned(),
        kind,
        parent_id: parent
            .map(|parent| checked_id("parent unit id", parent))
            .transpose()?
            .map(str::to_owned),
    };
    store.add_unit(&unit).map_err(|err| match err {
        StoreError::Duplicate(what) => AdminError::Duplicate {
            what,
            id: id.to_owned(),
        },
        StoreError::UnknownParent => AdminError::UnknownUnit(parent.unwrap_or_default().to_owned()),
        StoreError::Invalid(rule) => AdminError::Invalid(rule.to_owned()),
        other => AdminError::Store(other),
    })
}

/// `admin unit locate`: where a unit is (a centre and a radius in metres), so the console
/// can tell whether a photo's GPS lies inside it.
pub fn locate_unit(
    store: &RelayStore,
    id: &str,
    lat: f64,
    lon: f64,
    radius_m: f64,
) -> Result<(), AdminError> {
    checked_id("unit id", id)?;
    let valid = (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
        && radius_m.is_finite()
        && radius_m > 0.0;
    if !valid {
        return Err(AdminError::Invalid(
            "latitude is -90 to 90, longitude -180 to 180, the radius a positive number of metres"
                .into(),
        ));
    }
    store
        .set_unit_location(id, Some(UnitLocation { lat, lon, radius_m }))
        .map_err(|err| match err {
            StoreError::UnknownUnit => AdminError::UnknownUnit(id.to_owned()),
            other => AdminError::Store(other),
        })
}

/// `admin unit list`: a table.
pub fn list_units(store: &RelayStore) -> Result<String, AdminError> {
    let rows = store
        .units()
        .map_err(AdminError::Store)?
        .into_iter()
        .map(|u| {
            vec![
                u.id,
                u.kind.to_string(),
                u.parent_id.unwrap_or_else(|| "-".into()),
                u.name,
            ]
        })
        .collect();
    Ok(table(&["ID", "KIND", "PARENT", "NAME"], rows))
}

/// `admin user add`. `password` is hashed with argon2id; only the hash is stored.
pub fn add_user(
    store: &RelayStore,
    id: &str,
    name: &str,
    role: Role,
    unit: &str,
    password: Option<&str>,
) -> Result<(), AdminError> {
    checked_id("user id", id)?;
    checked_id("unit id", unit)?;
    let name = checked_name("user name", name)?;
    if password.is_some_and(|p| p.chars().count() < 8) {
        return Err(AdminError::Invalid(
            "a password has at least 8 characters".into(),
        ));
    }
    let hash = password.map(auth::hash_password);
    store
        .add_user(id, name, role, unit, hash.as_deref())
        .map_err(|err| match err {
            StoreError::Duplicate(what) => AdminError::Duplicate {
                what,
                id: id.to_owned(),
            },
            StoreError::UnknownUnit => AdminError::UnknownUnit(unit.to_owned()),
            StoreError::Invalid(rule) => AdminError::Invalid(rule.to_owned()),
            other => AdminError::Store(other),
        })
}

/// `admin user list`: a table.
pub fn list_users(store: &RelayStore) -> Result<String, AdminError> {
    let rows = store
        .users()
        .map_err(AdminError::Store)?
        .into_iter()
        .map(|u| {
            vec![
                u.id,
                u.role.to_string(),
                u.unit_id,
                if u.has_password { "yes" } else { "no" }.into(),
                u.display_name,
            ]
        })
        .collect();
    Ok(table(&["ID", "ROLE", "UNIT", "PASSWORD", "NAME"], rows))
}

/// A freshly made enrolment code: shown once, stored only as its hash.
#[derive(Debug, Clone)]
pub struct EnrolmentCode {
    /// The code to type, e.g. `7K2M-QX9D-0RTA-HB4W`.
    pub code: String,
    /// When it stops working (ms since the epoch).
    pub expires_at: i64,
    /// `wardcheck://enrol?relay=<url>&code=<code>`, what the QR code holds.
    pub link: String,
    /// The link as a QR code drawn with Unicode half blocks (two rows a line), light
    /// on dark as most terminals are, with its quiet zone.
    pub qr: String,
}

impl EnrolmentCode {
    /// What `admin device enrol-code` prints.
    pub fn render(&self, user_id: &str) -> String {
        format!(
            "Enrolment code for user {user_id} (single use, expires {}):\n\n    {}\n\n\
             Scan this with the wardcheck app, or type the code there:\n{}\n{}\n",
            format_time(self.expires_at),
            self.code,
            self.qr,
            self.link,
        )
    }
}

/// Longest relay URL put in an enrolment link, in bytes: percent-encoded three times
/// over, the link still fits in a QR code.
pub const MAX_RELAY_URL_BYTES: usize = 512;

/// `admin device enrol-code`: a one-time code for `user_id`, valid for `ttl`, with the
/// link to `relay_url` as a QR code. Everything that can be refused is checked, and the QR
/// code drawn, before the code is stored.
pub fn enrol_code(
    store: &RelayStore,
    user_id: &str,
    ttl: Duration,
    relay_url: &str,
    now: i64,
) -> Result<EnrolmentCode, AdminError> {
    if ttl.is_zero() {
        return Err(AdminError::Invalid(
            "the code must live longer than 0 hours".into(),
        ));
    }
    checked_id("user id", user_id)?;
    let relay_url = checked_relay_url(relay_url)?;
    let code = auth::new_enrolment_code();
    let hash = auth::enrolment_code_hash(&code).expect("a new code is valid");
    let expires_at = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let link = format!(
        "wardcheck://enrol?relay={}&code={}",
        percent_encode(relay_url),
        code
    );
    let qr = QrCode::new(link.as_bytes())
        .map_err(|_| AdminError::Invalid("the enrolment link does not fit in a QR code".into()))?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    store
        .create_enrolment_code(&hash, user_id, now, expires_at)
        .map_err(|err| match err {
            StoreError::UnknownUser => AdminError::UnknownUser(user_id.to_owned()),
            other => AdminError::Store(other),
        })?;
    Ok(EnrolmentCode {
        code,
        expires_at,
        link,
        qr,
    })
}

/// `url` without its trailing `/`, if it is an `http(s)://` URL of at most
/// [`MAX_RELAY_URL_BYTES`] with no spaces or control characters.
fn checked_relay_url(url: &str) -> Result<&str, AdminError> {
    let url = url.trim_end_matches('/');
    let valid = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= MAX_RELAY_URL_BYTES
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(url)
    } else {
        Err(AdminError::Invalid(format!(
            "the relay URL must be http:// or https://, at most {MAX_RELAY_URL_BYTES} bytes, \
             without spaces"
        )))
    }
}

/// `admin device list`: a table.
pub fn list_devices(store: &RelayStore) -> Result<String, AdminError> {
    let rows = store
        .devices()
        .map_err(AdminError::Store)?
        .into_iter()
        .map(|d| {
            vec![
                d.id,
                d.user_id,
                format_time(d.created_at),
                d.last_seen.map_or_else(|| "never".into(), format_time),
                d.revoked_at.map_or_else(|| "-".into(), format_time),
                d.name,
            ]
        })
        .collect();
    Ok(table(
        &["ID", "USER", "ENROLLED", "LAST SEEN", "REVOKED", "NAME"],
        rows,
    ))
}

/// `admin device revoke`: `true` if revoked now, `false` if it already was. Running
/// relays refuse its token at once and close its connections within about a second.
pub fn revoke_device(store: &RelayStore, device_id: &str, now: i64) -> Result<bool, AdminError> {
    store
        .revoke_device(device_id, now)
        .map_err(|err| match err {
            StoreError::UnknownDevice => AdminError::UnknownDevice(device_id.to_owned()),
            other => AdminError::Store(other),
        })
}

/// `2025-06-01 08:30 UTC`.
fn format_time(ms: i64) -> String {
    let format =
        time::format_description::parse_borrowed::<2>("[year]-[month]-[day] [hour]:[minute] UTC")
            .expect("a valid format description");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Left-aligned columns, two spaces apart. A cell stored before names were checked shows
/// its control characters and bidirectional overrides escaped.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| names::printable(&cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now_ms;

    fn store() -> (tempfile::TempDir, RelayStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("data")).unwrap();
        (dir, store)
    }

    fn tree(store: &RelayStore) {
        add_unit(
            store,
            "kt",
            "Công an tỉnh Kon Tum",
            UnitKind::Province,
            None,
        )
        .unwrap();
        add_unit(store, "kt-city", "Kon Tum city", UnitKind::City, Some("kt")).unwrap();
        add_unit(
            store,
            "ngo-may",
            "Công an phường Ngô Mây",
            UnitKind::Ward,
            Some("kt-city"),
        )
        .unwrap();
    }

    #[test]
    fn units_and_users_with_clear_errors() {
        let (_dir, store) = store();
        tree(&store);
        let err = add_unit(&store, "x", "X", UnitKind::Ward, Some("nowhere")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unit \"nowhere\" does not exist (see `admin unit list`)"
        );
        let err = add_unit(&store, "kt", "X", UnitKind::Province, None).unwrap_err();
        assert_eq!(err.to_string(), "unit \"kt\" already exists");
        let err = add_unit(&store, "x", "X", UnitKind::Ward, Some("kt-city")).map(|_| ());
        assert!(err.is_ok());
        let err = add_unit(&store, "bad id", "X", UnitKind::Province, None).unwrap_err();
        assert!(matches!(
            err,
            AdminError::Refused {
                what: "unit id",
                ..
            }
        ));
        locate_unit(&store, "ngo-may", 14.35, 108.0, 1500.0).unwrap();
        assert_eq!(store.unit_locations().unwrap()["ngo-may"].radius_m, 1500.0);
        let err = locate_unit(&store, "nowhere", 14.0, 108.0, 10.0).unwrap_err();
        assert!(matches!(err, AdminError::UnknownUnit(ref u) if u == "nowhere"));
        let err = locate_unit(&store, "ngo-may", 91.0, 108.0, 10.0).unwrap_err();
        assert!(matches!(err, AdminError::Invalid(_)));

        add_user(&store, "a", "Officer A", Role::Officer, "ngo-may", None).unwrap();
        let err = add_user(&store, "b", "B", Role::Officer, "kt-city", None).unwrap_err();
        assert_eq!(err.to_string(), "an officer must belong to a ward");
        let err = add_user(&store, "b", "B", Role::Supervisor, "nowhere", None).unwrap_err();
        assert!(matches!(err, AdminError::UnknownUnit(ref u) if u == "nowhere"));
        let err = add_user(&store, "a", "A", Role::Officer, "ngo-may", None).unwrap_err();
        assert_eq!(err.to_string(), "user \"a\" already exists");
        let err = add_user(&store, "c", "C", Role::Supervisor, "kt", Some("short")).unwrap_err();
        assert!(matches!(err, AdminError::Invalid(_)));
        add_user(
            &store,
            "c",
            "C",
            Role::Supervisor,
            "kt",
            Some("long enough"),
        )
        .unwrap();
        let hash = store.password_hash("c").unwrap().unwrap();
        assert!(crate::passwords::verify_in(
            "long enough",
            &hash,
            &mut Vec::new()
        ));

        let units = list_units(&store).unwrap();
        assert!(units.starts_with("ID"));
        assert!(units.contains("ngo-may"));
        assert!(units.contains("Công an phường Ngô Mây"));
        let users = list_users(&store).unwrap();
        assert!(
            users
                .lines()
                .any(|l| l.starts_with("c ") && l.contains("yes"))
        );
    }

    #[test]
    fn enrolment_codes_come_with_a_qr_link() {
        let (_dir, store) = store();
        tree(&store);
        add_user(&store, "a", "Officer A", Role::Officer, "ngo-may", None).unwrap();
        let err =
            enrol_code(&store, "nobody", Duration::from_secs(3600), "http://x", 0).unwrap_err();
        assert!(matches!(err, AdminError::UnknownUser(_)));
        let now = now_ms();
        let code = enrol_code(
            &store,
            "a",
            Duration::from_secs(72 * 3600),
            "https://relay.example:8443/",
            now,
        )
        .unwrap();
        assert_eq!(code.expires_at, now + 72 * 3600 * 1000);
        assert_eq!(
            code.link,
            format!(
                "wardcheck://enrol?relay=https%3A%2F%2Frelay.example%3A8443&code={}",
                code.code
            )
        );
        let printed = code.render("a");
        assert!(printed.contains(&code.code));
        assert!(printed.contains('▀') || printed.contains('▄') || printed.contains('█'));
        assert!(printed.contains("UTC"));
        // The code enrols through the store.
        let hash = auth::enrolment_code_hash(&code.code).unwrap();
        let device = crate::store::NewDevice {
            id: "d-1".into(),
            name: "phone".into(),
            token_hash: [1; 32],
            public_key: "22".repeat(32),
        };
        store.enrol(&hash, &device, now).unwrap();
        let devices = list_devices(&store).unwrap();
        assert!(devices.contains("d-1"));
        assert!(revoke_device(&store, "d-1", now).unwrap());
        assert!(!revoke_device(&store, "d-1", now).unwrap());
        assert!(matches!(
            revoke_device(&store, "d-2", now),
            Err(AdminError::UnknownDevice(_))
        ));
    }

    /// The number of enrolment codes stored.
    fn stored_codes(dir: &tempfile::TempDir) -> i64 {
        rusqlite::Connection::open(dir.path().join("data/relay.sqlite3"))
            .unwrap()
            .query_row("SELECT count(*) FROM enrolment_codes", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn names_that_would_break_a_table_are_refused_before_anything_is_stored() {
        let (_dir, store) = store();
        tree(&store);
        for (name, reason) in [
            ("Ngô\u{1b}[2J Mây", NameError::Control),
            ("line\nbreak", NameError::Control),
            ("ward \u{202E}reversed", NameError::Bidi),
            ("isolate \u{2066}x", NameError::Bidi),
        ] {
            let err = add_unit(&store, "w", name, UnitKind::Ward, Some("kt")).unwrap_err();
            assert!(
                matches!(err, AdminError::Refused { what: "unit name", reason: r } if r == reason),
                "{name:?}: {err}"
            );
            let err = add_user(&store, "u", name, Role::Officer, "ngo-may", None).unwrap_err();
            assert!(matches!(
                err,
                AdminError::Refused {
                    what: "user name",
                    ..
                }
            ));
        }
        let long = "x".repeat(names::MAX_NAME_CHARS + 1);
        let err = add_unit(&store, "w", &long, UnitKind::Ward, Some("kt")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the unit name is longer than 100 characters"
        );
        let err = add_unit(&store, "w", "W", UnitKind::Ward, Some("k\nt")).unwrap_err();
        assert!(matches!(
            err,
            AdminError::Refused {
                what: "parent unit id",
                ..
            }
        ));
        let err = add_user(&store, "u", "U", Role::Officer, "ngo\u{1b}", None).unwrap_err();
        assert!(matches!(
            err,
            AdminError::Refused {
                what: "unit id",
                ..
            }
        ));
        let err = add_unit(&store, "w", "\u{7}", UnitKind::Ward, Some("kt")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the unit name holds a control character (such as a newline or ESC)"
        );
        let units = list_units(&store).unwrap();
        assert_eq!(units.lines().count(), 4, "{units}");
        assert_eq!(list_users(&store).unwrap().lines().count(), 1);
    }

    #[test]
    fn a_relay_url_that_cannot_make_a_qr_code_stores_no_code() {
        let (dir, store) = store();
        tree(&store);
        add_user(&store, "a", "Officer A", Role::Officer, "ngo-may", None).unwrap();
        let ttl = Duration::from_secs(3600);
        let long = format!("https://relay.example/{}", "é".repeat(2000));
        for url in [
            long.as_str(),
            "ftp://relay.example",
            "https://relay example",
        ] {
            let err = enrol_code(&store, "a", ttl, url, 0).unwrap_err();
            assert!(matches!(err, AdminError::Invalid(_)), "{url}: {err}");
        }
        let err = enrol_code(&store, "a\nb", ttl, "https://relay.example", 0).unwrap_err();
        assert!(matches!(
            err,
            AdminError::Refused {
                what: "user id",
                ..
            }
        ));
        assert_eq!(stored_codes(&dir), 0);
        // The longest URL allowed, all of it percent-encoded, still makes a QR code.
        let longest = format!("https://{}", "é".repeat((MAX_RELAY_URL_BYTES - 8) / 2));
        let code = enrol_code(&store, "a", ttl, &longest, 0).unwrap();
        assert!(code.qr.contains('▀') || code.qr.contains('▄'));
        assert_eq!(stored_codes(&dir), 1);
    }

    #[test]
    fn names_stored_before_the_checks_print_escaped() {
        let text = table(
            &["ID", "NAME"],
            vec![vec!["d".into(), "a\u{1b}[2J\nb".into()]],
        );
        assert_eq!(text, "ID  NAME\nd   a\\u{1b}[2J\\u{a}b\n");
    }

    #[test]
    fn tables_align() {
        let text = table(&["A", "BB"], vec![vec!["long".into(), "x".into()]]);
        assert_eq!(text, "A     BB\nlong  x\n");
    }
}
