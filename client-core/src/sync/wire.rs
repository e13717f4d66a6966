//! The automerge-repo v1 wire protocol: CBOR maps with a `type` field.
//!
//! Only what wardcheck speaks is modelled; other message types (ephemeral messages, remote
//! heads subscriptions) decode to [`WireMessage::Other`] and are ignored, as the protocol
//! allows. Decoding takes a whole frame (`&[u8]`): the transport has already bounded it.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use super::listing::{
    ListedDocument, ListedSet, ListedSnapshot, Listing, MAX_LISTED_DOCUMENTS, MAX_LISTED_SETS,
    MAX_SET_ID_BYTES, MAX_TAG_BYTES,
};
use crate::blob::BlobHash;
use crate::doc::DocumentId;

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: &str = "1";

/// Most entries of a `join`'s `supportedProtocolVersions` kept; the rest are read past.
const MAX_PROTOCOL_VERSIONS: usize = 16;

/// What a peer says about itself in `join` and `peer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The peer's storage id, if it stores documents durably.
    pub storage_id: Option<String>,
    /// Whether it will forget everything when it disconnects.
    pub is_ephemeral: bool,
}

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// The connecting peer introduces itself.
    Join {
        /// Its peer id.
        sender_id: String,
        /// Versions it speaks.
        supported_protocol_versions: Vec<String>,
        /// Its metadata.
        peer_metadata: Option<PeerMetadata>,
    },
    /// The accepting peer answers `join`.
    Peer {
        /// Its peer id.
        sender_id: String,
        /// The joining peer.
        target_id: String,
        /// The version chosen.
        selected_protocol_version: String,
        /// Its metadata.
        peer_metadata: Option<PeerMetadata>,
    },
    /// The sender is about to disconnect.
    Leave {
        /// Its peer id.
        sender_id: String,
    },
    /// The sender asks for a document it does not have, with a first sync message.
    Request {
        /// Sender.
        sender_id: String,
        /// Receiver.
        target_id: String,
        /// The document.
        document_id: DocumentId,
        /// An Automerge sync message.
        data: Vec<u8>,
    },
    /// An Automerge sync message about a document.
    Sync {
        /// Sender.
        sender_id: String,
        /// Receiver.
        target_id: String,
        /// The document.
        document_id: DocumentId,
        /// An Automerge sync message.
        data: Vec<u8>,
    },
    /// The sender does not have the document, or will not share it.
    DocUnavailable {
        /// Sender.
        sender_id: String,
        /// Receiver.
        target_id: String,
        /// The document.
        document_id: DocumentId,
        /// Why the sender refused the receiver's changes, if it did (wardcheck's
        /// addition: automerge-repo peers ignore the field).
        reason: Option<String>,
    },
    /// The documents the relay lists for a phone that asked (wardcheck's addition, see
    /// [`super::listing`]), sent as `wardcheck-documents`.
    Documents(Listing),
    /// The sender saw a protocol error and will close.
    Error {
        /// What went wrong.
        message: String,
    },
    /// A message type this implementation ignores.
    Other {
        /// Its `type`.
        kind: String,
    },
}

/// A frame that is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not CBOR, or not the expected CBOR types.
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    /// A required field is missing.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A document id that is not bs58check of 16 bytes.
    #[error("invalid document id")]
    BadDocumentId,
    /// A listing of more than [`MAX_LISTED_DOCUMENTS`] documents or [`MAX_LISTED_SETS`]
    /// criteria sets, with a tag of more than [`MAX_TAG_BYTES`] or a set id of more than
    /// [`MAX_SET_ID_BYTES`].
    #[error(
        "a listing of more than {MAX_LISTED_DOCUMENTS} documents or {MAX_LISTED_SETS} sets, or a longer tag or set id than {MAX_TAG_BYTES} or {MAX_SET_ID_BYTES} bytes"
    )]
    LongListing,
}

impl From<minicbor::decode::Error> for WireError {
    fn from(e: minicbor::decode::Error) -> Self {
        WireError::Cbor(e.to_string())
    }
}

/// The fields of a message map, as read.
#[derive(Default)]
struct Fields {
    kind: Option<String>,
    sender_id: Option<String>,
    target_id: Option<String>,
    document_id: Option<String>,
    data: Option<Vec<u8>>,
    versions: Option<Vec<String>>,
    selected: Option<String>,
    message: Option<String>,
    reason: Option<String>,
    metadata: Option<PeerMetadata>,
    tag: Option<String>,
    documents: Option<Vec<ListedDocument>>,
    sets: Option<Vec<ListedSet>>,
}

impl WireMessage {
    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Self, WireError> {
        let mut d = Decoder::new(frame);
        let len = d.map()?.ok_or(WireError::Cbor("indefinite map".into()))?;
        let mut f = Fields::default();
        for _ in 0..len {
            match d.str()? {
                "type" => f.kind = Some(d.str()?.to_owned()),
                "senderId" => f.sender_id = Some(d.str()?.to_owned()),
                "targetId" => f.target_id = Some(d.str()?.to_owned()),
                "documentId" => f.document_id = Some(d.str()?.to_owned()),
                "selectedProtocolVersion" => f.selected = Some(d.str()?.to_owned()),
                "message" => f.message = Some(d.str()?.to_owned()),
                "reason" => f.reason = Some(d.str()?.to_owned()),
                "data" => f.data = Some(d.bytes()?.to_vec()),
                "supportedProtocolVersions" => f.versions = Some(decode_versions(&mut d)?),
                "peerMetadata" => f.metadata = decode_metadata(&mut d)?,
                "tag" => f.tag = Some(d.str()?.to_owned()),
                "documents" => f.documents = Some(decode_listed(&mut d)?),
                "sets" => f.sets = Some(decode_sets(&mut d)?),
                _ => d.skip()?,
            }
        }
        let kind = f.kind.take().ok_or(WireError::MissingField("type"))?;
        let sender = |f: &mut Fields| {
            f.sender_id
                .take()
                .ok_or(WireError::MissingField("senderId"))
        };
        let target = |f: &mut Fields| {
            f.target_id
                .take()
                .ok_or(WireError::MissingField("targetId"))
        };
        let document = |f: &mut Fields| -> Result<DocumentId, WireError> {
            f.document_id
                .take()
                .ok_or(WireError::MissingField("documentId"))?
                .parse()
                .map_err(|_| WireError::BadDocumentId)
        };
        let data = |f: &mut Fields| f.data.take().ok_or(WireError::MissingField("data"));
        Ok(match kind.as_str() {
            "join" => WireMessage::Join {
                sender_id: sender(&mut f)?,
                supported_protocol_versions: f
                    .versions
                    .take()
                    .ok_or(WireError::MissingField("supportedProtocolVersions"))?,
                peer_metadata: f.metadata.take(),
            },
            "peer" => WireMessage::Peer {
                sender_id: sender(&mut f)?,
                target_id: target(&mut f)?,
                selected_protocol_version: f
                    .selected
                    .take()
                    .ok_or(WireError::MissingField("selectedProtocolVersion"))?,
                peer_metadata: f.metadata.take(),
            },
            "leave" => WireMessage::Leave {
                sender_id: sender(&mut f)?,
            },
            "request" | "sync" => {
                let (sender_id, target_id) = (sender(&mut f)?, target(&mut f)?);
                let (document_id, data) = (document(&mut f)?, data(&mut f)?);
                if kind == "request" {
                    WireMessage::Request {
                        sender_id,
                        target_id,
                        document_id,
                        data,
                    }
                } else {
                    WireMessage::Sync {
                        sender_id,
                        target_id,
                        document_id,
                        data,
                    }
                }
            }
            "doc-unavailable" => WireMessage::DocUnavailable {
                sender_id: sender(&mut f)?,
                target_id: target(&mut f)?,
                document_id: document(&mut f)?,
                reason: f.reason.take(),
            },
            "error" => WireMessage::Error {
                message: f.message.take().unwrap_or_default(),
            },
            "wardcheck-documents" => {
                let tag = f.tag.take().ok_or(WireError::MissingField("tag"))?;
                if tag.len() > MAX_TAG_BYTES {
                    return Err(WireError::LongListing);
                }
                WireMessage::Documents(Listing {
                    tag,
                    documents: f.documents.take(),
                    sets: f.sets.take().unwrap_or_default(),
                })
            }
            _ => WireMessage::Other { kind },
        })
    }

    /// Encodes the message as one frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        // Writing to a Vec cannot fail.
        let _ = self.encode_into(&mut e);
        e.into_writer()
    }

    fn encode_into(
        &self,
        e: &mut Encoder<Vec<u8>>,
    ) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        match self {
            WireMessage::Join {
                sender_id,
                supported_protocol_versions,
                peer_metadata,
            } => {
                e.map(3 + u64::from(peer_metadata.is_some()))?;
                e.str("type")?.str("join")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("supportedProtocolVersions")?
                    .array(supported_protocol_versions.len() as u64)?;
                for version in supported_protocol_versions {
                    e.str(version)?;
                }
                encode_metadata(e, peer_metadata.as_ref())?;
            }
            WireMessage::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                peer_metadata,
            } => {
                e.map(4 + u64::from(peer_metadata.is_some()))?;
                e.str("type")?.str("peer")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("targetId")?.str(target_id)?;
                e.str("selectedProtocolVersion")?
                    .str(selected_protocol_version)?;
                encode_metadata(e, peer_metadata.as_ref())?;
            }
            WireMessage::Leave { sender_id } => {
                e.map(2)?;
                e.str("type")?.str("leave")?;
                e.str("senderId")?.str(sender_id)?;
            }
            WireMessage::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
            | WireMessage::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            } => {
                let kind = if matches!(self, WireMessage::Request { .. }) {
                    "request"
                } else {
                    "sync"
                };
                e.map(5)?;
                e.str("type")?.str(kind)?;
                e.str("senderId")?.str(sender_id)?;
                e.str("targetId")?.str(target_id)?;
                e.str("documentId")?.str(&document_id.to_string())?;
                e.str("data")?.bytes(data)?;
            }
            WireMessage::DocUnavailable {
                sender_id,
                target_id,
                document_id,
                reason,
            } => {
                e.map(4 + u64::from(reason.is_some()))?;
                e.str("type")?.str("doc-unavailable")?;
                e.str("senderId")?.str(sender_id)?;
                e.str("targetId")?.str(target_id)?;
                e.str("documentId")?.str(&document_id.to_string())?;
                if let Some(reason) = reason {
                    e.str("reason")?.str(reason)?;
                }
            }
            WireMessage::Documents(listing) => {
                let sets = !listing.sets.is_empty();
                e.map(2 + u64::from(listing.documents.is_some()) + u64::from(sets))?;
                e.str("type")?.str("wardcheck-documents")?;
                e.str("tag")?.str(&listing.tag)?;
                if let Some(documents) = &listing.documents {
                    e.str("documents")?.array(documents.len() as u64)?;
                    for document in documents {
                        let snapshot = document.snapshot.as_ref();
                        e.array(if snapshot.is_some() { 4 } else { 2 })?
                            .str(&document.id.to_string())?
                            .u64(document.bytes)?;
                        if let Some(snapshot) = snapshot {
                            e.bytes(snapshot.hash.as_bytes())?.u64(snapshot.bytes)?;
                        }
                    }
                }
                if sets {
                    e.str("sets")?.array(listing.sets.len() as u64)?;
                    for set in &listing.sets {
                        e.array(4)?.str(&set.id)?.u32(set.version)?;
                        e.bytes(set.hash.as_bytes())?.bool(set.retired)?;
                    }
                }
            }
            WireMessage::Error { message } => {
                e.map(2)?;
                e.str("type")?.str("error")?;
                e.str("message")?.str(message)?;
            }
            WireMessage::Other { kind } => {
                e.map(1)?;
                e.str("type")?.str(kind)?;
            }
        }
        Ok(())
    }
}

/// The first [`MAX_PROTOCOL_VERSIONS`] versions of the array; later entries are skipped
/// so that the fields after the array are read from the right place.
fn decode_versions(d: &mut Decoder<'_>) -> Result<Vec<String>, WireError> {
    let n = d
        .array()?
        .ok_or(WireError::Cbor("indefinite array".into()))?;
    let mut versions = Vec::new();
    // Each entry takes at least one byte, so a lying count ends at the frame's end.
    for i in 0..n {
        if i < MAX_PROTOCOL_VERSIONS as u64 {
            versions.push(d.str()?.to_owned());
        } else {
            d.skip()?;
        }
    }
    Ok(versions)
}

/// A listing's criteria sets, each `[id, version, SHA-256, retired]`; at most
/// [`MAX_LISTED_SETS`], their ids at most [`MAX_SET_ID_BYTES`].
fn decode_sets(d: &mut Decoder<'_>) -> Result<Vec<ListedSet>, WireError> {
    let n = d
        .array()?
        .ok_or(WireError::Cbor("indefinite array".into()))?;
    if n > MAX_LISTED_SETS as u64 {
        return Err(WireError::LongListing);
    }
    let mut sets = Vec::new();
    for _ in 0..n {
        if d.array()? != Some(4) {
            return Err(WireError::Cbor(
                "a listed set is [id, version, hash, retired]".into(),
            ));
        }
        let id = d.str()?;
        if id.len() > MAX_SET_ID_BYTES {
            return Err(WireError::LongListing);
        }
        let id = id.to_owned();
        let version = d.u32()?;
        sets.push(ListedSet {
            id,
            version,
            hash: decode_hash(d)?,
            retired: d.bool()?,
        });
    }
    Ok(sets)
}

/// A SHA-256 as 32 bytes.
fn decode_hash(d: &mut Decoder<'_>) -> Result<BlobHash, WireError> {
    let hash = <[u8; 32]>::try_from(d.bytes()?)
        .map_err(|_| WireError::Cbor("a hash is 32 bytes".into()))?;
    Ok(BlobHash::from_bytes(hash))
}

/// A listing's documents, each `[id, bytes]` or `[id, bytes, snapshot SHA-256, snapshot
/// bytes]`; at most [`MAX_LISTED_DOCUMENTS`].
fn decode_listed(d: &mut Decoder<'_>) -> Result<Vec<ListedDocument>, WireError> {
    let n = d
        .array()?
        .ok_or(WireError::Cbor("indefinite array".into()))?;
    if n > MAX_LISTED_DOCUMENTS as u64 {
        return Err(WireError::LongListing);
    }
    let mut documents = Vec::new();
    for _ in 0..n {
        let fields = d.array()?;
        if !matches!(fields, Some(2 | 4)) {
            return Err(WireError::Cbor(
                "a listed document is [id, bytes] or [id, bytes, hash, bytes]".into(),
            ));
        }
        let id = d.str()?.parse().map_err(|_| WireError::BadDocumentId)?;
        let bytes = d.u64()?;
        let snapshot = if fields == Some(4) {
            Some(ListedSnapshot {
                hash: decode_hash(d)?,
                bytes: d.u64()?,
            })
        } else {
            None
        };
        documents.push(ListedDocument {
            id,
            bytes,
            snapshot,
        });
    }
    Ok(documents)
}

fn decode_metadata(d: &mut Decoder<'_>) -> Result<Option<PeerMetadata>, WireError> {
    if d.datatype()? != Type::Map {
        d.skip()?;
        return Ok(None);
    }
    let len = d.map()?.ok_or(WireError::Cbor("indefinite map".into()))?;
    let mut metadata = PeerMetadata::default();
    for _ in 0..len {
        match d.str()? {
            "storageId" if d.datatype()? == Type::String => {
                metadata.storage_id = Some(d.str()?.to_owned())
            }
            "isEphemeral" if d.datatype()? == Type::Bool => metadata.is_ephemeral = d.bool()?,
            _ => d.skip()?,
        }
    }
    Ok(Some(metadata))
}

fn encode_metadata(
    e: &mut Encoder<Vec<u8>>,
    metadata: Option<&PeerMetadata>,
) -> Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    let Some(metadata) = metadata else {
        return Ok(());
    };
    e.str("peerMetadata")?;
    e.map(1 + u64::from(metadata.storage_id.is_some()))?;
    if let Some(id) = &metadata.storage_id {
        e.str("storageId")?.str(id)?;
    }
    e.str("isEphemeral")?.bool(metadata.is_ephemeral)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn doc() -> DocumentId {
        DocumentId::for_assessment("ward", "2025")
    }

    #[test]
    fn every_message_round_trips() {
        let messages = [
            WireMessage::Join {
                sender_id: "phone".into(),
                supported_protocol_versions: vec!["1".into()],
                peer_metadata: Some(PeerMetadata {
                    storage_id: Some("s".into()),
                    is_ephemeral: false,
                }),
            },
            WireMessage::Peer {
                sender_id: "relay".into(),
                target_id: "phone".into(),
                selected_protocol_version: "1".into(),
                peer_metadata: None,
            },
            WireMessage::Leave {
                sender_id: "phone".into(),
            },
            WireMessage::Request {
                sender_id: "a".into(),
                target_id: "b".into(),
                document_id: doc(),
                data: vec![1, 2],
            },
            WireMessage::Sync {
                sender_id: "a".into(),
                target_id: "b".into(),
                document_id: doc(),
                data: vec![],
            },
            WireMessage::DocUnavailable {
                sender_id: "a".into(),
                target_id: "b".into(),
                document_id: doc(),
                reason: None,
            },
            WireMessage::DocUnavailable {
                sender_id: "a".into(),
                target_id: "b".into(),
                document_id: doc(),
                reason: Some("only supervisors may approve or return a criterion".into()),
            },
            WireMessage::Documents(Listing::of(
                vec![
                    ListedDocument {
                        id: doc(),
                        bytes: 36_000,
                        snapshot: None,
                    },
                    ListedDocument {
                        id: doc(),
                        bytes: 36_000,
                        snapshot: Some(ListedSnapshot {
                            hash: BlobHash::of(b"snapshot"),
                            bytes: 30_000,
                        }),
                    },
                ],
                vec![ListedSet {
                    id: "model-ward-antt".into(),
                    version: 2026,
                    hash: BlobHash::of(b"set"),
                    retired: true,
                }],
            )),
            WireMessage::Documents(Listing {
                tag: "00ff".into(),
                documents: None,
                sets: Vec::new(),
            }),
            WireMessage::Error {
                message: "bad".into(),
            },
            WireMessage::Other {
                kind: "ephemeral".into(),
            },
        ];
        for message in messages {
            assert_eq!(WireMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert!(matches!(WireMessage::decode(b""), Err(WireError::Cbor(_))));
        assert!(matches!(
            WireMessage::decode(&[0xa0]),
            Err(WireError::MissingField("type"))
        ));
        let mut e = Encoder::new(Vec::new());
        e.map(5).unwrap();
        e.str("type").unwrap().str("sync").unwrap();
        e.str("senderId").unwrap().str("a").unwrap();
        e.str("targetId").unwrap().str("b").unwrap();
        e.str("documentId").unwrap().str("not-an-id").unwrap();
        e.str("data").unwrap().bytes(b"").unwrap();
        assert_eq!(
            WireMessage::decode(&e.into_writer()),
            Err(WireError::BadDocumentId)
        );
        // Right type, wrong field types.
        let mut e = Encoder::new(Vec::new());
        e.map(2).unwrap();
        e.str("type").unwrap().str("join").unwrap();
        e.str("senderId").unwrap().u32(7).unwrap();
        assert!(matches!(
            WireMessage::decode(&e.into_writer()),
            Err(WireError::Cbor(_))
        ));
    }

    #[test]
    fn a_listing_past_its_bound_is_refused_before_it_is_read() {
        let mut e = Encoder::new(Vec::new());
        e.map(3).unwrap();
        e.str("type").unwrap().str("wardcheck-documents").unwrap();
        e.str("tag").unwrap().str("t").unwrap();
        e.str("documents")
            .unwrap()
            .array(MAX_LISTED_DOCUMENTS as u64 + 1)
            .unwrap();
        assert_eq!(
            WireMessage::decode(&e.into_writer()),
            Err(WireError::LongListing)
        );
        let long_tag = WireMessage::Documents(Listing {
            tag: "0".repeat(MAX_TAG_BYTES + 1),
            documents: None,
            sets: Vec::new(),
        });
        assert_eq!(
            WireMessage::decode(&long_tag.encode()),
            Err(WireError::LongListing)
        );
        let long_set_id = WireMessage::Documents(Listing::of(
            Vec::new(),
            vec![ListedSet {
                id: "x".repeat(MAX_SET_ID_BYTES + 1),
                version: 1,
                hash: BlobHash::of(b"set"),
                retired: false,
            }],
        ));
        assert_eq!(
            WireMessage::decode(&long_set_id.encode()),
            Err(WireError::LongListing)
        );
        let mut e = Encoder::new(Vec::new());
        e.map(3).unwrap();
        e.str("type").unwrap().str("wardcheck-documents").unwrap();
        e.str("tag").unwrap().str("t").unwrap();
        e.str("sets")
            .unwrap()
            .array(MAX_LISTED_SETS as u64 + 1)
            .unwrap();
        assert_eq!(
            WireMessage::decode(&e.into_writer()),
            Err(WireError::LongListing)
        );
    }

    #[test]
    fn a_long_version_list_keeps_its_bound_and_the_fields_after_it() {
        let mut e = Encoder::new(Vec::new());
        e.map(4).unwrap();
        e.str("type").unwrap().str("join").unwrap();
        let versions = MAX_PROTOCOL_VERSIONS + 4;
        e.str("supportedProtocolVersions")
            .unwrap()
            .array(versions as u64)
            .unwrap();
        for v in 0..versions {
            e.str(&v.to_string()).unwrap();
        }
        e.str("senderId").unwrap().str("phone").unwrap();
        e.str("peerMetadata").unwrap().map(1).unwrap();
        e.str("isEphemeral").unwrap().bool(true).unwrap();
        let expected: Vec<String> = (0..MAX_PROTOCOL_VERSIONS).map(|v| v.to_string()).collect();
        assert_eq!(
            WireMessage::decode(&e.into_writer()),
            Ok(WireMessage::Join {
                sender_id: "phone".into(),
                supported_protocol_versions: expected,
                peer_metadata: Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: true,
                }),
            })
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = WireMessage::decode(&bytes);
        }
    }
}
