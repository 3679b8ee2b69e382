//! Field-merge rules: how a record's inputs change a contact's fields (R7), the
//! status rules (R12), defaults, and required columns (R3).

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
/// the record gives that status itself (R12).
pub fn merge_fields(
    existing: Option<&Fields>,
    rec: &NormalizedRecord,
    catalog: &Catalog,
) -> Result<Fields, Vec<MissingRequired>> {
    // Room for every input and the defaults and statuses set below, so that no
    // `set` reallocates.
    let room = rec.inputs.len() + 4;
    let mut fields =
        existing.map_or_else(|| Fields::with_capacity(room), |f| f.clone_with_room(room));
    let mut missing = Vec::new();
    for (id, input) in &rec.inputs {
        match input {
            FieldInput::Set(v) => fields.set(*id, v.clone()),
            FieldInput::Clear => {
                match default_value(*id) {
                    Some(d) => fields.set(*id, d),
                    None => {
                        fields.remove(*id);
                    }
                }
                if let Some(col) = catalog.by_id(*id).filter(|c| c.required && c.custom) {
                    missing.push(MissingRequired {
                        column: col.label(),
                    });
                }
            }
        }
    }
    match existing {
        None => {
            for id in [FieldId::STATUS, FieldId::PRIORITY] {
                if !fields.contains(id)
                    && let Some(d) = default_value(id)
                {
                    fields.set(id, d);
                }
            }
            for (value, status) in [
                (FieldId::EMAIL, FieldId::EMAIL_STATUS),
                (FieldId::GSM, FieldId::GSM_STATUS),
            ] {
                if fields.contains(value) && !fields.contains(status) {
                    fields.set(status, Value::Str(CompactString::const_new("A")));
                }
            }
            for col in catalog.required_custom() {
                if !fields.contains(col.id) && !missing.iter().any(|m| m.column == col.name) {
                    missing.push(MissingRequired {
                        column: col.label(),
                    });
                }
            }
        }
        Some(old) => {
            for (value, status) in [
                (FieldId::EMAIL, FieldId::EMAIL_STATUS),
                (FieldId::GSM, FieldId::GSM_STATUS),
            ] {
                let new = fields.get(value);
                if new.is_some() && new != old.get(value) && rec.input(status).is_none() {
                    fields.set(status, Value::Str(CompactString::const_new("A")));
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(fields)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests;
