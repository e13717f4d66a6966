//! Checking console passwords within fixed bounds of memory and concurrency.
//!
//! An argon2id check (the parameters `admin` hashes with, argon2's defaults: 19 MiB, two
//! passes) needs 19 MiB of working memory. Allocating it for every check, on tokio's
//! ever-changing blocking threads, left glibc's per-thread arenas holding it: about
//! 19 MB of RSS per sign-in, never given back (issue 13: 100 sign-ins at once took the
//! relay to 1.5–2.7 GB). Here the relay keeps at most `password_checks` buffers
//! ([`crate::Config::password_checks`]), made once and lent to one check at a time, so at
//! most that many checks run at once; [`fixed::PASSWORD_CHECKS_WAITING`] more may wait
//! their turn, and a check beyond that is refused at once ([`Busy`]).
//!
//! A stored hash asking for more memory than argon2's default is not checked (it is
//! `false`): every hash the relay writes uses the default.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use prometheus::IntCounter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::constant_time_eq;
use crate::config::fixed;

/// Too many password checks are running and waiting: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

/// The relay's password checks: a few at a time, each in a reused buffer.
pub struct PasswordChecks {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    checked: IntCounter,
}

impl PasswordChecks {
    /// At most `at_once` checks at a time (and as many buffers); each check counted in
    /// `checked`.
    pub fn new(at_once: usize, checked: IntCounter) -> Self {
        Self {
            running: Arc::new(Semaphore::new(at_once)),
            waiting: AtomicUsize::new(0),
            buffers: Arc::default(),
            checked,
        }
    }

    /// Whether `password` matches the argon2 PHC string `hash` (`false` for a malformed
    /// hash). Waits for a free buffer behind at most [`fixed::PASSWORD_CHECKS_WAITING`]
    /// others; `Err(Busy)` if that many are waiting already.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        let permit = self.permit().await?;
        self.checked.inc();
        let buffers = self.buffers.clone();
        // The permit and the buffer go with the blocking work: if the caller goes away,
        // the check still ends before another may start.
        let check = tokio::task::spawn_blocking(move || {
            let _permit: OwnedSemaphorePermit = permit;
            let mut memory = lock(&buffers).pop().unwrap_or_default();
            let matches = verify_in(&password, &hash, &mut memory);
            lock(&buffers).push(memory);
            matches
        });
        // A panic inside argon2 is a failed check.
        Ok(check.await.unwrap_or(false))
    }

    /// Buffers made so far (at most `at_once`).
    pub fn buffers(&self) -> usize {
        lock(&self.buffers).len()
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leaves = Waiting(&self.waiting);
        if queued >= fixed::PASSWORD_CHECKS_WAITING {
            return Err(Busy);
        }
        self.running.clone().acquire_owned().await.map_err(|_| Busy)
    }
}

/// One place in the queue, given back however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks `password` against the PHC string `hash` with `memory` as argon2's working
/// memory (grown to the hash's needs the first time, then reused).
pub(crate) fn verify_in(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > Params::DEFAULT_M_COST {
        tracing::warn!("a password hash asks for more memory than the relay gives a check");
        return false;
    }
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut computed = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut computed,
            &mut memory[..blocks],
        )
        .is_ok()
        && constant_time_eq(&computed, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_password;

    fn counter() -> IntCounter {
        IntCounter::new("checks", "checks").unwrap()
    }

    #[test]
    fn agrees_with_argon2s_own_verification() {
        use argon2::password_hash::PasswordVerifier;
        let hash = hash_password("đúng rồi");
        let mut memory = Vec::new();
        for (password, expected) in [("đúng rồi", true), ("sai", false), ("", false)] {
            assert_eq!(
                verify_in(password, &hash, &mut memory),
                expected,
                "{password}"
            );
            let theirs = Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok();
            assert_eq!(theirs, expected);
        }
        assert_eq!(memory.len(), Params::DEFAULT_M_COST as usize);
        assert!(!verify_in("x", "not a hash", &mut memory));
        // A hash asking for more memory than the relay gives is not checked.
        let greedy = Argon2::from(Params::new(64 * 1024, 1, 1, None).unwrap());
        let big = argon2::password_hash::PasswordHasher::hash_password(&greedy, b"x")
            .unwrap()
            .to_string();
        assert!(!verify_in("x", &big, &mut memory));
        assert_eq!(memory.len(), Params::DEFAULT_M_COST as usize);
    }

    #[tokio::test]
    async fn checks_reuse_at_most_their_buffers() {
        let checks = Arc::new(PasswordChecks::new(2, counter()));
        let hash = hash_password("p");
        let mut running = tokio::task::JoinSet::new();
        for n in 0..8 {
            let (checks, hash) = (checks.clone(), hash.clone());
            let password = if n == 0 { "p" } else { "q" };
            running.spawn(async move { checks.verify(password.into(), hash).await });
        }
        let mut matched = 0;
        while let Some(result) = running.join_next().await {
            matched += usize::from(result.unwrap().unwrap());
        }
        assert_eq!(matched, 1);
        assert_eq!(checks.checked.get(), 8);
        assert!((1..=2).contains(&checks.buffers()), "{}", checks.buffers());
    }

    #[tokio::test]
    async fn past_the_queue_a_check_is_refused_at_once() {
        let checks = Arc::new(PasswordChecks::new(1, counter()));
        let hash = hash_password("p");
        // The one check place is taken, and the queue is full.
        let held = checks.running.clone().try_acquire_owned().unwrap();
        let mut waiting = Vec::new();
        for _ in 0..fixed::PASSWORD_CHECKS_WAITING {
            let (checks, hash) = (checks.clone(), hash.clone());
            waiting.push(tokio::spawn(async move {
                checks.verify("p".into(), hash).await
            }));
        }
        while checks.waiting.load(Ordering::SeqCst) < fixed::PASSWORD_CHECKS_WAITING {
            tokio::task::yield_now().await;
        }
        assert_eq!(checks.verify("p".into(), hash.clone()).await, Err(Busy));
        assert_eq!(checks.checked.get(), 0);
        // The waiting ones get their turn.
        drop(held);
        for check in waiting {
            assert_eq!(check.await.unwrap(), Ok(true));
        }
        assert_eq!(checks.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(checks.buffers(), 1);
    }
}
