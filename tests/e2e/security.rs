//! The sync endpoint under attack or misuse: no token, a revoked device, garbage frames,
//! valid CBOR with wrong fields, an oversized message, a decompression bomb. Each gets a
//! clear refusal and the relay keeps serving everyone else.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use wardcheck_core::sync::wire::WireMessage;

use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{Assessment, DocumentId};
use wardcheck_core::model::{Action, Author, Status};
use wardcheck_core::policy::Refusal;
use wardcheck_core::testing::{compressed_change_bomb, signed_evidence};
use wardcheck_core::transport::RefusedDocument;

use harness::Relay;

use crate::support::{Phone, populate, relay_behind_proxy, template, ward_a, ward_b};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Opens the sync WebSocket with `token` (or none); `Err(status)` if the upgrade is refused.
fn open(base: &str, token: Option<&str>) -> Result<Socket, u16> {
    let url = format!("{}/v1/sync", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tungstenite::connect(request) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("unexpected: {e}"),
    }
}

/// Whether the relay closes the socket within a few seconds (reads until it does).
fn closes(socket: &mut Socket) -> bool {
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Close(_)) => return true,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn the_sync_endpoint_needs_a_valid_unrevoked_token_and_revocation_closes_it() {
    let (relay, _proxy) = relay_behind_proxy();
    assert_eq!(open(&relay.url, None).err(), Some(401));
    assert_eq!(open(&relay.url, Some("0123abcd")).err(), Some(401));
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let enrolment = phone.workspace.enrolment().unwrap().unwrap();
    let mut socket = open(&relay.url, Some(&enrolment.token)).expect("a good token connects");
    // The connection works: a join is answered with peer.
    join(&mut socket, "probe");
    // The token also works as a query parameter (browsers cannot send headers).
    let query = format!(
        "{}/v1/sync?token={}",
        relay.url.replacen("http", "ws", 1),
        enrolment.token
    );
    assert!(tungstenite::connect(query).is_ok());
    // Revoked from another process (the admin command): the open connection closes, and
    // the token is refused from then on.
    relay.admin(&["device", "revoke", "--device", &enrolment.device_id]);
    assert!(
        closes(&mut socket),
        "the revoked device's connection stayed open"
    );
    assert_eq!(open(&relay.url, Some(&enrolment.token)).err(), Some(401));
}

/// Sends `join` and waits for the relay's answer, which must be `peer`; returns the
/// relay's peer id.
fn join(socket: &mut Socket, sender: &str) -> String {
    let join = WireMessage::Join {
        sender_id: sender.into(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    };
    socket.send(Message::Binary(join.encode().into())).unwrap();
    let answer = loop {
        if let Message::Binary(frame) = socket.read().unwrap() {
            break WireMessage::decode(&frame).unwrap();
        }
    };
    match answer {
        WireMessage::Peer { sender_id, .. } => sender_id,
        other => panic!("{other:?}"),
    }
}

/// The peak resident memory of process `pid` (`VmHWM`), in bytes, after resetting it to
/// the current one where Linux allows.
fn peak_rss_after_reset(pid: u32) -> usize {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    peak_rss(pid)
}

/// The peak resident memory of process `pid` (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_decompression_bomb_is_refused_without_being_inflated() {
    const MB: usize = 1 << 20;
    let relay = Relay::start();
    populate(&relay);
    let officer = Phone::enrol(&relay, &relay.url, "officer-a1");
    let colleague = Phone::enrol(&relay, &relay.url, "officer-a2");
    let ws = &officer.workspace;
    let id = ws
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    officer.sync();
    // A modified app writes a real change (a note), carrying 1 GiB of zeros as extra
    // bytes: 1 MB deflated, a valid change that Automerge would inflate and keep.
    let mut doc = Assessment::load(&ws.export_document(&id).unwrap()).unwrap();
    let by = Author::new("officer-a1", ws.device_id());
    doc.set_note("c01", "from the bomb", &by, 9).unwrap();
    let change = doc.automerge().get_last_local_change().unwrap();
    let bomb = compressed_change_bomb(&change, 1024 * MB);
    assert!(bomb.len() < 2 * MB, "{} bytes", bomb.len());
    let message = automerge::sync::Message {
        heads: doc.heads(),
        need: Vec::new(),
        have: Vec::new(),
        changes: bomb.into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    };

    let pid = relay.pid().unwrap();
    let before = peak_rss_after_reset(pid);
    let token = ws.enrolment().unwrap().unwrap().token;
    let mut socket = open(&relay.url, Some(&token)).unwrap();
    if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
        // Without the bound the relay works for a minute, then closes the connection.
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
    }
    let relay_id = join(&mut socket, "attacker");
    let sync = WireMessage::Sync {
        sender_id: "attacker".into(),
        target_id: relay_id,
        document_id: id,
        data: message.encode(),
    };
    socket.send(Message::Binary(sync.encode().into())).unwrap();
    let answer = loop {
        if let Message::Binary(frame) = socket.read().unwrap() {
            break WireMessage::decode(&frame).unwrap();
        }
    };
    let grown = peak_rss(pid).saturating_sub(before);
    match answer {
        WireMessage::DocUnavailable {
            document_id,
            reason: Some(reason),
            ..
        } => {
            assert_eq!(document_id, id);
            assert!(reason.contains("inflate to more than"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        grown < 200 * MB,
        "the relay's peak memory grew by {} MB",
        grown / MB
    );

    // The relay keeps serving: its health, and the honest syncs.
    let health = ureq::get(&format!("{}/healthz", relay.url)).call().unwrap();
    assert_eq!(health.status(), 200);
    ws.set_note(&id, "c02", "after the bomb").unwrap();
    officer.sync();
    colleague.sync();
    let view = colleague.workspace.view(&id).unwrap();
    assert_eq!(view.criteria[0].note, "");
    assert_eq!(view.criteria[1].note, "after the bomb");
}

#[test]
fn a_quiet_connection_gives_its_sync_place_back() {
    // One place: a connection that joined and went quiet must not keep others out.
    let relay = Relay::start_with_env(&[("WARDCHECK_SYNC_SESSIONS", "1")]);
    populate(&relay);
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let token = phone.workspace.enrolment().unwrap().unwrap().token;
    let mut first = open(&relay.url, Some(&token)).unwrap();
    join(&mut first, "first");
    // The second waits for the place, which the first gives back once quiet for a second.
    let mut second = open(&relay.url, Some(&token)).unwrap();
    let asked = Instant::now();
    join(&mut second, "second");
    assert!(
        asked.elapsed() >= Duration::from_millis(500),
        "the second join was answered while the first held the only place"
    );
    // With both still open (and quiet), whole syncs get through.
    let id = phone
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    phone.workspace.set_note(&id, "c01", "through").unwrap();
    phone.sync();
    let other = Phone::enrol(&relay, &relay.url, "officer-a2");
    other.sync();
    assert_eq!(
        other.workspace.view(&id).unwrap().criteria[0].note,
        "through"
    );
    drop((first, second));
}

#[test]
fn bad_frames_end_only_their_connection() {
    let (relay, _proxy) = relay_behind_proxy();
    let attacker = Phone::enrol(&relay, &relay.url, "officer-a1");
    let honest = Phone::enrol(&relay, &relay.url, "officer-a2");
    let id = honest
        .workspace
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let token = attacker.workspace.enrolment().unwrap().unwrap().token;

    // Garbage bytes.
    let mut socket = open(&relay.url, Some(&token)).unwrap();
    socket
        .send(Message::Binary(b"\xff\x00 not cbor".to_vec().into()))
        .unwrap();
    assert!(closes(&mut socket));
    // Valid CBOR, wrong fields: a sync before any handshake, with no document id.
    let mut socket = open(&relay.url, Some(&token)).unwrap();
    let wrong = [
        0xa1, 0x64, b't', b'y', b'p', b'e', 0x64, b's', b'y', b'n', b'c',
    ];
    socket.send(Message::Binary(wrong.to_vec().into())).unwrap();
    assert!(closes(&mut socket));
    // An oversized message (over the 16 MiB frame limit).
    let mut socket = open(&relay.url, Some(&token)).unwrap();
    let _ = socket.send(Message::Binary(vec![0u8; 17 << 20].into()));
    assert!(closes(&mut socket));

    // Meanwhile everyone else is served.
    honest.workspace.set_note(&id, "c01", "still fine").unwrap();
    honest.sync();
    attacker.sync();
    assert_eq!(
        attacker.workspace.view(&id).unwrap().criteria[0].note,
        "still fine"
    );
}

#[test]
fn an_officers_phone_cannot_approve_through_the_relay() {
    let (relay, _proxy) = relay_behind_proxy();
    let officer = Phone::enrol(&relay, &relay.url, "officer-a1");
    let colleague = Phone::enrol(&relay, &relay.url, "officer-a2");
    let ws = &officer.workspace;
    let id = ws
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    ws.step(&id, "c01", Action::Submit, None).unwrap();
    officer.sync();
    // The app refuses it itself: the phone knows its user's role from enrolment.
    assert!(matches!(
        ws.step(&id, "c01", Action::Approve, None),
        Err(wardcheck_core::Error::Refused(Refusal::NotAReviewer))
    ));
    // A modified app writes it anyway: the relay refuses the change, says why, and
    // nobody else ever sees it.
    let by = Author::new("officer-a1", ws.device_id());
    let approve = |id| {
        let mut doc = Assessment::load(&ws.export_document(id).unwrap()).unwrap();
        doc.step("c01", Action::Approve, None, &by, 9).unwrap();
        ws.import_document(&doc.save()).unwrap();
    };
    approve(&id);
    let report = officer.sync();
    let reason = "only supervisors may approve or return a criterion";
    assert_eq!(
        report.refused,
        vec![RefusedDocument {
            document: id,
            reason: reason.into()
        }]
    );
    colleague.sync();
    let c01 = colleague.workspace.criterion(&id, "c01").unwrap();
    assert_eq!(c01.status, Status::Submitted);
    // A new assessment that arrives already approved is refused too, and the first
    // still is: refusals are per document, the sync of the others goes on.
    let forged = ws
        .create_assessment(&ward_a(), "2026", &template())
        .unwrap();
    let fine = ws
        .create_assessment(&ward_a(), "2027", &template())
        .unwrap();
    ws.step(&forged, "c01", Action::Submit, None).unwrap();
    approve(&forged);
    let report = officer.sync();
    let mut refused: Vec<DocumentId> = report.refused.iter().map(|r| r.document).collect();
    refused.sort();
    let mut expected = vec![id, forged];
    expected.sort();
    assert_eq!(refused, expected);
    assert_eq!(report.documents_in_sync, 1);
    colleague.sync();
    assert!(colleague.workspace.view(&fine).is_ok());
    assert!(colleague.workspace.view(&forged).is_err());
}

#[test]
fn evidence_that_fails_its_signature_check_is_flagged_not_trusted() {
    let (relay, _proxy) = relay_behind_proxy();
    let phone = Phone::enrol(&relay, &relay.url, "officer-a1");
    let ws = &phone.workspace;
    let id = ws
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let genuine = ws
        .add_photo(
            &id,
            "c03",
            &wardcheck_core::testing::jpeg(640, 480, 1),
            "",
            None,
        )
        .unwrap();
    // Two forged records slipped into the document (as a modified app could): one signed
    // by a key no device of this officer registered, one whose photo was swapped after
    // signing.
    let mut doc = Assessment::load(&ws.export_document(&id).unwrap()).unwrap();
    let by = Author::new("officer-a1", "some-other-phone");
    let stranger = signed_evidence(7, &by);
    let mut swapped = genuine.clone();
    swapped.photo = BlobHash::of(b"another picture");
    doc.add_evidence("c04", &stranger, &by, 1).unwrap();
    doc.add_evidence("c05", &swapped, &by, 1).unwrap();
    ws.import_document(&doc.save()).unwrap();
    phone.sync();

    let db = rusqlite::Connection::open(relay.data_dir().join("relay.sqlite3")).unwrap();
    let verdict = |photo: &BlobHash| -> String {
        db.query_row(
            "SELECT verdict FROM evidence_checks WHERE photo = ?1",
            [photo.to_hex()],
            |row| row.get(0),
        )
        .unwrap()
    };
    assert_eq!(verdict(&genuine.photo), "verified");
    assert_eq!(verdict(&stranger.photo), "unknown_device");
    assert_eq!(verdict(&swapped.photo), "bad_signature");
    // Flagged, not dropped: the records are still in the document for a supervisor to see.
    let relay_copy = Phone::enrol(&relay, &relay.url, "supervisor");
    relay_copy.sync();
    let view = relay_copy.workspace.view(&id).unwrap();
    let photos: Vec<BlobHash> = view
        .criteria
        .iter()
        .flat_map(|c| c.evidence.iter().map(|e| e.photo))
        .collect();
    assert!(photos.contains(&stranger.photo) && photos.contains(&swapped.photo));
}

/// The first frame the relay sends on `socket` (before `join` is answered).
fn first_frame(socket: &mut Socket) -> WireMessage {
    loop {
        if let Message::Binary(frame) = socket.read().unwrap() {
            return WireMessage::decode(&frame).unwrap();
        }
    }
}

#[test]
fn the_listing_on_the_sync_connection_names_only_the_wards_documents_and_only_when_asked() {
    let relay = Relay::start();
    populate(&relay);
    let phone_a = Phone::enrol(&relay, &relay.url, "officer-a1");
    let phone_b = Phone::enrol(&relay, &relay.url, "officer-b1");
    let a = (phone_a.workspace)
        .create_assessment(&ward_a(), "2025", &template())
        .unwrap();
    let b = (phone_b.workspace)
        .create_assessment(&ward_b(), "2025", &template())
        .unwrap();
    phone_a.sync();
    phone_b.sync();
    let token = phone_a.workspace.enrolment().unwrap().unwrap().token;
    let open_listing = |tag: &str| {
        let url = format!(
            "{}/v1/sync?listing={tag}",
            relay.url.replacen("http", "ws", 1)
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        tungstenite::connect(request).unwrap().0
    };

    // Ward A's officer is told of ward A's assessment, with its size, and of nothing else.
    let WireMessage::Documents(listing) = first_frame(&mut open_listing("")) else {
        panic!("no listing first");
    };
    let documents = listing.documents.expect("the whole listing");
    assert_eq!(documents.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a]);
    assert!(documents[0].bytes > 1_000, "{documents:?}");
    assert!(!documents.iter().any(|d| d.id == b));
    // Holding that listing: the tag alone. Holding another: the whole listing.
    let WireMessage::Documents(again) = first_frame(&mut open_listing(&listing.tag)) else {
        panic!("no listing first");
    };
    assert_eq!(
        (again.tag.as_str(), again.documents),
        (listing.tag.as_str(), None)
    );
    let WireMessage::Documents(other) = first_frame(&mut open_listing("0123456789abcdef")) else {
        panic!("no listing first");
    };
    assert_eq!(other.documents.map(|d| d.len()), Some(1));
    // An edit changes the tag.
    phone_a.workspace.set_note(&a, "c01", "mới").unwrap();
    phone_a.sync();
    let WireMessage::Documents(edited) = first_frame(&mut open_listing(&listing.tag)) else {
        panic!("no listing first");
    };
    assert_ne!(edited.tag, listing.tag);
    assert!(edited.documents.is_some());
    // A client that does not ask (automerge-repo's) gets the protocol as it knows it.
    let mut plain = open(&relay.url, Some(&token)).unwrap();
    join(&mut plain, "automerge-repo");
}
