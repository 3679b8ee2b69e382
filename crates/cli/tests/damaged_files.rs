//! No command panics on any file: damaged (flipped bytes, zeroed pages),
//! truncated, empty, foreign or newer-format files end with exit 1 and one clear
//! message, never exit 101; when `check` passes on a damaged file, `export` reads
//! exactly what the undamaged file holds. Read commands leave even a damaged file's
//! bytes unchanged.
//!
//! `sample` runs in `cargo test` (seconds); `sweep` (ignored) runs many more
//! offsets: `cargo test -p contactdb-cli --test damaged_files -- --ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

const PAGE: usize = 4096;

/// The valid database every damaged file is made from, its export and one key.
struct Original {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    export: Vec<u8>,
    key: String,
    more: PathBuf,
}

fn original() -> &'static Original {
    static O: OnceLock<Original> = OnceLock::new();
    O.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.redb");
        let csv = dir.path().join("in.csv");
        let o = Command::new(BIN)
            .args(["gen", "--count", "3000", "--no-custom", "--out"])
            .arg(&csv)
            .output()
            .unwrap();
        assert!(o.status.success());
        // The generated rows are messy on purpose: some fail (exit 3, partial).
        expect(&db, &["import", csv.to_str().unwrap(), "--no-progress"], 3);
        let export = run(&db, &["export"]);
        assert!(export.status.success());
        let first = export.stdout.split(|b| *b == b'\n').next().unwrap();
        let c: serde_json::Value = serde_json::from_slice(first).unwrap();
        let more = dir.path().join("more.jsonl");
        std::fs::write(&more, "{\"contact_key\":\"zz-new\",\"name\":\"Z\"}\n").unwrap();
        Original {
            bytes: std::fs::read(&db).unwrap(),
            export: export.stdout,
            key: c["contact_key"].as_str().unwrap().to_owned(),
            more,
            _dir: dir,
        }
    })
}

/// Tallies of one matrix run.
#[derive(Debug, Default)]
struct Tally {
    files: usize,
    check_ok: usize,
    check_failed: usize,
    export_equal: usize,
}

/// Runs every command on `bytes` and checks the rules; returns whether `check`
/// passed.
fn exercise(name: &str, bytes: &[u8], tally: &mut Tally) {
    let o = original();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.redb");
    std::fs::write(&db, bytes).unwrap();
    tally.files += 1;
    let verdict = |args: &[&str], out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{name}: {args:?} ended with {:?}: {err}",
            out.status
        );
        assert!(
            !err.contains("panicked") && !err.contains("(a bug)"),
            "{name}: {args:?}: {err}"
        );
        if code == Some(1) {
            // One error line (an import may say first where it stopped).
            if args[0] != "import" {
                assert_eq!(err.lines().count(), 1, "{name}: {args:?}: {err}");
            }
            let last = err.lines().last().unwrap_or_default();
            assert!(last.starts_with("error: "), "{name}: {args:?}: {err}");
        }
    };
    let reads: [&[&str]; 3] = [&["stats"], &["get", &o.key], &["export"]];
    let mut outs = Vec::new();
    for args in reads {
        let out = run(&db, args);
        verdict(args, &out);
        outs.push(out);
    }
    let check = run(&db, &["check"]);
    verdict(&["check"], &check);
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "{name}: a read command or check changed the file"
    );
    if check.status.code() == Some(0) {
        tally.check_ok += 1;
        let export = &outs[2];
        assert_eq!(
            export.status.code(),
            Some(0),
            "{name}: check passed but export failed: {}",
            String::from_utf8_lossy(&export.stderr)
        );
        assert!(
            export.stdout == o.export,
            "{name}: check passed but the export differs from the original's"
        );
        tally.export_equal += 1;
    } else {
        tally.check_failed += 1;
        let err = String::from_utf8_lossy(&check.stderr);
        assert!(
            err.contains("check found") || err.contains("not a contactdb database"),
            "{name}: {err}"
        );
    }
    // A write command last: it may recover or refuse the file, but never panics.
    let write = run(&db, &["import", o.more.to_str().unwrap(), "--no-progress"]);
    verdict(&["import"], &write);
}

/// splitmix64: deterministic offsets without a dependency.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn matrix(flips: usize, pages: usize, seed: u64) -> Tally {
    let o = original();
    let len = o.bytes.len();
    let mut t = Tally::default();
    let mut state = seed;

    // Fixed cases: the header, empty, truncated, foreign, newer format.
    let mut header_flip = o.bytes.clone();
    header_flip[70] ^= 0xff;
    header_flip[70 + 128] ^= 0xff;
    exercise("both header slots flipped", &header_flip, &mut t);
    let mut newer = o.bytes.clone();
    newer[64] = 9;
    newer[64 + 128] = 9;
    exercise("newer redb file format", &newer, &mut t);
    exercise("zero-length", &[], &mut t);
    exercise(
        "foreign text",
        &b"name,email\nann,a@b.c\n".repeat(300),
        &mut t,
    );
    let mut noise = vec![0u8; 3 * PAGE];
    for b in &mut noise {
        *b = next(&mut state) as u8;
    }
    exercise("foreign noise", &noise, &mut t);
    for cut in [9, 511, PAGE, 3 * PAGE + 17, len / 2, len - PAGE, len - 1] {
        exercise(&format!("truncated to {cut}"), &o.bytes[..cut], &mut t);
    }
    for i in 0..flips {
        let at = (next(&mut state) % len as u64) as usize;
        let mut b = o.bytes.clone();
        b[at] ^= 1 << (i % 8);
        exercise(&format!("bit flipped at {at}"), &b, &mut t);
    }
    for _ in 0..pages {
        let page = (next(&mut state) % (len / PAGE) as u64) as usize;
        let mut b = o.bytes.clone();
        b[page * PAGE..(page + 1) * PAGE].fill(0);
        exercise(&format!("page {page} zeroed"), &b, &mut t);
    }
    println!("{t:?}");
    t
}

#[test]
fn sample() {
    let t = matrix(10, 6, 1);
    assert_eq!(t.files, 28);
    assert_eq!(t.check_ok, t.export_equal);
}

#[test]
#[ignore = "hundreds of damaged files; run explicitly"]
fn sweep() {
    let t = matrix(300, 150, 2);
    assert_eq!(t.check_ok, t.export_equal);
}
