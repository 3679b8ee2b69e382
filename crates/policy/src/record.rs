//! Per-record normalization and validation (R7): every problem of a record is
//! collected, never only the first.

use serde_json::Value as Json;

use crate::column::{Catalog, FieldId};
use crate::contact::Value;
use crate::normalize::{Normalized, normalize};
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
    /// The normalized `new_contact_key`, when given and valid (R11).
    pub new_key: Option<String>,
    /// Column inputs sorted by column id; absent columns are not here.
    pub inputs: Vec<(FieldId, FieldInput)>,
    /// Validation errors (R7). A record with any is `failed` and never matched.
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

    /// The email the record sets (for matching, R8).
    pub fn email(&self) -> Option<&str> {
        match self.input(FieldId::EMAIL) {
            Some(FieldInput::Set(Value::Str(s))) => Some(s),
            _ => None,
        }
    }

    /// The gsm the record sets (for matching, R8).
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
    let mut key_seen = false;
    let mut problems: Vec<(FieldId, String, ErrorCode, String)> = Vec::new();
    let mut normalized_cols: Vec<(FieldId, String)> = Vec::new();
    for (raw, input) in obj {
        let Some(col) = prepared.names.get(raw).and_then(|id| catalog.by_id(*id)) else {
            continue;
        };
        match normalize(col.kind, input) {
            Ok(Normalized::Set { value, changed }) => {
                if changed {
                    normalized_cols.push((col.id, col.name.clone()));
                }
                match col.id {
                    FieldId::CONTACT_KEY => {
                        key_seen = true;
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
            Ok(Normalized::Clear) => match col.id {
                FieldId::CONTACT_KEY => {
                    key_seen = true;
                    problems.push((
                        col.id,
                        col.name.clone(),
                        ErrorCode::MissingKey,
                        "contact_key is empty".to_owned(),
                    ));
                }
                // An empty new_contact_key asks for no rename.
                FieldId::NEW_CONTACT_KEY => {}
                id => {
                    if prepared.empty_values == EmptyValues::Clear {
                        out.inputs.push((id, FieldInput::Clear));
                    }
                }
            },
            Err(e) => {
                if col.id == FieldId::CONTACT_KEY {
                    key_seen = true;
                }
                problems.push((col.id, col.name.clone(), e.code, e.message));
            }
        }
    }
    if !key_seen {
        problems.push((
            FieldId::CONTACT_KEY,
            "contact_key".to_owned(),
            ErrorCode::MissingKey,
            "the record has no contact_key".to_owned(),
        ));
    }
    out.inputs.sort_by_key(|(id, _)| *id);
    // Stable order of problems: by column id, then as found.
    problems.sort_by_key(|(id, _, _, _)| *id);
    out.errors = problems
        .into_iter()
        .map(|(_, column, code, message)| RecordError {
            index,
            key: out.key.clone(),
            column: Some(column),
            code,
            message,
            candidates: Vec::new(),
            duplicate_of: None,
        })
        .collect();
    normalized_cols.sort_by_key(|(id, _)| *id);
    out.warnings = normalized_cols
        .into_iter()
        .map(|(_, column)| Warning {
            index,
            key: out.key.clone(),
            message: [column.as_str(), " was normalized"].concat(),
            column: Some(column),
            code: WarningCode::ValueNormalized,
            duplicate_of: None,
        })
        .collect();
    out
}
