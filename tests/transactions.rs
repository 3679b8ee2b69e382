//! Several requests in one write transaction (`Workspace::begin`), and reads from
//! one snapshot (`Workspace::snapshot`), through the public API.

mod common;

use common::*;
use contactdb::{Error, Mode, Outcome, Status};
use serde_json::json;

#[test]
fn requests_in_a_transaction_see_each_other_and_commit_together() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let mut txn = ws.begin()?;
    let a = txn.apply(&req(
        Mode::Insert,
        json!({"contact_key": "k1", "name": "Ann"}),
    ))?;
    assert_eq!(a.status, Status::Applied);
    let b = txn.apply(&req(
        Mode::Update,
        json!({"contact_key": "k1", "name": "Anne"}),
    ))?;
    assert_eq!(outcomes(&b), vec![Outcome::Updated]);
    // An insert of the same key in the same transaction is a duplicate of a contact
    // that exists for it.
    let c = txn.apply(&req(Mode::Insert, json!({"contact_key": "k1"})))?;
    assert_eq!(c.status, Status::Rejected);
    assert_eq!(ws.count()?, 0, "nothing is visible before the commit");
    assert_eq!(ws.feed(0, 100)?.len(), 0);
    txn.commit()?;
    assert_eq!(col(&must_get(&ws, "k1")?, "name"), json!("Anne"));
    assert_eq!(must_get(&ws, "k1")?.version, 2);
    // One feed entry per transaction: the insert and the update, in order.
    let events = ws.feed(0, 100)?;
    assert_eq!(events.len(), 2);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_clean(&db)
}

#[test]
fn a_dropped_transaction_writes_nothing() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "k0", "name": "Zed"}))?;
    {
        let mut txn = ws.begin()?;
        txn.apply(&req(Mode::Insert, json!({"contact_key": "k1"})))?;
        txn.apply(&req(
            Mode::Update,
            json!({"contact_key": "k0", "name": "Zoe"}),
        ))?;
    }
    let mut txn = ws.begin()?;
    txn.apply(&req(Mode::Insert, json!({"contact_key": "k2"})))?;
    txn.rollback();
    assert_eq!(versions(&ws)?, vec![("k0".to_owned(), 1)]);
    assert_eq!(col(&must_get(&ws, "k0")?, "name"), json!("Zed"));
    assert_eq!(ws.feed(0, 100)?.len(), 1);
    assert_clean(&db)
}

#[test]
fn a_rejected_request_changes_nothing_and_the_transaction_goes_on() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let mut txn = ws.begin()?;
    // Abort mode: the invalid record rejects the whole request, k1 included.
    let r = txn.apply(&req(
        Mode::Insert,
        vec![
            json!({"contact_key": "k1"}),
            json!({"contact_key": "k2", "email": "nope"}),
        ],
    ))?;
    assert_eq!(r.status, Status::Rejected);
    // The next request does not see k1: it was never applied.
    let r = txn.apply(&req(
        Mode::Insert,
        json!({"contact_key": "k1", "name": "Ann"}),
    ))?;
    assert_eq!(outcomes(&r), vec![Outcome::Inserted]);
    txn.commit()?;
    assert_eq!(ws.count()?, 1);
    Ok(())
}

#[test]
fn transaction_errors_are_clear() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let mut txn = ws.begin()?;
    let with_id = req(Mode::Insert, json!({"contact_key": "k1"})).with_id("r-1");
    assert_eq!(
        error_kind(&txn.apply(&with_id)),
        "request_id_in_transaction"
    );
    // A request-level problem is an error and the transaction can go on.
    let bad = req(Mode::Insert, json!({"contact_key": "k1"})).listing(&["no_such_column"]);
    assert_eq!(error_kind(&txn.apply(&bad)), "request");
    // R19: a second writer gets busy at once.
    assert_eq!(error_kind(&ws.try_begin().map(|_| ())), "busy");
    let second = ws.try_bulk(&req(Mode::Insert, json!({"contact_key": "x"})));
    assert_eq!(error_kind(&second), "busy");
    txn.apply(&req(Mode::Insert, json!({"contact_key": "k1"})))?;
    txn.commit()?;
    assert_eq!(ws.count()?, 1);
    Ok(())
}

#[test]
fn a_snapshot_reads_one_point_in_time() -> TestResult {
    let (_dir, _db, ws) =
        seeded(json!({"contact_key": "k1", "email": "ann@x.io", "gsm": "+905551234567"}))?;
    let snap = ws.snapshot()?;
    seed(
        &ws,
        vec![
            json!({"contact_key": "k1", "email": "ann@y.io"}),
            json!({"contact_key": "k2", "email": "ann@x.io"}),
        ],
    )?;
    assert_eq!(snap.count()?, 1);
    assert_eq!(snap.find_by_email("ANN@X.IO")?.len(), 1);
    assert_eq!(snap.find_by_phone("0090 555 123 45 67")?.len(), 1);
    assert_eq!(
        col(&snap.get("k1")?.ok_or("k1")?, "email"),
        json!("ann@x.io")
    );
    assert_eq!(snap.contacts()?.len(), 1);
    assert_eq!(ws.count()?, 2);
    assert_eq!(col(&must_get(&ws, "k1")?, "email"), json!("ann@y.io"));
    Ok(())
}

/// The batches of one import: an insert, an update of what it inserted, a batch
/// with an invalid record (skip), and a duplicate key across batches.
fn import_batches() -> Vec<contactdb::BulkRequest> {
    vec![
        skip(
            Mode::Upsert,
            vec![
                json!({"contact_key": "k1", "email": "a@x.io"}),
                json!({"contact_key": "k2"}),
            ],
        ),
        skip(
            Mode::Update,
            vec![
                json!({"contact_key": "k1", "name": "Ann"}),
                json!({"contact_key": "k9"}),
            ],
        ),
        skip(
            Mode::Upsert,
            vec![
                json!({"contact_key": "k3", "email": "bad"}),
                json!({"contact_key": "k4", "email": "A@X.IO"}),
            ],
        ),
    ]
}

/// What a database holds: the file's bytes, or (PostgreSQL) every contact and the
/// feed's last sequence number.
fn stored_state(path: &std::path::Path) -> Res<Vec<u8>> {
    if !on_postgres() {
        return Ok(std::fs::read(path)?);
    }
    let ws = contactdb::Database::open(path)?.workspace("default")?;
    Ok(format!("{:?} {}", ws.contacts()?, ws.last_seq()?).into_bytes())
}

#[test]
fn a_dry_run_reports_what_a_real_run_does_and_leaves_the_file_untouched() -> TestResult {
    let (dir, db, ws) = fresh_ws()?;
    let path = dir.db("contacts.redb");
    seed(&ws, json!({"contact_key": "k0", "email": "z@x.io"}))?;
    drop((ws, db));
    let before = stored_state(&path)?;

    let ro = contactdb::Database::open_read_only(&path)?;
    let mut dry = Vec::new();
    let dry_status = ro.workspace("default")?.bulk_dry_run(
        import_batches().into_iter().map(Ok::<_, Error>),
        |r| {
            dry.push(serde_json::to_value(r).map_err(|e| Error::InvalidArgument(e.to_string()))?);
            Ok(())
        },
    )?;
    drop(ro);
    assert_eq!(
        stored_state(&path)?,
        before,
        "a dry run changes no byte of the file"
    );

    let db = contactdb::Database::open(&path)?;
    let ws = db.workspace("default")?;
    let mut real = Vec::new();
    let real_status = ws.bulk_atomic(import_batches().into_iter().map(Ok::<_, Error>), |r| {
        real.push(serde_json::to_value(r).map_err(|e| Error::InvalidArgument(e.to_string()))?);
        Ok(())
    })?;
    assert_eq!(dry_status, real_status);
    assert_eq!(dry, real);
    assert_eq!(real_status, Status::Partial);
    assert_eq!(ws.count()?, 4);
    Ok(())
}

/// Requests of one transaction that put a key, email or phone and drop it again
/// before the commit: the committed file holds what the same requests applied one
/// at a time leave, and passes `check` (no removal of what was never written).
/// Key, columns, aliases and version of every contact: equal but for the times
/// (one transaction has one clock).
type Content = Vec<(
    String,
    std::collections::BTreeMap<String, serde_json::Value>,
    Vec<String>,
    u64,
)>;

fn content(w: &contactdb::Workspace) -> Res<Content> {
    Ok(w.contacts()?
        .into_iter()
        .map(|c| (c.key, c.columns, c.aliases, c.version))
        .collect())
}

#[test]
fn writes_undone_within_a_transaction_leave_what_one_at_a_time_leaves() -> TestResult {
    let steps = [
        req(
            Mode::Insert,
            vec![
                json!({"contact_key": "k1", "email": "a@x.io", "gsm": "+905321112233"}),
                json!({"contact_key": "k2", "email": "b@x.io"}),
            ],
        ),
        // New email and phone: the entries the insert made go again.
        req(
            Mode::Update,
            json!({"contact_key": "k1", "email": "c@x.io", "gsm": "+905329998877"}),
        ),
        // A rename: k1's identifier goes, k9's comes.
        req(
            Mode::Update,
            json!({"contact_key": "k1", "new_contact_key": "k9"}),
        ),
        // An alias added through an email match, then the contact renamed back.
        match_all(
            Mode::Update,
            json!({"contact_key": "alias-2", "email": "b@x.io"}),
        ),
        req(
            Mode::Update,
            json!({"contact_key": "k9", "new_contact_key": "k1", "email": "a@x.io"}),
        ),
    ];
    let (_one_dir, one_db, one) = fresh_ws()?;
    for r in &steps {
        one.bulk(r)?;
    }
    let (_dir, db, ws) = fresh_ws()?;
    let mut txn = ws.begin()?;
    for r in &steps {
        txn.apply(r)?;
    }
    txn.commit()?;
    // Equal but for the times (one transaction has one clock).
    assert_eq!(content(&ws)?, content(&one)?);
    for email in ["a@x.io", "b@x.io", "c@x.io"] {
        assert_eq!(by_email(&ws, email)?, by_email(&one, email)?, "{email}");
    }
    assert_eq!(by_email(&ws, "a@x.io")?, ["k1"]);
    assert!(by_email(&ws, "c@x.io")?.is_empty());
    assert_eq!(must_get(&ws, "alias-2")?.key, "k2");
    assert!(ws.get("k9")?.is_none());
    assert_clean(&one_db)?;
    assert_clean(&db)
}

// R6: in a transaction that has written, a request is planned from values read
// ahead, and a record found by its key is matched by nothing else, so its email is
// not read ahead; unless a record before it renames that key away, when the record
// falls back to its email. The same requests one at a time agree.
#[test]
fn a_key_renamed_away_earlier_in_a_request_falls_back_to_email_in_a_transaction() -> TestResult {
    let seed = vec![
        json!({"contact_key": "a", "email": "a@x.io"}),
        json!({"contact_key": "c", "email": "x@x.io"}),
    ];
    let steps = [
        // A first write, so that what follows is read through the transaction.
        req(Mode::Update, json!({"contact_key": "c", "name": "Cem"})),
        match_all(
            Mode::Update,
            vec![
                json!({"contact_key": "a", "new_contact_key": "b"}),
                // `a` named a contact when the request began, no longer here.
                json!({"contact_key": "a", "email": "x@x.io", "name": "Via email"}),
            ],
        ),
        // No renames: found by key, the email is not needed (nor read).
        match_all(
            Mode::Upsert,
            vec![
                json!({"contact_key": "b", "email": "x@x.io"}),
                json!({"contact_key": "new", "email": "new@x.io"}),
            ],
        ),
    ];
    let (_one_dir, one_db, one) = seeded(seed.clone())?;
    let mut want = Vec::new();
    for r in &steps {
        want.push(outcomes(&one.bulk(r)?));
    }
    let (_dir, db, ws) = seeded(seed)?;
    let mut txn = ws.begin()?;
    let mut got = Vec::new();
    for r in &steps {
        got.push(outcomes(&txn.apply(r)?));
    }
    txn.commit()?;
    assert_eq!(got, want);
    assert_eq!(col(&must_get(&ws, "c")?, "name"), json!("Via email"));
    assert_eq!(must_get(&ws, "b")?.key, "b");
    assert_eq!(content(&ws)?, content(&one)?);
    assert_clean(&one_db)?;
    assert_clean(&db)
}

// R6, R14: a transaction of `bulk_each` commits once the reports it holds outgrow
// the cache's budget, however many records `group_records` allows; nothing changes
// in what is applied or reported.
#[test]
fn bulk_each_commits_before_its_reports_outgrow_the_cache() -> TestResult {
    let dir = tempfile::tempdir()?;
    let open = |name: &str, cache: usize| {
        contactdb::Database::builder()
            .cache_size_bytes(cache)
            .open(dir.path().join(name))
    };
    // Mixed-case emails and formatted phones: every record gets warnings.
    let batches = || {
        (0..30).map(|b| {
            let records: Vec<serde_json::Value> = (0..1_000)
                .map(|i| {
                    let n = b * 1_000 + i;
                    json!({"contact_key": format!("key-{n:06}"),
                           "email": format!("Person.{n}@Example.COM"),
                           "gsm": format!("+1 (202) 555-{:04}", n % 10_000)})
                })
                .collect();
            Ok::<_, Error>(skip(Mode::Upsert, records))
        })
    };
    let run = |db: &contactdb::Database| -> Res<(contactdb::EachSummary, Vec<String>)> {
        let ws = db.workspace("default")?;
        let mut reports = Vec::new();
        let summary = ws.bulk_each(batches(), usize::MAX, |r| {
            reports
                .push(serde_json::to_string(r).map_err(|e| Error::InvalidArgument(e.to_string()))?);
            Ok(())
        })?;
        Ok((summary, reports))
    };
    let small = open("small.redb", 1 << 20)?;
    let large = open("large.redb", 256 << 20)?;
    let (s, small_reports) = run(&small)?;
    let (l, large_reports) = run(&large)?;
    assert_eq!(
        l.commits, 1,
        "30,000 records hold well under 512 MiB of reports"
    );
    assert!(
        s.commits >= 3,
        "a 1 MiB cache holds 30 requests' reports: {s:?}"
    );
    assert_eq!((s.requests, l.requests), (30, 30));
    assert_eq!(small_reports, large_reports);
    assert_eq!(small.workspace("default")?.count()?, 30_000);
    assert_clean(&small)?;
    assert_clean(&large)
}

// R6, R14: what `bulk_each_trimmed`'s hook removes from the reports is not held
// until the commit, so the same requests fit in fewer transactions; the contacts
// and the rest of every report are those of `bulk_each`.
#[test]
fn bulk_each_trimmed_holds_only_what_the_hook_leaves() -> TestResult {
    let dir = tempfile::tempdir()?;
    let open = |name: &str| {
        contactdb::Database::builder()
            .cache_size_bytes(1 << 20)
            .open(dir.path().join(name))
    };
    // Every record gets warnings (mixed-case email, formatted phone); every
    // tenth repeats the one before it, a duplicate of the batch.
    let batches = || {
        (0..30).map(|b| {
            let records: Vec<serde_json::Value> = (0..1_000)
                .map(|i| {
                    let n = b * 1_000 + i - usize::from(i % 10 == 9);
                    json!({"contact_key": format!("key-{n:06}"),
                           "email": format!("Person.{n}@Example.COM"),
                           "gsm": format!("+1 (202) 555-{:04}", n % 10_000)})
                })
                .collect();
            Ok::<_, Error>(skip(Mode::Upsert, records).on_dup(contactdb::OnDuplicate::First))
        })
    };
    let trim = |r: &mut contactdb::Report| {
        r.results.retain(|x| x.outcome == Outcome::Duplicate);
        r.warnings = Vec::new();
    };
    let full = open("full.redb")?;
    let trimmed = open("trimmed.redb")?;
    let mut full_reports = Vec::new();
    let f = full
        .workspace("default")?
        .bulk_each(batches(), usize::MAX, |r| {
            let mut r = r.clone();
            trim(&mut r);
            full_reports.push(r);
            Ok(())
        })?;
    let mut trimmed_reports = Vec::new();
    let t = trimmed
        .workspace("default")?
        .bulk_each_trimmed(batches(), usize::MAX, trim, |r| {
            trimmed_reports.push(r.clone());
            Ok(())
        })?;
    assert!(
        f.commits >= 3,
        "a 1 MiB cache holds 30 requests' reports: {f:?}"
    );
    assert_eq!(t.commits, 1, "trimmed, 30 requests fit in one transaction");
    assert_eq!(trimmed_reports, full_reports);
    assert_eq!(trimmed_reports[0].results.len(), 100, "the duplicates stay");
    let content = |db: &contactdb::Database| -> Res<Vec<_>> {
        let all = db.workspace("default")?.contacts()?;
        Ok(all
            .into_iter()
            .map(|c| (c.key, c.columns, c.aliases, c.version))
            .collect())
    };
    assert_eq!(content(&trimmed)?, content(&full)?);
    assert_eq!(trimmed.workspace("default")?.count()?, 27_000);
    assert_clean(&trimmed)?;
    assert_clean(&full)
}
