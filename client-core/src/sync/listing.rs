//! The documents a relay lists for a phone, sent on the sync connection itself
//! (wardcheck's addition to the protocol: a `wardcheck-documents` message, sent only to
//! a phone that asks for it when it opens the connection, so automerge-repo peers never
//! see one).
//!
//! On a link that drops every few KB, a listing fetched over a connection of its own costs
//! a cut of its own; on the sync connection it costs no round trip (the relay sends it
//! first, before `peer`), and next to nothing when unchanged: the phone names the
//! [`tag`] of the listing it holds, and a relay whose listing has the same tag sends the
//! tag alone. The tag covers the documents' sizes too, so any write in scope changes it.
//!
//! Each document comes with the name and size of the relay's snapshot of it: a phone
//! that lacks the document downloads that snapshot over HTTP, resuming with `Range` where
//! a cut download stopped, and syncs only the changes after it. The listing also names
//! the criteria sets the relay publishes ([`ListedSet`]), which a phone that lacks one
//! downloads (`GET /v1/criteria-sets/{id}/{version}`): a new set reaches the phones at
//! their next sync, and an unchanged listing costs its tag alone.
//!
//! [`tag`]: Listing::tag

use sha2::{Digest, Sha256};

use crate::blob::BlobHash;
use crate::doc::DocumentId;

/// Most documents a listing may name: 2,000 wards' worth of assessments (a relay lists no
/// more; a phone refuses a longer listing as malformed).
pub const MAX_LISTED_DOCUMENTS: usize = 100_000;

/// The longest tag a phone takes (it goes back in the URL of its next connection).
pub const MAX_TAG_BYTES: usize = 64;

/// Most criteria sets a listing may name.
pub const MAX_LISTED_SETS: usize = 1_000;

/// The longest criteria set id a listing may name, in bytes.
pub const MAX_SET_ID_BYTES: usize = 128;

/// A document the relay holds and the phone may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedDocument {
    /// Its id.
    pub id: DocumentId,
    /// About how many bytes it takes on the relay (its compacted state and the changes
    /// since, as stored).
    pub bytes: u64,
    /// The relay's snapshot of it (`None` from a relay that serves none).
    #[serde(default)]
    pub snapshot: Option<ListedSnapshot>,
}

/// A snapshot a relay serves of a document (`GET /v1/documents/{id}/snapshot/{sha256}`):
/// what a phone that lacks the document downloads. Listed only to phones that ask
/// (`&snapshots=1`), so phones built before snapshots read the listing they know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedSnapshot {
    /// The SHA-256 of its bytes: its name, and what a phone checks them against.
    pub hash: BlobHash,
    /// Its size.
    pub bytes: u64,
}

/// A criteria set the relay publishes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedSet {
    /// Its id.
    pub id: String,
    /// Its version.
    pub version: u32,
    /// The SHA-256 of its JSON as the relay serves it.
    pub hash: BlobHash,
    /// Whether it is retired: it takes no new assessments (those made from it stay).
    pub retired: bool,
}

/// The relay's listing for a phone, or only its tag when the phone holds it already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Names the listing: equal tags, equal listings.
    pub tag: String,
    /// The documents; `None` when the phone's tag was this one (it has them).
    pub documents: Option<Vec<ListedDocument>>,
    /// The criteria sets (empty with the tag alone, and from relays that list none).
    pub sets: Vec<ListedSet>,
}

impl Listing {
    /// The whole listing of `documents` and `sets`, tagged.
    pub fn of(documents: Vec<ListedDocument>, sets: Vec<ListedSet>) -> Self {
        Self {
            tag: tag_of(&documents, &sets),
            documents: Some(documents),
            sets,
        }
    }

    /// What to send a phone that holds the listing tagged `held`: the tag alone if it is
    /// this listing's.
    pub fn for_holder(self, held: &str) -> Self {
        if self.tag == held {
            Self {
                tag: self.tag,
                documents: None,
                sets: Vec::new(),
            }
        } else {
            self
        }
    }
}

/// The tag of a listing: 16 hex digits of the SHA-256 of its entries, in order.
fn tag_of(documents: &[ListedDocument], sets: &[ListedSet]) -> String {
    let mut hasher = Sha256::new();
    for document in documents {
        hasher.update(document.id.as_bytes());
        hasher.update(document.bytes.to_le_bytes());
        if let Some(snapshot) = &document.snapshot {
            hasher.update(snapshot.hash.as_bytes());
        }
    }
    for set in sets {
        hasher.update(set.hash.as_bytes());
        hasher.update([u8::from(set.retired)]);
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(ward: &str, bytes: u64) -> ListedDocument {
        ListedDocument {
            id: DocumentId::for_assessment(ward, "2025"),
            bytes,
            snapshot: None,
        }
    }

    impl Listing {
        fn of_documents(documents: Vec<ListedDocument>) -> Self {
            Self::of(documents, Vec::new())
        }
    }

    #[test]
    fn a_new_or_retired_set_changes_the_tag() {
        let set = |content: &[u8], retired| ListedSet {
            id: "model-ward".into(),
            version: 2026,
            hash: BlobHash::of(content),
            retired,
        };
        let tag = |sets| Listing::of(vec![listed("a", 10)], sets).tag;
        assert_ne!(tag(vec![]), tag(vec![set(b"1", false)]));
        assert_ne!(tag(vec![set(b"1", false)]), tag(vec![set(b"1", true)]));
        assert_eq!(tag(vec![set(b"1", false)]), tag(vec![set(b"1", false)]));
    }

    #[test]
    fn the_tag_changes_with_any_document_or_size() {
        let one = Listing::of_documents(vec![listed("a", 10)]);
        assert_eq!(one.tag, Listing::of_documents(vec![listed("a", 10)]).tag);
        assert_ne!(one.tag, Listing::of_documents(vec![listed("a", 11)]).tag);
        assert_ne!(one.tag, Listing::of_documents(vec![listed("b", 10)]).tag);
        assert_ne!(one.tag, Listing::of_documents(vec![]).tag);
        let snapshot = |seed: &[u8]| ListedSnapshot {
            hash: BlobHash::of(seed),
            bytes: 10,
        };
        let with = |seed: &[u8]| {
            Listing::of_documents(vec![ListedDocument {
                snapshot: Some(snapshot(seed)),
                ..listed("a", 10)
            }])
        };
        // A compaction changes the snapshot, not the size: a new listing still.
        assert_ne!(with(b"1").tag, with(b"2").tag);
        assert_ne!(with(b"1").tag, one.tag);
    }

    #[test]
    fn a_holder_of_the_same_listing_gets_the_tag_alone() {
        let listing = Listing::of_documents(vec![listed("a", 10)]);
        let tag = listing.tag.clone();
        assert_eq!(listing.clone().for_holder(&tag).documents, None);
        assert_eq!(listing.clone().for_holder("").documents, listing.documents);
        assert_eq!(listing.clone().for_holder("0123").tag, tag);
    }
}
