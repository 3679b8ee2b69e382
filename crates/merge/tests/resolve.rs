//! Match resolution against an in-memory lookup: R6, R6a, R8–R13.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::contact;
use contactdb_merge::{MemLookup, Plan, plan_with_pool};
use contactdb_policy::request::prepare;
use contactdb_policy::{
    BulkRequest, Catalog, ErrorCode, FieldId, Limits, MatchOn, MatchedBy, Mode, OnDuplicate,
    OnInvalid, Outcome, Status, Value, WarningCode,
};
use serde_json::{Value as Json, json};

fn run(db: &MemLookup, req: &BulkRequest, threads: usize) -> Plan {
    let cat = Catalog::new(&[]);
    let p = prepare(req, &cat, &Limits::default()).expect("valid request");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let plan = plan_with_pool(Some(&pool), req, &p, &cat, db, 7).expect("infallible");
    if threads > 1 {
        let one = run(db, req, 1);
        assert_eq!(plan, one, "R6: parallel and sequential plans differ");
    }
    plan
}

fn req(mode: Mode, records: Vec<Json>) -> BulkRequest {
    BulkRequest::new(mode, records)
}

fn outcomes(p: &Plan) -> Vec<Outcome> {
    p.report.results.iter().map(|r| r.outcome).collect()
}

// R8, R9: a key found by email becomes an alias; a second contact with the same
// email makes the match ambiguous.
#[test]
fn email_match_adds_alias_then_ambiguous() {
    let db = MemLookup::new([contact("a", Some("x@y.co"), None)]);
    let mut r = req(
        Mode::Upsert,
        vec![json!({"contact_key":"b","email":"X@y.co","name":"N"})],
    );
    r.match_on = MatchOn::ALL;
    let p = run(&db, &r, 4);
    assert_eq!(outcomes(&p), [Outcome::Updated]);
    assert_eq!(p.report.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(p.report.results[0].contact_key.as_deref(), Some("a"));
    assert_eq!(p.writes[0].after.aliases, ["b"]);
    assert!(
        p.report
            .warnings
            .iter()
            .any(|w| w.code == WarningCode::AliasAdded)
    );

    let db = MemLookup::new([
        contact("a", Some("x@y.co"), None),
        contact("c", None, Some("+15550001111")),
    ]);
    let mut r = req(
        Mode::Upsert,
        vec![json!({"contact_key":"b","email":"x@y.co","gsm":"+1 555 000 1111"})],
    );
    r.match_on = MatchOn::ALL;
    let p = run(&db, &r, 4);
    assert_eq!(p.report.status, Status::Rejected);
    assert_eq!(p.report.errors[0].code, ErrorCode::AmbiguousMatch);
    assert_eq!(p.report.errors[0].candidates, ["a", "c"]);
}

// R6: a record sees the contact an earlier record of the same request inserted.
#[test]
fn later_record_sees_earlier_insert() {
    let db = MemLookup::new([]);
    let mut r = req(
        Mode::Upsert,
        vec![
            json!({"contact_key":"a","email":"x@y.co"}),
            json!({"contact_key":"b","email":"x@y.co","name":"B"}),
            json!({"contact_key":"b","name":"B"}),
        ],
    );
    r.match_on = MatchOn {
        email: true,
        phone: false,
    };
    let p = run(&db, &r, 3);
    assert_eq!(
        outcomes(&p),
        [Outcome::Inserted, Outcome::Updated, Outcome::Unchanged]
    );
    assert_eq!(p.report.results[1].duplicate_of, Some(0));
    assert_eq!(p.report.results[2].matched_by, Some(MatchedBy::Alias));
    assert_eq!(p.writes.len(), 1);
    assert_eq!(p.writes[0].after.version, 2);
    assert_eq!(p.writes[0].after.aliases, ["b"]);
}

// R11: a swap through a temporary key in one request.
#[test]
fn rekey_swap_in_one_request() {
    let db = MemLookup::new([contact("a", None, None), contact("b", None, None)]);
    let r = req(
        Mode::Update,
        vec![
            json!({"contact_key":"a","new_contact_key":"t"}),
            json!({"contact_key":"b","new_contact_key":"a"}),
            json!({"contact_key":"t","new_contact_key":"b"}),
            json!({"contact_key":"a","new_contact_key":"b"}),
        ],
    );
    let mut r = r;
    r.on_invalid = OnInvalid::Skip;
    let p = run(&db, &r, 2);
    assert_eq!(
        outcomes(&p),
        [
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Failed
        ]
    );
    assert_eq!(p.report.errors[0].code, ErrorCode::KeyConflict);
    let mut finals: Vec<(Option<String>, String)> = p
        .writes
        .iter()
        .map(|w| {
            (
                w.before.as_ref().map(|b| b.contact.key.clone()),
                w.after.key.clone(),
            )
        })
        .collect();
    finals.sort();
    assert_eq!(
        finals,
        [
            (Some("a".into()), "b".into()),
            (Some("b".into()), "a".into())
        ]
    );
}

// R6a: each duplicate policy on the same key given three times.
#[test]
fn duplicate_policies() {
    let recs = vec![
        json!({"contact_key":"a","name":"1"}),
        json!({"contact_key":"a","name":"2"}),
        json!({"contact_key":"a","surname":"3"}),
    ];
    let name = |p: &Plan| {
        p.writes[0]
            .after
            .fields
            .get_str(FieldId::NAME)
            .map(str::to_owned)
    };
    let db = MemLookup::new([]);
    for (policy, want, n, status) in [
        (
            OnDuplicate::Merge,
            [Outcome::Inserted, Outcome::Updated, Outcome::Updated],
            "2",
            Status::Applied,
        ),
        (
            OnDuplicate::First,
            [Outcome::Inserted, Outcome::Duplicate, Outcome::Duplicate],
            "1",
            Status::Applied,
        ),
        (
            OnDuplicate::Last,
            [Outcome::Duplicate, Outcome::Duplicate, Outcome::Inserted],
            "",
            Status::Applied,
        ),
        (
            OnDuplicate::Reject,
            [Outcome::Inserted, Outcome::Failed, Outcome::Failed],
            "1",
            Status::Partial,
        ),
    ] {
        let mut r = req(Mode::Upsert, recs.clone());
        r.on_duplicate = policy;
        r.on_invalid = OnInvalid::Skip;
        let p = run(&db, &r, 2);
        assert_eq!(outcomes(&p), want, "{policy:?}");
        assert_eq!(p.report.status, status, "{policy:?}");
        assert_eq!(name(&p).unwrap_or_default(), n, "{policy:?}");
        let dups: Vec<Option<u32>> = p.report.results.iter().map(|r| r.duplicate_of).collect();
        match policy {
            OnDuplicate::Last => assert_eq!(dups, [Some(2), Some(2), None]),
            _ => assert_eq!(dups, [None, Some(0), Some(0)], "{policy:?}"),
        }
    }
}

// R10, R14: modes and abort.
#[test]
fn modes_and_abort() {
    let db = MemLookup::new([contact("a", None, None)]);
    let r = req(
        Mode::Insert,
        vec![json!({"contact_key":"a"}), json!({"contact_key":"n"})],
    );
    let p = run(&db, &r, 2);
    assert_eq!(p.report.status, Status::Rejected);
    assert_eq!(outcomes(&p), [Outcome::Failed, Outcome::NotApplied]);
    assert_eq!(p.report.errors[0].code, ErrorCode::AlreadyExists);
    assert!(p.writes.is_empty());
    let r = req(Mode::Update, vec![json!({"contact_key":"zz"})]);
    let p = run(&db, &r, 1);
    assert_eq!(p.report.errors[0].code, ErrorCode::NotFound);
}

// R13: a record equal to the stored contact changes nothing.
#[test]
fn unchanged_writes_nothing() {
    let db = MemLookup::new([contact("a", Some("x@y.co"), None)]);
    let r = req(
        Mode::Upsert,
        vec![json!({"contact_key":"a","email":" X@Y.CO "})],
    );
    let p = run(&db, &r, 2);
    assert_eq!(outcomes(&p), [Outcome::Unchanged]);
    assert!(p.writes.is_empty());
    assert_eq!(p.report.status, Status::Applied);
    assert_eq!(p.report.summary.batches, 1);
    assert_eq!(p.report.warnings[0].code, WarningCode::ValueNormalized);
}

// Plan::writes lists contacts in the order the request first changed them, also
// when a contact was reached (unchanged) before another one changed.
#[test]
fn writes_follow_the_order_of_first_change() {
    let db = MemLookup::new([contact("a", Some("x@y.co"), None)]);
    let r = req(
        Mode::Upsert,
        vec![
            json!({"contact_key":"a","email":"x@y.co"}),
            json!({"contact_key":"b","name":"B"}),
            json!({"contact_key":"a","name":"A"}),
            json!({"contact_key":"c","name":"C"}),
        ],
    );
    let p = run(&db, &r, 2);
    assert_eq!(
        outcomes(&p),
        [
            Outcome::Unchanged,
            Outcome::Inserted,
            Outcome::Updated,
            Outcome::Inserted
        ]
    );
    let keys: Vec<&str> = p.writes.iter().map(|w| w.after.key.as_str()).collect();
    assert_eq!(keys, ["b", "a", "c"]);
}

// R6: a record whose contact an earlier record of the same request changed builds
// on that change, not on the committed state phase 1 looked up.
#[test]
fn second_record_for_a_key_builds_on_the_first() {
    let db = MemLookup::new([contact("a", None, None)]);
    let r = req(
        Mode::Upsert,
        vec![
            json!({"contact_key":"a","name":"First"}),
            json!({"contact_key":"a","surname":"Second"}),
        ],
    );
    for on_duplicate in [OnDuplicate::Merge, OnDuplicate::Last] {
        let mut r = r.clone();
        r.on_duplicate = on_duplicate;
        let p = run(&db, &r, 2);
        let after = &p.writes.last().expect("a write").after;
        let name = after.fields.get_str(FieldId::NAME);
        let surname = after.fields.get_str(FieldId::SURNAME);
        match on_duplicate {
            OnDuplicate::Merge => assert_eq!((name, surname), (Some("First"), Some("Second"))),
            _ => assert_eq!((name, surname), (None, Some("Second"))),
        }
    }
}

// R6, R11: after an earlier record renames contact `a` to `b`, a record with key
// `b` updates that contact although phase 1 found no `b` in the snapshot, keeping
// its other fields; key `a` is free and finds nothing.
#[test]
fn record_for_a_new_key_builds_on_the_renamed_contact() {
    let mut old = contact("a", Some("a@x.co"), None);
    old.fields.set(FieldId::NAME, Value::Str("Old".into()));
    let db = MemLookup::new([old]);
    let mut r = req(
        Mode::Update,
        vec![
            json!({"contact_key":"a","new_contact_key":"b"}),
            json!({"contact_key":"b","surname":"New"}),
            json!({"contact_key":"a","surname":"Lost"}),
        ],
    );
    r.on_invalid = OnInvalid::Skip;
    let p = run(&db, &r, 2);
    assert_eq!(
        outcomes(&p),
        [Outcome::Updated, Outcome::Updated, Outcome::Failed]
    );
    assert_eq!(p.writes.len(), 1);
    let after = &p.writes[0].after;
    assert_eq!(after.key, "b");
    assert_eq!(after.fields.get_str(FieldId::NAME), Some("Old"));
    assert_eq!(after.fields.get_str(FieldId::EMAIL), Some("a@x.co"));
    assert_eq!(after.fields.get_str(FieldId::SURNAME), Some("New"));
}
