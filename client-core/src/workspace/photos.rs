//! Photo evidence and the blobs behind it: taking a photo, reading, verifying and
//! finding similar ones, and what the relay holds of them.

use super::{SimilarEvidence, Workspace, now_iso, now_ms};
use crate::blob::{BlobHash, BlobKind};
use crate::doc::{DocumentId, Evidence};
use crate::error::{Error, Result};
use crate::photo::{self, CaptureClaim, GeoPoint, PerceptualHash, PublicKey};
use crate::store::BlobInfo;

impl Workspace {
    /// Turns camera bytes into evidence on a criterion: processes the photo, signs the
    /// capture record with this device's key, and stores both blobs and the document change
    /// in one transaction. `fallback_location` (the app's own fix) is used when the photo
    /// has no GPS in its EXIF. Bad photos fail with [`Error::Photo`] and store nothing.
    pub fn add_photo(
        &self,
        id: &DocumentId,
        criterion: &str,
        camera_bytes: &[u8],
        caption: &str,
        fallback_location: Option<GeoPoint>,
    ) -> Result<Evidence> {
        let user = self.lock().author(&self.device_id)?.user;
        let processed = photo::process(camera_bytes, &self.config.photo)?;
        let now = now_ms();
        let claim = CaptureClaim {
            evidence_hash: processed.evidence_hash,
            thumbnail_hash: processed.thumbnail_hash,
            captured_at: processed
                .metadata
                .captured_at
                .clone()
                .unwrap_or_else(now_iso),
            location: processed.metadata.location.or(fallback_location),
            officer: user,
            device: self.device_id.clone(),
        };
        let evidence = Evidence {
            photo: claim.evidence_hash,
            thumbnail: claim.thumbnail_hash,
            perceptual_hash: processed.perceptual_hash,
            width: processed.evidence_width,
            height: processed.evidence_height,
            caption: caption.trim().to_owned(),
            signature: self.device_key.sign(&claim),
            captured_at: claim.captured_at,
            location: claim.location,
            officer: claim.officer,
            device: claim.device,
            device_key: self.device_key.public_key(),
            added_at_ms: now,
            to_reconfirm: false,
        };
        let blobs = [
            (
                evidence.photo,
                BlobKind::Evidence,
                processed.evidence.as_slice(),
            ),
            (
                evidence.thumbnail,
                BlobKind::Thumbnail,
                processed.thumbnail.as_slice(),
            ),
        ];
        self.edit_with_blobs(id, &blobs, |doc, by, now| {
            doc.add_evidence(criterion, &evidence, by, now)
        })?;
        Ok(evidence)
    }

    /// A stored blob's bytes (evidence or thumbnail), or `None` if not on this device.
    pub fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        self.lock().store.blob(hash)
    }

    /// Verifies an evidence record against a trusted device key, and against the photo's
    /// bytes when this device has them.
    pub fn verify_evidence(&self, evidence: &Evidence, trusted_key: &PublicKey) -> Result<()> {
        let photo = self.blob(&evidence.photo)?;
        Ok(evidence.verify(trusted_key, photo.as_deref())?)
    }

    /// Evidence in any assessment of the workspace whose picture looks like `like`
    /// (Hamming distance of perceptual hashes at most `max_distance`), closest first.
    pub fn similar_evidence(
        &self,
        like: PerceptualHash,
        max_distance: u32,
    ) -> Result<Vec<SimilarEvidence>> {
        let mut inner = self.lock();
        let mut found = Vec::new();
        for id in inner.store.document_ids()? {
            let view = inner.view(&id)?;
            for c in &view.criteria {
                for evidence in &c.evidence {
                    let distance = evidence.perceptual_hash.distance(&like);
                    if distance <= max_distance {
                        found.push(SimilarEvidence {
                            document: id,
                            unit_id: view.unit.id.clone(),
                            period: view.period.clone(),
                            criterion: c.criterion.id.clone(),
                            evidence: evidence.clone(),
                            distance,
                        });
                    }
                }
            }
        }
        found.sort_by_key(|s| s.distance);
        Ok(found)
    }

    /// Stores a blob fetched from the relay after checking it is what `hash` names; the
    /// relay has it, so it is never uploaded. Bytes that do not match are refused.
    pub fn store_fetched_blob(&self, hash: &BlobHash, kind: BlobKind, bytes: &[u8]) -> Result<()> {
        if BlobHash::of(bytes) != *hash {
            return Err(Error::InvalidInput(format!(
                "the bytes fetched for blob {hash} do not match it"
            )));
        }
        self.lock().store.write(|w| {
            w.put_blob(hash, kind, bytes, now_ms())?;
            w.delete_fetching_blob(hash)?;
            w.mark_uploaded(hash)
        })
    }

    /// What this device knows of a blob, or `None` if it has never stored it.
    pub fn blob_info(&self, hash: &BlobHash) -> Result<Option<BlobInfo>> {
        self.lock().store.blob_info(hash)
    }

    /// Blobs the relay has not confirmed yet, thumbnails first.
    pub fn pending_uploads(&self) -> Result<Vec<BlobInfo>> {
        self.lock().store.pending_uploads()
    }

    /// Records that the relay holds a blob, so it is never sent again.
    pub fn mark_uploaded(&self, hash: &BlobHash) -> Result<()> {
        self.lock().store.write(|w| w.mark_uploaded(hash))
    }
}
