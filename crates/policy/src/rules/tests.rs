//! Unit tests of `rules`.

use super::*;
use crate::Limits;
use crate::column::{ColumnSpec, ColumnType, CustomColumn};
use crate::record::normalize_record;
use crate::request::{BulkRequest, Mode, prepare};
use serde_json::json;

fn catalog() -> Catalog {
    Catalog::new(&[CustomColumn {
        id: FieldId(256),
        spec: ColumnSpec::new("plan", ColumnType::String { max_len: 20 })
            .import_enabled(true)
            .required(true),
    }])
}

fn rec(mode: Mode, v: serde_json::Value) -> NormalizedRecord {
    let cat = catalog();
    let req = BulkRequest::new(mode, vec![v]);
    let p = prepare(&req, &cat, &Limits::default()).expect("valid request");
    normalize_record(0, &req.records[0], &cat, &p)
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

// R12 defaults on insert; R3 required on insert.
#[test]
fn insert_defaults() {
    let cat = catalog();
    let r = rec(
        Mode::Insert,
        json!({"contact_key":"k","email":"A@B.co","plan":"x"}),
    );
    let f = merge_fields(None, &r, &cat).expect("valid");
    assert_eq!(f.get(FieldId::STATUS), Some(&s("A")));
    assert_eq!(f.get(FieldId::EMAIL_STATUS), Some(&s("A")));
    assert_eq!(f.get(FieldId::GSM_STATUS), None);
    assert_eq!(f.get(FieldId::PRIORITY), Some(&Value::Int(5)));
    let r = rec(
        Mode::Insert,
        json!({"contact_key":"k","email_status":"p","email":"a@b.co","plan":"x"}),
    );
    let f = merge_fields(None, &r, &cat).expect("valid");
    assert_eq!(f.get(FieldId::EMAIL_STATUS), Some(&s("P")));
    let r = rec(Mode::Insert, json!({"contact_key":"k"}));
    assert_eq!(
        merge_fields(None, &r, &cat),
        Err(vec![MissingRequired {
            column: "plan".into()
        }])
    );
}

// R12 on update: email change re-activates email_status unless the record sets it.
#[test]
fn update_status_rules() {
    let cat = catalog();
    let old = Fields::from_pairs([
        (FieldId::EMAIL, s("old@b.co")),
        (FieldId::EMAIL_STATUS, s("P")),
        (FieldId::GSM, s("+15550001111")),
        (FieldId::GSM_STATUS, s("P")),
        (FieldId::STATUS, s("P")),
        (FieldId(256), s("gold")),
    ]);
    let r = rec(Mode::Update, json!({"contact_key":"k","email":"new@b.co"}));
    let f = merge_fields(Some(&old), &r, &cat).expect("valid");
    assert_eq!(f.get(FieldId::EMAIL_STATUS), Some(&s("A")));
    assert_eq!(f.get(FieldId::GSM_STATUS), Some(&s("P")));
    let r = rec(Mode::Update, json!({"contact_key":"k","email":"OLD@b.co"}));
    let f = merge_fields(Some(&old), &r, &cat).expect("valid");
    assert_eq!(f, old, "same normalized email: unchanged");
    let r = rec(
        Mode::Update,
        json!({"contact_key":"k","email":"n@b.co","email_status":"P"}),
    );
    let f = merge_fields(Some(&old), &r, &cat).expect("valid");
    assert_eq!(f.get(FieldId::EMAIL_STATUS), Some(&s("P")));
    let r = rec(
        Mode::Update,
        json!({"contact_key":"k","email":null,"status":""}),
    );
    let f = merge_fields(Some(&old), &r, &cat).expect("valid");
    assert_eq!(f.get(FieldId::EMAIL), None);
    assert_eq!(f.get(FieldId::EMAIL_STATUS), Some(&s("P")));
    assert_eq!(
        f.get(FieldId::STATUS),
        Some(&s("A")),
        "cleared status restores default"
    );
    let r = rec(Mode::Update, json!({"contact_key":"k","plan":null}));
    assert!(
        merge_fields(Some(&old), &r, &cat).is_err(),
        "R7 clearing a required column"
    );
}
