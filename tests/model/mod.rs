//! Reference model of contactdb's bulk upsert, written straight from
//! `SPEC.md` (R2–R15, R21) and `docs/semantics.md`.
//!
//! It shares nothing with the engine but the request and report *types*: its own
//! reading of a request's JSON (`null` means absent), column-name canonicalization,
//! value normalization, request-level checks (R5, in a fixed order), duplicate
//! identity for `first` / `last` / `reject` (R6a, decided from the request's
//! start), canonical request body (R21) and a plain sequential apply (R6) over an
//! in-memory map. Clarity over speed: linear scans everywhere.
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

use contactdb_policy::PhoneCheck;
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

/// semantics.md "Text values": a text column keeps tabs and line breaks (`\n`,
/// `\r\n`); any other control character, a lone `\r` included, is refused.
fn text_control(t: &str) -> bool {
    let cs: Vec<char> = t.chars().collect();
    cs.iter().enumerate().any(|(i, &c)| {
        c.is_control() && !(c == '\t' || c == '\n' || (c == '\r' && cs.get(i + 1) == Some(&'\n')))
    })
}

fn norm_text(v: &Json, max: usize) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                Norm::Empty
            } else if text_control(t) {
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

/// RFC 5322 `atext`, the ASCII characters of a dot-atom's atoms.
const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

/// An ASCII domain by semantics.md "Emails": ≤253 octets, ≥2 labels of 1..=63
/// octets of `a-z0-9-` without `-` at their ends, the last not all digits.
fn ascii_domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !labels.last().unwrap().chars().all(|c| c.is_ascii_digit())
}

/// R2 and semantics.md "Emails", on the lower-cased text: the stored form (the
/// domain in ASCII form), or `None` when the address is not valid.
fn email_stored(e: &str) -> Option<String> {
    let parts: Vec<&str> = e.split('@').collect();
    if parts.len() != 2 {
        return None;
    }
    let (local, domain) = (parts[0], parts[1]);
    let local_len = local.chars().count();
    if local_len == 0 || local_len > 64 {
        return None;
    }
    // Dot-atom: atoms of atext (or non-ASCII, not blank, not control) joined by
    // single dots.
    let atom_ok = |a: &str| {
        !a.is_empty()
            && a.chars().all(|c| {
                if c.is_ascii() {
                    c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c)
                } else {
                    !c.is_whitespace() && !c.is_control()
                }
            })
    };
    if !local.split('.').all(atom_ok) {
        return None;
    }
    // OPEN: an international domain is converted by UTS #46 (the `idna` crate,
    // strict: STD3 rules, hyphen and DNS length checks), the reference here.
    let ascii = if domain.is_ascii() {
        domain.to_owned()
    } else {
        idna::domain_to_ascii_strict(domain).ok()?
    };
    if !ascii_domain_ok(&ascii) {
        return None;
    }
    Some(format!("{local}@{ascii}"))
}

fn norm_email(v: &Json) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            if s.trim().is_empty() {
                return Norm::Empty;
            }
            // Blanks at the ends go; line breaks and other control characters stay
            // (and are then refused).
            let t = s.trim_matches(|c: char| c.is_whitespace() && !c.is_control());
            let low = t.to_lowercase();
            if low.chars().count() > EMAIL_CHARS_MAX {
                return Norm::Bad(ErrorCode::TooLong);
            }
            match email_stored(&low) {
                None => Norm::Bad(ErrorCode::InvalidEmail),
                Some(stored) if stored.chars().count() > EMAIL_CHARS_MAX => {
                    Norm::Bad(ErrorCode::TooLong)
                }
                Some(stored) => {
                    let changed = stored != *s;
                    Norm::Set(Json::String(stored), changed)
                }
            }
        }
        _ => Norm::Bad(ErrorCode::InvalidType),
    }
}

/// How a request reads values: its `phone_check`, `default_region` and
/// `date_format`, already checked.
#[derive(Debug, Clone, Default)]
struct ValueOpts {
    phone_valid: bool,
    region: Option<phonenumber::country::Id>,
    date_format: Option<String>,
}

/// semantics.md "Phones": a `(0)` right after `+CC` / `00CC` (1..=3 digits, then
/// optional spaces) is dropped.
fn drop_trunk_zero(s: &str) -> String {
    let prefix = if s.starts_with('+') {
        1
    } else if s.starts_with("00") {
        2
    } else {
        return s.to_owned();
    };
    let rest = &s[prefix..];
    let cc = rest.chars().take_while(char::is_ascii_digit).count();
    if !(1..=3).contains(&cc) {
        return s.to_owned();
    }
    let after = rest[cc..].trim_start_matches(' ');
    match after.strip_prefix("(0)") {
        Some(tail) => format!("{}{}", &s[..prefix + cc], tail),
        None => s.to_owned(),
    }
}

fn e164_shape(e: &str) -> bool {
    match e.strip_prefix('+') {
        Some(d) => {
            (7..=15).contains(&d.len())
                && d.chars().all(|c| c.is_ascii_digit())
                && !d.starts_with('0')
        }
        None => false,
    }
}

/// R2's phone rule with the request's options (semantics.md "Phones"), the
/// `phonenumber` crate (libphonenumber's metadata) as the reference for national
/// numbers and for `phone_check: valid`.
fn phone_text(t: &str, opts: &ValueOpts) -> Option<String> {
    let body = if t.len() >= 4 && t.is_char_boundary(4) && t[..4].eq_ignore_ascii_case("tel:") {
        &t[4..]
    } else {
        t
    };
    if body.contains(';') {
        return None;
    }
    let stripped: String = drop_trunk_zero(body)
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let e164 = match stripped.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => stripped,
    };
    let e164 = if e164.starts_with('+') {
        e164
    } else {
        let region = opts.region?;
        if e164.is_empty() || !e164.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n = phonenumber::parse(Some(region), &e164).ok()?;
        n.format().mode(phonenumber::Mode::E164).to_string()
    };
    if !e164_shape(&e164) {
        return None;
    }
    if opts.phone_valid {
        // libphonenumber's verdict, and its E.164 form.
        let n = phonenumber::parse(None, &e164).ok()?;
        if !phonenumber::is_valid(&n) {
            return None;
        }
        return Some(n.format().mode(phonenumber::Mode::E164).to_string());
    }
    Some(e164)
}

fn norm_phone(v: &Json, opts: &ValueOpts) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Norm::Empty;
            }
            match phone_text(t, opts) {
                Some(e164) => {
                    let changed = e164 != *s;
                    Norm::Set(Json::String(e164), changed)
                }
                None => Norm::Bad(ErrorCode::InvalidPhone),
            }
        }
        // An integer is read as its digits: no `+`, so only a national number
        // under a default_region can be valid.
        Json::Number(n) if n.is_i64() || n.is_u64() => match phone_text(&n.to_string(), opts) {
            Some(e164) => Norm::Set(Json::String(e164), false),
            None => Norm::Bad(ErrorCode::InvalidPhone),
        },
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

fn norm_date(v: &Json, opts: &ValueOpts) -> Norm {
    match v {
        Json::Null => Norm::Empty,
        Json::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                Norm::Empty
            } else if let Some(format) = &opts.date_format {
                // OPEN: jiff's strptime is the reference reader of a format.
                match jiff::civil::Date::strptime(format, t) {
                    Ok(d) if (1..=9999).contains(&d.year()) => {
                        let iso = format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
                        let changed = iso != *s;
                        Norm::Set(Json::String(iso), changed)
                    }
                    _ => Norm::Bad(ErrorCode::InvalidDate),
                }
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

fn normalize(ty: Ty, v: &Json, opts: &ValueOpts) -> Norm {
    match ty {
        Ty::Key => norm_key(v),
        Ty::Text(max) => norm_text(v, max),
        Ty::Email => norm_email(v),
        Ty::Phone => norm_phone(v, opts),
        Ty::Status => norm_status(v),
        Ty::Bool => norm_bool(v),
        Ty::Date => norm_date(v, opts),
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

/// A bulk request as the model reads it (R4): every option with its default
/// applied. Built from JSON by [`parse_request`] (its own reading, where `null`
/// means absent) or from the public `BulkRequest` type.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    pub mode: Mode,
    pub match_email: bool,
    pub match_phone: bool,
    pub on_invalid: OnInvalid,
    pub on_duplicate: OnDuplicate,
    pub empty_values: EmptyValues,
    pub request_id: Option<String>,
    pub columns: Option<Vec<String>>,
    /// The campaign every applied record's contact joins (R16).
    pub campaign: Option<String>,
    /// The trigger object as given (R18), `null` fields left out; checked by
    /// [`Model::check_request`].
    pub trigger: Option<Map<String, Json>>,
    /// `phone_check: valid`.
    pub phone_valid: bool,
    /// `default_region` as given.
    pub default_region: Option<String>,
    /// `date_format` as given.
    pub date_format: Option<String>,
    pub records: Vec<Json>,
}

impl From<&BulkRequest> for ModelRequest {
    fn from(r: &BulkRequest) -> Self {
        ModelRequest {
            mode: r.mode,
            match_email: r.match_on.email,
            match_phone: r.match_on.phone,
            on_invalid: r.on_invalid,
            on_duplicate: r.on_duplicate,
            empty_values: r.empty_values,
            request_id: r.request_id.clone(),
            columns: r.columns.clone(),
            campaign: r.campaign.clone(),
            trigger: r.trigger.as_ref().map(|t| {
                let mut obj = Map::new();
                if let Some(c) = &t.call {
                    obj.insert("call".to_owned(), c.clone());
                }
                if let Some(w) = &t.workflow {
                    obj.insert("workflow".to_owned(), w.clone());
                }
                obj
            }),
            phone_valid: r.phone_check == PhoneCheck::Valid,
            default_region: r.default_region.clone(),
            date_format: r.date_format.clone(),
            records: r.records.clone(),
        }
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Insert => "insert",
        Mode::Update => "update",
        Mode::Upsert => "upsert",
    }
}

fn on_invalid_name(o: OnInvalid) -> &'static str {
    match o {
        OnInvalid::Abort => "abort",
        OnInvalid::Skip => "skip",
    }
}

fn on_duplicate_name(o: OnDuplicate) -> &'static str {
    match o {
        OnDuplicate::Merge => "merge",
        OnDuplicate::First => "first",
        OnDuplicate::Last => "last",
        OnDuplicate::Reject => "reject",
    }
}

fn empty_values_name(e: EmptyValues) -> &'static str {
    match e {
        EmptyValues::Clear => "clear",
        EmptyValues::Ignore => "ignore",
    }
}

/// Reads one option: absent or `null` gives `None` (the default applies); a string
/// must be one of `names`.
fn parse_option<T: Copy>(
    obj: &Map<String, Json>,
    field: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, String> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => all
            .iter()
            .copied()
            .find(|v| name(*v) == s)
            .map(Some)
            .ok_or_else(|| format!("invalid_request: {field} {s:?}")),
        Some(other) => Err(format!("invalid_request: {field} {other}")),
    }
}

/// The model's own reading of a request's JSON (R4). An optional field that is
/// absent or `null` takes its default: `match_on` `[key]`, `on_invalid` abort,
/// `on_duplicate` merge, `empty_values` clear, no `request_id`, no `columns`.
/// `Err` for a body no user of the API could mean (not an object, an unknown
/// field, a wrong type): the engine refuses those while parsing.
pub fn parse_request(raw: &Json) -> Result<ModelRequest, String> {
    let Json::Object(obj) = raw else {
        return Err("invalid_request: not an object".into());
    };
    const FIELDS: [&str; 14] = [
        "phone_check",
        "default_region",
        "date_format",
        "mode",
        "campaign",
        "trigger",
        "match_on",
        "on_invalid",
        "on_duplicate",
        "empty_values",
        "request_id",
        "columns",
        "records",
        "contactDatas",
    ];
    for k in obj.keys() {
        if !FIELDS.contains(&k.as_str()) {
            return Err(format!("invalid_request: unknown field {k}"));
        }
    }
    let mode = parse_option(
        obj,
        "mode",
        &[Mode::Insert, Mode::Update, Mode::Upsert],
        mode_name,
    )?
    .ok_or("invalid_request: no mode")?;
    let (mut match_email, mut match_phone) = (false, false);
    match obj.get("match_on") {
        None | Some(Json::Null) => {}
        Some(Json::Array(keys)) => {
            for k in keys {
                match k.as_str() {
                    Some("key") => {}
                    Some("email") => match_email = true,
                    Some("phone") => match_phone = true,
                    _ => return Err(format!("invalid_request: match_on {k}")),
                }
            }
        }
        Some(other) => return Err(format!("invalid_request: match_on {other}")),
    }
    let request_id = match obj.get("request_id") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("invalid_request: request_id {other}")),
    };
    let columns = match obj.get("columns") {
        None | Some(Json::Null) => None,
        Some(Json::Array(cs)) => {
            let mut names = Vec::new();
            for c in cs {
                match c {
                    Json::String(s) => names.push(s.clone()),
                    other => return Err(format!("invalid_request: column {other}")),
                }
            }
            Some(names)
        }
        Some(other) => return Err(format!("invalid_request: columns {other}")),
    };
    let campaign = match obj.get("campaign") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("invalid_request: campaign {other}")),
    };
    // A trigger is an object of `call` and/or `workflow`; a `null` one, or a
    // `null` field in it, is absent. Its shape is checked with the request.
    let trigger = match obj.get("trigger") {
        None | Some(Json::Null) => None,
        Some(Json::Object(t)) => {
            let mut kept = Map::new();
            for (k, v) in t {
                if k != "call" && k != "workflow" {
                    return Err(format!("invalid_request: trigger field {k}"));
                }
                if !v.is_null() {
                    kept.insert(k.clone(), v.clone());
                }
            }
            Some(kept)
        }
        Some(other) => return Err(format!("invalid_request: trigger {other}")),
    };
    let phone_valid = match obj.get("phone_check") {
        None | Some(Json::Null) => false,
        Some(Json::String(s)) if s == "format" => false,
        Some(Json::String(s)) if s == "valid" => true,
        Some(other) => return Err(format!("invalid_request: phone_check {other}")),
    };
    let text_option = |name: &str| match obj.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("invalid_request: {name} {other}")),
    };
    let default_region = text_option("default_region")?;
    let date_format = text_option("date_format")?;
    let records = match (obj.get("records"), obj.get("contactDatas")) {
        (Some(Json::Array(rs)), None) | (None, Some(Json::Array(rs))) => rs.clone(),
        _ => return Err("invalid_request: records".into()),
    };
    Ok(ModelRequest {
        mode,
        match_email,
        match_phone,
        on_invalid: parse_option(
            obj,
            "on_invalid",
            &[OnInvalid::Abort, OnInvalid::Skip],
            on_invalid_name,
        )?
        .unwrap_or(OnInvalid::Abort),
        on_duplicate: parse_option(
            obj,
            "on_duplicate",
            &[
                OnDuplicate::Merge,
                OnDuplicate::First,
                OnDuplicate::Last,
                OnDuplicate::Reject,
            ],
            on_duplicate_name,
        )?
        .unwrap_or(OnDuplicate::Merge),
        empty_values: parse_option(
            obj,
            "empty_values",
            &[EmptyValues::Clear, EmptyValues::Ignore],
            empty_values_name,
        )?
        .unwrap_or(EmptyValues::Clear),
        request_id,
        columns,
        campaign,
        trigger,
        phone_valid,
        default_region,
        date_format,
        records,
    })
}

/// A JSON string literal.
fn canonical_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON text with every object's keys sorted, no whitespace.
fn canonical_json(v: &Json) -> String {
    match v {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => canonical_string(s),
        Json::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", parts.join(","))
        }
        Json::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", canonical_string(k), canonical_json(&obj[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

/// R21's "same body": the request without its `request_id`, every option with its
/// default applied, `match_on` as a sorted set (with `key`), `columns` and
/// `records` in order, object keys sorted.
fn canonical_body(req: &ModelRequest) -> String {
    let mut match_on = vec!["key"];
    if req.match_email {
        match_on.push("email");
    }
    if req.match_phone {
        match_on.push("phone");
    }
    match_on.sort();
    let match_on: Vec<String> = match_on.into_iter().map(canonical_string).collect();
    let columns = match &req.columns {
        None => "null".to_owned(),
        Some(cs) => {
            let parts: Vec<String> = cs.iter().map(|c| canonical_string(c)).collect();
            format!("[{}]", parts.join(","))
        }
    };
    let records: Vec<String> = req.records.iter().map(canonical_json).collect();
    let mut fields: Vec<(&str, String)> = vec![
        ("mode", canonical_string(mode_name(req.mode))),
        ("match_on", format!("[{}]", match_on.join(","))),
        (
            "on_invalid",
            canonical_string(on_invalid_name(req.on_invalid)),
        ),
        (
            "on_duplicate",
            canonical_string(on_duplicate_name(req.on_duplicate)),
        ),
        (
            "empty_values",
            canonical_string(empty_values_name(req.empty_values)),
        ),
        ("columns", columns),
        ("records", format!("[{}]", records.join(","))),
    ];
    // The campaign and the trigger are part of the body when given.
    if let Some(c) = &req.campaign {
        fields.push(("campaign", canonical_string(c)));
    }
    if let Some(t) = &req.trigger {
        fields.push(("trigger", canonical_json(&Json::Object(t.clone()))));
    }
    // The value options are part of the body when not the default; a region code
    // in either case is one body.
    if req.phone_valid {
        fields.push(("phone_check", canonical_string("valid")));
    }
    if let Some(r) = &req.default_region {
        fields.push(("default_region", canonical_string(&r.to_ascii_uppercase())));
    }
    if let Some(f) = &req.date_format {
        fields.push(("date_format", canonical_string(f)));
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{}", canonical_string(k), v))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// semantics.md "Dates": a `date_format` is a strftime pattern of known
/// conversions (each optionally with a `-`, `_`, `0` or `^` flag) that names a
/// year (`%Y`, `%y`), and a month (`%m`, `%b`, `%B`, `%h`) and a day (`%d`, `%e`),
/// or a day of the year (`%j`).
fn date_format_ok(f: &str) -> bool {
    if f.trim().is_empty() {
        return false;
    }
    let mut seen = BTreeSet::new();
    let mut cs = f.chars();
    while let Some(c) = cs.next() {
        if c != '%' {
            continue;
        }
        let mut d = cs.next();
        if matches!(d, Some('-' | '_' | '0' | '^')) {
            d = cs.next();
        }
        match d {
            Some(d) if "YymbBhdejaAHMSnt%".contains(d) => {
                seen.insert(d);
            }
            _ => return false,
        }
    }
    let year = seen.contains(&'Y') || seen.contains(&'y');
    let month = ['m', 'b', 'B', 'h'].iter().any(|c| seen.contains(c));
    let day = seen.contains(&'d') || seen.contains(&'e');
    year && ((month && day) || seen.contains(&'j'))
}

/// The request's value options, or the request-level error code of a bad one
/// (checked after `request_id`, region before format).
fn value_opts(req: &ModelRequest) -> Result<ValueOpts, String> {
    let region = match &req.default_region {
        None => None,
        Some(code) => {
            let upper = code.to_ascii_uppercase();
            // OPEN: a region is known when libphonenumber's metadata has a
            // numbering plan for it.
            let known = upper.len() == 2
                && upper.chars().all(|c| c.is_ascii_uppercase())
                && phonenumber::metadata::DATABASE.by_id(&upper).is_some();
            if !known {
                return Err("invalid_default_region".into());
            }
            Some(upper.parse().expect("a region of the metadata is an Id"))
        }
    };
    if let Some(f) = &req.date_format
        && !date_format_ok(f)
    {
        return Err("invalid_date_format".into());
    }
    Ok(ValueOpts {
        phone_valid: req.phone_valid,
        region,
        date_format: req.date_format.clone(),
    })
}

/// Whether a record's field is `new_contact_key: null`, which counts as absent.
fn null_new_key(name: Option<&str>, v: &Json) -> bool {
    name == Some("new_contact_key") && v.is_null()
}

/// A campaign (R16): its name, its required columns (canonical) and its members
/// (contact identities) in order of joining.
#[derive(Debug, Clone)]
struct ModelCampaign {
    name: String,
    required: Vec<String>,
    members: Vec<u64>,
}

/// A change-feed event (R18) as the model derives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEvent {
    /// `insert`, `update`, `rekey`, `alias` or `join`.
    pub kind: &'static str,
    /// The contact's key after the write.
    pub key: String,
    /// The contact's version after the write.
    pub version: u64,
    /// The previous key (rekey), the alias (alias), the campaign (join).
    pub detail: Option<String>,
    /// The request's trigger: `{"call": …}` or `{"workflow": …}`.
    pub trigger: Option<Json>,
}

/// How a job ends in the model (R17).
#[derive(Debug, Clone)]
pub enum ModelJob {
    /// A request-level problem: the job failed with this code.
    Failed(String),
    /// It ran to its end: the report of the request as one request, and the events
    /// of each chunk's transaction in order (one list per chunk that wrote).
    Succeeded(Box<Report>, Vec<Vec<ModelEvent>>),
}

/// The in-memory model of one workspace.
#[derive(Debug, Clone)]
pub struct Model {
    catalog: Vec<Col>,
    /// Every contact with its identity (stable across renames), in insertion order.
    contacts: Vec<Work>,
    /// request_id → (canonical body, stored report) (R21).
    requests: BTreeMap<String, (String, Report)>,
    campaigns: Vec<ModelCampaign>,
    /// The change feed, oldest first.
    events: Vec<ModelEvent>,
    records_max: usize,
    next_uid: u64,
}

/// Most records a job may hold (semantics.md "Jobs": 1,000,000 by default).
pub const JOB_RECORDS_MAX: usize = 1_000_000;

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

/// What makes two records occurrences of one contact under `first`, `last` and
/// `reject` (R6a): a contact of the request's start, or a value of a record that
/// reaches none of them.
#[derive(Debug, Clone, PartialEq)]
enum Label {
    Contact(u64),
    Key(String),
    Email(Json),
    Phone(Json),
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
            contacts: Vec::new(),
            requests: BTreeMap::new(),
            campaigns: Vec::new(),
            events: Vec::new(),
            records_max,
            next_uid: 0,
        }
    }

    /// Declares a custom column (R3), or changes the flags of one declared with the
    /// same type. Supports `string`, `integer`, `boolean`, `date` and `json`;
    /// `decimal` is not modelled.
    pub fn declare_column(&mut self, spec: &ColumnSpec) {
        let ty = match spec.ty {
            ColumnType::String { max_len } => Ty::Text(max_len as usize),
            ColumnType::Integer => Ty::Integer,
            ColumnType::Boolean => Ty::Bool,
            ColumnType::Date => Ty::Date,
            ColumnType::Json => Ty::Json,
            ColumnType::Decimal => panic!("the model does not cover decimal columns"),
        };
        if let Some(c) = self.catalog.iter_mut().find(|c| c.name == spec.name) {
            assert!(c.rank >= 256, "a predefined column cannot be declared");
            assert_eq!(c.ty, ty, "the model does not change a column's type");
            c.import_enabled = spec.import_enabled;
            c.required = spec.required;
            return;
        }
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
        let mut all: Vec<ModelContact> = self.contacts.iter().map(|w| w.c.clone()).collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// Creates a campaign (R16): its required columns are matched like request
    /// columns and kept canonical. `Err` for a taken name or an unknown column.
    pub fn create_campaign(&mut self, name: &str, required: &[&str]) -> Result<(), String> {
        if self.campaigns.iter().any(|c| c.name == name) {
            return Err(format!("campaign {name:?} exists"));
        }
        let mut canonical = Vec::new();
        for raw in required {
            let col = self
                .column_of(raw)
                .ok_or_else(|| format!("unknown column {raw:?}"))?;
            canonical.push(col.to_owned());
        }
        self.campaigns.push(ModelCampaign {
            name: name.to_owned(),
            required: canonical,
            members: Vec::new(),
        });
        Ok(())
    }

    /// Drops a campaign and its memberships (the contacts stay); whether it existed.
    pub fn drop_campaign(&mut self, name: &str) -> bool {
        let before = self.campaigns.len();
        self.campaigns.retain(|c| c.name != name);
        self.campaigns.len() != before
    }

    /// A campaign's members in pick order (R16): `priority` ascending (5 when
    /// unset), then order of joining; each as (contact_key, priority).
    pub fn members(&self, name: &str) -> Option<Vec<(String, u64)>> {
        let campaign = self.campaigns.iter().find(|c| c.name == name)?;
        let mut out: Vec<(String, u64)> = campaign
            .members
            .iter()
            .map(|uid| {
                let w = self
                    .contacts
                    .iter()
                    .find(|w| w.uid == *uid)
                    .expect("a member is a contact");
                let priority =
                    w.c.columns
                        .get("priority")
                        .and_then(Json::as_u64)
                        .unwrap_or(PRIORITY_DEFAULT);
                (w.c.key.clone(), priority)
            })
            .collect();
        // A stable sort keeps the order of joining among equal priorities.
        out.sort_by_key(|m| m.1);
        Some(out)
    }

    /// Every event of the change feed, oldest first.
    pub fn events(&self) -> &[ModelEvent] {
        &self.events
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

    /// The canonical column a name resolves to, whatever its flag; `None` for an
    /// unknown or read-only name.
    fn column_of(&self, raw: &str) -> Option<&str> {
        let mut name = snake_case(raw)?;
        if let Some((_, target)) = NAME_ALIASES.iter().find(|(a, _)| *a == name) {
            name = (*target).to_owned();
        }
        self.catalog
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.name.as_str())
    }

    /// The fields of a record that count for the request-level checks: every
    /// field but `new_contact_key: null`, which is as if it were absent.
    fn fields_in_use<'a>(&self, obj: &'a Map<String, Json>) -> Vec<&'a str> {
        obj.iter()
            .filter(|(raw, v)| !null_new_key(self.column_of(raw), v))
            .map(|(raw, _)| raw.as_str())
            .collect()
    }

    /// R5: the first request-level problem, checks in this order, each a plain
    /// scan: (1) record count, request_id form; (2) unknown or read-only names,
    /// `columns` first, then the records in order; (3) names not import-enabled,
    /// same scan; (4) a column twice in `columns`, then a column twice in one
    /// record; (5) `new_contact_key` outside update mode (listed, or a record with
    /// a non-null value); (6) a record's column not in `columns`; (7) a record
    /// that is not an object; then (8) the trigger's shape (R18) and (9) the
    /// campaign (R16, after every other check). Checks 2–6 skip records that are
    /// not objects. `records_max` is the direct limit, or the job limit for a job.
    fn check_request(&self, req: &ModelRequest, records_max: usize) -> Result<(), String> {
        // (1)
        if req.records.is_empty() {
            return Err("no_records".into());
        }
        if req.records.len() > records_max {
            return Err("too_many_records".into());
        }
        if let Some(id) = &req.request_id
            && (id.is_empty() || id.len() > 255 || has_control(id))
        {
            return Err("invalid_request_id".into());
        }
        value_opts(req)?;
        let objects: Vec<&Map<String, Json>> = req
            .records
            .iter()
            .filter_map(|r| match r {
                Json::Object(obj) => Some(obj),
                _ => None,
            })
            .collect();
        let listed: Vec<&str> = req.columns.iter().flatten().map(String::as_str).collect();
        let mut scan: Vec<&str> = listed.clone();
        for obj in &objects {
            scan.extend(self.fields_in_use(obj));
        }
        // (2)
        for raw in &scan {
            match self.resolve(raw) {
                Resolved::Unknown => return Err("unknown_column".into()),
                Resolved::ReadOnly => return Err("read_only_column".into()),
                Resolved::Col(_) | Resolved::NotImportEnabled => {}
            }
        }
        // (3)
        for raw in &scan {
            if let Resolved::NotImportEnabled = self.resolve(raw) {
                return Err("column_not_import_enabled".into());
            }
        }
        // (4)
        for (i, a) in listed.iter().enumerate() {
            for b in &listed[..i] {
                if self.column_of(a) == self.column_of(b) {
                    return Err("column_listed_twice".into());
                }
            }
        }
        for obj in &objects {
            let names = self.fields_in_use(obj);
            for (i, a) in names.iter().enumerate() {
                for b in &names[..i] {
                    if self.column_of(a) == self.column_of(b) {
                        return Err("record_column_twice".into());
                    }
                }
            }
        }
        // (5)
        if req.mode != Mode::Update {
            if listed
                .iter()
                .any(|c| self.column_of(c) == Some("new_contact_key"))
            {
                return Err("new_key_not_allowed".into());
            }
            for obj in &objects {
                for raw in self.fields_in_use(obj) {
                    if self.column_of(raw) == Some("new_contact_key") {
                        return Err("new_key_not_allowed".into());
                    }
                }
            }
        }
        // (6)
        if req.columns.is_some() {
            for obj in &objects {
                for raw in self.fields_in_use(obj) {
                    let col = self.column_of(raw);
                    if col != Some("contact_key")
                        && !listed.iter().any(|c| self.column_of(c) == col)
                    {
                        return Err("column_not_in_list".into());
                    }
                }
            }
        }
        // (7)
        if objects.len() != req.records.len() {
            return Err("record_not_object".into());
        }
        // (8) OPEN: the documents do not place the trigger among the checks; it
        // comes after the column and record checks, before the campaign.
        if let Some(t) = &req.trigger {
            match (t.get("call"), t.get("workflow")) {
                (Some(_), Some(_)) => return Err("conflicting_trigger".into()),
                (Some(Json::Object(_)), None) | (None, Some(Json::Bool(true))) => {}
                (None, Some(Json::String(name))) if !name.trim().is_empty() => {}
                _ => return Err("invalid_trigger".into()),
            }
        }
        // (9)
        if let Some(name) = &req.campaign
            && !self.campaigns.iter().any(|c| c.name == *name)
        {
            return Err("no_such_campaign".into());
        }
        Ok(())
    }

    /// R7: normalizes and validates one record on its own.
    fn validate(
        &self,
        index: u32,
        obj: &Map<String, Json>,
        empty: EmptyValues,
        opts: &ValueOpts,
    ) -> Rec {
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
            match (col.name.as_str(), normalize(col.ty, v, opts)) {
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
        self.run_request(&ModelRequest::from(req))
    }

    /// Runs a bulk request given as JSON, read by [`parse_request`].
    pub fn bulk_json(&mut self, req: &Json) -> Result<Report, String> {
        let req = parse_request(req)?;
        self.run_request(&req)
    }

    fn run_request(&mut self, req: &ModelRequest) -> Result<Report, String> {
        // R21, before every other check: a stored id replays or is reused.
        let body = canonical_body(req);
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
        self.check_request(req, self.records_max)?;
        let (report, _) = self.execute(req, usize::MAX);
        if matches!(report.status, Status::Applied | Status::Partial)
            && let Some(id) = &req.request_id
        {
            self.requests.insert(id.clone(), (body, report.clone()));
        }
        Ok(report)
    }

    /// Runs a request given as JSON as a job (R17) whose runner applies
    /// `chunk_records` records per transaction. `Err` for a body the engine could
    /// not read (nothing is submitted then).
    pub fn job_json(&mut self, req: &Json, chunk_records: usize) -> Result<ModelJob, String> {
        let req = parse_request(req)?;
        Ok(self.job(&req, chunk_records))
    }

    /// semantics.md "Jobs": a request-level problem fails the job with its code
    /// (the job limit stands for the direct one). Otherwise a job is one request
    /// for its semantics: its report is the one request's, except
    /// `summary.batches`, which the model leaves as a direct request's. Under
    /// `skip` each chunk of `chunk_records` records commits on its own, with its
    /// events; under `abort` the whole request commits at once.
    pub fn job(&mut self, req: &ModelRequest, chunk_records: usize) -> ModelJob {
        if let Err(code) = self.check_request(req, JOB_RECORDS_MAX) {
            return ModelJob::Failed(code);
        }
        let chunk = match req.on_invalid {
            OnInvalid::Abort => usize::MAX,
            OnInvalid::Skip => chunk_records.max(1),
        };
        let (report, events) = self.execute(req, chunk);
        ModelJob::Succeeded(Box::new(report), events)
    }

    /// Validates, plans and applies a request that passed the request-level
    /// checks; commits it (contacts, memberships, events) unless it is rejected.
    /// Returns the report and the events of each transaction, `chunk` records per
    /// transaction (`usize::MAX`: one).
    fn execute(&mut self, req: &ModelRequest, chunk: usize) -> (Report, Vec<Vec<ModelEvent>>) {
        let opts = value_opts(req).expect("checked by check_request");
        let recs: Vec<Rec> = req
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                Json::Object(obj) => self.validate(i as u32, obj, req.empty_values, &opts),
                _ => unreachable!("checked by check_request"),
            })
            .collect();

        let initial: Vec<Work> = self.contacts.clone();
        let left_out = match req.on_duplicate {
            OnDuplicate::Merge => BTreeMap::new(),
            policy => Self::left_out(&initial, &recs, req, policy),
        };
        let mut state = initial.clone();
        let (outs, snapshots) = self.run(&mut state, &recs, req, &left_out, chunk);
        let (events, members) = self.derive_events(req, &initial, &outs, &snapshots, chunk);

        let report = Self::assemble(req, &recs, outs);
        if !matches!(report.status, Status::Applied | Status::Partial) {
            // Rejected: nothing written, nobody joins, no event.
            return (report, Vec::new());
        }
        self.contacts = state;
        if let Some(name) = &req.campaign {
            let c = self
                .campaigns
                .iter_mut()
                .find(|c| c.name == *name)
                .expect("checked by check_request");
            c.members = members;
        }
        for e in &events {
            self.events.extend(e.iter().cloned());
        }
        (report, events)
    }

    /// R18 from semantics.md "Change feed", per transaction (`snapshots[i]` is the
    /// state after transaction `i`, which holds records `i*chunk ..`): each contact
    /// written in it (an applied record inserted or updated it), in the order it was
    /// first written there, gets `insert` when it is new, else `rekey` (detail: the
    /// key before), one `alias` per alias it did not have before, then `update` when
    /// its columns changed or nothing else describes the write; then one `join` per
    /// contact an applied record of the transaction reached that is not yet in the
    /// campaign. Every event carries the key and version after the transaction, and
    /// the request's trigger. Also returns the campaign's members afterwards.
    fn derive_events(
        &self,
        req: &ModelRequest,
        initial: &[Work],
        outs: &[Out],
        snapshots: &[Vec<Work>],
        chunk: usize,
    ) -> (Vec<Vec<ModelEvent>>, Vec<u64>) {
        let trigger = req.trigger.clone().map(Json::Object);
        let mut members: Vec<u64> = req
            .campaign
            .as_ref()
            .and_then(|n| self.campaigns.iter().find(|c| c.name == *n))
            .map(|c| c.members.clone())
            .unwrap_or_default();
        let find = |state: &[Work], uid: u64| -> Option<ModelContact> {
            state.iter().find(|w| w.uid == uid).map(|w| w.c.clone())
        };
        let mut all = Vec::new();
        let mut before: &[Work] = initial;
        for (t, after) in snapshots.iter().enumerate() {
            let lo = t.saturating_mul(chunk).min(outs.len());
            let hi = lo.saturating_add(chunk).min(outs.len());
            let mut written: Vec<u64> = Vec::new();
            let mut joins: Vec<u64> = Vec::new();
            for out in &outs[lo..hi] {
                let Some(uid) = out.reached else { continue };
                if matches!(out.outcome, Outcome::Inserted | Outcome::Updated)
                    && !written.contains(&uid)
                {
                    written.push(uid);
                }
                if req.campaign.is_some() && !members.contains(&uid) {
                    members.push(uid);
                    joins.push(uid);
                }
            }
            let event = |kind: &'static str, c: &ModelContact, detail: Option<String>| ModelEvent {
                kind,
                key: c.key.clone(),
                version: c.version,
                detail,
                trigger: trigger.clone(),
            };
            let mut events = Vec::new();
            for uid in written {
                let now = find(after, uid).expect("a written contact exists");
                let Some(old) = find(before, uid) else {
                    events.push(event("insert", &now, None));
                    continue;
                };
                let mut described = false;
                if old.key != now.key {
                    events.push(event("rekey", &now, Some(old.key.clone())));
                    described = true;
                }
                // A new alias is one the contact did not have before, also its own
                // former key given back to it as an alias (R9 after R11).
                for a in &now.aliases {
                    if !old.aliases.contains(a) {
                        events.push(event("alias", &now, Some(a.clone())));
                        described = true;
                    }
                }
                if old.columns != now.columns || !described {
                    events.push(event("update", &now, None));
                }
            }
            for uid in joins {
                let now = find(after, uid).expect("a joining contact exists");
                events.push(event("join", &now, req.campaign.clone()));
            }
            if !events.is_empty() {
                all.push(events);
            }
            before = after;
        }
        (all, members)
    }

    /// R8 against the contacts of the request's start only: the contact a valid
    /// record reaches there, if exactly one.
    fn reach_at_start(initial: &[Work], rec: &Rec, req: &ModelRequest) -> Option<u64> {
        let key = rec.key.as_deref()?;
        for w in initial {
            if w.c.key == key || w.c.aliases.iter().any(|a| a == key) {
                return Some(w.uid);
            }
        }
        let mut found: Vec<u64> = Vec::new();
        for w in initial {
            let by_email = req.match_email
                && rec.sets.contains_key("email")
                && w.c.columns.get("email") == rec.sets.get("email");
            let by_phone = req.match_phone
                && rec.sets.contains_key("gsm")
                && w.c.columns.get("gsm") == rec.sets.get("gsm");
            if (by_email || by_phone) && !found.contains(&w.uid) {
                found.push(w.uid);
            }
        }
        if found.len() == 1 {
            found.first().copied()
        } else {
            None
        }
    }

    /// R6a for `first`, `last` and `reject`: the records left out, with their
    /// result. Occurrences of one contact are decided from the request's start:
    /// each valid record is labelled by its key, and by the contact it reaches
    /// there or else by its matched-on email and phone; records sharing a label are
    /// one contact's occurrences, transitively. Each group keeps one record (its first,
    /// or its last under `last`).
    fn left_out(
        initial: &[Work],
        recs: &[Rec],
        req: &ModelRequest,
        policy: OnDuplicate,
    ) -> BTreeMap<u32, Out> {
        // (record index, labels) of every record with no validation error.
        let mut labelled: Vec<(u32, Vec<Label>)> = Vec::new();
        for rec in recs {
            if !rec.valid() {
                continue;
            }
            let key = Label::Key(rec.key.clone().expect("valid record"));
            let labels = match Self::reach_at_start(initial, rec, req) {
                Some(uid) => vec![key, Label::Contact(uid)],
                None => {
                    let mut ls = vec![key];
                    if req.match_email
                        && let Some(e) = rec.sets.get("email")
                    {
                        ls.push(Label::Email(e.clone()));
                    }
                    if req.match_phone
                        && let Some(p) = rec.sets.get("gsm")
                    {
                        ls.push(Label::Phone(p.clone()));
                    }
                    ls
                }
            };
            labelled.push((rec.index, labels));
        }
        // Connected components: group[i] is the smallest position of its group.
        let mut group: Vec<usize> = (0..labelled.len()).collect();
        loop {
            let mut changed = false;
            for i in 0..labelled.len() {
                for j in 0..labelled.len() {
                    let shares = labelled[i].1.iter().any(|l| labelled[j].1.contains(l));
                    if shares && group[i] != group[j] {
                        let (lo, hi) = (group[i].min(group[j]), group[i].max(group[j]));
                        for g in &mut group {
                            if *g == hi {
                                *g = lo;
                            }
                        }
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut out = BTreeMap::new();
        for i in 0..labelled.len() {
            let members: Vec<u32> = (0..labelled.len())
                .filter(|j| group[*j] == group[i])
                .map(|j| labelled[j].0)
                .collect();
            let kept = if policy == OnDuplicate::Last {
                *members.iter().max().expect("one member at least")
            } else {
                *members.iter().min().expect("one member at least")
            };
            let index = labelled[i].0;
            if index == kept {
                continue;
            }
            let rec = recs.iter().find(|r| r.index == index).expect("a record");
            let (outcome, errors) = if policy == OnDuplicate::Reject {
                let mut e = record_error(index, &rec.key, None, ErrorCode::DuplicateInBatch);
                e.duplicate_of = Some(kept);
                (Outcome::Failed, vec![e])
            } else {
                (Outcome::Duplicate, Vec::new())
            };
            out.insert(
                index,
                Out {
                    outcome,
                    matched_by: None,
                    contact_key: None,
                    duplicate_of: Some(kept),
                    errors,
                    warnings: Vec::new(),
                    reached: None,
                },
            );
        }
        out
    }

    /// Applies the records one at a time, in order, to `state` (R6), as `merge`
    /// does. Records in `left_out` are not run: their given result stands and they
    /// reach nothing.
    fn run(
        &mut self,
        state: &mut Vec<Work>,
        recs: &[Rec],
        req: &ModelRequest,
        left_out: &BTreeMap<u32, Out>,
        chunk: usize,
    ) -> (Vec<Out>, Vec<Vec<Work>>) {
        // contact uid → index of the first applied record that reached it.
        let mut reached: Vec<(u64, u32)> = Vec::new();
        let mut outs = Vec::new();
        // The state after every `chunk` records, and after the last.
        let mut snapshots = Vec::new();
        for (i, rec) in recs.iter().enumerate() {
            let out = if let Some(o) = left_out.get(&rec.index) {
                o.clone()
            } else if !rec.valid() {
                Out {
                    outcome: Outcome::Failed,
                    matched_by: None,
                    contact_key: None,
                    duplicate_of: None,
                    errors: rec.errors.clone(),
                    warnings: Vec::new(),
                    reached: None,
                }
            } else {
                let out = self.step(state, rec, req, &reached);
                if let Some(uid) = out.reached
                    && !reached.iter().any(|(u, _)| *u == uid)
                {
                    reached.push((uid, rec.index));
                }
                out
            };
            outs.push(out);
            if (i + 1) % chunk == 0 || i + 1 == recs.len() {
                snapshots.push(state.clone());
            }
        }
        (outs, snapshots)
    }

    fn step(
        &mut self,
        state: &mut Vec<Work>,
        rec: &Rec,
        req: &ModelRequest,
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
            let email = if req.match_email {
                rec.sets.get("email")
            } else {
                None
            };
            let phone = if req.match_phone {
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
            return self.insert(state, rec, key, req);
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

        // R16: the contact would join the campaign without a value.
        let missing = self.campaign_missing(req, &columns);
        if !missing.is_empty() {
            let mut out = fail(
                matched,
                with_dup(record_error(
                    index,
                    &rec.key,
                    None,
                    ErrorCode::CampaignColumnMissing,
                )),
            );
            out.errors = missing
                .iter()
                .map(|c| {
                    with_dup(record_error(
                        index,
                        &rec.key,
                        Some(c),
                        ErrorCode::CampaignColumnMissing,
                    ))
                })
                .collect();
            return out;
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
        // R6a: the contact was reached by an earlier applied record of the request
        // (under first/last/reject only through the request's own changes).
        if let Some(first) = dup {
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

    /// semantics.md "Campaigns": the campaign's required columns a contact with
    /// these columns lacks. Every contact a record of a campaign
    /// request reaches joins it (once), so every such record is checked.
    // OPEN: a contact already in the campaign is checked too (it "joins" again and
    // keeps its place). The documents do not order the errors: they follow the
    // campaign's list of required columns, as the engine reports them.
    fn campaign_missing(
        &self,
        req: &ModelRequest,
        columns: &BTreeMap<String, Json>,
    ) -> Vec<String> {
        let Some(c) = req
            .campaign
            .as_ref()
            .and_then(|n| self.campaigns.iter().find(|c| c.name == *n))
        else {
            return Vec::new();
        };
        c.required
            .iter()
            .filter(|col| !columns.contains_key(*col))
            .cloned()
            .collect()
    }

    fn insert(&mut self, state: &mut Vec<Work>, rec: &Rec, key: String, req: &ModelRequest) -> Out {
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
        let missing = self.campaign_missing(req, &columns);
        if !missing.is_empty() {
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
                            Some(c),
                            ErrorCode::CampaignColumnMissing,
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

    /// R14 and R15, from their text: a record that failed makes the request
    /// `rejected` under `abort` (nothing written; its valid records `not_applied`,
    /// no warnings); under `skip` the rest applies (`partial`), unless no record
    /// applied at all (`rejected`). No failure: `applied`. A record left out as
    /// `duplicate` is neither applied nor failed.
    fn assemble(req: &ModelRequest, recs: &[Rec], outs: Vec<Out>) -> Report {
        let is_applied =
            |o: Outcome| matches!(o, Outcome::Inserted | Outcome::Updated | Outcome::Unchanged);
        let mut any_failed = false;
        let mut any_applied = false;
        for o in &outs {
            any_failed |= o.outcome == Outcome::Failed;
            any_applied |= is_applied(o.outcome);
        }
        let status = if !any_failed {
            Status::Applied
        } else if req.on_invalid == OnInvalid::Abort || !any_applied {
            Status::Rejected
        } else {
            Status::Partial
        };
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        for (rec, o) in recs.iter().zip(outs) {
            let outcome = if status == Status::Rejected && is_applied(o.outcome) {
                Outcome::NotApplied
            } else {
                o.outcome
            };
            results.push(RecordResult {
                index: rec.index,
                key: rec.key.clone(),
                outcome,
                matched_by: o.matched_by,
                contact_key: o.contact_key,
                duplicate_of: o.duplicate_of,
            });
            errors.extend(o.errors);
            if status != Status::Rejected {
                warnings.extend(o.warnings);
            }
        }
        let mut summary = Summary {
            total: 0,
            valid: 0,
            invalid: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            failed: 0,
            batches: 0,
        };
        for (rec, r) in recs.iter().zip(&results) {
            summary.total += 1;
            if rec.valid() {
                summary.valid += 1;
            } else {
                summary.invalid += 1;
            }
            match r.outcome {
                Outcome::Inserted => summary.inserted += 1,
                Outcome::Updated => summary.updated += 1,
                Outcome::Unchanged => summary.unchanged += 1,
                Outcome::Failed => summary.failed += 1,
                Outcome::Duplicate | Outcome::NotApplied => {}
            }
        }
        // One transaction for an applied or partial request, none for a rejected one.
        if status != Status::Rejected {
            summary.batches = 1;
        }
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
