//! The relay's resource bounds against the real binary, attacked as issue 13 did:
//! concurrent and repeated console sign-ins (memory, checks before the lock-out),
//! idle and half-open connections, many connections from one address, enrolment
//! guessing, oversized and parked uploads, and what `/v1/blobs/missing` promises.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use harness::Relay;
use harness::raw;

/// `127.a.b.c`: a client address of its own on the loopback network.
fn client(a: u8, b: u8, c: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, a, b, c)
}

/// The value of counter `name` in the relay's `/metrics` (0 if absent).
async fn metric(port: u16, name: &str) -> f64 {
    let answer = raw::request(client(0, 0, 1), port, "GET", "/metrics", &[], b"")
        .await
        .expect("metrics");
    answer
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_do_not_stay_open() {
    let relay = Relay::start_with_config("header_read_timeout_secs = 2\n");
    let port = relay.port();
    // 2,000 connections that send nothing, from 8 addresses (under the per-address
    // bound), one that sends half a request head, one kept alive after its answer.
    let mut streams = Vec::new();
    for n in 0..2_000u32 {
        let from = client(40, (n % 8) as u8, 1);
        streams.push(raw::connect(from, port).await.expect("a connection"));
    }
    let mut half = raw::connect(client(41, 0, 1), port).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow:")
        .await
        .unwrap();
    streams.push(half);
    let mut kept = raw::connect(client(41, 0, 2), port).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = kept.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    streams.push(kept);
    assert!(metric(port, "wardcheck_open_connections").await >= 2_002.0);

    let mut waits = tokio::task::JoinSet::new();
    for mut stream in streams {
        waits.spawn(async move { raw::closed_within(&mut stream, Duration::from_secs(30)).await });
    }
    let mut still_open = 0;
    while let Some(closed) = waits.join_next().await {
        still_open += usize::from(!closed.unwrap());
    }
    assert_eq!(still_open, 0, "connections the relay left open");
    // Only the metrics request itself is open now.
    assert_eq!(metric(port, "wardcheck_open_connections").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_share_an_address_is_refused_while_others_are_served() {
    // The default share (256), idle connections kept long enough to look at them.
    let relay = Relay::start_with_config("header_read_timeout_secs = 60\n");
    let port = relay.port();
    let greedy = client(42, 0, 1);
    let mut held = Vec::new();
    for _ in 0..256 {
        held.push(raw::connect(greedy, port).await.unwrap());
    }
    // Let the relay accept them all before the next one arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..10 {
        let refused = raw::request(greedy, port, "GET", "/healthz", &[], b"").await;
        assert!(
            refused.is_err(),
            "the 257th connection was served: {refused:?}"
        );
    }
    let other = raw::request(client(42, 0, 2), port, "GET", "/healthz", &[], b"")
        .await
        .expect("another address is served");
    assert_eq!((other.status, other.text().as_str()), (200, "ok"));
    assert!(metric(port, "wardcheck_connections_refused_total").await >= 10.0);
    // Closing some gives their places back.
    held.truncate(250);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = raw::request(greedy, port, "GET", "/healthz", &[], b"").await;
    assert_eq!(again.expect("served again").status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_guesses_from_one_address_are_rate_limited() {
    let relay = Relay::start();
    let port = relay.port();
    let guess = |n: u32| {
        serde_json::json!({
            "code": format!("{n:04}-QX9D-0RTA-HB4W"),
            "device_name": "guesser",
            "public_key": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        })
        .to_string()
    };
    let json = [("Content-Type", "application/json")];
    let mut statuses = Vec::new();
    for n in 0..100 {
        let answer = raw::request(
            client(50, 0, 1),
            port,
            "POST",
            "/v1/enroll",
            &json,
            guess(n).as_bytes(),
        )
        .await
        .unwrap();
        if answer.status == 429 {
            assert_eq!(answer.json()["code"], "rate_limited", "{}", answer.text());
            let wait: u64 = answer.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(answer.status);
    }
    let tried = statuses.iter().filter(|&&s| s == 401).count();
    assert_eq!(
        (tried, statuses.len() - tried),
        (30, 70),
        "30 tries a minute, the rest refused: {statuses:?}"
    );
    // Another address still gets its tries.
    let other = raw::request(
        client(50, 0, 2),
        port,
        "POST",
        "/v1/enroll",
        &json,
        guess(0).as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(other.status, 401);
}
