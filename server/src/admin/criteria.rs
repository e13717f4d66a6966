//! `wardcheck-relay admin template ...`: publishing, listing and retiring the criteria
//! sets phones receive.

use std::io::Read;
use std::path::Path;

use wardcheck_core::model::{Template, TemplateKey};

use super::{AdminError, format_time, table};
use crate::store::{MAX_CRITERIA_SET_BYTES, Published, RelayStore, StoreError};

/// Who the command line publishes as.
const BY_ADMIN: &str = "admin";

/// `admin template add FILE`: reads the criteria set in `path` (the template JSON format,
/// at most [`MAX_CRITERIA_SET_BYTES`]), checks it (an error names the field and the line)
/// and publishes it at `now`. Says what it did.
pub fn add_template(store: &RelayStore, path: &Path, now: i64) -> Result<String, AdminError> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| AdminError::Invalid(format!("cannot read {shown}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_CRITERIA_SET_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| AdminError::Invalid(format!("cannot read {shown}: {e}")))?;
    if bytes.len() > MAX_CRITERIA_SET_BYTES {
        return Err(AdminError::Invalid(format!(
            "{shown} is larger than {} KiB: not a criteria set",
            MAX_CRITERIA_SET_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| AdminError::Invalid(format!("{shown} is not UTF-8 text")))?;
    let template =
        Template::from_json(&text).map_err(|e| AdminError::Invalid(format!("{shown}: {e}")))?;
    let key = template.key();
    match store.publish_criteria_set(&template, BY_ADMIN, now) {
        Ok(Published::New) => Ok(format!(
            "published {key}: {} ({} criteria)",
            template.title.vi,
            template.criteria.len()
        )),
        Ok(Published::AlreadyThere) => Ok(format!(
            "{key} is published already with this content: nothing changed"
        )),
        Err(StoreError::Invalid(reason)) => Err(AdminError::Invalid(format!("{key}: {reason}"))),
        Err(e) => Err(AdminError::Store(e)),
    }
}

/// `admin template list`: every published set, by id then version.
pub fn list_templates(store: &RelayStore) -> Result<String, AdminError> {
    let rows = (store
        .criteria_sets()
        .map_err(AdminError::Store)?
        .into_iter())
    .map(|set| {
        vec![
            set.template.key().to_string(),
            set.template.criteria.len().to_string(),
            set.template.title.vi.clone(),
            format!("{} by {}", format_time(set.published_at), set.published_by),
            set.retired_at.map(format_time).unwrap_or_default(),
        ]
    })
    .collect();
    Ok(table(
        &["SET", "CRITERIA", "TITLE", "PUBLISHED", "RETIRED"],
        rows,
    ))
}

/// `admin template retire --id ID --version N`: the set takes no new assessments from
/// `now` on; those made from it keep it.
pub fn retire_template(store: &RelayStore, key: &TemplateKey, now: i64) -> Result<(), AdminError> {
    if store
        .retire_criteria_set(key, now)
        .map_err(AdminError::Store)?
    {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "criteria set {key} is not published (see `admin template list`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use wardcheck_core::model::sample_templates;

    use super::*;
    use crate::admin::open_store;

    fn write(dir: &Path, name: &str, text: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_set_is_published_once_and_bad_files_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir.path().join("data")).unwrap();
        let set = sample_templates().remove(1);
        let good = write(dir.path(), "set.json", set.to_json().as_bytes());
        let said = add_template(&store, &good, 1_000).unwrap();
        assert!(
            said.starts_with(&format!("published {}", set.key())),
            "{said}"
        );
        let again = add_template(&store, &good, 2_000).unwrap();
        assert!(again.contains("nothing changed"), "{again}");

        // Other content under the same key, bad JSON, a bad field, too big, not text.
        let mut changed = set.clone();
        changed.criteria[0].title.en.push_str(" (revised)");
        let other = write(dir.path(), "other.json", changed.to_json().as_bytes());
        let broken =
            (set.to_json()).replacen("\"min_photos\": ", "\"min_photos\": \"one\", \"x\": ", 1);
        let cases = [
            (other, "publish the change as a new version"),
            (
                write(dir.path(), "syntax.json", b"{\n  \"id\": \"x\",\n"),
                "line 3",
            ),
            (
                write(dir.path(), "field.json", broken.as_bytes()),
                "min_photos",
            ),
            (
                write(
                    dir.path(),
                    "big.json",
                    &vec![b' '; MAX_CRITERIA_SET_BYTES + 1],
                ),
                "larger than 256 KiB",
            ),
            (
                write(dir.path(), "binary.json", &[0xff, 0xfe, 0]),
                "not UTF-8",
            ),
            (dir.path().join("missing.json"), "cannot read"),
        ];
        for (path, expected) in cases {
            let error = add_template(&store, &path, 3_000).unwrap_err().to_string();
            assert!(error.contains(expected), "{}: {error}", path.display());
        }
        let listed = list_templates(&store).unwrap();
        assert_eq!(listed.lines().count(), 2, "{listed}");
        assert!(listed.contains(&set.key().to_string()), "{listed}");

        retire_template(&store, &set.key(), 4_000).unwrap();
        assert!(
            list_templates(&store)
                .unwrap()
                .contains("1970-01-01 00:00 UTC")
        );
        let unknown = TemplateKey {
            id: "none".into(),
            version: 9,
        };
        let error = retire_template(&store, &unknown, 5_000).unwrap_err();
        assert!(
            error.to_string().contains("none@9 is not published"),
            "{error}"
        );
    }
}
