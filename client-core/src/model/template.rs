//! Criteria templates: the versioned set of criteria (bộ tiêu chí) a ward police unit
//! assesses itself against.
//!
//! A template is data: real deployments load the official set as JSON with
//! [`Template::from_json`], which checks its shape and its consistency and names the
//! offending field and line on failure. Two illustrative samples ship with the crate
//! ([`sample_templates`]); they are not the official wording.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A text in Vietnamese and English. Both must be non-blank.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    /// The Vietnamese text, as in the official set.
    pub vi: String,
    /// The English text.
    pub en: String,
}

impl Localized {
    /// A text from its Vietnamese and English forms.
    pub fn new(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            vi: vi.into(),
            en: en.into(),
        }
    }
}

/// Who carries a criterion out: the ward police themselves, or the Party committee and
/// local government of the ward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The ward police unit.
    Police,
    /// The ward's Party committee and People's Committee.
    LocalGovernment,
}

impl Owner {
    /// The name used in JSON: `"police"` or `"local_government"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Police => "police",
            Owner::LocalGovernment => "local_government",
        }
    }
}

/// An area (lĩnh vực) that groups criteria, e.g. crime prevention.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Stable id, referred to by [`Criterion::area`].
    pub id: String,
    /// The area's name.
    pub title: Localized,
}

/// One criterion (tiêu chí) of a template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Stable id, e.g. `"c07"`: the same criterion keeps it across template versions.
    pub id: String,
    /// The number as printed in the official set, e.g. `"7"`.
    pub code: String,
    /// The id of one of the template's [`Area`]s.
    pub area: String,
    /// The criterion as the official set words it.
    pub title: Localized,
    /// What evidence shows the criterion is met.
    pub guidance: Localized,
    /// The minimum number of photos a dossier for this criterion needs.
    pub min_photos: u32,
    /// Who carries it out.
    pub owner: Owner,
}

/// A versioned criteria set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Stable id of the set, e.g. `"model-ward-antt"`; its versions share it.
    pub id: String,
    /// The version (not 0), e.g. the year the set took effect; a revision gets a higher one.
    pub version: u32,
    /// The set's name.
    pub title: Localized,
    /// Where the set comes from and what it is for.
    pub description: Localized,
    /// The areas that group the criteria, in display order.
    pub areas: Vec<Area>,
    /// The criteria, in the official order.
    pub criteria: Vec<Criterion>,
}

/// Names one version of one template; shown as `id@version`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TemplateKey {
    /// The template's id.
    pub id: String,
    /// Its version.
    pub version: u32,
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// Why a template text was refused. Every variant names the field by its path, e.g.
/// `criteria[3].min_photos` (empty for the document as a whole).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Not JSON, or not shaped like a template: a wrong type, an unknown or a missing
    /// field, trailing text. `line` and `column` (1-based) are where the parser stopped.
    #[error("{}: {message}", syntax_place(path, *line, *column))]
    Syntax {
        /// The field where the parser stopped.
        path: String,
        /// Its line.
        line: usize,
        /// Its column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// Well-formed but inconsistent: a blank id or text, version 0, a duplicate, an
    /// unknown or unused area, no criteria. `line` is the 1-based line of the offending
    /// value when the template came from a text, `None` otherwise.
    #[error("{path} ({}): {reason}", invalid_line(*line))]
    Invalid {
        /// The offending field.
        path: String,
        /// Its line, when known.
        line: Option<usize>,
        /// What is wrong with it.
        reason: String,
    },
}

fn syntax_place(path: &str, line: usize, column: usize) -> String {
    if path.is_empty() {
        format!("line {line}, column {column}")
    } else {
        format!("{path} (line {line}, column {column})")
    }
}

fn invalid_line(line: Option<usize>) -> String {
    match line {
        Some(line) => format!("line {line}"),
        None => "line not known".to_owned(),
    }
}

impl TemplateError {
    /// The path of the offending field.
    pub fn path(&self) -> &str {
        match self {
            TemplateError::Syntax { path, .. } | TemplateError::Invalid { path, .. } => path,
        }
    }

    /// The 1-based line of the offending field, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            TemplateError::Syntax { line, .. } => Some(*line),
            TemplateError::Invalid { line, .. } => *line,
        }
    }

    fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        TemplateError::Invalid {
            path: path.into(),
            line: None,
            reason: reason.into(),
        }
    }
}

impl Template {
    /// Parses and validates a template from its JSON text.
    pub fn from_json(text: &str) -> Result<Template, TemplateError> {
        let template = parse(text)?;
        template.validate().map_err(|err| match err {
            TemplateError::Invalid {
                path,
                line: None,
                reason,
            } => {
                let line = line_of_path(text, &path);
                TemplateError::Invalid { path, line, reason }
            }
            other => other,
        })?;
        Ok(template)
    }

    /// Checks the template's consistency (what [`Template::from_json`] checks after
    /// parsing). Returns the first problem in document order, with `line: None`.
    pub fn validate(&self) -> Result<(), TemplateError> {
        check_id("id", &self.id)?;
        if self.version == 0 {
            return Err(TemplateError::invalid(
                "version",
                "version must be 1 or more",
            ));
        }
        check_text("title", &self.title)?;
        check_text("description", &self.description)?;

        let mut area_ids = HashSet::new();
        for (i, area) in self.areas.iter().enumerate() {
            check_id(&format!("areas[{i}].id"), &area.id)?;
            if !area_ids.insert(area.id.as_str()) {
                return Err(TemplateError::invalid(
                    format!("areas[{i}].id"),
                    format!("duplicate area id {:?}", area.id),
                ));
            }
            check_text(&format!("areas[{i}].title"), &area.title)?;
        }

        if self.criteria.is_empty() {
            return Err(TemplateError::invalid(
                "criteria",
                "a template needs at least one criterion",
            ));
        }
        let mut ids = HashSet::new();
        let mut codes = HashSet::new();
        for (i, criterion) in self.criteria.iter().enumerate() {
            let at = |field: &str| format!("criteria[{i}].{field}");
            check_id(&at("id"), &criterion.id)?;
            if !ids.insert(criterion.id.as_str()) {
                return Err(TemplateError::invalid(
                    at("id"),
                    format!("duplicate criterion id {:?}", criterion.id),
                ));
            }
            check_id(&at("code"), &criterion.code)?;
            if !codes.insert(criterion.code.as_str()) {
                return Err(TemplateError::invalid(
                    at("code"),
                    format!("duplicate criterion code {:?}", criterion.code),
                ));
            }
            if !area_ids.contains(criterion.area.as_str()) {
                return Err(TemplateError::invalid(
                    at("area"),
                    format!("unknown area {:?}", criterion.area),
                ));
            }
            check_text(&at("title"), &criterion.title)?;
            check_text(&at("guidance"), &criterion.guidance)?;
        }

        for (i, area) in self.areas.iter().enumerate() {
            if !self.criteria.iter().any(|c| c.area == area.id) {
                return Err(TemplateError::invalid(
                    format!("areas[{i}].id"),
                    format!("area {:?} has no criteria", area.id),
                ));
            }
        }
        Ok(())
    }

    /// The criterion with this stable id.
    pub fn criterion(&self, id: &str) -> Option<&Criterion> {
        self.criteria.iter().find(|c| c.id == id)
    }

    /// The template's id and version.
    pub fn key(&self) -> TemplateKey {
        TemplateKey {
            id: self.id.clone(),
            version: self.version,
        }
    }

    /// The template as pretty-printed JSON that [`Template::from_json`] reads back.
    /// Object keys come out sorted, so equal templates give equal texts.
    pub fn to_json(&self) -> String {
        // Built as a `Value` by hand rather than through `serde_json::to_string_pretty`,
        // whose `Result` would need an `expect`: this way it cannot fail. A test pins it
        // to the derived `Serialize`.
        format!("{:#}", template_value(self))
    }
}

fn check_id(path: &str, id: &str) -> Result<(), TemplateError> {
    if id.trim().is_empty() {
        Err(TemplateError::invalid(path, "must not be empty"))
    } else if id.trim() != id {
        Err(TemplateError::invalid(
            path,
            format!("{id:?} must not start or end with spaces"),
        ))
    } else {
        Ok(())
    }
}

fn check_text(path: &str, text: &Localized) -> Result<(), TemplateError> {
    if text.vi.trim().is_empty() {
        return Err(TemplateError::invalid(
            format!("{path}.vi"),
            "the Vietnamese text is missing",
        ));
    }
    if text.en.trim().is_empty() {
        return Err(TemplateError::invalid(
            format!("{path}.en"),
            "the English text is missing",
        ));
    }
    Ok(())
}

/// JSON and shape: serde_json with the path of the failing field.
fn parse(text: &str) -> Result<Template, TemplateError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let template: Template = serde_path_to_error::deserialize(&mut de)
        .map_err(|err| syntax_error(field_path(err.path()), err.inner()))?;
    de.end().map_err(|err| syntax_error(String::new(), &err))?;
    Ok(template)
}

/// A path as `criteria[3].min_photos`; the root is empty. Segments serde could not name
/// (a key that is not a string) are left out: the line and column still place them.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn syntax_error(mut path: String, err: &serde_json::Error) -> TemplateError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    // serde reports a missing field on the object that lacks it: name the field itself.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field);
    }
    TemplateError::Syntax {
        path,
        line,
        column,
        message,
    }
}

/// The 1-based line where the value at `path` (as [`field_path`] and
/// [`Template::validate`] write it, e.g. `criteria[3].title.vi`) starts in `text`, a
/// JSON text that serde_json accepted.
fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let mut walker = Walker {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
        lines: HashMap::new(),
    };
    // A malformed text only loses the paths after the fault; what was found still holds.
    let _ = walker.value(&mut String::new(), 0);
    walker.lines.get(path).copied()
}

/// Records the line of every value of a JSON text under its path.
struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    lines: HashMap<String, usize>,
}

/// serde_json refuses deeper nesting anyway.
const MAX_DEPTH: usize = 256;

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_space();
        if self.peek()? != b {
            return None;
        }
        self.pos += 1;
        Some(())
    }

    fn value(&mut self, path: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        self.lines.entry(path.clone()).or_insert(self.line);
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.eat(b':')?;
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&key);
                    self.value(path, depth + 1)?;
                    path.truncate(len);
                    self.skip_space();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b'}' => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                for index in 0usize.. {
                    let len = path.len();
                    path.push_str(&format!("[{index}]"));
                    self.value(path, depth + 1)?;
                    path.truncate(len);
                    self.skip_space();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
                None
            }
            b'"' => self.string().map(drop),
            _ => {
                // A number, true, false or null.
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    /// A string starting at the cursor, unescaped.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        loop {
            match self.peek()? {
                b'\\' => self.pos += 2,
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        let raw = self.bytes.get(start..self.pos)?;
        serde_json::from_slice(raw).ok()
    }
}

fn localized_value(text: &Localized) -> Value {
    let mut map = Map::new();
    map.insert("vi".into(), text.vi.clone().into());
    map.insert("en".into(), text.en.clone().into());
    Value::Object(map)
}

fn area_value(area: &Area) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), area.id.clone().into());
    map.insert("title".into(), localized_value(&area.title));
    Value::Object(map)
}

fn criterion_value(criterion: &Criterion) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), criterion.id.clone().into());
    map.insert("code".into(), criterion.code.clone().into());
    map.insert("area".into(), criterion.area.clone().into());
    map.insert("title".into(), localized_value(&criterion.title));
    map.insert("guidance".into(), localized_value(&criterion.guidance));
    map.insert("min_photos".into(), criterion.min_photos.into());
    map.insert("owner".into(), criterion.owner.as_str().into());
    Value::Object(map)
}

fn template_value(template: &Template) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), template.id.clone().into());
    map.insert("version".into(), template.version.into());
    map.insert("title".into(), localized_value(&template.title));
    map.insert("description".into(), localized_value(&template.description));
    map.insert(
        "areas".into(),
        template.areas.iter().map(area_value).collect(),
    );
    map.insert(
        "criteria".into(),
        template.criteria.iter().map(criterion_value).collect(),
    );
    Value::Object(map)
}

/// The shipped sample files, by name.
const SAMPLES: [(&str, &str); 2] = [
    (
        "model-ward-2023.json",
        include_str!("../../templates/model-ward-2023.json"),
    ),
    (
        "model-ward-2024.json",
        include_str!("../../templates/model-ward-2024.json"),
    ),
];

/// The two illustrative samples that ship with the crate, oldest first: `model-ward-antt`
/// version 2023 (22 criteria, 2023 pilot style) and version 2024 (20 criteria). They are
/// built from the areas that press reports name, not from the official wording, and say
/// so in their title and description.
pub fn sample_templates() -> Vec<Template> {
    SAMPLES
        .iter()
        .map(|(name, text)| {
            // The files are compiled in and a test parses them: a failure here is a bug in
            // the shipped data, not a condition a caller could handle.
            Template::from_json(text)
                .unwrap_or_else(|err| panic!("shipped template {name} is invalid: {err}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MARKERS: [&str; 4] = [
        "Mẫu minh hoạ",
        "không phải văn bản chính thức",
        "Illustrative sample",
        "not the official wording",
    ];

    /// A small valid template, one field per line so that lines are easy to find.
    const VALID: &str = r#"{
  "id": "t",
  "version": 1,
  "title": { "vi": "Mẫu thử", "en": "Test" },
  "description": { "vi": "Mô tả", "en": "Description" },
  "areas": [
    { "id": "a1", "title": { "vi": "Lĩnh vực 1", "en": "Area 1" } },
    { "id": "a2", "title": { "vi": "Lĩnh vực 2", "en": "Area 2" } }
  ],
  "criteria": [
    {
      "id": "c01",
      "code": "1",
      "area": "a1",
      "title": { "vi": "Tiêu chí 1", "en": "Criterion 1" },
      "guidance": { "vi": "Ảnh trụ sở", "en": "Photo of the headquarters" },
      "min_photos": 2,
      "owner": "police"
    },
    {
      "id": "c02",
      "code": "2",
      "area": "a2",
      "title": { "vi": "Tiêu chí 2", "en": "Criterion 2" },
      "guidance": { "vi": "Nghị quyết", "en": "The resolution" },
      "min_photos": 0,
      "owner": "local_government"
    }
  ]
}"#;

    /// `VALID` with the first occurrence of `from` replaced; panics if absent, so a
    /// test can't silently test the valid text.
    fn with(from: &str, to: &str) -> String {
        assert!(VALID.contains(from), "{from:?} not in VALID");
        VALID.replacen(from, to, 1)
    }

    /// The 1-based line of the first occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text.find(needle).expect("needle in text");
        text[..at].matches('\n').count() + 1
    }

    fn invalid(text: &str) -> (String, Option<usize>, String) {
        match Template::from_json(text) {
            Err(TemplateError::Invalid { path, line, reason }) => (path, line, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn syntax(text: &str) -> (String, usize, usize, String) {
        match Template::from_json(text) {
            Err(TemplateError::Syntax {
                path,
                line,
                column,
                message,
            }) => (path, line, column, message),
            other => panic!("expected Syntax, got {other:?}"),
        }
    }

    #[test]
    fn valid_inline_template_parses() {
        let t = Template::from_json(VALID).unwrap();
        assert_eq!(t.key().to_string(), "t@1");
        assert_eq!(t.criteria.len(), 2);
        assert_eq!(t.criteria[1].owner, Owner::LocalGovernment);
        assert_eq!(t.criterion("c02").map(|c| c.code.as_str()), Some("2"));
        assert_eq!(t.criterion("c99"), None);
    }

    #[test]
    fn samples_parse_with_their_counts() {
        let samples = sample_templates();
        let keys: Vec<String> = samples.iter().map(|t| t.key().to_string()).collect();
        assert_eq!(keys, ["model-ward-antt@2023", "model-ward-antt@2024"]);
        assert_eq!(samples[0].criteria.len(), 22);
        assert_eq!(samples[1].criteria.len(), 20);
        for (name, text) in SAMPLES {
            Template::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn samples_have_unique_ids_and_codes_and_use_every_area() {
        for t in sample_templates() {
            let ids: HashSet<_> = t.criteria.iter().map(|c| &c.id).collect();
            let codes: HashSet<_> = t.criteria.iter().map(|c| &c.code).collect();
            assert_eq!(ids.len(), t.criteria.len(), "{}", t.key());
            assert_eq!(codes.len(), t.criteria.len(), "{}", t.key());
            let used: HashSet<_> = t.criteria.iter().map(|c| c.area.as_str()).collect();
            let areas: HashSet<_> = t.areas.iter().map(|a| a.id.as_str()).collect();
            assert_eq!(used, areas, "{}", t.key());
            // Codes are printed 1..n in order.
            for (n, c) in t.criteria.iter().enumerate() {
                assert_eq!(c.code, (n + 1).to_string(), "{}", t.key());
                assert!(c.min_photos <= 3, "{} {}", t.key(), c.id);
            }
            assert!(t.criteria.iter().any(|c| c.owner == Owner::LocalGovernment));
            assert!(t.criteria.iter().any(|c| c.owner == Owner::Police));
        }
    }

    #[test]
    fn samples_say_they_are_illustrative() {
        for t in sample_templates() {
            for text in [&t.title, &t.description] {
                for marker in &MARKERS[..2] {
                    assert!(text.vi.contains(marker), "{}: {:?}", t.key(), text.vi);
                }
                for marker in &MARKERS[2..] {
                    assert!(text.en.contains(marker), "{}: {:?}", t.key(), text.en);
                }
            }
        }
    }

    #[test]
    fn samples_keep_stable_ids_across_versions() {
        let samples = sample_templates();
        let ids =
            |t: &Template| -> HashSet<String> { t.criteria.iter().map(|c| c.id.clone()).collect() };
        let (old, new) = (ids(&samples[0]), ids(&samples[1]));
        let mut only_old: Vec<_> = old.difference(&new).cloned().collect();
        let mut only_new: Vec<_> = new.difference(&old).cloned().collect();
        only_old.sort();
        only_new.sort();
        assert_eq!(only_old, ["c07", "c08", "c19"]);
        assert_eq!(only_new, ["c23"]);
        // The same idea in both: the camera criterion, with its code moved.
        let (a, b) = (
            samples[0].criterion("c14").unwrap(),
            samples[1].criterion("c14").unwrap(),
        );
        assert_eq!(
            (a.title.clone(), a.area.clone()),
            (b.title.clone(), b.area.clone())
        );
        assert_ne!(a.code, b.code);
    }

    #[test]
    fn round_trip_is_equal() {
        let mut all = sample_templates();
        all.push(Template::from_json(VALID).unwrap());
        for t in all {
            let text = t.to_json();
            assert_eq!(Template::from_json(&text).unwrap(), t);
            assert!(text.contains("\n  "), "pretty");
        }
    }

    #[test]
    fn to_json_matches_derived_serialize() {
        for t in sample_templates() {
            let derived = serde_json::to_value(&t).unwrap();
            let by_hand: Value = serde_json::from_str(&t.to_json()).unwrap();
            assert_eq!(by_hand, derived);
        }
    }

    #[test]
    fn template_key_display_order_and_serde() {
        let a = TemplateKey {
            id: "model-ward-antt".into(),
            version: 2023,
        };
        let b = TemplateKey {
            version: 2024,
            ..a.clone()
        };
        assert_eq!(b.to_string(), "model-ward-antt@2024");
        assert!(a < b);
        let back: TemplateKey = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(back, b);
        assert_eq!(HashSet::from([a.clone(), a.clone(), b]).len(), 2);
    }

    #[test]
    fn empty_id_is_invalid() {
        let text = with(r#""id": "t""#, r#""id": " ""#);
        assert_eq!(
            invalid(&text),
            ("id".into(), Some(2), "must not be empty".into())
        );
        let text = with(r#""id": "c02""#, r#""id": """#);
        let (path, line, _) = invalid(&text);
        assert_eq!(
            (path.as_str(), line),
            ("criteria[1].id", Some(line_of(&text, r#""id": """#)))
        );
    }

    #[test]
    fn version_zero_is_invalid() {
        let text = with(r#""version": 1"#, r#""version": 0"#);
        let (path, line, reason) = invalid(&text);
        assert_eq!((path.as_str(), line), ("version", Some(3)));
        assert!(reason.contains("1 or more"), "{reason}");
    }

    #[test]
    fn duplicate_criterion_id_is_invalid() {
        let text = with(r#""id": "c02""#, r#""id": "c01""#);
        let (path, line, reason) = invalid(&text);
        assert_eq!(path, "criteria[1].id");
        assert_eq!(line, Some(21));
        assert_eq!(reason, r#"duplicate criterion id "c01""#);
    }

    #[test]
    fn duplicate_code_is_invalid() {
        let text = with(r#""code": "2""#, r#""code": "1""#);
        let (path, line, reason) = invalid(&text);
        assert_eq!((path.as_str(), line), ("criteria[1].code", Some(22)));
        assert_eq!(reason, r#"duplicate criterion code "1""#);
    }

    #[test]
    fn unknown_area_is_invalid_and_displays_path_and_line() {
        let text = with(r#""area": "a2""#, r#""area": "x9""#);
        let err = Template::from_json(&text).unwrap_err();
        assert_eq!(err.path(), "criteria[1].area");
        assert_eq!(err.line(), Some(23));
        assert_eq!(
            err.to_string(),
            r#"criteria[1].area (line 23): unknown area "x9""#
        );
    }

    #[test]
    fn area_without_criteria_is_invalid() {
        let text = with(
            r#"    { "id": "a2", "#,
            r#"    { "id": "a3", "title": { "vi": "Ba", "en": "Three" } },
    { "id": "a2", "#,
        );
        let (path, line, reason) = invalid(&text);
        assert_eq!((path.as_str(), line), ("areas[1].id", Some(8)));
        assert_eq!(reason, r#"area "a3" has no criteria"#);
    }

    #[test]
    fn duplicate_area_id_is_invalid() {
        let text = with(r#"{ "id": "a2", "#, r#"{ "id": "a1", "#);
        let (path, line, _) = invalid(&text);
        assert_eq!((path.as_str(), line), ("areas[1].id", Some(8)));
    }

    #[test]
    fn missing_vi_or_en_text_is_invalid() {
        let text = with(r#""vi": "Tiêu chí 2""#, r#""vi": """#);
        let (path, line, reason) = invalid(&text);
        assert_eq!((path.as_str(), line), ("criteria[1].title.vi", Some(24)));
        assert_eq!(reason, "the Vietnamese text is missing");

        let text = with(r#""en": "Description""#, r#""en": "  ""#);
        let (path, line, reason) = invalid(&text);
        assert_eq!((path.as_str(), line), ("description.en", Some(5)));
        assert_eq!(reason, "the English text is missing");

        let text = with(r#""en": "Area 1""#, r#""en": """#);
        assert_eq!(invalid(&text).0, "areas[0].title.en");
    }

    #[test]
    fn missing_text_field_is_a_syntax_error_naming_it() {
        let text = with(r#", "en": "Photo of the headquarters""#, "");
        let (path, line, _, message) = syntax(&text);
        assert_eq!(path, "criteria[0].guidance.en");
        assert_eq!(line, line_of(&text, r#""guidance""#));
        assert_eq!(message, "missing field `en`");
    }

    #[test]
    fn no_criteria_is_invalid() {
        let start = VALID.find(r#""criteria": ["#).unwrap();
        let text = format!("{}\"criteria\": []\n}}", &VALID[..start]);
        let (path, line, reason) = invalid(&text);
        assert_eq!((path.as_str(), line), ("criteria", Some(10)));
        assert!(reason.contains("at least one criterion"), "{reason}");
    }

    #[test]
    fn unknown_field_is_refused_with_its_path_and_line() {
        let text = with(
            r#""min_photos": 0,"#,
            r#""min_photos": 0, "photos_max": 3,"#,
        );
        let (path, line, column, message) = syntax(&text);
        assert_eq!(path, "criteria[1].photos_max");
        assert_eq!(line, 26);
        assert!(column > 0);
        assert!(
            message.starts_with("unknown field `photos_max`"),
            "{message}"
        );

        let text = with(r#""id": "t","#, r#""id": "t", "extra": true,"#);
        assert_eq!(syntax(&text).0, "extra");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = with(r#""min_photos": 2"#, r#""min_photos": "two""#);
        let (path, line, column, message) = syntax(&text);
        assert_eq!((path.as_str(), line), ("criteria[0].min_photos", 17));
        assert!(column > 0);
        assert!(message.contains("expected u32"), "{message}");
        let err = Template::from_json(&text).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "criteria[0].min_photos (line 17, column {column}): "
            )),
            "{err}"
        );

        let text = with(r#""min_photos": 2"#, r#""min_photos": -1"#);
        assert_eq!(syntax(&text).0, "criteria[0].min_photos");
    }

    #[test]
    fn unknown_owner_is_refused() {
        let text = with(r#""owner": "police""#, r#""owner": "army""#);
        let (path, line, _, message) = syntax(&text);
        assert_eq!((path.as_str(), line), ("criteria[0].owner", 18));
        assert!(message.contains("local_government"), "{message}");
    }

    #[test]
    fn garbage_is_a_syntax_error_with_line_and_column() {
        let (path, line, column, message) = syntax("{\n  \"id\": \"t\",\n  oops\n}");
        assert_eq!((path.as_str(), line, column), ("", 3, 3));
        assert!(!message.contains(" at line "), "{message}");
        let err = Template::from_json("{\n  \"id\": \"t\",\n  oops\n}").unwrap_err();
        assert!(err.to_string().starts_with("line 3, column 3: "), "{err}");

        let (path, line, _, _) = syntax("not json at all");
        assert_eq!((path.as_str(), line), ("", 1));
        assert!(matches!(
            Template::from_json(""),
            Err(TemplateError::Syntax { line: 1, .. })
        ));
        let (path, line, _, message) = syntax(&format!("{VALID}\n]"));
        assert_eq!((path.as_str(), line), ("", 31));
        assert!(message.contains("trailing"), "{message}");
    }

    #[test]
    fn validate_without_text_says_the_line_is_not_known() {
        let mut t = Template::from_json(VALID).unwrap();
        t.criteria[0].area = "x9".into();
        let err = t.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"criteria[0].area (line not known): unknown area "x9""#
        );
    }

    #[test]
    fn line_of_path_finds_escaped_keys_and_nested_values() {
        let text = "{\"a\\u0062\": [1,\n {\"c\": \"x\\\"y\"},\n null]}";
        assert_eq!(line_of_path(text, "ab"), Some(1));
        assert_eq!(line_of_path(text, "ab[1].c"), Some(2));
        assert_eq!(line_of_path(text, "ab[2]"), Some(3));
        assert_eq!(line_of_path(text, "ab[3]"), None);
        assert_eq!(line_of_path("{\"a\": [", "a"), Some(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = Template::from_json(&text).map_err(|e| e.to_string());
        }

        #[test]
        fn mutated_template_never_panics(
            sample in 0usize..3,
            at in any::<prop::sample::Index>(),
            cut in 0usize..8,
            insert in "[\\[\\]{}\":,0-9a-z \\n\\\\]{0,4}",
        ) {
            let source = [SAMPLES[0].1, SAMPLES[1].1, VALID][sample];
            let chars: Vec<char> = source.chars().collect();
            let i = at.index(chars.len());
            let end = (i + cut).min(chars.len());
            let text: String = chars[..i]
                .iter()
                .chain(insert.chars().collect::<Vec<_>>().iter())
                .chain(&chars[end..])
                .collect();
            match Template::from_json(&text) {
                Ok(t) => prop_assert_eq!(Template::from_json(&t.to_json()).unwrap(), t),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
