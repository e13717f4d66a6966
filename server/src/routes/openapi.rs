//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of the phone API, made from the
//! handlers' `#[utoipa::path]` attributes as they are routed (`utoipa_axum::routes!`
//! registers a handler with the path and methods of its description, so neither can be
//! left out of the other).
//!
//! What every route of an area shares is described where it is applied, with the layer:
//! the token ([`behind_token`]: the security requirement and 401), the timeout (408) and
//! the body limit (413) (`routes::timed`, `routes::body_limited`). [`Description::of`]
//! then gives every error answer the one error body, `{"error", "code"}`. The
//! description itself needs no token; the console's HTML pages are not in it.

use axum::Extension;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, SecurityRequirement};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ErrorBody;

/// The security scheme of `Authorization: Bearer <token>`.
const BEARER: &str = "bearer";

/// The security scheme of `?token=<token>` (WebSocket clients that cannot set headers).
const TOKEN_QUERY: &str = "token_query";

/// What a blob address looks like: its SHA-256 as hex digits.
const SHA256_PATTERN: &str = "^[0-9a-fA-F]{64}$";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "wardcheck relay",
        description = "The phone API of the wardcheck relay: enrolment, the document list, \
                       photo blobs and the document sync (a WebSocket). Every error answer \
                       is JSON `{\"error\": <message>, \"code\": <code>}`; messages never \
                       name users, units, devices or tokens.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "relay", description = "Health, metrics and this description"),
        (name = "enrolment", description = "A phone trades a one-time code for a token"),
        (name = "documents", description = "The assessment documents a device may sync"),
        (name = "blobs", description = "Photo blobs, content-addressed by SHA-256"),
        (name = "sync", description = "Document sync over a WebSocket (automerge-repo v1)"),
    ),
)]
struct ApiDoc;

/// Adds the two ways of presenting a device token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("The device token from `POST /v1/enroll`.".into());
        components
            .security_schemes
            .insert(BEARER.into(), SecurityScheme::Http(bearer).into());
        components.security_schemes.insert(
            TOKEN_QUERY.into(),
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The device token, for WebSocket clients that cannot set headers.",
            )))
            .into(),
        );
    }
}

/// This route, on a router whose description holds the API's title and shared parts.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(openapi_json))
}

/// The finished description as served: JSON, made once when the app is built.
#[derive(Debug, Clone)]
pub(crate) struct Description(Bytes);

impl Description {
    /// Finishes `api` (every error answer gets the error body) and renders it.
    pub(crate) fn of(mut api: OpenApi) -> Self {
        for item in api.paths.paths.values_mut() {
            for (operation, has_body) in operations(item) {
                for (status, response) in &mut operation.responses.responses {
                    if let RefOr::T(response) = response
                        && has_body
                        && status.starts_with(['4', '5'])
                        && response.content.is_empty()
                    {
                        response.content.insert(
                            "application/json".into(),
                            Content::new(Some(Ref::from_schema_name("Error"))).into(),
                        );
                    }
                }
            }
        }
        let json = api
            .to_json()
            .expect("an OpenAPI document always serializes");
        Self(Bytes::from(json))
    }
}

/// The description of the HTTP API.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "relay",
    responses((
        status = 200,
        description = "This document (OpenAPI 3.1)",
        content_type = "application/json",
        body = Object,
    )),
)]
async fn openapi_json(Extension(Description(json)): Extension<Description>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], json)
}

/// Marks every operation of `api` as needing a device token (the authentication layer's
/// work, `auth::require_principal`), answering 401 without one.
pub(crate) fn behind_token(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for (operation, _) in operations(item) {
            operation.security = Some(vec![
                SecurityRequirement::new(BEARER, Vec::<String>::new()),
                SecurityRequirement::new(TOKEN_QUERY, Vec::<String>::new()),
            ]);
        }
    }
    add_error(
        api,
        StatusCode::UNAUTHORIZED,
        "`unauthorized`: no token, or an unknown or revoked one (`WWW-Authenticate: Bearer`)",
    );
}

/// Adds an error answer that a layer gives, to every operation of `api` that does not
/// describe that status itself.
pub(crate) fn add_error(api: &mut OpenApi, status: StatusCode, description: &str) {
    for item in api.paths.paths.values_mut() {
        for (operation, _) in operations(item) {
            operation
                .responses
                .responses
                .entry(status.as_str().into())
                .or_insert_with(|| Response::new(description).into());
        }
    }
}

/// The operations of a path, each with whether its answers have a body (not `HEAD`).
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&mut Operation, bool)> {
    let PathItem {
        get,
        put,
        post,
        delete,
        options,
        head,
        patch,
        trace,
        ..
    } = item;
    [get, put, post, delete, options, patch, trace]
        .into_iter()
        .filter_map(|operation| operation.as_mut().map(|operation| (operation, true)))
        .chain(head.as_mut().map(|operation| (operation, false)))
}

/// The schema of a blob address.
pub(crate) fn sha256() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(SHA256_PATTERN))
        .description(Some(
            "A blob's address: the SHA-256 of its bytes, as 64 hex digits",
        ))
        .build()
}

/// The schema of a list of at most `max` blob addresses.
pub(crate) fn sha256_list(max: usize) -> Array {
    ArrayBuilder::new()
        .items(sha256())
        .max_items(Some(max))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::Value;

    use crate::routes::testing::{TestRelay, authed};

    async fn document(relay: &TestRelay) -> Value {
        let reply = relay
            .send(
                Request::get("/v1/openapi.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "served without a token");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.json()
    }

    /// The paths under `/v1` that the router serves, from its `Debug` form (axum lists a
    /// router's paths there, and offers no other way to enumerate them).
    fn routed_paths(relay: &TestRelay) -> BTreeSet<String> {
        format!("{:?}", relay.app)
            .split('"')
            .filter(|text| text.starts_with("/v1/"))
            .map(str::to_owned)
            .collect()
    }

    /// The methods the router takes on `path`, from the `Allow` header of its 405 to a
    /// method no route takes.
    async fn routed_methods(relay: &TestRelay, path: &str, token: &str) -> BTreeSet<String> {
        let concrete = path.replace("{sha256}", &"a".repeat(64));
        let probe = Method::from_bytes(b"PROBE").unwrap();
        let reply = relay
            .send(
                authed(probe.as_str(), &concrete, token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        reply
            .header("allow")
            .unwrap()
            .split(',')
            .map(|method| method.trim().to_ascii_lowercase())
            .collect()
    }

    #[tokio::test]
    async fn every_route_under_v1_is_described_and_nothing_else() {
        let relay = TestRelay::new();
        let token = relay.token("officer-a");
        let api = document(&relay).await;
        let described: BTreeMap<String, BTreeSet<String>> = api["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.starts_with("/v1/"))
            .map(|(path, item)| {
                let mut methods: BTreeSet<String> =
                    item.as_object().unwrap().keys().cloned().collect();
                // axum answers HEAD wherever it answers GET (HTTP's rule: the same
                // answer without its body), and says so in `Allow`.
                if methods.contains("get") {
                    methods.insert("head".into());
                }
                (path.clone(), methods)
            })
            .collect();

        let paths = routed_paths(&relay);
        // The enumeration works (it would pass vacuously if axum's `Debug` changed).
        for known in [
            "/v1/enroll",
            "/v1/blobs/{sha256}",
            "/v1/sync",
            "/v1/openapi.json",
        ] {
            assert!(paths.contains(known), "{known} not found in {paths:?}");
        }
        let mut routed = BTreeMap::new();
        for path in paths {
            let methods = routed_methods(&relay, &path, &token).await;
            routed.insert(path, methods);
        }
        assert_eq!(routed, described);
    }

    #[tokio::test]
    async fn the_description_is_openapi_3_with_every_error_in_the_json_shape() {
        let relay = TestRelay::new();
        let api = document(&relay).await;
        assert!(
            api["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            api["openapi"]
        );
        assert_eq!(api["info"]["title"], "wardcheck relay");
        assert!(api["info"]["version"].is_string());
        let schemes = &api["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["token_query"]["in"], "query");
        let error = &api["components"]["schemas"]["Error"];
        assert_eq!(error["required"], serde_json::json!(["error", "code"]));

        for (path, item) in api["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let what = format!("{method} {path}");
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|status| status < &"300".to_string()),
                    "{what}: no success"
                );
                for (status, response) in responses {
                    assert!(response["description"].is_string(), "{what} {status}");
                    if status.starts_with(['4', '5']) && method != "head" {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/Error",
                            "{what} {status}"
                        );
                    }
                }
                let public = ["/healthz", "/metrics", "/v1/enroll", "/v1/openapi.json"];
                if public.contains(&path.as_str()) {
                    assert!(operation.get("security").is_none(), "{what}");
                } else {
                    assert_eq!(
                        operation["security"][0]["bearer"],
                        serde_json::json!([]),
                        "{what}"
                    );
                    assert!(responses.contains_key("401"), "{what}");
                }
            }
        }
        // Every reference points at something in the document.
        let text = api.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let pointer = target.strip_prefix('#').unwrap();
            assert!(api.pointer(pointer).is_some(), "dangling {target}");
        }
    }
}
