//! The relay's verdicts on evidence signatures.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::DocumentId;

use super::{RelayStore, StoreError, StoreResult, now_ms};

/// What the relay found when it checked an evidence record's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Signed by a key registered for a device of the officer the record names.
    Verified,
    /// The key is not registered for any device of that officer.
    UnknownDevice,
    /// The signature does not match the record.
    BadSignature,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::UnknownDevice => "unknown_device",
            Verdict::BadSignature => "bad_signature",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "verified" => Some(Verdict::Verified),
            "unknown_device" => Some(Verdict::UnknownDevice),
            "bad_signature" => Some(Verdict::BadSignature),
            _ => None,
        }
    }
}

/// One checked evidence record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceCheck {
    /// The criterion it is attached to.
    pub criterion: String,
    /// The evidence photo.
    pub photo: BlobHash,
    /// The verdict.
    pub verdict: Verdict,
}

impl RelayStore {
    /// Whether `public_key` (hex) was registered by a device of `user_id` (revoked ones
    /// included: what a device signed before its revocation stays attributable).
    pub fn key_belongs_to(&self, public_key: &str, user_id: &str) -> StoreResult<bool> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT 1 FROM devices WHERE public_key = ?1 AND user_id = ?2",
                    params![public_key.to_ascii_lowercase(), user_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
    }

    /// Records verdicts (replacing earlier ones for the same record).
    pub fn record_evidence_checks(
        &self,
        document: &DocumentId,
        checks: &[EvidenceCheck],
    ) -> StoreResult<()> {
        self.write(|tx| add_checks(tx, &document.to_string(), checks))
    }

    /// The verdicts recorded for a document's evidence.
    pub fn evidence_checks(&self, document: &DocumentId) -> StoreResult<Vec<EvidenceCheck>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT criterion, photo, verdict FROM evidence_checks
                 WHERE document_id = ?1 ORDER BY criterion, photo",
            )?;
            let rows = stmt.query_map([document.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            let mut checks = Vec::new();
            for row in rows {
                let (criterion, photo, verdict) = row?;
                checks.push(EvidenceCheck {
                    criterion,
                    photo: photo
                        .parse()
                        .map_err(|_| StoreError::Malformed("evidence photo"))?,
                    verdict: Verdict::parse(&verdict)
                        .ok_or(StoreError::Malformed("evidence verdict"))?,
                });
            }
            Ok(checks)
        })
    }
}

/// Records verdicts in the transaction `tx` (replacing earlier ones for the same record).
pub(super) fn add_checks(
    tx: &rusqlite::Connection,
    document: &str,
    checks: &[EvidenceCheck],
) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO evidence_checks (document_id, criterion, photo, verdict, checked_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (document_id, criterion, photo)
         DO UPDATE SET verdict = excluded.verdict, checked_at = excluded.checked_at",
    )?;
    for check in checks {
        stmt.execute(params![
            document,
            check.criterion,
            check.photo.to_hex(),
            check.verdict.as_str(),
            now_ms()
        ])?;
    }
    Ok(())
}
