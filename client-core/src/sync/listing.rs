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
//! [`tag`]: Listing::tag

use sha2::{Digest, Sha256};

use crate::doc::DocumentId;

/// Most documents a listing may name: 2,000 wards' worth of assessments (a relay lists no
/// more; a phone refuses a longer listing as malformed).
pub const MAX_LISTED_DOCUMENTS: usize = 100_000;

/// The longest tag a phone takes (it goes back in the URL of its next connection).
pub const MAX_TAG_BYTES: usize = 64;

/// A document the relay holds and the phone may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListedDocument {
    /// Its id.
    pub id: DocumentId,
    /// About how many bytes it takes on the relay (its compacted state and the changes
    /// since): what a phone that lacks it has to fetch.
    pub bytes: u64,
}

/// The relay's listing for a phone, or only its tag when the phone holds it already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Names the listing: equal tags, equal listings.
    pub tag: String,
    /// The documents; `None` when the phone's tag was this one (it has them).
    pub documents: Option<Vec<ListedDocument>>,
}

impl Listing {
    /// The whole listing of `documents`, tagged.
    pub fn of(documents: Vec<ListedDocument>) -> Self {
        Self {
            tag: tag_of(&documents),
            documents: Some(documents),
        }
    }

    /// What to send a phone that holds the listing tagged `held`: the tag alone if it is
    /// this listing's.
    pub fn for_holder(self, held: &str) -> Self {
        if self.tag == held {
            Self {
                tag: self.tag,
                documents: None,
            }
        } else {
            self
        }
    }
}

/// The tag of a listing: 16 hex digits of the SHA-256 of its entries, in order.
fn tag_of(documents: &[ListedDocument]) -> String {
    let mut hasher = Sha256::new();
    for document in documents {
        hasher.update(document.id.as_bytes());
        hasher.update(document.bytes.to_le_bytes());
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
        }
    }

    #[test]
    fn the_tag_changes_with_any_document_or_size() {
        let one = Listing::of(vec![listed("a", 10)]);
        assert_eq!(one.tag, Listing::of(vec![listed("a", 10)]).tag);
        assert_ne!(one.tag, Listing::of(vec![listed("a", 11)]).tag);
        assert_ne!(one.tag, Listing::of(vec![listed("b", 10)]).tag);
        assert_ne!(one.tag, Listing::of(vec![]).tag);
    }

    #[test]
    fn a_holder_of_the_same_listing_gets_the_tag_alone() {
        let listing = Listing::of(vec![listed("a", 10)]);
        let tag = listing.tag.clone();
        assert_eq!(listing.clone().for_holder(&tag).documents, None);
        assert_eq!(listing.clone().for_holder("").documents, listing.documents);
        assert_eq!(listing.clone().for_holder("0123").tag, tag);
    }
}
