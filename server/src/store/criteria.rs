//! Criteria sets the relay publishes (`migrations/005_criteria_sets.sql`): an (id, version)
//! holds one content forever; a retired set takes no new assessments and is never
//! deleted.

use rusqlite::{OptionalExtension, params};
use wardcheck_core::blob::BlobHash;
use wardcheck_core::model::{Template, TemplateKey};
use wardcheck_core::sync::listing::ListedSet;

use super::{RelayStore, StoreError, StoreResult};

/// The largest criteria set accepted, as JSON text: the official sets take about 20 KB.
pub const MAX_CRITERIA_SET_BYTES: usize = 256 * 1024;

/// A published criteria set, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriteriaSetRecord {
    /// The set: its id, version, title and criteria.
    pub template: Template,
    /// When it was published, ms since the Unix epoch.
    pub published_at: i64,
    /// Who published it: `admin` (the command line) or a user id.
    pub published_by: String,
    /// When it was retired, if it was.
    pub retired_at: Option<i64>,
}

/// What publishing a set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// It is published now.
    New,
    /// The same content was published under this (id, version) already: nothing changed.
    AlreadyThere,
}

impl RelayStore {
    /// Publishes `template` (validated by the caller) on behalf of `by` at `now`, in its
    /// canonical JSON, once.
    ///
    /// Errors: [`StoreError::Invalid`] if its (id, version) holds other content (retired
    /// or not): a changed set is published as a new version.
    pub fn publish_criteria_set(
        &self,
        template: &Template,
        by: &str,
        now: i64,
    ) -> StoreResult<Published> {
        let json = template.to_json();
        if json.len() > MAX_CRITERIA_SET_BYTES {
            // What phones download is this text: they take none larger.
            return Err(StoreError::Invalid(
                "the criteria set takes more than 256 KiB as published",
            ));
        }
        self.write(|tx| {
            let stored: Option<String> = tx
                .query_row(
                    "SELECT json FROM criteria_sets WHERE id = ?1 AND version = ?2",
                    params![template.id, template.version],
                    |row| row.get(0),
                )
                .optional()?;
            match stored {
                Some(stored) if stored == json => Ok(Published::AlreadyThere),
                Some(_) => Err(StoreError::Invalid(
                    "this version of the criteria set is published with other content; \
                     publish the change as a new version",
                )),
                None => {
                    tx.execute(
                        "INSERT INTO criteria_sets
                             (id, version, json, sha256, published_at, published_by)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            template.id,
                            template.version,
                            json,
                            BlobHash::of(json.as_bytes()).to_string(),
                            now,
                            by
                        ],
                    )?;
                    Ok(Published::New)
                }
            }
        })
    }

    /// Every published set, by id then version.
    pub fn criteria_sets(&self) -> StoreResult<Vec<CriteriaSetRecord>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT json, published_at, published_by, retired_at FROM criteria_sets
                 ORDER BY id, version",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                ))
            })?;
            let mut sets = Vec::new();
            for row in rows {
                let (json, published_at, published_by, retired_at) = row?;
                sets.push(CriteriaSetRecord {
                    template: Template::from_json(&json)
                        .map_err(|_| StoreError::Malformed("criteria set"))?,
                    published_at,
                    published_by,
                    retired_at,
                });
            }
            Ok(sets)
        })
    }

    /// Every published set as phones get it listed (its JSON's SHA-256 and whether it is
    /// retired), by id then version; sets not named yet (see `RelayStore::open`) are left
    /// out.
    pub fn listed_criteria_sets(&self) -> StoreResult<Vec<ListedSet>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, version, sha256, retired_at IS NOT NULL FROM criteria_sets
                 WHERE sha256 IS NOT NULL ORDER BY id, version",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get::<_, String>(2)?,
                    row.get(3)?,
                ))
            })?;
            let mut sets = Vec::new();
            for row in rows {
                let (id, version, hash, retired) = row?;
                let hash = (hash.parse()).map_err(|_| StoreError::Malformed("set hash"))?;
                sets.push(ListedSet {
                    id,
                    version,
                    hash,
                    retired,
                });
            }
            Ok(sets)
        })
    }

    /// The JSON of the published set `key`, as phones download it, or `None`.
    pub fn criteria_set_json(&self, key: &TemplateKey) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT json FROM criteria_sets WHERE id = ?1 AND version = ?2",
                    params![key.id, key.version],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    /// Retires a published set at `now`: it takes no new assessments. Returns `false` if
    /// no set has this key; retiring a retired set keeps its first retirement time.
    pub fn retire_criteria_set(&self, key: &TemplateKey, now: i64) -> StoreResult<bool> {
        self.write(|tx| {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM criteria_sets WHERE id = ?1 AND version = ?2",
                    params![key.id, key.version],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            tx.execute(
                "UPDATE criteria_sets SET retired_at = ?3
                 WHERE id = ?1 AND version = ?2 AND retired_at IS NULL",
                params![key.id, key.version, now],
            )?;
            Ok(exists)
        })
    }
}

#[cfg(test)]
mod tests {
    use wardcheck_core::model::sample_templates;

    use super::*;

    fn store() -> (tempfile::TempDir, RelayStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RelayStore::open(&dir.path().join("relay.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_published_version_keeps_its_content_and_survives_retirement() {
        let (_dir, store) = store();
        let set = sample_templates().remove(0);
        assert_eq!(
            store.publish_criteria_set(&set, "admin", 1).unwrap(),
            Published::New
        );
        assert_eq!(
            store.publish_criteria_set(&set, "admin", 2).unwrap(),
            Published::AlreadyThere
        );
        let mut changed = set.clone();
        changed.criteria[0].title.en.push_str(" (revised)");
        assert!(matches!(
            store.publish_criteria_set(&changed, "admin", 3),
            Err(StoreError::Invalid(_))
        ));
        assert!(store.retire_criteria_set(&set.key(), 4).unwrap());
        assert!(store.retire_criteria_set(&set.key(), 5).unwrap());
        assert!(matches!(
            store.publish_criteria_set(&changed, "admin", 6),
            Err(StoreError::Invalid(_))
        ));
        let listed = store.criteria_sets().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].template, set);
        assert_eq!((listed[0].published_at, listed[0].retired_at), (1, Some(4)));
        // As phones get it: named by its JSON's SHA-256, retired.
        let json = store.criteria_set_json(&set.key()).unwrap().unwrap();
        assert_eq!(json, set.to_json());
        let phones = store.listed_criteria_sets().unwrap();
        assert_eq!(phones.len(), 1);
        assert_eq!(
            (phones[0].id.as_str(), phones[0].version),
            ("model-ward-antt", set.version)
        );
        assert_eq!(phones[0].hash, BlobHash::of(json.as_bytes()));
        assert!(phones[0].retired);
        let unknown = TemplateKey {
            id: "none".into(),
            version: 1,
        };
        assert!(!store.retire_criteria_set(&unknown, 7).unwrap());
    }
}
