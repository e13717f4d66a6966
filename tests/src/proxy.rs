//! A fault-injecting TCP proxy for loopback tests: it can cut each connection after a
//! number of bytes (fixed per direction, or drawn at random per connection over both),
//! delay what it forwards, limit its bandwidth, and send every WebSocket frame from the
//! relay twice. Threads and blocking sockets: small and obvious.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What goes wrong on the link.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Cut each connection once this many bytes went from the client to the relay.
    pub cut_up_after: Option<u64>,
    /// Cut each connection once this many bytes went from the relay to the client.
    pub cut_down_after: Option<u64>,
    /// Wait this long before forwarding each read.
    pub delay: Duration,
    /// Send every WebSocket frame from the relay twice.
    pub duplicate_frames: bool,
    /// Cut each connection once it has carried a number of bytes, both ways counted,
    /// drawn for each connection uniformly from this range (inclusive).
    pub cut_link_between: Option<(u64, u64)>,
    /// Forward at most this many bytes per second in each direction of a connection.
    pub bytes_per_second: Option<u64>,
}

#[derive(Default)]
struct Shared {
    faults: Mutex<Faults>,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    connections: AtomicU64,
    cuts: AtomicU64,
    stopped: AtomicBool,
}

/// A running proxy in front of a relay.
pub struct Proxy {
    /// The URL clients use instead of the relay's.
    pub url: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(relay) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                let number = accepting.connections.fetch_add(1, Ordering::Relaxed);
                // Reproducible: the same draws on every run.
                let cut_after = accepting
                    .faults
                    .lock()
                    .ok()
                    .and_then(|faults| faults.cut_link_between)
                    .map(|(low, high)| StdRng::seed_from_u64(number).random_range(low..=high));
                let link = Arc::new(Link {
                    cut_after,
                    ..Link::default()
                });
                for (from, to, up) in [
                    (client.try_clone(), relay.try_clone(), true),
                    (relay.try_clone(), client.try_clone(), false),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let (shared, link) = (accepting.clone(), link.clone());
                    std::thread::spawn(move || pump(from, to, up, &shared, &link));
                }
            }
        });
        Self { url, shared }
    }

    /// Sets the faults, for open connections too (clients keep connections alive).
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut current) = self.shared.faults.lock() {
            *current = faults;
        }
    }

    /// Bytes forwarded from clients to the relay so far.
    pub fn bytes_up(&self) -> u64 {
        self.shared.bytes_up.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from the relay to clients so far.
    pub fn bytes_down(&self) -> u64 {
        self.shared.bytes_down.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// One connection's shared fate: once cut, both directions stop.
#[derive(Default)]
struct Link {
    cut: AtomicBool,
    /// Bytes forwarded both ways.
    carried: AtomicU64,
    /// Cut once `carried` reaches this.
    cut_after: Option<u64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream, up: bool, shared: &Shared, link: &Link) {
    let counter = if up {
        &shared.bytes_up
    } else {
        &shared.bytes_down
    };
    // Whether to duplicate is decided once, at the start: a WebSocket is parsed from its
    // first byte or not at all.
    let duplicate = !up
        && shared
            .faults
            .lock()
            .map(|f| f.duplicate_frames)
            .unwrap_or(false);
    let mut frames = duplicate.then(FrameDuplicator::default);
    let mut forwarded = 0u64;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if link.cut.load(Ordering::Relaxed) {
            break;
        }
        let faults = shared.faults.lock().map(|f| f.clone()).unwrap_or_default();
        let limit = if up {
            faults.cut_up_after
        } else {
            faults.cut_down_after
        };
        if !faults.delay.is_zero() {
            std::thread::sleep(faults.delay);
        }
        let mut chunk = &buffer[..n];
        let mut cutting = false;
        let link_room = link
            .cut_after
            .map(|after| after.saturating_sub(link.carried.load(Ordering::Relaxed)));
        let direction_room = limit.map(|limit| limit.saturating_sub(forwarded));
        if let Some(room) = link_room.into_iter().chain(direction_room).min()
            && (chunk.len() as u64) >= room
        {
            chunk = &chunk[..room as usize];
            cutting = true;
        }
        let out = match frames.as_mut() {
            Some(duplicator) => duplicator.feed(chunk),
            None => chunk.to_vec(),
        };
        if to.write_all(&out).is_err() {
            break;
        }
        forwarded += chunk.len() as u64;
        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        link.carried
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if let Some(rate) = faults.bytes_per_second.filter(|&rate| rate > 0) {
            std::thread::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64));
        }
        if cutting {
            shared.cuts.fetch_add(1, Ordering::Relaxed);
            link.cut.store(true, Ordering::Relaxed);
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Parses the relay's side of a WebSocket connection (after the `101` response) and
/// repeats each complete binary frame. Anything that is not a WebSocket upgrade passes
/// through untouched.
#[derive(Default)]
struct FrameDuplicator {
    pending: Vec<u8>,
    in_frames: bool,
    not_websocket: bool,
}

impl FrameDuplicator {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        if self.not_websocket {
            return bytes.to_vec();
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        if !self.in_frames {
            if self.pending.len() >= 12 && !self.pending.starts_with(b"HTTP/1.1 101") {
                self.not_websocket = true;
                return std::mem::take(&mut self.pending);
            }
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return out;
            };
            out.extend(self.pending.drain(..end + 4));
            self.in_frames = true;
        }
        while let Some(len) = frame_len(&self.pending) {
            let frame: Vec<u8> = self.pending.drain(..len).collect();
            out.extend_from_slice(&frame);
            if frame[0] & 0x0f == 0x2 {
                out.extend_from_slice(&frame);
            }
        }
        out
    }
}

/// The length of the complete frame at the start of `bytes`, if it is all there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let (&b1, rest) = bytes.get(1).zip(bytes.get(2..))?;
    let masked = b1 & 0x80 != 0;
    let (payload, header) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let total = header + if masked { 4 } else { 0 } + payload;
    (bytes.len() >= total).then_some(total)
}
