//! R17 + R18 under SIGKILL: a 100,000-record job whose runner is killed at random
//! moments at least 50 times, resumed each time, ends `succeeded` with every record
//! applied exactly once, one insert event per contact, and the report of an
//! uninterrupted run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::*;

const RECORDS: usize = 100_000;
const KILLS: usize = 50;
const CHUNK: &str = "500";

/// Writes an upsert request of `records` (`on_invalid: skip`) into `dir`.
fn skip_request(dir: &Path, records: Vec<Value>) -> std::path::PathBuf {
    let request = dir.join("request.json");
    std::fs::write(
        &request,
        serde_json::to_vec(&json!({"mode": "upsert", "on_invalid": "skip", "records": records}))
            .unwrap(),
    )
    .unwrap();
    request
}

/// Runs the binary on `db`; it must succeed (and not panic).
fn ok(db: &Path, args: &[&str]) -> Out {
    let o = call(db, args, None);
    assert_eq!(o.code, 0, "{args:?}: {o:?}");
    o
}

fn submit(db: &Path, request: &Path) -> String {
    let o = ok(
        db,
        &["job", "submit", "--request", request.to_str().unwrap()],
    );
    o.stdout.lines().last().unwrap().trim().to_owned()
}

fn wait(db: &Path, id: &str) -> Value {
    ok(db, &["job", "wait", id, "--chunk-records", CHUNK]).json()
}

fn status(db: &Path, id: &str) -> Value {
    ok(db, &["job", "status", id]).json()
}

/// A small deterministic generator (xorshift) for the kill delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// R17/R18: exactly once across at least 50 SIGKILLs.
#[test]
fn r17_job_survives_sigkill_loop() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            // Every 10th record updates an earlier one, so chunks meet each other.
            let k = if i % 10 == 9 { i - 5 } else { i };
            json!({"contact_key": format!("k{k}"), "name": format!("n{i}"), "email": format!("e{k}@x.com")})
        })
        .collect();
    let request = skip_request(dir.path(), records);

    // The reference: the same job, uninterrupted.
    let reference_db = dir.path().join("reference.redb");
    let reference_id = submit(&reference_db, &request);
    let reference = wait(&reference_db, &reference_id);

    let db = dir.path().join("killed.redb");
    let id = submit(&db, &request);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Kill delays are 50 ms plus up to `span` ms. `span` follows the job's pace:
    // shorter while it runs ahead of two thirds of its records per KILLS kills,
    // longer while it lags, so that any machine needs more than KILLS runs and the
    // kills keep landing at every stage of a run (at a fixed 100–1,500 ms, then
    // 50–750 ms, faster builds finished the job after 39 kills).
    let mut span: u64 = 700;
    let mut kills = 0;
    let mut progress = Vec::new();
    let started = Instant::now();
    while kills < KILLS {
        let mut child = command(&db, &["job", "run", "--chunk-records", CHUNK])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng.below(span)));
        if child.try_wait().unwrap().is_some() {
            break; // the job ended before this kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let processed = status(&db, &id)["processed"].as_u64().unwrap();
        progress.push(processed);
        span = if processed as usize * 3 * KILLS > RECORDS * 2 * kills {
            (span * 3 / 4).max(100)
        } else {
            (span * 5 / 4).min(1_400)
        };
    }
    let report = wait(&db, &id);
    eprintln!(
        "{kills} kills in {:.1}s; processed after each: {progress:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills >= KILLS,
        "the job ended after only {kills} kills: make it longer"
    );
    assert!(
        progress.iter().any(|p| *p > 0 && (*p as usize) < RECORDS),
        "no kill landed between two chunks: {progress:?}"
    );

    let st = status(&db, &id);
    assert_eq!(st["state"], "succeeded");
    assert_eq!(st["processed"], json!(RECORDS));
    assert_eq!(st["total"], json!(RECORDS));
    assert_eq!(
        report, reference,
        "the report differs from an uninterrupted run's"
    );

    let stats = ok(&db, &["stats"]).json();
    let distinct = RECORDS - RECORDS / 10;
    assert_eq!(stats["contacts"], json!(distinct), "{stats}");
    let mut inserts: Vec<String> = ok(&db, &["feed", "read", "--limit", "10000000"])
        .json_lines()
        .into_iter()
        .filter(|e| e["kind"] == "insert")
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(inserts.len(), distinct, "one insert event per contact");
    inserts.sort();
    inserts.dedup();
    assert_eq!(inserts.len(), distinct, "no contact inserted twice");
    ok(&db, &["check"]);
}

// R17/R19 on PostgreSQL: runners of several processes share the queue under
// leases. A runner killed mid-job holds it until its lease runs out; then the
// next runner takes it over and resumes after the last committed chunk: every
// record applied exactly once.
#[test]
fn r17_postgres_job_survives_killed_runners() {
    let Some(pg) = pgdb::TestDb::new("kill") else {
        return;
    };
    let db = std::path::PathBuf::from(&pg.url);
    let dir = tempfile::tempdir().unwrap();
    const N: usize = 20_000;
    let records: Vec<Value> = (0..N)
        .map(|i| json!({"contact_key": format!("k{i}"), "email": format!("e{i}@x.com")}))
        .collect();
    let request = skip_request(dir.path(), records);
    let id = submit(&db, &request);
    let run = [
        "job",
        "run",
        "--chunk-records",
        "200",
        "--lease-seconds",
        "1",
    ];
    let mut rng = Rng(0x51ed_2701_9f3c_44aa);
    let mut progress = Vec::new();
    for _ in 0..5 {
        let mut child = command(&db, &run)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + rng.below(900)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        progress.push(status(&db, &id)["processed"].as_u64().unwrap());
        // A second runner started now finds the job held and leaves it.
        ok(&db, &run);
        std::thread::sleep(Duration::from_millis(1_200));
    }
    assert!(
        progress.iter().any(|p| *p > 0 && (*p as usize) < N),
        "no kill landed mid-job: {progress:?}"
    );
    let report = ok(
        &db,
        &[
            "job",
            "wait",
            &id,
            "--chunk-records",
            "200",
            "--lease-seconds",
            "1",
        ],
    )
    .json();
    assert_eq!(report["summary"]["inserted"], json!(N), "{progress:?}");
    let st = status(&db, &id);
    assert_eq!(st["state"], "succeeded");
    assert_eq!(ok(&db, &["stats"]).json()["contacts"], json!(N));
    let inserts = ok(&db, &["feed", "read", "--limit", "10000000"])
        .json_lines()
        .into_iter()
        .filter(|e| e["kind"] == "insert")
        .count();
    assert_eq!(inserts, N, "one insert event per contact");
    ok(&db, &["check"]);
}
