//! R21: idempotent retries — a request_id already applied returns the stored report
//! (replayed: true) without applying again; reuse with another body is an error;
//! ids are per workspace, kept across reopen, and expire after the retention.

mod common;

use std::time::Duration;

use common::*;
use contactdb::Outcome::{Inserted, Updated};
use contactdb::{BulkRequest, Database, Mode, Status};
use serde_json::json;

fn with_id(id: &str, mode: Mode, records: impl Records) -> BulkRequest {
    req(mode, records).with_id(id)
}

/// A fresh database keeping request ids for `days`.
fn with_retention(days: u32) -> Res<Fixture> {
    let scratch = Scratch::new()?;
    let db = Database::builder()
        .request_id_retention_days(days)
        .open(scratch.db("c.redb"))?;
    let ws = db.workspace("default")?;
    Ok((scratch, db, ws))
}

/// An upsert of contact `k` named `name`, under request id `id`.
fn name_k(id: &str, name: &str) -> BulkRequest {
    with_id(id, Mode::Upsert, json!({"contact_key": "k", "name": name}))
}

// R21: same id + same body → the stored report, replayed, nothing applied again.
#[test]
fn same_id_same_body_replays() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a", "name": "A"}))?;
    let recs =
        json!([{"contact_key": "a", "name": "A2"}, {"contact_key": "b", "email": " B@X.COM "}]);
    let r = with_id("rid-1", Mode::Upsert, recs);
    let first = ws.bulk(&r)?;
    assert_eq!(first.status, Status::Applied);
    assert!(!first.replayed);
    assert_eq!(outcomes(&first), [Updated, Inserted]);
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
    assert_clean(&db)
}

// R21: a replay does not re-apply even when the database changed in between.
#[test]
fn replay_ignores_later_changes() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let r = name_k("rid", "A");
    assert_eq!(outcomes(&ws.bulk(&r)?), [Inserted]);
    seed(&ws, json!({"contact_key": "k", "name": "B"}))?;
    let again = ws.bulk(&r)?;
    assert!(again.replayed);
    assert_eq!(outcomes(&again), [Inserted]);
    assert_eq!(
        read(&ws, "k", &["name", "version"])?,
        [json!("B"), json!(2)]
    );
    Ok(())
}

// R21: same id with a different body → request_id_reused; nothing written.
#[test]
fn same_id_different_body_is_refused() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.bulk(&name_k("rid", "A"))?;
    let before = ws.contacts()?;
    let variants = [
        ("another value", name_k("rid", "B")),
        (
            "another record",
            with_id(
                "rid",
                Mode::Upsert,
                json!([{"contact_key": "k", "name": "A"}, {"contact_key": "z"}]),
            ),
        ),
        (
            "another mode",
            with_id(
                "rid",
                Mode::Update,
                json!({"contact_key": "k", "name": "A"}),
            ),
        ),
        ("another option", name_k("rid", "A").skipping()),
    ];
    for (name, v) in variants {
        let (code, text) = refused(ws.bulk(&v))?;
        assert_eq!(code, "request_id_reused", "{name}");
        assert!(text.contains("rid"), "{name}: {text}");
    }
    assert_eq!(ws.contacts()?, before);
    assert!(ws.get("z")?.is_none());
    assert_clean(&db)
}

// Semantics: a rejected request stores no id; it may be retried with the same id.
#[test]
fn rejected_request_can_be_retried() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let bad = with_id(
        "rid",
        Mode::Upsert,
        json!({"contact_key": "k", "email": "broken"}),
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
        json!({"contact_key": "k", "email": "fixed@x.com"}),
    );
    let rep = ws.bulk(&good)?;
    assert!(!rep.replayed);
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(col(&must_get(&ws, "k")?, "email"), json!("fixed@x.com"));
    // A partial request does store its id.
    let recs = json!([{"contact_key": "p"}, {"contact_key": "q", "gsm": "1"}]);
    let p = with_id("rid-p", Mode::Upsert, recs).skipping();
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
    let r = with_id("rid", Mode::Upsert, json!({"contact_key": "k"}));
    assert!(!ws.bulk(&r)?.replayed);
    let rep = other.bulk(&r)?;
    assert!(!rep.replayed, "an id of another workspace replayed");
    assert_eq!(outcomes(&rep), [Inserted]);
    assert!(other.get("k")?.is_some());
    // A different body under the same id in the other workspace is fine too.
    ws.bulk(&with_id("rid2", Mode::Upsert, json!({"contact_key": "x"})))?;
    let r2b = with_id("rid2", Mode::Upsert, json!({"contact_key": "y"}));
    assert_eq!(other.bulk(&r2b)?.status, Status::Applied);
    Ok(())
}

// R21: stored ids survive close and reopen.
#[test]
fn ids_survive_reopen() -> TestResult {
    let (_dir, path) = temp_path()?;
    let r = name_k("rid", "A");
    let first = open_default(&path)?.1.bulk(&r)?;
    let (db, ws) = open_default(&path)?;
    let again = ws.bulk(&r)?;
    assert!(again.replayed);
    assert_eq!(again.results, first.results);
    assert_eq!(must_get(&ws, "k")?.version, 1);
    assert_eq!(
        request_code(ws.bulk(&name_k("rid", "B"))),
        "request_id_reused"
    );
    assert_clean(&db)
}

// R21: with a retention of 0 days ids expire at once: the same request is applied
// again, and a different body under an expired id is accepted.
#[test]
fn retention_zero_expires_ids() -> TestResult {
    let (_dir, db, ws) = with_retention(0)?;
    let r = name_k("rid", "A");
    assert!(!ws.bulk(&r)?.replayed);
    seed(&ws, json!({"contact_key": "k", "name": "B"}))?;
    std::thread::sleep(Duration::from_millis(2));
    let again = ws.bulk(&r)?;
    assert!(!again.replayed, "an expired id must not replay");
    assert_eq!(outcomes(&again), [Updated]);
    let k = must_get(&ws, "k")?;
    assert_eq!(col(&k, "name"), json!("A"));
    assert_eq!(k.version, 3);
    std::thread::sleep(Duration::from_millis(2));
    let rep = ws.bulk(&name_k("rid", "C"))?;
    assert!(!rep.replayed);
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("C"));
    assert_clean(&db)
}

// R21: a long retention keeps ids while other writes prune expired ones. Rows: the
// default (7 days) keeps ids well past the test's lifetime; the largest retention
// the builder takes (u32::MAX days, beyond i64 microseconds) saturates instead of
// overflowing, and ids replay. Regression test: the retention in µs was
// `days * 86_400 * 1_000_000`, which overflowed past ~106,751 days.
#[test]
fn long_retentions_keep_ids() -> TestResult {
    for (name, days) in [
        ("default retention keeps ids", 7),
        ("largest retention saturates", u32::MAX),
    ] {
        let (_dir, db, ws) = with_retention(days)?;
        let r = with_id("rid", Mode::Insert, json!({"contact_key": "k"}));
        assert_eq!(ws.bulk(&r)?.status, Status::Applied, "{name}");
        // Other writes (which prune expired ids) do not remove a fresh one.
        for i in 0..3 {
            seed(&ws, json!({"contact_key": format!("o{i}")}))?;
        }
        std::thread::sleep(Duration::from_millis(2));
        let again = ws.bulk(&r)?;
        assert!(again.replayed, "{name}");
        assert_eq!(again.status, Status::Applied, "{name}");
        assert_clean(&db)?;
    }
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
        json!({"contact_key": "a", "tier": 3}),
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
        json!({"contact_key": "a", "tier": 4}),
    );
    assert_eq!(request_code(ws.bulk(&fresh)), "column_not_import_enabled");
    Ok(())
}

// R21: "the same body" is the same request as parsed: object keys in another order,
// an option given as its default or as null, are the same body.
#[test]
fn r21_same_body_ignores_key_order_and_spelled_out_defaults() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let parse = |text: &str| serde_json::from_str::<BulkRequest>(text);
    let first = parse(
        r#"{"mode":"upsert","request_id":"rid-order","records":[{"contact_key":"a","name":"A","email":"a@x.com"}]}"#,
    )?;
    let retry = parse(
        r#"{"records":[{"email":"a@x.com","name":"A","contact_key":"a"}],"on_invalid":"abort","match_on":null,"request_id":"rid-order","mode":"upsert"}"#,
    )?;
    assert_eq!(ws.bulk(&first)?.status, Status::Applied);
    assert!(ws.bulk(&retry)?.replayed);
    let other = parse(
        r#"{"mode":"upsert","request_id":"rid-order","records":[{"contact_key":"a","name":"B"}]}"#,
    )?;
    assert_eq!(request_code(ws.bulk(&other)), "request_id_reused");
    Ok(())
}
