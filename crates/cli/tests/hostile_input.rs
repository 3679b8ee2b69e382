//! Hostile input ends with a clear error after a bounded read: endless inputs
//! without a record end (`/dev/zero`, an endless quoted field or JSON string), a
//! record over `--max-record-bytes`, and a bulk request with far more records than
//! `--max-records`, which is refused at the first record past the limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::*;

/// Runs the binary with `prefix` and then `fill` repeated without end on standard
/// input (until the binary stops reading).
fn run_endless(db: &Path, args: &[&str], prefix: &[u8], fill: &'static [u8]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = spawn_piped(db, args);
    let mut stdin = child.stdin.take().unwrap();
    let prefix = prefix.to_vec();
    let feeder = std::thread::spawn(move || {
        if stdin.write_all(&prefix).is_err() {
            return;
        }
        let block = fill.repeat(64 * 1024 / fill.len().max(1) + 1);
        // Stops when the binary closes its end (or after 1 GiB, a failure).
        for _ in 0..(1usize << 30) / block.len() {
            if stdin.write_all(&block).is_err() {
                return;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    feeder.join().unwrap();
    (out, took)
}

fn assert_limit_error(what: &str, o: &Output, took: Duration) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert!(err.contains("larger than the limit"), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(took < Duration::from_secs(5), "{what}: took {took:?}");
}

#[test]
fn dev_zero_ends_with_an_error_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    for format in ["csv", "jsonl", "json"] {
        let start = Instant::now();
        let o = run(
            &db,
            &["import", "--format", format, "/dev/zero", "--no-progress"],
        );
        let took = start.elapsed();
        assert_eq!(o.status.code(), Some(1), "{format}: {}", stderr(&o));
        assert!(took < Duration::from_secs(5), "{format}: took {took:?}");
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn endless_records_stop_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let import = |format: &'static str| {
        vec![
            "import",
            "--format",
            format,
            "--no-progress",
            "--max-record-bytes",
            "100000",
            "-",
        ]
    };
    // An endless quoted CSV field, line breaks included.
    let (o, t) = run_endless(&db, &import("csv"), b"contact_key,name\nk1,\"", b"ab\ncd ");
    assert_limit_error("csv quoted field", &o, t);
    // An endless CSV line.
    let (o, t) = run_endless(&db, &import("csv"), b"contact_key,name\nk1,", b"xxxx");
    assert_limit_error("csv line", &o, t);
    // A header without end.
    let (o, t) = run_endless(&db, &import("csv"), b"contact_key", b"yyyy");
    assert_limit_error("csv header", &o, t);
    // An endless JSON Lines line.
    let (o, t) = run_endless(&db, &import("jsonl"), b"{\"contact_key\":\"", b"zzzz");
    assert_limit_error("jsonl", &o, t);
    // An endless string in a JSON array.
    let (o, t) = run_endless(
        &db,
        &import("json"),
        b"[{\"contact_key\":\"a\"},{\"contact_key\":\"",
        b"wwww",
    );
    assert_limit_error("json", &o, t);
    // An endless request.
    let (o, t) = run_endless(
        &db,
        &["upsert", "--request", "-", "--max-record-bytes", "100000"],
        b"{\"mode\":\"upsert\",\"records\":[{\"contact_key\":\"",
        b"vvvv",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["request_error"]["code"], "record_too_large");
    assert!(t < Duration::from_secs(5));
}

#[test]
fn a_record_over_the_limit_is_refused_and_one_under_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let meta = |n: usize| format!("{{\"note\":\"{}\"}}", "m".repeat(n));
    for (format, big, small) in [
        (
            "jsonl",
            format!("{{\"contact_key\":\"big\",\"metadata\":{}}}\n", meta(3000)),
            "{\"contact_key\":\"small\",\"name\":\"s\"}\n".to_owned(),
        ),
        (
            "json",
            format!("[{{\"contact_key\":\"big\",\"metadata\":{}}}]", meta(3000)),
            "[{\"contact_key\":\"small\"}]".to_owned(),
        ),
        (
            "csv",
            format!(
                "contact_key,metadata\nbig,\"{}\"\n",
                meta(3000).replace('"', "\"\"")
            ),
            "contact_key,name\nsmall,s\n".to_owned(),
        ),
    ] {
        let big_file = dir.path().join(format!("big.{format}"));
        std::fs::write(&big_file, big).unwrap();
        let small_file = dir.path().join(format!("small.{format}"));
        std::fs::write(&small_file, small).unwrap();
        // (input, --max-record-bytes, exit code, what stderr says): the default
        // limit (1 MiB) takes the big record.
        for (file, limit, code, says) in [
            (
                &big_file,
                Some("2000"),
                1,
                "larger than the limit of 2,000 bytes",
            ),
            (&big_file, None, 0, ""),
            (&small_file, Some("2000"), 0, ""),
        ] {
            let mut args = vec!["import", file.to_str().unwrap(), "--no-progress"];
            if let Some(n) = limit {
                args.extend(["--max-record-bytes", n]);
            }
            let o = run(&db, &args);
            assert_eq!(
                o.status.code(),
                Some(code),
                "{format} {args:?}: {}",
                stderr(&o)
            );
            assert!(stderr(&o).contains(says), "{}", stderr(&o));
        }
    }
}

/// The peak resident set size of a finished child, when `/usr/bin/time` exists.
fn peak_rss_kib(time_stderr: &str) -> Option<u64> {
    time_stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_request_of_two_million_records_is_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let path = dir.path().join("big.json");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(b"{\"mode\":\"upsert\",\"records\":[").unwrap();
        for i in 0..2_000_000u32 {
            if i > 0 {
                f.write_all(b",").unwrap();
            }
            write!(f, "{{\"contact_key\":\"k{i}\",\"name\":\"n\"}}").unwrap();
        }
        f.write_all(b"]}").unwrap();
        f.flush().unwrap();
    }
    let timed = Path::new("/usr/bin/time").exists();
    let start = Instant::now();
    let mut cmd = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    let o = cmd
        .arg("--db")
        .arg(&db)
        .args(["upsert", "--request", path.to_str().unwrap()])
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["request_error"]["code"], "too_many_records");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    if timed {
        let kib = peak_rss_kib(&stderr(&o)).unwrap();
        assert!(kib < 256 * 1024, "peak RSS {kib} KiB");
    }
    // Refused before the database was opened: not even created.
    assert!(!db.exists());
    // A lower limit applies as given.
    let small = dir.path().join("small.json");
    std::fs::write(
        &small,
        "{\"mode\":\"upsert\",\"records\":[{\"contact_key\":\"a\"},{\"contact_key\":\"b\"},{\"contact_key\":\"c\"}]}",
    )
    .unwrap();
    let o = run(
        &db,
        &[
            "upsert",
            "--request",
            small.to_str().unwrap(),
            "--max-records",
            "2",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["request_error"]["code"], "too_many_records");
    expect(
        &db,
        &[
            "upsert",
            "--request",
            small.to_str().unwrap(),
            "--max-records",
            "3",
        ],
        0,
    );
}
