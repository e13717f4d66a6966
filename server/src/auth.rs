//! Who is calling: roles, the [`Principal`], credentials (bearer tokens, enrolment codes,
//! passwords) and the authentication layer of the API (the console's sessions are in
//! `console::session`).
//!
//! Tokens and codes are random and stored only as their SHA-256; a stolen database
//! gives nobody a way in. Passwords (for the console) are argon2id PHC strings, checked
//! by [`crate::passwords`].

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;
use crate::store::now_ms;

pub use wardcheck_core::model::{InvalidRole, Role};

/// An authenticated caller. Handlers behind the authentication layer take it as an
/// extractor; what it may see is [`crate::RelayStore::wards_in_scope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: String,
    /// Their role.
    pub role: Role,
    /// Their unit: an officer's ward, a supervisor's city or province.
    pub unit_id: String,
    /// The enrolled device the request came from; `None` for a console session.
    pub device_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        // Set by `require_principal`; a route outside the layer has no principal.
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(AppError::Unauthorized)
    }
}

/// The authentication layer: takes the token from `Authorization: Bearer <token>` or,
/// for WebSocket clients that cannot set headers, from `?token=<token>`; looks up its
/// device (checking revocation on every request) and hands the [`Principal`] to the
/// handler. Missing, unknown or revoked token: 401.
pub async fn require_principal(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let token = bearer_token(&request)
        .or_else(|| query_token(&request))
        .ok_or(AppError::Unauthorized)?;
    let hash = token_hash(token);
    let principal = state
        .db(move |store| store.authenticate(&hash, now_ms()))
        .await?
        .ok_or(AppError::Unauthorized)?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

fn query_token(request: &Request) -> Option<&str> {
    // Tokens are hex, so they need no percent-decoding.
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
}

/// A new bearer token: 256 random bits as 64 hex digits.
pub fn new_token() -> String {
    hex::encode(random_bytes::<32>())
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new device id: "d-" and 16 base32 characters (80 random bits).
pub fn new_device_id() -> String {
    format!("d-{}", base32(&random_bytes::<10>()).to_ascii_lowercase())
}

/// Crockford's base32 alphabet: no I, L, O or U, so codes survive being read aloud and
/// typed.
const BASE32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new one-time enrolment code: 80 random bits as four groups of four base32
/// characters, e.g. `7K2M-QX9D-0RTA-HB4W`.
pub fn new_enrolment_code() -> String {
    let text = base32(&random_bytes::<10>());
    let groups: Vec<&str> = (0..4).map(|i| &text[i * 4..i * 4 + 4]).collect();
    groups.join("-")
}

/// What the store keeps of an enrolment code: the SHA-256 of its normalized form, or
/// `None` if the text cannot be a code. Normalizing forgives what people do when typing:
/// lower case, dashes and spaces anywhere, O for 0, I or L for 1.
pub fn enrolment_code_hash(code: &str) -> Option<[u8; 32]> {
    let normalized: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    let valid = normalized.len() == 16 && normalized.bytes().all(|b| BASE32.contains(&b));
    valid.then(|| Sha256::digest(normalized.as_bytes()).into())
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Hashes a console password into an argon2id PHC string (random salt).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Whether `a` equals `b`, in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_80_bits_in_four_groups_and_forgive_typing() {
        let code = new_enrolment_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.split('-').count(), 4);
        assert_ne!(code, new_enrolment_code());
        let hash = enrolment_code_hash(&code).unwrap();
        let sloppy = code.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(enrolment_code_hash(&sloppy), Some(hash));
        assert_eq!(enrolment_code_hash("too-short"), None);
        assert_eq!(enrolment_code_hash("UUUU-UUUU-UUUU-UUUU"), None);
    }

    #[test]
    fn base32_packs_five_bits_a_character() {
        assert_eq!(base32(&[0; 10]), "0".repeat(16));
        assert_eq!(base32(&[0xff; 10]), "Z".repeat(16));
        assert_eq!(base32(&[0b0000_1000, 0b0100_0011]), "111G");
    }

    #[test]
    fn tokens_and_device_ids_are_random() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        assert_ne!(token_hash(&token), token_hash(&new_token()));
        assert!(new_device_id().starts_with("d-"));
        assert_eq!(new_device_id().len(), 18);
    }

    #[test]
    fn passwords_hash_as_argon2id_and_compare_in_constant_time() {
        assert!(hash_password("correct horse").starts_with("$argon2id$"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Officer, Role::Supervisor, Role::Admin] {
            assert_eq!(role.as_str().parse(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(InvalidRole));
    }
}
