//! Fixtures shared by the merge crate's integration tests.

use contactdb_policy::{Contact, FieldId, Fields, Value};

/// A committed contact with this key, email and gsm, status `A` and priority 5.
pub fn contact(key: &str, email: Option<&str>, gsm: Option<&str>) -> Contact {
    let mut f = Fields::new();
    if let Some(e) = email {
        f.set(FieldId::EMAIL, Value::Str(e.into()));
    }
    if let Some(g) = gsm {
        f.set(FieldId::GSM, Value::Str(g.into()));
    }
    f.set(FieldId::STATUS, Value::Str("A".into()));
    f.set(FieldId::PRIORITY, Value::Int(5));
    Contact {
        key: key.into(),
        fields: f,
        aliases: vec![],
        version: 1,
        created_at_us: 0,
        updated_at_us: 0,
    }
}
