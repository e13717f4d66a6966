//! Photo blobs as files on disk, content-addressed by SHA-256, with resumable uploads.
//!
//! Layout under `DATA/blobs/`:
//!
//! - `ab/abcdef…` (the full 64-digit hash, under its first two digits): complete blobs.
//!   A file only ever appears there by an atomic rename of a verified, fsynced file
//!   (followed by an fsync of the folder), so a crash never leaves a truncated blob
//!   under a hash.
//! - `partial/abcdef…`: the bytes received so far of an unfinished upload. Its length
//!   is the offset the next request must continue from. Partial files are not fsynced:
//!   a crash can only shorten them, and the hash is checked before the rename anyway.
//!   Which may stay, and how long, is [`crate::uploads`]' business:
//!   [`BlobStore::partial_hashes`] and [`BlobStore::remove_partial`] serve it.
//!
//! One upload per hash runs at a time (a second one gets [`UploadError::Busy`]), so two
//! requests never append to the same partial file.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::body::Body;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use wardcheck_core::blob::BlobHash;

/// The blob folder.
pub struct BlobStore {
    root: PathBuf,
    partial: PathBuf,
    uploading: Mutex<HashSet<BlobHash>>,
}

/// How an upload request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The last byte arrived and the hash matched: the blob is stored.
    Complete,
    /// The body ended before the declared length; this many bytes are held.
    Partial {
        /// Bytes received so far, the next request's offset.
        received: u64,
    },
    /// The blob was already stored; nothing was read.
    AlreadyStored,
}

/// Why an upload request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The request's offset is not the number of bytes held.
    #[error("the upload offset does not match")]
    OffsetMismatch {
        /// Bytes held.
        current: u64,
    },
    /// Another request is uploading the same blob.
    #[error("an upload of this blob is in progress")]
    Busy {
        /// Bytes held when asked.
        current: u64,
    },
    /// The body ran past the declared length; the partial file was deleted (an honest
    /// client never sends more than it declared).
    #[error("the body is longer than the declared length")]
    TooLong,
    /// All bytes arrived but their SHA-256 is not the address; the partial file was
    /// deleted.
    #[error("the bytes do not match their hash")]
    HashMismatch,
    /// The body broke off (the client went away); the bytes received are kept.
    #[error("the request body broke off")]
    Interrupted {
        /// Bytes held now.
        received: u64,
    },
    /// The disk failed.
    #[error("blob storage: {0}")]
    Io(#[from] io::Error),
}

impl BlobStore {
    /// Opens the blob folder `root`, creating it and `partial/` if needed.
    pub fn open(root: &Path) -> io::Result<Self> {
        let partial = root.join("partial");
        std::fs::create_dir_all(&partial)?;
        Ok(Self {
            root: root.to_owned(),
            partial,
            uploading: Mutex::new(HashSet::new()),
        })
    }

    /// Where a complete blob lives.
    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    fn partial_path(&self, hash: &BlobHash) -> PathBuf {
        self.partial.join(hash.to_hex())
    }

    /// The size of a stored blob, or `None` if it is not stored.
    pub async fn stored_size(&self, hash: &BlobHash) -> io::Result<Option<u64>> {
        size_of(&self.path(hash)).await
    }

    /// Bytes held of an unfinished upload (0 if none).
    pub async fn partial_size(&self, hash: &BlobHash) -> io::Result<u64> {
        Ok(size_of(&self.partial_path(hash)).await?.unwrap_or(0))
    }

    /// A stored blob opened for reading, with its size; `None` if it is not stored.
    pub async fn open_read(&self, hash: &BlobHash) -> io::Result<Option<(tokio::fs::File, u64)>> {
        match tokio::fs::File::open(self.path(hash)).await {
            Ok(file) => {
                let size = file.metadata().await?.len();
                Ok(Some((file, size)))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Counts the stored blobs (walks the folder; for start-up).
    pub fn count_stored(&self) -> io::Result<u64> {
        let mut count = 0;
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            let is_shard = name.len() == 2 && name.to_str().is_some_and(is_hex);
            if is_shard && entry.file_type()?.is_dir() {
                for blob in std::fs::read_dir(entry.path())? {
                    if blob?.file_type()?.is_file() {
                        count += 1;
                    }
                }
            }
        }
        Ok(count)
    }

    /// Appends `body` to the upload of `hash` at `offset`, for a blob of `total` bytes.
    /// The body is streamed to disk, never held whole in memory.
    ///
    /// `offset` must equal the bytes already held ([`BlobStore::partial_size`]). When the
    /// held size reaches `total`, the bytes are hashed: a match is fsynced and renamed
    /// into place ([`Upload::Complete`]); a mismatch deletes the partial file
    /// ([`UploadError::HashMismatch`]). The caller has checked `offset <= total` and the
    /// size limit.
    pub async fn upload(
        &self,
        hash: &BlobHash,
        offset: u64,
        total: u64,
        mut body: Body,
    ) -> Result<Upload, UploadError> {
        let Some(_guard) = self.claim(hash) else {
            return Err(UploadError::Busy {
                current: self.partial_size(hash).await?,
            });
        };
        if self.stored_size(hash).await?.is_some() {
            return Ok(Upload::AlreadyStored);
        }
        let partial = self.partial_path(hash);
        let current = self.partial_size(hash).await?;
        if offset != current {
            return Err(UploadError::OffsetMismatch { current });
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .await?;
        let room = total - offset;
        let mut written = 0u64;
        let outcome = loop {
            match body.frame().await {
                None => break Ok(()),
                Some(Err(_)) => break Err(()),
                Some(Ok(frame)) => {
                    let Some(data) = frame.data_ref() else {
                        continue; // trailers
                    };
                    if written + data.len() as u64 > room {
                        drop(file);
                        tokio::fs::remove_file(&partial).await?;
                        return Err(UploadError::TooLong);
                    }
                    file.write_all(data).await?;
                    written += data.len() as u64;
                }
            }
        };
        file.flush().await?;
        let received = offset + written;
        if outcome.is_err() {
            return Err(UploadError::Interrupted { received });
        }
        if received < total {
            return Ok(Upload::Partial { received });
        }
        drop(file);
        let target = self.path(hash);
        let expected = *hash;
        tokio::task::spawn_blocking(move || finish(&partial, &target, &expected))
            .await
            .map_err(io::Error::other)??;
        Ok(Upload::Complete)
    }

    /// The hashes of the unfinished uploads on disk.
    pub async fn partial_hashes(&self) -> io::Result<Vec<BlobHash>> {
        let mut hashes = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.partial).await?;
        while let Some(entry) = entries.next_entry().await? {
            match entry.file_name().to_str().map(str::parse::<BlobHash>) {
                Some(Ok(hash)) => hashes.push(hash),
                // Nothing the relay wrote: leave it to whoever did.
                _ => tracing::warn!("a file in blobs/partial/ is not an upload"),
            }
        }
        Ok(hashes)
    }

    /// Deletes the unfinished upload of `hash`, unless an upload of it is running right
    /// now. Whether it was deleted (or was not there).
    pub async fn remove_partial(&self, hash: &BlobHash) -> io::Result<bool> {
        let Some(_guard) = self.claim(hash) else {
            return Ok(false);
        };
        match tokio::fs::remove_file(self.partial_path(hash)).await {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(err) => Err(err),
        }
    }

    fn claim(&self, hash: &BlobHash) -> Option<UploadGuard<'_>> {
        let claimed = self
            .uploading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*hash);
        // Built only when claimed: dropping a guard releases the hash.
        claimed.then(|| UploadGuard {
            store: self,
            hash: *hash,
        })
    }
}

/// Releases the claim on a hash when the upload request ends, however it ends (even
/// when the request's future is dropped because the client went away).
struct UploadGuard<'a> {
    store: &'a BlobStore,
    hash: BlobHash,
}

impl Drop for UploadGuard<'_> {
    fn drop(&mut self) {
        let mut uploading = self
            .store
            .uploading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        uploading.remove(&self.hash);
    }
}

/// Verifies the complete partial file and moves it into place: hash, fsync, rename,
/// fsync the folder. Blocking.
fn finish(partial: &Path, target: &Path, expected: &BlobHash) -> Result<(), UploadError> {
    let mut file = std::fs::File::open(partial)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if &digest != expected.as_bytes() {
        std::fs::remove_file(partial)?;
        return Err(UploadError::HashMismatch);
    }
    file.sync_all()?;
    drop(file);
    let shard = target.parent().expect("a blob path has a shard folder");
    let new_shard = !shard.exists();
    std::fs::create_dir_all(shard)?;
    std::fs::rename(partial, target)?;
    // Make the rename (and a new shard folder) durable.
    std::fs::File::open(shard)?.sync_all()?;
    if new_shard && let Some(root) = shard.parent() {
        std::fs::File::open(root)?.sync_all()?;
    }
    if let Some(partial_dir) = partial.parent() {
        std::fs::File::open(partial_dir)?.sync_all()?;
    }
    Ok(())
}

async fn size_of(path: &Path) -> io::Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(meta) => Ok(Some(meta.len())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::body::{Bytes, HttpBody};
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body that yields `chunks`, then fails as a dropped connection would.
    pub(crate) struct BrokenBody(pub VecDeque<Bytes>);

    impl HttpBody for BrokenBody {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
            Poll::Ready(Some(match self.0.pop_front() {
                Some(chunk) => Ok(http_body::Frame::data(chunk)),
                None => Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")),
            }))
        }
    }

    fn photo() -> Vec<u8> {
        (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn whole_upload_lands_under_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let bytes = photo();
        let hash = BlobHash::of(&bytes);
        let total = bytes.len() as u64;
        assert_eq!(store.stored_size(&hash).await.unwrap(), None);
        let outcome = store
            .upload(&hash, 0, total, Body::from(bytes.clone()))
            .await;
        assert_eq!(outcome.unwrap(), Upload::Complete);
        assert_eq!(std::fs::read(store.path(&hash)).unwrap(), bytes);
        assert!(
            store
                .path(&hash)
                .starts_with(dir.path().join(&hash.to_hex()[..2]))
        );
        assert_eq!(store.partial_size(&hash).await.unwrap(), 0);
        assert_eq!(store.count_stored().unwrap(), 1);
        let again = store.upload(&hash, 0, total, Body::from(bytes)).await;
        assert_eq!(again.unwrap(), Upload::AlreadyStored);
    }

    #[tokio::test]
    async fn a_broken_body_keeps_its_prefix_for_resuming() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let bytes = photo();
        let hash = BlobHash::of(&bytes);
        let total = bytes.len() as u64;
        let broken = BrokenBody(VecDeque::from([
            Bytes::copy_from_slice(&bytes[..1000]),
            Bytes::copy_from_slice(&bytes[1000..30_000]),
        ]));
        let outcome = store.upload(&hash, 0, total, Body::new(broken)).await;
        assert!(matches!(
            outcome,
            Err(UploadError::Interrupted { received: 30_000 })
        ));
        assert_eq!(store.partial_size(&hash).await.unwrap(), 30_000);
        // Wrong offset.
        let outcome = store.upload(&hash, 10, total, Body::from(vec![1])).await;
        assert!(matches!(
            outcome,
            Err(UploadError::OffsetMismatch { current: 30_000 })
        ));
        // The rest, exactly.
        let rest = Body::from(bytes[30_000..].to_vec());
        assert_eq!(
            store.upload(&hash, 30_000, total, rest).await.unwrap(),
            Upload::Complete
        );
        assert_eq!(std::fs::read(store.path(&hash)).unwrap(), bytes);
    }

    #[tokio::test]
    async fn wrong_bytes_and_long_bodies_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let hash = BlobHash::of(b"the real photo");
        let outcome = store
            .upload(&hash, 0, 14, Body::from("a forged photo"))
            .await;
        assert!(matches!(outcome, Err(UploadError::HashMismatch)));
        assert_eq!(store.partial_size(&hash).await.unwrap(), 0);
        assert_eq!(store.stored_size(&hash).await.unwrap(), None);

        assert_eq!(
            store
                .upload(&hash, 0, 14, Body::from("the "))
                .await
                .unwrap(),
            Upload::Partial { received: 4 }
        );
        let outcome = store
            .upload(&hash, 4, 14, Body::from("real photo, and more"))
            .await;
        assert!(matches!(outcome, Err(UploadError::TooLong)));
        assert_eq!(store.partial_size(&hash).await.unwrap(), 0);
        assert!(store.partial_hashes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn partials_are_listed_and_removed_unless_uploading() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (a, b) = (BlobHash::of(b"a photo"), BlobHash::of(b"b photo"));
        for hash in [a, b] {
            let outcome = store.upload(&hash, 0, 7, Body::from("a p")).await;
            assert_eq!(outcome.unwrap(), Upload::Partial { received: 3 });
        }
        std::fs::write(dir.path().join("partial/notes.txt"), "x").unwrap();
        let mut listed = store.partial_hashes().await.unwrap();
        listed.sort_by_key(BlobHash::to_hex);
        let mut expected = vec![a, b];
        expected.sort_by_key(BlobHash::to_hex);
        assert_eq!(listed, expected);
        let uploading = store.claim(&b).unwrap();
        assert!(store.remove_partial(&a).await.unwrap());
        assert!(!store.remove_partial(&b).await.unwrap());
        drop(uploading);
        assert_eq!(store.partial_size(&a).await.unwrap(), 0);
        assert_eq!(store.partial_size(&b).await.unwrap(), 3);
        assert!(store.remove_partial(&a).await.unwrap());
    }

    #[tokio::test]
    async fn one_upload_per_hash_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let hash = BlobHash::of(b"x");
        let guard = store.claim(&hash).unwrap();
        let outcome = store.upload(&hash, 0, 1, Body::from("x")).await;
        assert!(matches!(outcome, Err(UploadError::Busy { current: 0 })));
        drop(guard);
        assert_eq!(
            store.upload(&hash, 0, 1, Body::from("x")).await.unwrap(),
            Upload::Complete
        );
    }
}
