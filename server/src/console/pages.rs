//! The pages: overview of the scope, a unit's checklist, a criterion (evidence, history,
//! reuse, review), and the conflicts inbox; with the review and settle forms they post.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{
    Assessment, AssessmentView, Conflict, CriterionView, DocumentId, Evidence, FieldValue,
    HistoryEntry,
};
use wardcheck_core::model::{Action, Progress};
use wardcheck_core::photo::GeoPoint;

use super::docs;
use super::i18n::Lang;
use super::layout::{self, badge, captured, page, time};
use super::search;
use super::session::Supervisor;
use crate::AppState;
use crate::error::AppError;
use crate::store::{EvidenceCheck, UnitLocation, Verdict};

/// Perceptual hashes at most this far apart (of 64 bits) count as the same picture.
pub const SIMILAR_DISTANCE: u32 = 6;

/// The document id of the path's `{doc}`; a malformed one is refused like a document
/// out of scope.
pub struct DocPath(pub DocumentId);

impl FromRequestParts<AppState> for DocPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::Forbidden)?;
        params
            .get("doc")
            .and_then(|doc| doc.parse().ok())
            .map(DocPath)
            .ok_or(AppError::Forbidden)
    }
}

/// One line of the overview: a document, or a ward without one.
#[derive(Debug, Clone)]
pub struct UnitLine {
    /// The ward.
    pub ward: String,
    /// Its name.
    pub name: String,
    /// The unit above it (city, or province since the two-tier reform).
    pub city: String,
    /// The assessment, if there is one.
    pub doc: Option<DocLine>,
    /// When a device of the ward's officers last called the relay.
    pub last_seen: Option<i64>,
}

/// What the overview shows of one assessment.
#[derive(Debug, Clone)]
pub struct DocLine {
    /// Its id.
    pub id: DocumentId,
    /// The period.
    pub period: String,
    /// Counts per status.
    pub progress: Progress,
    /// Photos carried over or taken long before the period, to re-confirm.
    pub stale: usize,
    /// Last write by a sync or the console (ms).
    pub updated_at: i64,
}

/// Whether a photo is stale for `period`: carried over to re-confirm, or captured before
/// the year before the period (periods start with their year, e.g. "2025", "2025-H1").
pub fn is_stale(evidence: &Evidence, period: &str) -> bool {
    let year = |s: &str| s.get(..4).and_then(|y| y.parse::<i32>().ok());
    evidence.to_reconfirm
        || matches!(
            (year(&evidence.captured_at), year(period)),
            (Some(taken), Some(period)) if taken < period - 1
        )
}

/// Every ward in scope with its assessments, by ward then period (newest first).
pub async fn unit_lines(state: &AppState, who: &Supervisor) -> Result<Vec<UnitLine>, AppError> {
    let wards = docs::wards(state, who).await?;
    let (units, last_seen) = state
        .db(|store| Ok((store.units()?, store.wards_last_seen()?)))
        .await?;
    let names: HashMap<&str, &str> = units
        .iter()
        .map(|u| (u.id.as_str(), u.name.as_str()))
        .collect();
    let mut docs = docs::read_all(state, who, |summary, doc| {
        let view = doc.view().map_err(AppError::internal)?;
        let stale = view
            .criteria
            .iter()
            .flat_map(|c| &c.evidence)
            .filter(|e| is_stale(e, &view.period))
            .count();
        Ok((
            summary.unit_id.clone(),
            DocLine {
                id: summary.id,
                period: view.period,
                progress: view.progress,
                stale,
                updated_at: summary.updated_at,
            },
        ))
    })
    .await?;
    docs.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.period.cmp(&a.1.period)));
    let mut lines = Vec::new();
    for ward in wards {
        let unit = units.iter().find(|u| u.id == ward);
        let line = UnitLine {
            name: names
                .get(ward.as_str())
                .copied()
                .unwrap_or(&ward)
                .to_owned(),
            city: unit
                .and_then(|u| u.parent_id.as_deref())
                .and_then(|p| names.get(p).copied())
                .unwrap_or_default()
                .to_owned(),
            last_seen: last_seen.get(&ward).copied(),
            doc: None,
            ward,
        };
        let mine: Vec<DocLine> = docs
            .iter()
            .filter(|(w, _)| *w == line.ward)
            .map(|(_, d)| d.clone())
            .collect();
        if mine.is_empty() {
            lines.push(line);
        } else {
            lines.extend(mine.into_iter().map(|doc| UnitLine {
                doc: Some(doc),
                ..line.clone()
            }));
        }
    }
    Ok(lines)
}

/// The overview's filters.
#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    /// Search text, diacritics-insensitive.
    #[serde(default)]
    q: String,
    /// A city (unit above the ward) name, or empty for all.
    #[serde(default)]
    city: String,
    /// `complete`, `returned`, `submitted`, `none`, or empty for all.
    #[serde(default)]
    status: String,
}

impl OverviewQuery {
    fn keeps(&self, line: &UnitLine) -> bool {
        let text = format!("{} {} {}", line.name, line.ward, line.city);
        let status = match (&line.doc, self.status.as_str()) {
            (_, "") => true,
            (Some(d), "complete") => d.progress.complete(),
            (Some(d), "returned") => d.progress.returned > 0,
            (Some(d), "submitted") => d.progress.submitted > 0,
            (None, "none") => true,
            (Some(d), "none") => d.progress.not_started == d.progress.total,
            _ => false,
        };
        search::matches(&text, &self.q)
            && (self.city.is_empty() || line.city == self.city)
            && status
    }
}

/// `GET /console/`: every unit in scope with its progress.
pub async fn overview(
    State(state): State<AppState>,
    who: Supervisor,
    Query(query): Query<OverviewQuery>,
) -> Result<Markup, AppError> {
    let lang = who.lang;
    let t = lang.texts();
    let lines = unit_lines(&state, &who).await?;
    let mut cities: Vec<&str> = lines.iter().map(|l| l.city.as_str()).collect();
    cities.sort_unstable();
    cities.dedup();
    let statuses = [
        ("complete", t.complete),
        ("submitted", t.has_submitted),
        ("returned", t.has_returned),
        ("none", t.not_started),
    ];
    let shown: Vec<&UnitLine> = lines.iter().filter(|l| query.keeps(l)).collect();
    Ok(page(
        lang,
        Some(&who),
        t.overview,
        html! {
            h1 { (t.overview) }
            form.filters.card method="get" action="/console/" {
                label { (t.search) input type="search" name="q" value=(query.q); }
                label { (t.city)
                    select name="city" {
                        option value="" { (t.all) }
                        @for city in &cities {
                            option value=(city) selected[*city == query.city] { (city) }
                        }
                    }
                }
                label { (t.status)
                    select name="status" {
                        option value="" { (t.all) }
                        @for (value, text) in statuses {
                            option value=(value) selected[value == query.status] { (text) }
                        }
                    }
                }
                button type="submit" { (t.filter) }
            }
            table #units {
                thead { tr {
                    th { (t.unit) } th { (t.period) } th { (t.progress) }
                    th { (t.last_sync) } th { (t.stale_evidence) }
                } }
                tbody {
                    @for line in &shown {
                        tr {
                            td {
                                @if let Some(doc) = &line.doc {
                                    a href={ "/console/d/" (doc.id) } { (line.name) }
                                } @else {
                                    (line.name)
                                }
                                div.muted { (line.city) }
                            }
                            @if let Some(doc) = &line.doc {
                                td { (doc.period) }
                                td { (layout::progress(lang, &doc.progress)) }
                                td {
                                    (time(doc.updated_at))
                                    div.muted { (t.last_seen) ": "
                                        (line.last_seen.map(time).unwrap_or_else(|| t.never.to_owned())) }
                                }
                                td { @if doc.stale > 0 { span.flag { "⚠ " (doc.stale) } } @else { "0" } }
                            } @else {
                                td colspan="4" .muted { (t.no_assessment) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /console/d/{doc}`: a unit's checklist, grouped by area.
pub async fn unit(
    State(state): State<AppState>,
    who: Supervisor,
    DocPath(id): DocPath,
) -> Result<Markup, AppError> {
    let lang = who.lang;
    let t = lang.texts();
    let (view, template) = docs::view(&state, &who, id).await?;
    // Who last touched each criterion, and when.
    let last_changes: HashMap<String, HistoryEntry> = docs::read(&state, &who, id, |doc| {
        Ok(doc
            .history(None)
            .into_iter()
            .filter_map(|entry| Some((entry.criterion.clone()?, entry)))
            .collect())
    })
    .await?;
    let title = format!("{} · {}", view.unit.name, view.period);
    Ok(page(
        lang,
        Some(&who),
        &title,
        html! {
            h1 { (title) }
            div.card {
                (layout::progress(lang, &view.progress))
                p.noprint {
                    a href={ "/console/d/" (id) "/dossier" } { (t.dossier) } " · "
                    a href={ "/console/d/" (id) "/evidence.zip" } { (t.evidence_zip) }
                }
            }
            @for area in &template.areas {
                h2 { (lang.pick(&area.title)) }
                table.checklist {
                    thead { tr {
                        th { (t.criterion) } th { (t.status) } th { (t.note) }
                        th { (t.evidence) } th { (t.who_when) }
                    } }
                    tbody {
                        @for c in view.criteria.iter().filter(|c| c.criterion.area == area.id) {
                            tr id={ "c-" (c.criterion.id) } {
                                td { a href={ "/console/d/" (id) "/c/" (c.criterion.id) } {
                                    (c.criterion.code) ". " (lang.pick(&c.criterion.title)) } }
                                td { (badge(lang, c.status)) }
                                td { (c.note) }
                                td { div.thumbs {
                                    @for e in &c.evidence {
                                        a href={ "/console/d/" (id) "/c/" (c.criterion.id) } {
                                            img src={ "/console/photo/" (e.thumbnail) } alt=(e.caption) loading="lazy";
                                        }
                                    }
                                } }
                                td.muted {
                                    @if let Some(h) = last_changes.get(&c.criterion.id) {
                                        (h.by) div { (time(h.at_ms)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !view.indicators.is_empty() {
                h2 { (t.indicators) }
                table { tbody {
                    @for i in &view.indicators {
                        tr { td { (i.key) } td { (opt(i.value)) } td.muted { (t.previous) ": " (opt(i.previous)) } }
                    }
                } }
            }
        },
    ))
}

fn opt(value: Option<i64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
}

/// Evidence elsewhere in the scope that looks like `evidence`.
#[derive(Debug, Clone)]
struct Similar {
    doc: DocumentId,
    unit: String,
    period: String,
    criterion: String,
    distance: u32,
}

/// Distance in metres between two points (haversine, mean earth radius).
pub fn distance_m(a: &GeoPoint, lat: f64, lon: f64) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), lat.to_radians());
    let dp = p2 - p1;
    let dl = (lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

fn gps(lang: Lang, evidence: &Evidence, unit: Option<&UnitLocation>) -> Markup {
    let t = lang.texts();
    let Some(at) = evidence.location else {
        return html! { span.muted { (t.no_gps) } };
    };
    html! {
        (format!("{:.5}, {:.5}", at.lat, at.lon))
        " · "
        @match unit {
            None => span.muted { (t.unit_has_no_location) },
            Some(u) => {
                @let d = distance_m(&at, u.lat, u.lon);
                @if d <= u.radius_m {
                    span { (t.inside_unit) }
                } @else {
                    span.flag { (t.far_from_unit) }
                }
                span.muted { " (" (format!("{:.0}", d)) " m " (t.from_centre) ")" }
            }
        }
    }
}

fn verdict(lang: Lang, check: Option<Verdict>) -> Markup {
    let t = lang.texts();
    match check {
        Some(Verdict::Verified) => html! { span { "✓ " (t.verified) } },
        Some(Verdict::UnknownDevice) => html! { span.flag { "⚠ " (t.unknown_device) } },
        Some(Verdict::BadSignature) => html! { span.flag { "✗ " (t.bad_signature) } },
        None => html! { span.muted { (t.not_checked) } },
    }
}

/// `GET /console/d/{doc}/c/{criterion}`: evidence, history, reuse and the review forms.
pub async fn criterion(
    State(state): State<AppState>,
    who: Supervisor,
    DocPath(id): DocPath,
    Path((_, criterion)): Path<(String, String)>,
) -> Result<Markup, AppError> {
    let lang = who.lang;
    let t = lang.texts();
    let wanted = criterion.clone();
    let (view, c, history) = docs::read(&state, &who, id, move |doc| {
        let view = doc.view().map_err(AppError::internal)?;
        let c = doc
            .criterion_view(&wanted)
            .map_err(|_| AppError::NotFound)?;
        Ok((view, c, doc.history(Some(&wanted))))
    })
    .await?;
    let ward = view.unit.id.clone();
    let (checks, location) = state
        .db(move |store| {
            let checks: Vec<EvidenceCheck> = store.evidence_checks(&id)?;
            Ok((checks, store.unit_locations()?.remove(&ward)))
        })
        .await?;
    let verdicts: HashMap<BlobHash, Verdict> = checks
        .into_iter()
        .filter(|check| check.criterion == criterion)
        .map(|check| (check.photo, check.verdict))
        .collect();
    let hashes: Vec<(BlobHash, wardcheck_core::photo::PerceptualHash)> = c
        .evidence
        .iter()
        .map(|e| (e.photo, e.perceptual_hash))
        .collect();
    let here = criterion.clone();
    let similar: Vec<(BlobHash, Similar)> = docs::read_all(&state, &who, move |summary, doc| {
        let other = doc.view().map_err(AppError::internal)?;
        let mut found = Vec::new();
        for oc in &other.criteria {
            for e in &oc.evidence {
                for (photo, phash) in &hashes {
                    let same_place = summary.id == id && oc.criterion.id == here;
                    let distance = e.perceptual_hash.distance(phash);
                    if distance <= SIMILAR_DISTANCE && !(same_place && e.photo == *photo) {
                        found.push((
                            *photo,
                            Similar {
                                doc: summary.id,
                                unit: other.unit.name.clone(),
                                period: other.period.clone(),
                                criterion: oc.criterion.code.clone(),
                                distance,
                            },
                        ));
                    }
                }
            }
        }
        Ok(found)
    })
    .await?
    .into_iter()
    .flatten()
    .collect();
    let title = format!("{}. {}", c.criterion.code, lang.pick(&c.criterion.title));
    Ok(page(
        lang,
        Some(&who),
        &title,
        html! {
            p.noprint { a href={ "/console/d/" (id) "#c-" (c.criterion.id) } { "← " (view.unit.name) " · " (view.period) } }
            h1 { (title) " " (badge(lang, c.status)) }
            div.card {
                p { strong { (t.guidance) ": " } (lang.pick(&c.criterion.guidance)) }
                p.muted { (t.min_photos) ": " (c.criterion.min_photos) }
                @if !c.note.is_empty() { p { strong { (t.note) ": " } (c.note) } }
                (review_summary(lang, &c))
            }
            (review_forms(lang, &who, id, &c))
            h2 { (t.evidence) " (" (c.evidence.len()) ")" }
            @if c.evidence.is_empty() { p.muted { (t.no_evidence) } }
            div.gallery {
                @for e in &c.evidence {
                    figure {
                        a href={ "/console/photo/" (e.photo) } target="_blank" {
                            img src={ "/console/photo/" (e.thumbnail) } alt=(e.caption);
                        }
                        figcaption {
                            strong { (e.caption) }
                            div { (t.captured_at) ": " (captured(&e.captured_at)) }
                            div { (t.gps) ": " (gps(lang, e, location.as_ref())) }
                            div { (e.officer) " · " (e.device) }
                            div { (t.signature) ": " (verdict(lang, verdicts.get(&e.photo).copied())) }
                            @if is_stale(e, &view.period) { div.flag { "⚠ " (t.to_reconfirm) } }
                            @let alike: Vec<&Similar> = similar.iter().filter(|(p, _)| *p == e.photo).map(|(_, s)| s).collect();
                            @if !alike.is_empty() {
                                div.flag { (t.similar_photos) ":" }
                                ul { @for s in alike {
                                    li { a href={ "/console/d/" (s.doc) } { (s.unit) " · " (s.period) } " · " (t.criterion) " " (s.criterion) " (" (s.distance) ")" }
                                } }
                            }
                        }
                    }
                }
            }
            h2 { (t.history) }
            table { tbody {
                @for h in history.iter().rev() {
                    tr { td { (time(h.at_ms)) } td { (h.by) } td.muted { (h.device) } td { (t.change(&h.what)) } }
                }
            } }
        },
    ))
}

fn review_summary(lang: Lang, c: &CriterionView) -> Markup {
    let t = lang.texts();
    html! {
        @if let Some(r) = &c.review {
            p {
                strong { (t.reviewed_by) ": " } (r.by) " · " (time(r.at_ms)) " · " (badge(lang, r.action.status()))
                @if let Some(reason) = &r.reason { " — " em { (reason) } }
            }
        }
    }
}

fn review_forms(lang: Lang, who: &Supervisor, id: DocumentId, c: &CriterionView) -> Markup {
    let t = lang.texts();
    let action = format!("/console/d/{id}/c/{}/review", c.criterion.id);
    let approve = Action::Approve.allowed_from(c.status);
    let ret = Action::Return.allowed_from(c.status);
    html! {
        div.card.actions.noprint #review {
            strong { (t.review) }
            @if approve {
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input type="hidden" name="action" value="approve";
                    button type="submit" name="approve" { (t.approve) }
                }
            }
            @if ret {
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input type="hidden" name="action" value="return";
                    label { (t.reason) input name="reason" required; }
                    button.danger type="submit" name="return" { (t.return_with_reason) }
                }
            }
            @if !approve && !ret { span.muted { (t.no_review_possible) } }
        }
    }
}

/// The review form.
#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/d/{doc}/c/{criterion}/review`: approve, or return with a reason, as
/// an Automerge change by the supervisor; back to the criterion.
pub async fn review(
    State(state): State<AppState>,
    who: Supervisor,
    DocPath(id): DocPath,
    Path((_, criterion)): Path<(String, String)>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, AppError> {
    who.check_csrf(&form.csrf)?;
    let action = match form.action.as_str() {
        "approve" => Action::Approve,
        "return" => Action::Return,
        _ => return Err(AppError::bad_request("bad_action", "approve or return")),
    };
    let reason = (action == Action::Return).then_some(form.reason);
    let target = format!("/console/d/{id}/c/{criterion}");
    docs::change(&state, &who, id, move |doc, by, now| {
        doc.step(&criterion, action, reason.as_deref(), by, now)
            .map(|_| ())
    })
    .await?;
    Ok(Redirect::to(&target).into_response())
}

/// `GET /console/conflicts`: every field that concurrent offline edits left with
/// different values, in every document in scope.
pub async fn conflicts(State(state): State<AppState>, who: Supervisor) -> Result<Markup, AppError> {
    let lang = who.lang;
    let t = lang.texts();
    let found: Vec<(AssessmentView, Vec<Conflict>)> =
        docs::read_all(&state, &who, |_, doc: &Assessment| {
            Ok((doc.view().map_err(AppError::internal)?, doc.conflicts()))
        })
        .await?
        .into_iter()
        .filter(|(_, c)| !c.is_empty())
        .collect();
    Ok(page(
        lang,
        Some(&who),
        t.conflicts,
        html! {
            h1 { (t.conflicts) }
            @if found.is_empty() { p.card { (t.no_conflicts) } }
            @for (view, list) in &found {
                h2 { a href={ "/console/d/" (view.id) } { (view.unit.name) " · " (view.period) } }
                @for conflict in list {
                    form.card.conflict method="post" action={ "/console/d/" (view.id) "/settle" } {
                        input type="hidden" name="csrf" value=(who.csrf);
                        input type="hidden" name="path" value=(conflict.path);
                        p {
                            strong { (t.field) ": " }
                            @if let Some(c) = conflict.criterion.as_deref().and_then(|c| view.criteria.iter().find(|v| v.criterion.id == c)) {
                                a href={ "/console/d/" (view.id) "/c/" (c.criterion.id) } {
                                    (c.criterion.code) ". " (lang.pick(&c.criterion.title))
                                }
                                " · "
                            }
                            code { (conflict.path) }
                        }
                        div.side {
                            @for (n, v) in conflict.values.iter().enumerate() {
                                label.card {
                                    span { input type="radio" name="pick" value=(value_json(&v.value)) checked[n == 0]; " " (t.keep_this) }
                                    span.value { (show(&v.value)) }
                                    span.muted { (v.by) " · " (v.device) " · " (time(v.at_ms)) }
                                }
                            }
                        }
                        label { (t.write_value) input name="custom"; }
                        button type="submit" { (t.settle) }
                    }
                }
            }
        },
    ))
}

fn value_json(value: &FieldValue) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn show(value: &FieldValue) -> String {
    match value {
        FieldValue::Text(s) => s.clone(),
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Float(f) => f.to_string(),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Null => "–".into(),
    }
}

/// The settle form: a picked value (as JSON) or a written one.
#[derive(Deserialize)]
pub struct SettleForm {
    #[serde(default)]
    csrf: String,
    path: String,
    #[serde(default)]
    pick: String,
    #[serde(default)]
    custom: String,
}

/// `POST /console/d/{doc}/settle`: writes the picked or written value over the
/// conflicting ones, as an Automerge change by the supervisor.
pub async fn settle(
    State(state): State<AppState>,
    who: Supervisor,
    DocPath(id): DocPath,
    Form(form): Form<SettleForm>,
) -> Result<Response, AppError> {
    who.check_csrf(&form.csrf)?;
    let custom = form.custom.trim().to_owned();
    let picked: Option<FieldValue> = serde_json::from_str(&form.pick).ok();
    let path = form.path;
    docs::change(&state, &who, id, move |doc, by, now| {
        let value = if custom.is_empty() {
            picked.ok_or_else(|| {
                wardcheck_core::Error::InvalidInput("pick or write a value".into())
            })?
        } else {
            // A written value takes the type of the values in conflict.
            let numbers = doc
                .conflicts()
                .iter()
                .find(|c| c.path == path)
                .is_some_and(|c| {
                    c.values
                        .iter()
                        .all(|v| matches!(v.value, FieldValue::Int(_)))
                });
            match custom.parse::<i64>() {
                Ok(n) if numbers => FieldValue::Int(n),
                _ => FieldValue::Text(custom),
            }
        };
        doc.settle(&path, value, by, now)
    })
    .await?;
    Ok(Redirect::to("/console/conflicts").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_on_the_earth() {
        let a = GeoPoint::new(14.35, 108.0, None).unwrap();
        assert!(distance_m(&a, 14.35, 108.0) < 0.01);
        // One degree of latitude is about 111 km.
        let d = distance_m(&a, 15.35, 108.0);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
    }

    #[test]
    fn photos_are_placed_against_the_unit() {
        let officer = wardcheck_core::model::Author::new("o", "d");
        let mut photo = wardcheck_core::testing::signed_evidence(1, &officer);
        let unit = UnitLocation {
            lat: 14.35,
            lon: 108.0,
            radius_m: 2000.0,
        };
        let shown = |photo: &Evidence, unit: Option<&UnitLocation>| {
            gps(Lang::En, photo, unit).into_string()
        };
        assert!(shown(&photo, Some(&unit)).contains("no GPS"));
        photo.location = Some(GeoPoint::new(14.36, 108.0, None).unwrap());
        let inside = shown(&photo, Some(&unit));
        assert!(
            inside.contains("inside the unit") && inside.contains("1112 m"),
            "{inside}"
        );
        photo.location = Some(GeoPoint::new(14.50, 108.0, None).unwrap());
        let far = shown(&photo, Some(&unit));
        assert!(far.contains("far from the unit"), "{far}");
        assert!(shown(&photo, None).contains("the unit has no location"));
    }

    #[test]
    fn stale_means_carried_over_or_taken_long_before() {
        let officer = wardcheck_core::model::Author::new("o", "d");
        let mut photo = wardcheck_core::testing::signed_evidence(1, &officer);
        assert!(!is_stale(&photo, "2025"));
        assert!(!is_stale(&photo, "2026"), "taken the year before");
        assert!(is_stale(&photo, "2027"));
        photo.to_reconfirm = true;
        assert!(is_stale(&photo, "2025"));
    }

    #[test]
    fn conflict_values_round_trip_through_the_form() {
        for value in [FieldValue::Text("5".into()), FieldValue::Int(5)] {
            let back: FieldValue = serde_json::from_str(&value_json(&value)).unwrap();
            assert_eq!(back, value);
        }
    }
}
