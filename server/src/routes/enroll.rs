//! `POST /v1/enroll`: a phone trades a one-time enrolment code for a device token.
//!
//! Request `{"code", "device_name", "public_key"}` (the device's ed25519 key, 64 hex
//! digits); answer 201 `{"device_id", "token", "user_id", "role", "unit_id"}`. The token
//! is shown once and stored only as its hash. A wrong, used or expired code gets the
//! same 401 (the caller learns nothing about which codes exist); a bad key or name 422.
//! Each client address may try `enrol_per_minute` times a minute (malformed requests
//! count too); past that, 429 `rate_limited` with `Retry-After`.

use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wardcheck_core::photo::PublicKey;

use crate::AppState;
use crate::auth::{self, Role};
use crate::error::{AppError, AppJson};
use crate::names;
use crate::serve::Peer;
use crate::store::{NewDevice, StoreError, now_ms};

pub(crate) fn router(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enroll))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limited))
}

/// Takes one of the client's enrolment tries before anything else is looked at; 429 if
/// it has none left. (A request without a peer address, only made in tests, is not
/// counted.)
async fn rate_limited(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<Peer>>() {
        state
            .enrolments
            .take(peer.client(), Instant::now())
            .map_err(|wait| AppError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            })?;
    }
    Ok(next.run(request).await)
}

/// A phone's enrolment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct EnrolRequest {
    /// The one-time code from `admin device enrol-code` (case, dashes and spaces do not
    /// matter).
    #[schema(example = "7K2M-QX9D-0RTA-HB4W")]
    code: String,
    /// The device's name as `admin device list` shows it: 1 to 100 characters, without
    /// control characters or bidirectional overrides and isolates.
    #[schema(min_length = 1, max_length = 100, example = "Officer A's phone")]
    device_name: String,
    /// The device's ed25519 public key (it signs evidence records), as 64 hex digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    public_key: String,
}

/// The new device's identity and token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EnrolResponse {
    /// The device's id.
    device_id: String,
    /// Its bearer token, shown this once (the relay keeps only its hash).
    token: String,
    /// The user the code was made for.
    user_id: String,
    /// That user's role.
    #[schema(schema_with = role)]
    role: Role,
    /// Their unit: an officer's ward, a supervisor's city or province.
    unit_id: String,
}

/// The schema of a [`Role`], as sent.
fn role() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The user's role"))
        .enum_values(Some(
            [Role::Officer, Role::Supervisor, Role::Admin].map(Role::as_str),
        ))
        .build()
}

/// Trades a one-time enrolment code for a device token.
#[utoipa::path(
    post,
    path = "/v1/enroll",
    tag = "enrolment",
    request_body = EnrolRequest,
    responses(
        (status = 201, description = "Enrolled", body = EnrolResponse),
        (
            status = 400,
            description = "`bad_json`: the body is not JSON; `not_json`: no \
                           `Content-Type: application/json`",
        ),
        (
            status = 401,
            description = "`unauthorized`: a wrong, used or expired code (the same answer \
                           for each)",
        ),
        (
            status = 422,
            description = "`invalid_body`: the JSON has the wrong shape; \
                           `invalid_public_key`, `invalid_device_name`",
        ),
        (
            status = 429,
            description = "`rate_limited`: too many tries from this client; retry after \
                           `Retry-After` seconds",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
        ),
    ),
)]
async fn enroll(
    State(state): State<AppState>,
    AppJson(request): AppJson<EnrolRequest>,
) -> Result<(StatusCode, Json<EnrolResponse>), AppError> {
    // Check the body before the code, so a typo in the key does not burn the code.
    let public_key = valid_public_key(&request.public_key).ok_or(AppError::unprocessable(
        "invalid_public_key",
        "public_key must be an ed25519 public key as 64 hex digits",
    ))?;
    let name = names::name(&request.device_name).map_err(|_| {
        AppError::unprocessable(
            "invalid_device_name",
            "device_name must be 1 to 100 characters, without control characters or \
             bidirectional overrides",
        )
    })?;
    let code_hash = auth::enrolment_code_hash(&request.code).ok_or(AppError::Unauthorized)?;
    let token = auth::new_token();
    let device = NewDevice {
        id: auth::new_device_id(),
        name: name.to_owned(),
        token_hash: auth::token_hash(&token),
        public_key: public_key.to_string(),
    };
    let device_id = device.id.clone();
    let enrolled = state
        .db(
            move |store| match store.enrol(&code_hash, &device, now_ms()) {
                Ok(enrolled) => Ok(Some(enrolled)),
                Err(StoreError::InvalidCode) => Ok(None),
                Err(err) => Err(err),
            },
        )
        .await?
        .ok_or(AppError::Unauthorized)?;
    tracing::info!(role = %enrolled.role, "a device enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrolResponse {
            device_id,
            token,
            user_id: enrolled.user_id,
            role: enrolled.role,
            unit_id: enrolled.unit_id,
        }),
    ))
}

/// The key if it is 64 hex digits encoding a usable ed25519 point (not a small-order,
/// "weak" key that any signature would verify against).
fn valid_public_key(text: &str) -> Option<PublicKey> {
    let key: PublicKey = text.parse().ok()?;
    let point = VerifyingKey::from_bytes(key.as_bytes()).ok()?;
    (!point.is_weak()).then_some(key)
}

#[cfg(test)]
mod tests {
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use serde_json::json;
    use wardcheck_core::photo::DeviceKey;

    use super::*;
    use crate::routes::testing::{TestRelay, authed, json_request};

    fn public_key() -> String {
        DeviceKey::generate().unwrap().public_key().to_string()
    }

    fn code_for(relay: &TestRelay, user: &str, expires_at: i64) -> String {
        let code = auth::new_enrolment_code();
        relay
            .state
            .store
            .create_enrolment_code(
                &auth::enrolment_code_hash(&code).unwrap(),
                user,
                0,
                expires_at,
            )
            .unwrap();
        code
    }

    fn enrol_request(code: &str, key: &str) -> Request<axum::body::Body> {
        json_request(
            Request::post("/v1/enroll"),
            json!({"code": code, "device_name": "Officer A's phone", "public_key": key}),
        )
    }

    #[tokio::test]
    async fn a_code_gives_a_token_that_works() {
        let relay = TestRelay::new();
        let code = code_for(&relay, "officer-a", i64::MAX);
        let key = public_key();
        let reply = relay.send(enrol_request(&code.to_lowercase(), &key)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let body = reply.json();
        assert_eq!(body["user_id"], "officer-a");
        assert_eq!(body["role"], "officer");
        assert_eq!(body["unit_id"], "ngo-may");
        let token = body["token"].as_str().unwrap();
        let devices = relay.state.store.devices().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].id, body["device_id"].as_str().unwrap());
        assert_eq!(devices[0].public_key, key);
        assert_eq!(devices[0].name, "Officer A's phone");

        let listed = relay
            .send(
                authed("GET", "/v1/documents", token)
                    .body(Default::default())
                    .unwrap(),
            )
            .await;
        assert_eq!(listed.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn reused_expired_and_wrong_codes_get_the_same_401() {
        let relay = TestRelay::new();
        let code = code_for(&relay, "officer-a", i64::MAX);
        let expired = code_for(&relay, "officer-a", now_ms() - 1);
        assert_eq!(
            relay.send(enrol_request(&code, &public_key())).await.status,
            StatusCode::CREATED
        );

        let mut answers = Vec::new();
        for attempt in [
            &code,
            &expired,
            &auth::new_enrolment_code(),
            &"garbage".to_string(),
        ] {
            let reply = relay.send(enrol_request(attempt, &public_key())).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            answers.push(reply.body);
        }
        assert!(answers.windows(2).all(|pair| pair[0] == pair[1]));
        assert_eq!(relay.state.store.devices().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_bad_key_or_name_is_422_and_keeps_the_code() {
        let relay = TestRelay::new();
        let code = code_for(&relay, "officer-a", i64::MAX);
        // The identity point is a weak (small-order) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for key in ["abc".to_string(), "zz".repeat(32), hex::encode(identity)] {
            let reply = relay.send(enrol_request(&code, &key)).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{key}");
            assert_eq!(reply.json()["code"], "invalid_public_key");
        }
        // A name that would reorder or break `admin device list`'s table.
        for name in [" ", "phone\u{202E}enohp", "a\u{1b}[2Jb"] {
            let reply = relay
                .send(json_request(
                    Request::post("/v1/enroll"),
                    json!({"code": code, "device_name": name, "public_key": public_key()}),
                ))
                .await;
            assert_eq!(reply.json()["code"], "invalid_device_name", "{name:?}");
        }
        // The code still works.
        assert_eq!(
            relay.send(enrol_request(&code, &public_key())).await.status,
            StatusCode::CREATED
        );
    }

    #[tokio::test]
    async fn each_address_may_try_a_few_times_a_minute() {
        let relay = TestRelay::new();
        let from = |addr: &str, body: serde_json::Value| {
            let mut request = json_request(Request::post("/v1/enroll"), body);
            let peer = Peer(addr.parse().unwrap());
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        };
        let guess = || json!({"code": auth::new_enrolment_code(), "device_name": "p", "public_key": public_key()});
        let per_minute = relay.state.config.enrol_per_minute;
        for n in 0..per_minute {
            // Malformed tries count as much as wrong codes.
            let body = if n % 2 == 0 {
                guess()
            } else {
                json!({"code": 1})
            };
            let reply = relay.send(from("192.0.2.1:4000", body)).await;
            assert_ne!(reply.status, StatusCode::TOO_MANY_REQUESTS, "try {n}");
        }
        let refused = relay.send(from("192.0.2.1:4001", guess())).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["code"], "rate_limited");
        let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        // Even with a good code: refused before it is looked at, and kept.
        let code = code_for(&relay, "officer-a", i64::MAX);
        let body = json!({"code": code, "device_name": "p", "public_key": public_key()});
        let reply = relay.send(from("192.0.2.1:4002", body.clone())).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        // Another address is not affected.
        let reply = relay.send(from("198.51.100.1:4000", body)).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn malformed_and_oversized_bodies_are_refused() {
        let relay = TestRelay::new();
        let reply = relay
            .send(
                Request::post("/v1/enroll")
                    .header("content-type", "application/json")
                    .body("{not json".into())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "bad_json");
        let reply = relay
            .send(json_request(
                Request::post("/v1/enroll"),
                json!({"code": 1}),
            ))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        let huge = json!({"code": "x".repeat(100_000), "device_name": "p", "public_key": "k"});
        let reply = relay
            .send(json_request(Request::post("/v1/enroll"), huge))
            .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
