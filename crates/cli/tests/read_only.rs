//! Read commands open the file read-only: they never create or change it, fail
//! clearly on a missing path, and run beside a writer process; a second writer is
//! refused at once with `busy`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::*;

/// A database with a few contacts, an alias and a custom column.
fn seeded(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("c.redb");
    let input = dir.join("in.jsonl");
    let mut lines = String::new();
    for i in 0..50 {
        lines.push_str(&format!(
            "{{\"contact_key\":\"k{i}\",\"email\":\"u{i}@example.com\",\"name\":\"N{i}\"}}\n"
        ));
    }
    std::fs::write(&input, lines).unwrap();
    expect(
        &db,
        &["import", input.to_str().unwrap(), "--no-progress"],
        0,
    );
    db
}

const READ_COMMANDS: &[&[&str]] = &[
    &["get", "k1"],
    &["find", "--email", "u2@example.com"],
    &["export"],
    &["export", "--format", "csv"],
    &["stats"],
    &["check"],
    &["columns", "list"],
    &["workspace", "list"],
];

#[test]
fn read_commands_leave_the_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let before = std::fs::read(&db).unwrap();
    for args in READ_COMMANDS {
        let o = run(&db, args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{args:?} changed the file's bytes"
        );
    }
    // The modification time too: nothing was written.
    let o = run(&db, &["get", "k1"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn read_commands_on_a_missing_path_fail_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.redb");
    for args in READ_COMMANDS {
        let o = run(&db, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!db.exists(), "{args:?} created the file");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn readers_run_beside_a_writer_process_and_a_second_writer_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    // A writer process: an import from standard input holds the file open for
    // writing until its input ends.
    let mut writer = spawn_writer(&db, None, Stdio::piped());
    // Wait until it has the file open (Linux: its descriptors in /proc), and a
    // moment more for its open to finish.
    let canonical = db.canonicalize().unwrap();
    let fd_dir = format!("/proc/{}/fd", writer.id());
    let start = Instant::now();
    loop {
        let open = std::fs::read_dir(&fd_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == canonical))
            })
            .unwrap_or(false);
        if open {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the writer process never opened the file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let busy = run(&db, &["workspace", "create", "other"]);
    assert_eq!(busy.status.code(), Some(1), "{}", stderr(&busy));
    assert!(stderr(&busy).contains("busy"), "{}", stderr(&busy));
    // Refused at once, with a clear message.
    assert!(
        stderr(&busy).contains("already open for writing"),
        "{}",
        stderr(&busy)
    );
    let t = Instant::now();
    let o = run(&db, &["columns", "add", "tier", "--type", "string"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("busy"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(5));

    // Readers work meanwhile.
    for args in READ_COMMANDS {
        expect(&db, args, 0);
    }
    let o = run(&db, &["get", "k7"]);
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["name"], "N7");

    // The writer commits; a reader started afterwards sees it.
    {
        let mut stdin = writer.stdin.take().unwrap();
        stdin
            .write_all(b"{\"contact_key\":\"late\",\"name\":\"L\"}\n")
            .unwrap();
    }
    finish_writer(writer);
    expect(&db, &["get", "late"], 0);
}

#[test]
fn readers_work_on_a_file_whose_writer_was_killed_and_leave_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let mut writer = spawn_writer(&db, Some("100"), Stdio::null());
    let mut stdin = writer.stdin.take().unwrap();
    for i in 0..1000 {
        writeln!(stdin, "{{\"contact_key\":\"w{i}\"}}").unwrap();
    }
    stdin.flush().unwrap();
    // Wait until some batches are committed, then kill the writer (SIGKILL).
    let start = Instant::now();
    loop {
        let o = run(&db, &["stats"]);
        if o.status.success() {
            let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            if s["contacts"].as_u64().unwrap() > 50 {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no commit seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    drop(stdin);

    let before = std::fs::read(&db).unwrap();
    for args in READ_COMMANDS {
        expect(&db, args, 0);
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "a read command recovered the file on disk"
    );
    // The committed batches are all there; a writer recovers the file for real.
    let o = run(&db, &["stats"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = s["contacts"].as_u64().unwrap();
    assert_eq!((n - 50) % 100, 0, "{n} is not the seed plus whole batches");
    expect(&db, &["workspace", "create", "after"], 0);
    assert_eq!(run(&db, &["check"]).status.code(), Some(0));
}

// R14: an import that commits whole batches together, killed (SIGKILL) part way,
// leaves a prefix of its commits: whole groups of batches, nothing half-written, a
// clean file.
#[test]
fn a_killed_import_keeps_whole_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let input = dir.path().join("in.csv");
    let total = 60_000;
    let mut csv = String::from("contact_key,name\n");
    for i in 0..total {
        csv.push_str(&format!("k{i},n{i}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    let args = [
        "import",
        input.to_str().unwrap(),
        "--batch-size",
        "500",
        "--commit-records",
        "5000",
        "--no-progress",
    ];
    let mut writer = command(&db, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let contacts = |db: &Path| -> Option<u64> {
        let o = run(db, &["stats"]);
        o.status.success().then(|| {
            let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            s["contacts"].as_u64().unwrap()
        })
    };
    // Kill the writer once a first commit shows (or it has finished).
    let start = Instant::now();
    while contacts(&db).unwrap_or(0) == 0 && writer.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "no commit seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    writer.kill().ok();
    writer.wait().unwrap();
    let n = contacts(&db).expect("stats after the kill");
    assert!(
        n % 5000 == 0 || n == total,
        "{n} contacts: not whole commits"
    );
    assert!(n > 0);
    expect(&db, &["check"], 0);
}
