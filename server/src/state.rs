//! [`AppState`]: everything a handler needs, cheap to clone.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::sync::watch;

use crate::blobstore::BlobStore;
use crate::config::{Config, fixed};
use crate::documents::{DocCache, Intake, PendingPushes};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::passwords::PasswordChecks;
use crate::ratelimit::RateLimit;
use crate::revocation::Revocations;
use crate::store::{OpenStoreError, RelayStore, StoreResult};

/// The relay's shared state, given to every handler.
#[derive(Clone)]
pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The database. Call it through [`AppState::db`] from async code.
    pub store: Arc<RelayStore>,
    /// Blob files.
    pub blobs: Arc<BlobStore>,
    /// Revoked devices, for closing long-lived connections.
    pub revocations: Revocations,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Fires when the relay starts shutting down, for long-lived connections.
    pub shutdown: Shutdown,
    /// One in-memory copy of each document being synced, shared by all connections.
    pub docs: Arc<DocCache>,
    /// The one way changes get into those documents: the change policy, then the store.
    pub intake: Arc<Intake>,
    /// New documents being pushed in parts.
    pub pending: Arc<PendingPushes>,
    /// The relay's peer id in the sync protocol.
    pub relay_id: String,
    /// Permits for sync work on the blocking pool: one message of one connection at a
    /// time per permit, as many as the machine has cores (twice over, to cover fsyncs).
    /// Under a burst, messages wait their turn instead of a thousand threads sharing the
    /// cores and the documents' locks.
    pub sync_workers: Arc<tokio::sync::Semaphore>,
    /// Admission for connections in their sync phase, first come first served
    /// ([`Config::sync_sessions`] places): under a burst, a connection waits once, before
    /// its `join` is answered, then syncs through without queueing behind every other
    /// connection's messages at each round trip. A connection gives its place back when it
    /// closes or goes quiet for [`crate::routes::sync::QUIET`], so a long-lived peer holds
    /// none between its syncs.
    pub sync_admission: Arc<tokio::sync::Semaphore>,
    /// Enrolment requests per client ([`Config::enrol_per_minute`]).
    pub enrolments: Arc<RateLimit>,
    /// The console's password checks ([`Config::password_checks`] at once).
    pub passwords: Arc<PasswordChecks>,
    /// KiB of document snapshots being read or sent ([`fixed::SNAPSHOT_KIB_IN_FLIGHT`]).
    pub snapshot_kib: Arc<tokio::sync::Semaphore>,
    /// A random key made at start, for what the relay signs and checks itself (the
    /// console's sign-in form tokens); nothing signed with it outlives a restart.
    pub signing_key: Arc<[u8; 32]>,
}

/// The data folder could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A folder or file could not be created or read.
    #[error("cannot open the data folder: {0}")]
    Io(#[from] io::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] OpenStoreError),
}

impl AppState {
    /// Opens (creating if needed) the data folder of `config`, and starts the revocation
    /// poller and the sweeper of unfinished uploads. Must be called inside a tokio
    /// runtime.
    pub fn open(config: Config) -> Result<Self, OpenError> {
        create_private_dir(&config.data_dir)?;
        let store = Arc::new(RelayStore::open(&config.database_path())?);
        let blobs = Arc::new(BlobStore::open(&config.blobs_dir())?);
        let metrics = Arc::new(Metrics::new());
        metrics.blobs_stored.set(blobs.count_stored()? as i64);
        let revocations = Revocations::load(&store).map_err(|err| {
            OpenError::Io(io::Error::other(format!("cannot read revocations: {err}")))
        })?;
        revocations.spawn_poller(store.clone(), config.revocation_poll);
        let config = Arc::new(config);
        crate::uploads::spawn_sweeper(store.clone(), blobs.clone(), config.clone());
        let docs = Arc::new(DocCache::new(config.cached_documents));
        let intake = Arc::new(Intake::new(store.clone(), docs.clone(), metrics.clone()));
        let sync_admission = Arc::new(tokio::sync::Semaphore::new(config.sync_sessions));
        let passwords = Arc::new(PasswordChecks::new(
            config.password_checks,
            metrics.password_checks.clone(),
        ));
        let enrolments = Arc::new(RateLimit::new(
            config.enrol_per_minute,
            fixed::RATE_LIMITED_CLIENTS,
        ));
        Ok(Self {
            config,
            store,
            blobs,
            revocations,
            metrics,
            shutdown: Shutdown::new(),
            docs,
            intake,
            pending: Arc::default(),
            relay_id: "wardcheck-relay".into(),
            sync_workers: Arc::new(tokio::sync::Semaphore::new(
                2 * std::thread::available_parallelism().map_or(2, usize::from),
            )),
            sync_admission,
            enrolments,
            passwords,
            snapshot_kib: Arc::new(tokio::sync::Semaphore::new(fixed::SNAPSHOT_KIB_IN_FLIGHT)),
            signing_key: Arc::new(crate::auth::random_bytes()),
        })
    }

    /// Runs `f` on the store on tokio's blocking pool (SQLite calls block, and a commit
    /// waits for an fsync). Store errors become 500s; map the ones you expect inside `f`
    /// or match on the result of [`RelayStore`]'s methods yourself.
    pub async fn db<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&RelayStore) -> StoreResult<T> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }
}

#[cfg(unix)]
pub(crate) fn create_private_dir(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    // The folder holds account data: readable by the relay's user only.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(path: &std::path::Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

/// A cloneable shutdown signal.
#[derive(Clone)]
pub struct Shutdown(Arc<watch::Sender<bool>>);

impl Shutdown {
    /// Not yet triggered.
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }

    /// Starts the shutdown: every [`Shutdown::wait`] resolves.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the shutdown starts (at once if it has). `'static`, for `select!`.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.subscribe();
        async move {
            // The sender lives as long as any clone of the state; if it is gone, so is
            // the relay.
            let _ = receiver.wait_for(|started| *started).await;
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}
