//! Unfinished uploads: what may stay in `blobs/partial/`, and for how long.
//!
//! - **Reserved before written.** An upload reserves its declared length before its first
//!   byte is written ([`RelayStore::reserve_partial`]): one device may have
//!   `partial_uploads_per_device` unfinished uploads taking `partial_bytes_per_device`
//!   together, all devices `partial_bytes_total` ([`crate::Config::partial_quota`]).
//!   Beyond that the upload is refused (507) unread. A device cannot park partial files
//!   on made-up hashes, not even on those its own document references, beyond its quota,
//!   and the disk all of them take is bounded. Continuing an upload renews its
//!   reservation, which must declare the same length.
//! - **Freed when done.** An upload that completes, fails its hash check or runs past its
//!   declared length leaves no partial file and frees its reservation.
//! - **Expired when abandoned.** A reservation untouched for `partial_upload_ttl`
//!   expires (it stops counting at once); [`sweep`], every half of it (at most every
//!   [`fixed::PARTIAL_SWEEP_EVERY_AT_MOST`]) and at start, deletes the expired
//!   reservations and every partial file without a live one, older files included,
//!   except the uploads running at that moment.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::blobstore::BlobStore;
use crate::config::{Config, fixed};
use crate::store::{RelayStore, StoreError, now_ms};

/// A sweep failed (it is tried again at the next).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob folder failed.
    #[error("blob folder: {0}")]
    Io(#[from] io::Error),
}

/// The oldest time (ms) a reservation may have been touched at and still be live.
pub fn live_since(config: &Config, now: i64) -> i64 {
    let ttl = i64::try_from(config.partial_upload_ttl.as_millis()).unwrap_or(i64::MAX);
    now.saturating_sub(ttl)
}

/// Deletes the expired reservations, then the partial files that no live reservation
/// holds (unless being uploaded right now). Returns how many files it deleted.
pub async fn sweep(
    store: &Arc<RelayStore>,
    blobs: &BlobStore,
    config: &Config,
) -> Result<usize, SweepError> {
    let live = live_since(config, now_ms());
    let db = store.clone();
    let reserved = tokio::task::spawn_blocking(move || {
        db.expire_partials(live)?;
        db.reserved_partials()
    })
    .await
    .map_err(io::Error::other)??;
    let mut deleted = 0;
    for hash in blobs.partial_hashes().await? {
        if !reserved.contains(&hash) && blobs.remove_partial(&hash).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// How often [`sweep`] runs: every half of the ttl, at most every
/// [`fixed::PARTIAL_SWEEP_EVERY_AT_MOST`], at least every second.
pub fn sweep_every(config: &Config) -> Duration {
    (config.partial_upload_ttl / 2)
        .clamp(Duration::from_secs(1), fixed::PARTIAL_SWEEP_EVERY_AT_MOST)
}

/// Sweeps now and then every [`sweep_every`], on a task of its own. Must be called
/// inside a tokio runtime.
pub fn spawn_sweeper(store: Arc<RelayStore>, blobs: Arc<BlobStore>, config: Arc<Config>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(sweep_every(&config));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep(&store, &blobs, &config).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "expired unfinished uploads deleted"),
                Err(err) => tracing::warn!(error = %err, "sweeping unfinished uploads failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use wardcheck_core::blob::BlobHash;

    use super::*;
    use crate::config::Settings;
    use crate::routes::testing::TestRelay;

    #[tokio::test]
    async fn expired_and_unreserved_partials_are_deleted() {
        let relay = TestRelay::with(Settings {
            partial_upload_ttl_secs: Some(3600),
            ..Settings::default()
        });
        let state = &relay.state;
        let quota = state.config.partial_quota;
        let (kept, expired, stray) = (BlobHash::of(b"k"), BlobHash::of(b"e"), BlobHash::of(b"s"));
        let now = now_ms();
        for (hash, touched) in [(kept, now), (expired, now - 3_601_000)] {
            let since = live_since(&state.config, touched);
            state
                .store
                .reserve_partial(&hash, "d-1", 10, &quota, since, touched)
                .unwrap();
        }
        for hash in [kept, expired, stray] {
            state
                .blobs
                .upload(&hash, 0, 10, Body::from("12345"))
                .await
                .unwrap();
        }
        // (The relay's own sweeper may have taken some already.)
        sweep(&state.store, &state.blobs, &state.config)
            .await
            .unwrap();
        assert_eq!(state.blobs.partial_hashes().await.unwrap(), vec![kept]);
        let again = sweep(&state.store, &state.blobs, &state.config).await;
        assert_eq!(again.unwrap(), 0);
        assert_eq!(state.store.reserved_partials().unwrap().len(), 1);
    }

    #[test]
    fn sweeps_come_every_half_ttl_within_bounds() {
        let config = |ttl| {
            Config::from_settings(Settings {
                partial_upload_ttl_secs: Some(ttl),
                ..Settings::default()
            })
            .unwrap()
        };
        assert_eq!(sweep_every(&config(1)), Duration::from_secs(1));
        assert_eq!(sweep_every(&config(60)), Duration::from_secs(30));
        assert_eq!(
            sweep_every(&config(48 * 3600)),
            fixed::PARTIAL_SWEEP_EVERY_AT_MOST
        );
    }
}
