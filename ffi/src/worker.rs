//! Blocking core calls as futures: each runs on a thread of its own, and the future
//! awaits its result. No async runtime is needed: the app's (Kotlin coroutines, Swift
//! concurrency, Python asyncio) polls the future, and the thread wakes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_channel::oneshot;

use crate::WardcheckError;

/// Raised when the future is dropped: the app cancelled the coroutine or task awaiting it.
pub(crate) type Abandoned = Arc<AtomicBool>;

/// Runs `job` on a new thread and awaits its result. If the future is dropped first, the
/// flag `job` receives is raised, so a long job can stop early; its result is discarded.
pub(crate) async fn run<T: Send + 'static>(
    name: &str,
    job: impl FnOnce(Abandoned) -> Result<T, WardcheckError> + Send + 'static,
) -> Result<T, WardcheckError> {
    let abandoned = Abandoned::default();
    let _raise_when_dropped = RaiseOnDrop(abandoned.clone());
    let (sender, receiver) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("wardcheck-{name}"))
        .spawn(move || {
            // The receiver may be gone (cancelled): nobody wants the result then.
            let _ = sender.send(job(abandoned));
        })
        .map_err(|e| WardcheckError::Internal {
            message: format!("cannot start the {name} thread: {e}"),
        })?;
    receiver.await.unwrap_or_else(|_| {
        Err(WardcheckError::Internal {
            message: format!("the {name} thread stopped without an answer"),
        })
    })
}

struct RaiseOnDrop(Abandoned);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    #[test]
    fn a_dropped_future_raises_the_flag_and_a_finished_one_answers() {
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let mut future = Box::pin(run("test", move |abandoned| {
            let _ = go_rx.recv();
            seen_tx.send(abandoned.load(Ordering::Relaxed)).unwrap();
            Ok(1)
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        drop(future);
        go_tx.send(()).unwrap();
        assert!(seen_rx.recv().unwrap(), "the job sees it was abandoned");

        let mut done = pin!(run("test", |_| Ok(7)));
        let answer = loop {
            if let Poll::Ready(answer) = done.as_mut().poll(&mut cx) {
                break answer;
            }
            std::thread::yield_now();
        };
        assert_eq!(answer.unwrap(), 7);
    }
}
