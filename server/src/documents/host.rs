//! The relay's documents as one connection may see them: [`RelayHost`], the core
//! session's [`SyncHost`].
//!
//! - **Scope**: a device reads and writes only documents of the wards in its principal's
//!   scope; anything else is `doc-unavailable`, never data, whether it exists or not. A
//!   new document is accepted only once it reads as an assessment whose unit is in scope
//!   and whose id is the one derived from its unit and period.
//! - **Authority**: every change goes in through the [`Intake`], under the change
//!   policy; a refused one is told to the device as `doc-unavailable` with the reason,
//!   and the connection goes on with its other documents.
//! - **Bounded expansion**: a message whose changes would inflate or decode past
//!   [`wardcheck_core::doc::MAX_INFLATED_BYTES`] is refused before Automerge reads them
//!   (the core checks every message on its way into Automerge,
//!   [`wardcheck_core::doc::receive_untrusted`]; the relay tells why and logs it). A
//!   frame of [`crate::routes::sync::MAX_FRAME_BYTES`] could otherwise take the relay
//!   gigabytes; messages are applied two per core at once
//!   ([`crate::AppState::sync_workers`]).
//! - **Durability before acknowledgement**: changes are stored before the reply that
//!   carries the new heads is generated; if storing fails the session ends.

use std::collections::HashSet;
use std::sync::Arc;

use automerge::ChangeHash;
use automerge::sync::{Message, State};
use wardcheck_core::doc::{Assessment, DocumentId};
use wardcheck_core::model::Role;
use wardcheck_core::policy::Writer;
use wardcheck_core::sync::{HostError, InflationError, SyncHost};

use super::pending::PushError;
use super::{DocCache, DocError, Intake, PendingPushes, SharedDoc};
use crate::AppState;
use crate::auth::Principal;
use crate::store::RelayStore;

/// The relay's documents, as one connection may see them (see the module docs).
pub struct RelayHost {
    store: Arc<RelayStore>,
    docs: Arc<DocCache>,
    intake: Arc<Intake>,
    pending: Arc<PendingPushes>,
    wards: HashSet<String>,
    user: String,
    role: Role,
    /// The device, which new documents pushed in parts are kept under.
    device: String,
    /// The size of the messages the peer wants, bytes of changes as sent.
    budget: usize,
}

impl RelayHost {
    /// A host for `principal`, whose scope is `wards`, sending messages of `budget`
    /// bytes of changes (see [`wardcheck_core::sync::generate_bounded`]).
    pub fn new(state: &AppState, principal: &Principal, wards: Vec<String>, budget: usize) -> Self {
        Self {
            store: state.store.clone(),
            docs: state.docs.clone(),
            intake: state.intake.clone(),
            pending: state.pending.clone(),
            wards: wards.into_iter().collect(),
            user: principal.user_id.clone(),
            role: principal.role,
            device: principal
                .device_id
                .clone()
                .unwrap_or_else(|| principal.user_id.clone()),
            budget,
        }
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            user: &self.user,
            role: self.role,
        }
    }

    /// The stored document if it exists and is in scope; `Ok(None)` if it does not exist;
    /// `Unavailable` if it exists outside the scope.
    fn open(&self, id: &DocumentId) -> Result<Option<Arc<SharedDoc>>, HostError> {
        match self.docs.open_in(&self.store, id, &self.wards) {
            Err(DocError::OutOfScope) => Err(HostError::Unavailable),
            other => other.map_err(failed),
        }
    }

    /// Takes a message into a stored document.
    fn receive_stored(
        &self,
        id: &DocumentId,
        stored: &SharedDoc,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        if message.changes.is_empty() {
            // Heads, needs and filters only: nothing to check or store.
            return stored
                .lock()
                .receive_sync_message(state, message)
                .map_err(|_| HostError::Unavailable);
        }
        let mut next = state.clone();
        let taken = self
            .intake
            .change(id, stored, &self.writer(), &self.device, |doc| {
                // On a copy the intake checks with the change policy.
                doc.receive_sync_message_unchecked(&mut next, message)
            });
        taken.map_err(|e| match e {
            DocError::Edit(wardcheck_core::Error::Inflation(e)) => self.too_large(id, e),
            other => refusal(other),
        })?;
        *state = next;
        Ok(())
    }

    /// Takes a message into a new document being pushed; stores it once it is whole.
    fn receive_new(
        &self,
        id: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        let complete = match self.pending.receive(&self.device, id, state, message) {
            Ok(complete) => complete,
            Err(PushError::Unavailable) => return Err(HostError::Unavailable),
            Err(e @ PushError::TooLarge) => return Err(HostError::Refused(e.to_string())),
            Err(PushError::Inflation(e)) => return Err(self.too_large(id, e)),
        };
        let Some(doc) = complete else {
            return Ok(());
        };
        let doc = Assessment::from_automerge(doc).map_err(|_| HostError::Unavailable)?;
        let view = doc.view().map_err(|_| HostError::Unavailable)?;
        if view.id != *id || !self.wards.contains(&view.unit.id) {
            return Err(HostError::Unavailable);
        }
        self.intake
            .add(id, &view.unit.id, doc, &self.writer(), &self.device)
            .map_err(refusal)
    }
}

impl RelayHost {
    /// A message refused before Automerge read it, logged, as the session tells it.
    fn too_large(&self, id: &DocumentId, e: InflationError) -> HostError {
        tracing::warn!(
            document = %id,
            user = %self.user,
            device = %self.device,
            reason = %e,
            "refused a sync message"
        );
        HostError::Refused(e.to_string())
    }
}

fn failed(e: impl std::fmt::Display) -> HostError {
    HostError::Failed(e.to_string())
}

/// A failed intake as the session tells it: a refusal with its reason, something that is
/// not an assessment as unavailable, anything else ends the session.
fn refusal(e: DocError) -> HostError {
    match e {
        DocError::Refused(refusal) => HostError::Refused(refusal.to_string()),
        DocError::Edit(_) | DocError::OutOfScope | DocError::NotFound => HostError::Unavailable,
        other => failed(other),
    }
}

impl SyncHost for RelayHost {
    fn has(&mut self, doc: &DocumentId) -> bool {
        matches!(self.open(doc), Ok(Some(_)))
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        if let Some(heads) = self.pending.heads(&self.device, doc) {
            return Some(heads);
        }
        let doc = self.open(doc).ok()??;
        Some(doc.read(Assessment::heads))
    }

    fn generate(&mut self, doc: &DocumentId, state: &mut State) -> Result<Vec<Message>, HostError> {
        if let Some(messages) = self.pending.generate(&self.device, doc, state, self.budget) {
            return Ok(messages);
        }
        match self.open(doc)? {
            Some(stored) => Ok(stored.read(|doc| doc.generate_sync_messages(state, self.budget))),
            None => Err(HostError::Unavailable),
        }
    }

    fn receive(
        &mut self,
        id: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        match self.open(id)? {
            Some(stored) => self.receive_stored(id, &stored, state, message),
            // A document the relay does not have: only a peer that has it can push it.
            None => self.receive_new(id, state, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use automerge::sync::MessageVersion;
    use wardcheck_core::doc::MAX_INFLATED_BYTES;
    use wardcheck_core::model::{Action, Author, Status};
    use wardcheck_core::sync::DEFAULT_MESSAGE_BUDGET;
    use wardcheck_core::sync::ROW_BYTES;
    use wardcheck_core::testing::{compressed_change_bomb, long_run_bundle};

    use super::*;
    use crate::documents::testing::{assessment, stored};
    use crate::routes::testing::TestRelay;

    /// A connection's host for a device of ward ngo-may, as `user` with `role`.
    fn host(relay: &TestRelay, user: &str, role: Role) -> RelayHost {
        let principal = Principal {
            user_id: user.into(),
            role,
            unit_id: "ngo-may".into(),
            device_id: Some(format!("{user}-phone")),
        };
        RelayHost::new(
            &relay.state,
            &principal,
            vec!["ngo-may".into()],
            DEFAULT_MESSAGE_BUDGET,
        )
    }

    /// Syncs `phone` with the relay through `host` until neither has anything to send.
    fn push(phone: &mut Assessment, host: &mut RelayHost) -> Result<(), HostError> {
        let id = phone.id().unwrap();
        let (mut ours, mut theirs) = (State::new(), State::new());
        for _ in 0..8 {
            let messages = phone.generate_sync_messages(&mut ours, DEFAULT_MESSAGE_BUDGET);
            if messages.is_empty() {
                return Ok(());
            }
            for message in messages {
                host.receive(&id, &mut theirs, message)?;
            }
            for reply in host.generate(&id, &mut theirs)? {
                phone.receive_sync_message(&mut ours, reply).unwrap();
            }
        }
        panic!("the sync did not settle");
    }

    fn status(relay: &TestRelay, id: &DocumentId) -> (Status, String) {
        let doc = relay.state.docs.open(&relay.state.store, id).unwrap();
        doc.unwrap().read(|d| {
            let c01 = d.criterion_view("c01").unwrap();
            (c01.status, c01.note)
        })
    }

    #[tokio::test]
    async fn an_officers_message_adding_a_return_is_refused_whole_with_its_reason() {
        let relay = TestRelay::new();
        let id = stored(&relay.state.store, "ngo-may");
        let mut phone = assessment("ngo-may");
        let officer = Author::new("officer-a", "phone");
        phone.set_note("c01", "with a return", &officer, 1).unwrap();
        phone
            .step("c01", Action::Submit, None, &officer, 3)
            .unwrap();
        phone
            .step("c01", Action::Return, Some("self-review"), &officer, 4)
            .unwrap();
        let refused = push(
            &mut phone.clone(),
            &mut host(&relay, "officer-a", Role::Officer),
        );
        assert_eq!(
            refused,
            Err(HostError::Refused(
                "only supervisors may approve or return a criterion".into()
            ))
        );
        // Nothing of the message is in the shared copy or the store.
        assert_eq!(status(&relay, &id), (Status::NotStarted, String::new()));
        relay.state.docs.forget(&id);
        assert_eq!(status(&relay, &id), (Status::NotStarted, String::new()));
        // Under a supervisor's name and role it is taken whole.
        let mut supervisor_phone = assessment("ngo-may");
        let sup = Author::new("sup-city", "tablet");
        supervisor_phone
            .set_note("c01", "checked", &sup, 1)
            .unwrap();
        supervisor_phone
            .step("c01", Action::Submit, None, &sup, 3)
            .unwrap();
        supervisor_phone
            .step("c01", Action::Return, Some("blurred"), &sup, 4)
            .unwrap();
        push(
            &mut supervisor_phone,
            &mut host(&relay, "sup-city", Role::Supervisor),
        )
        .unwrap();
        assert_eq!(status(&relay, &id), (Status::Returned, "checked".into()));
    }

    #[tokio::test]
    async fn the_same_new_assessment_pushed_twice_at_once_is_merged() {
        let relay = TestRelay::new();
        // Two phones created the same assessment offline (the same first changes); the
        // first push is stored, the second arrives as new on its connection.
        let mut first = assessment("ngo-may");
        let a = Author::new("officer-a", "phone-a");
        first
            .set_note("c01", "from the first phone", &a, 1)
            .unwrap();
        let mut first_host = host(&relay, "officer-a", Role::Officer);
        push(&mut first, &mut first_host).unwrap();
        let id = first.id().unwrap();
        let mut second = assessment("ngo-may");
        let b = Author::new("officer-b", "phone-b");
        second
            .set_note("c02", "from the second phone", &b, 2)
            .unwrap();
        relay
            .state
            .intake
            .add(
                &id,
                "ngo-may",
                second,
                &Writer {
                    user: "officer-b",
                    role: Role::Officer,
                },
                "phone-b",
            )
            .unwrap();
        relay.state.docs.forget(&id);
        let doc = relay
            .state
            .docs
            .open(&relay.state.store, &id)
            .unwrap()
            .unwrap();
        let notes = doc.read(|d| {
            let view = d.view().unwrap();
            (view.criteria[0].note.clone(), view.criteria[1].note.clone())
        });
        assert_eq!(
            notes,
            (
                "from the first phone".into(),
                "from the second phone".into()
            )
        );
    }

    #[tokio::test]
    async fn changes_that_would_inflate_past_the_bound_are_refused_with_their_reason() {
        let relay = TestRelay::new();
        let mut phone = assessment("ngo-may");
        let id = phone.id().unwrap();
        phone
            .set_note("c01", "a note", &Author::new("officer-a", "phone"), 1)
            .unwrap();
        let change = phone.automerge().get_last_local_change().unwrap();
        // A valid change, 64 KB as sent.
        let bomb = compressed_change_bomb(&change, MAX_INFLATED_BYTES);
        let message = Message {
            heads: phone.heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: bomb.into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let reason = "the changes inflate to more than 67108864 bytes";
        let mut host = host(&relay, "officer-a", Role::Officer);
        // As a new document: no push is started.
        let refused = host.receive(&id, &mut State::new(), message.clone());
        assert_eq!(refused, Err(HostError::Refused(reason.into())));
        assert_eq!(relay.state.pending.heads("officer-a-phone", &id), None);
        // Into the stored document: nothing changes.
        stored(&relay.state.store, "ngo-may");
        let refused = host.receive(&id, &mut State::new(), message);
        assert_eq!(refused, Err(HostError::Refused(reason.into())));
        assert_eq!(status(&relay, &id), (Status::NotStarted, String::new()));
    }

    #[tokio::test]
    async fn a_column_that_would_decode_past_the_bound_is_refused_with_its_reason() {
        let relay = TestRelay::new();
        let phone = assessment("ngo-may");
        let id = phone.id().unwrap();
        let message = Message {
            heads: phone.heads(),
            need: Vec::new(),
            have: Vec::new(),
            // 2^40 rows in a 20-byte bundle.
            changes: long_run_bundle(1 << 40).into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let reason = format!(
            "the changes decode to more than {} rows",
            MAX_INFLATED_BYTES / ROW_BYTES
        );
        let mut host = host(&relay, "officer-a", Role::Officer);
        let refused = host.receive(&id, &mut State::new(), message.clone());
        assert_eq!(refused, Err(HostError::Refused(reason.clone())));
        assert_eq!(relay.state.pending.heads("officer-a-phone", &id), None);
        stored(&relay.state.store, "ngo-may");
        let refused = host.receive(&id, &mut State::new(), message);
        assert_eq!(refused, Err(HostError::Refused(reason)));
        assert_eq!(status(&relay, &id), (Status::NotStarted, String::new()));
    }

    #[tokio::test]
    async fn a_new_assessment_of_another_ward_or_under_another_id_is_unavailable() {
        let relay = TestRelay::new();
        let mut elsewhere = assessment("tran-hung-dao");
        assert_eq!(
            push(
                &mut elsewhere,
                &mut host(&relay, "officer-a", Role::Officer)
            ),
            Err(HostError::Unavailable)
        );
        assert_eq!(
            relay
                .state
                .store
                .document_unit(&elsewhere.id().unwrap())
                .unwrap(),
            None
        );
    }
}
