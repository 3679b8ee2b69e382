//! Reference model of contactdb's bulk upsert, written straight from
//! `SPEC.md` (R2–R15, R21) and `docs/semantics.md`.
//!
//! It shares nothing with the engine but the request and report *types*: its own
//! column-name canonicalization, its own value normalization, its own request-level
//! checks (R5) and a plain sequential apply (R6) over an in-memory map. Clarity over
//! speed: linear scans everywhere.
//!
//! Decisions the documents leave open are marked `// OPEN:` with the choice taken.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use contactdb_policy::column::{ColumnSpec, ColumnType};
use contactdb_policy::report::{
    ErrorCode, MatchedBy, Outcome, RecordError, RecordResult, Report, Status, Summary, Warning,
    WarningCode,
};
use contactdb_policy::request::{BulkRequest, EmptyValues, MatchOn, Mode, OnDuplicate, OnInvalid};
use serde_json::{Map, Value as Json};

#[cfg(test)]
mod unit;

/// A stored contact as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContact {
    /// `contact_key`.
    pub key: String,
    /// Every set column except `contact_key`, by canonical name, as JSON.
    pub columns: BTreeMap<String, Json>,
    /// Aliases in the order they were added (R9).
    pub aliases: Vec<String>,
    /// 1 on insert, +1 per applied changing record.
    pub version: u64,
}

/// How a column's values are normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Key,
    Text(usize),
    Email,
    Phone,
    Status,
    Bool,
    Date,
    Priority,
    Integer,
    Json,
}

/// A column of the catalog.
#[derive(Debug, Clone)]
struct Col {
    name: String,
    /// Position for ordering errors and warnings: R2's order, `new_contact_key`
    /// after `metadata`, then custom columns by declaration.
    rank: usize,
    ty: Ty,
    import_enabled: bool,
    required: bool,
}

/// R2's predefined columns, in R2's order.
const PREDEFINED: [(&str, Ty); 16] = [
    ("contact_key", Ty::Key),
    ("name", Ty::Text(100)),
    ("surname", Ty::Text(100)),
    ("gender", Ty::Text(100)),
    ("email", Ty::Email),
    ("email_permit", Ty::Bool),
    ("gsm_permit", Ty::Bool),
    ("email_status", Ty::Status),
    ("gsm_status", Ty::Status),
    ("status", Ty::Status),
    ("gsm", Ty::Phone),
    ("birthday", Ty::Date),
    ("subscription_start", Ty::Date),
    ("priority", Ty::Priority),
    ("metadata", Ty::Json),
    // OPEN: the pseudo-column sorts after metadata, before custom columns.
    ("new_contact_key", Ty::Key),
];

/// R2's aliases of the customer-import / bulk-add names (after snake_case).
const NAME_ALIASES: [(&str, &str); 4] = [
    ("identifier", "contact_key"),
    ("phone_number", "gsm"),
    ("first_name", "name"),
    ("last_name", "surname"),
];

/// System fields: read-only in a request.
const SYSTEM_FIELDS: [&str; 4] = ["aliases", "version", "created_at", "updated_at"];

const KEY_BYTES_MAX: usize = 255;
const EMAIL_CHARS_MAX: usize = 255;
const JSON_BYTES_MAX: usize = 65_536;
const PRIORITY_DEFAULT: u64 = 5;

/// What a column name resolves to.
#[derive(Debug)]
enum Resolved {
    Col(usize),
    Unknown,
    ReadOnly,
    NotImportEnabled,
}

/// semantics.md "Column names": trim, ASCII only, snake_case.
fn snake_case(raw: &str) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() || !t.is_ascii() {
        return None;
    }
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for c in t.chars() {
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push('_');
        }
        if c == ' ' || c == '-' {
            out.push('_');
        } else {
            out.push(c.to_ascii_lowercase());
        }
        prev = Some(c);
    }
    Some(out)
}

/// A normalized input value.
#[derive(Debug, Clone, PartialEq)]
enum Norm {
    /// Null or empty: clears (or is ignored under `empty_values=ignore`).
    Empty,
    /// A value; `true` when its text changed (trimmed, lower-/upper-cased, reformatted).
    Set(Json, bool),
    Bad(ErrorCode),
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Keys (`contact_key`, `new_contact_key`).
fn norm_key(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                Norm::Empty
            } else if t.len() > KEY_BYTES_MAX {
                Norm::Bad(ErrorCode::TooLong)
            } else if has_control(t) {
                Norm::Bad(ErrorCode::InvalidKey)
            } else {
                Norm::Set(Json::String(t.to_owned()), t != s)
            }
        }
        // A JSON integer is written in decimal. OPEN: no value_normalized for it.
        Json::Number(n) if n.is_i64() || n.is_u64() => {
            Norm::Set(Json::String(n.to_string()), false)
        }
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

fn norm_text(v: &Json, max: usize) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                Norm::Empty
            } else if t.chars().any(|c| c.is_control() && c != '\t') {
                Norm::Bad(ErrorCode::InvalidType)
            } else if t.chars().count() > max {
                Norm::Bad(ErrorCode::TooLong)
            } else {
                Norm::Set(Json::String(t.to_owned()), t != s)
            }
        }
        // OPEN: numbers written in decimal carry no value_normalized warning.
        Json::Number(n) => {
            let t = n.to_string();
            if t.chars().count() > max {
                Norm::Bad(ErrorCode::TooLong)
            } else {
                Norm::Set(Json::String(t), false)
            }
        }
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

/// R2 email validity, on the trimmed, lower-cased text.
fn email_ok(e: &str) -> bool {
    let parts: Vec<&str> = e.split('@').collect();
    if parts.len() != 2 {
        return false;
    }
    let (local, domain) = (parts[0], parts[1]);
    let local_len = local.chars().count();
    if local_len == 0 || local_len > 64 || local.chars().any(char::is_whitespace) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    labels.iter().all(|l| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    })
}

fn norm_email(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Norm::Empty;
            }
            let low = t.to_lowercase();
            if low.chars().count() > EMAIL_CHARS_MAX {
                Norm::Bad(ErrorCode::TooLong)
            } else if !email_ok(&low) {
                Norm::Bad(ErrorCode::InvalidEmail)
            } else {
                let changed = low != *s;
                Norm::Set(Json::String(low), changed)
            }
        }
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

fn norm_phone(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Norm::Empty;
            }
            let stripped: String = t
                .chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect();
            let e164 = match stripped.strip_prefix("00") {
                Some(rest) => format!("+{rest}"),
                None => stripped,
            };
            let ok = match e164.strip_prefix('+') {
                Some(d) => {
                    (7..=15).contains(&d.len())
                        && d.chars().all(|c| c.is_ascii_digit())
                        && !d.starts_with('0')
                }
                None => false,
            };
            if ok {
                let changed = e164 != *s;
                Norm::Set(Json::String(e164), changed)
            } else {
                Norm::Bad(ErrorCode::InvalidPhone)
            }
        }
        // An integer has no `+`: always invalid_phone.
        Json::Number(_) => Norm::Bad(ErrorCode::InvalidPhone),
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

fn norm_status(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            let up = match t {
                "" => return Norm::Empty,
                "a" | "A" => "A",
                "p" | "P" => "P",
                _ => return Norm::Bad(ErrorCode::InvalidEnum),
            };
            Norm::Set(Json::String(up.to_owned()), up != s)
        }
        _ => Norm::Bad(ErrorCode::InvalidEnum),
    }
}

fn norm_bool(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::Bool(b) => Norm::Set(Json::Bool(*b), false),
        Json::Number(n) => match n.as_u64() {
            Some(0) => Norm::Set(Json::Bool(false), false),
            Some(1) => Norm::Set(Json::Bool(true), false),
            _ => Norm::Bad(ErrorCode::InvalidType),
        },
        Json::String(s) if s.is_empty() => Norm::Empty,
        // OPEN: booleans from strings carry no value_normalized warning.
        Json::String(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Norm::Set(Json::Bool(true), false),
            "false" | "f" | "no" | "n" | "0" => Norm::Set(Json::Bool(false), false),
            _ => Norm::Bad(ErrorCode::InvalidType),
        },
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn date_ok(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = &t[r];
        if s.chars().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=9999).contains(&y) && (1..=days).contains(&d)
}

fn norm_date(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                Norm::Empty
            } else if date_ok(t) {
                Norm::Set(Json::String(t.to_owned()), t != s)
            } else {
                Norm::Bad(ErrorCode::InvalidDate)
            }
        }
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

fn norm_priority(v: &Json) -> Norm {
    let ok = |u: u64| {
        if u <= i64::MAX as u64 {
            Norm::Set(Json::from(u), false)
        } else {
            Norm::Bad(ErrorCode::InvalidPriority)
        }
    };
    match v {
        Json::Null => Norm::Empty,
        Json::Number(n) => match n.as_u64() {
            Some(u) => ok(u),
            None => Norm::Bad(ErrorCode::InvalidPriority),
        },
        Json::String(s) if s.is_empty() => Norm::Empty,
        // OPEN: a string of digits carries no value_normalized warning.
        Json::String(s) if s.chars().all(|c| c.is_ascii_digit()) => match s.parse::<u64>() {
            Ok(u) => ok(u),
            Err(_) => Norm::Bad(ErrorCode::InvalidPriority),
        },
        _ => Norm::Bad(ErrorCode::InvalidPriority),
    }
}

fn norm_integer(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::Number(n) => match n.as_i64() {
            Some(i) => Norm::Set(Json::from(i), false),
            None => Norm::Bad(ErrorCode::InvalidType),
        },
        Json::String(s) if s.is_empty() => Norm::Empty,
        Json::String(s) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                match s.parse::<i64>() {
                    Ok(i) => Norm::Set(Json::from(i), false),
                    Err(_) => Norm::Bad(ErrorCode::InvalidType),
                }
            } else {
                Norm::Bad(ErrorCode::InvalidType)
            }
        }
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

fn norm_json(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) if s.is_empty() => Norm::Empty,
        _ => {
            let len = serde_json::to_string(v)
                .map(|s| s.len())
                .unwrap_or(usize::MAX);
            if len > JSON_BYTES_MAX {
                Norm::Bad(ErrorCode::MetadataTooLarge)
            } else {
                Norm::Set(v.clone(), false)
            }
        }
    }
}

fn normalize(ty: Ty, v: &Json) -> Norm {
    match ty {
        Ty::Key => norm_key(v),
        Ty::Text(max) => norm_text(v, max),
        Ty::Email => norm_email(v),
        Ty::Phone => norm_phone(v),
        Ty::Status => norm_status(v),
        Ty::Bool => norm_bool(v),
        Ty::Date => norm_date(v),
        Ty::Priority => norm_priority(v),
        Ty::Integer => norm_integer(v),
        Ty::Json => norm_json(v),
    }
}

/// One record after validation.
#[derive(Debug, Clone)]
struct Rec {
    index: u32,
    key: Option<String>,
    /// Validation errors, sorted by column rank.
    errors: Vec<RecordError>,
    /// value_normalized warnings, sorted by column rank.
    normalized: Vec<(usize, Warning)>,
    /// Non-empty values the record sets, by canonical column.
    sets: BTreeMap<String, Json>,
    /// Columns the record clears (empty values under `empty_values=clear`).
    clears: BTreeSet<String>,
    /// The rename asked for, if any.
    new_key: Option<String>,
}

impl Rec {
    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A contact of the working state, with an identity that survives renames.
#[derive(Debug, Clone)]
struct Work {
    uid: u64,
    c: ModelContact,
}

/// One record's result in a sequential run.
#[derive(Debug, Clone)]
struct Out {
    outcome: Outcome,
    matched_by: Option<MatchedBy>,
    contact_key: Option<String>,
    duplicate_of: Option<u32>,
    errors: Vec<RecordError>,
    warnings: Vec<Warning>,
    /// The contact this record reached (applied records only).
    reached: Option<u64>,
}

fn record_error(
    index: u32,
    key: &Option<String>,
    column: Option<&str>,
    code: ErrorCode,
) -> RecordError {
    RecordError {
        index,
        key: key.clone(),
        column: column.map(|c| Cow::Owned(c.to_owned())),
        code,
        message: String::new(),
        candidates: Vec::new(),
        duplicate_of: None,
    }
}

fn warning(index: u32, key: &Option<String>, column: Option<&str>, code: WarningCode) -> Warning {
    Warning {
        index,
        key: key.clone(),
        column: column.map(|c| Cow::Owned(c.to_owned())),
        code,
        message: Cow::Borrowed(""),
        duplicate_of: None,
    }
}

/// The in-memory model of one workspace.
#[derive(Debug, Clone)]
pub struct Model {
    catalog: Vec<Col>,
    contacts: BTreeMap<String, ModelContact>,
    /// request_id → (body without request_id, stored report) (R21).
    requests: BTreeMap<String, (Json, Report)>,
    records_max: usize,
    next_uid: u64,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty workspace with the default limit of 10,000 records per request.
    pub fn new() -> Self {
        Self::with_records_max(10_000)
    }

    /// An empty workspace with this records limit.
    pub fn with_records_max(records_max: usize) -> Self {
        let catalog = PREDEFINED
            .iter()
            .enumerate()
            .map(|(rank, (name, ty))| Col {
                name: (*name).to_owned(),
                rank,
                ty: *ty,
                import_enabled: true,
                required: false,
            })
            .collect();
        Model {
            catalog,
            contacts: BTreeMap::new(),
            requests: BTreeMap::new(),
            records_max,
            next_uid: 0,
        }
    }

    /// Declares a custom column (R3). Supports `string`, `integer`, `boolean`,
    /// `date` and `json`; `decimal` is not modelled.
    pub fn declare_column(&mut self, spec: &ColumnSpec) {
        let ty = match spec.ty {
            ColumnType::String { max_len } => Ty::Text(max_len as usize),
            ColumnType::Integer => Ty::Integer,
            ColumnType::Boolean => Ty::Bool,
            ColumnType::Date => Ty::Date,
            ColumnType::Json => Ty::Json,
            ColumnType::Decimal => panic!("the model does not cover decimal columns"),
        };
        assert!(
            !self.catalog.iter().any(|c| c.name == spec.name),
            "column declared twice"
        );
        let rank = 256 + self.catalog.len();
        self.catalog.push(Col {
            name: spec.name.clone(),
            rank,
            ty,
            import_enabled: spec.import_enabled,
            required: spec.required,
        });
    }

    /// Every contact, in key order.
    pub fn contacts(&self) -> Vec<ModelContact> {
        self.contacts.values().cloned().collect()
    }

    fn col(&self, name: &str) -> &Col {
        self.catalog
            .iter()
            .find(|c| c.name == name)
            .expect("known column")
    }

    fn resolve(&self, raw: &str) -> Resolved {
        let Some(mut name) = snake_case(raw) else {
            return Resolved::Unknown;
        };
        if SYSTEM_FIELDS.contains(&name.as_str()) {
            return Resolved::ReadOnly;
        }
        if let Some((_, target)) = NAME_ALIASES.iter().find(|(a, _)| *a == name) {
            name = (*target).to_owned();
        }
        match self.catalog.iter().position(|c| c.name == name) {
            Some(i) if self.catalog[i].import_enabled => Resolved::Col(i),
            Some(_) => Resolved::NotImportEnabled,
            None => Resolved::Unknown,
        }
    }

    fn resolve_or_err(&self, raw: &str) -> Result<usize, String> {
        match self.resolve(raw) {
            Resolved::Col(i) => Ok(i),
            Resolved::Unknown => Err("unknown_column".into()),
            Resolved::ReadOnly => Err("read_only_column".into()),
            Resolved::NotImportEnabled => Err("column_not_import_enabled".into()),
        }
    }

    /// R5, in this order: record count, request_id, `columns`, each record (object,
    /// each column: known, listed, not twice), `new_contact_key` outside update.
    // OPEN: the order among several request-level problems of one request.
    fn check_request(&self, req: &BulkRequest) -> Result<(), String> {
        if req.records.is_empty() {
            return Err("no_records".into());
        }
        if req.records.len() > self.records_max {
            return Err("too_many_records".into());
        }
        if let Some(id) = &req.request_id
            && (id.is_empty() || id.len() > 255 || has_control(id))
        {
            return Err("invalid_request_id".into());
        }
        let mut uses_new_key = false;
        let new_key_col = self
            .catalog
            .iter()
            .position(|c| c.name == "new_contact_key")
            .expect("predefined");
        let mut listed: Option<Vec<usize>> = None;
        if let Some(cols) = &req.columns {
            let mut ids: Vec<usize> = Vec::new();
            for raw in cols {
                let i = self.resolve_or_err(raw)?;
                if ids.contains(&i) {
                    return Err("column_listed_twice".into());
                }
                ids.push(i);
                uses_new_key |= i == new_key_col;
            }
            // contact_key is implied.
            if !ids.contains(&0) {
                ids.push(0);
            }
            listed = Some(ids);
        }
        for record in &req.records {
            let Json::Object(obj) = record else {
                return Err("record_not_object".into());
            };
            let mut seen: Vec<usize> = Vec::new();
            for raw in obj.keys() {
                let i = self.resolve_or_err(raw)?;
                if let Some(ids) = &listed
                    && !ids.contains(&i)
                {
                    return Err("column_not_in_list".into());
                }
                if seen.contains(&i) {
                    return Err("record_column_twice".into());
                }
                seen.push(i);
                uses_new_key |= i == new_key_col;
            }
        }
        if uses_new_key && req.mode != Mode::Update {
            return Err("new_key_not_allowed".into());
        }
        Ok(())
    }

    /// R7: normalizes and validates one record on its own.
    fn validate(&self, index: u32, obj: &Map<String, Json>, empty: EmptyValues) -> Rec {
        let mut errors: Vec<(usize, ErrorCode, String)> = Vec::new();
        let mut normalized: Vec<(usize, String)> = Vec::new();
        let mut key: Option<String> = None;
        let mut sets = BTreeMap::new();
        let mut clears = BTreeSet::new();
        let mut new_key = None;
        let mut saw_key = false;
        for (raw, v) in obj {
            let Resolved::Col(i) = self.resolve(raw) else {
                unreachable!("checked by check_request")
            };
            let col = &self.catalog[i];
            match (col.name.as_str(), normalize(col.ty, v)) {
                ("contact_key", n) => {
                    saw_key = true;
                    match n {
                        Norm::Empty => {
                            errors.push((col.rank, ErrorCode::MissingKey, col.name.clone()))
                        }
                        Norm::Bad(code) => errors.push((col.rank, code, col.name.clone())),
                        Norm::Set(Json::String(k), changed) => {
                            key = Some(k);
                            if changed {
                                normalized.push((col.rank, col.name.clone()));
                            }
                        }
                        Norm::Set(..) => unreachable!(),
                    }
                }
                ("new_contact_key", n) => match n {
                    // Empty or null asks for no rename.
                    Norm::Empty => {}
                    Norm::Bad(code) => errors.push((col.rank, code, col.name.clone())),
                    Norm::Set(Json::String(k), changed) => {
                        new_key = Some(k);
                        if changed {
                            normalized.push((col.rank, col.name.clone()));
                        }
                    }
                    Norm::Set(..) => unreachable!(),
                },
                (_, Norm::Empty) => {
                    if empty == EmptyValues::Clear {
                        clears.insert(col.name.clone());
                    }
                }
                (_, Norm::Bad(code)) => errors.push((col.rank, code, col.name.clone())),
                (_, Norm::Set(value, changed)) => {
                    if changed {
                        normalized.push((col.rank, col.name.clone()));
                    }
                    sets.insert(col.name.clone(), value);
                }
            }
        }
        if !saw_key {
            errors.push((0, ErrorCode::MissingKey, "contact_key".to_owned()));
        }
        errors.sort_by_key(|e| e.0);
        normalized.sort_by_key(|w| w.0);
        let errors = errors
            .into_iter()
            .map(|(_, code, col)| record_error(index, &key, Some(&col), code))
            .collect();
        let normalized = normalized
            .into_iter()
            .map(|(rank, col)| {
                (
                    rank,
                    warning(index, &key, Some(&col), WarningCode::ValueNormalized),
                )
            })
            .collect();
        Rec {
            index,
            key,
            errors,
            normalized,
            sets,
            clears,
            new_key,
        }
    }

    /// Runs a bulk request (R4–R15, R21). `Err` carries the request-level error code.
    pub fn bulk(&mut self, req: &BulkRequest) -> Result<Report, String> {
        self.check_request(req)?;
        // R21.
        let body = {
            let mut r = req.clone();
            r.request_id = None;
            serde_json::to_value(&r).expect("request serializes")
        };
        if let Some(id) = &req.request_id
            && let Some((stored_body, stored)) = self.requests.get(id)
        {
            if *stored_body != body {
                return Err("request_id_reused".into());
            }
            let mut r = stored.clone();
            r.replayed = true;
            return Ok(r);
        }

        let recs: Vec<Rec> = req
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                Json::Object(obj) => self.validate(i as u32, obj, req.empty_values),
                _ => unreachable!("checked by check_request"),
            })
            .collect();

        let initial: Vec<Work> = self
            .contacts
            .values()
            .map(|c| {
                self.next_uid += 1;
                Work {
                    uid: self.next_uid,
                    c: c.clone(),
                }
            })
            .collect();

        let (state, outs) = match req.on_duplicate {
            OnDuplicate::Last => self.run_last(&initial, &recs, req),
            policy => {
                let mut state = initial.clone();
                let outs = self.run(&mut state, &recs, req, policy, &BTreeMap::new());
                (state, outs)
            }
        };

        let report = self.assemble(req, &recs, outs);
        if matches!(report.status, Status::Applied | Status::Partial) {
            self.contacts = state.into_iter().map(|w| (w.c.key.clone(), w.c)).collect();
            if let Some(id) = &req.request_id {
                self.requests.insert(id.clone(), (body, report.clone()));
            }
        }
        Ok(report)
    }

    /// `on_duplicate=last`: pass 1 as `merge` to learn which records reach the same
    /// contact, pass 2 applies only the last occurrences (and records that reached
    /// nothing) from the initial state.
    fn run_last(
        &mut self,
        initial: &[Work],
        recs: &[Rec],
        req: &BulkRequest,
    ) -> (Vec<Work>, Vec<Out>) {
        let mut scratch = initial.to_vec();
        let pass1 = self.run(
            &mut scratch,
            recs,
            req,
            OnDuplicate::Merge,
            &BTreeMap::new(),
        );
        let mut last_of: BTreeMap<u64, u32> = BTreeMap::new();
        for (i, o) in pass1.iter().enumerate() {
            if let Some(uid) = o.reached {
                last_of.insert(uid, i as u32);
            }
        }
        let mut left_out: BTreeMap<u32, Out> = BTreeMap::new();
        for (i, o) in pass1.iter().enumerate() {
            let i = i as u32;
            if let Some(uid) = o.reached
                && last_of[&uid] != i
            {
                // OPEN: a left-out record has neither matched_by nor contact_key.
                left_out.insert(
                    i,
                    Out {
                        outcome: Outcome::Duplicate,
                        matched_by: None,
                        contact_key: None,
                        duplicate_of: Some(last_of[&uid]),
                        errors: Vec::new(),
                        warnings: Vec::new(),
                        reached: None,
                    },
                );
            }
        }
        let mut state = initial.to_vec();
        let outs = self.run(&mut state, recs, req, OnDuplicate::Merge, &left_out);
        (state, outs)
    }

    /// Applies the records one at a time, in order, to `state` (R6). Records in
    /// `fixed` are not run: their given result stands. `policy` is merge, first or
    /// reject.
    fn run(
        &mut self,
        state: &mut Vec<Work>,
        recs: &[Rec],
        req: &BulkRequest,
        policy: OnDuplicate,
        fixed: &BTreeMap<u32, Out>,
    ) -> Vec<Out> {
        // contact uid → index of the first applied record that reached it.
        let mut reached: Vec<(u64, u32)> = Vec::new();
        let mut outs = Vec::new();
        for rec in recs {
            if let Some(o) = fixed.get(&rec.index) {
                outs.push(o.clone());
                continue;
            }
            if !rec.valid() {
                outs.push(Out {
                    outcome: Outcome::Failed,
                    matched_by: None,
                    contact_key: None,
                    duplicate_of: None,
                    errors: rec.errors.clone(),
                    warnings: Vec::new(),
                    reached: None,
                });
                continue;
            }
            let out = self.step(state, rec, req, policy, &reached);
            if let Some(uid) = out.reached
                && !reached.iter().any(|(u, _)| *u == uid)
            {
                reached.push((uid, rec.index));
            }
            outs.push(out);
        }
        outs
    }

    /// One valid record against the working state (R8–R13, R6a).
    fn step(
        &mut self,
        state: &mut Vec<Work>,
        rec: &Rec,
        req: &BulkRequest,
        policy: OnDuplicate,
        reached: &[(u64, u32)],
    ) -> Out {
        let key = rec.key.clone().expect("valid record has a key");
        let index = rec.index;
        // OPEN: a failed record that matched a contact keeps matched_by, and
        // contact_key when that contact's key differs from the record's.
        let fail = |matched: Option<(MatchedBy, &str)>, mut err: RecordError| {
            let dup = err.duplicate_of;
            err.key = rec.key.clone();
            Out {
                outcome: Outcome::Failed,
                matched_by: matched.map(|m| m.0),
                contact_key: matched.and_then(|m| (m.1 != key).then(|| m.1.to_owned())),
                duplicate_of: dup,
                errors: vec![err],
                warnings: Vec::new(),
                reached: None,
            }
        };

        // R8: by key or alias first, authoritative.
        let mut target: Option<(usize, MatchedBy)> = None;
        for (i, w) in state.iter().enumerate() {
            if w.c.key == key {
                target = Some((i, MatchedBy::Key));
            } else if w.c.aliases.contains(&key) {
                target = Some((i, MatchedBy::Alias));
            }
        }
        // Else by email and/or phone, the record's own non-empty values.
        if target.is_none() {
            let email = if req.match_on.email {
                rec.sets.get("email")
            } else {
                None
            };
            let phone = if req.match_on.phone {
                rec.sets.get("gsm")
            } else {
                None
            };
            let mut candidates: Vec<(usize, MatchedBy)> = Vec::new();
            for (i, w) in state.iter().enumerate() {
                if email.is_some() && w.c.columns.get("email") == email {
                    candidates.push((i, MatchedBy::Email));
                } else if phone.is_some() && w.c.columns.get("gsm") == phone {
                    candidates.push((i, MatchedBy::Phone));
                }
            }
            match candidates.len() {
                0 => {}
                1 => target = Some(candidates[0]),
                _ => {
                    let mut keys: Vec<String> = candidates
                        .iter()
                        .map(|(i, _)| state[*i].c.key.clone())
                        .collect();
                    keys.sort();
                    let mut err = record_error(index, &rec.key, None, ErrorCode::AmbiguousMatch);
                    err.candidates = keys;
                    return fail(None, err);
                }
            }
        }
        let matched_by = target.map(|t| t.1);
        let target_key = target.map(|(i, _)| state[i].c.key.clone());
        let matched = matched_by.zip(target_key.as_deref());
        // The first applied record of this request that reached the same contact.
        let dup: Option<u32> = target.and_then(|(i, _)| {
            reached
                .iter()
                .find(|(u, _)| *u == state[i].uid)
                .map(|(_, first)| *first)
        });
        let with_dup = |mut e: RecordError| {
            e.duplicate_of = dup;
            e
        };

        // R6a first / reject.
        if let Some(first) = dup {
            match policy {
                OnDuplicate::Reject => {
                    return fail(
                        matched,
                        with_dup(record_error(
                            index,
                            &rec.key,
                            None,
                            ErrorCode::DuplicateInBatch,
                        )),
                    );
                }
                OnDuplicate::First => {
                    // OPEN: a left-out record has neither matched_by nor contact_key.
                    return Out {
                        outcome: Outcome::Duplicate,
                        matched_by: None,
                        contact_key: None,
                        duplicate_of: Some(first),
                        errors: Vec::new(),
                        warnings: Vec::new(),
                        reached: None,
                    };
                }
                OnDuplicate::Merge | OnDuplicate::Last => {}
            }
        }

        // R10.
        match (req.mode, target) {
            (Mode::Insert, Some(_)) => {
                return fail(
                    matched,
                    with_dup(record_error(
                        index,
                        &rec.key,
                        None,
                        ErrorCode::AlreadyExists,
                    )),
                );
            }
            (Mode::Update, None) => {
                return fail(
                    None,
                    record_error(index, &rec.key, None, ErrorCode::NotFound),
                );
            }
            _ => {}
        }

        let Some((ti, _)) = target else {
            return self.insert(state, rec, key);
        };

        // R11: key_conflict.
        let old = state[ti].c.clone();
        if let Some(nk) = &rec.new_key
            && *nk != old.key
            && !old.aliases.contains(nk)
            && state
                .iter()
                .enumerate()
                .any(|(j, w)| j != ti && (w.c.key == *nk || w.c.aliases.contains(nk)))
        {
            return fail(
                matched,
                with_dup(record_error(
                    index,
                    &rec.key,
                    Some("new_contact_key"),
                    ErrorCode::KeyConflict,
                )),
            );
        }

        // Required custom columns cleared on update.
        let cleared_required: Vec<&Col> = self
            .catalog
            .iter()
            .filter(|c| c.required && rec.clears.contains(&c.name))
            .collect();
        if !cleared_required.is_empty() {
            // One required_missing error per cleared required column.
            let mut out = fail(
                matched,
                with_dup(record_error(
                    index,
                    &rec.key,
                    None,
                    ErrorCode::RequiredMissing,
                )),
            );
            out.errors = cleared_required
                .iter()
                .map(|c| {
                    with_dup(record_error(
                        index,
                        &rec.key,
                        Some(&c.name),
                        ErrorCode::RequiredMissing,
                    ))
                })
                .collect();
            return out;
        }

        // Field changes (R7, R12).
        let mut columns = old.columns.clone();
        for (c, v) in &rec.sets {
            columns.insert(c.clone(), v.clone());
        }
        for c in &rec.clears {
            match c.as_str() {
                "status" => {
                    columns.insert(c.clone(), Json::from("A"));
                }
                "priority" => {
                    columns.insert(c.clone(), Json::from(PRIORITY_DEFAULT));
                }
                _ => {
                    columns.remove(c);
                }
            }
        }
        // OPEN: clearing email_status (null/"" under empty_values=clear) counts as the
        // record setting it, so a new email then leaves it empty. (On insert, an
        // email with a cleared email_status still defaults it to `A`.)
        for (field, status) in [("email", "email_status"), ("gsm", "gsm_status")] {
            if let Some(v) = rec.sets.get(field)
                && old.columns.get(field) != Some(v)
                && !rec.sets.contains_key(status)
                && !rec.clears.contains(status)
            {
                columns.insert(status.to_owned(), Json::from("A"));
            }
        }

        let mut c = old.clone();
        c.columns = columns;
        let mut changed = c.columns != old.columns;
        let mut warnings: Vec<(usize, Warning)> = rec.normalized.clone();
        // R9: a record matched by email/phone whose key differs adds an alias.
        if matches!(matched_by, Some(MatchedBy::Email | MatchedBy::Phone)) {
            c.aliases.push(key.clone());
            changed = true;
        }
        // R11: rename.
        if let Some(nk) = &rec.new_key
            && *nk != c.key
        {
            c.aliases.retain(|a| a != nk);
            c.key = nk.clone();
            changed = true;
        }
        // OPEN: alias_added also when the same record renames the contact to the
        // new alias (the alias is added, then becomes the key).
        if matches!(matched_by, Some(MatchedBy::Email | MatchedBy::Phone)) {
            // semantics.md: value_normalized by column, then alias_added, then
            // duplicate_in_batch.
            warnings.push((
                usize::MAX - 1,
                warning(
                    index,
                    &rec.key,
                    Some("contact_key"),
                    WarningCode::AliasAdded,
                ),
            ));
        }
        let outcome = if changed {
            c.version += 1;
            Outcome::Updated
        } else {
            Outcome::Unchanged
        };
        if policy == OnDuplicate::Merge
            && let Some(first) = dup
        {
            let mut w = warning(index, &rec.key, None, WarningCode::DuplicateInBatch);
            w.duplicate_of = Some(first);
            warnings.push((usize::MAX, w));
        }
        warnings.sort_by_key(|w| w.0);
        let contact_key = (c.key != key).then(|| c.key.clone());
        let uid = state[ti].uid;
        state[ti].c = c;
        Out {
            outcome,
            matched_by,
            contact_key,
            duplicate_of: dup,
            errors: Vec::new(),
            warnings: warnings.into_iter().map(|w| w.1).collect(),
            reached: Some(uid),
        }
    }

    fn insert(&mut self, state: &mut Vec<Work>, rec: &Rec, key: String) -> Out {
        let mut columns = rec.sets.clone();
        columns
            .entry("status".to_owned())
            .or_insert_with(|| Json::from("A"));
        columns
            .entry("priority".to_owned())
            .or_insert_with(|| Json::from(PRIORITY_DEFAULT));
        for (field, status) in [("email", "email_status"), ("gsm", "gsm_status")] {
            if rec.sets.contains_key(field) && !rec.sets.contains_key(status) {
                columns.insert(status.to_owned(), Json::from("A"));
            }
        }
        let missing: Vec<&Col> = self
            .catalog
            .iter()
            .filter(|c| c.required && !columns.contains_key(&c.name))
            .collect();
        if !missing.is_empty() {
            // One required_missing error per missing required column.
            return Out {
                outcome: Outcome::Failed,
                matched_by: None,
                contact_key: None,
                duplicate_of: None,
                errors: missing
                    .iter()
                    .map(|c| {
                        record_error(
                            rec.index,
                            &rec.key,
                            Some(&c.name),
                            ErrorCode::RequiredMissing,
                        )
                    })
                    .collect(),
                warnings: Vec::new(),
                reached: None,
            };
        }
        self.next_uid += 1;
        let uid = self.next_uid;
        state.push(Work {
            uid,
            c: ModelContact {
                key,
                columns,
                aliases: Vec::new(),
                version: 1,
            },
        });
        Out {
            outcome: Outcome::Inserted,
            matched_by: None,
            contact_key: None,
            duplicate_of: None,
            errors: Vec::new(),
            warnings: rec.normalized.iter().map(|w| w.1.clone()).collect(),
            reached: Some(uid),
        }
    }

    /// R14/R15: status, summary and the final per-record results.
    fn assemble(&self, req: &BulkRequest, recs: &[Rec], outs: Vec<Out>) -> Report {
        let total = recs.len() as u64;
        let invalid = recs.iter().filter(|r| !r.valid()).count() as u64;
        let failed = outs.iter().filter(|o| o.outcome == Outcome::Failed).count() as u64;
        let applied = outs
            .iter()
            .filter(|o| {
                matches!(
                    o.outcome,
                    Outcome::Inserted | Outcome::Updated | Outcome::Unchanged
                )
            })
            .count();
        let status = if failed == 0 {
            Status::Applied
        } else if req.on_invalid == OnInvalid::Abort || applied == 0 {
            Status::Rejected
        } else {
            Status::Partial
        };
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for (rec, mut o) in recs.iter().zip(outs) {
            if status == Status::Rejected {
                if matches!(
                    o.outcome,
                    Outcome::Inserted | Outcome::Updated | Outcome::Unchanged
                ) {
                    o.outcome = Outcome::NotApplied;
                }
                o.warnings.clear();
            }
            results.push(RecordResult {
                index: rec.index,
                key: rec.key.clone(),
                outcome: o.outcome,
                matched_by: o.matched_by,
                contact_key: o.contact_key,
                duplicate_of: o.duplicate_of,
            });
            errors.extend(o.errors);
            warnings.extend(o.warnings);
        }
        let count = |k: Outcome| results.iter().filter(|r| r.outcome == k).count() as u64;
        let summary = Summary {
            total,
            valid: total - invalid,
            invalid,
            inserted: count(Outcome::Inserted),
            updated: count(Outcome::Updated),
            unchanged: count(Outcome::Unchanged),
            failed,
            batches: u64::from(status != Status::Rejected),
        };
        Report {
            status,
            summary,
            results,
            errors,
            warnings,
            request_id: req.request_id.clone(),
            replayed: false,
            request_error: None,
        }
    }
}

/// Clears every free-text `message` of a report, so reports of the engine and of
/// the model compare with `==`.
pub fn normalize_report(report: &mut Report) {
    for e in &mut report.errors {
        e.message.clear();
    }
    for w in &mut report.warnings {
        w.message = Cow::Borrowed("");
    }
    if let Some(info) = &mut report.request_error {
        info.message.clear();
    }
}

/// A `MatchOn` from flags (for tests).
pub fn match_on(email: bool, phone: bool) -> MatchOn {
    MatchOn { email, phone }
}
