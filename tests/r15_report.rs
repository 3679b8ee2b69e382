//! R15: the report — status, summary counts, per-record results in input order,
//! errors, warnings, and the JSON field names.

mod common;

use std::collections::BTreeSet;

use common::*;
use contactdb::Outcome::{Failed, Inserted, NotApplied, Unchanged, Updated};
use contactdb::{BulkRequest, MatchOn, Mode, OnDuplicate, Outcome, Report, Status};
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

/// A workspace with an unchanged candidate, a changed one and two contacts sharing
/// an email.
fn with_contacts() -> Res<Fixture> {
    seeded(json!([
        {"contact_key": "same", "name": "S"},
        {"contact_key": "chg", "name": "C"},
        {"contact_key": "d1", "email": "dup@x.com"},
        {"contact_key": "d2", "email": "dup@x.com"},
    ]))
}

/// New, changed, unchanged, invalid, ambiguous; `take` of them.
fn mixed(take: usize) -> Vec<Value> {
    let all = json!([
        {"contact_key": "new", "name": "N"},
        {"contact_key": "chg", "name": "C2"},
        {"contact_key": "same", "name": "S"},
        {"contact_key": "inv", "email": "x"},
        {"contact_key": "amb", "email": "dup@x.com"},
    ]);
    all.records().into_iter().take(take).collect()
}

/// One request on `with_contacts` and the report it must give.
struct StatusCase {
    name: &'static str,
    request: fn() -> BulkRequest,
    status: Status,
    outcomes: &'static [Outcome],
    /// `counts`: (total, valid, invalid, inserted, updated, unchanged, failed, batches)
    counts: (u64, u64, u64, u64, u64, u64, u64, u64),
    errors: &'static [(u32, &'static str)],
}

const STATUSES: &[StatusCase] = &[
    // R15: applied — every record succeeded.
    StatusCase {
        name: "applied report",
        request: || req(Mode::Upsert, mixed(3)),
        status: Status::Applied,
        outcomes: &[Inserted, Updated, Unchanged],
        counts: (3, 3, 0, 1, 1, 1, 0, 1),
        errors: &[],
    },
    // R15: partial — some applied, some failed (validation and matching failures).
    StatusCase {
        name: "partial report",
        request: || match_all(Mode::Upsert, mixed(5)).skipping(),
        status: Status::Partial,
        outcomes: &[Inserted, Updated, Unchanged, Failed, Failed],
        counts: (5, 4, 1, 1, 1, 1, 2, 1),
        errors: &[(3, "invalid_email"), (4, "ambiguous_match")],
    },
    // R15: rejected — nothing applied.
    StatusCase {
        name: "rejected report",
        request: || match_all(Mode::Upsert, mixed(5)),
        status: Status::Rejected,
        outcomes: &[NotApplied, NotApplied, NotApplied, Failed, Failed],
        counts: (5, 4, 1, 0, 0, 0, 2, 0),
        errors: &[(3, "invalid_email"), (4, "ambiguous_match")],
    },
];

// R15: applied, partial and rejected reports.
#[test]
fn status_and_summary_of_each_kind_of_report() -> TestResult {
    for case in STATUSES {
        let name = case.name;
        let (_dir, _db, ws) = with_contacts()?;
        let request = (case.request)();
        let rep = ws.bulk(&request)?;
        assert_eq!(rep.status, case.status, "{name}");
        assert_eq!(outcomes(&rep), case.outcomes, "{name}");
        assert_eq!(counts(&rep), case.counts, "{name}");
        let errs: Vec<(u32, &str)> = errors(&rep).into_iter().map(|e| (e.0, e.2)).collect();
        assert_eq!(errs, case.errors, "{name}");
        assert!(!rep.replayed, "{name}");
        // Each result names the key its record gave.
        let given: Vec<Option<&str>> = request
            .records
            .iter()
            .map(|r| r["contact_key"].as_str())
            .collect();
        let keys_: Vec<Option<&str>> = rep.results.iter().map(|r| r.key.as_deref()).collect();
        assert_eq!(keys_, given, "{name}");
        check_summary_consistent(&rep);
    }
    Ok(())
}

// R15: duplicates left out by first/last are not failures.
#[test]
fn duplicates_are_not_failures() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let twice = json!([{"contact_key": "a"}, {"contact_key": "a"}]);
    let rep = ws.bulk(&dup(Mode::Upsert, OnDuplicate::Last, twice))?;
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
    let (_dir, _db, ws) = with_contacts()?;
    let recs = json!([
        {"contact_key": "new", "email": " N@X.COM "},
        {"contact_key": "inv", "email": "x"},
        {"contact_key": "amb", "email": "dup@x.com"},
        {"contact_key": "crm", "name": "S", "email": "dup2@x.com"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs).skipping())?;
    let v = serde_json::to_value(&rep)?;
    let top = keys(&v);
    for k in ["status", "summary", "results", "errors", "warnings"] {
        assert!(top.contains(k), "report lacks {k}: {top:?}");
    }
    assert_eq!(v["status"], json!("partial"));
    let summary = [
        "total",
        "valid",
        "invalid",
        "inserted",
        "updated",
        "unchanged",
        "failed",
        "batches",
    ];
    assert_eq!(keys(&v["summary"]), set(&summary));
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
    let rep = upsert(
        &ws,
        json!([{"contact_key": "z"}, {"contact_key": "y", "gsm": "1"}]),
    )?;
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
    let (_dir, _db, ws) =
        seeded(json!({"contact_key": "a", "email": "a@x.com", "gsm": "+905551111111"}))?;
    let recs = json!([
        {"contact_key": "a"},
        {"contact_key": "p", "gsm": "+905551111111"},
        {"contact_key": "p"},
        {"contact_key": "e", "email": "a@x.com"},
    ]);
    let rep = ws.bulk(&req(Mode::Upsert, recs).matching(MatchOn::ALL))?;
    let v = serde_json::to_value(&rep)?;
    let field =
        |name: &str| -> Vec<Value> { (0..4).map(|i| v["results"][i][name].clone()).collect() };
    assert_eq!(
        field("matched_by"),
        [json!("key"), json!("phone"), json!("alias"), json!("email")]
    );
    // Records 1..3 reached the contact record 0 reached.
    assert_eq!(
        field("duplicate_of"),
        [json!(null), json!(0), json!(0), json!(0)]
    );
    assert_eq!(v["results"][1]["contact_key"], json!("a"));
    let dw: Vec<(Value, Value)> = v["warnings"]
        .as_array()
        .ok_or("warnings is an array")?
        .iter()
        .filter(|w| w["code"] == json!("duplicate_in_batch"))
        .map(|w| (w["index"].clone(), w["duplicate_of"].clone()))
        .collect();
    let want = [
        (json!(1), json!(0)),
        (json!(2), json!(0)),
        (json!(3), json!(0)),
    ];
    assert_eq!(dw, want);
    Ok(())
}
