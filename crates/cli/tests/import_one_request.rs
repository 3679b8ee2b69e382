//! `import` under `--on-invalid abort` is one request for its semantics (R6, R6a,
//! R14): whatever `--batch-size`, its report equals one request holding every
//! record, and later batches see what earlier batches' valid records would do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use serde_json::{Value, json};

mod common;

use common::*;

fn seed(db: &Path, dir: &Path, jsonl: &str) {
    let f = dir.join("seed.jsonl");
    std::fs::write(&f, jsonl).unwrap();
    expect(db, &["import", f.to_str().unwrap()], 0);
}

/// Imports `jsonl` with `args` plus `--report`; returns (exit code, report).
fn import(db: &Path, dir: &Path, jsonl: &str, args: &[&str]) -> (i32, Value) {
    let f = dir.join("in.jsonl");
    std::fs::write(&f, jsonl).unwrap();
    let report = dir.join("report.json");
    let mut all = vec![
        "import",
        f.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let o = call(db, &all, None);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}: {}", o.stderr));
    (o.code, serde_json::from_str(&text).unwrap())
}

/// The per-record outcomes and error codes of an import report.
fn outcomes(report: &Value) -> (Vec<String>, Vec<(u64, String)>) {
    let o = rows(report, "results", |r| {
        r["outcome"].as_str().unwrap().to_owned()
    });
    let e = rows(report, "errors", |e| {
        (
            e["index"].as_u64().unwrap(),
            e["code"].as_str().unwrap().to_owned(),
        )
    });
    (o, e)
}

/// The options of an update import under abort, in batches of `batch`.
fn update_abort(batch: &str) -> [&str; 6] {
    [
        "--mode",
        "update",
        "--on-invalid",
        "abort",
        "--batch-size",
        batch,
    ]
}

// R6/R14: a later batch sees the rename an earlier batch would make, even though
// that earlier batch holds a failing record: only the failing record fails.
#[test]
fn r14_abort_import_later_batches_see_earlier_valid_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    seed(&db, dir.path(), "{\"contact_key\":\"a\"}\n");
    let input = "{\"contact_key\":\"zz\",\"name\":\"nobody\"}\n\
                 {\"contact_key\":\"a\",\"new_contact_key\":\"b\"}\n\
                 {\"contact_key\":\"b\",\"name\":\"X\"}\n";
    for batch in ["1", "2", "3", "100"] {
        let (code, report) = import(&db, dir.path(), input, &update_abort(batch));
        assert_eq!(code, 1, "batch size {batch}");
        assert_eq!(report["status"], "rejected");
        let (o, e) = outcomes(&report);
        assert_eq!(
            o,
            ["failed", "not_applied", "not_applied"],
            "batch size {batch}"
        );
        assert_eq!(e, [(0, "not_found".to_owned())], "batch size {batch}");
    }
    // Without the failing record, the rename and the update after it both apply,
    // across a batch boundary.
    let input = "{\"contact_key\":\"a\",\"new_contact_key\":\"b\"}\n\
                 {\"contact_key\":\"b\",\"name\":\"X\"}\n";
    let (code, report) = import(&db, dir.path(), input, &update_abort("1"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(outcomes(&report).0, ["updated", "updated"]);
}

// R6a: under abort, duplicates are found across the whole input, as in one
// request, whatever the batch size.
#[test]
fn r06a_abort_import_finds_duplicates_across_batches() {
    let input = "{\"contact_key\":\"k\",\"name\":\"one\"}\n\
                 {\"contact_key\":\"m\",\"name\":\"M\"}\n\
                 {\"contact_key\":\"k\",\"name\":\"two\"}\n";
    let mut seen = Vec::new();
    for batch in ["1", "2", "10"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.redb");
        let (code, report) = import(
            &db,
            dir.path(),
            input,
            &[
                "--on-invalid",
                "abort",
                "--on-duplicate",
                "last",
                "--batch-size",
                batch,
            ],
        );
        assert_eq!(code, 0, "{report}");
        let (o, _) = outcomes(&report);
        assert_eq!(
            o,
            ["duplicate", "inserted", "inserted"],
            "batch size {batch}"
        );
        let k: Value = serde_json::from_slice(&expect(&db, &["get", "k"], 0).stdout).unwrap();
        assert_eq!(k["name"], json!("two"));
        seen.push(report["summary"].clone());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}
