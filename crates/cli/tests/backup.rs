//! `contactdb backup DEST`: a consistent copy from one snapshot, taken while a
//! writer process commits; every copy passes `check` and holds exactly a prefix of
//! the writer's commits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

mod common;

use common::*;

/// The contact keys of a database, sorted by their number.
fn numbers(db: &Path) -> Vec<u64> {
    let o = expect(db, &["export"], 0);
    let mut v: Vec<u64> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let c: serde_json::Value = serde_json::from_str(l).unwrap();
            c["contact_key"].as_str().unwrap()[1..].parse().unwrap()
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn backups_beside_a_writer_are_consistent_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let seed = dir.path().join("seed.jsonl");
    std::fs::write(
        &seed,
        "{\"contact_key\":\"k0\",\"email\":\"k0@example.com\"}\n",
    )
    .unwrap();
    expect(&db, &["import", seed.to_str().unwrap(), "--no-progress"], 0);

    // A writer process committing batches of 50 for a while.
    let mut writer = spawn_writer(&db, Some("50"), Stdio::piped());
    let mut stdin = writer.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 1..=3000u64 {
            writeln!(
                stdin,
                "{{\"contact_key\":\"k{i}\",\"email\":\"k{i}@example.com\",\"gsm\":\"+1555{i:07}\"}}"
            )
            .unwrap();
            if i % 50 == 0 {
                stdin.flush().unwrap();
                std::thread::sleep(Duration::from_millis(15));
            }
        }
    });
    let mut sizes = Vec::new();
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(120));
        let copy = dir.path().join(format!("backup-{round}.redb"));
        expect(&db, &["backup", copy.to_str().unwrap()], 0);
        expect(&copy, &["check"], 0);
        // Exactly the contacts of some committed state: k0..kN.
        let n = numbers(&copy);
        let expected: Vec<u64> = (0..n.len() as u64).collect();
        assert_eq!(n, expected, "backup {round} is not a prefix of the commits");
        sizes.push(n.len());
    }
    feeder.join().unwrap();
    finish_writer(writer);
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");

    // After the writer: a backup equals the file, and never overwrites.
    let last = dir.path().join("last.redb");
    expect(&db, &["backup", last.to_str().unwrap()], 0);
    assert_eq!(run(&db, &["export"]).stdout, run(&last, &["export"]).stdout);
    let before = std::fs::read(&last).unwrap();
    let o = run(&db, &["backup", last.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("exists already"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&last).unwrap(), before);
    // A missing source creates nothing.
    let o = run(
        &dir.path().join("none.redb"),
        &["backup", dir.path().join("x.redb").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("x.redb").exists());
    println!("backup sizes while writing: {sizes:?}");
}
