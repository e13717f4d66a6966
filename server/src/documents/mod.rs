//! The relay's assessment documents in memory, and the one way changes get into them.
//!
//! | module | holds |
//! |---|---|
//! | `cache` | [`DocCache`]: one shared copy per document, bounded, reloaded from the store |
//! | `intake` | [`Intake`]: copy → change policy → store → swap, for every path that takes changes in |
//! | `pending` | [`PendingPushes`]: new documents pushed in parts, bounded and expiring |
//! | `host` | [`RelayHost`]: the sync session's host, with the scope rule |

mod cache;
mod host;
mod intake;
pub mod pending;

pub use cache::{DEFAULT_CACHED_DOCUMENTS, DocCache, SharedDoc};
pub use host::RelayHost;
pub use intake::Intake;
pub use pending::PendingPushes;

use wardcheck_core::policy::Refusal;

use crate::store::StoreError;

/// Opening or changing a document failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// There is no such document.
    #[error("no such document")]
    NotFound,
    /// The document belongs to a ward outside the caller's scope.
    #[error("the document is outside the scope")]
    OutOfScope,
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored document does not load as an assessment.
    #[error("the stored document does not load: {0}")]
    Corrupt(String),
    /// The edit itself failed; nothing changed.
    #[error(transparent)]
    Edit(#[from] wardcheck_core::Error),
    /// The change policy refused the changes; nothing changed.
    #[error("refused: {0}")]
    Refused(Refusal),
}

#[cfg(test)]
pub(crate) mod testing {
    //! Stored documents for tests.

    use std::sync::Arc;

    use wardcheck_core::doc::{Assessment, DocumentId};
    use wardcheck_core::model::{Unit, sample_templates};

    use crate::store::RelayStore;

    /// A new assessment of `ward` for 2025 (the sample 2024 criteria).
    pub(crate) fn assessment(ward: &str) -> Assessment {
        assessment_for(ward, "2025")
    }

    /// A new assessment of `ward` for `period` (the sample 2024 criteria).
    pub(crate) fn assessment_for(ward: &str, period: &str) -> Assessment {
        let unit = Unit {
            id: ward.into(),
            name: format!("Ward {ward}"),
            city: "Kon Tum".into(),
            province: "Kon Tum".into(),
        };
        let template = Arc::new(sample_templates().remove(1));
        Assessment::create(&unit, period, template).unwrap()
    }

    /// Stores a new assessment of `ward` (a seeded ward) and returns its id.
    pub(crate) fn stored(store: &RelayStore, ward: &str) -> DocumentId {
        let doc = assessment(ward);
        let id = doc.id().unwrap();
        store
            .insert_document(&id, ward, &doc.save(), &doc.heads_key(), &[], &[])
            .unwrap();
        id
    }
}
