//! Signing in and out, session cookies, CSRF tokens and the lock-out.
//!
//! - **Session**: a random 256-bit token in the `wc_session` cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Path=/console`, `Secure` when the relay is reached over HTTPS),
//!   stored only as its SHA-256, valid [`SESSION_HOURS`] hours.
//! - **CSRF**: every form carries the session's own random token in a hidden `csrf`
//!   field, compared in constant time on every POST; the sign-in form, before there is a
//!   session, uses a token that must equal the `wc_signin` cookie's and that the relay
//!   issued itself, recently ([`super::form_token`]). On top, [`same_origin`] refuses a
//!   POST whose `Origin` is another site, or this one over another scheme.
//! - **Lock-out**: after [`MAX_FAILURES`] failed sign-ins with one user name within
//!   [`FAILURE_WINDOW_MS`], sign-in with it is refused until the failures age out, whether
//!   the user exists or not; after [`MAX_FAILURES_PER_ADDRESS`] from one client address
//!   (trying many names), sign-in from it is refused the same way. An attempt is counted
//!   before its password is checked, in the same transaction as the lock-out check, so
//!   attempts at once cannot all pass the check: the sixth wrong password for a name is
//!   never checked, however many come together.
//! - **Bounded checks**: passwords are checked by [`crate::passwords`], a few at a time
//!   in reused memory; a sign-in that finds too many waiting gets 503 (and its attempt is
//!   not counted).
//! - **Nothing revealed**: a wrong password, an unknown user, a user without a password
//!   and an officer all get the same answer, after the same argon2 verification (against a
//!   fixed dummy hash when there is no real one).

use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::header::{COOKIE, HOST, ORIGIN, REFERER, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::html;
use serde::Deserialize;

use super::i18n::Lang;
use super::{form_token, layout};
use crate::AppState;
use crate::auth::{self, Principal, Role, constant_time_eq};
use crate::error::AppError;
use crate::passwords::Busy;
use crate::serve::Peer;
use crate::store::now_ms;

/// The session cookie.
const SESSION_COOKIE: &str = "wc_session";
/// The sign-in form's CSRF cookie.
const SIGN_IN_COOKIE: &str = "wc_signin";
/// The language cookie.
const LANG_COOKIE: &str = "wc_lang";
/// How long the language choice is kept.
const LANG_COOKIE_SECS: u64 = 365 * 24 * 3600;
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// Failed sign-ins with one user name that lock it out.
pub const MAX_FAILURES: u32 = 5;
/// Failed sign-ins from one client address that lock it out (higher: several
/// supervisors may share an address behind a NAT or proxy).
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// The window in which failures count (and so how long a lock-out lasts at most).
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Longest user name looked at (longer input is cut, not stored whole).
const MAX_USERNAME: usize = 64;
/// What a sign-in refused for too many checks at once says to wait, seconds.
const BUSY_RETRY_SECS: u32 = 5;

/// An argon2id hash (default parameters) of a random password nobody knows: verified
/// against when there is no real hash, so that every failed sign-in costs the same.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2lnbi1pbi1kdW1teS1zYWx0$0dxIvnKzSyyrJmxrGhCeDn5BcBR+hTskC5H0DDgDeaY";

/// A signed-in supervisor (or admin): the extractor of every console page behind
/// sign-in. Without a valid session, the request is redirected to the sign-in page.
#[derive(Debug, Clone)]
pub struct Supervisor {
    /// Who, as the scope rules see them.
    pub principal: Principal,
    /// Their display name.
    pub name: String,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// The language of the pages.
    pub lang: Lang,
}

impl Supervisor {
    /// Checks a form's CSRF token against the session's, in constant time.
    pub fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        if constant_time_eq(token.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

impl FromRequestParts<AppState> for Supervisor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = lang_of(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/console/login").into_response());
        };
        let hash = auth::token_hash(token);
        let found = state
            .db(move |store| store.console_session(&hash, now_ms()))
            .await
            .map_err(IntoResponse::into_response)?;
        match found {
            Some(session) if session.principal.role != Role::Officer => Ok(Supervisor {
                principal: session.principal,
                name: session.display_name,
                csrf: session.csrf,
                lang,
            }),
            _ => Err(Redirect::to("/console/login").into_response()),
        }
    }
}

/// The page language, from the `wc_lang` cookie (Vietnamese without one).
impl FromRequestParts<AppState> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(lang_of(&parts.headers))
    }
}

/// The language of the `wc_lang` cookie (Vietnamese without one).
pub(super) fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .unwrap_or_default()
}

/// The value of cookie `name`, if the request has it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value for the console's cookies.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path=/console; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if state.config.serves_https() {
            "; Secure"
        } else {
            ""
        }
    );
    // Names and values are ours: hex tokens and language codes.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Refuses (403) a POST whose `Origin` header is not this relay's own origin:
/// `scheme://Host`, the scheme being `https` when browsers reach the relay over HTTPS
/// ([`crate::Config::serves_https`]), else `http`. A second line of defence behind the
/// CSRF tokens and `SameSite` cookies: a page of another site, or of this host over plain
/// HTTP (where anyone on the path can write one), cannot post to the console.
pub async fn same_origin(https: bool, request: Request, next: Next) -> Result<Response, AppError> {
    if request.method() == Method::POST {
        let headers = request.headers();
        if let Some(origin) = headers.get(ORIGIN) {
            let scheme = if https { "https" } else { "http" };
            let expected = headers
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .map(|host| format!("{scheme}://{host}"));
            let same = origin
                .to_str()
                .ok()
                .zip(expected)
                .is_some_and(|(origin, expected)| origin.eq_ignore_ascii_case(&expected));
            if !same {
                return Err(AppError::Forbidden);
            }
        }
    }
    Ok(next.run(request).await)
}

/// `GET /console/login`: the sign-in form, with a fresh sign-in CSRF token.
pub async fn sign_in_page(State(state): State<AppState>, lang: Lang) -> Response {
    let token = form_token::issue(&state.signing_key, now_secs());
    let mut response = sign_in_form(lang, &token, None).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        set_cookie(&state, SIGN_IN_COOKIE, &token, form_token::VALID_SECS),
    );
    response
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or_default()
}

fn sign_in_form(lang: Lang, csrf: &str, error: Option<&str>) -> maud::Markup {
    let t = lang.texts();
    layout::page(
        lang,
        None,
        t.sign_in,
        html! {
            form.card.signin method="post" action="/console/login" {
                h1 { (t.title) }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                input type="hidden" name="csrf" value=(csrf);
                label { (t.username) input name="username" autocomplete="username" required; }
                label { (t.password) input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { (t.sign_in) }
            }
        },
    )
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /console/login`: checks the form's token, counts the attempt (unless the name or
/// the address is locked out), checks the password; on success starts a session and goes
/// to the overview.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<Peer>>>,
    lang: Lang,
    Form(form): Form<SignInForm>,
) -> Result<Response, AppError> {
    let pre = cookie(&headers, SIGN_IN_COOKIE).ok_or(AppError::Forbidden)?;
    if !constant_time_eq(pre.as_bytes(), form.csrf.as_bytes())
        || !form_token::is_valid(&state.signing_key, pre, now_secs())
    {
        return Err(AppError::Forbidden);
    }
    let t = lang.texts();
    let username: String = form.username.trim().chars().take(MAX_USERNAME).collect();
    let now = now_ms();
    let address = peer.map(|Extension(ConnectInfo(peer))| format!("ip:{}", peer.client()));
    let name = username.clone();
    let attempt = state
        .db(move |store| {
            let mut limits = vec![(name.as_str(), MAX_FAILURES)];
            if let Some(address) = &address {
                limits.push((address.as_str(), MAX_FAILURES_PER_ADDRESS));
            }
            store.begin_sign_in(&limits, now - FAILURE_WINDOW_MS, now)
        })
        .await?;
    let Some(attempt) = attempt else {
        let page = sign_in_form(lang, pre, Some(t.locked_out));
        return Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response());
    };
    let name = username.clone();
    let account = state
        .db(move |store| store.console_account(&name))
        .await?
        .filter(|account| account.role != Role::Officer);
    let hash = account
        .as_ref()
        .and_then(|account| account.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    // Always one check, so time says nothing about who exists.
    let matches = match state.passwords.verify(form.password, hash).await {
        Ok(matches) => matches,
        Err(Busy) => {
            state
                .db(move |store| store.forget_sign_in_attempt(&attempt))
                .await?;
            let page = sign_in_form(lang, pre, Some(t.sign_in_busy));
            let retry = [(RETRY_AFTER, BUSY_RETRY_SECS)];
            return Ok((StatusCode::SERVICE_UNAVAILABLE, retry, page).into_response());
        }
    };
    let Some(account) = account.filter(|a| matches && a.password_hash.is_some()) else {
        // The attempt stays counted as a failure.
        let page = sign_in_form(lang, pre, Some(t.sign_in_failed));
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    let token = auth::new_token();
    let hash = auth::token_hash(&token);
    let csrf = auth::new_token();
    let expires = now + SESSION_HOURS * 3600 * 1000;
    state
        .db(move |store| {
            store.create_console_session(&hash, &account.user_id, &csrf, &attempt, now, expires)
        })
        .await?;
    let mut response = Redirect::to("/console/").into_response();
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_HOURS as u64 * 3600),
    );
    headers.append(SET_COOKIE, set_cookie(&state, SIGN_IN_COOKIE, "", 0));
    Ok(response)
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/logout`: ends the session.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    supervisor: Supervisor,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    supervisor.check_csrf(&form.csrf)?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let hash = auth::token_hash(token);
        state
            .db(move |store| store.delete_console_session(&hash))
            .await?;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0));
    Ok(response)
}

/// `GET /console/lang/{code}`: switches the language (a cookie) and goes back to the
/// console page the link was on (its `Referer`), only ever to a console page.
pub async fn switch_lang(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = Lang::parse(&code).ok_or(AppError::NotFound)?;
    let back = headers
        .get(REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .filter(|path| path.starts_with("/console/") && !path.contains("//"))
        .unwrap_or("/console/");
    let mut response = Redirect::to(back).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        set_cookie(&state, LANG_COOKIE, lang.code(), LANG_COOKIE_SECS),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_valid_argon2_hash_of_something_else() {
        use crate::passwords::verify_in;
        assert!(!verify_in("", DUMMY_HASH, &mut Vec::new()));
        assert!(!verify_in("password", DUMMY_HASH, &mut Vec::new()));
        // Same parameters as real hashes, so verifying it costs the same.
        let real = auth::hash_password("x");
        assert_eq!(real.split('$').nth(3), DUMMY_HASH.split('$').nth(3));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; wc_session=abc; b="));
        assert_eq!(cookie(&headers, "wc_session"), Some("abc"));
        assert_eq!(cookie(&headers, "b"), None);
        assert_eq!(cookie(&headers, "c"), None);
    }
}
