//! The sync WebSocket: TCP (with TLS over it for `https` relays) and the WebSocket upgrade,
//! every wait bounded by a timeout and cut short by a cancel.
//!
//! The connection is opened on a thread of its own ([`interruptible`]); the handshakes
//! and the sync then run on the caller's thread over a socket whose reads and writes give
//! up after [`CANCEL_POLL`], so that between two of them the caller can check for a cancel
//! and for a relay silent for too long.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::interrupt::{CANCEL_POLL, interruptible};
use super::{MAX_FRAME_BYTES, Relay, SyncObserver, TransportError};
use crate::sync::{DEFAULT_MESSAGE_BUDGET, SOCKET_READ_BUFFER};

/// Longest wait for a TCP connection to one of the relay's addresses (the HTTP calls'
/// too).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest the TLS and WebSocket handshakes may take together, unless the
/// [`super::RetryPolicy`] says otherwise.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The open sync WebSocket.
pub(super) type Socket = WebSocket<Stream>;

/// The sync WebSocket's connection: TCP, with TLS over it for `https` relays.
pub(super) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    #[cfg(feature = "tls")]
    fn tls(host: &str, tcp: TcpStream) -> Result<Self, TransportError> {
        Ok(Stream::Tls(Box::new(super::tls::connect(host, tcp)?)))
    }

    #[cfg(not(feature = "tls"))]
    fn tls(_host: &str, _tcp: TcpStream) -> Result<Self, TransportError> {
        Err(TransportError::Network(
            "https relays need the `tls` feature".into(),
        ))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// Opens the sync WebSocket, asking for the relay's listing, its documents' snapshots
/// named, unless it is the one tagged `held_listing` (`?listing=&snapshots=1`, see
/// [`crate::sync::listing`]); below the default message
/// budget, asks the relay for messages of at most `budget` bytes of changes (`&budget=`).
///
/// Errors: [`TransportError::Cancelled`] as soon as `observer` says so (within
/// [`CANCEL_POLL`]), [`TransportError::Timeout`] when the handshakes take longer than the
/// relay's `handshake_timeout`, [`TransportError::Network`] when no address of the relay
/// connects within [`CONNECT_TIMEOUT`].
pub(super) fn connect(
    relay: &Relay,
    budget: usize,
    held_listing: &str,
    observer: &dyn SyncObserver,
) -> Result<Socket, TransportError> {
    // A relay's tag is hex digits: anything else is not sent (the whole listing comes).
    let held_listing = if held_listing.bytes().all(|b| b.is_ascii_hexdigit()) {
        held_listing
    } else {
        ""
    };
    let mut ws_url = format!(
        "{}/v1/sync?listing={held_listing}&snapshots=1",
        relay.base.replacen("http", "ws", 1)
    );
    if budget < DEFAULT_MESSAGE_BUDGET {
        ws_url.push_str(&format!("&budget={budget}"));
    }
    let mut request = ws_url
        .into_client_request()
        .map_err(|_| TransportError::BadUrl)?;
    let bearer = relay
        .bearer()
        .parse()
        .map_err(|_| TransportError::Unauthorized)?;
    request.headers_mut().insert("Authorization", bearer);
    let uri = request.uri();
    let secure = uri.scheme_str() == Some("wss");
    let host = uri.host().ok_or(TransportError::BadUrl)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });

    let tcp = interruptible(observer, {
        let host = host.clone();
        move || open_tcp(&host, port)
    })?;
    let network = |e: io::Error| TransportError::Network(e.to_string());
    tcp.set_nodelay(true).map_err(network)?;
    tcp.set_read_timeout(Some(CANCEL_POLL)).map_err(network)?;
    tcp.set_write_timeout(Some(CANCEL_POLL)).map_err(network)?;
    let stream = if secure {
        Stream::tls(&host, tcp)?
    } else {
        Stream::Plain(tcp)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    // The TLS handshake happens inside the WebSocket one, at its first read or write: a
    // read or write that times out interrupts both, and they resume where they stopped.
    let deadline = Instant::now() + relay.retry.handshake_timeout;
    let mut handshake = tungstenite::client::client_with_config(request, stream, Some(config));
    loop {
        match handshake {
            Ok((socket, _)) => return Ok(socket),
            Err(HandshakeError::Failure(e)) => return Err(e.into()),
            Err(HandshakeError::Interrupted(_)) if observer.is_cancelled() => {
                return Err(TransportError::Cancelled);
            }
            Err(HandshakeError::Interrupted(_)) if Instant::now() >= deadline => {
                return Err(TransportError::Timeout);
            }
            Err(HandshakeError::Interrupted(partial)) => handshake = partial.handshake(),
        }
    }
}

/// A TCP connection to the first of `host`'s addresses that answers, each given
/// [`CONNECT_TIMEOUT`].
fn open_tcp(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let network = |e: io::Error| TransportError::Network(e.to_string());
    let mut last_error = None;
    for address in (host, port).to_socket_addrs().map_err(network)? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.map_or_else(
        || TransportError::Network(format!("{host} has no address")),
        network,
    ))
}

/// Whether a socket call only timed out (after [`CANCEL_POLL`]): nothing is lost, the
/// call can be made again.
pub(super) fn timed_out(error: &tungstenite::Error) -> bool {
    matches!(error, tungstenite::Error::Io(e)
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// Sends `frame`, waiting while the relay takes none of it for at most `patience`.
pub(super) fn send(
    socket: &mut Socket,
    frame: Vec<u8>,
    observer: &dyn SyncObserver,
    patience: Duration,
) -> Result<(), TransportError> {
    // A write that times out keeps the frame queued; `flush` goes on with it.
    match socket.write(Message::Binary(frame.into())) {
        Err(e) if !timed_out(&e) => return Err(e.into()),
        _ => {}
    }
    let since = Instant::now();
    loop {
        match socket.flush() {
            Ok(()) => return Ok(()),
            Err(e) if !timed_out(&e) => return Err(e.into()),
            Err(_) if observer.is_cancelled() => return Err(TransportError::Cancelled),
            Err(_) if since.elapsed() > patience => return Err(TransportError::Timeout),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::super::RetryPolicy;
    use super::super::interrupt::tests::CancelAt;
    use super::*;

    /// A relay that accepts connections and never says a word, for as long as it lives.
    fn silent_relay() -> (TcpListener, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    /// Runs `connect` on a thread and waits for it at most a minute: without timeouts it
    /// would block for ever.
    fn connect_within_a_minute(
        relay: Relay,
        observer: impl SyncObserver + Send + 'static,
    ) -> Result<(), TransportError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(connect(&relay, DEFAULT_MESSAGE_BUDGET, "", &observer).map(drop));
        });
        receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("connect still blocked after a minute")
    }

    #[test]
    fn a_cancel_interrupts_a_silent_relay_in_both_handshakes() {
        let (_listener, port) = silent_relay();
        for scheme in ["http", "https"] {
            let relay = Relay::new(&format!("{scheme}://127.0.0.1:{port}"), "t").unwrap();
            let result = connect_within_a_minute(relay, CancelAt::after(CANCEL_POLL * 2));
            assert!(
                matches!(result, Err(TransportError::Cancelled)),
                "{scheme}: {result:?}"
            );
        }
    }

    #[test]
    fn a_silent_relay_times_out_in_both_handshakes() {
        let (_listener, port) = silent_relay();
        for scheme in ["http", "https"] {
            let relay = Relay::new(&format!("{scheme}://127.0.0.1:{port}"), "t")
                .unwrap()
                .with_retry(RetryPolicy {
                    handshake_timeout: CANCEL_POLL * 2,
                    ..RetryPolicy::default()
                });
            let result = connect_within_a_minute(relay, ());
            assert!(
                matches!(result, Err(TransportError::Timeout)),
                "{scheme}: {result:?}"
            );
        }
    }
}
