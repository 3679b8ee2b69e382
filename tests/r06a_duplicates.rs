//! R6, R6a: duplicates inside one request under merge / first / last / reject,
//! reached by the same key, an alias, or an email match; `duplicate_of` everywhere.

mod common;

use common::*;
use contactdb::Outcome::{Duplicate, Failed, Inserted, NotApplied, Updated};
use contactdb::{BulkRequest, MatchOn, MatchedBy, Mode, OnDuplicate, Outcome, Report, Status};
use serde_json::{Value, json};

fn three_of_a() -> Value {
    json!([
        {"contact_key": "a", "name": "A1", "email": "a@x.com"},
        {"contact_key": "b", "name": "B"},
        {"contact_key": "a", "name": "A2"},
        {"contact_key": "a", "surname": "S3"},
    ])
}

fn dup_of(r: &Report) -> Vec<Option<u32>> {
    r.results.iter().map(|x| x.duplicate_of).collect()
}

/// Every error as (index, code, duplicate_of).
fn dup_errors(r: &Report) -> Vec<(u32, &'static str, Option<u32>)> {
    r.errors
        .iter()
        .map(|e| (e.index, e.code.as_str(), e.duplicate_of))
        .collect()
}

/// Every `duplicate_in_batch` warning as (index, duplicate_of).
fn dup_warnings(r: &Report) -> Vec<(u32, Option<u32>)> {
    r.warnings
        .iter()
        .filter(|w| code_text(&w.code) == "duplicate_in_batch")
        .map(|w| (w.index, w.duplicate_of))
        .collect()
}

/// One policy applied to `three_of_a` in an empty workspace (upsert, abort).
struct PolicyCase {
    name: &'static str,
    policy: OnDuplicate,
    status: Status,
    outcomes: [Outcome; 4],
    dup_of: [Option<u32>; 4],
    errors: &'static [(u32, &'static str, Option<u32>)],
    warnings: &'static [(u32, Option<u32>)],
    /// (inserted, updated, failed, invalid)
    summary: (u64, u64, u64, u64),
    /// Contact `a` as (name, surname, email, version); None: nothing was written.
    a: Option<(&'static str, &'static str, &'static str, u64)>,
}

const POLICIES: &[PolicyCase] = &[
    // R6a merge: every occurrence applies in order, each patching the last; later
    // occurrences carry duplicate_in_batch naming the first.
    PolicyCase {
        name: "merge applies all in order",
        policy: OnDuplicate::Merge,
        status: Status::Applied,
        outcomes: [Inserted, Inserted, Updated, Updated],
        dup_of: [None, None, Some(0), Some(0)],
        errors: &[],
        warnings: &[(2, Some(0)), (3, Some(0))],
        summary: (2, 2, 0, 0),
        a: Some(("A2", "S3", "a@x.com", 3)),
    },
    // R6a first: only the first occurrence applies; the others are `duplicate`
    // (no failure, no contact reached).
    PolicyCase {
        name: "first keeps first",
        policy: OnDuplicate::First,
        status: Status::Applied,
        outcomes: [Inserted, Inserted, Duplicate, Duplicate],
        dup_of: [None, None, Some(0), Some(0)],
        errors: &[],
        warnings: &[],
        summary: (2, 0, 0, 0),
        a: Some(("A1", "", "a@x.com", 1)),
    },
    // R6a last: only the last occurrence applies, as if the others were absent.
    PolicyCase {
        name: "last keeps last",
        policy: OnDuplicate::Last,
        status: Status::Applied,
        outcomes: [Duplicate, Inserted, Duplicate, Inserted],
        dup_of: [Some(3), None, Some(3), None],
        errors: &[],
        warnings: &[],
        summary: (2, 0, 0, 0),
        a: Some(("", "S3", "", 1)),
    },
    // R6a reject: later occurrences fail with duplicate_in_batch; under abort
    // nothing is written.
    PolicyCase {
        name: "reject fails later occurrences",
        policy: OnDuplicate::Reject,
        status: Status::Rejected,
        outcomes: [NotApplied, NotApplied, Failed, Failed],
        dup_of: [None, None, Some(0), Some(0)],
        errors: &[
            (2, "duplicate_in_batch", Some(0)),
            (3, "duplicate_in_batch", Some(0)),
        ],
        warnings: &[],
        summary: (0, 0, 2, 0),
        a: None,
    },
];

/// A stored text column, "" when unset.
fn text(v: Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

// R6a: merge / first / last / reject on three records of one contact.
#[test]
fn r06a_each_policy_on_repeated_keys() -> TestResult {
    for case in POLICIES {
        let name = case.name;
        let (_dir, db, ws) = fresh_ws()?;
        let rep = ws.bulk(&dup(Mode::Upsert, case.policy, three_of_a()))?;
        assert_eq!(rep.status, case.status, "{name}");
        assert_eq!(outcomes(&rep), case.outcomes, "{name}");
        assert_eq!(dup_of(&rep), case.dup_of, "{name}");
        assert_eq!(dup_errors(&rep), case.errors, "{name}");
        assert_eq!(dup_warnings(&rep), case.warnings, "{name}");
        let s = rep.summary;
        assert_eq!(
            (s.inserted, s.updated, s.failed, s.invalid),
            case.summary,
            "{name}"
        );
        // A left-out occurrence reaches no contact.
        for res in rep.results.iter().filter(|r| r.outcome == Duplicate) {
            assert_eq!(
                (res.matched_by, res.contact_key.as_deref()),
                (None, None),
                "{name}"
            );
        }
        match case.a {
            Some((n, sur, email, version)) => {
                let a = must_get(&ws, "a")?;
                let got = (text(col(&a, "name")), text(col(&a, "surname")));
                assert_eq!(got, (n.to_owned(), sur.to_owned()), "{name}");
                assert_eq!(text(col(&a, "email")), email, "{name}");
                assert_eq!(a.version, version, "{name}");
            }
            None => assert_eq!(ws.count()?, 0, "{name}"),
        }
        assert_clean(&db)?;
    }
    Ok(())
}

// R6a last: on an existing contact, the last record updates it once.
#[test]
fn last_on_an_existing_contact_updates_once() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a", "name": "N0"}))?;
    let recs = json!([{"contact_key": "a", "name": "N1"}, {"contact_key": "a", "name": "N2"}]);
    let rep = ws.bulk(&dup(Mode::Update, OnDuplicate::Last, recs))?;
    assert_eq!(outcomes(&rep), [Duplicate, Updated]);
    assert_eq!(dup_of(&rep), [Some(1), None]);
    assert_eq!(
        read(&ws, "a", &["name", "version"])?,
        [json!("N2"), json!(2)]
    );
    assert_clean(&db)
}

// R6a reject: under skip the first occurrence applies, the later ones fail.
#[test]
fn reject_under_skip_applies_the_first() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let rep = ws.bulk(&dup(Mode::Upsert, OnDuplicate::Reject, three_of_a()).skipping())?;
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(outcomes(&rep), [Inserted, Inserted, Failed, Failed]);
    assert_eq!(dup_of(&rep), [None, None, Some(0), Some(0)]);
    assert_eq!(
        read(&ws, "a", &["name", "version"])?,
        [json!("A1"), json!(1)]
    );
    assert_clean(&db)
}

// R6a: the same contact reached through an email match and through an alias is a
// duplicate too.
#[test]
fn duplicates_via_email_and_alias() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "c", "email": "c@x.com"}))?;
    let recs = json!([
        {"contact_key": "p", "email": "c@x.com", "name": "P"},
        {"contact_key": "q", "email": "C@X.COM", "name": "Q"},
        {"contact_key": "c", "name": "C"},
        {"contact_key": "p", "surname": "via alias"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs).on_dup(OnDuplicate::First))?;
    assert_eq!(outcomes(&rep), [Updated, Duplicate, Duplicate, Duplicate]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(dup_of(&rep), [None, Some(0), Some(0), Some(0)]);
    let c = must_get(&ws, "c")?;
    assert_eq!(c.aliases, ["p"]);
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
    let recs = json!([{"contact_key": "k", "name": "one"}, {"contact_key": "k", "name": "two"}]);
    let rep = ws.bulk(&dup(Mode::Insert, OnDuplicate::Merge, recs.clone()))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(outcomes(&rep), [NotApplied, Failed]);
    assert_eq!(dup_errors(&rep), [(1, "already_exists", Some(0))]);
    assert_eq!(rep.results[1].duplicate_of, Some(0));
    assert_eq!(ws.count()?, 0);

    let rep = ws.bulk(&dup(Mode::Insert, OnDuplicate::First, recs))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), [Inserted, Duplicate]);
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("one"));
    Ok(())
}

// R6a: failed records reach no contact and are never occurrences.
#[test]
fn failed_records_are_not_occurrences() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let recs = json!([{"contact_key": "k", "email": "bad"}, {"contact_key": "k", "name": "ok"}]);
    let rep = ws.bulk(&dup(Mode::Upsert, OnDuplicate::Reject, recs).skipping())?;
    assert_eq!(outcomes(&rep), [Failed, Inserted]);
    assert_eq!(dup_of(&rep), [None, None]);
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("ok"));
    Ok(())
}

// Semantics (R6a last): the kept record matches as if the left-out ones were not in
// the request — here it no longer matches by email and inserts its own contact.
#[test]
fn last_rematches_without_left_out_records() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let recs = json!([
        {"contact_key": "n", "email": "e@x.com", "name": "N"},
        {"contact_key": "m", "email": "e@x.com", "surname": "M"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs).on_dup(OnDuplicate::Last))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), [Duplicate, Inserted]);
    assert_eq!(dup_of(&rep), [Some(1), None]);
    assert_eq!(rep.results[1].matched_by, None);
    assert!(ws.get("n")?.is_none());
    let m = must_get(&ws, "m")?;
    assert!(m.aliases.is_empty());
    assert_eq!(col(&m, "name"), json!(null));
    assert_eq!(col(&m, "surname"), json!("M"));
    assert_eq!(ws.count()?, 1);
    assert_clean(&db)
}

// R6a first: occurrences are grouped transitively from the request's start: record 1
// shares key n with record 0 and email f with record 2, so all three are one
// contact; only record 0 applies, and nobody sees the left-out values.
#[test]
fn first_groups_transitively_through_keys_and_values() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let recs = json!([
        {"contact_key": "n", "email": "e@x.com"},
        {"contact_key": "n", "email": "f@x.com"},
        {"contact_key": "q", "email": "f@x.com"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs).on_dup(OnDuplicate::First))?;
    assert_eq!(outcomes(&rep), [Inserted, Duplicate, Duplicate]);
    assert_eq!(dup_of(&rep), [None, Some(0), Some(0)]);
    assert_eq!(col(&must_get(&ws, "n")?, "email"), json!("e@x.com"));
    assert!(ws.get("q")?.is_none());
    assert!(must_get(&ws, "n")?.aliases.is_empty());
    assert_clean(&db)
}

/// `s` with e1@x.com, and a request (with these options) that moves `s` to
/// e2@x.com before a record `y` whose e1@x.com matched `s` at the request's start,
/// then `last`.
fn moved_email(last: Value, options: fn(BulkRequest) -> BulkRequest) -> Res<(Fixture, Report)> {
    let (dir, db, ws) = seeded(json!({"contact_key": "s", "email": "e1@x.com"}))?;
    let recs = vec![
        json!({"contact_key": "s", "email": "e2@x.com"}),
        json!({"contact_key": "y", "email": "e1@x.com"}),
        last,
    ];
    let rep = ws.bulk(&options(req(Mode::Upsert, recs)))?;
    Ok(((dir, db, ws), rep))
}

// R6a last: identity is decided from the request's start, so a record whose email
// matched the contact there is an occurrence of it even though an earlier record
// of the request changes that email; only the last occurrence applies, and no
// left-out record's key becomes an alias.
#[test]
fn r06a_last_decides_identity_from_the_request_start() -> TestResult {
    let last = json!({"contact_key": "s", "name": "n"});
    let ((_dir, db, ws), rep) = moved_email(last, |r| r.matching(EMAIL).on_dup(OnDuplicate::Last))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), [Duplicate, Duplicate, Updated]);
    assert_eq!(dup_of(&rep), [Some(2), Some(2), None]);
    let s = must_get(&ws, "s")?;
    assert_eq!(col(&s, "email"), json!("e1@x.com"));
    assert_eq!(col(&s, "name"), json!("n"));
    assert!(s.aliases.is_empty());
    assert_eq!(s.version, 2);
    assert!(ws.get("y")?.is_none());
    assert_clean(&db)
}

// R6a reject: the later occurrences of a group fail, naming the first, and reach
// nothing; the first applies.
#[test]
fn r06a_reject_fails_later_occurrences_from_the_request_start() -> TestResult {
    let last = json!({"contact_key": "z", "name": "Z"});
    let reject = |r: BulkRequest| {
        r.matching(MatchOn::ALL)
            .on_dup(OnDuplicate::Reject)
            .skipping()
    };
    let ((_dir, db, ws), rep) = moved_email(last, reject)?;
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(outcomes(&rep), [Updated, Failed, Inserted]);
    assert_eq!(dup_errors(&rep), [(1, "duplicate_in_batch", Some(0))]);
    assert_eq!(rep.results[1].matched_by, None);
    assert_eq!(col(&must_get(&ws, "s")?, "email"), json!("e2@x.com"));
    assert!(ws.get("y")?.is_none());
    assert_clean(&db)
}

// R6a last + R11: a rename and a record naming the new key are two contacts at the
// request's start (the new key resolved to nothing), so both apply in order.
#[test]
fn r06a_last_keeps_a_rename_and_the_record_after_it() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a"}))?;
    let recs = json!([
        {"contact_key": "a", "new_contact_key": "b"},
        {"contact_key": "b", "name": "X"},
    ]);
    let rep = ws.bulk(&dup(Mode::Update, OnDuplicate::Last, recs).skipping())?;
    assert_eq!(rep.status, Status::Applied, "{:?}", rep.errors);
    assert_eq!(outcomes(&rep), [Updated, Updated]);
    assert!(ws.get("a")?.is_none());
    assert_eq!(
        read(&ws, "b", &["name", "version"])?,
        [json!("X"), json!(3)]
    );
    assert_clean(&db)
}
