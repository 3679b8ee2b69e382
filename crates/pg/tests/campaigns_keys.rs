//! Campaigns, their members and API keys in the PostgreSQL store, against a
//! throwaway cluster (`CONTACTDB_TEST_PG_URL`); every test skips without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::TestDb;
use contactdb_backend::{EventKind, KeyRole, Member, Wait, WorkspaceId};
use contactdb_pg::{BulkOptions, Error, PgStore};
use contactdb_policy::{BulkRequest, Mode, OnInvalid, Outcome, RequestError, Status};
use serde_json::{Value, json};

const WS: WorkspaceId = WorkspaceId(1);

fn opts(now_us: i64) -> BulkOptions {
    BulkOptions {
        now_us,
        ..BulkOptions::now()
    }
}

fn to(campaign: &str, mode: Mode, records: Vec<Value>) -> BulkRequest {
    let mut r = BulkRequest::new(mode, records);
    r.campaign = Some(campaign.to_owned());
    r
}

fn create(store: &PgStore, ws: WorkspaceId, name: &str, required: &[&str]) {
    let mut w = store.begin_write(ws, Wait::Block).unwrap();
    let required: Vec<String> = required.iter().map(|s| (*s).to_owned()).collect();
    w.create_campaign(name, &required, 1).unwrap();
    w.commit().unwrap();
}

/// The members of campaign `name` in pick order, as `(key, priority)`, read a page
/// of `page` at a time.
fn order_paged(store: &PgStore, ws: WorkspaceId, name: &str, page: usize) -> Vec<(String, u32)> {
    let r = store.read().unwrap();
    let c = r.campaign(ws, name).unwrap().unwrap();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let members = r.members(ws, c.number, after, page).unwrap();
        assert!(members.len() <= page);
        for m in &members {
            let contact = r.by_internal_id(ws, m.contact_id).unwrap().unwrap();
            out.push((contact.key, m.priority));
        }
        match members.last() {
            Some(m) if members.len() == page => after = Some((m.priority, m.joined)),
            _ => return out,
        }
    }
}

fn order(store: &PgStore, name: &str) -> Vec<(String, u32)> {
    order_paged(store, WS, name, 1000)
}

fn keys(store: &PgStore, name: &str) -> Vec<String> {
    order(store, name).into_iter().map(|(k, _)| k).collect()
}

// R16: members in pick order — priority ascending (default 5), then joining order;
// each contact joins once, whatever it was (inserted, updated, unchanged); `join`
// events for the contacts that joined now.
#[test]
fn members_in_pick_order_once_each() {
    let Some(db) = TestDb::new("camp_order") else {
        return;
    };
    let store = db.store();
    store
        .bulk(
            WS,
            &BulkRequest::new(
                Mode::Upsert,
                vec![json!({"contact_key": "old", "priority": 1})],
            ),
            &opts(1),
        )
        .unwrap();
    create(&store, WS, "spring", &[]);
    let seq = store.read().unwrap().last_seq(WS).unwrap();
    let rep = store
        .bulk(
            WS,
            &to(
                "spring",
                Mode::Upsert,
                vec![
                    json!({"contact_key": "a"}),
                    json!({"contact_key": "b", "priority": 0}),
                    json!({"contact_key": "old"}),
                    json!({"contact_key": "c", "priority": 5}),
                    json!({"contact_key": "a", "name": "again"}),
                ],
            ),
            &opts(2),
        )
        .unwrap();
    assert_eq!(rep.status, Status::Applied);
    let want = [("b", 0), ("old", 1), ("a", 5), ("c", 5)]
        .map(|(k, p)| (k.to_owned(), p))
        .to_vec();
    assert_eq!(order(&store, "spring"), want);
    // Pages of every size read the same order.
    for page in 1..=4 {
        assert_eq!(order_paged(&store, WS, "spring", page), want, "page {page}");
    }
    let joins: Vec<(String, Option<String>)> = store
        .read()
        .unwrap()
        .events(WS, seq, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Join)
        .map(|e| (e.key, e.detail))
        .collect();
    let spring = Some("spring".to_owned());
    assert_eq!(
        joins,
        ["a", "b", "old", "c"].map(|k| (k.to_owned(), spring.clone()))
    );
    // Joining again changes nothing; a later joiner of the same priority goes last.
    let seq = store.read().unwrap().last_seq(WS).unwrap();
    store
        .bulk(
            WS,
            &to(
                "spring",
                Mode::Upsert,
                vec![json!({"contact_key": "d"}), json!({"contact_key": "a"})],
            ),
            &opts(3),
        )
        .unwrap();
    assert_eq!(keys(&store, "spring"), ["b", "old", "a", "c", "d"]);
    let r = store.read().unwrap();
    assert_eq!(r.campaign(WS, "spring").unwrap().unwrap().members, 5);
    let joins: Vec<String> = r
        .events(WS, seq, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Join)
        .map(|e| e.key)
        .collect();
    assert_eq!(joins, ["d"]);
    let joined: Vec<u64> = r
        .members(WS, 1, None, 10)
        .unwrap()
        .iter()
        .map(|m| m.joined)
        .collect();
    assert_eq!(joined, [2, 3, 1, 4, 5]);
}

// R16: a missing campaign is a request-level error; nothing is written.
#[test]
fn missing_campaign_is_a_request_error() {
    let Some(db) = TestDb::new("camp_missing") else {
        return;
    };
    let store = db.store();
    let got = store.bulk(
        WS,
        &to("nope", Mode::Upsert, vec![json!({"contact_key": "a"})]),
        &opts(1),
    );
    match got {
        Err(Error::Request(e @ RequestError::NoSuchCampaign { .. })) => {
            assert_eq!(e.code(), "no_such_campaign");
        }
        other => panic!("{other:?}"),
    }
    let r = store.read().unwrap();
    assert_eq!(r.count(WS).unwrap(), 0);
    assert_eq!(r.last_seq(WS).unwrap(), 0);
}

// R16 + R11: a rekey keeps the membership; a priority change moves the member (in
// every campaign it is in).
#[test]
fn rekey_keeps_membership_and_priority_moves_it() {
    let Some(db) = TestDb::new("camp_rekey") else {
        return;
    };
    let store = db.store();
    create(&store, WS, "c", &[]);
    create(&store, WS, "d", &[]);
    let xy = vec![
        json!({"contact_key": "x", "priority": 2}),
        json!({"contact_key": "y", "priority": 3}),
    ];
    store
        .bulk(WS, &to("c", Mode::Upsert, xy.clone()), &opts(1))
        .unwrap();
    store
        .bulk(WS, &to("d", Mode::Upsert, xy), &opts(2))
        .unwrap();
    store
        .bulk(
            WS,
            &BulkRequest::new(
                Mode::Update,
                vec![json!({"contact_key": "x", "new_contact_key": "x2", "priority": 9})],
            ),
            &opts(3),
        )
        .unwrap();
    let want = [("y".to_owned(), 3), ("x2".to_owned(), 9)];
    assert_eq!(order(&store, "c"), want);
    assert_eq!(order(&store, "d"), want);
    store
        .bulk(
            WS,
            &BulkRequest::new(
                Mode::Update,
                vec![json!({"contact_key": "x2", "priority": 0})],
            ),
            &opts(4),
        )
        .unwrap();
    let want = [("x2".to_owned(), 0), ("y".to_owned(), 3)];
    assert_eq!(order(&store, "c"), want);
    assert_eq!(order(&store, "d"), want);
    // The order of joining stays with the member.
    let r = store.read().unwrap();
    let c = r.campaign(WS, "c").unwrap().unwrap();
    let first = r.members(WS, c.number, None, 1).unwrap();
    assert_eq!(first[0].joined, 1);
    let x2 = first[0].contact_id;
    let all: Vec<u32> = r
        .memberships(WS, x2)
        .unwrap()
        .iter()
        .map(|(_, m)| m.priority)
        .collect();
    assert_eq!(all, [0, 0]);
}

// R16: a campaign's required columns: a record whose contact would join without a
// value fails with campaign_column_missing; under skip the others join.
#[test]
fn required_columns_fail_the_record() {
    let Some(db) = TestDb::new("camp_required") else {
        return;
    };
    let store = db.store();
    store
        .bulk(
            WS,
            &BulkRequest::new(
                Mode::Upsert,
                vec![json!({"contact_key": "has", "gsm": "+905551112233"})],
            ),
            &opts(1),
        )
        .unwrap();
    create(&store, WS, "calls", &["gsm"]);
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
    let rep = store.bulk(WS, &r, &opts(2)).unwrap();
    let outcomes: Vec<Outcome> = rep.results.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Inserted, Outcome::Failed, Outcome::Unchanged]
    );
    let errors: Vec<(u32, Option<String>, &str)> = rep
        .errors
        .iter()
        .map(|e| {
            (
                e.index,
                e.column.as_ref().map(|c| c.to_string()),
                e.code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [(1, Some("gsm".to_owned()), "campaign_column_missing")]
    );
    assert_eq!(keys(&store, "calls"), ["new", "has"]);
    assert!(store.read().unwrap().get(WS, "none").unwrap().is_none());
}

// R16: names are unique per workspace; drop removes the memberships, not the
// contacts; campaigns of one workspace are invisible in another (R1); numbers are
// never reused.
#[test]
fn create_list_drop() {
    let Some(db) = TestDb::new("camp_crud") else {
        return;
    };
    let store = db.store();
    create(&store, WS, "a", &[]);
    create(&store, WS, "b", &["gsm", "name"]);
    {
        let mut w = store.begin_write(WS, Wait::Block).unwrap();
        match w.create_campaign("a", &[], 2) {
            Err(Error::CampaignExists { name }) => assert_eq!(name, "a"),
            other => panic!("{other:?}"),
        }
    }
    store
        .bulk(
            WS,
            &to("a", Mode::Upsert, vec![json!({"contact_key": "k"})]),
            &opts(1),
        )
        .unwrap();
    let r = store.read().unwrap();
    let all = r.campaigns(WS).unwrap();
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        (all[0].number, all[0].members, all[0].created_at_us),
        (1, 1, 1)
    );
    assert_eq!(all[1].required, ["gsm", "name"]);
    drop(r);
    let other = store.create_workspace("other", [9; 16], 1).unwrap().id;
    assert!(store.read().unwrap().campaigns(other).unwrap().is_empty());
    assert!(matches!(
        store.bulk(
            other,
            &to("a", Mode::Upsert, vec![json!({"contact_key": "k"})]),
            &opts(2)
        ),
        Err(Error::Request(RequestError::NoSuchCampaign { .. }))
    ));
    // The same name in another workspace is a campaign of its own.
    create(&store, other, "a", &[]);
    store
        .bulk(
            other,
            &to("a", Mode::Upsert, vec![json!({"contact_key": "z"})]),
            &opts(3),
        )
        .unwrap();
    assert_eq!(keys(&store, "a"), ["k"]);
    assert_eq!(order_paged(&store, other, "a", 10), [("z".to_owned(), 5)]);
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    assert!(w.drop_campaign("a").unwrap());
    assert!(!w.drop_campaign("a").unwrap());
    w.commit().unwrap();
    let r = store.read().unwrap();
    assert!(r.get(WS, "k").unwrap().is_some());
    assert!(r.campaign(WS, "a").unwrap().is_none());
    assert_eq!(order_paged(&store, other, "a", 10), [("z".to_owned(), 5)]);
    drop(r);
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    let again = w.create_campaign("a", &[], 5).unwrap();
    assert_eq!((again.number, again.members), (3, 0));
    w.commit().unwrap();
    let r = store.read().unwrap();
    assert!(r.members(WS, again.number, None, 10).unwrap().is_empty());
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM campaign_members", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "only the other workspace's member is left");
}

// Direct joins: idempotent, numbered in order of joining, member count kept; a
// rolled-back join leaves nothing; a duplicate within one call joins once.
#[test]
fn join_directly_and_roll_back() {
    let Some(db) = TestDb::new("camp_join") else {
        return;
    };
    let store = db.store();
    store
        .bulk(
            WS,
            &BulkRequest::new(
                Mode::Upsert,
                vec![
                    json!({"contact_key": "a"}),
                    json!({"contact_key": "b"}),
                    json!({"contact_key": "c"}),
                ],
            ),
            &opts(1),
        )
        .unwrap();
    create(&store, WS, "c", &[]);
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    let (a, b, c) = (
        w.contact_id("a").unwrap().unwrap(),
        w.contact_id("b").unwrap().unwrap(),
        w.contact_id("c").unwrap().unwrap(),
    );
    assert!(w.join_campaign(1, a, 5).unwrap());
    assert!(!w.join_campaign(1, a, 5).unwrap());
    assert_eq!(
        w.join_campaign_many(1, &[(b, 7), (a, 1), (b, 0)]).unwrap(),
        [true, false, false]
    );
    assert_eq!(w.campaign("c").unwrap().unwrap().members, 2);
    // Joining a campaign that does not exist is refused.
    assert!(matches!(
        w.join_campaign(99, c, 1),
        Err(Error::Damaged { .. })
    ));
    w.commit().unwrap();
    let r = store.read().unwrap();
    assert_eq!(
        r.members(WS, 1, None, 10).unwrap(),
        [
            Member {
                contact_id: a,
                priority: 5,
                joined: 1
            },
            Member {
                contact_id: b,
                priority: 7,
                joined: 2
            }
        ]
    );
    drop(r);
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    assert!(w.join_campaign(1, c, 0).unwrap());
    w.set_member_priority(b, 0).unwrap();
    w.rollback().unwrap();
    let r = store.read().unwrap();
    assert_eq!(r.campaign(WS, "c").unwrap().unwrap().members, 2);
    let order: Vec<(u64, u32)> = r
        .members(WS, 1, None, 10)
        .unwrap()
        .iter()
        .map(|m| (m.contact_id, m.priority))
        .collect();
    assert_eq!(order, [(a, 5), (b, 7)]);
    drop(r);
    // The next join after the rollback takes the next number.
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    assert!(w.join_campaign(1, c, 0).unwrap());
    w.commit().unwrap();
    let m = store.read().unwrap().members(WS, 1, None, 1).unwrap();
    assert_eq!((m[0].contact_id, m[0].joined), (c, 3));
}

// A campaign write holds the workspace's writer lock like every other write.
#[test]
fn campaign_writes_take_the_writer_lock() {
    let Some(db) = TestDb::new("camp_lock") else {
        return;
    };
    let store = db.store();
    let mut held = store.begin_write(WS, Wait::Block).unwrap();
    held.create_campaign("x", &[], 1).unwrap();
    assert!(matches!(store.begin_write(WS, Wait::No), Err(Error::Busy)));
    // Not visible to readers before the commit.
    assert!(store.read().unwrap().campaign(WS, "x").unwrap().is_none());
    held.commit().unwrap();
    assert!(store.read().unwrap().campaign(WS, "x").unwrap().is_some());
}

// API keys: stored by token hash with a role; listed per workspace by creation;
// revoke once; found by hash across workspaces; a hash is never stored twice.
#[test]
fn api_keys_create_list_revoke_find() {
    let Some(db) = TestDb::new("keys") else {
        return;
    };
    let store = db.store();
    let other = store.create_workspace("acme", [3; 16], 1).unwrap().id;
    let h = |b: u8| [b; 32];
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    let k1 = w
        .create_api_key(&h(1), [1; 16], KeyRole::Manage, 10)
        .unwrap();
    assert_eq!(
        (k1.ws, k1.role, k1.created_at_us, k1.revoked),
        (WS, KeyRole::Manage, 10, false)
    );
    w.create_api_key(&h(2), [2; 16], KeyRole::Read, 20).unwrap();
    w.commit().unwrap();
    let mut w = store.begin_write(other, Wait::Block).unwrap();
    let k3 = w.create_api_key(&h(3), [3; 16], KeyRole::Write, 5).unwrap();
    // A token hash a key of any workspace has is refused.
    assert!(matches!(
        w.create_api_key(&h(1), [9; 16], KeyRole::Read, 6),
        Err(Error::KeyExists)
    ));
    w.commit().unwrap();
    let r = store.read().unwrap();
    let mine: Vec<([u8; 16], KeyRole)> = r
        .api_keys(WS)
        .unwrap()
        .iter()
        .map(|k| (k.id, k.role))
        .collect();
    assert_eq!(mine, [([1; 16], KeyRole::Manage), ([2; 16], KeyRole::Read)]);
    assert_eq!(r.api_keys(other).unwrap(), std::slice::from_ref(&k3));
    assert_eq!(r.api_key(&h(1)).unwrap(), Some(k1));
    assert_eq!(r.api_key(&h(3)).unwrap(), Some(k3));
    assert_eq!(r.api_key(&h(4)).unwrap(), None);
    drop(r);
    // Revoking: only the workspace's own key, and only once.
    let mut w = store.begin_write(other, Wait::Block).unwrap();
    assert!(!w.revoke_api_key(&[1; 16]).unwrap());
    w.commit().unwrap();
    let mut w = store.begin_write(WS, Wait::Block).unwrap();
    assert!(w.revoke_api_key(&[1; 16]).unwrap());
    assert!(!w.revoke_api_key(&[1; 16]).unwrap());
    assert!(!w.revoke_api_key(&[7; 16]).unwrap());
    w.commit().unwrap();
    let r = store.read().unwrap();
    let k = r.api_key(&h(1)).unwrap().unwrap();
    assert!(k.revoked, "a revoked key is still found, marked revoked");
    assert!(!r.api_key(&h(2)).unwrap().unwrap().revoked);
    // Never the token: the stored hash is the only secret column.
    let stored: Vec<u8> = db
        .client()
        .query_one(
            "SELECT token_hash FROM api_keys WHERE workspace_id = 1 AND id = $1",
            &[&uuid::Uuid::from_bytes([2; 16])],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, h(2));
    // A token is found through api_key_hashes (one probe, not one per workspace),
    // and check holds a key and its hash row to each other.
    assert!(store.check().unwrap().is_empty());
    let mut c = db.client();
    c.execute(
        "UPDATE api_key_hashes SET id = $1 WHERE token_hash = $2",
        &[&uuid::Uuid::from_bytes([8; 16]), &h(3).as_slice()],
    )
    .unwrap();
    assert!(matches!(
        store.read().unwrap().api_key(&h(3)),
        Err(Error::Damaged { .. })
    ));
    let problems: Vec<&str> = store.check().unwrap().iter().map(|p| p.table).collect();
    assert_eq!(problems, ["api_keys", "api_key_hashes"]);
}

// Citus readiness: every primary key and index of the version-2 tables starts with
// `workspace_id`.
#[test]
fn new_tables_are_keyed_by_workspace_first() {
    let Some(db) = TestDb::new("camp_citus") else {
        return;
    };
    let _store = db.store();
    let rows = db
        .client()
        .query(
            "SELECT i.indexrelid::regclass::text, a.attname
             FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid::regclass::text IN ('campaigns', 'campaign_members', 'api_keys')",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 7, "3 primary keys and 4 indexes");
    for row in rows {
        let (index, first): (String, String) = (row.get(0), row.get(1));
        assert_eq!(first, "workspace_id", "{index}");
    }
}

// R16 + R14 + R21: a rejected request (abort) joins nobody; a replayed request id
// joins nobody again and appends nothing.
#[test]
fn rejected_and_replayed_requests_join_nobody() {
    let Some(db) = TestDb::new("camp_reject") else {
        return;
    };
    let store = db.store();
    create(&store, WS, "c", &["gsm"]);
    let bad = to(
        "c",
        Mode::Upsert,
        vec![
            json!({"contact_key": "ok", "gsm": "+905551112233"}),
            json!({"contact_key": "no-gsm"}),
        ],
    );
    let rep = store.bulk(WS, &bad, &opts(1)).unwrap();
    assert_eq!(rep.status, Status::Rejected);
    let r = store.read().unwrap();
    assert_eq!(r.campaign(WS, "c").unwrap().unwrap().members, 0);
    assert_eq!((r.count(WS).unwrap(), r.last_seq(WS).unwrap()), (0, 0));
    drop(r);
    let mut good = to(
        "c",
        Mode::Upsert,
        vec![json!({"contact_key": "ok", "gsm": "+905551112233"})],
    );
    good.request_id = Some("r1".to_owned());
    store.bulk(WS, &good, &opts(2)).unwrap();
    let seq = store.read().unwrap().last_seq(WS).unwrap();
    assert_eq!(seq, 2, "an insert and a join");
    assert!(store.bulk(WS, &good, &opts(3)).unwrap().replayed);
    let r = store.read().unwrap();
    assert_eq!(r.last_seq(WS).unwrap(), seq);
    assert_eq!(r.campaign(WS, "c").unwrap().unwrap().members, 1);
}
