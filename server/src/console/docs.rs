//! The console's way to the assessment documents: the same scope rule and the same
//! in-memory copies (`DocCache`) as the sync route, so a review written
//! here is what the next sync message carries to the phones.
//!
//! A console edit (review, settled conflict) is an Automerge change authored by the
//! supervisor on device [`CONSOLE_DEVICE`], made through the [`Intake`] as every change
//! is: on a copy of the shared document, checked by the change policy, appended to the
//! store, and only then put in place of the shared copy, under the same lock the sync
//! connections take: nothing unstored is ever seen by a phone.

use std::collections::HashSet;
use std::sync::Arc;

use wardcheck_core::doc::{Assessment, AssessmentView, DocumentId};
use wardcheck_core::model::{Author, Template};
use wardcheck_core::policy::Writer;

use super::session::Supervisor;
use crate::AppState;
use crate::documents::{DocCache, DocError, Intake, SharedDoc};
use crate::error::AppError;
use crate::store::{DocumentSummary, RelayStore, now_ms};

/// The device id console edits are recorded with.
pub const CONSOLE_DEVICE: &str = "console";

/// The wards the supervisor may see.
pub async fn wards(state: &AppState, who: &Supervisor) -> Result<Vec<String>, AppError> {
    let principal = who.principal.clone();
    state
        .db(move |store| store.wards_in_scope(&principal))
        .await
}

/// What the blocking side needs to open documents in the supervisor's scope.
struct Scope {
    store: Arc<RelayStore>,
    docs: Arc<DocCache>,
    intake: Arc<Intake>,
    wards: HashSet<String>,
}

impl Scope {
    async fn of(state: &AppState, who: &Supervisor) -> Result<Self, AppError> {
        Ok(Self {
            store: state.store.clone(),
            docs: state.docs.clone(),
            intake: state.intake.clone(),
            wards: wards(state, who).await?.into_iter().collect(),
        })
    }

    /// Opens document `id`: 403 when it is outside the scope *or* does not exist, so the
    /// answer says nothing about other provinces' documents.
    fn open(&self, id: &DocumentId) -> Result<Arc<SharedDoc>, AppError> {
        match self.docs.open_in(&self.store, id, &self.wards) {
            Ok(Some(doc)) => Ok(doc),
            Ok(None) | Err(DocError::OutOfScope | DocError::NotFound) => Err(AppError::Forbidden),
            Err(e) => Err(AppError::internal(e)),
        }
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
    let scope = Scope::of(state, who).await?;
    tokio::task::spawn_blocking(move || scope.open(&id)?.read(f)).await?
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

/// Runs `f` on every document in scope (by ward, then id) on the blocking pool. A
/// document that does not load or read is left out (and logged): one broken document
/// must not take down the pages about all the others.
pub async fn read_all<T, F>(state: &AppState, who: &Supervisor, f: F) -> Result<Vec<T>, AppError>
where
    T: Send + 'static,
    F: Fn(&DocumentSummary, &Assessment) -> Result<T, AppError> + Send + 'static,
{
    let scope = Scope::of(state, who).await?;
    tokio::task::spawn_blocking(move || {
        let wards: Vec<String> = scope.wards.iter().cloned().collect();
        let mut out = Vec::new();
        for summary in scope.store.documents_for_wards(&wards)? {
            match scope
                .open(&summary.id)
                .and_then(|shared| shared.read(|doc| f(&summary, doc)))
            {
                Ok(value) => out.push(value),
                Err(AppError::Internal(e)) => {
                    tracing::error!(document = %summary.id, "left out a document: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    })
    .await?
}

/// Makes one change to document `id` (in scope) as the supervisor, durably: see the
/// module docs. `f` gets the document, the author and the time.
pub async fn change<F>(
    state: &AppState,
    who: &Supervisor,
    id: DocumentId,
    f: F,
) -> Result<(), AppError>
where
    F: FnOnce(&mut Assessment, &Author, i64) -> wardcheck_core::Result<()> + Send + 'static,
{
    let scope = Scope::of(state, who).await?;
    let author = Author::new(who.principal.user_id.clone(), CONSOLE_DEVICE);
    let role = who.principal.role;
    tokio::task::spawn_blocking(move || {
        let shared = scope.open(&id)?;
        let writer = Writer {
            user: &author.user,
            role,
        };
        let changed = scope
            .intake
            .change(&id, &shared, &writer, CONSOLE_DEVICE, |doc| {
                f(doc, &author, now_ms())
            });
        match changed {
            Ok(()) => Ok(()),
            Err(DocError::Edit(e)) => Err(refused(e)),
            Err(DocError::Refused(refusal)) => Err(AppError::Refused(refusal)),
            Err(DocError::NotFound | DocError::OutOfScope) => Err(AppError::Forbidden),
            Err(e) => Err(AppError::internal(e)),
        }
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
    use wardcheck_core::sync::{DEFAULT_MESSAGE_BUDGET, SyncHost};

    use super::*;
    use crate::auth::{Principal, Role};
    use crate::console::i18n::Lang;
    use crate::documents::RelayHost;
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
            let to_relay = phone.generate_sync_messages(phone_state, DEFAULT_MESSAGE_BUDGET);
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
            .insert_document(&id, "ngo-may", &phone.save(), &phone.heads_key(), &[], &[])
            .unwrap();

        // The officer's phone is connected and in sync.
        let officer = Principal {
            user_id: "officer-a".into(),
            role: Role::Officer,
            unit_id: "ngo-may".into(),
            device_id: Some("phone".into()),
        };
        let mut host = RelayHost::new(
            &relay.state,
            &officer,
            vec!["ngo-may".into()],
            DEFAULT_MESSAGE_BUDGET,
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
