//! The PostgreSQL store against a throwaway cluster (`CONTACTDB_TEST_PG_URL`,
//! started by `tests/pg-cluster.sh`); every test skips without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Rng, TestDb};
use contactdb_backend::Backend;
use contactdb_backend::{EventKind, Failure, JobDataKind, JobState, Wait, WorkspaceId};
use contactdb_merge::events::write_events;
use contactdb_merge::{ContactWrite, Lookup, Plan, Stored, plan};
use contactdb_pg::{BulkOptions, Error, LookupValues, PgOptions, PgStore};
use contactdb_policy::request::prepare;
use contactdb_policy::{
    BulkRequest, Catalog, Contact, FieldId, Fields, Limits, MatchOn, Mode, OnInvalid, Status, Value,
};
use serde_json::json;

const WS: WorkspaceId = WorkspaceId(1);

fn opts(now_us: i64) -> BulkOptions {
    BulkOptions {
        now_us,
        ..BulkOptions::now()
    }
}

/// Plans `req` in `w` and applies it (without feed events); returns the plan.
fn plan_and_apply(w: &mut contactdb_pg::PgWrite, req: &BulkRequest, now: i64) -> Plan {
    let catalog = Catalog::new(&w.columns().unwrap());
    let prepared = prepare(req, &catalog, &Limits::default()).unwrap();
    let values = LookupValues::of_request(req, &prepared, &catalog);
    let lookup = w.lookup_for(&values).unwrap();
    let p = plan(req, &prepared, &catalog, &lookup, now).unwrap();
    if p.report.status != Status::Rejected {
        w.apply(&p.writes).unwrap();
    }
    p
}

// The last handle of a store dropped on a thread that drives an async runtime (a
// task of the HTTP server) closes its pooled connections without a panic: a
// blocking client's close there panicked ("Cannot start a runtime from within a
// runtime"), and a panic in a drop during unwinding aborted the server.
#[test]
fn the_last_handle_dropped_inside_an_async_runtime_closes_cleanly() {
    let Some(db) = TestDb::new("rtdrop") else {
        return;
    };
    let store = db.store();
    // A read gives its connection back: the pool then holds an idle client.
    assert_eq!(store.read().unwrap().workspaces().unwrap().len(), 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move { drop(store) });
    // A connection given back inside the runtime to a pool that keeps none is
    // closed there too.
    let opts = PgOptions {
        max_idle: 0,
        ..PgOptions::default()
    };
    let store = PgStore::connect(&db.url, &opts).unwrap();
    let client = store.raw_client().unwrap();
    rt.block_on(async move { drop(client) });
    drop(store);
}

#[test]
fn migrations_are_idempotent() {
    let Some(db) = TestDb::new("migr") else {
        return;
    };
    let a = db.store();
    assert_eq!(a.schema_version().unwrap(), contactdb_pg::latest_version());
    assert_eq!(a.migrate().unwrap(), 0);
    // Connecting again (as another process would) runs nothing and keeps the data.
    let ws = a.create_workspace("second", [7; 16], 5).unwrap();
    let b = db.store();
    assert_eq!(b.migrate().unwrap(), 0);
    let names: Vec<String> = b
        .read()
        .unwrap()
        .workspaces()
        .unwrap()
        .into_iter()
        .map(|w| w.slug)
        .collect();
    assert_eq!(names, ["default", "second"]);
    assert_eq!(b.workspace("second").unwrap().unwrap(), ws);
    let uuid_text = "07070707-0707-0707-0707-070707070707";
    assert_eq!(b.workspace(uuid_text).unwrap().unwrap().id, ws.id);
    // A slug outside the rule is refused with the rule in the message.
    let err = b.create_workspace("Bad_slug", [8; 16], 5).unwrap_err();
    assert!(matches!(err, Error::InvalidSlug { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid workspace slug \"Bad_slug\": it must match [a-z0-9][a-z0-9-]{0,62}"
    );
    let rows: i64 = db
        .client()
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, i64::from(contactdb_pg::latest_version()));
    // Several processes connecting at once migrate one after the other.
    let fresh = TestDb::new("migr_race").unwrap();
    let url = fresh.url.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url, &PgOptions::default()).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let n: i64 = fresh
        .client()
        .query_one("SELECT count(*) FROM workspaces", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // A database migrated by a newer build is refused with a clear error.
    db.client()
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')",
            &[],
        )
        .unwrap();
    match PgStore::connect(&db.url, &PgOptions::default()) {
        Err(Error::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let err = PgStore::connect(
        "postgres://nobody@127.0.0.1:1/none?connect_timeout=2",
        &PgOptions::default(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        text.contains("cannot connect to PostgreSQL at 127.0.0.1:1/none"),
        "{text}"
    );
    assert!(matches!(
        PgStore::connect("mysql://x", &PgOptions::default()),
        Err(Error::InvalidUrl { .. })
    ));
}

fn contact(key: &str, email: Option<&str>, gsm: Option<&str>, aliases: &[&str]) -> Contact {
    let mut fields = Fields::new();
    fields.set(FieldId::NAME, Value::Str(format!("name of {key}").into()));
    if let Some(e) = email {
        fields.set(FieldId::EMAIL, Value::Str(e.into()));
    }
    if let Some(g) = gsm {
        fields.set(FieldId::GSM, Value::Str(g.into()));
    }
    Contact {
        key: key.to_owned(),
        fields,
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        version: 1,
        created_at_us: 10,
        updated_at_us: 10,
    }
}

#[test]
fn set_lookup_equals_per_value_queries() {
    let Some(db) = TestDb::new("lookup") else {
        return;
    };
    let store = db.store();
    let mut rng = Rng(42);
    // 400 contacts; emails and phones drawn from small pools so that many are
    // shared; some contacts carry aliases.
    let mut writes = Vec::new();
    for i in 0..400 {
        let email = (rng.below(4) != 0).then(|| format!("e{}@x.test", rng.below(150)));
        let gsm = (rng.below(3) != 0).then(|| format!("+4470000{:04}", rng.below(120)));
        let aliases: Vec<String> = (0..rng.below(3)).map(|j| format!("a{i}-{j}")).collect();
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
        writes.push(ContactWrite {
            before: None,
            after: contact(&format!("k{i}"), email.as_deref(), gsm.as_deref(), &aliases),
        });
    }
    let mut w = store.begin_write(WS, Wait::No).unwrap();
    w.apply(&writes).unwrap();
    w.commit().unwrap();

    for round in 0..5 {
        let mut values = LookupValues::default();
        for _ in 0..300 {
            match rng.below(3) {
                0 => values.identifiers.push(format!("k{}", rng.below(500))),
                1 => values
                    .identifiers
                    .push(format!("a{}-{}", rng.below(450), rng.below(3))),
                _ => {}
            }
            values.emails.push(format!("e{}@x.test", rng.below(170)));
            values.phones.push(format!("+4470000{:04}", rng.below(140)));
        }
        let r = store.read().unwrap();
        let set = r.lookup_for(WS, &values).unwrap();
        // Each contact the set gives comes with the internal id it is stored at.
        let placed = |found: &[Stored]| -> Vec<Contact> {
            for s in found {
                let id = s.id.expect("a stored contact without its id");
                assert_eq!(
                    r.by_internal_id(WS, id).unwrap().as_ref(),
                    Some(&s.contact),
                    "id {id}"
                );
            }
            found.iter().map(|s| s.contact.clone()).collect()
        };
        for id in &values.identifiers {
            let naive = r.resolve(WS, id).unwrap();
            let got = set.by_identifier(id).unwrap();
            let got = placed(got.as_slice()).pop();
            assert_eq!(got, naive, "round {round}, identifier {id}");
        }
        for e in &values.emails {
            assert_eq!(
                placed(&set.contacts_by_email(e).unwrap()),
                r.contacts_by_email(WS, e).unwrap(),
                "email {e}"
            );
        }
        for g in &values.phones {
            assert_eq!(
                placed(&set.contacts_by_phone(g).unwrap()),
                r.contacts_by_phone(WS, g).unwrap(),
                "phone {g}"
            );
        }
        // A value outside the fetched set is never answered from thin air.
        let outside = std::panic::catch_unwind(|| set.by_identifier("never-asked"));
        assert!(matches!(outside, Err(_) | Ok(Err(Failure::Io { .. }))));
    }
}

/// Contacts read back, by key.
fn read_back(store: &PgStore, ws: WorkspaceId) -> BTreeMap<String, Contact> {
    store
        .read()
        .unwrap()
        .contacts(ws)
        .unwrap()
        .into_iter()
        .map(|c| (c.key.clone(), c))
        .collect()
}

#[test]
fn applied_plans_read_back_field_by_field() {
    let Some(db) = TestDb::new("apply") else {
        return;
    };
    let store = db.store();
    let mut model: BTreeMap<String, Contact> = BTreeMap::new();
    let steps: Vec<BulkRequest> = vec![
        // Inserts.
        BulkRequest::new(
            Mode::Insert,
            (0..50)
                .map(|i| {
                    json!({"contact_key": format!("k{i}"), "name": format!("N{i}"),
                           "email": format!("E{i}@X.test"), "gsm": format!("+44 7700 9000{:02}", i),
                           "priority": i % 7, "email_permit": i % 2 == 0})
                })
                .collect(),
        ),
        // Updates (and a cleared column).
        BulkRequest::new(
            Mode::Update,
            (0..50)
                .step_by(3)
                .map(|i| json!({"contact_key": format!("k{i}"), "surname": "S", "priority": null}))
                .collect(),
        ),
        // Rekeys, one a swap through a third key.
        {
            let mut r = BulkRequest::new(
                Mode::Update,
                vec![
                    json!({"contact_key": "k1", "new_contact_key": "tmp"}),
                    json!({"contact_key": "k2", "new_contact_key": "k1"}),
                    json!({"contact_key": "tmp", "new_contact_key": "k2"}),
                    json!({"contact_key": "k3", "new_contact_key": "r3"}),
                ],
            );
            r.on_invalid = OnInvalid::Skip;
            r
        },
        // Aliases: new keys matched by email or phone.
        {
            let mut r = BulkRequest::new(
                Mode::Upsert,
                vec![
                    json!({"contact_key": "alias-a", "email": "e10@x.test", "name": "via email"}),
                    json!({"contact_key": "alias-b", "gsm": "+447700900011"}),
                    json!({"contact_key": "fresh", "email": "new@x.test"}),
                ],
            );
            r.match_on = MatchOn::ALL;
            r
        },
        // The alias finds its contact by key; the rekeyed contact keeps its alias-free state.
        BulkRequest::new(
            Mode::Update,
            vec![
                json!({"contact_key": "alias-a", "name": "by alias"}),
                json!({"contact_key": "r3", "new_contact_key": "r3b"}),
            ],
        ),
    ];
    for (n, req) in steps.iter().enumerate() {
        let mut w = store.begin_write(WS, Wait::No).unwrap();
        let p = plan_and_apply(&mut w, req, 1_000 + n as i64);
        assert_ne!(
            p.report.status,
            Status::Rejected,
            "step {n}: {:?}",
            p.report.errors
        );
        w.commit().unwrap();
        // Every old key goes before any new one arrives (a swap renames both ways).
        for b in p.writes.iter().filter_map(|cw| cw.before.as_ref()) {
            model.remove(&b.contact.key);
        }
        for cw in &p.writes {
            model.insert(cw.after.key.clone(), cw.after.clone());
        }
        let got = read_back(&store, WS);
        assert_eq!(got.len(), model.len(), "step {n}");
        for (k, want) in &model {
            let have = &got[k];
            assert_eq!(have.key, want.key);
            assert_eq!(have.fields, want.fields, "step {n}, contact {k}");
            assert_eq!(have.aliases, want.aliases, "step {n}, contact {k}");
            assert_eq!(have.version, want.version, "step {n}, contact {k}");
            assert_eq!(have.created_at_us, want.created_at_us);
            assert_eq!(have.updated_at_us, want.updated_at_us);
        }
        assert_eq!(store.read().unwrap().count(WS).unwrap(), model.len() as u64);
    }
    // Identifiers: every key and alias finds its contact, old keys find nothing.
    let r = store.read().unwrap();
    for c in model.values() {
        assert_eq!(r.resolve(WS, &c.key).unwrap().unwrap().key, c.key);
        for a in &c.aliases {
            assert_eq!(r.resolve(WS, a).unwrap().unwrap().key, c.key, "alias {a}");
        }
    }
    assert_eq!(r.get(WS, "alias-a").unwrap(), None);
    assert_eq!(r.resolve(WS, "alias-a").unwrap().unwrap().key, "k10");
    assert_eq!(r.resolve(WS, "alias-b").unwrap().unwrap().key, "k11");
    assert!(r.resolve(WS, "r3").unwrap().is_none());
    assert!(r.resolve(WS, "k3").unwrap().is_none());
    assert!(r.resolve(WS, "tmp").unwrap().is_none());
    assert_eq!(
        r.get(WS, "k1")
            .unwrap()
            .unwrap()
            .fields
            .get_str(FieldId::NAME),
        Some("N2")
    );
    assert_eq!(
        r.get(WS, "k2")
            .unwrap()
            .unwrap()
            .fields
            .get_str(FieldId::NAME),
        Some("N1")
    );
    let by_id: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM identifiers WHERE workspace_id = 1",
            &[],
        )
        .unwrap()
        .get(0);
    let idents = model.values().map(|c| 1 + c.aliases.len()).sum::<usize>();
    assert_eq!(by_id as usize, idents);
}

#[test]
fn second_writer_is_busy_at_once_and_a_blocking_one_waits() {
    let Some(db) = TestDb::new("busy") else {
        return;
    };
    let store = db.store();
    let other = store.create_workspace("other", [1; 16], 0).unwrap();
    let w1 = store.begin_write(WS, Wait::No).unwrap();
    let t = std::time::Instant::now();
    assert!(matches!(store.begin_write(WS, Wait::No), Err(Error::Busy)));
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
    // Another workspace has a writer lock of its own; reads take none.
    let w2 = store.begin_write(other.id, Wait::No).unwrap();
    assert_eq!(store.read().unwrap().count(WS).unwrap(), 0);
    drop(w2);
    // A waiting writer gets the lock once the first ends.
    let s2 = store.clone();
    let waiter = std::thread::spawn(move || {
        let t = std::time::Instant::now();
        let w = s2.begin_write(WS, Wait::Block).unwrap();
        drop(w);
        t.elapsed()
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    w1.commit().unwrap();
    assert!(waiter.join().unwrap() >= std::time::Duration::from_millis(250));
    assert!(store.begin_write(WS, Wait::No).is_ok());
    assert!(matches!(
        store.begin_write(WorkspaceId(77), Wait::No),
        Err(Error::UnknownWorkspace(WorkspaceId(77)))
    ));
    let r = store.read().unwrap();
    assert_eq!(r.workspace_by_id(WorkspaceId(77)).unwrap(), None);
    assert_eq!(r.workspace_by_id(WS).unwrap().unwrap().slug, "default");
}

#[test]
fn feed_has_no_gap_under_two_concurrent_writers() {
    let Some(db) = TestDb::new("feed") else {
        return;
    };
    let store = db.store();
    let done = Arc::new(AtomicBool::new(false));
    const ROUNDS: usize = 60;
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let records = (0..1 + (round % 7))
                        .map(|i| json!({"contact_key": format!("w{t}-{round}-{i}")}))
                        .collect();
                    let req = BulkRequest::new(Mode::Upsert, records);
                    let r = store.bulk(WS, &req, &BulkOptions::now()).unwrap();
                    assert_eq!(r.status, Status::Applied);
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut cursor = 0u64;
            let mut reads = 0u64;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let events = store.read().unwrap().events(WS, cursor, 50).unwrap();
                for e in &events {
                    assert_eq!(e.seq, cursor + 1, "a gap after {cursor}");
                    cursor = e.seq;
                }
                reads += 1;
                if finished && events.is_empty() {
                    return (cursor, reads);
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (last, reads) = reader.join().unwrap();
    let total: u64 = (0..ROUNDS).map(|r| 1 + (r % 7) as u64).sum::<u64>() * 2;
    assert_eq!(last, total);
    assert!(reads > 1);
    assert_eq!(store.read().unwrap().last_seq(WS).unwrap(), total);
    // Consumers: cursors never move back.
    assert_eq!(store.ack(WS, "c", 10).unwrap(), 10);
    assert_eq!(store.ack(WS, "c", 4).unwrap(), 10);
    assert_eq!(store.read().unwrap().consumer(WS, "c").unwrap(), 10);
    // Trimming keeps what a consumer has not read.
    let mut w = store.begin_write(WS, Wait::No).unwrap();
    assert_eq!(w.trim_feed(i64::MAX, 1_000).unwrap(), 10);
    w.commit().unwrap();
    let left = store.read().unwrap().events(WS, 0, 10_000).unwrap();
    assert_eq!(left.first().map(|e| e.seq), Some(11));
}

/// Applies records `from..to` of job `id`'s request in one chunk transaction
/// (left open, returned), as `runner`'s facade does: the job's row is locked and
/// its lease checked first ([`Error::LeaseLost`] when another runner holds it),
/// then the chunk's writes, its events and the job's progress with a renewed lease.
fn run_chunk(
    store: &PgStore,
    id: &[u8; 16],
    runner: &str,
    req: &BulkRequest,
    from: usize,
    to: usize,
) -> Result<contactdb_pg::PgWrite, Error> {
    let mut w = store.begin_write(WS, Wait::Block)?;
    let mut held = w.job_for_update(id)?.expect("the job exists");
    if held.lease_owner.as_deref() != Some(runner) {
        return Err(Error::LeaseLost);
    }
    assert_eq!(
        held.processed as usize, from,
        "resumes after the last committed chunk"
    );
    let mut part = req.clone();
    part.records = req.records[from..to].to_vec();
    let p = plan_and_apply(&mut w, &part, 5);
    let mut events = Vec::new();
    for cw in &p.writes {
        write_events(cw, &mut events);
    }
    w.append_events(&events, 5, None, Some(&uuid_text(id)))?;
    let now = contactdb_pg::now_us();
    held.processed = to as u64;
    held.updated_at_us = now;
    held.lease_until_us = Some(now + 400_000);
    w.put_job(&held)?;
    Ok(w)
}

fn uuid_text(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims the oldest claimable job of the workspace for `runner` at `now`.
fn claim(store: &PgStore, runner: &str, now: i64) -> Option<contactdb_backend::JobRecord> {
    Backend::claim_job(store, WS, None, runner, 400_000, now).unwrap()
}

#[test]
fn a_killed_runners_job_completes_exactly_once() {
    let Some(db) = TestDb::new("jobs") else {
        return;
    };
    let store = db.store();
    let records: Vec<_> = (0..3_000)
        .map(|i| json!({"contact_key": format!("j{i}"), "name": "x"}))
        .collect();
    let req = BulkRequest::new(Mode::Upsert, records);
    let json_text = serde_json::to_string(&req).unwrap();
    let now = contactdb_pg::now_us();
    store
        .submit_job(WS, [9; 16], &json_text, 3_000, now)
        .unwrap();
    // Runner A has a pool of its own, so its connection can be killed.
    let a_store = db.store();
    let id = [9; 16];
    let a = claim(&a_store, "runner-a", contactdb_pg::now_us()).unwrap();
    assert_eq!(a.state, JobState::Running);
    // The shared job record carries the lease the claim took.
    assert_eq!(a.lease_owner.as_deref(), Some("runner-a"));
    assert!(a.lease_until_us.is_some_and(|u| u > now));
    // Runner B finds nothing to claim while A's lease runs.
    assert!(claim(&store, "runner-b", contactdb_pg::now_us()).is_none());
    run_chunk(&a_store, &id, "runner-a", &req, 0, 1_000)
        .unwrap()
        .commit()
        .unwrap();
    // A's second chunk is written but never committed: its connection dies.
    let mut open = run_chunk(&a_store, &id, "runner-a", &req, 1_000, 2_000).unwrap();
    let pid = open.backend_pid().unwrap();
    // While A holds the job's row, even an expired lease is skipped (SKIP LOCKED).
    let far = contactdb_pg::now_us() + 10_000_000;
    assert!(claim(&store, "runner-b", far).is_none());
    let killed: bool = db
        .client()
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed);
    assert!(open.commit().is_err());
    // Once A's lease ran out, B takes the job over and resumes after chunk 1.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let b = claim(&store, "runner-b", contactdb_pg::now_us()).unwrap();
    assert_eq!(b.processed, 1_000);
    // A, were it still alive, could not commit another chunk.
    assert!(matches!(
        run_chunk(&a_store, &id, "runner-a", &req, 1_000, 2_000),
        Err(Error::LeaseLost)
    ));
    for (from, to) in [(1_000, 2_000), (2_000, 3_000)] {
        run_chunk(&store, &id, "runner-b", &req, from, to)
            .unwrap()
            .commit()
            .unwrap();
    }
    let mut w = store.begin_write(WS, Wait::No).unwrap();
    let mut done = w.job_for_update(&id).unwrap().unwrap();
    done.state = JobState::Succeeded;
    done.report_json = "{}".to_owned();
    (done.lease_owner, done.lease_until_us) = (None, None);
    w.put_job(&done).unwrap();
    w.clear_job_data(done.number).unwrap();
    w.commit().unwrap();
    // Exactly once: every record inserted once, one insert event each.
    let r = store.read().unwrap();
    let job = r.job(WS, &[9; 16]).unwrap().unwrap();
    assert_eq!((job.state, job.processed), (JobState::Succeeded, 3_000));
    assert_eq!((job.lease_owner, job.lease_until_us), (None, None));
    assert_eq!(r.count(WS).unwrap(), 3_000);
    let contacts = r.contacts(WS).unwrap();
    assert!(contacts.iter().all(|c| c.version == 1));
    let events = r.events(WS, 0, 10_000).unwrap();
    assert_eq!(events.len(), 3_000);
    assert!(events.iter().all(|e| e.kind == EventKind::Insert));
    assert!(
        r.job_data(WS, job.number, JobDataKind::Request)
            .unwrap()
            .is_empty()
    );
    assert!(claim(&store, "runner-c", i64::MAX).is_none());
}

#[test]
fn an_applied_request_id_replays_its_stored_report() {
    let Some(db) = TestDb::new("r21") else { return };
    let store = db.store();
    let mut req = BulkRequest::new(
        Mode::Upsert,
        vec![
            json!({"contact_key": "a", "name": "A"}),
            json!({"contact_key": "b"}),
        ],
    );
    req.request_id = Some("req-1".to_owned());
    let first = store.bulk(WS, &req, &opts(1_000)).unwrap();
    assert!(!first.replayed);
    assert_eq!(first.summary.inserted, 2);
    let seq = store.read().unwrap().last_seq(WS).unwrap();
    let again = store.bulk(WS, &req, &opts(2_000)).unwrap();
    assert!(again.replayed);
    assert_eq!(again.summary, first.summary);
    assert_eq!(again.results, first.results);
    let r = store.read().unwrap();
    assert_eq!(r.last_seq(WS).unwrap(), seq, "a replay writes nothing");
    assert_eq!(r.get(WS, "a").unwrap().unwrap().version, 1);
    drop(r);
    // Same id, other body: refused.
    let mut other = req.clone();
    other.records.pop();
    assert!(matches!(
        store.bulk(WS, &other, &opts(3_000)),
        Err(Error::Request(
            contactdb_policy::RequestError::RequestIdReused { .. }
        ))
    ));
    // After the retention the id is forgotten: applied anew.
    let late = BulkOptions {
        retention_us: 10,
        ..opts(1_000_000)
    };
    let anew = store.bulk(WS, &req, &late).unwrap();
    assert!(!anew.replayed);
    assert_eq!(anew.summary.unchanged, 2);
}

/// Records of one generated workload step: inserts, updates that match by email
/// or phone (aliases), rekeys.
fn workload(seed: u64) -> Vec<BulkRequest> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let n = 300;
    let email = |i: u64| format!("Person{i}@Example.test");
    let phone = |i: u64| format!("+44 7700 9{:05}", i);
    out.push(BulkRequest::new(
        Mode::Insert,
        (0..n)
            .map(|i| {
                json!({"contact_key": format!("c{i}"), "name": format!("N{i}"),
                       "email": email(i % 260), "gsm": phone(i % 280), "priority": i % 5})
            })
            .collect(),
    ));
    for round in 0..3 {
        let mut records = Vec::new();
        for _ in 0..150 {
            let i = rng.below(n + 60);
            match rng.below(4) {
                0 => records.push(json!({"contact_key": format!("c{i}"), "surname": format!("S{round}")})),
                1 => records.push(json!({"contact_key": format!("x{round}-{i}"), "email": email(i), "status": "a"})),
                2 => records.push(json!({"contact_key": format!("y{round}-{i}"), "gsm": phone(i), "name": "by phone"})),
                _ => records.push(json!({"contact_key": format!("c{i}"), "email": email(rng.below(n)), "gsm": null})),
            }
        }
        let mut r = BulkRequest::new(Mode::Upsert, records);
        r.match_on = MatchOn::ALL;
        r.on_invalid = OnInvalid::Skip;
        out.push(r);
        let rekeys = (0..40)
            .map(|_| {
                let i = rng.below(n);
                json!({"contact_key": format!("c{i}"), "new_contact_key": format!("c{}", rng.below(n + 100))})
            })
            .collect();
        let mut r = BulkRequest::new(Mode::Update, rekeys);
        r.on_invalid = OnInvalid::Skip;
        out.push(r);
    }
    out
}

#[test]
fn plans_applied_to_postgres_equal_the_embedded_store() {
    let Some(db) = TestDb::new("equal") else {
        return;
    };
    let store = db.store();
    let dir = tempfile::tempdir().unwrap();
    let embedded = contactdb::Database::open(dir.path().join("c.redb")).unwrap();
    let ews = embedded.workspace("default").unwrap();
    for seed in [1u64, 2] {
        for (n, req) in workload(seed).iter().enumerate() {
            let want = ews.bulk(req).unwrap();
            let have = store.bulk(WS, req, &BulkOptions::now()).unwrap();
            assert_eq!(have.status, want.status, "seed {seed} step {n}");
            assert_eq!(have.summary, want.summary, "seed {seed} step {n}");
            assert_eq!(have.results, want.results, "seed {seed} step {n}");
            assert_eq!(have.errors, want.errors, "seed {seed} step {n}");
        }
    }
    let catalog = Catalog::new(&[]);
    let want: Vec<contactdb::Contact> = ews.contacts().unwrap();
    let have = read_back(&store, WS);
    assert_eq!(have.len(), want.len());
    assert!(
        want.iter().any(|c| !c.aliases.is_empty()),
        "the workload made aliases"
    );
    for w in &want {
        let h = &have[&w.key];
        let columns: BTreeMap<String, serde_json::Value> = h
            .fields
            .iter()
            .map(|(id, v)| (catalog.by_id(id).unwrap().name.clone(), v.to_json()))
            .collect();
        assert_eq!(columns, w.columns, "contact {}", w.key);
        assert_eq!(h.aliases, w.aliases, "contact {}", w.key);
        assert_eq!(h.version, w.version, "contact {}", w.key);
    }
    // Every key and alias resolves in both to the same contact.
    let r = store.read().unwrap();
    for w in &want {
        for id in std::iter::once(&w.key).chain(&w.aliases) {
            assert_eq!(
                r.resolve(WS, id).unwrap().map(|c| c.key),
                Some(w.key.clone())
            );
            assert_eq!(ews.get(id).unwrap().map(|c| c.key), Some(w.key.clone()));
        }
    }
}

#[test]
fn custom_columns_are_declared_and_used() {
    let Some(db) = TestDb::new("columns") else {
        return;
    };
    let store = db.store();
    let spec = contactdb_policy::ColumnSpec::new("tier", contactdb_policy::ColumnType::Integer)
        .import_enabled(true);
    let mut w = store.begin_write(WS, Wait::No).unwrap();
    let col = w.declare_column(&spec).unwrap();
    assert_eq!(col.id, FieldId(FieldId::CUSTOM_FIRST));
    let col2 = w
        .declare_column(&contactdb_policy::ColumnSpec::new(
            "note",
            contactdb_policy::ColumnType::String { max_len: 10 },
        ))
        .unwrap();
    assert_eq!(col2.id.0, FieldId::CUSTOM_FIRST + 1);
    w.commit().unwrap();
    let req = BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "a", "tier": 3})]);
    assert_eq!(
        store
            .bulk(WS, &req, &BulkOptions::now())
            .unwrap()
            .summary
            .inserted,
        1
    );
    let c = store.read().unwrap().get(WS, "a").unwrap().unwrap();
    assert_eq!(c.fields.get(col.id), Some(&Value::Int(3)));
    let mut w = store.begin_write(WS, Wait::No).unwrap();
    let changed = contactdb_policy::ColumnSpec::new("tier", contactdb_policy::ColumnType::Json);
    assert!(matches!(
        w.declare_column(&changed),
        Err(Error::ColumnInUse { .. })
    ));
    drop(w);
    let cols = store.read().unwrap().columns(WS).unwrap();
    assert_eq!(
        cols.iter()
            .map(|c| c.spec.name.as_str())
            .collect::<Vec<_>>(),
        ["tier", "note"]
    );
}
