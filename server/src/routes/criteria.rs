//! `GET /v1/criteria-sets/{id}/{version}`: a criteria set the relay publishes, as the JSON
//! the listing on the sync connection names by its SHA-256 (see
//! [`wardcheck_core::sync::listing`]). Any enrolled device may read every published set,
//! retired ones included (the assessments made from them are read against them).

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::model::TemplateKey;

use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::routes::ranges::etag;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(criteria_set))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct SetAddress {
    /// The set's id, e.g. `model-ward-antt`.
    id: String,
    /// Its version.
    version: u32,
}

/// A published criteria set's JSON.
#[utoipa::path(
    get,
    path = "/v1/criteria-sets/{id}/{version}",
    tag = "criteria sets",
    params(SetAddress),
    responses(
        (
            status = 200,
            description = "The set, in the template JSON format",
            content_type = "application/json",
            headers(("ETag" = String, description = "The quoted SHA-256 of the body")),
        ),
        (status = 400, description = "`bad_request`: a version that is not a number"),
        (status = 404, description = "`not_found`: no set of that id and version"),
    ),
)]
async fn criteria_set(
    State(state): State<AppState>,
    _principal: Principal,
    Path(SetAddress { id, version }): Path<SetAddress>,
) -> Result<Response, AppError> {
    let key = TemplateKey { id, version };
    let json = state
        .db(move |store| store.criteria_set_json(&key))
        .await?
        .ok_or(AppError::NotFound)?;
    let hash = BlobHash::of(json.as_bytes());
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::ETAG, etag(&hash)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        ),
    ];
    Ok((StatusCode::OK, headers, json).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use wardcheck_core::model::sample_templates;

    use super::*;
    use crate::routes::testing::{TestRelay, authed};

    #[tokio::test]
    async fn a_published_set_is_served_as_listed_and_an_unknown_one_is_404() {
        let relay = TestRelay::new();
        let set = sample_templates().remove(1);
        relay
            .state
            .store
            .publish_criteria_set(&set, "admin", 1)
            .unwrap();
        let token = relay.token("officer-a");
        let get = |path: String| {
            let request = authed("GET", &path, &token).body(Default::default());
            relay.send(request.unwrap())
        };
        let reply = get(format!("/v1/criteria-sets/{}/{}", set.id, set.version)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let listed = relay.state.store.listed_criteria_sets().unwrap();
        assert_eq!(BlobHash::of(&reply.body), listed[0].hash);
        assert_eq!(
            wardcheck_core::model::Template::from_json(std::str::from_utf8(&reply.body).unwrap())
                .unwrap(),
            set
        );
        let reply = get(format!("/v1/criteria-sets/{}/1999", set.id)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        let reply = get(format!("/v1/criteria-sets/{}/latest", set.id)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
}
