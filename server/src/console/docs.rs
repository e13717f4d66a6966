//! The console's way to the assessment documents: the same scope rule and the same
//! in-memory copies (`DocCache`) as the sync route, so a review written
//! here is what the next sync message carries to the phones.
//!
//! A console edit (review, settled conflict) is an Automerge change authored by the
//! supervisor on device [`CONSOLE_DEVICE`]. It is made on a copy of the shared document,
//! appended to the store (chunk and heads in one transaction, `synchronous=FULL`), and
//! only then put in place of the shared copy, under the same lock the sync connections
//! take: nothing unstored is ever seen by a phone.

use std::sync::{Arc, Mutex, MutexGuard};

use wardcheck_core::doc::{Assessment, AssessmentView, DocumentId};
use wardcheck_core::model::{Author, Template};
use wardcheck_core::sync::HostError;

use super::session::Supervisor;
use crate::AppState;
use crate::error::AppError;
use crate::routes::sync::RelayHost;
use crate::store::{DocumentSummary, now_ms};

/// The device id console edits are recorded with.
pub const CONSOLE_DEVICE: &str = "console";

/// The wards the supervisor may see.
pub async fn wards(state: &AppState, who: &Supervisor) -> Result<Vec<String>, AppError> {
    let principal = who.principal.clone();
    state
        .db(move |store| store.wards_in_scope(&principal))
        .await
}

fn host(state: &AppState, wards: Vec<String>) -> RelayHost {
    RelayHost::new(state.store.clone(), state.docs.clone(), wards, true)
}

fn lock(doc: &Mutex<Assessment>) -> MutexGuard<'_, Assessment> {
    doc.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens document `id` through `host`: 403 when it is outside the scope *or* does not
/// exist, so the answer says nothing about other provinces' documents.
fn open(host: &RelayHost, id: &DocumentId) -> Result<Arc<Mutex<Assessment>>, AppError> {
    match host.open(id) {
        Ok(Some(doc)) => Ok(doc),
        Ok(None) | Err(HostError::Unavailable) => Err(AppError::Forbidden),
        Err(HostError::Failed(e)) => Err(AppError::internal(e)),
    }
}

/// Runs `f` on document `id` (in scope) on the blocking pool.
pub async fn read<T, F>(
    state: &AppState,
    who: &Supervisor,
    id: DocumentId,
    f: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Assessment) -> Result<T, AppError> + Send + 'static,
{
    let host = host(state, wards(state, who).await?);
    tokio::task::spawn_blocking(move || {
        let doc = open(&host, &id)?;
        let doc = lock(&doc);
        f(&doc)
    })
    .await?
}

/// The view of document `id` (in scope) with its template.
pub async fn view(
    state: &AppState,
    who: &Supervisor,
    id: DocumentId,
) -> Result<(AssessmentView, Arc<Template>), AppError> {
    read(state, who, id, |doc| {
        Ok((
            doc.view().map_err(AppError::internal)?,
            doc.template().clone(),
        ))
    })
    .await
}

/// Runs `f` on every document in scope (by ward, then id) on the blocking pool.
pub async fn read_all<T, F>(state: &AppState, who: &Supervisor, f: F) -> Result<Vec<T>, AppError>
where
    T: Send + 'static,
    F: Fn(&DocumentSummary, &Assessment) -> Result<T, AppError> + Send + 'static,
{
    let wards = wards(state, who).await?;
    let host = host(state, wards.clone());
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for summary in store.documents_for_wards(&wards)? {
            let doc = open(&host, &summary.id)?;
            let doc = lock(&doc);
            out.push(f(&summary, &doc)?);
        }
        Ok(out)
    })
    .await?
}

/// Makes one change to document `id` (in scope) as the supervisor, durably: see the
/// module docs. `f` gets a copy of the document, the author and the time.
pub async fn change<F>(
    state: &AppState,
    who: &Supervisor,
    id: DocumentId,
    f: F,
) -> Result<(), AppError>
where
    F: FnOnce(&mut Assessment, &Author, i64) -> wardcheck_core::Result<()> + Send + 'static,
{
    let host = host(state, wards(state, who).await?);
    let author = Author::new(who.principal.user_id.clone(), CONSOLE_DEVICE);
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let shared = open(&host, &id)?;
        let mut doc = lock(&shared);
        let before = doc.heads();
        let mut edited = doc.clone();
        f(&mut edited, &author, now_ms()).map_err(refused)?;
        if edited.heads() == before {
            return Ok(());
        }
        // A review or a settled value references no new blob.
        store.append_chunk(&id, &edited.save_after(&before), &edited.heads_key(), &[])?;
        *doc = edited;
        Ok(())
    })
    .await?
}

/// What the core refuses, as the console answers it.
fn refused(err: wardcheck_core::Error) -> AppError {
    use wardcheck_core::Error;
    match err {
        Error::NotAllowed { .. } => AppError::unprocessable(
            "not_allowed",
            "the criterion's status does not allow this review",
        ),
        Error::InvalidInput(_) => {
            AppError::unprocessable("reason_required", "a return needs a reason")
        }
        Error::NoConflict(_) => {
            AppError::unprocessable("no_conflict", "this field is not in conflict any more")
        }
        Error::UnknownCriterion(_) => AppError::NotFound,
        other => AppError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automerge::sync::State as SyncState;
    use wardcheck_core::model::{Action, Status, Unit, sample_templates};
    use wardcheck_core::sync::SyncHost;

    use super::*;
    use crate::auth::{Principal, Role};
    use crate::console::i18n::Lang;
    use crate::routes::testing::TestRelay;

    /// Syncs a phone's copy with a relay connection until neither has anything to say.
    fn exchange(
        host: &mut RelayHost,
        id: &DocumentId,
        relay_state: &mut SyncState,
        phone: &mut Assessment,
        phone_state: &mut SyncState,
    ) {
        for _ in 0..20 {
            let to_relay = phone.generate_sync_messages(phone_state);
            let quiet = to_relay.is_empty();
            for message in to_relay {
                host.receive(id, relay_state, message).unwrap();
            }
            let to_phone = host.generate(id, relay_state).unwrap();
            if quiet && to_phone.is_empty() {
                return;
            }
            for message in to_phone {
                phone.receive_sync_message(phone_state, message).unwrap();
            }
        }
        panic!("the sync did not settle");
    }

    #[tokio::test]
    async fn a_review_reaches_a_connection_that_is_already_open() {
        let relay = TestRelay::new();
        let unit = Unit {
            id: "ngo-may".into(),
            name: "Công an phường Ngô Mây".into(),
            city: "Kon Tum".into(),
            province: "Kon Tum".into(),
        };
        let template = Arc::new(sample_templates().remove(1));
        let mut phone = Assessment::create(&unit, "2025", template).unwrap();
        let officer = Author::new("officer-a", "phone");
        phone
            .step("c01", Action::Submit, None, &officer, 1_000)
            .unwrap();
        let id = phone.id().unwrap();
        let store = relay.state.store.clone();
        store
            .insert_document(&id, "ngo-may", &phone.save(), &phone.heads_key(), &[])
            .unwrap();

        // The officer's phone is connected and in sync.
        let mut host = RelayHost::new(
            store.clone(),
            relay.state.docs.clone(),
            vec!["ngo-may".into()],
            false,
        );
        let (mut relay_state, mut phone_state) = (SyncState::new(), SyncState::new());
        let mut sync = || {
            exchange(
                &mut host,
                &id,
                &mut relay_state,
                &mut phone,
                &mut phone_state,
            )
        };
        sync();

        // A supervisor approves in the console; the open connection carries it.
        let who = Supervisor {
            principal: Principal {
                user_id: "sup-kt".into(),
                role: Role::Supervisor,
                unit_id: "kt".into(),
                device_id: None,
            },
            name: "Supervisor KT".into(),
            csrf: String::new(),
            lang: Lang::Vi,
        };
        change(&relay.state, &who, id, |doc, by, now| {
            doc.step("c01", Action::Approve, None, by, now).map(|_| ())
        })
        .await
        .unwrap();
        sync();
        let c01 = phone.criterion_view("c01").unwrap();
        assert_eq!(c01.status, Status::Approved);
        let review = c01.review.unwrap();
        assert_eq!(
            (review.by.as_str(), review.device.as_str()),
            ("sup-kt", CONSOLE_DEVICE)
        );
        // And it is on disk.
        assert_eq!(store.document(&id).unwrap().unwrap().chunks.len(), 1);
    }
}
