//! Field-merge rules: how a record's inputs change a contact's fields, the
//! status rules, defaults, and required columns.

use std::borrow::Cow;

use compact_str::CompactString;

use crate::column::{Catalog, FieldId};
use crate::contact::{Fields, Value};
use crate::limits::PRIORITY_DEFAULT;
use crate::record::{FieldInput, NormalizedRecord};

/// The value a column takes when cleared or absent on insert, if it has a default.
/// `status` defaults to `A`, `priority` to 5; such columns are never empty.
pub fn default_value(id: FieldId) -> Option<Value> {
    match id {
        FieldId::STATUS => Some(Value::Str(CompactString::const_new("A"))),
        FieldId::PRIORITY => Some(Value::Int(PRIORITY_DEFAULT)),
        _ => None,
    }
}

/// A required column left without a value (`required_missing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRequired {
    /// The column's name.
    pub column: Cow<'static, str>,
}

/// The fields a contact has after `rec` is applied to `existing` (`None` = insert).
///
/// Absent columns keep their value; `Set` stores; `Clear` removes (or restores the
/// default of `status`/`priority`). On insert, `status` defaults to `A`, `priority`
/// to 5, and `email_status`/`gsm_status` to `A` when an email/gsm is set. On update,
/// a changed non-empty email (gsm) sets `email_status` (`gsm_status`) to `A` unless
/// the record gives that status itself.
pub fn merge_fields(
    existing: Option<&Fields>,
    rec: &NormalizedRecord,
    catalog: &Catalog,
) -> Result<Fields, Vec<MissingRequired>> {
    let mut missing = Vec::new();
    let mut fields = merge_inputs(existing, rec, catalog, &mut missing);
    match existing {
        None => {
            insert_defaults(&mut fields);
            missing_on_insert(&fields, catalog, &mut missing);
        }
        Some(old) => reset_changed_statuses(&mut fields, old, rec),
    }
    if missing.is_empty() {
        Ok(fields)
    } else {
        Err(missing)
    }
}

/// The stored fields with the record's inputs applied, each input replacing the
/// column's stored value; a required custom column the record clears goes to
/// `missing`.
fn merge_inputs(
    existing: Option<&Fields>,
    rec: &NormalizedRecord,
    catalog: &Catalog,
    missing: &mut Vec<MissingRequired>,
) -> Fields {
    // One merge of two lists sorted by column id (the stored fields and the
    // record's inputs), with room for the defaults and statuses set below, so that no
    // `set` reallocates.
    let old = existing.map_or(&[][..], Fields::as_slice);
    debug_assert!(old.is_sorted_by(|a, b| a.0 < b.0));
    debug_assert!(rec.inputs.is_sorted_by(|a, b| a.0 <= b.0));
    let mut merged: Vec<(FieldId, Value)> = Vec::with_capacity(old.len() + rec.inputs.len() + 4);
    let mut old = old.iter().peekable();
    for (id, input) in &rec.inputs {
        while let Some((kept, v)) = old.next_if(|(o, _)| o < id) {
            merged.push((*kept, v.clone()));
        }
        // The stored value, or an earlier input for the same column (a record may
        // name one column twice, through an alias): this input replaces it.
        old.next_if(|(o, _)| o == id);
        if merged.last().is_some_and(|(last, _)| last == id) {
            merged.pop();
        }
        match input {
            FieldInput::Set(v) => merged.push((*id, v.clone())),
            FieldInput::Clear => {
                if let Some(d) = default_value(*id) {
                    merged.push((*id, d));
                }
                if let Some(col) = catalog.by_id(*id).filter(|c| c.required && c.custom) {
                    missing.push(MissingRequired {
                        column: col.label(),
                    });
                }
            }
        }
    }
    merged.extend(old.cloned());
    Fields::from_sorted_pairs(merged)
}

/// The value and status column pairs of the status rules: a new email (gsm) sets its status.
const STATUS_OF: [(FieldId, FieldId); 2] = [
    (FieldId::EMAIL, FieldId::EMAIL_STATUS),
    (FieldId::GSM, FieldId::GSM_STATUS),
];

/// On insert: `status` and `priority` take their defaults when unset, and
/// `email_status` (`gsm_status`) is `A` when an email (gsm) is set without one.
fn insert_defaults(fields: &mut Fields) {
    for id in [FieldId::STATUS, FieldId::PRIORITY] {
        if !fields.contains(id)
            && let Some(d) = default_value(id)
        {
            fields.set(id, d);
        }
    }
    for (value, status) in STATUS_OF {
        if fields.contains(value) && !fields.contains(status) {
            fields.set(status, Value::Str(CompactString::const_new("A")));
        }
    }
}

/// On insert: every required custom column left without a value goes to `missing`,
/// once.
fn missing_on_insert(fields: &Fields, catalog: &Catalog, missing: &mut Vec<MissingRequired>) {
    for col in catalog.required_custom() {
        if !fields.contains(col.id) && !missing.iter().any(|m| m.column == col.name) {
            missing.push(MissingRequired {
                column: col.label(),
            });
        }
    }
}

/// On update: a changed non-empty email (gsm) sets `email_status`
/// (`gsm_status`) to `A`, unless the record gives that status itself.
fn reset_changed_statuses(fields: &mut Fields, old: &Fields, rec: &NormalizedRecord) {
    for (value, status) in STATUS_OF {
        let new = fields.get(value);
        if new.is_some() && new != old.get(value) && rec.input(status).is_none() {
            fields.set(status, Value::Str(CompactString::const_new("A")));
        }
    }
}

#[cfg(test)]
mod tests;
