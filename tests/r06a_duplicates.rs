//! R6, R6a: duplicates inside one request under merge / first / last / reject,
//! reached by the same key, an alias, or an email match; `duplicate_of` everywhere.

mod common;

use common::*;
use contactdb::{MatchedBy, Mode, OnDuplicate, OnInvalid, Outcome, Report, Status, Workspace};
use serde_json::{Value, json};

fn three_of_a() -> Vec<Value> {
    vec![
        json!({"contact_key": "a", "name": "A1", "email": "a@x.com"}),
        json!({"contact_key": "b", "name": "B"}),
        json!({"contact_key": "a", "name": "A2"}),
        json!({"contact_key": "a", "surname": "S3"}),
    ]
}

fn run(ws: &Workspace, policy: OnDuplicate, mode: Mode, records: Vec<Value>) -> Report {
    expect_ok(ws.bulk(&dup(mode, policy, records)))
}

fn dup_of(r: &Report) -> Vec<Option<u32>> {
    r.results.iter().map(|x| x.duplicate_of).collect()
}

// R6a merge: every occurrence applies in order, each patching the last; later
// occurrences carry duplicate_in_batch naming the first.
#[test]
fn merge_applies_all_in_order() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let rep = run(&ws, OnDuplicate::Merge, Mode::Upsert, three_of_a());
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Inserted,
            Outcome::Inserted,
            Outcome::Updated,
            Outcome::Updated
        ]
    );
    assert_eq!(dup_of(&rep), vec![None, None, Some(0), Some(0)]);
    let dw: Vec<(u32, Option<u32>)> = rep
        .warnings
        .iter()
        .filter(|w| code_text(&w.code) == "duplicate_in_batch")
        .map(|w| (w.index, w.duplicate_of))
        .collect();
    assert_eq!(dw, vec![(2, Some(0)), (3, Some(0))]);
    assert_eq!(rep.summary.inserted, 2);
    assert_eq!(rep.summary.updated, 2);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("A2"));
    assert_eq!(col(&a, "surname"), json!("S3"));
    assert_eq!(col(&a, "email"), json!("a@x.com"));
    assert_eq!(a.version, 3);
    assert_clean(&db)?;
    Ok(())
}

// R6a first: only the first occurrence applies; the others are `duplicate`.
#[test]
fn first_keeps_first() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let rep = run(&ws, OnDuplicate::First, Mode::Upsert, three_of_a());
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Inserted,
            Outcome::Inserted,
            Outcome::Duplicate,
            Outcome::Duplicate
        ]
    );
    assert_eq!(dup_of(&rep), vec![None, None, Some(0), Some(0)]);
    for i in [2, 3] {
        assert_eq!(rep.results[i].matched_by, None);
        assert_eq!(rep.results[i].contact_key, None);
    }
    assert!(rep.errors.is_empty());
    assert_eq!(rep.summary.failed, 0);
    assert_eq!(rep.summary.inserted, 2);
    assert_eq!(rep.summary.updated, 0);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("A1"));
    assert_eq!(col(&a, "surname"), json!(null));
    assert_eq!(a.version, 1);
    assert_clean(&db)?;
    Ok(())
}

// R6a last: only the last occurrence applies, as if the others were absent.
#[test]
fn last_keeps_last() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let rep = run(&ws, OnDuplicate::Last, Mode::Upsert, three_of_a());
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Duplicate,
            Outcome::Inserted,
            Outcome::Duplicate,
            Outcome::Inserted
        ]
    );
    assert_eq!(dup_of(&rep), vec![Some(3), None, Some(3), None]);
    assert_eq!(rep.summary.inserted, 2);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "surname"), json!("S3"));
    assert_eq!(col(&a, "name"), json!(null));
    assert_eq!(col(&a, "email"), json!(null));
    assert_eq!(a.version, 1);

    // On an existing contact: the last record updates it once.
    let rep = run(
        &ws,
        OnDuplicate::Last,
        Mode::Update,
        vec![
            json!({"contact_key": "a", "name": "N1"}),
            json!({"contact_key": "a", "name": "N2"}),
        ],
    );
    assert_eq!(outcomes(&rep), vec![Outcome::Duplicate, Outcome::Updated]);
    assert_eq!(dup_of(&rep), vec![Some(1), None]);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("N2"));
    assert_eq!(a.version, 2);
    assert_clean(&db)?;
    Ok(())
}

// R6a reject: later occurrences fail with duplicate_in_batch; under abort nothing
// is written, under skip the first applies.
#[test]
fn reject_fails_later_occurrences() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let rep = run(&ws, OnDuplicate::Reject, Mode::Upsert, three_of_a());
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::NotApplied,
            Outcome::NotApplied,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    let e: Vec<(u32, &str, Option<u32>)> = rep
        .errors
        .iter()
        .map(|e| (e.index, e.code.as_str(), e.duplicate_of))
        .collect();
    assert_eq!(
        e,
        vec![
            (2, "duplicate_in_batch", Some(0)),
            (3, "duplicate_in_batch", Some(0))
        ]
    );
    assert_eq!(ws.count()?, 0);
    assert_eq!(rep.summary.failed, 2);
    assert_eq!(rep.summary.invalid, 0);

    let mut r = dup(Mode::Upsert, OnDuplicate::Reject, three_of_a());
    r.on_invalid = OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Inserted,
            Outcome::Inserted,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    assert_eq!(dup_of(&rep), vec![None, None, Some(0), Some(0)]);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("A1"));
    assert_eq!(a.version, 1);
    assert_clean(&db)?;
    Ok(())
}

// R6a: the same contact reached through an email match and through an alias is a
// duplicate too.
#[test]
fn duplicates_via_email_and_alias() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "c", "email": "c@x.com"})])?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "p", "email": "c@x.com", "name": "P"}),
            json!({"contact_key": "q", "email": "C@X.COM", "name": "Q"}),
            json!({"contact_key": "c", "name": "C"}),
            json!({"contact_key": "p", "surname": "via alias"}),
        ],
    );
    r.on_duplicate = OnDuplicate::First;
    let rep = ws.bulk(&r)?;
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Updated,
            Outcome::Duplicate,
            Outcome::Duplicate,
            Outcome::Duplicate
        ]
    );
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(dup_of(&rep), vec![None, Some(0), Some(0), Some(0)]);
    let c = must_get(&ws, "c")?;
    assert_eq!(c.aliases, vec!["p".to_owned()]);
    assert_eq!(col(&c, "name"), json!("P"));
    assert_eq!(col(&c, "surname"), json!(null));
    assert_eq!(c.version, 2);
    assert!(ws.get("q")?.is_none());
    Ok(())
}

// Semantics: under merge a key given twice to an insert request is already_exists
// (with duplicate_of); under first it is a duplicate.
#[test]
fn insert_twice_merge_vs_first() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let recs = vec![
        json!({"contact_key": "k", "name": "one"}),
        json!({"contact_key": "k", "name": "two"}),
    ];
    let rep = run(&ws, OnDuplicate::Merge, Mode::Insert, recs.clone());
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(outcomes(&rep), vec![Outcome::NotApplied, Outcome::Failed]);
    let e = &rep.errors[0];
    assert_eq!(
        (e.index, e.code.as_str(), e.duplicate_of),
        (1, "already_exists", Some(0))
    );
    assert_eq!(rep.results[1].duplicate_of, Some(0));
    assert_eq!(ws.count()?, 0);

    let rep = run(&ws, OnDuplicate::First, Mode::Insert, recs);
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted, Outcome::Duplicate]);
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("one"));
    Ok(())
}

// R6a: failed records reach no contact and are never occurrences.
#[test]
fn failed_records_are_not_occurrences() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let mut r = dup(
        Mode::Upsert,
        OnDuplicate::Reject,
        vec![
            json!({"contact_key": "k", "email": "bad"}),
            json!({"contact_key": "k", "name": "ok"}),
        ],
    );
    r.on_invalid = OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    assert_eq!(outcomes(&rep), vec![Outcome::Failed, Outcome::Inserted]);
    assert_eq!(dup_of(&rep), vec![None, None]);
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("ok"));
    Ok(())
}

// Semantics (R6a last): the kept record matches as if the left-out ones were not in
// the request — here it no longer matches by email and inserts its own contact.
#[test]
fn last_rematches_without_left_out_records() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "n", "email": "e@x.com", "name": "N"}),
            json!({"contact_key": "m", "email": "e@x.com", "surname": "M"}),
        ],
    );
    r.on_duplicate = OnDuplicate::Last;
    let rep = ws.bulk(&r)?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), vec![Outcome::Duplicate, Outcome::Inserted]);
    assert_eq!(dup_of(&rep), vec![Some(1), None]);
    assert_eq!(rep.results[1].matched_by, None);
    assert!(ws.get("n")?.is_none());
    let m = must_get(&ws, "m")?;
    assert!(m.aliases.is_empty());
    assert_eq!(col(&m, "name"), json!(null));
    assert_eq!(col(&m, "surname"), json!("M"));
    assert_eq!(ws.count()?, 1);
    assert_clean(&db)?;
    Ok(())
}

// R6a first: occurrences are grouped transitively from the request's start: record 1
// shares key n with record 0 and email f with record 2, so all three are one
// contact; only record 0 applies, and nobody sees the left-out values.
#[test]
fn first_groups_transitively_through_keys_and_values() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "n", "email": "e@x.com"}),
            json!({"contact_key": "n", "email": "f@x.com"}),
            json!({"contact_key": "q", "email": "f@x.com"}),
        ],
    );
    r.on_duplicate = OnDuplicate::First;
    let rep = ws.bulk(&r)?;
    assert_eq!(
        outcomes(&rep),
        vec![Outcome::Inserted, Outcome::Duplicate, Outcome::Duplicate]
    );
    assert_eq!(dup_of(&rep), vec![None, Some(0), Some(0)]);
    assert_eq!(col(&must_get(&ws, "n")?, "email"), json!("e@x.com"));
    assert!(ws.get("q")?.is_none());
    assert!(must_get(&ws, "n")?.aliases.is_empty());
    assert_clean(&db)?;
    Ok(())
}

// R6a last: identity is decided from the request's start, so a record whose email
// matched the contact there is an occurrence of it even though an earlier record
// of the request changes that email; only the last occurrence applies, and no
// left-out record's key becomes an alias.
#[test]
fn r06a_last_decides_identity_from_the_request_start() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "s", "email": "e1@x.com"})])?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "s", "email": "e2@x.com"}),
            json!({"contact_key": "y", "email": "e1@x.com"}),
            json!({"contact_key": "s", "name": "n"}),
        ],
    );
    r.match_on = contactdb::MatchOn {
        email: true,
        phone: false,
    };
    r.on_duplicate = OnDuplicate::Last;
    let rep = ws.bulk(&r)?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(
        outcomes(&rep),
        vec![Outcome::Duplicate, Outcome::Duplicate, Outcome::Updated]
    );
    assert_eq!(dup_of(&rep), vec![Some(2), Some(2), None]);
    let s = must_get(&ws, "s")?;
    assert_eq!(col(&s, "email"), json!("e1@x.com"));
    assert_eq!(col(&s, "name"), json!("n"));
    assert!(s.aliases.is_empty());
    assert_eq!(s.version, 2);
    assert!(ws.get("y")?.is_none());
    assert_clean(&db)?;
    Ok(())
}

// R6a last + R11: a rename and a record naming the new key are two contacts at the
// request's start (the new key resolved to nothing), so both apply in order.
#[test]
fn r06a_last_keeps_a_rename_and_the_record_after_it() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a"})])?;
    let mut r = dup(
        Mode::Update,
        OnDuplicate::Last,
        vec![
            json!({"contact_key": "a", "new_contact_key": "b"}),
            json!({"contact_key": "b", "name": "X"}),
        ],
    );
    r.on_invalid = OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    assert_eq!(rep.status, Status::Applied, "{:?}", rep.errors);
    assert_eq!(outcomes(&rep), vec![Outcome::Updated, Outcome::Updated]);
    assert!(ws.get("a")?.is_none());
    let b = must_get(&ws, "b")?;
    assert_eq!(col(&b, "name"), json!("X"));
    assert_eq!(b.version, 3);
    assert_clean(&db)?;
    Ok(())
}

// R6a reject: the later occurrences of a group fail, naming the first, and reach
// nothing; the first applies.
#[test]
fn r06a_reject_fails_later_occurrences_from_the_request_start() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "s", "email": "e1@x.com"})])?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "s", "email": "e2@x.com"}),
            json!({"contact_key": "y", "email": "e1@x.com"}),
            json!({"contact_key": "z", "name": "Z"}),
        ],
    );
    r.on_duplicate = OnDuplicate::Reject;
    r.on_invalid = OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(
        outcomes(&rep),
        vec![Outcome::Updated, Outcome::Failed, Outcome::Inserted]
    );
    let e: Vec<_> = rep
        .errors
        .iter()
        .map(|e| (e.index, e.code.as_str(), e.duplicate_of))
        .collect();
    assert_eq!(e, vec![(1, "duplicate_in_batch", Some(0))]);
    assert_eq!(rep.results[1].matched_by, None);
    assert_eq!(col(&must_get(&ws, "s")?, "email"), json!("e2@x.com"));
    assert!(ws.get("y")?.is_none());
    assert_clean(&db)?;
    Ok(())
}
