//! Content addresses for photo blobs.
//!
//! Photos live outside the assessment documents, addressed by the SHA-256 of their
//! bytes: the same bytes always have the same address, so a blob the relay already
//! holds is never sent twice, and a swapped file is caught by re-hashing it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SHA-256 of a blob's bytes; shown and parsed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest whose raw 32 bytes are `bytes`.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

/// The text was not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a blob hash is 64 hex digits")]
pub struct InvalidBlobHash;

impl FromStr for BlobHash {
    type Err = InvalidBlobHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(InvalidBlobHash);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.to_ascii_lowercase(), &mut out).map_err(|_| InvalidBlobHash)?;
        Ok(Self(out))
    }
}

impl From<BlobHash> for String {
    fn from(hash: BlobHash) -> Self {
        hash.to_hex()
    }
}

impl TryFrom<String> for BlobHash {
    type Error = InvalidBlobHash;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What a blob is for: the full evidence photo or its small thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobKind {
    /// The evidence photo (long side about 1600 px).
    Evidence,
    /// The thumbnail (long side about 320 px), sent first when syncing.
    Thumbnail,
}

impl BlobKind {
    /// The name stored in the database and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobKind::Evidence => "evidence",
            BlobKind::Thumbnail => "thumbnail",
        }
    }

    /// Parses [`BlobKind::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "evidence" => Some(BlobKind::Evidence),
            "thumbnail" => Some(BlobKind::Thumbnail),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_through_hex() {
        let hash = BlobHash::of(b"abc");
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash.to_hex().parse::<BlobHash>(), Ok(hash));
        assert_eq!(hash.to_hex().to_uppercase().parse::<BlobHash>(), Ok(hash));
    }

    #[test]
    fn bad_hex_is_refused() {
        assert_eq!("abc".parse::<BlobHash>(), Err(InvalidBlobHash));
        assert_eq!("z".repeat(64).parse::<BlobHash>(), Err(InvalidBlobHash));
    }
}
