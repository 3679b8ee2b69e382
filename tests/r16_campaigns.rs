//! R16: campaigns — created explicitly, joined by the contacts of a request that
//! names them (once each), listed in pick order (priority, then order of joining),
//! required columns, memberships that follow rekeys and priority changes.

mod common;

use common::*;
use contactdb::{BulkRequest, Mode, OnInvalid, Outcome, Status, Workspace};
use serde_json::{Value, json};

fn to(campaign: &str, mode: Mode, records: Vec<Value>) -> BulkRequest {
    let mut r = BulkRequest::new(mode, records);
    r.campaign = Some(campaign.to_owned());
    r
}

fn order(ws: &Workspace, campaign: &str) -> Vec<(String, u32)> {
    expect_ok(ws.members(campaign))
        .into_iter()
        .map(|m| (m.contact_key, m.priority))
        .collect()
}

// R16: members in pick order — priority ascending (default 5), then joining order;
// each contact joins once, whatever it was (inserted, updated, unchanged).
#[test]
fn r16_members_in_pick_order_once_each() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "old", "priority": 1}))?;
    ws.create_campaign("spring", &[])?;
    let rep = ws.bulk(&to(
        "spring",
        Mode::Upsert,
        vec![
            json!({"contact_key": "a"}),
            json!({"contact_key": "b", "priority": 0}),
            json!({"contact_key": "old"}),
            json!({"contact_key": "c", "priority": 5}),
            json!({"contact_key": "a", "name": "again"}),
        ],
    ))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(
        order(&ws, "spring"),
        [
            ("b".to_owned(), 0),
            ("old".to_owned(), 1),
            ("a".to_owned(), 5),
            ("c".to_owned(), 5)
        ]
    );
    // Joining again changes nothing; a later joiner of the same priority goes last.
    ws.bulk(&to(
        "spring",
        Mode::Upsert,
        vec![json!({"contact_key": "d"}), json!({"contact_key": "a"})],
    ))?;
    let keys: Vec<String> = order(&ws, "spring").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["b", "old", "a", "c", "d"]);
    assert_eq!(ws.campaign("spring")?.unwrap().members, 5);
    assert_clean(&db)?;
    Ok(())
}

// R16: a missing campaign is a request-level error; nothing is written.
#[test]
fn r16_missing_campaign_is_a_request_error() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let got = ws.bulk(&to("nope", Mode::Upsert, vec![json!({"contact_key": "a"})]));
    assert_eq!(request_code(got), "no_such_campaign");
    assert_eq!(ws.count()?, 0);
    Ok(())
}

// R16 + R11: a rekey keeps the membership; a priority change moves the member.
#[test]
fn r16_rekey_keeps_membership_and_priority_moves_it() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.create_campaign("c", &[])?;
    ws.bulk(&to(
        "c",
        Mode::Upsert,
        vec![
            json!({"contact_key": "x", "priority": 2}),
            json!({"contact_key": "y", "priority": 3}),
        ],
    ))?;
    bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "x", "new_contact_key": "x2", "priority": 9}),
    )?;
    assert_eq!(order(&ws, "c"), [("y".to_owned(), 3), ("x2".to_owned(), 9)]);
    bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "x2", "priority": 0}),
    )?;
    assert_eq!(order(&ws, "c"), [("x2".to_owned(), 0), ("y".to_owned(), 3)]);
    assert_clean(&db)?;
    Ok(())
}

// R16: a campaign's required columns: a record whose contact would join without a
// value fails with campaign_column_missing (its own code); under skip the others
// join.
#[test]
fn r16_required_columns_fail_the_record() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "has", "gsm": "+905551112233"}))?;
    ws.create_campaign("calls", &["phoneNumber"])?;
    assert_eq!(ws.campaign("calls")?.unwrap().required, ["gsm"]);
    let mut r = to(
        "calls",
        Mode::Upsert,
        vec![
            json!({"contact_key": "new", "gsm": "+905551112244"}),
            json!({"contact_key": "none"}),
            json!({"contact_key": "has"}),
        ],
    );
    r.on_invalid = OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    assert_eq!(
        outcomes(&rep),
        [Outcome::Inserted, Outcome::Failed, Outcome::Unchanged]
    );
    assert_eq!(
        errors(&rep),
        [(1, Some("gsm".to_owned()), "campaign_column_missing")]
    );
    let keys: Vec<String> = order(&ws, "calls").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["new", "has"]);
    assert!(ws.get("none")?.is_none());
    Ok(())
}

// R16: names are unique per workspace; drop removes the memberships, not the
// contacts; campaigns of one workspace are invisible in another (R1).
#[test]
fn r16_create_list_drop() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.create_campaign("a", &[])?;
    ws.create_campaign("b", &[])?;
    assert!(ws.create_campaign("a", &[]).is_err());
    assert!(ws.create_campaign(" padded", &[]).is_err());
    assert!(ws.create_campaign("x", &["no_such_column"]).is_err());
    ws.bulk(&to("a", Mode::Upsert, vec![json!({"contact_key": "k"})]))?;
    let names: Vec<String> = ws.campaigns()?.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["a", "b"]);
    let other = db.workspace(&db.create_workspace("other")?.slug)?;
    assert!(other.campaigns()?.is_empty());
    assert_eq!(
        request_code(other.bulk(&to("a", Mode::Upsert, vec![json!({"contact_key": "k"})]))),
        "no_such_campaign"
    );
    assert!(ws.drop_campaign("a")?);
    assert!(!ws.drop_campaign("a")?);
    assert!(ws.get("k")?.is_some());
    ws.create_campaign("a", &[])?;
    assert!(ws.members("a")?.is_empty());
    assert_clean(&db)?;
    Ok(())
}
