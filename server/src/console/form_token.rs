//! The sign-in form's token: the CSRF token of the one form that comes before a session.
//!
//! It is set in the `wc_signin` cookie and the form's hidden field, and the two must be
//! equal on post; on top, the relay accepts only a token it issued itself within
//! [`VALID_SECS`]: 8 bytes of issue time and 8 random bytes, then the first 16 bytes of
//! their HMAC-SHA256 under the relay's signing key ([`crate::AppState::signing_key`]),
//! 64 hex digits in all. A value a client chose, or planted in someone else's browser,
//! is refused.

use sha2::{Digest, Sha256};

use crate::auth::{constant_time_eq, random_bytes};

/// How long a sign-in form may be posted after it was served.
pub const VALID_SECS: u64 = 3600;

/// A new token, issued at `now` (seconds since the epoch).
pub fn issue(key: &[u8; 32], now: u64) -> String {
    let mut signed = [0u8; 16];
    signed[..8].copy_from_slice(&now.to_be_bytes());
    signed[8..].copy_from_slice(&random_bytes::<8>());
    let mac = hmac_sha256(key, &signed);
    format!("{}{}", hex::encode(signed), hex::encode(&mac[..16]))
}

/// Whether `token` was issued with `key` no more than [`VALID_SECS`] before `now`.
pub fn is_valid(key: &[u8; 32], token: &str, now: u64) -> bool {
    let Ok(bytes) = hex::decode(token) else {
        return false;
    };
    let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        return false;
    };
    let (signed, mac) = bytes.split_at(16);
    if !constant_time_eq(&hmac_sha256(key, signed)[..16], mac) {
        return false;
    }
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&signed[..8]);
    let issued = u64::from_be_bytes(issued);
    issued <= now && now - issued <= VALID_SECS
}

/// HMAC-SHA256 (RFC 2104) with a key of at most one block (64 bytes).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut inner_pad = [0x36u8; 64];
    let mut outer_pad = [0x5cu8; 64];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_recent_tokens_of_this_key_are_valid() {
        let key = [7u8; 32];
        let token = issue(&key, 1_000_000);
        assert_eq!(token.len(), 64);
        assert_ne!(token, issue(&key, 1_000_000));
        assert!(is_valid(&key, &token, 1_000_000));
        assert!(is_valid(&key, &token, 1_000_000 + VALID_SECS));
        assert!(!is_valid(&key, &token, 1_000_001 + VALID_SECS));
        assert!(!is_valid(&key, &token, 999_999));
        assert!(!is_valid(&[8u8; 32], &token, 1_000_000));
        // Chosen by the client: any other value, or this one altered.
        let mut altered = token.clone().into_bytes();
        altered[40] = if altered[40] == b'0' { b'1' } else { b'0' };
        for chosen in [
            "0".repeat(64),
            "ab".repeat(32),
            String::from_utf8(altered).unwrap(),
            token[..62].to_owned(),
            "zz".repeat(32),
            String::new(),
        ] {
            assert!(!is_valid(&key, &chosen, 1_000_000), "{chosen}");
        }
    }
}
