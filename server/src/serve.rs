//! Running the relay: binding, HTTP or HTTPS, the connection bounds, and graceful
//! shutdown on SIGTERM or Ctrl-C.
//!
//! One accept loop serves HTTP/1.1 (with upgrades, for the sync WebSocket), over TLS or
//! not, within these bounds ([`Config`]):
//!
//! - **Per address**: at most `connections_per_address` connections open from one client
//!   ([`Peer::client`]); more are closed as soon as they are accepted (and counted in
//!   `wardcheck_connections_refused_total`), so that one client cannot hold every socket
//!   while the others are still served.
//! - **Header read**: a connection must send a whole request head within
//!   `header_read_timeout` of the relay starting to wait for it: when it opens, and
//!   between the requests of a kept-alive connection (so this is the idle timeout too). A
//!   TLS handshake gets as long. A client that connects and sends nothing, half a head,
//!   or nothing more after its last answer is closed.
//! - **HTTP/1.1 only**: HTTP/2 would let an idle connection live on, pinged, with no
//!   request in flight; the phones and browsers the relay serves speak HTTP/1.1.
//!
//! Bodies are bounded by each route's body limit and timeout (`routes`); a sync
//! WebSocket by its own protocol timers.
//!
//! On the shutdown signal, [`crate::AppState::shutdown`] fires (long-lived connections
//! such as the sync WebSocket close themselves), the listener stops accepting, and
//! in-flight requests get `shutdown_grace` to finish before the rest are dropped.
//! SQLite commits once per request, so nothing half-written is left either way.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::Config;
use crate::{AppState, Shutdown, app};

/// How long the accept loop pauses after a failed accept (out of file descriptors, most
/// likely), instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The certificate or key could not be loaded.
    #[error("cannot load the TLS certificate or key: {0}")]
    Tls(io::Error),
    /// TLS was configured but this build has no `tls` feature.
    #[error("this build has no TLS support (cargo feature `tls`)")]
    TlsUnsupported,
}

/// The peer's address, given to handlers as `ConnectInfo<Peer>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Peer {
    /// The client a per-address bound counts this peer as: its IPv4 address (also when
    /// it arrives IPv4-mapped), or the /64 network of an IPv6 address, a subscriber's
    /// usual allocation, so that one client cannot pose as many.
    pub fn client(&self) -> IpAddr {
        match self.0.ip() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
            },
        }
    }
}

/// A bound, not yet serving relay.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Loads the TLS files (if configured) and binds the listen address. Port 0 picks a
/// free port: see [`Bound::local_addr`].
pub async fn bind(config: &Config) -> Result<Bound, ServeError> {
    #[cfg(feature = "tls")]
    let tls = match &config.tls {
        Some(files) => Some(tls_acceptor(files).map_err(ServeError::Tls)?),
        None => None,
    };
    #[cfg(not(feature = "tls"))]
    if config.tls.is_some() {
        return Err(ServeError::TlsUnsupported);
    }
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        listener,
        addr,
        #[cfg(feature = "tls")]
        tls,
    })
}

/// A TLS acceptor for the certificate chain and key files, offering HTTP/1.1 only.
#[cfg(feature = "tls")]
fn tls_acceptor(files: &crate::config::TlsFiles) -> io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
}

impl Bound {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// Serves `state`'s app until `signal` resolves (or [`crate::Shutdown::trigger`]
    /// is called), then shuts down gracefully. Returns `Ok` after a clean shutdown.
    pub async fn serve(
        self,
        state: AppState,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let shutdown = state.shutdown.clone();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            trigger.trigger();
        });
        let grace = state.config.shutdown_grace;
        let admission = Admission::new(&state);
        let connection = ConnectionSettings {
            app: app(state.clone()),
            header_read_timeout: state.config.header_read_timeout,
            shutdown: shutdown.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls,
        };
        let mut open = JoinSet::new();
        loop {
            let (stream, addr) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                },
                () = shutdown.wait() => break,
            };
            while open.try_join_next().is_some() {}
            let peer = Peer(addr);
            if let Some(stream) = admission.admit(stream, peer) {
                open.spawn(connection.clone().serve(stream, peer));
            }
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing in-flight requests");
        let finished =
            tokio::time::timeout(grace, async { while open.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "requests still running after the grace period were dropped"
            );
        }
        Ok(())
    }
}

/// What serving one connection needs.
#[derive(Clone)]
struct ConnectionSettings {
    app: Router,
    header_read_timeout: Duration,
    shutdown: Shutdown,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl ConnectionSettings {
    /// Serves one accepted connection (after its TLS handshake, if any) until it closes,
    /// or until the shutdown lets its in-flight request finish.
    async fn serve(self, stream: Counted<TcpStream>, peer: Peer) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.clone() {
            let handshake = tokio::time::timeout(self.header_read_timeout, tls.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => self.serve_http(stream, peer).await,
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
            return;
        }
        self.serve_http(stream, peer).await;
    }

    async fn serve_http<I>(self, io: I, peer: Peer)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended");
                }
                return;
            }
            () = self.shutdown.wait() => {}
        }
        connection.as_mut().graceful_shutdown();
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "connection ended during shutdown");
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is
/// called, not when the future is first polled, so a signal arriving right after start
/// is not missed.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Open connections per client, kept by the accept loop: a table with one entry per
/// client that has a connection open (so as large as the open connections at most).
struct Admission {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_address: usize,
    gauge: IntGauge,
    refused: IntCounter,
}

impl Admission {
    fn new(state: &AppState) -> Self {
        Self {
            open: Arc::default(),
            per_address: state.config.connections_per_address,
            gauge: state.metrics.open_connections.clone(),
            refused: state.metrics.connections_refused.clone(),
        }
    }

    /// The stream, counted, if its client has fewer than `connections_per_address` open;
    /// else `None` (the stream is dropped, which closes it).
    fn admit(&self, stream: TcpStream, peer: Peer) -> Option<Counted<TcpStream>> {
        let client = peer.client();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= self.per_address {
            self.refused.inc();
            tracing::debug!("a client has too many connections open: one refused");
            return None;
        }
        *count += 1;
        drop(open);
        let slot = AddressSlot {
            open: self.open.clone(),
            client,
        };
        Some(Counted::new(stream, self.gauge.clone(), slot))
    }
}

/// One connection's place in [`Admission`]'s table, given back on drop.
struct AddressSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// A stream counted in the open-connections gauge and its client's slots from creation
/// to drop (under TLS, and through a WebSocket upgrade, which moves the stream on).
struct Counted<S> {
    inner: S,
    gauge: IntGauge,
    _slot: AddressSlot,
}

impl<S> Counted<S> {
    fn new(inner: S, gauge: IntGauge, slot: AddressSlot) -> Self {
        gauge.inc();
        Self {
            inner,
            gauge,
            _slot: slot,
        }
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wardcheck_core::blob::BlobHash;

    use super::*;
    use crate::config::Settings;
    use crate::routes::testing::TestRelay;

    /// A relay with `settings` served on a free loopback port: the relay, its address,
    /// the stop signal's sender and the server task.
    async fn serving(
        settings: Settings,
    ) -> (
        TestRelay,
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), ServeError>>,
    ) {
        let relay = TestRelay::with(Settings {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..settings
        });
        let bound = bind(&relay.state.config).await.unwrap();
        let addr = bound.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(bound.serve(relay.state.clone(), async {
            let _ = stopped.await;
        }));
        (relay, addr, stop, server)
    }

    /// A connection to `to` from the loopback address `from`.
    async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// Reads until the relay closes `stream`, at most `within`; what was read, or `None`
    /// if it stayed open.
    async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
        let mut read = Vec::new();
        let closed = tokio::time::timeout(within, async {
            let mut buffer = [0u8; 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => read.extend_from_slice(&buffer[..n]),
                }
            }
        })
        .await;
        closed
            .ok()
            .map(|()| String::from_utf8_lossy(&read).into_owned())
    }

    const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n";

    #[test]
    fn clients_are_addresses_and_ipv6_networks() {
        let client = |addr: &str| Peer(addr.parse().unwrap()).client().to_string();
        assert_eq!(client("192.0.2.7:4000"), "192.0.2.7");
        assert_eq!(client("[::ffff:192.0.2.7]:4000"), "192.0.2.7");
        assert_eq!(
            client("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"),
            "2001:db8:1:2::"
        );
        assert_eq!(
            client("[2001:db8:1:2::1]:1"),
            client("[2001:db8:1:2:ffff::9]:2")
        );
    }

    #[tokio::test]
    async fn silent_half_sent_and_idle_connections_are_closed() {
        let settings = Settings {
            header_read_timeout_secs: Some(1),
            ..Settings::default()
        };
        let (relay, addr, _stop, _server) = serving(settings).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: re")
            .await
            .unwrap();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(HEALTHZ).await.unwrap();
        let mut answer = [0u8; 512];
        let n = idle.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
        assert_eq!(relay.state.metrics.open_connections.get(), 3);

        for (what, stream) in [
            ("silent", &mut silent),
            ("half", &mut half),
            ("idle", &mut idle),
        ] {
            let read = read_until_closed(stream, Duration::from_secs(5)).await;
            assert!(read.is_some(), "the {what} connection stayed open");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(relay.state.metrics.open_connections.get(), 0);
    }

    #[tokio::test]
    async fn one_address_gets_its_share_of_connections_and_others_are_served() {
        let settings = Settings {
            connections_per_address: Some(3),
            ..Settings::default()
        };
        let (relay, addr, _stop, _server) = serving(settings).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from([127, 0, 0, 7], addr).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The fourth from that address is closed without an answer.
        let mut fourth = connect_from([127, 0, 0, 7], addr).await;
        let _ = fourth.write_all(HEALTHZ).await;
        let read = read_until_closed(&mut fourth, Duration::from_secs(2)).await;
        assert_eq!(
            read.as_deref(),
            Some(""),
            "the fourth connection was served"
        );
        assert_eq!(relay.state.metrics.connections_refused.get(), 1);
        // Another address is served meanwhile.
        let mut other = connect_from([127, 0, 0, 8], addr).await;
        other.write_all(HEALTHZ).await.unwrap();
        let mut answer = [0u8; 512];
        let n = other.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
        // A closed connection gives its place back.
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = connect_from([127, 0, 0, 7], addr).await;
        again.write_all(HEALTHZ).await.unwrap();
        let n = again.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn shutdown_lets_an_in_flight_upload_finish() {
        let (relay, addr, stop, server) = serving(Settings::default()).await;
        let bytes: Vec<u8> = (0..2_000u32).map(|i| (i % 256) as u8).collect();
        let hash = BlobHash::of(&bytes);
        relay.document_referencing("ngo-may", &[hash]);
        let token = relay.token("officer-a");

        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PUT /v1/blobs/{hash} HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer {token}\r\n\
             Upload-Length: 2000\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&bytes[..1_000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(relay.state.metrics.open_connections.get(), 1);

        // The signal arrives mid-upload.
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(relay.state.shutdown.is_triggered());

        stream.write_all(&bytes[1_000..]).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops after the request")
            .unwrap()
            .unwrap();
        assert_eq!(
            relay.state.blobs.stored_size(&hash).await.unwrap(),
            Some(2_000)
        );
        drop(stream);
        assert_eq!(relay.state.metrics.open_connections.get(), 0);
    }
}
