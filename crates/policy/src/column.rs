//! The column catalog: predefined columns, their aliases, custom columns,
//! and name normalization (ASCII, case-insensitive, stored in snake_case).

use std::borrow::Cow;

use ahash::AHashMap;
use serde::{Deserialize, Serialize};

use crate::limits::{COLUMN_NAME_BYTES_MAX, STRING_MAX_LEN_CEILING, TEXT_CHARS_MAX};

/// Stable numeric id of a column, used on disk instead of its name.
///
/// Predefined columns have fixed ids below [`FieldId::CUSTOM_FIRST`]; custom columns
/// get the next free id of their workspace when declared, and keep it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldId(pub u16);

impl FieldId {
    /// `contact_key`: never stored among the fields (it is the contact's key).
    pub const CONTACT_KEY: FieldId = FieldId(0);
    /// `name`
    pub const NAME: FieldId = FieldId(1);
    /// `surname`
    pub const SURNAME: FieldId = FieldId(2);
    /// `gender`
    pub const GENDER: FieldId = FieldId(3);
    /// `email`
    pub const EMAIL: FieldId = FieldId(4);
    /// `email_permit`
    pub const EMAIL_PERMIT: FieldId = FieldId(5);
    /// `gsm_permit`
    pub const GSM_PERMIT: FieldId = FieldId(6);
    /// `email_status`
    pub const EMAIL_STATUS: FieldId = FieldId(7);
    /// `gsm_status`
    pub const GSM_STATUS: FieldId = FieldId(8);
    /// `status`
    pub const STATUS: FieldId = FieldId(9);
    /// `gsm`
    pub const GSM: FieldId = FieldId(10);
    /// `birthday`
    pub const BIRTHDAY: FieldId = FieldId(11);
    /// `subscription_start`
    pub const SUBSCRIPTION_START: FieldId = FieldId(12);
    /// `priority`
    pub const PRIORITY: FieldId = FieldId(13);
    /// `metadata`
    pub const METADATA: FieldId = FieldId(14);
    /// `new_contact_key`: a pseudo-column, never stored.
    pub const NEW_CONTACT_KEY: FieldId = FieldId(15);
    /// First id handed to a custom column.
    pub const CUSTOM_FIRST: u16 = 256;
}

/// How a column's values are normalized and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `contact_key` / `new_contact_key`: trimmed, 1..=255 bytes, no control characters.
    Key,
    /// Free text of at most this many characters, trimmed.
    Text {
        /// Most characters.
        chars_max: u32,
    },
    /// Email: trimmed, lowercased, validated.
    Email,
    /// Phone: normalized to E.164.
    Phone,
    /// `A` / `P`, case-insensitive on input, stored upper-case.
    Status,
    /// Boolean.
    Bool,
    /// Calendar date `YYYY-MM-DD`.
    Date,
    /// Integer ≥ 0 (`priority`).
    Priority,
    /// Signed 64-bit integer.
    Integer,
    /// Decimal number, stored in canonical text form.
    Decimal,
    /// Any JSON value, at most 64 KiB serialized.
    Json,
}

/// The declared type of a custom column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ColumnType {
    /// `string(max_len)`: text of at most `max_len` characters.
    String {
        /// Most characters.
        max_len: u32,
    },
    /// 64-bit signed integer.
    Integer,
    /// Decimal number.
    Decimal,
    /// Boolean.
    Boolean,
    /// Date `YYYY-MM-DD`.
    Date,
    /// Any JSON value.
    Json,
}

impl ColumnType {
    /// The normalization kind of this type.
    pub fn kind(self) -> Kind {
        match self {
            ColumnType::String { max_len } => Kind::Text { chars_max: max_len },
            ColumnType::Integer => Kind::Integer,
            ColumnType::Decimal => Kind::Decimal,
            ColumnType::Boolean => Kind::Bool,
            ColumnType::Date => Kind::Date,
            ColumnType::Json => Kind::Json,
        }
    }
}

impl std::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnType::String { max_len } => write!(f, "string({max_len})"),
            ColumnType::Integer => f.write_str("integer"),
            ColumnType::Decimal => f.write_str("decimal"),
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Json => f.write_str("json"),
        }
    }
}

/// A custom column as a caller declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Name, `[a-z][a-z0-9_]{0,62}`, not a predefined name.
    pub name: String,
    /// Value type.
    #[serde(flatten)]
    pub ty: ColumnType,
    /// Whether bulk requests may write it. Default = `false`.
    #[serde(default)]
    pub import_enabled: bool,
    /// Whether an insert must give it a value. Default = `false`.
    #[serde(default)]
    pub required: bool,
}

impl ColumnSpec {
    /// A spec with `import_enabled = false` and `required = false`.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        ColumnSpec {
            name: name.into(),
            ty,
            import_enabled: false,
            required: false,
        }
    }

    /// Sets `import_enabled`.
    #[must_use]
    pub fn import_enabled(mut self, yes: bool) -> Self {
        self.import_enabled = yes;
        self
    }

    /// Sets `required`.
    #[must_use]
    pub fn required(mut self, yes: bool) -> Self {
        self.required = yes;
        self
    }

    /// Checks the declaration itself (name pattern, reserved names, type bounds).
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        let mut bytes = n.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !first_ok || !rest_ok || n.len() > COLUMN_NAME_BYTES_MAX {
            return Err(format!(
                "column name {n:?} must match [a-z][a-z0-9_]{{0,62}}"
            ));
        }
        if predefined_by_name(n).is_some() || alias_target(n).is_some() || is_system_field(n) {
            return Err(format!("column name {n:?} is a predefined name"));
        }
        if let ColumnType::String { max_len } = self.ty
            && (max_len == 0 || max_len > STRING_MAX_LEN_CEILING)
        {
            return Err(format!(
                "string max_len must be 1..={STRING_MAX_LEN_CEILING}, got {max_len}"
            ));
        }
        Ok(())
    }
}

/// A declared custom column with its stable id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomColumn {
    /// Stable id (≥ [`FieldId::CUSTOM_FIRST`]).
    pub id: FieldId,
    /// The declaration.
    #[serde(flatten)]
    pub spec: ColumnSpec,
}

/// One column of a workspace's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Stable id.
    pub id: FieldId,
    /// Canonical snake_case name.
    pub name: String,
    /// Normalization kind.
    pub kind: Kind,
    /// Whether bulk requests may write it (always true for predefined columns).
    pub import_enabled: bool,
    /// Whether an insert must give it a value.
    pub required: bool,
    /// Whether the column is custom.
    pub custom: bool,
}

impl ColumnDef {
    /// The name as reports carry it: borrowed from the static table for a predefined
    /// column, so naming it in a warning or error allocates nothing; a copy for a
    /// custom one.
    pub fn label(&self) -> Cow<'static, str> {
        match PREDEFINED.get(usize::from(self.id.0)) {
            Some((name, _, _)) if !self.custom && *name == self.name => Cow::Borrowed(*name),
            _ => Cow::Owned(self.name.clone()),
        }
    }
}

const PREDEFINED: &[(&str, FieldId, Kind)] = &[
    ("contact_key", FieldId::CONTACT_KEY, Kind::Key),
    (
        "name",
        FieldId::NAME,
        Kind::Text {
            chars_max: TEXT_CHARS_MAX,
        },
    ),
    (
        "surname",
        FieldId::SURNAME,
        Kind::Text {
            chars_max: TEXT_CHARS_MAX,
        },
    ),
    (
        "gender",
        FieldId::GENDER,
        Kind::Text {
            chars_max: TEXT_CHARS_MAX,
        },
    ),
    ("email", FieldId::EMAIL, Kind::Email),
    ("email_permit", FieldId::EMAIL_PERMIT, Kind::Bool),
    ("gsm_permit", FieldId::GSM_PERMIT, Kind::Bool),
    ("email_status", FieldId::EMAIL_STATUS, Kind::Status),
    ("gsm_status", FieldId::GSM_STATUS, Kind::Status),
    ("status", FieldId::STATUS, Kind::Status),
    ("gsm", FieldId::GSM, Kind::Phone),
    ("birthday", FieldId::BIRTHDAY, Kind::Date),
    (
        "subscription_start",
        FieldId::SUBSCRIPTION_START,
        Kind::Date,
    ),
    ("priority", FieldId::PRIORITY, Kind::Priority),
    ("metadata", FieldId::METADATA, Kind::Json),
    ("new_contact_key", FieldId::NEW_CONTACT_KEY, Kind::Key),
];

/// Aliases of the customer-import and bulk-add field names, after snake-casing.
const ALIASES: &[(&str, &str)] = &[
    ("identifier", "contact_key"),
    ("phone_number", "gsm"),
    ("first_name", "name"),
    ("last_name", "surname"),
];

/// Engine-maintained, read-only fields.
pub const SYSTEM_FIELDS: &[&str] = &["aliases", "version", "created_at", "updated_at"];

fn predefined_by_name(name: &str) -> Option<usize> {
    PREDEFINED.iter().position(|(n, _, _)| *n == name)
}

fn alias_target(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, t)| *t)
}

/// Whether `name` (already canonical) is a read-only system field.
pub fn is_system_field(name: &str) -> bool {
    SYSTEM_FIELDS.contains(&name)
}

/// Canonical form of a column name as written by a caller: camelCase and
/// PascalCase split into words, spaces and `-` become `_`, all lower-case.
/// `phoneNumber` → `phone_number`, `EMAIL` → `email`, `First Name` → `first_name`.
/// Returns `None` when the name is empty or not ASCII.
pub fn canonical_name(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || !raw.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(raw.len() + 4);
    let mut prev: Option<u8> = None;
    for b in raw.bytes() {
        let c = match b {
            b' ' | b'-' => b'_',
            _ => b,
        };
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            out.push('_');
        }
        out.push(char::from(c.to_ascii_lowercase()));
        prev = Some(c);
    }
    Some(out)
}

/// The columns of one workspace: the predefined ones and its custom ones.
#[derive(Debug, Clone)]
pub struct Catalog {
    columns: Vec<ColumnDef>,
    by_name: AHashMap<String, usize>,
    by_id: AHashMap<FieldId, usize>,
}

/// Why a column name does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// No such column.
    Unknown,
    /// A read-only system field (`aliases`, `version`, …).
    ReadOnly,
}

impl Catalog {
    /// The catalog of a workspace with these custom columns.
    pub fn new(custom: &[CustomColumn]) -> Self {
        let mut columns: Vec<ColumnDef> = PREDEFINED
            .iter()
            .map(|(name, id, kind)| ColumnDef {
                id: *id,
                name: (*name).to_owned(),
                kind: *kind,
                import_enabled: true,
                required: *id == FieldId::CONTACT_KEY,
                custom: false,
            })
            .collect();
        columns.extend(custom.iter().map(|c| ColumnDef {
            id: c.id,
            name: c.spec.name.clone(),
            kind: c.spec.ty.kind(),
            import_enabled: c.spec.import_enabled,
            required: c.spec.required,
            custom: true,
        }));
        let by_name = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let by_id = columns.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        Catalog {
            columns,
            by_name,
            by_id,
        }
    }

    /// Every column, predefined first.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.columns
    }

    /// Resolves a caller's column name (any case, aliases accepted).
    pub fn resolve(&self, raw: &str) -> Result<&ColumnDef, ResolveError> {
        let name = canonical_name(raw).ok_or(ResolveError::Unknown)?;
        let name = alias_target(&name).map_or(name, str::to_owned);
        if is_system_field(&name) {
            return Err(ResolveError::ReadOnly);
        }
        self.by_name
            .get(&name)
            .and_then(|i| self.columns.get(*i))
            .ok_or(ResolveError::Unknown)
    }

    /// The column with this id.
    pub fn by_id(&self, id: FieldId) -> Option<&ColumnDef> {
        // The predefined columns come first, in id order, so theirs is their index.
        match self.columns.get(usize::from(id.0)) {
            Some(c) if c.id == id => Some(c),
            _ => self.by_id.get(&id).and_then(|i| self.columns.get(*i)),
        }
    }

    /// The custom columns that an insert must give a value.
    pub fn required_custom(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.custom && c.required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Option<&str>) {
        assert_eq!(canonical_name(raw).as_deref(), expected, "{raw:?}");
    }

    // R2: names are ASCII, matched case-insensitively, stored in snake_case.
    #[test]
    fn canonical_names() {
        check("email", Some("email"));
        check("EMAIL", Some("email"));
        check("phoneNumber", Some("phone_number"));
        check("PhoneNumber", Some("phone_number"));
        check("contact_key", Some("contact_key"));
        check("Contact_Key", Some("contact_key"));
        check("First Name", Some("first_name"));
        check(" name ", Some("name"));
        check("nämé", None);
        check("", None);
    }

    // R2 aliases.
    #[test]
    fn aliases_resolve() {
        let cat = Catalog::new(&[]);
        for (raw, want) in [
            ("identifier", "contact_key"),
            ("phoneNumber", "gsm"),
            ("phone_number", "gsm"),
            ("first_name", "name"),
            ("lastName", "surname"),
            ("GSM", "gsm"),
        ] {
            assert_eq!(cat.resolve(raw).map(|c| c.name.as_str()), Ok(want), "{raw}");
        }
        assert_eq!(cat.resolve("version"), Err(ResolveError::ReadOnly));
        assert_eq!(cat.resolve("nope"), Err(ResolveError::Unknown));
    }

    // Catalog::by_id and ColumnDef::label rely on the predefined table's order.
    #[test]
    fn predefined_ids_are_their_positions() {
        for (i, (_, id, _)) in PREDEFINED.iter().enumerate() {
            assert_eq!(usize::from(id.0), i);
        }
        let custom = [CustomColumn {
            id: FieldId(FieldId::CUSTOM_FIRST),
            spec: ColumnSpec::new("tier", ColumnType::Integer),
        }];
        let cat = Catalog::new(&custom);
        for c in cat.columns() {
            assert_eq!(cat.by_id(c.id), Some(c));
            assert_eq!(c.label(), c.name.as_str());
            assert_eq!(
                matches!(c.label(), Cow::Borrowed(_)),
                !c.custom,
                "{}",
                c.name
            );
        }
        assert_eq!(cat.by_id(FieldId(200)), None);
    }

    // R3 column names.
    #[test]
    fn spec_validation() {
        let ok = ColumnSpec::new("loyalty_tier", ColumnType::String { max_len: 10 });
        assert!(ok.validate().is_ok());
        for bad in ["Tier", "1tier", "email", "identifier", "version", "", "a-b"] {
            let s = ColumnSpec::new(bad, ColumnType::Integer);
            assert!(s.validate().is_err(), "{bad}");
        }
        let long = ColumnSpec::new("a".repeat(64), ColumnType::Integer);
        assert!(long.validate().is_err());
        let zero = ColumnSpec::new("t", ColumnType::String { max_len: 0 });
        assert!(zero.validate().is_err());
    }
}
