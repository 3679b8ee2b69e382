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
