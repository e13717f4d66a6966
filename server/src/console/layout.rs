//! The page shell (header, navigation, language switch, sign-out), the one stylesheet,
//! and small pieces shared by the pages: times, status badges, progress bars.
//!
//! Markup is `maud`, which escapes every interpolated value.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use wardcheck_core::model::{Progress, Status};

use super::i18n::Lang;
use super::session::Supervisor;

/// The stylesheet, inline: no extra request, works offline on a tablet.
const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,"DejaVu Sans",sans-serif;color:#1c2430;background:#f3f5f8}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center;padding:.6rem 1rem;background:#0b3d2e;color:#fff}
header a,header button{color:#fff}
header .brand{font-weight:700;margin-right:auto}
header form{margin:0}
header button{background:none;border:1px solid #fff;border-radius:4px;padding:.25rem .6rem;font:inherit;cursor:pointer}
main{max-width:1100px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.2rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
a{color:#0b5cad}
.card{background:#fff;border-radius:8px;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 3px #0002}
.signin{max-width:380px;margin:3rem auto;display:flex;flex-direction:column;gap:.8rem}
label{display:flex;flex-direction:column;gap:.2rem;font-weight:600}
input,select,textarea{font:inherit;padding:.45rem;border:1px solid #9aa5b1;border-radius:4px;min-height:44px}
button{font:inherit;min-height:44px;padding:.4rem 1rem;border-radius:4px;border:0;background:#0b5cad;color:#fff;cursor:pointer}
button.danger{background:#b3261e}
.error{color:#b3261e;font-weight:600}
.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-end}
table{width:100%;border-collapse:collapse;background:#fff}
th,td{text-align:left;padding:.45rem;border-bottom:1px solid #e1e5ea;vertical-align:top}
.bar{display:flex;height:14px;border-radius:7px;overflow:hidden;background:#dde2e8;min-width:140px}
.bar span{display:block}
.badge{display:inline-block;white-space:nowrap;padding:.1rem .5rem;border-radius:10px;font-size:.85rem;color:#fff;background:#78909c}
.s-approved{background:#2e7d32}.s-submitted{background:#f9a825}.s-returned{background:#c62828}.s-in_progress{background:#64b5f6}
.badge.s-submitted{color:#222}
.flag{color:#b3261e;font-weight:700}
.muted{color:#5f6b7a;font-size:.9rem}
.thumbs{display:flex;flex-wrap:wrap;gap:.5rem}
.thumbs img{width:120px;height:90px;object-fit:cover;border-radius:4px;border:1px solid #ccd}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem}
.gallery figure{margin:0;background:#fff;border-radius:8px;padding:.5rem;box-shadow:0 1px 3px #0002}
.gallery img{width:100%;border-radius:4px}
.side{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:.5rem}
.actions{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-end}
.actions form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
@media print{header,.noprint{display:none}body{background:#fff}.card{box-shadow:none;border:1px solid #ccc;break-inside:avoid}}
"#;

/// A whole page. `who` is the signed-in supervisor (header with navigation and
/// sign-out) or `None` (sign-in page).
pub fn page(lang: Lang, who: Option<&Supervisor>, title: &str, body: Markup) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · wardcheck" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    span.brand { "wardcheck · " (t.title) }
                    @if let Some(who) = who {
                        a href="/console/" { (t.overview) }
                        a href="/console/conflicts" { (t.conflicts) }
                        a href="/console/export/progress.csv" { (t.progress_csv) }
                        span { (who.name) }
                    }
                    a href={ "/console/lang/" (lang.other().code()) } { (t.switch_to) }
                    @if let Some(who) = who {
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(who.csrf);
                            button type="submit" { (t.sign_out) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A time (ms since the epoch) as `YYYY-MM-DD HH:MM` UTC; empty for 0.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// A capture time as written in evidence (RFC 3339, the camera's own offset) shown to the
/// minute in that offset: `2026-11-24 13:35 (+07:00)`; anything unparsable as it is.
pub fn captured(rfc3339: &str) -> String {
    let format = time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(rfc3339, &format) {
        Ok(t) => {
            let offset = t.offset();
            let sign = if offset.is_negative() { '-' } else { '+' };
            format!(
                "{}-{:02}-{:02} {:02}:{:02} ({sign}{:02}:{:02})",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                offset.whole_hours().unsigned_abs(),
                offset.minutes_past_hour().unsigned_abs(),
            )
        }
        Err(_) => rfc3339.to_owned(),
    }
}

/// A status badge.
pub fn badge(lang: Lang, status: Status) -> Markup {
    html! { span class={ "badge s-" (status.as_str()) } { (lang.texts().status(status)) } }
}

/// A progress bar with its counts: met / submitted / returned / not started, out of N.
pub fn progress(lang: Lang, p: &Progress) -> Markup {
    let t = lang.texts();
    let total = p.total.max(1) as f64;
    let width = |n: u32| format!("width:{:.1}%", f64::from(n) * 100.0 / total);
    let not_started = p.not_started + p.in_progress;
    html! {
        div.bar role="img" aria-label=(p.to_string()) {
            span.s-approved style=(width(p.approved)) {}
            span.s-submitted style=(width(p.submitted)) {}
            span.s-returned style=(width(p.returned)) {}
            span.s-in_progress style=(width(p.in_progress)) {}
        }
        div.muted {
            (p.approved) "/" (p.total) " " (t.met) " · "
            (p.submitted) " " (t.submitted) " · "
            (p.returned) " " (t.returned) " · "
            (not_started) " " (t.not_started)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_bars_render() {
        assert_eq!(time(0), "");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13 UTC");
        let p = Progress::count([Status::Approved, Status::Submitted, Status::NotStarted]);
        let html = progress(Lang::En, &p).into_string();
        assert!(html.contains("1/3 met"), "{html}");
        assert!(html.contains("width:33.3%"), "{html}");
    }

    #[test]
    fn capture_times_keep_the_camera_offset() {
        assert_eq!(
            captured("2026-11-24T13:35:44.882+07:00"),
            "2026-11-24 13:35 (+07:00)"
        );
        assert_eq!(
            captured("2026-11-24T06:35:44Z"),
            "2026-11-24 06:35 (+00:00)"
        );
        assert_eq!(captured("yesterday"), "yesterday");
    }

    #[test]
    fn values_are_escaped() {
        let html = page(Lang::Vi, None, "<script>", html! { "x" }).into_string();
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("lang=\"vi\""));
    }
}
