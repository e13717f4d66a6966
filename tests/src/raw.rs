//! Hand-made HTTP/1.1 over TCP from a chosen source address, for tests that need many
//! client addresses or requests no client library would send: connection bounds, limits
//! per address. On Linux all of 127.0.0.0/8 is loopback, so `127.0.0.2`, `127.1.2.3`…
//! are distinct clients of a relay listening on 127.0.0.1.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a TCP connection from `from` (any port) to the relay on `127.0.0.1:port`.
pub async fn connect(from: Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
}

/// Whether the peer closes `stream` within `within`: reads (and drops) whatever comes
/// until end of stream or an error.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked transfer decoded).
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value the answer sets for cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == "set-cookie")
            .find_map(|(_, value)| value.strip_prefix(name)?.strip_prefix('='))
            .map(|value| value.split(';').next().unwrap_or_default())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// Sends one request (`Connection: close`) from `from` and reads the whole answer.
/// `headers` come after `Host`; `Content-Length` is added when there is a body, unless
/// `headers` say `Transfer-Encoding` (then `body` is sent as it is: see [`chunked`]).
/// The answer is read while the body is written, so an answer that refuses a body
/// before its end (and the connection closed on the rest) is still read.
pub async fn request(
    from: Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Answer> {
    let stream = connect(from, port).await?;
    let mut message =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        message.push_str(&format!("{name}: {value}\r\n"));
    }
    let framed = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("transfer-encoding"));
    if !body.is_empty() && !framed {
        message.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    message.push_str("\r\n");
    let mut message = message.into_bytes();
    message.extend_from_slice(body);
    let (mut reader, mut writer) = stream.into_split();
    // The write half is kept until the answer is read: dropping it would half-close
    // the connection, which the relay takes for a client gone.
    let writing = tokio::spawn(async move {
        let written = writer.write_all(&message).await;
        (writer, written)
    });
    let mut bytes = Vec::new();
    let read = reader.read_to_end(&mut bytes).await;
    // The relay may close the connection on a body it refused: that is not an error.
    drop(writing.await);
    match parse(&bytes) {
        Some(answer) => Ok(answer),
        None => Err(read.err().unwrap_or_else(|| {
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            io::Error::other(format!("not an HTTP answer: {start:?}"))
        })),
    }
}

/// `body` in the chunked transfer coding, in chunks of `size` bytes.
pub fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / size * 12 + 8);
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn parse(bytes: &[u8]) -> Option<Answer> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        unchunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn unchunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_with_or_without_chunks() {
        let plain =
            parse(b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nSet-Cookie: a=1; Path=/\r\n\r\n{}")
                .unwrap();
        assert_eq!(plain.status, 429);
        assert_eq!(plain.header("retry-after"), Some("7"));
        assert_eq!(plain.cookie("a"), Some("1"));
        assert_eq!(plain.body, b"{}");
        let chunked = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abcde");
        assert_eq!(unchunk(&super::chunked(b"abcde", 2)).unwrap(), b"abcde");
    }
}
