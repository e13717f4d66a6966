//! Running the relay: binding, HTTP or HTTPS, counting connections, and graceful
//! shutdown on SIGTERM or Ctrl-C.
//!
//! On the shutdown signal, [`crate::AppState::shutdown`] fires (long-lived connections
//! such as the sync WebSocket close themselves), the listener stops accepting, and
//! in-flight requests get `shutdown_grace` to finish before the rest are dropped.
//! SQLite commits once per request, so nothing half-written is left either way.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::{AppState, app};

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

impl Connected<IncomingStream<'_, CountingListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CountingListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<SocketAddr> for Peer {
    fn connect_info(addr: SocketAddr) -> Self {
        Peer(addr)
    }
}

/// A bound, not yet serving relay.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    #[cfg(feature = "tls")]
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

/// Loads the TLS files (if configured) and binds the listen address. Port 0 picks a
/// free port: see [`Bound::local_addr`].
pub async fn bind(config: &Config) -> Result<Bound, ServeError> {
    #[cfg(feature = "tls")]
    let tls = match &config.tls {
        Some(files) => {
            // One process-wide crypto provider; a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                    .await
                    .map_err(ServeError::Tls)?,
            )
        }
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
        let grace = state.config.shutdown_grace;
        let gauge = state.metrics.open_connections.clone();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            trigger.trigger();
        });
        let make_service = app(state).into_make_service_with_connect_info::<Peer>();

        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls {
            let handle = axum_server::Handle::new();
            let server = axum_server::from_tcp_rustls(self.listener.into_std()?, tls)?
                .map(|acceptor| acceptor.acceptor(CountingAcceptor(gauge)))
                .handle(handle.clone())
                .serve(make_service);
            let mut server = tokio::spawn(server);
            tokio::select! {
                result = &mut server => return Ok(result.map_err(io::Error::other)??),
                () = shutdown.wait() => {}
            }
            tracing::info!("shutting down: finishing in-flight requests");
            handle.graceful_shutdown(Some(grace));
            server.await.map_err(io::Error::other)??;
            return Ok(());
        }

        let listener = CountingListener {
            inner: self.listener,
            gauge,
        };
        let server = axum::serve(listener, make_service)
            .with_graceful_shutdown(shutdown.wait())
            .into_future();
        let mut server = tokio::spawn(server);
        tokio::select! {
            result = &mut server => return Ok(result.map_err(io::Error::other)??),
            () = shutdown.wait() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
        match tokio::time::timeout(grace, &mut server).await {
            Ok(result) => Ok(result.map_err(io::Error::other)??),
            Err(_) => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "requests still running after the grace period were dropped"
                );
                server.abort();
                Ok(())
            }
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

/// A TCP listener whose connections count themselves in a gauge while open.
pub struct CountingListener {
    inner: TcpListener,
    gauge: IntGauge,
}

impl Listener for CountingListener {
    type Io = Counted<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        (Counted::new(stream, self.gauge.clone()), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The same for `axum-server` (the TLS path): counts the TCP stream under the TLS one.
#[cfg(feature = "tls")]
#[derive(Clone)]
struct CountingAcceptor(IntGauge);

#[cfg(feature = "tls")]
impl<S> axum_server::accept::Accept<TcpStream, S> for CountingAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(Ok((Counted::new(stream, self.0.clone()), service)))
    }
}

/// A stream counted in a gauge from creation to drop.
pub struct Counted<S> {
    inner: S,
    gauge: IntGauge,
}

impl<S> Counted<S> {
    fn new(inner: S, gauge: IntGauge) -> Self {
        gauge.inc();
        Self { inner, gauge }
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
    use crate::routes::testing::TestRelay;

    #[tokio::test]
    async fn shutdown_lets_an_in_flight_upload_finish() {
        let relay = TestRelay::new();
        let bytes: Vec<u8> = (0..2_000u32).map(|i| (i % 256) as u8).collect();
        let hash = BlobHash::of(&bytes);
        relay.document_referencing("ngo-may", &[hash]);
        let token = relay.token("officer-a");
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..(*relay.state.config).clone()
        };
        let bound = bind(&config).await.unwrap();
        let addr = bound.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(bound.serve(relay.state.clone(), async {
            let _ = stopped.await;
        }));

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
