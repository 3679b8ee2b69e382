//! R18: the change feed — one event per insert, update, rekey, alias and campaign
//! join, in the transaction of the change, with strictly increasing sequence
//! numbers; triggers recorded; named consumers with durable positions.

mod common;

use common::*;
use contactdb::{BulkRequest, Database, EventKind, Mode, OnInvalid, Trigger, Workspace};
use serde_json::json;

fn kinds(ws: &Workspace, after: u64) -> Vec<(EventKind, String, u64, Option<String>)> {
    expect_ok(ws.feed(after, 1000))
        .into_iter()
        .map(|e| (e.kind, e.key, e.version, e.detail))
        .collect()
}

// R18: every kind of change, with the contact's version after it.
#[test]
fn r18_every_change_appends_its_event() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "email": "a@x.com"}))?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "a2", "email": "a@x.com"}),
            json!({"contact_key": "a", "name": "Ann"}),
            json!({"contact_key": "a", "name": "Ann"}),
        ],
    );
    r.on_invalid = OnInvalid::Skip;
    ws.bulk(&r)?;
    bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "a", "new_contact_key": "b"}),
    )?;
    ws.create_campaign("c", &[])?;
    let mut j = req(Mode::Upsert, json!({"contact_key": "b"}));
    j.campaign = Some("c".to_owned());
    ws.bulk(&j)?;
    let s = |x: &str| x.to_owned();
    assert_eq!(
        kinds(&ws, 0),
        [
            (EventKind::Insert, s("a"), 1, None),
            // One write for the request's two changes of `a` (the alias, then the
            // name: version 3), its events in that order.
            (EventKind::Alias, s("a"), 3, Some(s("a2"))),
            (EventKind::Update, s("a"), 3, None),
            (EventKind::Rekey, s("b"), 4, Some(s("a"))),
            (EventKind::Join, s("b"), 4, Some(s("c"))),
        ]
    );
    let seqs: Vec<u64> = ws.feed(0, 1000)?.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    // Reading from the middle of one request's events, and across requests.
    assert_eq!(ws.feed(2, 1)?[0].seq, 3);
    let spans: Vec<u64> = ws.feed(2, 2)?.iter().map(|e| e.seq).collect();
    assert_eq!(spans, [3, 4]);
    assert_eq!(ws.feed(3, 1)?.len(), 1);
    assert_eq!(ws.feed(3, 1)?[0].seq, 4);
    assert_eq!(ws.last_seq()?, 5);
    Ok(())
}

// R18: a rejected request and unchanged records append nothing.
#[test]
fn r18_nothing_written_nothing_appended() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "name": "A"}))?;
    let before = ws.last_seq()?;
    bulk(&ws, Mode::Upsert, json!({"contact_key": "a", "name": "A"}))?;
    ws.bulk(&req(
        Mode::Upsert,
        vec![
            json!({"contact_key": "b"}),
            json!({"contact_key": "c", "email": "bad"}),
        ],
    ))?;
    assert_eq!(ws.last_seq()?, before);
    Ok(())
}

// R18: a request's trigger is recorded on each of its events; call and workflow
// together are a request-level error.
#[test]
fn r18_triggers_are_recorded_and_exclusive() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let mut r = req(
        Mode::Upsert,
        json!([{"contact_key": "a"}, {"contact_key": "b"}]),
    );
    r.trigger = Some(Trigger {
        call: Some(json!({"agentId": "ag-1", "dispositionId": "d-2"})),
        workflow: None,
    });
    ws.bulk(&r)?;
    let t: Vec<_> = ws.feed(0, 10)?.into_iter().map(|e| e.trigger).collect();
    assert_eq!(
        t,
        [
            Some(json!({"call": {"agentId": "ag-1", "dispositionId": "d-2"}})),
            Some(json!({"call": {"agentId": "ag-1", "dispositionId": "d-2"}}))
        ]
    );
    let both: BulkRequest = serde_json::from_value(json!({
        "mode": "upsert",
        "trigger": {"call": {"agentId": "x"}, "workflow": true},
        "records": [{"contact_key": "c"}]
    }))?;
    assert_eq!(request_code(ws.bulk(&both)), "conflicting_trigger");
    let bad: BulkRequest = serde_json::from_value(json!({
        "mode": "upsert",
        "trigger": {"workflow": false},
        "records": [{"contact_key": "c"}]
    }))?;
    assert_eq!(request_code(ws.bulk(&bad)), "invalid_trigger");
    assert!(ws.get("c")?.is_none());
    Ok(())
}

// R18: consumers keep durable positions (never moving back), across reopen; events
// older than the retention that every consumer acknowledged are trimmed.
#[test]
fn r18_consumers_and_trimming() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.redb");
    {
        let db = Database::builder().feed_retention_days(0).open(&path)?;
        let ws = db.workspace("default")?;
        // With a consumer at 0 nothing is trimmed, however old.
        ws.ack("dialer", 0)?;
        for k in ["a", "b", "c", "d"] {
            bulk(&ws, Mode::Upsert, json!({"contact_key": k}))?;
        }
        assert_eq!(ws.feed(0, 100)?.len(), 4);
        assert_eq!(ws.feed_for("dialer", 2)?.len(), 2);
        assert_eq!(ws.ack("dialer", 2)?, 2);
        assert_eq!(ws.ack("dialer", 1)?, 2);
        assert_eq!(ws.feed_for("dialer", 100)?[0].seq, 3);
    }
    let db = Database::builder().feed_retention_days(0).open(&path)?;
    let ws = db.workspace("default")?;
    assert_eq!(ws.consumers()?[0].acked, 2);
    // The next write trims what the consumer acknowledged (retention 0).
    bulk(&ws, Mode::Upsert, json!({"contact_key": "e"}))?;
    let left: Vec<u64> = ws.feed(0, 100)?.iter().map(|e| e.seq).collect();
    assert_eq!(left, [3, 4, 5]);
    assert!(ws.drop_consumer("dialer")?);
    bulk(&ws, Mode::Upsert, json!({"contact_key": "f"}))?;
    // No consumer: everything past the retention goes, but the write's own event.
    let left: Vec<u64> = ws.feed(0, 100)?.iter().map(|e| e.seq).collect();
    assert_eq!(left, [6]);
    assert_eq!(ws.last_seq()?, 6);
    Ok(())
}

// R18: a contact renamed and then given its former key back as an alias (found by
// email) in one request gets both events: the rekey and the alias.
#[test]
fn r18_former_key_given_back_as_alias_has_its_event() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "email": "a@x.com"}))?;
    let mut r = req(
        Mode::Update,
        vec![
            json!({"contact_key": "a", "new_contact_key": "b"}),
            json!({"contact_key": "a", "email": "a@x.com"}),
        ],
    );
    r.match_on = contactdb::MatchOn {
        email: true,
        phone: false,
    };
    ws.bulk(&r)?;
    assert_eq!(must_get(&ws, "b")?.aliases, ["a"]);
    let s = |x: &str| x.to_owned();
    assert_eq!(
        kinds(&ws, 1),
        [
            (EventKind::Rekey, s("b"), 3, Some(s("a"))),
            (EventKind::Alias, s("b"), 3, Some(s("a"))),
        ]
    );
    Ok(())
}
