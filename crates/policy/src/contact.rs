//! The domain form of a contact: its key, its field values by column id, its
//! aliases and system fields. Storage has its own encoded form (store::codec).

use compact_str::CompactString;

use crate::column::FieldId;

/// One normalized column value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// Text (also email, phone, status `A`/`P`, dates `YYYY-MM-DD`). Held inline up
    /// to 24 bytes (most names, phones, statuses and dates), so such values cost no
    /// allocation when normalized, decoded or copied.
    Str(CompactString),
    /// Boolean.
    Bool(bool),
    /// Integer (`priority`, integer columns).
    Int(i64),
    /// Decimal in canonical text form (`-12.5`, `0`, `3`).
    Decimal(String),
    /// Any JSON value, as canonical JSON text (object keys sorted).
    Json(String),
}

impl Value {
    /// The text of a `Str` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// This value as a JSON value (for reports and exports).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::String(s.as_str().to_owned()),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            // A JSON number when it converts exactly (up to ~17 significant digits),
            // else the canonical text, so no digit is ever lost.
            Value::Decimal(d) => serde_json::from_str::<serde_json::Number>(d)
                .ok()
                .filter(|n| n.to_string() == *d)
                .map_or_else(
                    || serde_json::Value::String(d.clone()),
                    serde_json::Value::Number,
                ),
            // Stored text was produced by serde_json within the depth limit, so it
            // parses; if it ever did not, return the text rather than lose it.
            Value::Json(j) => {
                serde_json::from_str(j).unwrap_or_else(|_| serde_json::Value::String(j.clone()))
            }
        }
    }
}

/// The set fields of a contact, sorted by column id, without `contact_key`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Fields(Vec<(FieldId, Value)>);

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    /// No fields, with room for `n` without reallocating.
    pub fn with_capacity(n: usize) -> Self {
        Fields(Vec::with_capacity(n))
    }

    /// Builds from pairs already sorted by id without duplicates, as storage keeps
    /// them, reusing their vector; pairs in any other order are sorted as
    /// [`Fields::from_pairs`] would.
    pub fn from_sorted_pairs(pairs: Vec<(FieldId, Value)>) -> Self {
        if pairs.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
            Fields(pairs)
        } else {
            Fields::from_pairs(pairs)
        }
    }

    /// Builds from pairs in any order; a later pair for the same id wins.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (FieldId, Value)>) -> Self {
        let mut f = Fields::new();
        for (id, v) in pairs {
            f.set(id, v);
        }
        f
    }

    /// The value of a column, if set.
    pub fn get(&self, id: FieldId) -> Option<&Value> {
        self.0
            .binary_search_by_key(&id, |(k, _)| *k)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v)
    }

    /// The text of a column, if set and text.
    pub fn get_str(&self, id: FieldId) -> Option<&str> {
        self.get(id).and_then(Value::as_str)
    }

    /// Sets a column.
    pub fn set(&mut self, id: FieldId, value: Value) {
        match self.0.binary_search_by_key(&id, |(k, _)| *k) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => self.0.insert(i, (id, value)),
        }
    }

    /// Clears a column; returns whether it was set.
    pub fn remove(&mut self, id: FieldId) -> bool {
        match self.0.binary_search_by_key(&id, |(k, _)| *k) {
            Ok(i) => {
                self.0.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a column is set.
    pub fn contains(&self, id: FieldId) -> bool {
        self.get(id).is_some()
    }

    /// Every set field in id order, as a slice.
    pub fn as_slice(&self) -> &[(FieldId, Value)] {
        &self.0
    }

    /// Every set field in id order.
    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// Number of set fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A contact as the engine holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The primary identity, unique in its workspace with the aliases.
    pub key: String,
    /// Set columns.
    pub fields: Fields,
    /// Other keys that find this contact, in the order they were added.
    pub aliases: Vec<String>,
    /// Starts at 1, +1 on every change.
    pub version: u64,
    /// Creation time, microseconds since the Unix epoch (UTC).
    pub created_at_us: i64,
    /// Last change time, microseconds since the Unix epoch (UTC).
    pub updated_at_us: i64,
}

impl Contact {
    /// The normalized email, if set.
    pub fn email(&self) -> Option<&str> {
        self.fields.get_str(FieldId::EMAIL)
    }

    /// The normalized gsm (E.164), if set.
    pub fn gsm(&self) -> Option<&str> {
        self.fields.get_str(FieldId::GSM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn from_sorted_pairs_equals_from_pairs_in_any_order() {
        let cases = [
            vec![],
            vec![(FieldId(1), s("a")), (FieldId(4), s("b"))],
            vec![(FieldId(4), s("b")), (FieldId(1), s("a"))],
            vec![(FieldId(1), s("a")), (FieldId(1), s("later"))],
        ];
        for pairs in cases {
            assert_eq!(
                Fields::from_sorted_pairs(pairs.clone()),
                Fields::from_pairs(pairs.clone()),
                "{pairs:?}"
            );
        }
    }
}
