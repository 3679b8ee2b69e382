//! R21: idempotent retries — a request_id already applied returns the stored report
//! (replayed: true) without applying again; reuse with another body is an error;
//! ids are per workspace, kept across reopen, and expire after the retention.

mod common;

use std::time::Duration;

use common::*;
use contactdb::{BulkRequest, Database, Mode, OnInvalid, Outcome, Status};
use serde_json::{Value, json};

fn with_id(id: &str, mode: Mode, records: Vec<Value>) -> BulkRequest {
    let mut r = req(mode, records);
    r.request_id = Some(id.to_owned());
    r
}

// R21: same id + same body → the stored report, replayed, nothing applied again.
#[test]
fn same_id_same_body_replays() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "name": "A"})])?;
    let r = with_id(
        "rid-1",
        Mode::Upsert,
        vec![
            json!({"contact_key": "a", "name": "A2"}),
            json!({"contact_key": "b", "email": " B@X.COM "}),
        ],
    );
    let first = ws.bulk(&r)?;
    assert_eq!(first.status, Status::Applied);
    assert!(!first.replayed);
    assert_eq!(outcomes(&first), vec![Outcome::Updated, Outcome::Inserted]);
    let after_first = ws.contacts()?;

    std::thread::sleep(Duration::from_millis(2));
    let second = ws.bulk(&r)?;
    assert!(second.replayed, "second application must be a replay");
    // The stored report of the first application, unchanged (bar the flag).
    assert_eq!(second.status, first.status);
    assert_eq!(second.summary, first.summary);
    assert_eq!(second.results, first.results);
    assert_eq!(second.errors, first.errors);
    assert_eq!(second.warnings, first.warnings);
    let mut unflagged = second.clone();
    unflagged.replayed = false;
    assert_eq!(unflagged, first);
    // Nothing applied again: same versions and timestamps.
    assert_eq!(ws.contacts()?, after_first);
    assert_eq!(must_get(&ws, "a")?.version, 2);
    // The replay flag is in the JSON.
    let v = serde_json::to_value(&second)?;
    assert_eq!(v["replayed"], json!(true));
    // try_bulk replays too.
    let third = ws.try_bulk(&r)?;
    assert!(third.replayed);
    assert_eq!(ws.contacts()?, after_first);
    assert_clean(&db)?;
    Ok(())
}

// R21: a replay does not re-apply even when the database changed in between.
#[test]
fn replay_ignores_later_changes() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let r = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "name": "A"})],
    );
    assert_eq!(outcomes(&ws.bulk(&r)?), vec![Outcome::Inserted]);
    seed(&ws, vec![json!({"contact_key": "k", "name": "B"})])?;
    let again = ws.bulk(&r)?;
    assert!(again.replayed);
    assert_eq!(outcomes(&again), vec![Outcome::Inserted]);
    let k = must_get(&ws, "k")?;
    assert_eq!(col(&k, "name"), json!("B"));
    assert_eq!(k.version, 2);
    Ok(())
}

// R21: same id with a different body → request_id_reused; nothing written.
#[test]
fn same_id_different_body_is_refused() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.bulk(&with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "name": "A"})],
    ))?;
    let before = ws.contacts()?;
    let variants = vec![
        with_id(
            "rid",
            Mode::Upsert,
            vec![json!({"contact_key": "k", "name": "B"})],
        ),
        with_id(
            "rid",
            Mode::Upsert,
            vec![
                json!({"contact_key": "k", "name": "A"}),
                json!({"contact_key": "z"}),
            ],
        ),
        with_id(
            "rid",
            Mode::Update,
            vec![json!({"contact_key": "k", "name": "A"})],
        ),
        {
            let mut r = with_id(
                "rid",
                Mode::Upsert,
                vec![json!({"contact_key": "k", "name": "A"})],
            );
            r.on_invalid = OnInvalid::Skip;
            r
        },
    ];
    for v in variants {
        match ws.bulk(&v) {
            Err(contactdb::BulkError::Request(e)) => {
                assert_eq!(e.code(), "request_id_reused");
                assert!(e.to_string().contains("rid"), "{e}");
            }
            other => panic!("expected request_id_reused, got {other:?}"),
        }
    }
    assert_eq!(ws.contacts()?, before);
    assert!(ws.get("z")?.is_none());
    assert_clean(&db)?;
    Ok(())
}

// Semantics: a rejected request stores no id; it may be retried with the same id.
#[test]
fn rejected_request_can_be_retried() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let bad = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "email": "broken"})],
    );
    let rep = ws.bulk(&bad)?;
    assert_eq!(rep.status, Status::Rejected);
    // The same rejected request again is evaluated again (not a replay).
    let rep = ws.bulk(&bad)?;
    assert!(!rep.replayed);
    assert_eq!(rep.status, Status::Rejected);
    // And a fixed body with the same id is applied.
    let good = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "email": "fixed@x.com"})],
    );
    let rep = ws.bulk(&good)?;
    assert!(!rep.replayed);
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(col(&must_get(&ws, "k")?, "email"), json!("fixed@x.com"));
    // A partial request does store its id.
    let mut p = with_id(
        "rid-p",
        Mode::Upsert,
        vec![
            json!({"contact_key": "p"}),
            json!({"contact_key": "q", "gsm": "1"}),
        ],
    );
    p.on_invalid = OnInvalid::Skip;
    assert_eq!(ws.bulk(&p)?.status, Status::Partial);
    let again = ws.bulk(&p)?;
    assert!(again.replayed);
    assert_eq!(again.status, Status::Partial);
    Ok(())
}

// R21: request ids are per workspace.
#[test]
fn ids_are_per_workspace() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    db.create_workspace("other")?;
    let other = db.workspace("other")?;
    let r = with_id("rid", Mode::Upsert, vec![json!({"contact_key": "k"})]);
    assert!(!ws.bulk(&r)?.replayed);
    let rep = other.bulk(&r)?;
    assert!(!rep.replayed, "an id of another workspace replayed");
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted]);
    assert!(other.get("k")?.is_some());
    // A different body under the same id in the other workspace is fine too.
    let r2 = with_id("rid2", Mode::Upsert, vec![json!({"contact_key": "x"})]);
    ws.bulk(&r2)?;
    let r2b = with_id("rid2", Mode::Upsert, vec![json!({"contact_key": "y"})]);
    assert_eq!(other.bulk(&r2b)?.status, Status::Applied);
    Ok(())
}

// R21: stored ids survive close and reopen.
#[test]
fn ids_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.redb");
    let r = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "name": "A"})],
    );
    let first = {
        let db = Database::open(&path)?;
        db.workspace("default")?.bulk(&r)?
    };
    let db = Database::open(&path)?;
    let ws = db.workspace("default")?;
    let again = ws.bulk(&r)?;
    assert!(again.replayed);
    assert_eq!(again.results, first.results);
    assert_eq!(must_get(&ws, "k")?.version, 1);
    let other = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "name": "B"})],
    );
    assert_eq!(request_code(ws.bulk(&other)), "request_id_reused");
    assert_clean(&db)?;
    Ok(())
}

// R21: with a retention of 0 days ids expire at once: the same request is applied
// again, and a different body under an expired id is accepted.
#[test]
fn retention_zero_expires_ids() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Database::builder()
        .request_id_retention_days(0)
        .open(dir.path().join("c.redb"))?;
    let ws = db.workspace("default")?;
    let r = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "name": "A"})],
    );
    assert!(!ws.bulk(&r)?.replayed);
    seed(&ws, vec![json!({"contact_key": "k", "name": "B"})])?;
    std::thread::sleep(Duration::from_millis(2));
    let again = ws.bulk(&r)?;
    assert!(!again.replayed, "an expired id must not replay");
    assert_eq!(outcomes(&again), vec![Outcome::Updated]);
    let k = must_get(&ws, "k")?;
    assert_eq!(col(&k, "name"), json!("A"));
    assert_eq!(k.version, 3);
    std::thread::sleep(Duration::from_millis(2));
    let other = with_id(
        "rid",
        Mode::Upsert,
        vec![json!({"contact_key": "k", "name": "C"})],
    );
    let rep = ws.bulk(&other)?;
    assert!(!rep.replayed);
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("C"));
    assert_clean(&db)?;
    Ok(())
}

// R21: the default retention (7 days) keeps ids well past the test's lifetime.
#[test]
fn default_retention_keeps_ids() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Database::builder()
        .request_id_retention_days(7)
        .open(dir.path().join("c.redb"))?;
    let ws = db.workspace("default")?;
    let r = with_id("rid", Mode::Insert, vec![json!({"contact_key": "k"})]);
    assert_eq!(ws.bulk(&r)?.status, Status::Applied);
    // Other writes (which prune expired ids) do not remove a fresh one.
    for i in 0..3 {
        seed(&ws, vec![json!({"contact_key": format!("o{i}")})])?;
    }
    std::thread::sleep(Duration::from_millis(2));
    let again = ws.bulk(&r)?;
    assert!(again.replayed);
    assert_eq!(again.status, Status::Applied);
    Ok(())
}

// R21, R20: the largest retention the builder takes (u32::MAX days, beyond i64
// microseconds) saturates instead of overflowing, and ids replay. Regression test:
// the retention in µs was `days * 86_400 * 1_000_000`, which overflowed past
// ~106,751 days.
#[test]
fn largest_retention_saturates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Database::builder()
        .request_id_retention_days(u32::MAX)
        .open(dir.path().join("c.redb"))?;
    let ws = db.workspace("default")?;
    let r = with_id("rid", Mode::Insert, vec![json!({"contact_key": "k"})]);
    assert_eq!(ws.bulk(&r)?.status, Status::Applied);
    seed(&ws, vec![json!({"contact_key": "other"})])?;
    assert!(ws.bulk(&r)?.replayed);
    assert_clean(&db)?;
    Ok(())
}

// R21: the replay comes before every check that depends on the workspace's current
// state: a retry is answered with the stored report even after the column it writes
// stopped being import-enabled.
#[test]
fn r21_replay_comes_before_column_checks() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let tier = contactdb::ColumnSpec::new("tier", contactdb::ColumnType::Integer);
    ws.declare_column(tier.clone().import_enabled(true))?;
    let r = with_id(
        "rid-flag",
        Mode::Upsert,
        vec![json!({"contact_key": "a", "tier": 3})],
    );
    let first = ws.bulk(&r)?;
    assert_eq!(first.status, Status::Applied);
    ws.declare_column(tier.import_enabled(false))?;
    let again = ws.bulk(&r)?;
    assert!(again.replayed);
    assert_eq!(again.results, first.results);
    // A new request with the column is refused as before.
    let fresh = with_id(
        "rid-other",
        Mode::Upsert,
        vec![json!({"contact_key": "a", "tier": 4})],
    );
    assert_eq!(request_code(ws.bulk(&fresh)), "column_not_import_enabled");
    Ok(())
}

// R21: "the same body" is the same request as parsed: object keys in another order,
// an option given as its default or as null, are the same body.
#[test]
fn r21_same_body_ignores_key_order_and_spelled_out_defaults() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let first: BulkRequest = serde_json::from_str(
        r#"{"mode":"upsert","request_id":"rid-order","records":[{"contact_key":"a","name":"A","email":"a@x.com"}]}"#,
    )?;
    let retry: BulkRequest = serde_json::from_str(
        r#"{"records":[{"email":"a@x.com","name":"A","contact_key":"a"}],"on_invalid":"abort","match_on":null,"request_id":"rid-order","mode":"upsert"}"#,
    )?;
    assert_eq!(ws.bulk(&first)?.status, Status::Applied);
    assert!(ws.bulk(&retry)?.replayed);
    let other: BulkRequest = serde_json::from_str(
        r#"{"mode":"upsert","request_id":"rid-order","records":[{"contact_key":"a","name":"B"}]}"#,
    )?;
    assert_eq!(request_code(ws.bulk(&other)), "request_id_reused");
    Ok(())
}
