//! Unit tests of `request`.

use super::*;
use crate::column::{ColumnSpec, ColumnType, CustomColumn};
use serde_json::json;

fn catalog() -> Catalog {
    Catalog::new(&[
        CustomColumn {
            id: FieldId(256),
            spec: ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true),
        },
        CustomColumn {
            id: FieldId(257),
            spec: ColumnSpec::new("secret", ColumnType::Integer),
        },
    ])
}

fn check(req: Json, expected: Result<(), &str>) {
    let req: BulkRequest = serde_json::from_value(req).expect("request parses");
    let got = prepare(&req, &catalog(), &Limits { records_max: 3 })
        .map(|_| ())
        .map_err(|e| e.code());
    assert_eq!(got, expected, "{req:?}");
}

// R5: every request-level error, and requests that pass.
#[test]
fn request_level_checks() {
    check(
        json!({"mode":"upsert","records":[{"contact_key":"a"}]}),
        Ok(()),
    );
    check(json!({"mode":"upsert","records":[]}), Err("no_records"));
    check(
        json!({"mode":"upsert","records":[{},{},{},{}]}),
        Err("too_many_records"),
    );
    check(
        json!({"mode":"upsert","records":[{"nope":1}]}),
        Err("unknown_column"),
    );
    check(
        json!({"mode":"upsert","records":[{"secret":1}]}),
        Err("column_not_import_enabled"),
    );
    check(
        json!({"mode":"upsert","records":[{"tier":1,"identifier":"x"}]}),
        Ok(()),
    );
    check(
        json!({"mode":"upsert","columns":["email","EMAIL"],"records":[{}]}),
        Err("column_listed_twice"),
    );
    check(
        json!({"mode":"upsert","columns":["gsm","phoneNumber"],"records":[{}]}),
        Err("column_listed_twice"),
    );
    check(
        json!({"mode":"upsert","columns":["email"],"records":[{"gsm":"1"}]}),
        Err("column_not_in_list"),
    );
    check(
        json!({"mode":"upsert","columns":["email"],"records":[{"contact_key":"k","email":"a@b.co"}]}),
        Ok(()),
    );
    check(
        json!({"mode":"upsert","records":[{"new_contact_key":"b"}]}),
        Err("new_key_not_allowed"),
    );
    check(
        json!({"mode":"insert","records":[{"new_contact_key":"b"}]}),
        Err("new_key_not_allowed"),
    );
    check(
        json!({"mode":"update","records":[{"new_contact_key":"b"}]}),
        Ok(()),
    );
    check(
        json!({"mode":"upsert","records":[[1]]}),
        Err("record_not_object"),
    );
    check(
        json!({"mode":"upsert","records":[{"identifier":"a","contact_key":"a"}]}),
        Err("record_column_twice"),
    );
    check(
        json!({"mode":"upsert","records":[{"version":3}]}),
        Err("read_only_column"),
    );
    check(
        json!({"mode":"upsert","request_id":"","records":[{}]}),
        Err("invalid_request_id"),
    );
}

// R4 defaults and JSON names.
#[test]
fn request_defaults() {
    let req: BulkRequest =
        serde_json::from_value(json!({"mode":"update","records":[{}]})).expect("parses");
    assert_eq!(req.match_on, MatchOn::KEY);
    assert_eq!(req.on_invalid, OnInvalid::Abort);
    assert_eq!(req.on_duplicate, OnDuplicate::Merge);
    assert_eq!(req.empty_values, EmptyValues::Clear);
    let req: BulkRequest =
        serde_json::from_value(json!({"mode":"upsert","match_on":["email"],"records":[{}]}))
            .expect("parses");
    assert_eq!(
        req.match_on,
        MatchOn {
            email: true,
            phone: false
        }
    );
    let back = serde_json::to_value(&req).expect("serializes");
    assert_eq!(back["match_on"], json!(["key", "email"]));
}
