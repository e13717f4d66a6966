//! The supervisors' console, through `app(state)` with `oneshot`: sign-in, sessions,
//! CSRF, lock-out, scope (another province's unit, photo and exports are a 403 that
//! leaks nothing), reviews and settled conflicts written durably, exports.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;
use wardcheck_core::doc::{Assessment, DocumentId, Evidence};
use wardcheck_core::model::{Action, Author, Status, Unit, sample_templates};
use wardcheck_core::testing::signed_evidence;
use wardcheck_relay::config::{Config, Settings};
use wardcheck_relay::serve::Peer;
use wardcheck_relay::store::{EvidenceCheck, UnitKind, UnitRecord, Verdict};
use wardcheck_relay::{AppState, Role, app, auth};

const PASSWORD: &str = "mật khẩu đúng";

struct Console {
    _dir: tempfile::TempDir,
    state: AppState,
    app: Router,
    /// Ngô Mây's 2025 assessment (province kt).
    doc: DocumentId,
    /// An Hưng's 2025 assessment (province th).
    other: DocumentId,
}

struct Reply {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION)?.to_str().ok()
    }

    /// The value of cookie `name` set by this response.
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    }

    /// The first hidden `csrf` field of the page.
    fn csrf(&self) -> String {
        let text = self.text();
        let at = text.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        text[at..at + 64].to_owned()
    }
}

fn unit(id: &str, kind: UnitKind, parent: Option<&str>, name: &str) -> UnitRecord {
    UnitRecord {
        id: id.into(),
        name: name.into(),
        kind,
        parent_id: parent.map(Into::into),
    }
}

/// A ward's 2025 assessment: photos `first..first + 6` on c01 and c02, both submitted.
fn assessment(ward: &str, name: &str, first: u64) -> Assessment {
    let unit = Unit {
        id: ward.into(),
        name: name.into(),
        city: "Kon Tum".into(),
        province: "Kon Tum".into(),
    };
    let template = Arc::new(sample_templates().remove(1));
    let mut doc = Assessment::create(&unit, "2025", template).unwrap();
    let officer = Author::new("officer-a", "phone-1");
    for (criterion, seeds) in [("c01", first..first + 3), ("c02", first + 3..first + 6)] {
        for seed in seeds {
            let evidence = signed_evidence(seed, &officer);
            doc.add_evidence(criterion, &evidence, &officer, 1_000)
                .unwrap();
        }
        doc.step(criterion, Action::Submit, None, &officer, 2_000)
            .unwrap();
    }
    doc
}

impl Console {
    fn new() -> Self {
        Self::with(Settings::default())
    }

    fn with(settings: Settings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data: Some(dir.path().join("data")),
            ..settings
        };
        let state = AppState::open(Config::from_settings(settings).unwrap()).unwrap();
        let store = &state.store;
        for u in [
            unit("kt", UnitKind::Province, None, "Công an tỉnh Kon Tum"),
            unit("kt-city", UnitKind::City, Some("kt"), "TP Kon Tum"),
            unit(
                "ngo-may",
                UnitKind::Ward,
                Some("kt-city"),
                "Công an phường Ngô Mây",
            ),
            unit("th", UnitKind::Province, None, "Công an tỉnh Thanh Hóa"),
            unit(
                "an-hung",
                UnitKind::Ward,
                Some("th"),
                "Công an phường An Hưng",
            ),
        ] {
            store.add_unit(&u).unwrap();
        }
        let hash = auth::hash_password(PASSWORD);
        for (id, role, unit) in [
            ("sup-kt", Role::Supervisor, "kt"),
            ("sup-th", Role::Supervisor, "th"),
            ("officer-a", Role::Officer, "ngo-may"),
        ] {
            store.add_user(id, id, role, unit, Some(&hash)).unwrap();
        }
        let mut ids = Vec::new();
        for (ward, name, first) in [
            ("ngo-may", "Công an phường Ngô Mây", 1),
            ("an-hung", "Công an phường An Hưng", 11),
        ] {
            let doc = assessment(ward, name, first);
            let view = doc.view().unwrap();
            let refs: Vec<_> = view
                .criteria
                .iter()
                .flat_map(|c| &c.evidence)
                .flat_map(|e| [e.photo, e.thumbnail])
                .collect();
            store
                .insert_document(&view.id, ward, &doc.save(), &doc.heads_key(), &refs, &[])
                .unwrap();
            ids.push(view.id);
        }
        // The photos of both documents are on the relay.
        for seed in (1..=6).chain(11..=16) {
            for bytes in [format!("evidence {seed}"), format!("thumbnail {seed}")] {
                let path = state
                    .blobs
                    .path(&wardcheck_core::blob::BlobHash::of(bytes.as_bytes()));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
        }
        let app = app(state.clone());
        Self {
            _dir: dir,
            state,
            app,
            doc: ids[0],
            other: ids[1],
        }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let (parts, body) = self
            .app
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .into_parts();
        let body = to_bytes(body, usize::MAX).await.unwrap().to_vec();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn get(&self, uri: &str, cookie: &str) -> Reply {
        self.send(
            Request::get(uri)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, uri: &str, cookie: &str, form: &[(&str, &str)]) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(uri)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Opens the sign-in page; returns its CSRF cookie header.
    async fn sign_in_cookie(&self) -> (String, String) {
        let page = self.get("/console/login", "").await;
        assert_eq!(page.status, StatusCode::OK);
        let token = page.cookie("wc_signin").expect("a sign-in cookie");
        assert_eq!(page.csrf(), token);
        (format!("wc_signin={token}"), token)
    }

    async fn try_sign_in(&self, user: &str, password: &str) -> Reply {
        let (cookie, token) = self.sign_in_cookie().await;
        self.post(
            "/console/login",
            &cookie,
            &[("username", user), ("password", password), ("csrf", &token)],
        )
        .await
    }

    /// Signs in; returns the session cookie header and the session's CSRF token.
    async fn sign_in(&self, user: &str) -> (String, String) {
        let reply = self.try_sign_in(user, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        assert_eq!(reply.location(), Some("/console/"));
        let set = reply
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("wc_session="))
            .unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        let cookie = format!("wc_session={}", reply.cookie("wc_session").unwrap());
        let overview = self.get("/console/", &cookie).await;
        assert_eq!(overview.status, StatusCode::OK);
        (cookie, overview.csrf())
    }

    /// The stored document of Ngô Mây (what a phone would sync).
    fn stored(&self) -> Assessment {
        self.stored_doc(&self.doc)
    }

    fn stored_doc(&self, id: &DocumentId) -> Assessment {
        let stored = self.state.store.document(id).unwrap().unwrap();
        let mut bytes = stored.snapshot;
        stored.chunks.iter().for_each(|c| bytes.extend(c));
        Assessment::load(&bytes).unwrap()
    }

    /// The status of `criterion` in the stored document, with the review's reason.
    fn stored_status(&self, criterion: &str) -> (Status, Option<String>) {
        let c = self.stored().criterion_view(criterion).unwrap();
        (c.status, c.review.and_then(|r| r.reason))
    }

    /// Posts a review of Ngô Mây's `criterion` with the session's CSRF token.
    async fn review(
        &self,
        session: &(String, String),
        criterion: &str,
        action: &str,
        reason: &str,
    ) -> Reply {
        let uri = format!("/console/d/{}/c/{criterion}/review", self.doc);
        let form = [
            ("csrf", session.1.as_str()),
            ("action", action),
            ("reason", reason),
        ];
        self.post(&uri, &session.0, &form).await
    }

    /// Settles the indicator conflict of Ngô Mây's document.
    async fn settle(&self, session: &(String, String), pick: &str, custom: &str) -> Reply {
        let uri = format!("/console/d/{}/settle", self.doc);
        let form = [
            ("csrf", session.1.as_str()),
            ("path", "indicators/incidents"),
            ("pick", pick),
            ("custom", custom),
        ];
        self.post(&uri, &session.0, &form).await
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn pages_need_a_session_and_sign_out_ends_it() {
    let console = Console::new();
    let reply = console.get("/console/", "").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), Some("/console/login"));
    let forged = console
        .get("/console/", &format!("wc_session={}", "ab".repeat(32)))
        .await;
    assert_eq!(forged.location(), Some("/console/login"));
    assert_eq!(console.get("/", "").await.location(), Some("/console/"));

    let (cookie, csrf) = console.sign_in("sup-kt").await;
    let overview = console.get("/console/", &cookie).await;
    assert!(overview.text().contains("Công an phường Ngô Mây"));
    assert!(overview.text().contains("lang=\"vi\""));
    let csp = overview.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(overview.headers[header::X_FRAME_OPTIONS], "DENY");
    let out = console
        .post("/console/logout", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        console.get("/console/", &cookie).await.location(),
        Some("/console/login")
    );
}

#[tokio::test]
async fn sign_in_errors_do_not_reveal_who_exists() {
    let console = Console::new();
    let (cookie, token) = console.sign_in_cookie().await;
    let mut answers = Vec::new();
    for (user, password) in [
        ("sup-kt", "wrong password"),
        ("nobody-at-all", "wrong password"),
        ("officer-a", PASSWORD), // right password, but officers have no console
    ] {
        let reply = console
            .post(
                "/console/login",
                &cookie,
                &[("username", user), ("password", password), ("csrf", &token)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.cookie("wc_session").is_none());
        answers.push(reply.text());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    assert!(answers[0].contains("Tên đăng nhập hoặc mật khẩu không đúng."));
}

#[tokio::test]
async fn repeated_failures_lock_a_name_out_whether_it_exists_or_not() {
    let console = Console::new();
    for user in ["sup-kt", "nobody"] {
        for _ in 0..5 {
            let reply = console.try_sign_in(user, "guess").await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
        let locked = console.try_sign_in(user, PASSWORD).await;
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{user}");
        assert!(locked.cookie("wc_session").is_none());
    }
    // Other names are not affected.
    console.sign_in("sup-th").await;
}

#[tokio::test]
async fn many_names_tried_from_one_address_lock_that_address_out() {
    let console = Console::new();
    let (cookie, token) = console.sign_in_cookie().await;
    let from = |addr: &str, user: &str, password: &str| {
        let mut request = Request::post("/console/login")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "username={user}&password={}&csrf={token}",
                encode(password)
            )))
            .unwrap();
        let peer = Peer(addr.parse().unwrap());
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    for n in 0..50 {
        let reply = console
            .send(from("192.0.2.7:4000", &format!("guess-{n}"), "x"))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let locked = console
        .send(from("192.0.2.7:4001", "sup-kt", PASSWORD))
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let elsewhere = console
        .send(from("198.51.100.1:4000", "sup-kt", PASSWORD))
        .await;
    assert_eq!(elsewhere.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_passwords_at_once_are_counted_before_they_are_checked() {
    let console = Console::new();
    let (cookie, token) = console.sign_in_cookie().await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let request = Request::post("/console/login")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "username=sup-kt&password=guess&csrf={token}"
            )))
            .unwrap();
        attempts.spawn(console.app.clone().oneshot(request));
    }
    let mut statuses = Vec::new();
    while let Some(response) = attempts.join_next().await {
        statuses.push(response.unwrap().unwrap().status().as_u16());
    }
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((checked, refused), (5, 35), "{statuses:?}");
    assert_eq!(console.state.metrics.password_checks.get(), 5);
    // The right password is refused now too, unchecked.
    let locked = console.try_sign_in("sup-kt", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(console.state.metrics.password_checks.get(), 5);
    assert!(console.state.passwords.buffers() <= console.state.config.password_checks);
}

#[tokio::test]
async fn a_sign_in_token_the_relay_did_not_issue_is_refused() {
    let console = Console::new();
    // Cookie and field agree, as a client that chose (or planted) them would make them.
    for chosen in ["ab".repeat(32), "0".repeat(64), "fixed".into()] {
        let reply = console
            .post(
                "/console/login",
                &format!("wc_signin={chosen}"),
                &[
                    ("username", "sup-kt"),
                    ("password", PASSWORD),
                    ("csrf", &chosen),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{chosen}");
        assert!(reply.cookie("wc_session").is_none());
    }
    // A token of another relay (another signing key).
    let other = Console::new();
    let (cookie, token) = other.sign_in_cookie().await;
    let reply = console
        .post(
            "/console/login",
            &cookie,
            &[
                ("username", "sup-kt"),
                ("password", PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(console.state.metrics.password_checks.get(), 0);
    // The relay's own works.
    console.sign_in("sup-kt").await;
}

#[tokio::test]
async fn the_origin_must_match_in_scheme_too() {
    let console = Console::with(Settings {
        public_url: Some("https://relay.example".into()),
        ..Settings::default()
    });
    let (cookie, token) = console.sign_in_cookie().await;
    let sign_in = |origin: &'static str| {
        Request::post("/console/login")
            .header(header::COOKIE, &cookie)
            .header(header::HOST, "relay.example")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "username=sup-kt&password={}&csrf={token}",
                encode(PASSWORD)
            )))
            .unwrap()
    };
    for foreign in [
        "http://relay.example",
        "https://relay.example.evil.example",
        "https://relay.example:8443",
        "null",
    ] {
        let reply = console.send(sign_in(foreign)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{foreign}");
    }
    let reply = console.send(sign_in("https://relay.example")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert!(
        reply.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    // Over plain HTTP, an https origin is another origin.
    let plain = Console::new();
    let (cookie, token) = plain.sign_in_cookie().await;
    let reply = plain
        .send(
            Request::post("/console/login")
                .header(header::COOKIE, &cookie)
                .header(header::HOST, "relay.example")
                .header(header::ORIGIN, "https://relay.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "username=sup-kt&password=x&csrf={token}"
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_fail() {
    let console = Console::new();
    // Sign-in without the sign-in cookie, or with another token.
    let no_cookie = console
        .post(
            "/console/login",
            "",
            &[
                ("username", "sup-kt"),
                ("password", PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(no_cookie.status, StatusCode::FORBIDDEN);
    let (cookie, _) = console.sign_in_cookie().await;
    let wrong = console
        .post(
            "/console/login",
            &cookie,
            &[
                ("username", "sup-kt"),
                ("password", PASSWORD),
                ("csrf", &"0".repeat(64)),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let (cookie, csrf) = console.sign_in("sup-kt").await;
    let review = format!("/console/d/{}/c/c01/review", console.doc);
    for token in [None, Some("0".repeat(64)), Some(csrf[..63].to_owned())] {
        let mut form = vec![("action", "approve")];
        if let Some(token) = &token {
            form.push(("csrf", token));
        }
        let reply = console.post(&review, &cookie, &form).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    }
    let logout = console
        .post("/console/logout", &cookie, &[("csrf", "nope")])
        .await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    // Another site's form, even with the token.
    let cross = console
        .send(
            Request::post(&review)
                .header(header::COOKIE, &cookie)
                .header(header::HOST, "relay.example")
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("action=approve&csrf={csrf}")))
                .unwrap(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert_eq!(console.stored_status("c01").0, Status::Submitted);
}

#[tokio::test]
async fn another_provinces_unit_photo_and_exports_are_forbidden() {
    let console = Console::new();
    let (cookie, csrf) = console.sign_in("sup-th").await;
    let mine = console
        .get(&format!("/console/d/{}", console.other), &cookie)
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    let theirs = console.doc;
    let missing = DocumentId::for_assessment("nowhere", "2025");
    let mut refusals = Vec::new();
    for uri in [
        format!("/console/d/{theirs}"),
        format!("/console/d/{theirs}/c/c01"),
        format!("/console/d/{theirs}/dossier"),
        format!("/console/d/{theirs}/evidence.zip"),
        format!("/console/d/{missing}"),
        format!("/console/d/{missing}/evidence.zip"),
        "/console/d/not-an-id".to_owned(),
    ] {
        let reply = console.get(&uri, &cookie).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{uri}");
        refusals.push(reply.body);
    }
    let review = console
        .review(&(cookie.clone(), csrf), "c01", "approve", "")
        .await;
    assert_eq!(review.status, StatusCode::FORBIDDEN);
    refusals.push(review.body);
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "the 403s differ");
    let refusal = String::from_utf8_lossy(&refusals[0]);
    assert!(refusal.contains("Bạn không có quyền"), "{refusal}");
    assert!(!refusal.contains("Ngô Mây") && !refusal.contains("ngo-may"));
    assert_eq!(console.stored_status("c01").0, Status::Submitted);

    // Photos: the other province's (stored, and seen by its supervisor), a made-up hash,
    // one stored but referenced by no document, and garbage: one 403.
    let officer = Author::new("officer-a", "phone-1");
    let ours = signed_evidence(11, &officer);
    for hash in [ours.photo, ours.thumbnail] {
        let reply = console
            .get(&format!("/console/photo/{hash}"), &cookie)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers[header::CONTENT_TYPE], "image/jpeg");
    }
    let theirs = signed_evidence(1, &officer);
    let (kt, _) = console.sign_in("sup-kt").await;
    let seen = console
        .get(&format!("/console/photo/{}", theirs.photo), &kt)
        .await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body, b"evidence 1");
    let mut photo_refusals = Vec::new();
    for hash in [theirs.photo, theirs.thumbnail] {
        photo_refusals.push(
            console
                .get(&format!("/console/photo/{hash}"), &cookie)
                .await,
        );
    }
    let unknown = wardcheck_core::blob::BlobHash::of(b"nobody's photo");
    let stored_elsewhere = wardcheck_core::blob::BlobHash::of(b"stored, unreferenced");
    let path = console.state.blobs.path(&stored_elsewhere);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"stored, unreferenced").unwrap();
    let a = console
        .get(&format!("/console/photo/{unknown}"), &cookie)
        .await;
    let b = console
        .get(&format!("/console/photo/{stored_elsewhere}"), &cookie)
        .await;
    let c = console.get("/console/photo/zz", &cookie).await;
    for reply in photo_refusals.iter().chain([&a, &b, &c]) {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.body, refusals[0]);
    }

    // Listings and the CSV hold only the supervisor's own units.
    let overview = console.get("/console/", &cookie).await.text();
    assert!(overview.contains("An Hưng") && !overview.contains("Ngô Mây"));
    let csv = console.get("/console/export/progress.csv", &cookie).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.text().contains("an-hung") && !csv.text().contains("ngo-may"));
    let conflicts = console.get("/console/conflicts", &cookie).await.text();
    assert!(!conflicts.contains("Ngô Mây"));
}

#[tokio::test]
async fn reviews_are_stored_as_changes_by_the_supervisor() {
    let console = Console::new();
    let officer = Author::new("officer-a", "phone-1");
    let checks =
        [(1, Verdict::BadSignature), (2, Verdict::Verified)].map(|(seed, verdict)| EvidenceCheck {
            criterion: "c01".into(),
            photo: signed_evidence(seed, &officer).photo,
            verdict,
        });
    console
        .state
        .store
        .record_evidence_checks(&console.doc, &checks)
        .unwrap();
    let (cookie, csrf) = console.sign_in("sup-kt").await;
    let page = console
        .get(&format!("/console/d/{}/c/c01", console.doc), &cookie)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("name=\"approve\""), "{text}");
    assert!(text.contains("không có GPS"));
    assert!(
        text.contains("CHỮ KÝ KHÔNG HỢP LỆ"),
        "a failed signature is flagged"
    );
    assert!(text.contains("hợp lệ") && text.contains("chưa kiểm tra"));

    let session = (cookie.clone(), csrf);
    let base = format!("/console/d/{}/c", console.doc);
    let approve = console.review(&session, "c01", "approve", "").await;
    assert_eq!(approve.status, StatusCode::SEE_OTHER, "{}", approve.text());
    assert_eq!(approve.location(), Some(format!("{base}/c01").as_str()));
    let no_reason = console.review(&session, "c02", "return", "  ").await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_reason.text().contains("Trả lại cần có lý do."));
    let ret = console
        .review(&session, "c02", "return", "Ảnh mờ, chụp lại")
        .await;
    assert_eq!(ret.status, StatusCode::SEE_OTHER);
    // Durable: the stored document (what phones sync) has both, by the supervisor.
    assert_eq!(console.stored_status("c01"), (Status::Approved, None));
    assert_eq!(
        console.stored_status("c02"),
        (Status::Returned, Some("Ảnh mờ, chụp lại".into()))
    );
    // Approving again is refused by the lifecycle.
    let again = console.review(&session, "c01", "approve", "").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    let page = console.get(&format!("{base}/c02"), &cookie).await.text();
    assert!(page.contains("Ảnh mờ, chụp lại") && page.contains("sup-kt"));
}

#[tokio::test]
async fn a_photo_used_again_elsewhere_in_the_scope_is_shown() {
    let console = Console::new();
    // The same picture (perceptual hash) as c01's first photo, attached to c03 of
    // Ngô Mây and of An Hưng (another province).
    let officer = Author::new("officer-a", "phone-1");
    let original = signed_evidence(1, &officer);
    for (id, seed) in [(console.doc, 21), (console.other, 31)] {
        let reused = Evidence {
            perceptual_hash: original.perceptual_hash,
            ..signed_evidence(seed, &officer)
        };
        let mut doc = console.stored_doc(&id);
        let before = doc.heads();
        doc.add_evidence("c03", &reused, &officer, 5_000).unwrap();
        let refs = [reused.photo, reused.thumbnail];
        let chunk = doc.save_after(&before);
        console
            .state
            .store
            .append_chunk(&id, &chunk, &doc.heads_key(), &refs, &[])
            .unwrap();
    }
    let (cookie, _) = console.sign_in("sup-kt").await;
    let page = console
        .get(&format!("/console/d/{}/c/c01", console.doc), &cookie)
        .await
        .text();
    assert!(page.contains("Ảnh tương tự ở nơi khác"), "{page}");
    assert!(page.contains("Tiêu chí 3 (0)"), "{page}");
    // Once (not for the other photos), and never from another province.
    assert_eq!(page.matches("Ảnh tương tự ở nơi khác").count(), 1);
    assert!(!page.contains("An Hưng"), "{page}");
}

#[tokio::test]
async fn conflicts_are_listed_and_settled() {
    let console = Console::new();
    // Two offline devices set the same indicator; the relay gets both.
    let stored = console.state.store.document(&console.doc).unwrap().unwrap();
    let base = Assessment::load(&stored.snapshot).unwrap();
    let (mut a, mut b) = (base.clone(), base.clone());
    a.set_actor(automerge::ActorId::random());
    b.set_actor(automerge::ActorId::random());
    a.set_indicator("incidents", 5, &Author::new("officer-a", "phone-1"), 3_000)
        .unwrap();
    b.set_indicator("incidents", 6, &Author::new("officer-a", "phone-2"), 3_000)
        .unwrap();
    // And the caption of one of c01's photos.
    let photo = signed_evidence(1, &Author::new("officer-a", "phone-1")).photo;
    a.set_caption(
        "c01",
        &photo,
        "cổng",
        &Author::new("officer-a", "phone-1"),
        3_000,
    )
    .unwrap();
    b.set_caption(
        "c01",
        &photo,
        "sân",
        &Author::new("officer-a", "phone-2"),
        3_000,
    )
    .unwrap();
    a.merge(&b).unwrap();
    console
        .state
        .store
        .append_chunk(
            &console.doc,
            &a.save_after(&base.heads()),
            &a.heads_key(),
            &[],
            &[],
        )
        .unwrap();

    let session = console.sign_in("sup-kt").await;
    let inbox = console.get("/console/conflicts", &session.0).await.text();
    assert!(inbox.contains("indicators/incidents"), "{inbox}");
    // A criterion's field names the criterion, with a link to it.
    let c01 = format!("/console/d/{}/c/c01", console.doc);
    assert!(
        inbox.contains(&format!("criteria/c01/evidence/{photo}/caption")),
        "{inbox}"
    );
    assert!(inbox.contains(&format!("href=\"{c01}\"")), "{inbox}");
    assert!(inbox.contains("phone-1") && inbox.contains("phone-2"));
    let settle = console.settle(&session, "5", "7").await;
    assert_eq!(settle.status, StatusCode::SEE_OTHER, "{}", settle.text());
    let doc = console.stored();
    assert_eq!(doc.conflicts().len(), 1, "the caption is still to settle");
    let incidents = doc.view().unwrap().indicators;
    assert_eq!(
        incidents[0].value,
        Some(7),
        "a written number stays a number"
    );
    let again = console.settle(&session, "5", "").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn exports_hold_progress_photos_and_a_manifest() {
    let console = Console::new();
    let (cookie, _) = console.sign_in("sup-kt").await;
    let csv = console.get("/console/export/progress.csv", &cookie).await;
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let text = csv.text();
    let line = text.lines().find(|l| l.starts_with("ngo-may")).unwrap();
    let (fields, last_sync) = line.rsplit_once(',').unwrap();
    assert_eq!(
        fields,
        "ngo-may,Công an phường Ngô Mây,TP Kon Tum,2025,20,0,2,0,0,18,0"
    );
    assert!(last_sync.ends_with(" UTC"), "{last_sync}");

    let zip = console
        .get(&format!("/console/d/{}/evidence.zip", console.doc), &cookie)
        .await;
    assert_eq!(zip.status, StatusCode::OK);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.body)).unwrap();
    let mut manifest = String::new();
    archive
        .by_name("manifest.json")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["photos"].as_array().unwrap().len(), 6);
    let first = manifest["photos"][0]["file"].as_str().unwrap().to_owned();
    let mut photo = String::new();
    archive
        .by_name(&first)
        .unwrap()
        .read_to_string(&mut photo)
        .unwrap();
    assert!(photo.starts_with("evidence "));
    assert!(archive.by_name("manifest.csv").is_ok());

    let dossier = console
        .get(&format!("/console/d/{}/dossier", console.doc), &cookie)
        .await;
    assert_eq!(dossier.status, StatusCode::OK);
    assert!(dossier.text().contains("window.print()"));
}

#[tokio::test]
async fn english_on_request_and_search_ignores_diacritics() {
    let console = Console::new();
    let (cookie, _) = console.sign_in("sup-kt").await;
    let switch = console
        .send(
            Request::get("/console/lang/en")
                .header(header::REFERER, "http://relay/console/conflicts")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(switch.location(), Some("/console/conflicts"));
    let lang = format!("{cookie}; wc_lang={}", switch.cookie("wc_lang").unwrap());
    let page = console.get("/console/", &lang).await.text();
    assert!(page.contains("lang=\"en\"") && page.contains("Sign out"));
    let found = console.get("/console/?q=ngo+may", &cookie).await.text();
    assert!(found.contains("Công an phường Ngô Mây"));
    let none = console
        .get("/console/?q=tran+hung+dao", &cookie)
        .await
        .text();
    assert!(!none.contains("Công an phường Ngô Mây"));
}

#[tokio::test]
async fn a_document_that_does_not_load_takes_down_no_page_about_the_others() {
    let console = Console::new();
    // A 2024 assessment of the same ward whose stored bytes do not load (written before
    // the relay checked changes, or damaged on disk).
    let broken = DocumentId::for_assessment("ngo-may", "2024");
    console
        .state
        .store
        .insert_document(&broken, "ngo-may", b"not automerge", b"h", &[], &[])
        .unwrap();
    let (cookie, _) = console.sign_in("sup-kt").await;
    for page in [
        "/console/".to_owned(),
        "/console/export/progress.csv".to_owned(),
        "/console/conflicts".to_owned(),
        format!("/console/d/{}", console.doc),
        format!("/console/d/{}/c/c01", console.doc),
    ] {
        let reply = console.get(&page, &cookie).await;
        assert_eq!(reply.status, StatusCode::OK, "{page}: {}", reply.text());
    }
    // The overview still shows the readable assessment's progress.
    let overview = console.get("/console/", &cookie).await.text();
    assert!(overview.contains("Công an phường Ngô Mây"), "{overview}");
}
