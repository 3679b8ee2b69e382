//! `contactdb repair`: redb's integrity check in place, then the engine's check.

mod common;

use common::*;

#[test]
fn repair_keeps_a_healthy_file_and_refuses_a_damaged_one_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let input = dir.path().join("in.jsonl");
    let lines: String = (0..2000)
        .map(|i| format!("{{\"contact_key\":\"k{i}\",\"email\":\"u{i}@example.com\"}}\n"))
        .collect();
    std::fs::write(&input, lines).unwrap();
    assert_eq!(
        run(&db, &["import", input.to_str().unwrap(), "--no-progress"])
            .status
            .code(),
        Some(0)
    );
    let export = run(&db, &["export"]).stdout;

    let o = expect(&db, &["repair"], 0);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["repaired"], false);
    assert_eq!(r["ok"], true);
    assert_eq!(run(&db, &["export"]).stdout, export);

    // A damaged copy: flip bytes until `check` notices, then repair it.
    let bytes = std::fs::read(&db).unwrap();
    let damaged = dir.path().join("d.redb");
    let mut found = false;
    for at in (4096..bytes.len()).step_by(4096 * 3 + 123) {
        let mut b = bytes.clone();
        b[at] ^= 0x55;
        std::fs::write(&damaged, &b).unwrap();
        if run(&damaged, &["check"]).status.code() == Some(1) {
            found = true;
            break;
        }
    }
    assert!(found, "no flip was noticed");
    let o = run(&damaged, &["repair"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{:?}: {err}",
        o.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("(a bug)"),
        "{err}"
    );
    if o.status.code() == Some(1) {
        assert!(err.lines().last().unwrap().starts_with("error: "), "{err}");
    }

    let o = run(&dir.path().join("none.redb"), &["repair"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no database at"));
    assert!(!dir.path().join("none.redb").exists());
}
