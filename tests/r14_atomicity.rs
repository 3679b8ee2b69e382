//! R14: on_invalid=abort writes nothing when any record fails (valid records are
//! `not_applied`); on_invalid=skip applies the valid ones (`partial`).

mod common;

use common::*;
use contactdb::{MatchedBy, Mode, Outcome, Status};
use serde_json::{Value, json};

fn mixed() -> Vec<Value> {
    vec![
        json!({"contact_key": "new-1", "name": "N"}),
        json!({"contact_key": "old", "name": "Changed", "email": " X@Y.COM "}),
        json!({"contact_key": "bad", "email": "nope"}),
        json!({"contact_key": "old2"}),
        json!({"contact_key": "bad2", "birthday": "2023-02-30"}),
    ]
}

fn seed_two(ws: &contactdb::Workspace) -> TestResult {
    seed(
        ws,
        vec![
            json!({"contact_key": "old", "name": "Old"}),
            json!({"contact_key": "old2", "name": "Old2"}),
        ],
    )?;
    Ok(())
}

// R14: abort — nothing written, every failure reported, valid records not_applied.
#[test]
fn abort_writes_nothing() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed_two(&ws)?;
    let before = ws.contacts()?;
    let rep = ws.bulk(&req(Mode::Upsert, mixed()))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::NotApplied,
            Outcome::NotApplied,
            Outcome::Failed,
            Outcome::NotApplied,
            Outcome::Failed
        ]
    );
    let mb: Vec<Option<MatchedBy>> = rep.results.iter().map(|r| r.matched_by).collect();
    assert_eq!(
        mb,
        vec![None, Some(MatchedBy::Key), None, Some(MatchedBy::Key), None]
    );
    assert_eq!(
        errors(&rep),
        vec![
            (2, Some("email".to_owned()), "invalid_email"),
            (4, Some("birthday".to_owned()), "invalid_date"),
        ]
    );
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
    let s = rep.summary;
    assert_eq!(
        (s.total, s.valid, s.invalid, s.failed),
        (5, 3, 2, 2),
        "{s:?}"
    );
    assert_eq!(
        (s.inserted, s.updated, s.unchanged, s.batches),
        (0, 0, 0, 0)
    );
    assert_eq!(ws.contacts()?, before);
    assert!(ws.get("new-1")?.is_none());
    assert_clean(&db)?;
    Ok(())
}

// R14: abort also rejects on a matching failure (not_found, key_conflict, ...).
#[test]
fn abort_on_matching_failure() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed_two(&ws)?;
    let before = ws.contacts()?;
    let rep = ws.bulk(&req(
        Mode::Update,
        vec![
            json!({"contact_key": "old", "name": "X"}),
            json!({"contact_key": "ghost", "name": "Y"}),
            json!({"contact_key": "old2", "new_contact_key": "old"}),
        ],
    ))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(
        outcomes(&rep),
        vec![Outcome::NotApplied, Outcome::Failed, Outcome::Failed]
    );
    let codes: Vec<&str> = errors(&rep).into_iter().map(|e| e.2).collect();
    assert_eq!(codes, vec!["not_found", "key_conflict"]);
    assert_eq!(rep.summary.invalid, 0);
    assert_eq!(rep.summary.valid, 3);
    assert_eq!(rep.summary.failed, 2);
    assert_eq!(ws.contacts()?, before);
    Ok(())
}

// R14: skip — valid records applied, failures reported, status partial.
#[test]
fn skip_applies_valid_records() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed_two(&ws)?;
    let rep = ws.bulk(&skip(Mode::Upsert, mixed()))?;
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Inserted,
            Outcome::Updated,
            Outcome::Failed,
            Outcome::Unchanged,
            Outcome::Failed
        ]
    );
    assert_eq!(counts(&rep), (5, 3, 2, 1, 1, 1, 2, 1));
    assert_eq!(col(&must_get(&ws, "new-1")?, "name"), json!("N"));
    let old = must_get(&ws, "old")?;
    assert_eq!(col(&old, "name"), json!("Changed"));
    assert_eq!(col(&old, "email"), json!("x@y.com"));
    assert_eq!(old.version, 2);
    assert_eq!(must_get(&ws, "old2")?.version, 1);
    assert!(ws.get("bad")?.is_none());
    assert!(ws.get("bad2")?.is_none());
    assert_eq!(ws.count()?, 3);
    // Warnings are reported for the applied record only.
    assert_eq!(
        warnings(&rep),
        vec![(1, Some("email".to_owned()), "value_normalized".to_owned())]
    );
    assert_clean(&db)?;
    Ok(())
}

// R14, R15: skip with every record failing writes nothing and is rejected.
#[test]
fn skip_all_failing_is_rejected() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed_two(&ws)?;
    let before = ws.contacts()?;
    let rep = ws.bulk(&skip(
        Mode::Insert,
        vec![
            json!({"contact_key": "old"}),
            json!({"contact_key": "x", "gsm": "1"}),
        ],
    ))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(outcomes(&rep), vec![Outcome::Failed, Outcome::Failed]);
    assert_eq!(rep.summary.batches, 0);
    assert_eq!(ws.contacts()?, before);
    Ok(())
}

// R14: one request is one transaction: a big request applies entirely (all
// versions and counts) — and an abort of a big request leaves nothing behind.
#[test]
fn big_request_all_or_nothing() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let mut recs: Vec<Value> = (0..3000)
        .map(|i| json!({"contact_key": format!("k{i:05}"), "email": format!("u{i}@x.com")}))
        .collect();
    recs.push(json!({"contact_key": "last", "email": "broken"}));
    let rep = ws.bulk(&req(Mode::Upsert, recs.clone()))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(ws.count()?, 0);
    assert!(ws.find_by_email("u7@x.com")?.is_empty());
    recs.pop();
    let rep = ws.bulk(&req(Mode::Upsert, recs))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(ws.count()?, 3000);
    assert_eq!(ws.find_by_email("u7@x.com")?.len(), 1);
    assert_clean(&db)?;
    Ok(())
}

// R14: bulk_atomic applies many batches in one transaction: later batches see the
// earlier ones, and any rejected batch leaves nothing written at all.
#[test]
fn bulk_atomic_batches() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed_two(&ws)?;
    let before = ws.contacts()?;
    let batches = vec![
        req(
            Mode::Insert,
            vec![json!({"contact_key": "b1", "name": "1"})],
        ),
        req(
            Mode::Update,
            vec![json!({"contact_key": "b1", "name": "2"})],
        ),
        req(
            Mode::Upsert,
            vec![json!({"contact_key": "b3", "gsm": "12"})],
        ),
    ];
    let mut reports = Vec::new();
    let status = ws.bulk_atomic(
        batches.clone().into_iter().map(Ok::<_, contactdb::Error>),
        |r| {
            reports.push(r.clone());
            Ok::<(), contactdb::Error>(())
        },
    )?;
    assert_eq!(status, Status::Rejected);
    assert_eq!(reports.len(), 3, "every batch is planned and reported");
    assert_eq!(outcomes(&reports[1]), vec![Outcome::Updated]);
    assert_eq!(reports[2].status, Status::Rejected);
    assert_eq!(
        ws.contacts()?,
        before,
        "a rejected batch must undo the others"
    );

    // Without the bad batch, everything commits.
    let status = ws.bulk_atomic(
        batches
            .iter()
            .take(2)
            .cloned()
            .map(Ok::<_, contactdb::Error>),
        |_| Ok::<(), contactdb::Error>(()),
    )?;
    assert_eq!(status, Status::Applied);
    let b1 = must_get(&ws, "b1")?;
    assert_eq!(col(&b1, "name"), json!("2"));
    assert_eq!(b1.version, 2);

    // Batches may not carry a request_id.
    let mut with_id = req(Mode::Upsert, vec![json!({"contact_key": "x"})]);
    with_id.request_id = Some("r".to_owned());
    let got = ws.bulk_atomic(std::iter::once(Ok::<_, contactdb::Error>(with_id)), |_| {
        Ok::<(), contactdb::Error>(())
    });
    assert!(
        matches!(got, Err(contactdb::Error::InvalidArgument(_))),
        "{got:?}"
    );
    assert!(ws.get("x")?.is_none());
    assert_clean(&db)?;
    Ok(())
}

const CRASH_ENV: &str = "CONTACTDB_R14_CRASH_PATH";
const CRASH_BATCH: usize = 4000;

// Not a test of its own: the child side of `killed_writer_is_all_or_nothing`. It
// does nothing unless the parent sets the variable; then it writes requests of
// CRASH_BATCH new contacts until it is killed.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let db = contactdb::Database::open(&path).unwrap();
    let ws = db.workspace("default").unwrap();
    let start = ws.count().unwrap() as usize / CRASH_BATCH;
    println!("CHILD ready");
    for round in start..start + 1000 {
        let recs: Vec<Value> = (0..CRASH_BATCH)
            .map(|i| json!({"contact_key": format!("r{round}-{i}"), "email": format!("u{i}@r{round}.com")}))
            .collect();
        ws.bulk(&req(Mode::Insert, recs)).unwrap();
    }
}

// R14: a writer killed at any point leaves every request entirely applied or not at
// all, and a file that reopens clean.
#[test]
fn killed_writer_is_all_or_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.redb");
    let exe = std::env::current_exe()?;
    let mut committed = 0;
    // The longer delays run only while no kill has found a commit yet (a loaded
    // machine starts the child slowly).
    for delay_ms in [40u64, 120, 260, 500, 1500, 4000, 10000] {
        if delay_ms > 1500 && committed > 0 {
            break;
        }
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CRASH_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill()?;
        child.wait()?;
        let db = contactdb::Database::open(&path)?;
        let ws = db.workspace("default")?;
        let n = ws.count()? as usize;
        assert_eq!(
            n % CRASH_BATCH,
            0,
            "after kill at {delay_ms} ms: {n} contacts"
        );
        // Every committed request is complete: its last record and its index entries.
        for round in 0..n / CRASH_BATCH {
            let last = format!("r{round}-{}", CRASH_BATCH - 1);
            assert!(ws.get(&last)?.is_some(), "{last} missing");
            assert_eq!(ws.find_by_email(&format!("u0@r{round}.com"))?.len(), 1);
        }
        assert_clean(&db)?;
        committed = n;
    }
    assert!(
        committed > 0,
        "the child never committed: the test proved nothing"
    );
    Ok(())
}
