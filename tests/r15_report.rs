//! R15: the report — status, summary counts, per-record results in input order,
//! errors, warnings, and the JSON field names.

mod common;

use std::collections::BTreeSet;

use common::*;
use contactdb::{Mode, OnDuplicate, Outcome, Report, Status};
use serde_json::{Value, json};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// total = sum of outcomes; valid = total - invalid; failed = failed outcomes.
fn check_summary_consistent(r: &Report) {
    let s = r.summary;
    let count = |o: Outcome| r.results.iter().filter(|x| x.outcome == o).count() as u64;
    assert_eq!(s.total, r.results.len() as u64);
    assert_eq!(s.valid, s.total - s.invalid);
    assert_eq!(s.inserted, count(Outcome::Inserted));
    assert_eq!(s.updated, count(Outcome::Updated));
    assert_eq!(s.unchanged, count(Outcome::Unchanged));
    assert_eq!(s.failed, count(Outcome::Failed));
    for (i, res) in r.results.iter().enumerate() {
        assert_eq!(res.index as usize, i, "results are in input order");
    }
}

fn seeded() -> Result<
    (tempfile::TempDir, contactdb::Database, contactdb::Workspace),
    Box<dyn std::error::Error>,
> {
    let (dir, db, ws) = fresh_ws()?;
    seed(
        &ws,
        vec![
            json!({"contact_key": "same", "name": "S"}),
            json!({"contact_key": "chg", "name": "C"}),
            json!({"contact_key": "d1", "email": "dup@x.com"}),
            json!({"contact_key": "d2", "email": "dup@x.com"}),
        ],
    )?;
    Ok((dir, db, ws))
}

fn mixed() -> Vec<Value> {
    vec![
        json!({"contact_key": "new", "name": "N"}),
        json!({"contact_key": "chg", "name": "C2"}),
        json!({"contact_key": "same", "name": "S"}),
        json!({"contact_key": "inv", "email": "x"}),
        json!({"contact_key": "amb", "email": "dup@x.com"}),
    ]
}

// R15: applied — every record succeeded.
#[test]
fn applied_report() -> TestResult {
    let (_dir, _db, ws) = seeded()?;
    let rep = upsert(
        &ws,
        vec![
            json!({"contact_key": "new", "name": "N"}),
            json!({"contact_key": "chg", "name": "C2"}),
            json!({"contact_key": "same", "name": "S"}),
        ],
    )?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(counts(&rep), (3, 3, 0, 1, 1, 1, 0, 1));
    assert!(rep.errors.is_empty());
    assert!(!rep.replayed);
    check_summary_consistent(&rep);
    Ok(())
}

// R15: partial — some applied, some failed (validation and matching failures).
#[test]
fn partial_report() -> TestResult {
    let (_dir, _db, ws) = seeded()?;
    let mut r = match_all(Mode::Upsert, mixed());
    r.on_invalid = contactdb::OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Inserted,
            Outcome::Updated,
            Outcome::Unchanged,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    assert_eq!(counts(&rep), (5, 4, 1, 1, 1, 1, 2, 1));
    let codes: Vec<(u32, &str)> = errors(&rep).into_iter().map(|e| (e.0, e.2)).collect();
    assert_eq!(codes, vec![(3, "invalid_email"), (4, "ambiguous_match")]);
    let keys_: Vec<Option<&str>> = rep.results.iter().map(|r| r.key.as_deref()).collect();
    assert_eq!(
        keys_,
        vec![
            Some("new"),
            Some("chg"),
            Some("same"),
            Some("inv"),
            Some("amb")
        ]
    );
    check_summary_consistent(&rep);
    Ok(())
}

// R15: rejected — nothing applied.
#[test]
fn rejected_report() -> TestResult {
    let (_dir, _db, ws) = seeded()?;
    let rep = ws.bulk(&match_all(Mode::Upsert, mixed()))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::NotApplied,
            Outcome::NotApplied,
            Outcome::NotApplied,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    assert_eq!(counts(&rep), (5, 4, 1, 0, 0, 0, 2, 0));
    check_summary_consistent(&rep);
    Ok(())
}

// R15: duplicates left out by first/last are not failures.
#[test]
fn duplicates_are_not_failures() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let rep = ws.bulk(&dup(
        Mode::Upsert,
        OnDuplicate::Last,
        vec![json!({"contact_key": "a"}), json!({"contact_key": "a"})],
    ))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(rep.summary.failed, 0);
    assert_eq!(rep.summary.inserted, 1);
    assert_eq!(rep.summary.valid, 2);
    check_summary_consistent(&rep);
    Ok(())
}

// R15: the report's JSON field names.
#[test]
fn report_json_field_names() -> TestResult {
    let (_dir, _db, ws) = seeded()?;
    let mut r = match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "new", "email": " N@X.COM "}),
            json!({"contact_key": "inv", "email": "x"}),
            json!({"contact_key": "amb", "email": "dup@x.com"}),
            json!({"contact_key": "crm", "name": "S", "email": "dup2@x.com"}),
        ],
    );
    r.on_invalid = contactdb::OnInvalid::Skip;
    let rep = ws.bulk(&r)?;
    let v = serde_json::to_value(&rep)?;
    let top = keys(&v);
    for k in ["status", "summary", "results", "errors", "warnings"] {
        assert!(top.contains(k), "report lacks {k}: {top:?}");
    }
    assert_eq!(v["status"], json!("partial"));
    assert_eq!(
        keys(&v["summary"]),
        set(&[
            "total",
            "valid",
            "invalid",
            "inserted",
            "updated",
            "unchanged",
            "failed",
            "batches"
        ])
    );
    assert_eq!(v["summary"]["total"], json!(4));
    assert_eq!(v["summary"]["invalid"], json!(1));
    let res0 = &v["results"][0];
    for k in ["index", "key", "outcome", "matched_by"] {
        assert!(keys(res0).contains(k), "result lacks {k}: {res0}");
    }
    assert_eq!(res0["index"], json!(0));
    assert_eq!(res0["key"], json!("new"));
    assert_eq!(res0["outcome"], json!("inserted"));
    assert_eq!(res0["matched_by"], json!(null));
    assert_eq!(v["results"][1]["outcome"], json!("failed"));

    let err0 = &v["errors"][0];
    for k in ["index", "key", "column", "code", "message"] {
        assert!(keys(err0).contains(k), "error lacks {k}: {err0}");
    }
    assert_eq!(err0["index"], json!(1));
    assert_eq!(err0["key"], json!("inv"));
    assert_eq!(err0["column"], json!("email"));
    assert_eq!(err0["code"], json!("invalid_email"));
    let err1 = &v["errors"][1];
    assert_eq!(err1["code"], json!("ambiguous_match"));
    assert_eq!(err1["candidates"], json!(["d1", "d2"]));

    let w0 = &v["warnings"][0];
    for k in ["index", "key", "column", "code", "message"] {
        assert!(keys(w0).contains(k), "warning lacks {k}: {w0}");
    }
    assert_eq!(w0["code"], json!("value_normalized"));
    assert_eq!(w0["column"], json!("email"));

    // Rejected report: not_applied spelled in snake_case.
    let rep = ws.bulk(&req(
        Mode::Upsert,
        vec![
            json!({"contact_key": "z"}),
            json!({"contact_key": "y", "gsm": "1"}),
        ],
    ))?;
    let v = serde_json::to_value(&rep)?;
    assert_eq!(v["status"], json!("rejected"));
    assert_eq!(v["results"][0]["outcome"], json!("not_applied"));
    assert_eq!(v["summary"]["batches"], json!(0));

    // A report round-trips through JSON.
    let back: Report = serde_json::from_value(v)?;
    assert_eq!(back, rep);
    Ok(())
}

// R15: matched_by spelled key/alias/email/phone in JSON; duplicate_of present.
#[test]
fn matched_by_and_duplicate_of_in_json() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed(
        &ws,
        vec![json!({"contact_key": "a", "email": "a@x.com", "gsm": "+905551111111"})],
    )?;
    let rep = ws.bulk(&match_all(
        Mode::Upsert,
        vec![
            json!({"contact_key": "a"}),
            json!({"contact_key": "p", "gsm": "+905551111111"}),
            json!({"contact_key": "p"}),
            json!({"contact_key": "e", "email": "a@x.com"}),
        ],
    ))?;
    let v = serde_json::to_value(&rep)?;
    let mb: Vec<Value> = (0..4)
        .map(|i| v["results"][i]["matched_by"].clone())
        .collect();
    assert_eq!(
        mb,
        vec![json!("key"), json!("phone"), json!("alias"), json!("email")]
    );
    // Records 1..3 reached the contact record 0 reached.
    let d: Vec<Value> = (0..4)
        .map(|i| v["results"][i]["duplicate_of"].clone())
        .collect();
    assert_eq!(d, vec![json!(null), json!(0), json!(0), json!(0)]);
    assert_eq!(v["results"][1]["contact_key"], json!("a"));
    let dw: Vec<(Value, Value)> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == json!("duplicate_in_batch"))
        .map(|w| (w["index"].clone(), w["duplicate_of"].clone()))
        .collect();
    assert_eq!(
        dw,
        vec![
            (json!(1), json!(0)),
            (json!(2), json!(0)),
            (json!(3), json!(0))
        ]
    );
    Ok(())
}
