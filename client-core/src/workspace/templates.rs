//! Criteria sets (templates) and the assessments made from them: the samples built into
//! the app, those an app installs, and those the relay publishes (listed on the sync
//! connection, see [`crate::sync::listing`]); a set the relay retired takes no new
//! assessments.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Workspace, now_ms};
use crate::doc::{Assessment, DocumentId};
use crate::error::{Error, Result};
use crate::model::{Template, TemplateKey, Unit, sample_templates};
use crate::sync::listing::ListedSet;

/// The setting that holds the criteria sets the relay listed last.
const PUBLISHED_SETS_SETTING: &str = "published-sets";

/// An installed criteria set, and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledTemplate {
    /// The set.
    pub template: Arc<Template>,
    /// One of the illustrative samples built into the app, not an official set.
    pub sample: bool,
    /// Published by the relay (as its last listing says).
    pub published: bool,
    /// Retired by the relay: it takes no new assessments (those made from it stay).
    pub retired: bool,
}

impl Workspace {
    /// Installs a template from its JSON (replacing the same id and version).
    pub fn install_template(&self, json: &str) -> Result<TemplateKey> {
        let template = Template::from_json(json)?;
        let key = template.key();
        let mut inner = self.lock();
        inner
            .store
            .write(|w| w.put_template(&template.id, template.version, &template.to_json()))?;
        inner.templates.insert(key.clone(), Arc::new(template));
        Ok(key)
    }

    /// Every installed template, by id then version.
    pub fn templates(&self) -> Vec<Arc<Template>> {
        self.lock().templates.values().cloned().collect()
    }

    /// Every installed template, by id then version, marked: sample, published by the
    /// relay, retired.
    pub fn installed_templates(&self) -> Result<Vec<InstalledTemplate>> {
        let samples: BTreeSet<TemplateKey> = sample_templates().iter().map(Template::key).collect();
        let published = self.published_sets()?;
        let listed = |key: &TemplateKey| {
            (published.iter()).find(|set| set.id == key.id && set.version == key.version)
        };
        Ok(self
            .templates()
            .into_iter()
            .map(|template| {
                let key = template.key();
                InstalledTemplate {
                    sample: samples.contains(&key),
                    published: listed(&key).is_some(),
                    retired: listed(&key).is_some_and(|set| set.retired),
                    template,
                }
            })
            .collect())
    }

    /// Whether the template `key` is installed.
    pub fn has_template(&self, key: &TemplateKey) -> bool {
        self.lock().templates.contains_key(key)
    }

    /// The criteria sets the relay listed last (see [`Workspace::save_published_sets`]).
    pub fn published_sets(&self) -> Result<Vec<ListedSet>> {
        let value = self.lock().store.setting(PUBLISHED_SETS_SETTING)?;
        Ok(value
            .and_then(|value| serde_json::from_str(&value).ok())
            .unwrap_or_default())
    }

    /// Keeps the criteria sets the relay listed: which are published, which retired.
    pub fn save_published_sets(&self, sets: &[ListedSet]) -> Result<()> {
        let value = serde_json::to_string(sets).unwrap_or_default();
        (self.lock().store).write(|w| w.set_setting(PUBLISHED_SETS_SETTING, &value))
    }

    /// [`Error::InvalidInput`] if the relay retired the set `key`.
    fn check_not_retired(&self, key: &TemplateKey) -> Result<()> {
        let published = self.published_sets()?;
        let retired = (published.iter())
            .any(|set| set.retired && set.id == key.id && set.version == key.version);
        if retired {
            return Err(Error::InvalidInput(format!(
                "the criteria set {} version {} is retired: it takes no new assessments",
                key.id, key.version
            )));
        }
        Ok(())
    }

    /// Creates `unit`'s assessment for `period` from an installed template (not one the
    /// relay retired).
    pub fn create_assessment(
        &self,
        unit: &Unit,
        period: &str,
        template: &TemplateKey,
    ) -> Result<DocumentId> {
        self.check_not_retired(template)?;
        let mut inner = self.lock();
        let template = inner.template(template)?;
        let assessment = Assessment::create(unit, period, template)?;
        inner.insert_new(assessment)
    }

    /// Creates the next period's assessment from `previous` (see
    /// [`Assessment::create_next`]), from a template the relay did not retire.
    pub fn create_next_period(
        &self,
        previous: &DocumentId,
        period: &str,
        template: &TemplateKey,
    ) -> Result<DocumentId> {
        self.check_not_retired(template)?;
        let mut inner = self.lock();
        let author = inner.author(&self.device_id)?;
        let template = inner.template(template)?;
        let next =
            Assessment::create_next(inner.doc(previous)?, period, template, &author, now_ms())?;
        inner.insert_new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobHash;
    use crate::testing::sample_unit;

    #[test]
    fn samples_are_marked_and_a_retired_set_takes_no_new_assessment() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        ws.set_user("officer-a").unwrap();
        let installed = ws.installed_templates().unwrap();
        assert_eq!(installed.len(), 2);
        assert!(
            installed
                .iter()
                .all(|t| t.sample && !t.published && !t.retired)
        );

        let [old, new] = [0, 1].map(|n| sample_templates().remove(n).key());
        let listed = |key: &TemplateKey, retired| ListedSet {
            id: key.id.clone(),
            version: key.version,
            hash: BlobHash::of(b"set"),
            retired,
        };
        ws.save_published_sets(&[listed(&old, true), listed(&new, false)])
            .unwrap();
        let installed = ws.installed_templates().unwrap();
        let marks: Vec<_> = (installed.iter())
            .map(|t| (t.template.key(), t.published, t.retired))
            .collect();
        assert_eq!(
            marks,
            [(old.clone(), true, true), (new.clone(), true, false)]
        );
        assert!(matches!(
            ws.create_assessment(&sample_unit(), "2026", &old),
            Err(Error::InvalidInput(_))
        ));
        ws.create_assessment(&sample_unit(), "2026", &new).unwrap();
    }
}
