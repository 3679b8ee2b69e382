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

/// `merge_fields` as it was written before it became one merge of two sorted lists:
/// every input applied with `set` / `remove` onto a copy of the stored fields.
fn merge_by_set(existing: Option<&Fields>, rec: &NormalizedRecord) -> Fields {
    let mut f = existing.cloned().unwrap_or_default();
    for (id, input) in &rec.inputs {
        match input {
            FieldInput::Set(v) => f.set(*id, v.clone()),
            FieldInput::Clear => match default_value(*id) {
                Some(d) => f.set(*id, d),
                None => {
                    f.remove(*id);
                }
            },
        }
    }
    f
}

// The merge keeps every stored field the record does not name, and applies the
// inputs in order: a later input for the same column wins, as with `set`. The
// statuses and defaults added afterwards are the same for both.
#[test]
fn merge_equals_applying_inputs_one_by_one() {
    let cat = Catalog::new(&[]);
    let ids = [
        FieldId::NAME,
        FieldId::EMAIL,
        FieldId::EMAIL_STATUS,
        FieldId::STATUS,
        FieldId::GSM,
        FieldId::PRIORITY,
        FieldId::METADATA,
    ];
    let mut seed = 0x5EED_u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for case in 0..3000 {
        let mut stored = Fields::new();
        for id in ids {
            if next(2) == 0 {
                stored.set(id, s(&format!("old{}", next(3))));
            }
        }
        let mut inputs: Vec<(FieldId, FieldInput)> = (0..next(6))
            .map(|_| {
                let id = ids[next(ids.len() as u64) as usize];
                let input = if next(4) == 0 {
                    FieldInput::Clear
                } else {
                    FieldInput::Set(s(&format!("new{}", next(3))))
                };
                (id, input)
            })
            .collect();
        // Sorted by id as normalize_record leaves them; a stable sort keeps the
        // record's order among inputs for the same column.
        inputs.sort_by_key(|(id, _)| *id);
        let rec = NormalizedRecord {
            index: 0,
            key: Some("k".into()),
            new_key: None,
            inputs,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        for existing in [None, Some(&stored)] {
            // No column is required, so every merge succeeds.
            let got = merge_fields(existing, &rec, &cat).expect("nothing required");
            let want = merge_by_set(existing, &rec);
            // The status rules and insert defaults (tested above) may set the four
            // engine-managed columns after the merge; leave those out.
            let managed = [
                FieldId::STATUS,
                FieldId::PRIORITY,
                FieldId::EMAIL_STATUS,
                FieldId::GSM_STATUS,
            ];
            let compared = |f: &Fields| -> Vec<(FieldId, Value)> {
                f.iter()
                    .filter(|(id, _)| !managed.contains(id))
                    .map(|(id, v)| (id, v.clone()))
                    .collect()
            };
            let (got, want) = (compared(&got), compared(&want));
            assert_eq!(
                got, want,
                "case {case}, stored {existing:?}, inputs {:?}",
                rec.inputs
            );
        }
    }
}
