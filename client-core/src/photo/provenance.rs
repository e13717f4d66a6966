//! Who took a photo, when and where, signed by the device that took it.
//!
//! Each phone has an ed25519 [`DeviceKey`]. At capture it signs a [`CaptureClaim`]:
//! the blobs' hashes, the time, the GPS position, the officer and the device. Anyone
//! with the device's [`PublicKey`] can later check that the record is unchanged and,
//! with [`verify_photo`], that the evidence bytes are the ones signed.
//!
//! The signature covers [`CaptureClaim::canonical_bytes`], an encoding with a single
//! reading: a domain tag, fixed-size hashes, length-prefixed strings and floats as
//! their exact bits. JSON is not signed, since two serializers may disagree on it.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::GeoPoint;
use crate::blob::BlobHash;

/// Domain separation: a signature over a capture claim is never valid for anything
/// else this key signs, nor for a later version of the encoding.
const DOMAIN: &[u8] = b"wardcheck-capture-v1";

/// Why a key could not be made or a record did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProvenanceError {
    /// The operating system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
    /// A secret key must be exactly 32 bytes.
    #[error("a device secret key is 32 bytes, not {0}")]
    InvalidSecretKey(usize),
    /// The 32 bytes are not an ed25519 public key.
    #[error("not an ed25519 public key")]
    InvalidPublicKey,
    /// Text that should have been hex of the right length.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The signature does not match the claim and key: the record was changed, or
    /// another device signed it.
    #[error("the signature does not match the capture record")]
    BadSignature,
    /// The evidence bytes are not the ones the claim names.
    #[error("the evidence is {actual}, the signed record names {claimed}")]
    EvidenceMismatch {
        /// The hash in the claim.
        claimed: BlobHash,
        /// The hash of the bytes given.
        actual: BlobHash,
    },
}

/// A device's ed25519 signing key. Its secret never leaves the device; `Debug` shows
/// only the public half, and the secret is wiped from memory on drop.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, ProvenanceError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| ProvenanceError::Random(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(Self(key))
    }

    /// The key whose 32-byte secret is `bytes` (as given by [`DeviceKey::secret_bytes`]).
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, ProvenanceError> {
        let seed: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| ProvenanceError::InvalidSecretKey(bytes.len()))?;
        Ok(Self(SigningKey::from_bytes(seed)))
    }

    /// **Secret.** The 32-byte seed, for the device's key store only: whoever has it
    /// can sign as this device. Never log, sync or send it.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half, shared so others can verify this device's records.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs the claim's canonical bytes.
    pub fn sign(&self, claim: &CaptureClaim) -> Signature {
        Signature(self.0.sign(&claim.canonical_bytes()).to_bytes())
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Parses exactly `N` bytes of hex (either case).
fn parse_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], ProvenanceError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| ProvenanceError::Malformed(what))?;
    Ok(out)
}

/// A device's ed25519 public key; shown, parsed and serialized as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key with these bytes. Whether they are a valid curve point is checked when
    /// verifying.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks that `signature` is this key's over `claim`.
    ///
    /// Uses ed25519 strict verification, which also refuses weak keys and malleable
    /// signatures.
    pub fn verify(
        &self,
        claim: &CaptureClaim,
        signature: &Signature,
    ) -> Result<(), ProvenanceError> {
        let key =
            VerifyingKey::from_bytes(&self.0).map_err(|_| ProvenanceError::InvalidPublicKey)?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(&claim.canonical_bytes(), &signature)
            .map_err(|_| ProvenanceError::BadSignature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = ProvenanceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, "public key (64 hex digits)").map(Self)
    }
}

impl From<PublicKey> for String {
    fn from(key: PublicKey) -> Self {
        key.to_string()
    }
}

impl TryFrom<String> for PublicKey {
    type Error = ProvenanceError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// An ed25519 signature; shown, parsed and serialized as 128 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Signature([u8; 64]);

impl Signature {
    /// The signature with these bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The raw 64 bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = ProvenanceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, "signature (128 hex digits)").map(Self)
    }
}

impl From<Signature> for String {
    fn from(signature: Signature) -> Self {
        signature.to_string()
    }
}

impl TryFrom<String> for Signature {
    type Error = ProvenanceError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What a device states about a photo it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureClaim {
    /// SHA-256 of the evidence JPEG.
    pub evidence_hash: BlobHash,
    /// SHA-256 of the thumbnail JPEG.
    pub thumbnail_hash: BlobHash,
    /// When it was taken, ISO 8601 (from EXIF or the device clock).
    pub captured_at: String,
    /// Where, if the phone had a fix.
    pub location: Option<GeoPoint>,
    /// The officer signed in on the device.
    pub officer: String,
    /// The device's identifier.
    pub device: String,
}

impl CaptureClaim {
    /// The bytes that are signed, with one reading only:
    ///
    /// ```text
    /// u64 len ‖ "wardcheck-capture-v1"
    /// evidence_hash (32) ‖ thumbnail_hash (32)
    /// u64 len ‖ captured_at (UTF-8)
    /// 0x00                                     no location, or
    /// 0x01 ‖ lat ‖ lon ‖ (0x00 | 0x01 ‖ accuracy_m)   f64s as big-endian IEEE 754 bits
    /// u64 len ‖ officer (UTF-8)
    /// u64 len ‖ device (UTF-8)
    /// ```
    ///
    /// All integers are big-endian.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn put_str(out: &mut Vec<u8>, s: &[u8]) {
            // usize → u64 is lossless on every platform Rust supports.
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s);
        }
        let mut out = Vec::with_capacity(
            160 + self.captured_at.len() + self.officer.len() + self.device.len(),
        );
        put_str(&mut out, DOMAIN);
        out.extend_from_slice(self.evidence_hash.as_bytes());
        out.extend_from_slice(self.thumbnail_hash.as_bytes());
        put_str(&mut out, self.captured_at.as_bytes());
        match &self.location {
            None => out.push(0),
            Some(at) => {
                out.push(1);
                out.extend_from_slice(&at.lat.to_bits().to_be_bytes());
                out.extend_from_slice(&at.lon.to_bits().to_be_bytes());
                match at.accuracy_m {
                    None => out.push(0),
                    Some(accuracy) => {
                        out.push(1);
                        out.extend_from_slice(&accuracy.to_bits().to_be_bytes());
                    }
                }
            }
        }
        put_str(&mut out, self.officer.as_bytes());
        put_str(&mut out, self.device.as_bytes());
        out
    }
}

/// Checks a capture record end to end: `signature` is `key`'s over `claim`, and
/// `evidence` is the photo the claim names (a swapped or edited photo fails).
pub fn verify_photo(
    claim: &CaptureClaim,
    signature: &Signature,
    key: &PublicKey,
    evidence: &[u8],
) -> Result<(), ProvenanceError> {
    key.verify(claim, signature)?;
    let actual = BlobHash::of(evidence);
    if actual != claim.evidence_hash {
        return Err(ProvenanceError::EvidenceMismatch {
            claimed: claim.evidence_hash,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIDENCE: &[u8] = b"pretend these are the bytes of an evidence JPEG";

    fn claim() -> CaptureClaim {
        CaptureClaim {
            evidence_hash: BlobHash::of(EVIDENCE),
            thumbnail_hash: BlobHash::of(b"thumbnail"),
            captured_at: "2024-05-01T10:20:30+07:00".into(),
            location: Some(GeoPoint::new(21.028511, 105.804817, Some(4.5)).unwrap()),
            officer: "Nguyễn Văn An".into(),
            device: "phone-17".into(),
        }
    }

    #[test]
    fn a_valid_record_verifies() {
        let key = DeviceKey::generate().unwrap();
        let claim = claim();
        let signature = key.sign(&claim);
        assert_eq!(key.public_key().verify(&claim, &signature), Ok(()));
        assert_eq!(
            verify_photo(&claim, &signature, &key.public_key(), EVIDENCE),
            Ok(())
        );
    }

    #[test]
    fn any_changed_field_fails() {
        let key = DeviceKey::generate().unwrap();
        let public = key.public_key();
        let original = claim();
        let signature = key.sign(&original);
        type Change = Box<dyn Fn(&mut CaptureClaim)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "evidence hash",
                Box::new(|c| c.evidence_hash = BlobHash::of(b"other")),
            ),
            (
                "thumbnail hash",
                Box::new(|c| c.thumbnail_hash = BlobHash::of(b"other")),
            ),
            (
                "time",
                Box::new(|c| c.captured_at = "2024-05-01T10:20:31+07:00".into()),
            ),
            ("no location", Box::new(|c| c.location = None)),
            (
                "latitude",
                Box::new(|c| c.location.as_mut().unwrap().lat += 1e-9),
            ),
            (
                "longitude",
                Box::new(|c| c.location.as_mut().unwrap().lon -= 1e-9),
            ),
            (
                "accuracy",
                Box::new(|c| c.location.as_mut().unwrap().accuracy_m = None),
            ),
            ("officer", Box::new(|c| c.officer = "Nguyễn Văn Anh".into())),
            ("device", Box::new(|c| c.device = "phone-18".into())),
        ];
        for (what, change) in changes {
            let mut changed = original.clone();
            change(&mut changed);
            assert_ne!(changed, original, "{what}");
            assert_eq!(
                public.verify(&changed, &signature),
                Err(ProvenanceError::BadSignature),
                "{what}"
            );
        }
    }

    #[test]
    fn fields_do_not_bleed_into_each_other() {
        // Moving characters from one string to the next changes the bytes.
        let mut a = claim();
        a.officer = "ab".into();
        a.device = "c".into();
        let mut b = claim();
        b.officer = "a".into();
        b.device = "bc".into();
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
        assert!(
            a.canonical_bytes()
                .starts_with(b"\0\0\0\0\0\0\0\x14wardcheck-capture-v1")
        );
    }

    #[test]
    fn a_swapped_or_edited_photo_fails() {
        let key = DeviceKey::generate().unwrap();
        let claim = claim();
        let signature = key.sign(&claim);
        let mut edited = EVIDENCE.to_vec();
        edited[3] ^= 1;
        for photo in [&edited[..], b"another photo", b""] {
            assert!(matches!(
                verify_photo(&claim, &signature, &key.public_key(), photo),
                Err(ProvenanceError::EvidenceMismatch { .. })
            ));
        }
    }

    #[test]
    fn another_devices_key_fails() {
        let ours = DeviceKey::generate().unwrap();
        let theirs = DeviceKey::generate().unwrap();
        assert_ne!(ours.public_key(), theirs.public_key());
        let claim = claim();
        let signature = theirs.sign(&claim);
        assert_eq!(
            verify_photo(&claim, &signature, &ours.public_key(), EVIDENCE),
            Err(ProvenanceError::BadSignature)
        );
        // A mangled signature or a non-key fails too, without panicking.
        let mut bytes = *ours.sign(&claim).as_bytes();
        bytes[10] ^= 0x40;
        assert_eq!(
            ours.public_key()
                .verify(&claim, &Signature::from_bytes(bytes)),
            Err(ProvenanceError::BadSignature)
        );
        let not_a_key = PublicKey::from_bytes([0xff; 32]);
        assert!(not_a_key.verify(&claim, &ours.sign(&claim)).is_err());
    }

    #[test]
    fn keys_round_trip_and_hide_their_secret() {
        let key = DeviceKey::generate().unwrap();
        let again = DeviceKey::from_secret_bytes(&key.secret_bytes()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let claim = claim();
        // ed25519 is deterministic: the same key signs the same bytes alike.
        assert_eq!(again.sign(&claim), key.sign(&claim));
        assert_eq!(
            DeviceKey::from_secret_bytes(&[1; 31]).unwrap_err(),
            ProvenanceError::InvalidSecretKey(31)
        );

        let debug = format!("{key:?}");
        assert!(debug.contains(&key.public_key().to_string()), "{debug}");
        assert!(!debug.contains(&hex::encode(key.secret_bytes())), "{debug}");
    }

    #[test]
    fn a_known_key_signs_known_bytes() {
        // RFC 8032 test 1: pins the key derivation, so stored secrets stay valid.
        let secret =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let key = DeviceKey::from_secret_bytes(&secret).unwrap();
        assert_eq!(
            key.public_key().to_string(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn hex_and_serde() {
        let key = DeviceKey::generate().unwrap();
        let public = key.public_key();
        let signature = key.sign(&claim());
        assert_eq!(public.to_string().len(), 64);
        assert_eq!(signature.to_string().len(), 128);
        assert_eq!(public.to_string().parse(), Ok(public));
        assert_eq!(signature.to_string().to_uppercase().parse(), Ok(signature));
        assert!("abc".parse::<PublicKey>().is_err());
        assert!(public.to_string().parse::<Signature>().is_err());
        let json = serde_json::to_string(&(public, signature)).unwrap();
        assert_eq!(json, format!("[\"{public}\",\"{signature}\"]"));
        assert_eq!(
            serde_json::from_str::<(PublicKey, Signature)>(&json).unwrap(),
            (public, signature)
        );
        let claim = claim();
        let json = serde_json::to_string(&claim).unwrap();
        let back: CaptureClaim = serde_json::from_str(&json).unwrap();
        assert_eq!(back, claim);
        // A record that went through JSON still verifies.
        assert_eq!(public.verify(&back, &signature), Ok(()));
    }
}
