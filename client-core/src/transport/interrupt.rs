//! Waits on the network that a cancel interrupts: blocking calls run on a thread of their
//! own while the sync's thread keeps asking its [`SyncObserver`] whether to stop.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{SyncObserver, TransportError};

/// How often a wait on the network asks whether the sync was cancelled: the longest a
/// cancel waits for a stalled relay.
pub(super) const CANCEL_POLL: Duration = Duration::from_millis(250);

/// Runs `work` (blocking network I/O) on a thread of its own and waits for its result,
/// checking for a cancel every [`CANCEL_POLL`]. On a cancel, returns
/// [`TransportError::Cancelled`] at once and leaves `work` behind: it must bound itself
/// (its own timeouts), and its result is dropped when it ends.
pub(super) fn interruptible<T: Send + 'static>(
    observer: &dyn SyncObserver,
    work: impl FnOnce() -> Result<T, TransportError> + Send + 'static,
) -> Result<T, TransportError> {
    if observer.is_cancelled() {
        return Err(TransportError::Cancelled);
    }
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("wardcheck-network".into())
        .spawn(move || {
            // The receiver is gone after a cancel: nobody wants the result.
            let _ = sender.send(work());
        })
        .map_err(|e| TransportError::Network(e.to_string()))?;
    loop {
        match receiver.recv_timeout(CANCEL_POLL) {
            Ok(result) => return result,
            Err(RecvTimeoutError::Timeout) if observer.is_cancelled() => {
                return Err(TransportError::Cancelled);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TransportError::Network("the network call panicked".into()));
            }
        }
    }
}

/// Sleeps for `duration`, or less if the sync is cancelled meanwhile.
pub(super) fn pause(observer: &dyn SyncObserver, duration: Duration) -> Result<(), TransportError> {
    let until = Instant::now() + duration;
    loop {
        if observer.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(CANCEL_POLL));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An observer that cancels once its moment has come.
    pub(crate) struct CancelAt(pub Instant);

    impl CancelAt {
        /// Cancels after `delay`.
        pub(crate) fn after(delay: Duration) -> Self {
            Self(Instant::now() + delay)
        }
    }

    impl SyncObserver for CancelAt {
        fn is_cancelled(&self) -> bool {
            Instant::now() >= self.0
        }
    }

    #[test]
    fn a_cancel_leaves_blocked_work_behind() {
        // Work that would block for an hour.
        let result = interruptible(&CancelAt::after(CANCEL_POLL), || {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(())
        });
        assert!(matches!(result, Err(TransportError::Cancelled)));
        assert!(matches!(
            pause(&CancelAt::after(CANCEL_POLL), Duration::from_secs(3600)),
            Err(TransportError::Cancelled)
        ));
        assert_eq!(interruptible(&(), || Ok(7)).unwrap(), 7);
        pause(&(), Duration::from_millis(1)).unwrap();
    }
}
