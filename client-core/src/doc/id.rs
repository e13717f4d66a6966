//! Document ids, in automerge-repo's form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The id of an assessment document: 16 bytes, written as bs58check like automerge-repo's
/// document ids, so any automerge-repo peer can name it.
///
/// It is derived from the unit and the period, so two officers who create the same
/// unit's assessment for the same period offline create the *same* document (see
/// [`crate::doc::Assessment::create`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct DocumentId([u8; 16]);

impl DocumentId {
    /// The id of `unit`'s assessment for `period`.
    pub fn for_assessment(unit_id: &str, period: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"wardcheck-assessment\0")
            .chain_update(unit_id.as_bytes())
            .chain_update([0])
            .chain_update(period.as_bytes())
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Rebuilds an id from its raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

/// The text is not a bs58check-encoded 16-byte id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a document id")]
pub struct InvalidDocumentId;

impl FromStr for DocumentId {
    type Err = InvalidDocumentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|_| InvalidDocumentId)?;
        Ok(Self(bytes.try_into().map_err(|_| InvalidDocumentId)?))
    }
}

impl From<DocumentId> for String {
    fn from(id: DocumentId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for DocumentId {
    type Error = InvalidDocumentId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_round_trip() {
        let a = DocumentId::for_assessment("ngo-may", "2025");
        assert_eq!(a, DocumentId::for_assessment("ngo-may", "2025"));
        assert_ne!(a, DocumentId::for_assessment("ngo-may", "2026"));
        assert_ne!(a, DocumentId::for_assessment("ngo-may2", "025"));
        assert_eq!(a.to_string().parse(), Ok(a));
    }

    #[test]
    fn bad_ids_are_refused() {
        assert_eq!("".parse::<DocumentId>(), Err(InvalidDocumentId));
        assert_eq!("0OIl".parse::<DocumentId>(), Err(InvalidDocumentId));
        let mut text = DocumentId::for_assessment("u", "p").to_string();
        text.replace_range(0..1, if text.starts_with('2') { "3" } else { "2" });
        assert_eq!(text.parse::<DocumentId>(), Err(InvalidDocumentId));
    }
}
