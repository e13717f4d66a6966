//! Sync's face: a listener the app implements for progress, and a handle that cancels.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use wardcheck_core::transport::{SyncObserver, SyncProgress as CoreSyncProgress};

use crate::records::SyncProgress;
use crate::worker::Abandoned;

/// Receives a sync's progress; implemented by the app (a Kotlin or Swift class).
///
/// Called on the library's sync thread, not the app's main thread: post to the UI thread
/// from there.
#[uniffi::export(foreign)]
pub trait SyncListener: Send + Sync {
    /// Called as the sync advances (a few times per phase).
    fn on_progress(&self, progress: SyncProgress);
}

/// Cancels a sync: create one, pass it to `Workspace.sync`, call `cancel()` from anywhere
/// (e.g. when the app goes to the background). One handle per sync: once cancelled it
/// stays cancelled. Cancelling the coroutine or task that awaits the sync cancels it too.
#[derive(Debug, Default, uniffi::Object)]
pub struct SyncHandle {
    cancelled: AtomicBool,
}

#[uniffi::export]
impl SyncHandle {
    /// A handle that has not been cancelled.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Asks the sync to stop as soon as possible; it then fails with `Cancelled`. What it
    /// synced before is kept.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// The core's observer: forwards progress, stops on the handle or an abandoned future.
pub(crate) struct Observer {
    pub(crate) listener: Option<Arc<dyn SyncListener>>,
    pub(crate) handle: Option<Arc<SyncHandle>>,
    pub(crate) abandoned: Abandoned,
}

impl SyncObserver for Observer {
    fn progress(&self, progress: &CoreSyncProgress) {
        if let Some(listener) = &self.listener {
            listener.on_progress(progress.into());
        }
    }

    fn is_cancelled(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
            || self.handle.as_ref().is_some_and(|h| h.is_cancelled())
    }
}
