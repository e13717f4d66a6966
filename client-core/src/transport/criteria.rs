//! Criteria sets the relay publishes, received at sync: the listing on the sync
//! connection names each by its SHA-256 (see [`crate::sync::listing`]); a set this phone
//! lacks is downloaded (`GET /v1/criteria-sets/{id}/{version}`, at most
//! [`MAX_CRITERIA_SET_BYTES`]), checked against that name and its key, and installed, up
//! to [`MAX_INSTALLED_TEMPLATES`] sets in all and [`MAX_SET_DOWNLOADS_PER_SYNC`] a sync. An
//! unchanged listing costs nothing more.

use std::io::Read;

use super::{Relay, SyncObserver, SyncReport, TransportError, http_error};
use crate::Workspace;
use crate::blob::BlobHash;
use crate::model::{Template, TemplateKey};
use crate::sync::listing::ListedSet;

/// The largest criteria set a phone takes, as JSON (the relay publishes none larger).
pub const MAX_CRITERIA_SET_BYTES: u64 = 256 * 1024;

/// Most criteria sets a phone holds (the programme has a handful): past it, it takes no
/// more from a relay.
pub const MAX_INSTALLED_TEMPLATES: usize = 100;

/// Most criteria sets downloaded in one sync (the rest wait for the next): a relay
/// listing many that are not what it says costs a bounded download each time.
pub const MAX_SET_DOWNLOADS_PER_SYNC: usize = 16;

/// Keeps which sets the listing held for `relay` publishes and retires, and installs
/// those this phone lacks, each retried as `relay` says. A set that is not what the
/// listing names (or has an id no URL carries as it is) is refused, logged and never
/// downloaded again; one the relay fails to serve is left for the next sync. Only a link
/// that gives out, a cancel or a local failure ends the call with an error.
pub(super) fn receive_sets(
    workspace: &Workspace,
    relay: &Relay,
    observer: &dyn SyncObserver,
    report: &mut SyncReport,
) -> Result<(), TransportError> {
    let Some(listing) = workspace.relay_listing(&relay.base)? else {
        return Ok(());
    };
    workspace.save_published_sets(&listing.sets)?;
    let refused = workspace.refused_contents(&relay.base)?;
    let mut downloads = 0;
    for set in &listing.sets {
        let key = TemplateKey {
            id: set.id.clone(),
            version: set.version,
        };
        if workspace.has_template(&key) || refused.contains(&set.hash) {
            continue;
        }
        if workspace.templates().len() >= MAX_INSTALLED_TEMPLATES
            || downloads == MAX_SET_DOWNLOADS_PER_SYNC
        {
            tracing::warn!("criteria sets held or downloaded past their bound: no more now");
            break;
        }
        downloads += 1;
        if observer.is_cancelled() {
            return Err(TransportError::Cancelled);
        }
        let taken = if !plain_id(&set.id) {
            Err("an id no URL carries as it is".to_owned())
        } else {
            match relay.retry(observer, || download(relay, observer, set)) {
                Ok(bytes) => checked(set, &key, &bytes),
                Err(e @ TransportError::Http { .. }) if e.is_transient() => {
                    tracing::warn!("criteria set {} {}: {e}", set.id, set.version);
                    continue;
                }
                Err(e @ TransportError::Http { .. }) => Err(e.to_string()),
                Err(e) => return Err(e),
            }
        };
        match taken {
            Ok(json) => {
                workspace.install_template(&json)?;
                report.criteria_sets_received += 1;
            }
            Err(reason) => {
                tracing::warn!("criteria set {} {} refused: {reason}", set.id, set.version);
                workspace.refuse_content(&relay.base, &set.hash)?;
            }
        }
    }
    Ok(())
}

/// Whether a set id goes into a URL as it is: ASCII letters, digits, `.`, `_`, `-`.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && (id.bytes()).all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The body of the listed `set`'s download, read up to one byte past
/// [`MAX_CRITERIA_SET_BYTES`].
fn download(
    relay: &Relay,
    observer: &dyn SyncObserver,
    set: &ListedSet,
) -> Result<Vec<u8>, TransportError> {
    let path = format!("/v1/criteria-sets/{}/{}", set.id, set.version);
    let (url, bearer) = (relay.url(&path), relay.bearer());
    relay.http(observer, move |agent| {
        let mut response = agent.get(&url).header("Authorization", &bearer).call()?;
        match response.status().as_u16() {
            200 => {
                let mut bytes = Vec::new();
                let body = response.body_mut().as_reader();
                (body
                    .take(MAX_CRITERIA_SET_BYTES + 1)
                    .read_to_end(&mut bytes))
                .map_err(|e| TransportError::Network(e.to_string()))?;
                Ok(bytes)
            }
            status => Err(http_error(status, &mut response)),
        }
    })
}

/// The set's JSON if `bytes` are what the listing names: at most
/// [`MAX_CRITERIA_SET_BYTES`], its SHA-256, a template with its key.
fn checked(set: &ListedSet, key: &TemplateKey, bytes: &[u8]) -> Result<String, String> {
    if bytes.len() as u64 > MAX_CRITERIA_SET_BYTES {
        return Err(format!("larger than {MAX_CRITERIA_SET_BYTES} bytes"));
    }
    if BlobHash::of(bytes) != set.hash {
        return Err("not the content the listing names".into());
    }
    let json = String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8".to_owned())?;
    let template = Template::from_json(&json).map_err(|e| e.to_string())?;
    if template.key() != *key {
        return Err("another set than the one listed".into());
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HeldListing;
    use crate::model::sample_templates;
    use crate::transport::scripted::{answer, scripted_relay};

    /// A relay stand-in answering every request with `body`, and a workspace holding its
    /// listing of `set`.
    fn listed(body: Vec<u8>, set: ListedSet) -> (Relay, tempfile::TempDir, Workspace) {
        let (relay, _) = scripted_relay(move |_| answer("200 OK", "", body.len(), &body));
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let listing = HeldListing {
            tag: "00".into(),
            documents: Vec::new(),
            sets: vec![set],
        };
        ws.save_relay_listing(&relay.base, Some(&listing)).unwrap();
        (relay, dir, ws)
    }

    fn official() -> Template {
        let mut set = sample_templates().remove(1);
        set.version = 2026;
        set
    }

    #[test]
    fn a_listed_set_is_installed_once_and_marked_published() {
        let json = official().to_json();
        let set = ListedSet {
            id: official().id,
            version: 2026,
            hash: BlobHash::of(json.as_bytes()),
            retired: false,
        };
        let (relay, _dir, ws) = listed(json.into_bytes(), set);
        let mut report = SyncReport::default();
        receive_sets(&ws, &relay, &(), &mut report).unwrap();
        assert_eq!(report.criteria_sets_received, 1);
        let installed = ws.installed_templates().unwrap();
        let new = (installed.iter())
            .find(|t| t.template.version == 2026)
            .unwrap();
        assert!(new.published && !new.sample && !new.retired);
        receive_sets(&ws, &relay, &(), &mut report).unwrap();
        assert_eq!(report.criteria_sets_received, 1, "not fetched again");
    }

    #[test]
    fn a_set_that_is_not_what_the_listing_names_is_left_out_and_the_sync_goes_on() {
        let json = official().to_json();
        let listed_as = |content: &[u8]| ListedSet {
            id: official().id,
            version: 2026,
            hash: BlobHash::of(content),
            retired: false,
        };
        // Other content than the listing names; another set under the listed name; more
        // than a set may weigh.
        let mut other = official();
        other.version = 2027;
        let huge = vec![b' '; MAX_CRITERIA_SET_BYTES as usize + 10];
        let cases = [
            (json.clone().into_bytes(), listed_as(b"something else")),
            (
                other.to_json().into_bytes(),
                listed_as(other.to_json().as_bytes()),
            ),
            (huge.clone(), listed_as(&huge)),
        ];
        let odd_id = ListedSet {
            id: "model ward/../x".into(),
            ..listed_as(json.as_bytes())
        };
        for (body, set) in cases
            .into_iter()
            .chain([(json.clone().into_bytes(), odd_id)])
        {
            let hash = set.hash;
            let (relay, _dir, ws) = listed(body, set);
            let mut report = SyncReport::default();
            receive_sets(&ws, &relay, &(), &mut report).unwrap();
            assert_eq!(report.criteria_sets_received, 0);
            assert_eq!(ws.templates().len(), 2, "only the samples");
            // Refused: never downloaded again.
            assert_eq!(ws.refused_contents(&relay.base).unwrap(), [hash]);
        }
    }
}
