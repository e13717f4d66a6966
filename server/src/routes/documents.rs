//! `GET /v1/documents`: the documents the caller may read. Answer:
//! `[{"id", "unit_id", "updated_at", "bytes"}]` (`updated_at` in ms since the Unix epoch,
//! `bytes` as stored), by ward then id. (Phones get the same on their sync connection:
//! `GET /v1/sync?listing=`.)

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::store::DocumentSummary;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The documents the caller may read, by ward then id.
#[utoipa::path(
    get,
    path = "/v1/documents",
    tag = "documents",
    responses((status = 200, description = "The documents", body = Vec<DocumentSummary>)),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<DocumentSummary>>, AppError> {
    let documents = state
        .db(move |store| store.documents_for_wards(&store.wards_in_scope(&principal)?))
        .await?;
    Ok(Json(documents))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use wardcheck_core::doc::DocumentId;

    use crate::routes::testing::{TestRelay, authed};

    #[tokio::test]
    async fn each_principal_lists_the_documents_of_its_wards() {
        let relay = TestRelay::new();
        let store = &relay.state.store;
        let a = DocumentId::for_assessment("ngo-may", "2025");
        let b = DocumentId::for_assessment("tran-hung-dao", "2025");
        let c = DocumentId::for_assessment("an-hung", "2025");
        store
            .insert_document(&a, "ngo-may", b"s", b"h", &[], &[])
            .unwrap();
        store
            .insert_document(&b, "tran-hung-dao", b"s", b"h", &[], &[])
            .unwrap();
        store
            .insert_document(&c, "an-hung", b"s", b"h", &[], &[])
            .unwrap();

        let list = |user: &'static str| {
            let token = relay.token(user);
            let relay = &relay;
            async move {
                let reply = relay
                    .send(
                        authed("GET", "/v1/documents", &token)
                            .body(Default::default())
                            .unwrap(),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::OK);
                reply
                    .json()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list("officer-a").await, [a.to_string()]);
        assert_eq!(list("sup-kt").await, [a.to_string(), b.to_string()]);
        assert_eq!(list("admin").await.len(), 3);

        let token = relay.token("officer-b");
        let reply = relay
            .send(
                authed("GET", "/v1/documents", &token)
                    .body(Default::default())
                    .unwrap(),
            )
            .await;
        let body = reply.json();
        assert_eq!(body[0]["unit_id"], "tran-hung-dao");
        assert!(body[0]["updated_at"].as_i64().unwrap() > 0);
    }
}
