use automerge::sync::State;

use super::wire::{PeerMetadata, WireMessage};
use super::*;
use crate::Workspace;
use crate::doc::DocumentId;
use crate::model::{Action, Status, TemplateKey, sample_templates};
use crate::testing::sample_unit;

fn template() -> TemplateKey {
    sample_templates().remove(0).key()
}

fn workspace(user: &str) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(dir.path()).unwrap();
    ws.set_user(user).unwrap();
    (dir, ws)
}

/// Moves frames both ways until the phone's session settles; returns the frames moved.
/// `duplicate` delivers every frame twice.
fn pump(
    phone: &mut Session,
    phone_host: &mut impl SyncHost,
    relay: &mut Session,
    relay_host: &mut impl SyncHost,
    duplicate: bool,
) -> usize {
    let mut moved = 0;
    for _ in 0..100 {
        let to_relay = phone.take_outgoing();
        let to_phone = relay.take_outgoing();
        if to_relay.is_empty() && to_phone.is_empty() {
            break;
        }
        for frame in &to_relay {
            for _ in 0..if duplicate { 2 } else { 1 } {
                relay.receive(frame, relay_host).unwrap();
                moved += 1;
            }
        }
        for frame in &to_phone {
            for _ in 0..if duplicate { 2 } else { 1 } {
                phone.receive(frame, phone_host).unwrap();
                moved += 1;
            }
        }
    }
    moved
}

fn sessions() -> (Session, Session) {
    let phone = Session::initiate("phone", PeerMetadata::default());
    let relay = Session::accept(
        "relay",
        PeerMetadata {
            storage_id: Some("relay".into()),
            is_ephemeral: false,
        },
    );
    (phone, relay)
}

#[test]
fn a_phone_pushes_a_new_assessment_and_fetches_another() {
    let (_a, phone_ws) = workspace("officer-1");
    let (_b, relay_ws) = workspace("relay");
    let mine = phone_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    phone_ws.set_note(&mine, "c01", "from the phone").unwrap();
    let theirs = relay_ws
        .create_assessment(&sample_unit(), "2024", &template())
        .unwrap();
    relay_ws.step(&theirs, "c02", Action::Submit, None).unwrap();

    let (mut phone, mut relay) = sessions();
    let (mut phone_host, mut relay_host) =
        (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(&relay_ws));
    phone
        .add_document(mine, State::new(), &mut phone_host)
        .unwrap();
    phone
        .add_document(theirs, State::new(), &mut phone_host)
        .unwrap();
    pump(
        &mut phone,
        &mut phone_host,
        &mut relay,
        &mut relay_host,
        false,
    );

    assert!(
        phone.is_settled(),
        "{:?} {:?}",
        phone.status(&mine),
        phone.status(&theirs)
    );
    assert_eq!(phone.status(&mine), Some(DocStatus::InSync));
    assert_eq!(phone.status(&theirs), Some(DocStatus::InSync));
    assert_eq!(phone.peer_id(), Some("relay"));
    for id in [mine, theirs] {
        assert_eq!(phone_ws.view(&id).unwrap(), relay_ws.view(&id).unwrap());
    }
    assert_eq!(
        relay_ws.view(&mine).unwrap().criteria[0].note,
        "from the phone"
    );
    assert_eq!(
        phone_ws.view(&theirs).unwrap().criteria[1].status,
        Status::Submitted
    );
}

#[test]
fn concurrent_edits_converge_even_with_duplicated_frames_and_resume_from_saved_state() {
    let (_a, phone_ws) = workspace("officer-1");
    let (_b, relay_ws) = workspace("supervisor");
    crate::testing::enrol_as(&relay_ws, "supervisor", crate::model::Role::Supervisor);
    let id = phone_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    phone_ws.step(&id, "c01", Action::Submit, None).unwrap();
    relay_ws
        .import_document(&phone_ws.export_document(&id).unwrap())
        .unwrap();
    relay_ws.step(&id, "c01", Action::Approve, None).unwrap();
    // Offline, the phone keeps working on the same criterion and others.
    phone_ws.step(&id, "c01", Action::Start, None).unwrap();
    phone_ws.set_note(&id, "c02", "camera system").unwrap();

    let (mut phone, mut relay) = sessions();
    let (mut phone_host, mut relay_host) =
        (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(&relay_ws));
    phone
        .add_document(id, State::new(), &mut phone_host)
        .unwrap();
    pump(
        &mut phone,
        &mut phone_host,
        &mut relay,
        &mut relay_host,
        true,
    );
    assert!(phone.is_settled());
    let view = phone_ws.view(&id).unwrap();
    assert_eq!(view, relay_ws.view(&id).unwrap());
    assert_eq!(
        view.criteria[0].status,
        Status::Approved,
        "the stale edit undid the review"
    );
    assert_eq!(view.criteria[1].note, "camera system");

    // The next session starts from the saved state: with nothing new, it only exchanges
    // heads.
    let saved: Vec<u8> = phone.states().next().unwrap().1.encode();
    let (mut phone, mut relay) = sessions();
    phone
        .add_document(id, State::decode(&saved).unwrap(), &mut phone_host)
        .unwrap();
    let moved = pump(
        &mut phone,
        &mut phone_host,
        &mut relay,
        &mut relay_host,
        false,
    );
    assert!(phone.is_settled());
    assert!(moved <= 4, "{moved} frames to confirm nothing changed");
}

/// A relay that refuses one document.
struct Refusing<'a> {
    inner: WorkspaceHost<'a>,
    refused: DocumentId,
}

impl SyncHost for Refusing<'_> {
    fn has(&mut self, doc: &DocumentId) -> bool {
        *doc != self.refused && self.inner.has(doc)
    }
    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<automerge::ChangeHash>> {
        self.inner.heads(doc)
    }
    fn generate(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
    ) -> Result<Vec<SyncMessage>, HostError> {
        if *doc == self.refused {
            return Err(HostError::Unavailable);
        }
        self.inner.generate(doc, state)
    }
    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: SyncMessage,
    ) -> Result<(), HostError> {
        if *doc == self.refused {
            return Err(HostError::Unavailable);
        }
        self.inner.receive(doc, state, message)
    }
}

#[test]
fn a_refused_document_is_unavailable_and_nothing_leaks() {
    let (_a, phone_ws) = workspace("officer-1");
    let (_b, relay_ws) = workspace("relay");
    let secret = relay_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    relay_ws
        .set_note(&secret, "c01", "other ward's secret")
        .unwrap();
    let (mut phone, mut relay) = sessions();
    let mut phone_host = WorkspaceHost::new(&phone_ws);
    let mut relay_host = Refusing {
        inner: WorkspaceHost::new(&relay_ws),
        refused: secret,
    };
    phone
        .add_document(secret, State::new(), &mut phone_host)
        .unwrap();
    pump(
        &mut phone,
        &mut phone_host,
        &mut relay,
        &mut relay_host,
        false,
    );
    assert_eq!(phone.status(&secret), Some(DocStatus::Unavailable));
    assert!(phone.is_settled());
    assert!(!phone_ws.has_document(&secret).unwrap());
}

#[test]
fn protocol_violations_end_the_session() {
    let (_a, ws) = workspace("relay");
    let mut host = WorkspaceHost::new(&ws);
    let mut relay = Session::accept("relay", PeerMetadata::default());
    let doc = DocumentId::for_assessment("u", "p");
    // Sync before the handshake.
    let early = WireMessage::Sync {
        sender_id: "x".into(),
        target_id: "relay".into(),
        document_id: doc,
        data: vec![],
    };
    assert_eq!(
        relay.receive(&early.encode(), &mut host),
        Err(SessionError::Unexpected("sync"))
    );
    assert!(matches!(
        relay.receive(b"\xff\x00garbage", &mut host),
        Err(SessionError::Wire(_))
    ));
    let join = WireMessage::Join {
        sender_id: "p".into(),
        supported_protocol_versions: vec!["9".into()],
        peer_metadata: None,
    };
    assert_eq!(
        relay.receive(&join.encode(), &mut host),
        Err(SessionError::Version)
    );
    let join = WireMessage::Join {
        sender_id: "p".into(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    };
    let mut relay = Session::accept("relay", PeerMetadata::default());
    relay.receive(&join.encode(), &mut host).unwrap();
    let bad_sync = WireMessage::Sync {
        sender_id: "p".into(),
        target_id: "relay".into(),
        document_id: doc,
        data: b"not a sync message".to_vec(),
    };
    assert_eq!(
        relay.receive(&bad_sync.encode(), &mut host),
        Err(SessionError::BadSyncMessage)
    );
}

/// Moves frames like `sync_now`: the phone sends, and waits for an answer only while it is
/// not settled. Returns how many times it waited.
fn round_trips(
    phone: &mut Session,
    phone_host: &mut impl SyncHost,
    relay: &mut Session,
    relay_host: &mut impl SyncHost,
) -> usize {
    for waits in 0..100 {
        for frame in phone.take_outgoing() {
            relay.receive(&frame, relay_host).unwrap();
        }
        if phone.is_settled() {
            return waits;
        }
        for frame in relay.take_outgoing() {
            phone.receive(&frame, phone_host).unwrap();
        }
    }
    panic!("never settled");
}

#[test]
fn a_phone_resuming_from_its_saved_state_is_up_to_date_after_one_exchange() {
    let (_a, phone_ws) = workspace("officer-1");
    let (_b, relay_ws) = workspace("relay");
    let (backup_dir, backup_ws) = workspace("relay");
    let id = phone_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    backup_ws
        .import_document(&phone_ws.export_document(&id).unwrap())
        .unwrap();
    phone_ws.set_note(&id, "c01", "first visit").unwrap();
    let sync_from = |state: State, relay_ws: &Workspace| {
        let (mut phone, mut relay) = sessions();
        let (mut phone_host, mut relay_host) =
            (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(relay_ws));
        phone.add_document(id, state, &mut phone_host).unwrap();
        let waits = round_trips(&mut phone, &mut phone_host, &mut relay, &mut relay_host);
        assert_eq!(phone_ws.heads(&id).unwrap(), relay_ws.heads(&id).unwrap());
        let saved = phone.states().next().unwrap().1.encode();
        (waits, State::decode(&saved).unwrap())
    };
    let (_, saved) = sync_from(State::new(), &relay_ws);

    // Offline edits, then a session from the saved state: the handshake, then one exchange.
    for n in 0..30 {
        phone_ws
            .set_note(&id, "c02", &format!("offline note {n}"))
            .unwrap();
    }
    phone_ws.step(&id, "c01", Action::Submit, None).unwrap();
    let (waits, _) = sync_from(saved.clone(), &relay_ws);
    assert_eq!(
        waits, 2,
        "join/peer, then the changes and their acknowledgement"
    );
    assert_eq!(
        relay_ws.view(&id).unwrap().criteria[0].status,
        Status::Submitted
    );

    // A relay restored from a backup that predates the saved state: it asks for what it
    // lacks, and still ends with everything.
    let (waits, _) = sync_from(saved, &backup_ws);
    assert!(waits > 2);
    assert_eq!(backup_ws.view(&id).unwrap(), phone_ws.view(&id).unwrap());
    // Stored, not only in memory.
    drop(backup_ws);
    let reopened = Workspace::open(backup_dir.path()).unwrap();
    assert_eq!(reopened.heads(&id).unwrap(), phone_ws.heads(&id).unwrap());
}

/// A phone's workspace with a new assessment, and an empty relay workspace.
fn phone_with_an_assessment_and_relay() -> (
    tempfile::TempDir,
    Workspace,
    tempfile::TempDir,
    Workspace,
    DocumentId,
) {
    let (a, phone_ws) = workspace("officer-1");
    let (b, relay_ws) = workspace("relay");
    let id = phone_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    (a, phone_ws, b, relay_ws, id)
}

#[test]
fn a_phone_that_knows_the_relay_sends_its_changes_behind_join_in_one_round_trip() {
    let (_a, phone_ws, _b, relay_ws, id) = phone_with_an_assessment_and_relay();
    let (mut phone, mut relay) = sessions();
    let (mut phone_host, mut relay_host) =
        (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(&relay_ws));
    phone
        .add_document(id, State::new(), &mut phone_host)
        .unwrap();
    round_trips(&mut phone, &mut phone_host, &mut relay, &mut relay_host);
    let relay_id = phone.peer_id().unwrap().to_owned();
    let saved = State::decode(&phone.states().next().unwrap().1.encode()).unwrap();

    phone_ws.set_note(&id, "c01", "offline note").unwrap();
    let (mut phone, mut relay) = sessions();
    phone.expect_peer(&relay_id);
    assert_eq!(phone.peer_id(), None, "not confirmed before `peer`");
    phone.add_document(id, saved, &mut phone_host).unwrap();
    let waits = round_trips(&mut phone, &mut phone_host, &mut relay, &mut relay_host);
    assert_eq!(
        waits, 1,
        "join and the changes, then peer and the acknowledgement"
    );
    assert_eq!(phone_ws.heads(&id).unwrap(), relay_ws.heads(&id).unwrap());
    assert_eq!(phone.peer_id(), Some(relay_id.as_str()));
}

#[test]
fn a_phone_expecting_another_relay_fails_without_settling() {
    let (_a, phone_ws, _b, relay_ws, id) = phone_with_an_assessment_and_relay();
    let (mut phone, mut relay) = sessions();
    let (mut phone_host, mut relay_host) =
        (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(&relay_ws));
    phone.expect_peer("some-other-relay");
    phone
        .add_document(id, State::new(), &mut phone_host)
        .unwrap();
    for frame in phone.take_outgoing() {
        relay.receive(&frame, &mut relay_host).unwrap();
    }
    let answers = relay.take_outgoing();
    assert_eq!(
        phone.receive(&answers[0], &mut phone_host),
        Err(SessionError::PeerChanged)
    );
    assert!(!phone.is_settled());
    assert_eq!(
        phone.peer_id(),
        Some("relay"),
        "the peer met, for the next session"
    );
}

/// Like [`pump`], but the connection drops once `frames` frames have reached the phone.
fn pump_until_cut(
    phone: &mut Session,
    phone_host: &mut impl SyncHost,
    relay: &mut Session,
    relay_host: &mut impl SyncHost,
    mut frames: usize,
) {
    for _ in 0..100 {
        let to_relay = phone.take_outgoing();
        let to_phone = relay.take_outgoing();
        if to_relay.is_empty() && to_phone.is_empty() {
            return;
        }
        for frame in &to_relay {
            relay.receive(frame, relay_host).unwrap();
        }
        for frame in &to_phone {
            if frames == 0 {
                return;
            }
            phone.receive(frame, phone_host).unwrap();
            frames -= 1;
        }
    }
}

#[test]
fn a_fetch_cut_short_resumes_from_what_arrived_across_restarts_and_takes_nothing_twice() {
    let (dir, mut phone_ws) = workspace("officer-1");
    let (_b, relay_ws) = workspace("relay");
    let id = relay_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    for n in 0..200 {
        relay_ws
            .add_comment(&id, None, &format!("nhận xét số {n}, đủ dài để chiếm chỗ"))
            .unwrap();
    }
    let (mut received, mut new, mut connections) = (0, 0, 0);
    let mut kept_partial = false;
    while !phone_ws.has_document(&id).unwrap()
        || phone_ws.heads(&id).unwrap() != relay_ws.heads(&id).unwrap()
    {
        connections += 1;
        assert!(connections < 500, "no progress");
        if connections % 3 == 0 {
            // The app restarts: only what the store kept is left.
            drop(phone_ws);
            phone_ws = Workspace::open(dir.path()).unwrap();
        }
        let (mut phone, mut relay) = sessions();
        let (mut phone_host, mut relay_host) =
            (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(&relay_ws));
        relay_host.set_budget(MIN_MESSAGE_BUDGET);
        let state = phone_ws
            .sync_state("relay", &id)
            .unwrap()
            .and_then(|bytes| State::decode(&bytes).ok())
            .unwrap_or_default();
        phone.add_document(id, state, &mut phone_host).unwrap();
        // Two frames reach the phone (the `peer` and one sync message), then the link drops.
        pump_until_cut(&mut phone, &mut phone_host, &mut relay, &mut relay_host, 2);
        for (doc, state) in phone.states() {
            phone_ws
                .save_sync_state("relay", doc, &state.encode())
                .unwrap();
        }
        received += phone_host.received().changes;
        new += phone_host.received().new_changes;
        drop(phone_host);
        if !phone_ws.has_document(&id).unwrap() {
            kept_partial |= !phone_ws.fetching_chunks(&id).unwrap().is_empty();
        }
    }
    assert_eq!(phone_ws.view(&id).unwrap(), relay_ws.view(&id).unwrap());
    assert!(
        connections > 6,
        "the fetch took only {connections} connections"
    );
    assert!(kept_partial, "the document read whole after one connection");
    let changes = automerge::Automerge::load(&relay_ws.export_document(&id).unwrap())
        .unwrap()
        .get_changes(&[])
        .len();
    assert_eq!(new, changes as u64, "every change came once");
    assert_eq!(received, new, "changes received twice");
    // What was kept while it arrived is gone now that the document is stored.
    assert!(phone_ws.fetching_chunks(&id).unwrap().is_empty());
}

#[test]
fn a_phone_takes_only_the_documents_it_asked_for() {
    let (_a, phone_ws) = workspace("officer-1");
    let (_b, relay_ws) = workspace("relay");
    let asked = relay_ws
        .create_assessment(&sample_unit(), "2025", &template())
        .unwrap();
    let unasked = relay_ws
        .create_assessment(&sample_unit(), "2024", &template())
        .unwrap();
    let (mut phone, mut relay) = sessions();
    let (mut phone_host, mut relay_host) =
        (WorkspaceHost::new(&phone_ws), WorkspaceHost::new(&relay_ws));
    phone
        .add_document(asked, State::new(), &mut phone_host)
        .unwrap();
    pump(
        &mut phone,
        &mut phone_host,
        &mut relay,
        &mut relay_host,
        false,
    );
    // A relay (or a modified one) that sends a document the phone did not ask for.
    relay
        .add_document(unasked, State::new(), &mut relay_host)
        .unwrap();
    let before = phone_host.received();
    let moved = pump(
        &mut phone,
        &mut phone_host,
        &mut relay,
        &mut relay_host,
        false,
    );
    assert!(moved > 0, "the relay sent nothing");
    assert!(phone_ws.has_document(&asked).unwrap());
    assert!(!phone_ws.has_document(&unasked).unwrap());
    assert!(phone_ws.fetching_chunks(&unasked).unwrap().is_empty());
    assert_eq!(phone_host.received(), before, "nothing of it was taken");
}
