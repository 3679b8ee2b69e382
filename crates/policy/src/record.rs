//! Per-record normalization and validation: every problem of a record is
//! collected, never only the first.

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::column::{Catalog, ColumnDef, FieldId};
use crate::contact::Value;
use crate::normalize::{Invalid, Normalized, normalize_with, normalized_message};
use crate::report::{ErrorCode, RecordError, Warning, WarningCode};
use crate::request::{EmptyValues, Prepared};

/// What a record says about one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldInput {
    /// Store this value.
    Set(Value),
    /// Clear the stored value (`null` or `""` with `empty_values=clear`).
    Clear,
}

/// A record after normalization: its key, its inputs, and its own problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedRecord {
    /// Position in the request.
    pub index: u32,
    /// The normalized key, when valid.
    pub key: Option<String>,
    /// The normalized `new_contact_key`, when given and valid.
    pub new_key: Option<String>,
    /// Column inputs sorted by column id; absent columns are not here.
    pub inputs: Vec<(FieldId, FieldInput)>,
    /// Validation errors. A record with any is `failed` and never matched.
    pub errors: Vec<RecordError>,
    /// `value_normalized` remarks, reported if the record is applied.
    pub warnings: Vec<Warning>,
}

impl NormalizedRecord {
    /// The input for a column, if the record gives one.
    pub fn input(&self, id: FieldId) -> Option<&FieldInput> {
        self.inputs
            .binary_search_by_key(&id, |(k, _)| *k)
            .ok()
            .and_then(|i| self.inputs.get(i))
            .map(|(_, v)| v)
    }

    /// The email the record sets (for matching).
    pub fn email(&self) -> Option<&str> {
        match self.input(FieldId::EMAIL) {
            Some(FieldInput::Set(Value::Str(s))) => Some(s),
            _ => None,
        }
    }

    /// The gsm the record sets (for matching).
    pub fn gsm(&self) -> Option<&str> {
        match self.input(FieldId::GSM) {
            Some(FieldInput::Set(Value::Str(s))) => Some(s),
            _ => None,
        }
    }

    /// Whether the record failed validation.
    pub fn is_invalid(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// Normalizes and validates one record. `record` must be an object that passed
/// [`crate::request::prepare`] (anything else yields a record with no inputs).
pub fn normalize_record(
    index: u32,
    record: &Json,
    catalog: &Catalog,
    prepared: &Prepared,
) -> NormalizedRecord {
    normalize_record_with(index, record, catalog, prepared, &mut NameCache::default())
}

/// The column names of the last record a [`NameCache`] saw, in its order, each with
/// the column it resolved to: records of one export nearly always repeat the same
/// names in the same order, so the next record's names are one comparison each
/// instead of a hash lookup. Valid for one request (one [`Prepared`]) only.
#[derive(Debug, Default)]
pub struct NameCache {
    names: Vec<(String, Option<FieldId>)>,
}

impl NameCache {
    /// The column of the `i`-th name of a record, `raw`.
    fn resolve(&mut self, i: usize, raw: &str, prepared: &Prepared) -> Option<FieldId> {
        if let Some((name, id)) = self.names.get(i)
            && name == raw
        {
            return *id;
        }
        let id = prepared.names.get(raw).copied();
        // Names are resolved in record order, so every position before `i` is held
        // and a missing slot `i` is the next one.
        debug_assert!(i <= self.names.len());
        match self.names.get_mut(i) {
            Some(slot) => {
                slot.0.clear();
                slot.0.push_str(raw);
                slot.1 = id;
            }
            None => self.names.push((raw.to_owned(), id)),
        }
        id
    }
}

/// As [`normalize_record`], resolving column names through `cache`, which must only
/// ever see records of the request `prepared` was made for.
pub fn normalize_record_with(
    index: u32,
    record: &Json,
    catalog: &Catalog,
    prepared: &Prepared,
    cache: &mut NameCache,
) -> NormalizedRecord {
    let mut out = NormalizedRecord {
        index,
        key: None,
        new_key: None,
        inputs: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let Json::Object(obj) = record else {
        return out;
    };
    out.inputs.reserve_exact(obj.len());
    let mut scan = Scan::default();
    for (i, (raw, input)) in obj.iter().enumerate() {
        let Some(col) = cache
            .resolve(i, raw, prepared)
            .and_then(|id| catalog.by_id(id))
        else {
            continue;
        };
        match normalize_with(col.kind, input, &prepared.values) {
            Ok(Normalized::Set { value, changed }) => scan.set(&mut out, col, value, changed),
            Ok(Normalized::Clear) => scan.clear(&mut out, col, prepared.empty_values),
            Err(e) => scan.fail(col, e),
        }
    }
    out.inputs.sort_by_key(|(id, _)| *id);
    let Scan {
        key_seen,
        problems,
        normalized_predefined,
        normalized_custom,
    } = scan;
    out.errors = record_errors(index, out.key.as_deref(), key_seen, problems);
    out.warnings = normalized_warnings(
        index,
        out.key.as_deref(),
        normalized_predefined,
        normalized_custom,
        catalog,
    );
    out
}

/// A problem of one column of a record: its id, its name, the code and the message.
type Problem = (FieldId, Cow<'static, str>, ErrorCode, String);

/// What the scan of one record's columns has found besides its inputs.
#[derive(Default)]
struct Scan<'c> {
    /// Whether the record names `contact_key` (valid or not).
    key_seen: bool,
    /// The record's problems, as found.
    problems: Vec<Problem>,
    /// Columns whose text normalization changed, without a list per record: the
    /// predefined ones (ids 0..16) as bits, so they come out in id order…
    normalized_predefined: u16,
    /// …custom ones (ids from 256) in a list, sorted at the end.
    normalized_custom: Vec<&'c ColumnDef>,
}

impl<'c> Scan<'c> {
    /// Takes a value to store for `col`; `changed` when normalization changed it.
    #[inline]
    fn set(&mut self, out: &mut NormalizedRecord, col: &'c ColumnDef, value: Value, changed: bool) {
        if changed {
            self.note_normalized(col);
        }
        match col.id {
            FieldId::CONTACT_KEY => {
                self.key_seen = true;
                if let Value::Str(k) = value {
                    out.key = Some(k.into_string());
                }
            }
            FieldId::NEW_CONTACT_KEY => {
                if let Value::Str(k) = value {
                    out.new_key = Some(k.into_string());
                }
            }
            id => out.inputs.push((id, FieldInput::Set(value))),
        }
    }

    /// Remembers that normalization changed `col`'s value (a `value_normalized`
    /// warning).
    #[inline]
    fn note_normalized(&mut self, col: &'c ColumnDef) {
        // Custom ids come after every predefined one, so the custom list follows
        // the bits in id order.
        debug_assert_eq!(col.custom, col.id.0 >= FieldId::CUSTOM_FIRST);
        match 1u16.checked_shl(u32::from(col.id.0)) {
            Some(bit) if !col.custom => self.normalized_predefined |= bit,
            _ => self.normalized_custom.push(col),
        }
    }

    /// Takes a `null` or empty value for `col` (`empty_values`).
    #[inline]
    fn clear(&mut self, out: &mut NormalizedRecord, col: &ColumnDef, empty: EmptyValues) {
        match col.id {
            FieldId::CONTACT_KEY => {
                self.key_seen = true;
                self.problems.push((
                    col.id,
                    col.label(),
                    ErrorCode::MissingKey,
                    "contact_key is empty".to_owned(),
                ));
            }
            // An empty new_contact_key asks for no rename.
            FieldId::NEW_CONTACT_KEY => {}
            id => {
                if empty == EmptyValues::Clear {
                    out.inputs.push((id, FieldInput::Clear));
                }
            }
        }
    }

    /// Takes an invalid value for `col`.
    fn fail(&mut self, col: &ColumnDef, e: Invalid) {
        if col.id == FieldId::CONTACT_KEY {
            self.key_seen = true;
        }
        self.problems.push((col.id, col.label(), e.code, e.message));
    }
}

/// A record's errors: its `problems`, and `missing_key` when it never named
/// `contact_key` (`key_seen` false), in a stable order: by column id, then as found.
fn record_errors(
    index: u32,
    key: Option<&str>,
    key_seen: bool,
    mut problems: Vec<Problem>,
) -> Vec<RecordError> {
    if !key_seen {
        problems.push((
            FieldId::CONTACT_KEY,
            Cow::Borrowed("contact_key"),
            ErrorCode::MissingKey,
            "the record has no contact_key".to_owned(),
        ));
    }
    problems.sort_by_key(|(id, _, _, _)| *id);
    problems
        .into_iter()
        .map(|(_, column, code, message)| RecordError {
            index,
            key: key.map(str::to_owned),
            column: Some(column),
            code,
            message,
            candidates: Vec::new(),
            duplicate_of: None,
        })
        .collect()
}

/// The `value_normalized` warnings of a record: the predefined columns of the bit
/// set `predefined` in id order, then the `custom` ones in id order.
fn normalized_warnings(
    index: u32,
    key: Option<&str>,
    predefined: u16,
    mut custom: Vec<&ColumnDef>,
    catalog: &Catalog,
) -> Vec<Warning> {
    custom.sort_by_key(|c| c.id);
    let count = predefined.count_ones() as usize + custom.len();
    let predefined = (0..u16::BITS)
        .filter(|b| predefined & (1 << b) != 0)
        .filter_map(|b| catalog.by_id(FieldId(u16::try_from(b).unwrap_or(u16::MAX))));
    let mut warnings = Vec::with_capacity(count);
    for col in predefined.chain(custom) {
        warnings.push(Warning {
            index,
            key: key.map(str::to_owned),
            column: Some(col.label()),
            code: WarningCode::ValueNormalized,
            message: Cow::Borrowed(normalized_message(col.kind)),
            duplicate_of: None,
        });
    }
    warnings
}

#[cfg(test)]
mod tests;
