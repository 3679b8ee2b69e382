//! Unit tests of `record`.

use super::*;
use crate::Limits;
use crate::request::{BulkRequest, Mode, prepare};
use serde_json::json;

// One cache across records whose names differ in set, position and spelling
// (aliases, case) gives what a fresh resolution gives for each.
#[test]
fn name_cache_answers_like_a_fresh_lookup() {
    let records = vec![
        json!({"contact_key": "a", "email": "A@x.co", "name": " N "}),
        json!({"contact_key": "b", "email": "b@x.co", "name": "M"}),
        json!({"contact_key": "c", "name": "O"}),
        json!({"contact_key": "d", "Email": "D@x.co", "gsm": "+44 1234 567890"}),
        json!({"contact_key": "e", "phoneNumber": "+441234567891", "surname": "S"}),
        json!({"EMAIL": "F@x.co", "contact_key": "f"}),
        json!({"contact_key": "g", "email": "g@x.co", "name": "P", "status": "p"}),
        json!({"contact_key": "h"}),
        json!({"contact_key": "i", "email": "i@x.co", "name": "Q"}),
    ];
    let catalog = Catalog::new(&[]);
    let req = BulkRequest::new(Mode::Upsert, records);
    let prepared = prepare(&req, &catalog, &Limits::default()).expect("valid request");
    let mut cache = NameCache::default();
    for (i, r) in req.records.iter().enumerate() {
        let i = u32::try_from(i).expect("small");
        let cached = normalize_record_with(i, r, &catalog, &prepared, &mut cache);
        let fresh = normalize_record(i, r, &catalog, &prepared);
        assert_eq!(cached, fresh, "record {i}");
        assert!(!fresh.inputs.is_empty() || i == 7, "record {i} has inputs");
    }
}

// R7: a record's errors come out by column id (a missing contact_key first), its
// value_normalized warnings predefined columns first, in id order, then custom
// ones in id order, whatever order the record names them in.
#[test]
fn errors_and_warnings_come_out_in_column_order() {
    use crate::column::{ColumnSpec, ColumnType, CustomColumn};
    let text = ColumnType::String { max_len: 20 };
    let catalog = Catalog::new(&[
        CustomColumn {
            id: FieldId(256),
            spec: ColumnSpec::new("tier", text).import_enabled(true),
        },
        CustomColumn {
            id: FieldId(257),
            spec: ColumnSpec::new("region", text).import_enabled(true),
        },
    ]);
    let records = vec![
        json!({"priority": "high", "region": " r ", "email": "no-at-sign", "name": "N"}),
        json!({"region": " r ", "status": "p", "tier": " t ", "contact_key": " k ",
               "name": " N ", "email": "A@x.co"}),
    ];
    let req = BulkRequest::new(Mode::Upsert, records);
    let prepared = prepare(&req, &catalog, &Limits::default()).expect("valid request");
    let mut cache = NameCache::default();

    let failed = normalize_record_with(0, &req.records[0], &catalog, &prepared, &mut cache);
    let errors: Vec<_> = failed
        .errors
        .iter()
        .map(|e| (e.column.as_deref(), e.code))
        .collect();
    assert_eq!(
        errors,
        [
            (Some("contact_key"), ErrorCode::MissingKey),
            (Some("email"), ErrorCode::InvalidEmail),
            (Some("priority"), ErrorCode::InvalidPriority),
        ]
    );
    let warned: Vec<_> = failed
        .warnings
        .iter()
        .map(|w| w.column.as_deref())
        .collect();
    assert_eq!(warned, [Some("region")]);

    let applied = normalize_record_with(1, &req.records[1], &catalog, &prepared, &mut cache);
    assert!(applied.errors.is_empty(), "{:?}", applied.errors);
    assert_eq!(applied.key.as_deref(), Some("k"));
    let warned: Vec<_> = applied
        .warnings
        .iter()
        .map(|w| (w.column.as_deref(), w.key.as_deref(), w.code))
        .collect();
    let w = |c| (Some(c), Some("k"), WarningCode::ValueNormalized);
    assert_eq!(
        warned,
        [
            w("contact_key"),
            w("name"),
            w("email"),
            w("status"),
            w("tier"),
            w("region")
        ]
    );
    let ids: Vec<FieldId> = applied.inputs.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [
            FieldId::NAME,
            FieldId::EMAIL,
            FieldId::STATUS,
            FieldId(256),
            FieldId(257)
        ]
    );
}
