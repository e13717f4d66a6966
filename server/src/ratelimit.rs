//! A rate limit per client ([`crate::serve::Peer::client`]): a token bucket each, in a
//! table of bounded size.
//!
//! A client's bucket holds a minute's worth of tokens and refills at `per_minute`; a
//! request takes a token or is refused with the time until the next one. A bucket that
//! has refilled is the same as no bucket, so such entries are dropped whenever the table
//! is full: it holds only the clients seen within about a minute. If it is still full
//! (more live clients than [`crate::config::fixed::RATE_LIMITED_CLIENTS`]), a new client
//! is refused for a minute: so many addresses cannot make the relay's memory grow, and
//! an honest client waits a minute at worst.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Requests per minute per client, and their buckets.
pub struct RateLimit {
    per_minute: u32,
    capacity: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A client's tokens when last counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How long to wait when the table has no room for a new client: every bucket in it is
/// full again by then.
const FULL_TABLE_WAIT: Duration = Duration::from_secs(60);

impl RateLimit {
    /// `per_minute` requests a minute per client (and as many at once), for at most
    /// `capacity` clients tracked at a time.
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        Self {
            per_minute,
            capacity,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token of `client`'s at `now`; `Err(wait)` if it has none, `wait` being
    /// how long until it has one.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&client) && buckets.len() >= self.capacity {
            buckets.retain(|_, bucket| self.tokens(bucket, now) < self.burst());
            if buckets.len() >= self.capacity {
                return Err(FULL_TABLE_WAIT);
            }
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst(),
            at: now,
        });
        let tokens = self.tokens(bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second()))
        }
    }

    /// Clients in the table (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn burst(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn per_second(&self) -> f64 {
        self.burst() / 60.0
    }

    /// A bucket's tokens at `now`, refilled since it was last counted.
    fn tokens(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second()).min(self.burst())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let limit = RateLimit::new(6, 100);
        let start = Instant::now();
        for _ in 0..6 {
            assert_eq!(limit.take(ip(1), start), Ok(()));
        }
        let wait = limit.take(ip(1), start).unwrap_err();
        assert_eq!(wait.as_secs(), 10, "{wait:?}");
        // Another client is not affected.
        assert_eq!(limit.take(ip(2), start), Ok(()));
        // A token every 10 s.
        let later = start + Duration::from_secs(10);
        assert_eq!(limit.take(ip(1), later), Ok(()));
        assert!(limit.take(ip(1), later).is_err());
        // Never more than the burst, however long the pause.
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..6 {
            assert_eq!(limit.take(ip(1), much_later), Ok(()));
        }
        assert!(limit.take(ip(1), much_later).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limit = RateLimit::new(6, 1_000);
        let start = Instant::now();
        for n in 0..1_000 {
            assert_eq!(limit.take(ip(n), start), Ok(()));
        }
        // Full of clients seen just now: a new one waits, and is not added.
        assert_eq!(limit.take(ip(5_000), start), Err(FULL_TABLE_WAIT));
        assert_eq!(limit.tracked(), 1_000);
        // Those already in keep their buckets.
        assert_eq!(limit.take(ip(7), start), Ok(()));
        // Once their buckets are full again they make room.
        let later = start + Duration::from_secs(61);
        assert_eq!(limit.take(ip(5_000), later), Ok(()));
        assert_eq!(limit.tracked(), 1);
    }
}
