//! R12, R13: status auto-'A' rules on insert and update, and unchanged records
//! keeping their version and updated_at.

mod common;

use std::time::Duration;

use common::*;
use contactdb::{Mode, Outcome, Status, Workspace};
use serde_json::{Value, json};

/// Upserts one record and returns the stored (status, email_status, gsm_status).
fn statuses(ws: &Workspace, record: Value) -> (Value, Value, Value) {
    let key = expect_some(
        record.get("contact_key").and_then(Value::as_str),
        "contact_key",
    )
    .to_owned();
    let rep = expect_ok(upsert(ws, vec![record]));
    assert_ne!(rep.status, Status::Rejected, "{:?}", rep.errors);
    let c = expect_some(expect_ok(ws.get(&key)), &key);
    (
        col(&c, "status"),
        col(&c, "email_status"),
        col(&c, "gsm_status"),
    )
}

fn s(v: &str) -> Value {
    json!(v)
}

const NONE: Value = Value::Null;

// R12: defaults on insert.
#[test]
fn insert_status_defaults() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let cases: Vec<(Value, (Value, Value, Value))> = vec![
        (json!({"contact_key": "k1"}), (s("A"), NONE, NONE)),
        (
            json!({"contact_key": "k2", "email": "a@x.com"}),
            (s("A"), s("A"), NONE),
        ),
        (
            json!({"contact_key": "k3", "gsm": "+905551234567"}),
            (s("A"), NONE, s("A")),
        ),
        (
            json!({"contact_key": "k4", "email": "a@x.com", "gsm": "+905551234567"}),
            (s("A"), s("A"), s("A")),
        ),
        // explicit values win
        (
            json!({"contact_key": "k5", "status": "p", "email": "a@x.com", "email_status": "P", "gsm": "+905551234567", "gsm_status": "p"}),
            (s("P"), s("P"), s("P")),
        ),
        // a status without the value it describes is kept as given
        (
            json!({"contact_key": "k6", "email_status": "P"}),
            (s("A"), s("P"), NONE),
        ),
        // an empty email sets no email_status
        (
            json!({"contact_key": "k7", "email": "", "gsm": null}),
            (s("A"), NONE, NONE),
        ),
    ];
    for (record, expected) in cases {
        let shown = record.to_string();
        assert_eq!(statuses(&ws, record), expected, "{shown}");
    }
    Ok(())
}

// R12: on update, a new non-empty email/gsm sets its status to A unless the record
// sets it; the same value, a cleared value or an explicit status leave it alone.
#[test]
fn update_status_rules() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let base = json!({"contact_key": "k", "email": "a@x.com", "email_status": "P",
                      "gsm": "+905551234567", "gsm_status": "P", "status": "P"});
    seed(&ws, vec![base.clone()])?;
    let cases: Vec<(Value, (Value, Value, Value))> = vec![
        // same email (other spelling) → no change to email_status
        (
            json!({"contact_key": "k", "email": " A@X.COM "}),
            (s("P"), s("P"), s("P")),
        ),
        // new email → email_status A; gsm untouched
        (
            json!({"contact_key": "k", "email": "b@x.com"}),
            (s("P"), s("A"), s("P")),
        ),
        // new gsm → gsm_status A
        (
            json!({"contact_key": "k", "gsm": "0090 555 000 00 01"}),
            (s("P"), s("A"), s("A")),
        ),
    ];
    for (record, expected) in cases {
        let shown = record.to_string();
        assert_eq!(statuses(&ws, record), expected, "{shown}");
    }

    // Explicit statuses win over the rule.
    seed(&ws, vec![base.clone()])?;
    assert_eq!(
        statuses(
            &ws,
            json!({"contact_key": "k", "email": "c@x.com", "email_status": "p", "gsm": "+905550000002", "gsm_status": "P"})
        ),
        (s("P"), s("P"), s("P"))
    );
    // Clearing the email does not set email_status to A.
    assert_eq!(
        statuses(&ws, json!({"contact_key": "k", "email": null})),
        (s("P"), s("P"), s("P"))
    );
    // Setting an email again (from none) is a change to a new value → A.
    assert_eq!(
        statuses(&ws, json!({"contact_key": "k", "email": "d@x.com"})),
        (s("P"), s("A"), s("P"))
    );
    // status itself has no automatic rule on update.
    assert_eq!(
        statuses(&ws, json!({"contact_key": "k", "name": "x"})),
        (s("P"), s("A"), s("P"))
    );
    // The gsm rule also applies to a record matched by email (same email, new gsm).
    assert_eq!(col(&must_get(&ws, "k")?, "gsm_status"), json!("P"));
    let rep = ws.bulk(&match_all(
        Mode::Update,
        json!({"contact_key": "other", "email": "d@x.com", "gsm": "+905550000003"}),
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    assert_eq!(
        read(&ws, "k", &["gsm", "gsm_status"])?,
        [json!("+905550000003"), json!("A")]
    );
    assert_clean(&db)?;
    Ok(())
}

// R13: a record equal to the stored values is unchanged: version and updated_at stay.
#[test]
fn unchanged_keeps_version_and_updated_at() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let rec = json!({"contact_key": "k", "name": "Ann", "email": "ann@x.com",
                     "gsm": "+905551234567", "birthday": "1990-01-02",
                     "email_permit": true, "priority": 3, "metadata": {"a": 1, "b": [2]}});
    seed(&ws, vec![rec.clone()])?;
    let before = must_get(&ws, "k")?;
    std::thread::sleep(Duration::from_millis(5));

    let same_other_spelling = json!({"contact_key": " k ", "name": " Ann ", "email": "ANN@x.com",
        "gsm": "0090 555 123 45 67", "birthday": "1990-01-02 ", "email_permit": "yes",
        "priority": "3", "metadata": {"b": [2], "a": 1}, "status": "a", "email_status": "A"});
    for r in [
        rec.clone(),
        same_other_spelling,
        json!({"contact_key": "k"}),
        json!({"contact_key": "k", "surname": null}),
    ] {
        let shown = r.to_string();
        let rep = upsert(&ws, vec![r])?;
        assert_eq!(outcomes(&rep), vec![Outcome::Unchanged], "{shown}");
        assert_eq!(rep.status, Status::Applied, "{shown}");
        assert_eq!(rep.summary.unchanged, 1, "{shown}");
        assert_eq!(rep.summary.updated, 0, "{shown}");
        let now = must_get(&ws, "k")?;
        assert_eq!(now, before, "{shown}: the stored contact changed");
    }
    // A real change rises the version and moves updated_at, not created_at.
    let rep = upsert(&ws, json!({"contact_key": "k", "name": "Anna"}))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    let after = must_get(&ws, "k")?;
    assert_eq!(after.version, 2);
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.created_at, before.created_at);
    assert_clean(&db)?;
    Ok(())
}

// Semantics: change-then-change-back inside one request still writes: the version
// rises once per applied changing record.
#[test]
fn change_and_back_in_one_request() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "k", "name": "Ann"}))?;
    let rep = upsert(
        &ws,
        vec![
            json!({"contact_key": "k", "name": "Bob"}),
            json!({"contact_key": "k", "name": "Ann"}),
            json!({"contact_key": "k", "name": "Ann"}),
        ],
    )?;
    assert_eq!(
        outcomes(&rep),
        vec![Outcome::Updated, Outcome::Updated, Outcome::Unchanged]
    );
    assert_eq!(
        read(&ws, "k", &["name", "version"])?,
        [json!("Ann"), json!(3)]
    );
    Ok(())
}

// R13: a request of only unchanged records is `applied` with one batch and writes
// nothing (all versions stay).
#[test]
fn all_unchanged_request() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let recs: Vec<Value> = (0..20)
        .map(|i| json!({"contact_key": format!("k{i}"), "name": format!("n{i}")}))
        .collect();
    seed(&ws, recs.clone())?;
    let before = ws.contacts()?;
    let rep = upsert(&ws, recs)?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(rep.summary.unchanged, 20);
    assert_eq!(rep.summary.batches, 1);
    assert_eq!(ws.contacts()?, before);
    Ok(())
}

// Semantics: created_at/updated_at are one timestamp per request.
#[test]
fn one_timestamp_per_request() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let recs: Vec<Value> = (0..500)
        .map(|i| json!({"contact_key": format!("k{i:03}")}))
        .collect();
    seed(&ws, recs)?;
    let all = ws.contacts()?;
    assert_eq!(all.len(), 500);
    let t = all[0].created_at;
    assert!(all.iter().all(|c| c.created_at == t && c.updated_at == t));
    // Keys come back in key order.
    let keys: Vec<&str> = all.iter().map(|c| c.key.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    std::thread::sleep(Duration::from_millis(2));
    seed(
        &ws,
        vec![
            json!({"contact_key": "k001", "name": "x"}),
            json!({"contact_key": "k002", "name": "y"}),
        ],
    )?;
    let a = must_get(&ws, "k001")?;
    let b = must_get(&ws, "k002")?;
    assert_eq!(a.updated_at, b.updated_at);
    assert!(a.updated_at > t);
    assert_eq!(a.created_at, t);
    assert_eq!(must_get(&ws, "k003")?.updated_at, t);
    Ok(())
}
