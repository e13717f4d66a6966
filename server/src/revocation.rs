//! Telling open connections that their device was revoked.
//!
//! `wardcheck-relay admin device revoke` runs as a separate process, so a running relay
//! learns of revocations by polling the database (every `revocation_poll_ms`, 500 ms by
//! default): a background task reads the revoked device ids and publishes the new ones.
//! Revocations made inside the relay process can be published at once with
//! [`Revocations::publish`].
//!
//! Requests never depend on this: authentication checks `revoked_at` in the database on
//! every request. This is for long-lived connections (the sync WebSocket), which
//! `select!` on [`Revocations::revoked`] and close when it resolves.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::store::{RelayStore, StoreResult};

/// A cloneable handle on the set of revoked devices. See the module docs.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every device id known to be revoked.
    revoked: watch::Sender<Arc<HashSet<String>>>,
    /// Each newly revoked device id, once.
    events: broadcast::Sender<String>,
}

impl Revocations {
    /// A handle starting from the devices `store` already lists as revoked.
    pub fn load(store: &RelayStore) -> StoreResult<Self> {
        let known: HashSet<String> = store.revoked_device_ids()?.into_iter().collect();
        let (revoked, _) = watch::channel(Arc::new(known));
        let (events, _) = broadcast::channel(256);
        Ok(Self {
            inner: Arc::new(Inner { revoked, events }),
        })
    }

    /// Starts the task that polls `store` every `every` for new revocations. It stops by
    /// itself when the last clone of this handle is dropped. Must be called inside a
    /// tokio runtime.
    pub fn spawn_poller(&self, store: Arc<RelayStore>, every: Duration) -> JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if weak.strong_count() == 0 {
                    return;
                }
                let store = store.clone();
                let ids = tokio::task::spawn_blocking(move || store.revoked_device_ids()).await;
                let Some(inner) = weak.upgrade() else { return };
                match ids {
                    Ok(Ok(ids)) => Revocations { inner }.publish(ids),
                    Ok(Err(err)) => tracing::warn!(error = %err, "cannot poll revocations"),
                    Err(err) => tracing::warn!(error = %err, "revocation poll panicked"),
                }
            }
        })
    }

    /// Records these devices as revoked and wakes whoever waits on them. Ids already
    /// known are ignored, so each revocation is announced once.
    pub fn publish(&self, device_ids: impl IntoIterator<Item = String>) {
        let mut fresh = Vec::new();
        self.inner.revoked.send_if_modified(|known| {
            for id in device_ids {
                if !known.contains(&id) {
                    fresh.push(id);
                }
            }
            if fresh.is_empty() {
                return false;
            }
            let mut next = HashSet::clone(known);
            next.extend(fresh.iter().cloned());
            *known = Arc::new(next);
            true
        });
        for id in fresh {
            tracing::info!("a device was revoked; closing its connections");
            // No receivers is fine.
            let _ = self.inner.events.send(id);
        }
    }

    /// Whether the device is known to be revoked (as of the last poll).
    pub fn is_revoked(&self, device_id: &str) -> bool {
        self.inner.revoked.borrow().contains(device_id)
    }

    /// Every newly revoked device id from now on. A receiver that falls more than 256
    /// behind gets `RecvError::Lagged`; prefer [`Revocations::revoked`] for one device.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.events.subscribe()
    }

    /// Resolves once `device_id` is revoked (at once if it already is). The future owns
    /// what it needs (`'static`), so a connection can create it once and `select!` on it
    /// (pinned) for its whole life.
    pub fn revoked(&self, device_id: &str) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.inner.revoked.subscribe();
        let device_id = device_id.to_owned();
        async move {
            if receiver
                .wait_for(|known| known.contains(&device_id))
                .await
                .is_err()
            {
                // The handle is gone (the relay is shutting down): never resolve, the
                // connection ends with the runtime.
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewDevice;
    use crate::store::accounts::tests::seed;
    use crate::store::tests::temp_store;
    use std::time::Instant;

    fn enrol(store: &RelayStore, id: &str, code: u8) {
        store
            .create_enrolment_code(&[code; 32], "officer-a", 0, i64::MAX)
            .unwrap();
        store
            .enrol(
                &[code; 32],
                &NewDevice {
                    id: id.into(),
                    name: "phone".into(),
                    token_hash: [code; 32],
                    public_key: "00".repeat(32),
                },
                1,
            )
            .unwrap();
    }

    #[tokio::test]
    async fn a_revocation_by_another_process_is_noticed_within_a_second() {
        let (dir, store) = temp_store();
        seed(&store);
        enrol(&store, "d1", 1);
        enrol(&store, "d2", 2);
        let store = Arc::new(store);
        let revocations = Revocations::load(&store).unwrap();
        let _poller = revocations.spawn_poller(store.clone(), Duration::from_millis(500));
        let mut events = revocations.subscribe();
        let d1_revoked = tokio::spawn(revocations.revoked("d1"));
        let d2_revoked = tokio::spawn(revocations.revoked("d2"));

        // "Another process": a second store on the same file.
        let admin = RelayStore::open(&dir.path().join("relay.sqlite3")).unwrap();
        let start = Instant::now();
        admin.revoke_device("d1", 5).unwrap();
        tokio::time::timeout(Duration::from_secs(1), d1_revoked)
            .await
            .expect("noticed within a second")
            .unwrap();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(events.recv().await.unwrap(), "d1");
        assert!(revocations.is_revoked("d1"));
        assert!(!revocations.is_revoked("d2"));
        assert!(!d2_revoked.is_finished());
        d2_revoked.abort();
    }

    #[tokio::test]
    async fn already_revoked_resolves_at_once_and_is_announced_once() {
        let (_dir, store) = temp_store();
        seed(&store);
        enrol(&store, "d1", 1);
        store.revoke_device("d1", 5).unwrap();
        let revocations = Revocations::load(&store).unwrap();
        tokio::time::timeout(Duration::from_millis(50), revocations.revoked("d1"))
            .await
            .unwrap();
        let mut events = revocations.subscribe();
        revocations.publish(["d1".to_string(), "d9".to_string()]);
        revocations.publish(["d9".to_string()]);
        assert_eq!(events.recv().await.unwrap(), "d9");
        assert!(events.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_poller_stops_with_the_last_handle() {
        let (_dir, store) = temp_store();
        let store = Arc::new(store);
        let revocations = Revocations::load(&store).unwrap();
        let poller = revocations.spawn_poller(store, Duration::from_millis(10));
        drop(revocations);
        tokio::time::timeout(Duration::from_secs(1), poller)
            .await
            .unwrap()
            .unwrap();
    }
}
