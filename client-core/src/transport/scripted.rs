//! A relay stand-in for the transport's tests: raw HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Relay, RetryPolicy};

/// A relay stand-in on 127.0.0.1 that answers each blob request with what `answer`
/// makes of its `Range` header (raw HTTP), one connection a request, and records the
/// headers it was sent.
pub(crate) fn scripted_relay(
    answer: impl Fn(Option<&str>) -> Vec<u8> + Send + 'static,
) -> (Relay, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("range:") {
                    range = Some(value.trim().to_owned());
                }
            }
            let response = answer(range.as_deref());
            seen.lock().unwrap().push(range);
            let _ = stream.write_all(&response);
        }
    });
    let relay = Relay::new(&format!("http://127.0.0.1:{port}"), "t")
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 1,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        });
    (relay, ranges)
}

/// An HTTP answer with `status`, extra `headers`, a `Content-Length` of `length` and
/// `body` (shorter than `length`: the connection drops in the middle).
pub(crate) fn answer(status: &str, headers: &str, length: usize, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
