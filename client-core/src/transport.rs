//! The network side of sync (feature `transport`): drives [`crate::sync::Session`] over a
//! WebSocket, moves photo blobs over HTTP, retries with backoff, reports progress.
//!
//! Blocking I/O (tungstenite, ureq) driven from the caller's thread: the phone library runs
//! it on a worker thread of its own, and the core needs no async runtime. Every wait on the
//! relay is bounded by a timeout, and a cancel ends it within a quarter second
//! (`transport/interrupt.rs`): HTTP exchanges and TCP connects run on a short-lived thread
//! that a cancel leaves behind. Nothing here blocks local edits: the workspace lock is
//! taken per call, never across network waits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Workspace;
use crate::doc::DocumentId;
use crate::sync::{SessionError, WorkspaceHost};
pub use blobs::fetch_photo;
pub use enrolment::enroll;
use interrupt::{interruptible, pause};
pub use socket::{CONNECT_TIMEOUT, HANDSHAKE_TIMEOUT};

mod blobs;
mod criteria;
mod documents;
mod download;
mod enrolment;
mod interrupt;
#[cfg(test)]
mod scripted;
mod snapshots;
mod socket;
#[cfg(feature = "tls")]
mod tls;

/// Largest frame accepted from the relay.
const MAX_FRAME_BYTES: usize = 16 << 20;

/// Longest an HTTP exchange with the relay may take (a whole photo upload included).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// What can go wrong talking to the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The relay could not be reached or the connection broke (retried before this is
    /// returned).
    #[error("network: {0}")]
    Network(String),
    /// The relay refused the token or the enrolment code.
    #[error("the relay refused the credentials")]
    Unauthorized,
    /// The relay answered with an unexpected status.
    #[error("the relay answered {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The relay's message.
        message: String,
    },
    /// The sync protocol failed.
    #[error("sync protocol: {0}")]
    Protocol(#[from] SessionError),
    /// The relay went quiet for too long.
    #[error("the relay stopped answering")]
    Timeout,
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The device is not enrolled with a relay.
    #[error("this device is not enrolled with a relay")]
    NotEnrolled,
    /// A relay URL that is not http(s)://host[:port].
    #[error("invalid relay URL")]
    BadUrl,
    /// The local workspace failed.
    #[error(transparent)]
    Core(#[from] crate::Error),
}

impl TransportError {
    /// Whether trying again later may help.
    fn is_transient(&self) -> bool {
        match self {
            TransportError::Network(_) | TransportError::Timeout => true,
            TransportError::Http { status, .. } => *status >= 500 || *status == 409,
            _ => false,
        }
    }
}

impl From<ureq::Error> for TransportError {
    fn from(e: ureq::Error) -> Self {
        TransportError::Network(e.to_string())
    }
}

impl From<tungstenite::Error> for TransportError {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::Http(response) if response.status().as_u16() == 401 => {
                TransportError::Unauthorized
            }
            tungstenite::Error::Http(response) => TransportError::Http {
                status: response.status().as_u16(),
                message: "WebSocket upgrade refused".into(),
            },
            other => TransportError::Network(other.to_string()),
        }
    }
}

/// The phase a sync is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Exchanging document changes.
    Documents,
    /// Sending photos the relay lacks (thumbnails first).
    Uploads,
    /// Fetching other devices' thumbnails.
    Downloads,
}

/// Where a sync stands, reported as it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// The current phase.
    pub phase: Phase,
    /// Documents in sync (or unavailable) so far.
    pub documents_done: usize,
    /// Documents to sync.
    pub documents_total: usize,
    /// Blob bytes sent so far.
    pub bytes_sent: u64,
    /// Blob bytes to send.
    pub bytes_total: u64,
}

/// Receives progress and may cancel.
pub trait SyncObserver {
    /// Called as the sync advances.
    fn progress(&self, _progress: &SyncProgress) {}
    /// Polled between steps: return `true` to stop as soon as possible.
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// An observer that wants nothing.
impl SyncObserver for () {}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Documents now in sync with the relay.
    pub documents_in_sync: usize,
    /// Documents the relay would not share or did not have.
    pub unavailable: Vec<DocumentId>,
    /// Documents whose changes from this device the relay refused, with its reason (a
    /// modified app's, or this app's bug: the device's own policy check makes none).
    /// Their other changes wait too; nothing is retried until the next sync.
    pub refused: Vec<RefusedDocument>,
    /// Blobs uploaded in this sync.
    pub blobs_uploaded: usize,
    /// Blob bytes sent in this sync (resumed uploads send only the rest).
    pub bytes_uploaded: u64,
    /// Blobs the relay already had, so they were not sent.
    pub blobs_already_there: usize,
    /// Thumbnails fetched.
    pub thumbnails_fetched: usize,
    /// Thumbnails the relay does not have yet (their phone has not uploaded them).
    pub thumbnails_not_yet_on_relay: usize,
    /// Thumbnail bytes received, the pieces of downloads cut short included (kept: the
    /// next sync asks only for the rest).
    pub thumbnail_bytes_received: u64,
    /// Changes the relay's sync messages carried in this sync.
    pub changes_received: u64,
    /// Of those, the changes that were new here; the rest had arrived before (on a link
    /// that drops, a change that crossed it is kept and never asked for again, so the
    /// two are equal).
    pub changes_new: u64,
    /// The bytes of those changes, as they came (compressed).
    pub change_bytes_received: u64,
    /// The bytes of this device's changes in sync messages written whole to the link (the
    /// relay keeps what reaches it, of a push cut short too; what it took shows in the
    /// next sync, which sends only what it lacks).
    pub change_bytes_sent: u64,
    /// Criteria sets the relay publishes that this device installed in this sync.
    pub criteria_sets_received: usize,
    /// Documents this device lacked, stored from the relay's snapshots of them (their
    /// changes are counted in `changes_received` and `changes_new`).
    pub snapshots_fetched: usize,
    /// Snapshot bytes received, the pieces of downloads cut short included (kept: the
    /// next sync asks only for the rest).
    pub snapshot_bytes_received: u64,
    /// Why the sync stopped before the end, if the link gave out after it had carried
    /// something (retries spent): what came is kept, and the next sync goes on from it.
    /// `None` for a sync that finished. (A link that carried nothing is an error.)
    pub interrupted: Option<String>,
    /// The documents the relay lists that this device still lacks, with how far each
    /// has come (kept across syncs): what is left to fetch. Empty once all are here.
    pub fetching: Vec<FetchingDocument>,
}

/// A document being fetched: how much of it is here, of about how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchingDocument {
    /// The document.
    pub document: DocumentId,
    /// The bytes of its changes kept here so far.
    pub bytes_held: u64,
    /// About its bytes on the relay, as stored (at least `bytes_held`).
    pub bytes_total: u64,
}

impl SyncReport {
    /// Whether anything crossed the link to the phone or was taken by the relay: changes,
    /// photos or thumbnails (or pieces of them).
    fn moved_anything(&self) -> bool {
        self.changes_received > 0
            || self.criteria_sets_received > 0
            || self.change_bytes_sent > 0
            || self.snapshot_bytes_received > 0
            || self.bytes_uploaded > 0
            || self.blobs_already_there > 0
            || self.thumbnails_fetched > 0
            || self.thumbnail_bytes_received > 0
    }
}

/// A document the relay took no changes of, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDocument {
    /// The document.
    pub document: DocumentId,
    /// The relay's reason.
    pub reason: String,
}

/// How failed steps are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per step, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time, with jitter.
    pub base_delay: Duration,
    /// Longest wait.
    pub max_delay: Duration,
    /// How long the relay may stay silent during the document exchange.
    pub idle_timeout: Duration,
    /// How long the TLS and WebSocket handshakes may take together.
    pub handshake_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// A relay and the credentials to talk to it.
#[derive(Clone)]
pub struct Relay {
    base: String,
    token: String,
    agent: ureq::Agent,
    retry: RetryPolicy,
}

impl Relay {
    /// A relay at `base_url` (`http://host:port` or `https://...`), with a device token.
    pub fn new(base_url: &str, token: &str) -> Result<Self, TransportError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(TransportError::BadUrl);
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(HTTP_TIMEOUT));
        #[cfg(feature = "tls")]
        let config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .root_certs(ureq::tls::RootCerts::WebPki)
                .unversioned_rustls_crypto_provider(tls::provider())
                .build(),
        );
        let agent = config.build().into();
        Ok(Self {
            base,
            token: token.to_owned(),
            agent,
            retry: RetryPolicy::default(),
        })
    }

    /// The relay this workspace is enrolled with.
    pub fn enrolled(workspace: &Workspace) -> Result<Self, TransportError> {
        let enrolment = workspace.enrolment()?.ok_or(TransportError::NotEnrolled)?;
        Self::new(&enrolment.relay_url, &enrolment.token)
    }

    /// Uses another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Runs an HTTP `exchange` with the relay where a cancel interrupts it (see
    /// [`interruptible`]); ureq's timeouts bound it.
    fn http<T: Send + 'static>(
        &self,
        observer: &dyn SyncObserver,
        exchange: impl FnOnce(&ureq::Agent) -> Result<T, TransportError> + Send + 'static,
    ) -> Result<T, TransportError> {
        let agent = self.agent.clone();
        interruptible(observer, move || exchange(&agent))
    }

    /// Runs `step` until it succeeds, fails for good, or runs out of attempts.
    fn retry<T>(
        &self,
        observer: &dyn SyncObserver,
        mut step: impl FnMut() -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let mut attempt = 0;
        loop {
            if observer.is_cancelled() {
                return Err(TransportError::Cancelled);
            }
            match step() {
                Err(e) if e.is_transient() && attempt + 1 < self.retry.attempts => {
                    let delay = backoff(&self.retry, attempt);
                    tracing::info!("sync step failed ({e}); retrying in {delay:?}");
                    pause(observer, delay)?;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Exponential backoff with "full jitter": a random wait up to the doubled delay.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let ceiling = policy
        .base_delay
        .saturating_mul(1 << attempt.min(16))
        .min(policy.max_delay);
    let mut random = [0u8; 8];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => u64::from_le_bytes(random) as f64 / u64::MAX as f64,
        Err(_) => 0.5,
    };
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

fn http_error(status: u16, response: &mut ureq::http::Response<ureq::Body>) -> TransportError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let message = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_json::<ErrorBody>()
        .map(|b| b.error)
        .unwrap_or_default();
    if status == 401 {
        TransportError::Unauthorized
    } else {
        TransportError::Http { status, message }
    }
}

/// Syncs everything with the relay: every local assessment and every one of the device's
/// scope it lacks, then the photos the relay lacks (thumbnails first, resuming interrupted
/// uploads), then the thumbnails of others' photos. Full photos come on demand with
/// [`fetch_photo`].
///
/// On a link that gives out after it carried something to the phone or a whole upload
/// (its retries spent), the report comes back with [`SyncReport::interrupted`] set rather
/// than an error: what crossed is kept, and the next call goes on from it. An error is a
/// sync that cannot go on (refused, unauthorized, a broken blob) or a link that gave out
/// before anything came back; what crossed before it is kept all the same.
pub fn sync_now(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
) -> Result<SyncReport, TransportError> {
    let mut report = SyncReport::default();
    let mut host = WorkspaceHost::new(workspace);
    let outcome =
        sync_documents(workspace, relay, observer, &mut host, &mut report).and_then(|()| {
            relay.retry(observer, || {
                blobs::upload_blobs(workspace, relay, observer, &mut report)
            })?;
            relay.retry(observer, || {
                blobs::fetch_thumbnails(workspace, relay, observer, &mut report)
            })
        });
    let received = host.received();
    report.changes_received += received.changes;
    report.changes_new += received.new_changes;
    report.change_bytes_received = received.bytes;
    report.change_bytes_sent = host.change_bytes_sent();
    // A figure for the app: a store error reading it does not undo the sync's report.
    report.fetching = documents::left_to_fetch(workspace, relay).unwrap_or_default();
    match outcome {
        Ok(()) => Ok(report),
        // The link gave out after it carried something: what came is kept, and the
        // report says how far the sync got.
        Err(e) if e.is_transient() && report.moved_anything() => {
            report.interrupted = Some(e.to_string());
            Ok(report)
        }
        Err(e) => Err(e),
    }
}

/// The documents' part of a sync: the sync connection (this device's changes go first),
/// then the criteria sets the listing names that this device lacks, then the snapshots
/// of documents it lacks that the listing names (a download cut short
/// goes on from where it stopped), and if any came (or turned out to come by sync
/// messages), the sync connection once more, for what came after them.
fn sync_documents(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    host: &mut WorkspaceHost<'_>,
    report: &mut SyncReport,
) -> Result<(), TransportError> {
    let mut exchanged = documents::exchange(workspace, relay, observer, host)?;
    criteria::receive_sets(workspace, relay, observer, report)?;
    if snapshots::fetch_missing(workspace, relay, observer, report)? > 0 {
        exchanged = documents::exchange(workspace, relay, observer, host)?;
    }
    report.documents_in_sync = exchanged.in_sync;
    report.unavailable = exchanged.unavailable;
    report.refused = exchanged.refused;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        let policy = RetryPolicy::default();
        for attempt in 0..20 {
            let delay = backoff(&policy, attempt);
            let ceiling = policy
                .base_delay
                .saturating_mul(1 << attempt.min(16))
                .min(policy.max_delay);
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "{attempt}: {delay:?}"
            );
        }
    }

    #[test]
    fn relay_urls_are_checked() {
        assert!(matches!(
            Relay::new("ftp://x", "t"),
            Err(TransportError::BadUrl)
        ));
        assert!(matches!(Relay::new("", "t"), Err(TransportError::BadUrl)));
        let relay = Relay::new("http://127.0.0.1:8080/", "t").unwrap();
        assert_eq!(
            relay.url("/v1/documents"),
            "http://127.0.0.1:8080/v1/documents"
        );
    }

    #[test]
    fn a_cancel_stops_a_sync_with_a_relay_that_never_answers() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        // Connections are accepted (by the kernel's backlog), nothing is ever answered.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay::new(&format!("http://127.0.0.1:{port}"), "t").unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let observer = interrupt::tests::CancelAt::after(interrupt::CANCEL_POLL * 2);
            let _ = sender.send(sync_now(&ws, &relay, &observer));
        });
        // Without the cancel the sync would wait for the relay's answer for minutes.
        let result = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the cancelled sync still waits for the relay");
        assert!(
            matches!(result, Err(TransportError::Cancelled)),
            "{result:?}"
        );
        drop((listener, dir));
    }

    #[test]
    fn an_unreachable_relay_is_a_network_error_after_retries() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let relay = Relay::new(&format!("http://127.0.0.1:{port}"), "t")
            .unwrap()
            .with_retry(RetryPolicy {
                attempts: 2,
                base_delay: Duration::from_millis(1),
                ..RetryPolicy::default()
            });
        assert!(matches!(
            sync_now(&ws, &relay, &()),
            Err(TransportError::Network(_))
        ));
        assert!(matches!(
            enroll(&ws, &format!("http://127.0.0.1:{port}"), "CODE", "phone"),
            Err(TransportError::Network(_))
        ));
        assert!(matches!(
            Relay::enrolled(&ws),
            Err(TransportError::NotEnrolled)
        ));
    }
}
