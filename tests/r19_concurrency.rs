//! R19: one writer at a time — concurrent bulk calls are serialized, try_bulk gets
//! Busy while another write is live, reads never block, and a second open of the
//! same file (same process or another process) is a clear error.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use contactdb::{BulkRequest, Database, Error, Mode, Outcome, Status};
use serde_json::{Value, json};

const PROBE_ENV: &str = "CONTACTDB_R19_PROBE_PATH";

fn keys(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"contact_key": format!("{prefix}-{i:04}"), "name": prefix}))
        .collect()
}

// R19: two threads calling bulk at once both succeed; the final state has both.
#[test]
fn two_threads_bulk_at_once() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let start = Arc::new(Barrier::new(2));
    let mut handles = Vec::new();
    for (prefix, field) in [("a", "name"), ("b", "surname")] {
        let ws = ws.clone();
        let start = Arc::clone(&start);
        handles.push(thread::spawn(move || {
            let mut recs = keys(prefix, 1500);
            recs.push(json!({"contact_key": "shared", field: prefix}));
            start.wait();
            ws.bulk(&req(Mode::Upsert, recs))
        }));
    }
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.join().expect("thread panicked")?);
    }
    for r in &reports {
        assert_eq!(r.status, Status::Applied);
        assert_eq!(r.summary.inserted + r.summary.updated, 1501);
    }
    // Exactly one of them inserted `shared`, the other updated it.
    let shared_outcomes: Vec<Outcome> = reports.iter().map(|r| r.results[1500].outcome).collect();
    assert!(
        shared_outcomes == vec![Outcome::Inserted, Outcome::Updated]
            || shared_outcomes == vec![Outcome::Updated, Outcome::Inserted],
        "{shared_outcomes:?}"
    );
    assert_eq!(ws.count()?, 3001);
    assert_eq!(
        read(&ws, "shared", &["name", "surname", "version"])?,
        [json!("a"), json!("b"), json!(2)]
    );
    assert_clean(&db)
}

// R19: while a write transaction is held, try_bulk is Busy at once (and writes
// nothing), bulk waits, and reads see the last committed state without blocking.
#[test]
fn try_bulk_busy_while_write_held() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "before", "name": "B"}))?;
    let inside = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));

    // Thread A holds the write transaction inside bulk_atomic until released.
    let holder = {
        let ws = ws.clone();
        let inside = Arc::clone(&inside);
        let release = Arc::clone(&release);
        thread::spawn(move || {
            let mut first = true;
            let batches = std::iter::from_fn(move || {
                if !first {
                    return None;
                }
                first = false;
                inside.wait();
                release.wait();
                Some(Ok::<BulkRequest, Error>(req(
                    Mode::Upsert,
                    json!({"contact_key": "held", "name": "H"}),
                )))
            });
            ws.bulk_atomic(batches, |_r| Ok::<(), Error>(()))
        })
    };
    inside.wait();
    // The write is live now.
    let t0 = Instant::now();
    let busy = ws.try_bulk(&req(Mode::Upsert, json!({"contact_key": "try"})));
    let busy_took = t0.elapsed();
    let read_count = ws.count();
    let read_before = ws.get("before");
    let read_held = ws.get("held");

    // A blocking bulk from another thread waits for the holder.
    let waiter = {
        let ws = ws.clone();
        thread::spawn(move || upsert(&ws, json!({"contact_key": "waited"})))
    };
    thread::sleep(Duration::from_millis(100));
    let waiter_finished_early = waiter.is_finished();
    release.wait();
    let held_status = holder.join().expect("holder panicked")?;
    let waited = waiter.join().expect("waiter panicked")?;

    assert_eq!(error_kind(&busy), "busy", "try_bulk: {busy:?}");
    assert!(
        busy_took < Duration::from_secs(2),
        "try_bulk waited {busy_took:?}"
    );
    assert_eq!(read_count?, 1, "reads see the last committed state");
    assert_eq!(col(&read_before?.unwrap(), "name"), json!("B"));
    assert!(read_held?.is_none(), "uncommitted write visible to a read");
    assert!(
        !waiter_finished_early,
        "bulk finished while another write was held"
    );
    assert_eq!(held_status, Status::Applied);
    assert_eq!(waited.status, Status::Applied);
    assert!(ws.get("try")?.is_none(), "a Busy request wrote something");
    assert!(ws.get("held")?.is_some());
    assert!(ws.get("waited")?.is_some());
    // No write in progress any more: try_bulk goes through.
    let rep = ws.try_bulk(&req(Mode::Upsert, json!({"contact_key": "try"})))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(ws.count()?, 4);
    assert_clean(&db)
}

// R19: racing try_bulk against a thread running large bulks: try_bulk sees Busy at
// least once, Busy requests write nothing, successful ones are all there.
#[test]
fn try_bulk_busy_racing() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let ws = ws.clone();
        let stop = Arc::clone(&stop);
        let start = Arc::clone(&start);
        thread::spawn(move || -> Result<u32, Error> {
            start.wait();
            let mut rounds = 0u32;
            while !stop.load(Ordering::Relaxed) && rounds < 200 {
                let recs: Vec<Value> = (0..2000)
                    .map(|i| json!({"contact_key": format!("w{i}"), "priority": rounds}))
                    .collect();
                let r = ws.bulk(&req(Mode::Upsert, recs))?;
                assert_eq!(r.status, Status::Applied);
                rounds += 1;
            }
            Ok(rounds)
        })
    };
    start.wait();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut busy, mut ok) = (Vec::new(), Vec::new());
    let mut i = 0u32;
    while Instant::now() < deadline && (busy.is_empty() || ok.is_empty()) {
        let key = format!("t{i}");
        let got = ws.try_bulk(&req(Mode::Insert, json!({"contact_key": key})));
        match (error_kind(&got), got) {
            ("busy", _) => busy.push(key),
            (_, Ok(r)) => {
                assert_eq!(r.status, Status::Applied);
                ok.push(key);
            }
            (_, Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                return Err(e.into());
            }
        }
        i += 1;
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.join().expect("writer panicked")?;
    assert!(
        !busy.is_empty(),
        "never saw Busy in {i} tries ({rounds} writer rounds)"
    );
    for k in &busy {
        assert!(ws.get(k)?.is_none(), "{k} was Busy but written");
    }
    for k in &ok {
        assert!(ws.get(k)?.is_some(), "{k} was applied but is missing");
    }
    assert_eq!(must_get(&ws, "w0")?.version, u64::from(rounds));
    assert_clean(&db)
}

// R19: a second Database::open of an open file in the same process is a clear
// error; after every handle is dropped the file opens again.
#[test]
fn second_open_same_process() -> TestResult {
    let (_dir, path) = temp_path()?;
    let (db, ws) = open_default(&path)?;
    seed(&ws, json!({"contact_key": "k"}))?;
    let (kind, msg) = failure(&Database::open(&path));
    assert_eq!(kind, "already_open", "second open: {msg}");
    assert!(msg.contains("already open"), "{msg}");
    // Also through the builder.
    assert_eq!(
        error_kind(&Database::builder().records_max(5).open(&path)),
        "already_open"
    );
    // The first handle still works.
    seed(&ws, json!({"contact_key": "k2"}))?;
    drop(ws);
    drop(db);
    let db = Database::open(&path)?;
    assert_eq!(db.workspace("default")?.count()?, 2);
    assert_clean(&db)
}

fn run_probe(path: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["--exact", "child_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, path)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe process failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest prints "test child_probe ... " before the probe's own output.
    Ok(stdout
        .lines()
        .find_map(|l| l.find("PROBE ").map(|i| l[i..].to_owned()))
        .unwrap_or_else(|| format!("no PROBE line in {stdout:?}")))
}

// R19: a second process opening the same file gets a clear error.
#[test]
fn second_process_gets_clear_error() -> TestResult {
    let (_dir, path) = temp_path()?;
    {
        let (_db, ws) = open_default(&path)?;
        seed(&ws, json!({"contact_key": "k", "name": "N"}))?;
        let line = run_probe(&path)?;
        assert!(line.starts_with("PROBE already_open "), "{line}");
        assert!(line.contains("already open"), "{line}");
        // Still usable after the other process failed.
        seed(&ws, json!({"contact_key": "k2"}))?;
    }
    // Closed: the other process opens it and sees the data.
    let line = run_probe(&path)?;
    assert_eq!(line, "PROBE opened 2");
    let (db, ws) = open_default(&path)?;
    assert_eq!(col(&must_get(&ws, "k")?, "name"), json!("N"));
    assert_clean(&db)
}

// Not a test of its own: the child side of `second_process_gets_clear_error`. It
// does nothing unless the parent sets the probe variable.
#[test]
fn child_probe() {
    let Some(path) = std::env::var_os(PROBE_ENV) else {
        return;
    };
    let opened = Database::open(&path);
    match (failure(&opened), opened) {
        (("already_open", msg), _) => println!("PROBE already_open {msg}"),
        (_, Err(other)) => println!("PROBE other_error {other:?}"),
        (_, Ok(db)) => {
            let n = db
                .workspace("default")
                .map_err(contactdb::Error::from)
                .and_then(|ws| ws.count());
            match n {
                Ok(n) => println!("PROBE opened {n}"),
                Err(e) => println!("PROBE opened_but {e:?}"),
            }
        }
    }
}
