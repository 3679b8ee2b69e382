//! R17: background jobs — submitted durably, run in chunks that each commit with
//! the job's progress, one request for their semantics: the report and the
//! contents equal the same request applied directly, whatever the chunk size.

mod common;

use common::*;
use contactdb::{
    BulkRequest, Database, EventKind, JobState, Mode, OnDuplicate, OnInvalid, Report, Status,
    Workspace,
};
use serde_json::{Value, json};

fn db_with(dir: &tempfile::TempDir, name: &str, chunk: usize) -> Database {
    expect_ok(
        Database::builder()
            .job_chunk_records(chunk)
            .records_max(100_000)
            .open(dir.path().join(name)),
    )
}

fn seed_both(a: &Workspace, b: &Workspace, records: Vec<Value>) {
    for ws in [a, b] {
        expect_ok(ws.bulk(&BulkRequest::new(Mode::Upsert, records.clone())));
    }
}

/// A request that meets itself across chunks: repeated keys, an email match that
/// adds an alias, a rename and a record naming the new key, an invalid record.
fn tangled(mode: Mode, policy: OnDuplicate) -> BulkRequest {
    let mut r = BulkRequest::new(
        mode,
        vec![
            json!({"contact_key": "a", "name": "A1"}),
            json!({"contact_key": "n1", "email": "b@x.com"}),
            json!({"contact_key": "c", "email": "not an email"}),
            json!({"contact_key": "a", "surname": "S"}),
            json!({"contact_key": "n2", "email": "new@x.com"}),
            json!({"contact_key": "n1", "name": "via alias"}),
            json!({"contact_key": "n3", "email": "new@x.com", "name": "N3"}),
            json!({"contact_key": "b", "priority": 1}),
            json!({"contact_key": "a", "name": "A3"}),
            json!({"contact_key": "z"}),
        ],
    );
    r.match_on = contactdb::MatchOn {
        email: true,
        phone: false,
    };
    r.on_invalid = OnInvalid::Skip;
    r.on_duplicate = policy;
    r
}

fn without_batches(mut r: Report) -> Report {
    r.summary.batches = 0;
    r
}

// R17 + R6/R6a: a job in chunks of 3 gives the report, contents and feed of the
// same request applied at once, under every duplicate policy.
#[test]
fn r17_chunked_job_equals_one_request() -> TestResult {
    for policy in [
        OnDuplicate::Merge,
        OnDuplicate::First,
        OnDuplicate::Last,
        OnDuplicate::Reject,
    ] {
        let dir = tempfile::tempdir()?;
        let direct = db_with(&dir, "direct.redb", 3).workspace("default")?;
        let jobs = db_with(&dir, "jobs.redb", 3).workspace("default")?;
        seed_both(
            &direct,
            &jobs,
            vec![
                json!({"contact_key": "a", "email": "a@x.com"}),
                json!({"contact_key": "b", "email": "b@x.com"}),
            ],
        );
        let req = tangled(Mode::Upsert, policy);
        let want = direct.bulk(&req)?;
        let id = jobs.submit(&req)?;
        let job = jobs.run_job(&id)?;
        assert_eq!(job.state, JobState::Succeeded, "{policy:?}");
        assert_eq!((job.processed, job.total), (10, 10));
        let got = job.report.expect("a report");
        // Each chunk that applied something is one transaction.
        assert!((1..=4).contains(&got.summary.batches), "{policy:?}");
        assert_eq!(without_batches(got), without_batches(want), "{policy:?}");
        let strip = |ws: &Workspace| -> Vec<(String, Vec<String>, u64)> {
            ws.contacts()
                .unwrap()
                .into_iter()
                .map(|c| (c.key, c.aliases, c.version))
                .collect()
        };
        assert_eq!(strip(&jobs), strip(&direct), "{policy:?}");
        // The feed reports each committed write: a job's chunks may write one
        // contact several times where one request writes it once, but the inserts
        // are the same, and each contact's last event carries its final version.
        let inserts = |ws: &Workspace| -> Vec<String> {
            ws.feed(0, 1000)
                .unwrap()
                .into_iter()
                .filter(|e| e.kind == EventKind::Insert)
                .map(|e| e.key)
                .collect()
        };
        assert_eq!(inserts(&jobs), inserts(&direct), "{policy:?}");
        for c in jobs.contacts()? {
            let last = jobs
                .feed(0, 1000)?
                .into_iter()
                .rfind(|e| e.key == c.key)
                .map(|e| e.version);
            assert_eq!(last, Some(c.version), "{policy:?} {}", c.key);
        }
        assert!(
            jobs.feed(2, 1000)?
                .iter()
                .all(|e| e.job.as_deref() == Some(id.as_str()))
        );
    }
    Ok(())
}

// R17: an abort job is validated as a whole before its first write: one failing
// record and nothing is written; the job still succeeded (it ran to its end).
#[test]
fn r17_abort_job_is_all_or_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ws = db_with(&dir, "c.redb", 2).workspace("default")?;
    let req = BulkRequest::new(
        Mode::Upsert,
        vec![
            json!({"contact_key": "a"}),
            json!({"contact_key": "b"}),
            json!({"contact_key": "c", "email": "bad"}),
        ],
    );
    let id = ws.submit(&req)?;
    let job = ws.run_job(&id)?;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.report.map(|r| r.status), Some(Status::Rejected));
    assert_eq!(ws.count()?, 0);
    Ok(())
}

// R17: a request refused as a whole (a request-level error, a missing campaign)
// makes the job failed, with the reason; queued jobs can be cancelled; states,
// progress and reports survive reopen.
#[test]
fn r17_states_failures_cancel_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (bad, missing, ok, cancelled) = {
        let db = db_with(&dir, "c.redb", 100);
        let ws = db.workspace("default")?;
        let bad = ws.submit(&BulkRequest::new(
            Mode::Upsert,
            vec![json!({"contact_key": "a", "nope": 1})],
        ))?;
        let mut m = BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "a"})]);
        m.campaign = Some("absent".to_owned());
        let missing = ws.submit(&m)?;
        let ok = ws.submit(&BulkRequest::new(
            Mode::Upsert,
            vec![json!({"contact_key": "a"}), json!({"contact_key": "b"})],
        ))?;
        let cancelled = ws.submit(&BulkRequest::new(
            Mode::Upsert,
            vec![json!({"contact_key": "never"})],
        ))?;
        assert!(ws.cancel_job(&cancelled)?);
        assert!(!ws.cancel_job(&cancelled)?);
        let states: Vec<JobState> = ws.jobs()?.into_iter().map(|j| j.state).collect();
        assert_eq!(
            states,
            [
                JobState::Queued,
                JobState::Queued,
                JobState::Queued,
                JobState::Cancelled
            ]
        );
        (bad, missing, ok, cancelled)
    };
    let db = db_with(&dir, "c.redb", 100);
    let ws = db.workspace("default")?;
    assert_eq!(ws.run_jobs()?, 3);
    let bad = ws.job(&bad)?.unwrap();
    assert_eq!(bad.state, JobState::Failed);
    assert!(bad.error.unwrap().starts_with("unknown_column"));
    let missing = ws.job(&missing)?.unwrap();
    assert_eq!(missing.state, JobState::Failed);
    assert!(missing.error.unwrap().starts_with("no_such_campaign"));
    let ok = ws.job(&ok)?.unwrap();
    assert_eq!(
        (ok.state, ok.processed, ok.total),
        (JobState::Succeeded, 2, 2)
    );
    assert_eq!(ok.report.unwrap().summary.inserted, 2);
    assert_eq!(ws.job(&cancelled)?.unwrap().state, JobState::Cancelled);
    assert!(ws.get("never")?.is_none());
    assert_eq!(ws.run_jobs()?, 0);
    assert!(
        ws.submit(&{
            let mut r = BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "x"})]);
            r.request_id = Some("r".to_owned());
            r
        })
        .is_err()
    );
    assert!(ws.job("not-a-uuid").is_err());
    assert_clean(&db)?;
    Ok(())
}

// R17: a runner asked to stop leaves the job running after its last committed
// chunk; the next run resumes it and applies every record once.
#[test]
fn r17_stopped_runner_leaves_the_job_to_resume() -> TestResult {
    let dir = tempfile::tempdir()?;
    let ws = db_with(&dir, "c.redb", 2).workspace("default")?;
    let records: Vec<Value> = (0..10)
        .map(|i| json!({"contact_key": format!("k{i}")}))
        .collect();
    let mut req = BulkRequest::new(Mode::Upsert, records);
    req.on_invalid = OnInvalid::Skip;
    let id = ws.submit(&req)?;
    let calls = std::cell::Cell::new(0);
    let stop = || {
        calls.set(calls.get() + 1);
        calls.get() > 3
    };
    assert_eq!(ws.run_jobs_until(&stop)?, 0);
    let job = ws.job(&id)?.unwrap();
    assert_eq!((job.state, job.processed), (JobState::Running, 4));
    assert_eq!(ws.count()?, 4);
    assert_eq!(ws.run_jobs()?, 1);
    let job = ws.job(&id)?.unwrap();
    assert_eq!((job.state, job.processed), (JobState::Succeeded, 10));
    assert_eq!(job.report.unwrap().summary.inserted, 10);
    assert_eq!(ws.count()?, 10);
    Ok(())
}
