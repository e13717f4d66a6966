//! Exports: progress of every unit in scope as CSV, a unit's evidence as a ZIP (photos
//! and a JSON + CSV manifest), and a printable dossier page per unit (the bundle sent for
//! appraisal).

use std::io::{Cursor, Write};

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Serialize;
use wardcheck_core::doc::AssessmentView;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use super::docs;
use super::layout::{self, badge, captured, page, time};
use super::pages::{DocPath, is_stale, unit_lines};
use super::session::Supervisor;
use crate::AppState;
use crate::error::AppError;

/// Quotes one CSV field (RFC 4180): in double quotes when it holds a comma, quote or line
/// break, quotes doubled. A leading `=`, `+`, `-` or `@` gets a `'` so that spreadsheets
/// do not run it as a formula.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn attachment(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    (
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/export/progress.csv`: one line per unit (and period) in scope.
pub async fn progress_csv(
    State(state): State<AppState>,
    who: Supervisor,
) -> Result<Response, AppError> {
    let lines = unit_lines(&state, &who).await?;
    let mut out = String::from("\u{feff}"); // BOM: spreadsheets then read UTF-8
    out.push_str(&csv_line(
        &[
            "unit_id",
            "unit",
            "city",
            "period",
            "total",
            "met",
            "submitted",
            "returned",
            "in_progress",
            "not_started",
            "stale_evidence",
            "last_sync",
        ]
        .map(String::from),
    ));
    for line in lines {
        let mut fields = vec![line.ward, line.name, line.city];
        match line.doc {
            Some(doc) => {
                let p = doc.progress;
                fields.push(doc.period);
                fields.extend(
                    [
                        p.total,
                        p.approved,
                        p.submitted,
                        p.returned,
                        p.in_progress,
                        p.not_started,
                    ]
                    .map(|n| n.to_string()),
                );
                fields.push(doc.stale.to_string());
                fields.push(time(doc.updated_at));
            }
            None => fields.extend(std::iter::repeat_n(String::new(), 9)),
        }
        out.push_str(&csv_line(&fields));
    }
    Ok(attachment(
        "text/csv; charset=utf-8",
        "progress.csv",
        out.into_bytes(),
    ))
}

/// One photo of the evidence ZIP's manifest.
#[derive(Serialize)]
struct ManifestEntry {
    criterion: String,
    code: String,
    status: String,
    file: Option<String>,
    photo_sha256: String,
    caption: String,
    captured_at: String,
    lat: Option<f64>,
    lon: Option<f64>,
    officer: String,
    device: String,
    to_reconfirm: bool,
}

fn manifest(view: &AssessmentView) -> Vec<ManifestEntry> {
    view.criteria
        .iter()
        .flat_map(|c| {
            c.evidence.iter().map(|e| ManifestEntry {
                criterion: c.criterion.id.clone(),
                code: c.criterion.code.clone(),
                status: c.status.as_str().to_owned(),
                file: Some(format!("photos/{}/{}.jpg", c.criterion.id, e.photo)),
                photo_sha256: e.photo.to_hex(),
                caption: e.caption.clone(),
                captured_at: e.captured_at.clone(),
                lat: e.location.map(|l| l.lat),
                lon: e.location.map(|l| l.lon),
                officer: e.officer.clone(),
                device: e.device.clone(),
                to_reconfirm: e.to_reconfirm,
            })
        })
        .collect()
}

/// `GET /console/d/{doc}/evidence.zip`: the unit's photos (stored, not compressed: they
/// are JPEGs) under `photos/<criterion>/<sha256>.jpg`, with `manifest.json` and
/// `manifest.csv`. A photo the relay does not hold yet is listed with no `file`.
pub async fn evidence_zip(
    State(state): State<AppState>,
    who: Supervisor,
    DocPath(id): DocPath,
) -> Result<Response, AppError> {
    let (view, _) = docs::view(&state, &who, id).await?;
    let blobs = state.blobs.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, AppError> {
        let mut entries = manifest(&view);
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for entry in &mut entries {
            let hash = entry.photo_sha256.parse().map_err(AppError::internal)?;
            match std::fs::read(blobs.path(&hash)) {
                Ok(photo) => {
                    let name = entry.file.clone().unwrap_or_default();
                    zip.start_file(name, options).map_err(AppError::internal)?;
                    zip.write_all(&photo)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => entry.file = None,
                Err(e) => return Err(e.into()),
            }
        }
        zip.start_file("manifest.json", options)
            .map_err(AppError::internal)?;
        let json = serde_json::json!({
            "unit": view.unit,
            "period": view.period,
            "template": view.template,
            "progress": view.progress,
            "photos": entries,
        });
        zip.write_all(&serde_json::to_vec_pretty(&json).map_err(AppError::internal)?)?;
        zip.start_file("manifest.csv", options)
            .map_err(AppError::internal)?;
        let mut csv = csv_line(
            &[
                "criterion",
                "code",
                "status",
                "file",
                "photo_sha256",
                "caption",
                "captured_at",
                "lat",
                "lon",
                "officer",
                "device",
                "to_reconfirm",
            ]
            .map(String::from),
        );
        for e in &entries {
            let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            csv.push_str(&csv_line(&[
                e.criterion.clone(),
                e.code.clone(),
                e.status.clone(),
                e.file.clone().unwrap_or_default(),
                e.photo_sha256.clone(),
                e.caption.clone(),
                e.captured_at.clone(),
                num(e.lat),
                num(e.lon),
                e.officer.clone(),
                e.device.clone(),
                e.to_reconfirm.to_string(),
            ]));
        }
        zip.write_all(csv.as_bytes())?;
        Ok(zip.finish().map_err(AppError::internal)?.into_inner())
    })
    .await??;
    Ok(attachment(
        "application/zip",
        &format!("evidence-{id}.zip"),
        bytes,
    ))
}

/// `GET /console/d/{doc}/dossier`: every criterion with its status, review, note and
/// photos on one page laid out for printing.
pub async fn dossier(
    State(state): State<AppState>,
    who: Supervisor,
    DocPath(id): DocPath,
) -> Result<Markup, AppError> {
    let (view, template) = docs::view(&state, &who, id).await?;
    let lang = who.lang;
    let t = lang.texts();
    let title = format!("{} · {} · {}", t.dossier, view.unit.name, view.period);
    Ok(page(
        lang,
        Some(&who),
        &title,
        html! {
            h1 { (view.unit.name) }
            p { (t.period) ": " (view.period) " · " (lang.pick(&template.title)) " (" (view.template) ")" }
            (layout::progress(lang, &view.progress))
            p.noprint { button type="button" onclick="window.print()" { (t.print) } }
            @for area in &template.areas {
                h2 { (lang.pick(&area.title)) }
                @for c in view.criteria.iter().filter(|c| c.criterion.area == area.id) {
                    section.card {
                        h3 { (c.criterion.code) ". " (lang.pick(&c.criterion.title)) " " (badge(lang, c.status)) }
                        @if let Some(r) = &c.review {
                            p { (t.reviewed_by) ": " (r.by) " · " (time(r.at_ms))
                                @if let Some(reason) = &r.reason { " — " (reason) } }
                        }
                        @if !c.note.is_empty() { p { (t.note) ": " (c.note) } }
                        div.thumbs {
                            @for e in &c.evidence {
                                figure {
                                    img src={ "/console/photo/" (e.thumbnail) } alt=(e.caption);
                                    figcaption.muted { (e.caption) " · " (captured(&e.captured_at))
                                        @if is_stale(e, &view.period) { " · ⚠ " (t.to_reconfirm) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_line(&["a".into(), "b c".into()]), "a,b c\r\n");
    }
}
