//! R7: per-record validation — every error code with its column (table-driven),
//! every problem of a record reported in column order, and failed records writing
//! nothing.

mod common;

use common::*;
use contactdb::Outcome::{Failed, Inserted};
use contactdb::{ColumnSpec, ColumnType, Mode, Outcome, Status, Workspace};
use serde_json::{Value, json};

/// Sends one record (upsert, abort) and checks it fails with exactly one error of
/// `code` on `column`, the request is rejected and nothing is written. Returns a
/// description of every mismatch (empty = as expected).
fn check(ws: &Workspace, record: Value, code: &str, column: &str) -> Vec<String> {
    check_mode(ws, Mode::Upsert, record, code, column)
}

fn check_mode(ws: &Workspace, mode: Mode, record: Value, code: &str, column: &str) -> Vec<String> {
    let mut bad = Vec::new();
    let shown: String = record.to_string().chars().take(100).collect();
    let before = expect_ok(ws.count());
    let rep = expect_ok(ws.bulk(&req(mode, vec![record])));
    let want = vec![(0, Some(column.to_owned()), code)];
    if errors(&rep) != want {
        bad.push(format!("{shown}: errors {:?}, want {want:?}", errors(&rep)));
    }
    if rep.status != Status::Rejected || outcomes(&rep) != vec![Outcome::Failed] {
        bad.push(format!(
            "{shown}: status {:?} outcomes {:?}",
            rep.status,
            outcomes(&rep)
        ));
    }
    if rep.summary.invalid != 1 || rep.summary.failed != 1 {
        bad.push(format!("{shown}: summary {:?}", rep.summary));
    }
    if rep.errors.iter().any(|e| e.message.is_empty()) {
        bad.push(format!("{shown}: empty message"));
    }
    if expect_ok(ws.count()) != before {
        bad.push(format!("{shown}: wrote a contact"));
    }
    bad
}

// R7: every validation code, with the column it names.
#[test]
fn validation_codes_table() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    ws.declare_column(
        ColumnSpec::new("code", ColumnType::String { max_len: 3 }).import_enabled(true),
    )?;
    ws.declare_column(ColumnSpec::new("amount", ColumnType::Decimal).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("vip", ColumnType::Boolean).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("joined", ColumnType::Date).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("extra", ColumnType::Json).import_enabled(true))?;
    let long = |n: usize| "x".repeat(n);
    let big_json = json!({"blob": "y".repeat(65_536)});
    // Records without a usable key, and the error on contact_key.
    let keys: Vec<(Value, &str)> = vec![
        (json!({"name": "no key"}), "missing_key"),
        (json!({"contact_key": null}), "missing_key"),
        (json!({"contact_key": ""}), "missing_key"),
        (json!({"contact_key": " \t "}), "missing_key"),
        (json!({"identifier": null}), "missing_key"),
        (json!({"contact_key": "a\u{1}b"}), "invalid_key"),
        (json!({"contact_key": "a\nb"}), "invalid_key"),
        (json!({"contact_key": "a\tb"}), "invalid_key"),
        (json!({"contact_key": "a\u{7f}"}), "invalid_key"),
        (json!({"contact_key": long(256)}), "too_long"),
        (json!({"contact_key": "é".repeat(128)}), "too_long"),
        (json!({"contact_key": true}), "invalid_type"),
        (json!({"contact_key": 1.5}), "invalid_type"),
        (json!({"contact_key": ["k"]}), "invalid_type"),
        (json!({"contact_key": {"k": 1}}), "invalid_type"),
    ];
    // (column, value, code): the record is {contact_key: "k", column: value} and
    // the error names the column.
    let table: Vec<(&str, Value, &str)> = vec![
        // text columns
        ("name", json!(long(101)), "too_long"),
        ("surname", json!("ü".repeat(101)), "too_long"),
        ("gender", json!(long(101)), "too_long"),
        ("name", json!("a\u{7}b"), "invalid_type"),
        // Text keeps tabs and line breaks (\n, \r\n), not a lone \r.
        ("name", json!("a\rb"), "invalid_type"),
        ("name", json!(true), "invalid_type"),
        ("name", json!(["Ann"]), "invalid_type"),
        ("surname", json!({"a": 1}), "invalid_type"),
        // email
        ("email", json!("bob@example"), "invalid_email"),
        ("email", json!("bob.example.com"), "invalid_email"),
        ("email", json!("a@@b.com"), "invalid_email"),
        ("email", json!("a@b@c.com"), "invalid_email"),
        ("email", json!("@b.com"), "invalid_email"),
        ("email", json!("a b@c.com"), "invalid_email"),
        ("email", json!("a@-b.com"), "invalid_email"),
        ("email", json!("a@b-.com"), "invalid_email"),
        ("email", json!("a@b..com"), "invalid_email"),
        ("email", json!("a@.b.com"), "invalid_email"),
        ("email", json!("a@b.com."), "invalid_email"),
        ("email", json!("a@b_c.com"), "invalid_email"),
        // An international domain is stored in its ASCII form; one that breaks the
        // label rule is invalid.
        ("email", json!("a@bü-.com"), "invalid_email"),
        (
            "email",
            json!(format!("{}@b.com", long(65))),
            "invalid_email",
        ),
        ("email", json!(format!("a@{}.com", long(251))), "too_long"),
        ("email", json!(5), "invalid_type"),
        ("email", json!(["a@b.com"]), "invalid_type"),
        // phone
        ("gsm", json!("5551234567"), "invalid_phone"),
        ("gsm", json!("+0123456789"), "invalid_phone"),
        ("gsm", json!("+123456"), "invalid_phone"),
        ("gsm", json!("+1234567890123456"), "invalid_phone"),
        ("gsm", json!("+90 555 abc 4567"), "invalid_phone"),
        ("gsm", json!("+90/555/1234567"), "invalid_phone"),
        ("gsm", json!("++905551234567"), "invalid_phone"),
        ("gsm", json!("+"), "invalid_phone"),
        ("gsm", json!(905_551_234_567_u64), "invalid_phone"),
        ("gsm", json!(true), "invalid_type"),
        ("gsm", json!(["+905551234567"]), "invalid_type"),
        // dates
        ("birthday", json!("2023-02-29"), "invalid_date"),
        ("birthday", json!("1900-02-29"), "invalid_date"),
        ("birthday", json!("2023-13-01"), "invalid_date"),
        ("birthday", json!("2023-00-10"), "invalid_date"),
        ("birthday", json!("2023-01-00"), "invalid_date"),
        ("birthday", json!("0000-01-01"), "invalid_date"),
        ("birthday", json!("2023/01/01"), "invalid_date"),
        ("birthday", json!("23-01-01"), "invalid_date"),
        ("birthday", json!("2023-1-1"), "invalid_date"),
        ("birthday", json!("2023-01-01T00:00"), "invalid_date"),
        ("subscription_start", json!("2024-04-31"), "invalid_date"),
        ("birthday", json!(20230101), "invalid_type"),
        // status enums
        ("status", json!("X"), "invalid_enum"),
        ("status", json!("active"), "invalid_enum"),
        ("status", json!(1), "invalid_enum"),
        ("email_status", json!("AP"), "invalid_enum"),
        ("gsm_status", json!(true), "invalid_enum"),
        // booleans
        ("email_permit", json!("maybe"), "invalid_type"),
        ("email_permit", json!(2), "invalid_type"),
        ("gsm_permit", json!([true]), "invalid_type"),
        // priority
        ("priority", json!(-1), "invalid_priority"),
        ("priority", json!(1.5), "invalid_priority"),
        ("priority", json!("abc"), "invalid_priority"),
        ("priority", json!("-3"), "invalid_priority"),
        ("priority", json!("+5"), "invalid_priority"),
        ("priority", json!(true), "invalid_priority"),
        ("priority", json!([1]), "invalid_priority"),
        // metadata
        ("metadata", big_json, "metadata_too_large"),
        // custom columns
        ("tier", json!("abc"), "invalid_type"),
        ("tier", json!(1.5), "invalid_type"),
        ("tier", json!("9223372036854775808"), "invalid_type"),
        ("code", json!("abcd"), "too_long"),
        ("amount", json!("1e5"), "invalid_type"),
        ("amount", json!("1."), "invalid_type"),
        ("amount", json!("1".repeat(65)), "invalid_type"),
        ("amount", json!(true), "invalid_type"),
        ("vip", json!("sure"), "invalid_type"),
        ("joined", json!("2023-02-30"), "invalid_date"),
        (
            "extra",
            json!({"blob": "z".repeat(70_000)}),
            "metadata_too_large",
        ),
    ];
    let mut mismatches: Vec<String> = Vec::new();
    for (record, code) in keys {
        mismatches.extend(check(&ws, record, code, "contact_key"));
    }
    for (column, value, code) in table {
        mismatches.extend(check(
            &ws,
            json!({"contact_key": "k", column: value}),
            code,
            column,
        ));
    }
    // A field-name alias: the error names the canonical column.
    let alias = json!({"contact_key": "k", "phoneNumber": "12"});
    mismatches.extend(check(&ws, alias, "invalid_phone", "gsm"));
    // new_contact_key is validated like a key (update mode only).
    seed(&ws, json!({"contact_key": "exists"}))?;
    for (new_key, code) in [
        (json!("a\u{0}"), "invalid_key"),
        (json!(long(256)), "too_long"),
        (json!([1]), "invalid_type"),
    ] {
        let record = json!({"contact_key": "exists", "new_contact_key": new_key});
        mismatches.extend(check_mode(
            &ws,
            Mode::Update,
            record,
            code,
            "new_contact_key",
        ));
    }
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(must_get(&ws, "exists")?.version, 1);
    assert_eq!(ws.count()?, 1);
    assert_clean(&db)?;
    Ok(())
}

// R7: the boundary values just inside the limits are valid.
#[test]
fn limits_are_inclusive() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let key255 = "k".repeat(255);
    let local64 = format!("{}@b.com", "l".repeat(64));
    // Labels of at most 63 octets (RFC 1035): three of 63, one of 57.
    let email255 = format!(
        "a@{}{}.com",
        format!("{}.", "d".repeat(63)).repeat(3),
        "d".repeat(57)
    );
    assert_eq!(email255.chars().count(), 255);
    let meta_max = json!("m".repeat(65_534)); // 65,536 bytes serialized
    let rep = upsert(
        &ws,
        json!([
            {"contact_key": key255, "name": "n".repeat(100), "email": local64},
            {"contact_key": "e255", "email": email255},
            {"contact_key": "meta", "metadata": meta_max},
        ]),
    )?;
    assert_eq!(rep.status, Status::Applied, "{:?}", errors(&rep));
    assert_eq!(ws.count()?, 3);
    assert_eq!(col(&must_get(&ws, "meta")?, "metadata"), meta_max);
    Ok(())
}

// R7: every problem of a record is reported, ordered by column (R2 order, then
// custom columns by declaration), each with the record's key.
#[test]
fn all_errors_of_a_record_are_reported() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("zeta", ColumnType::Integer).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("alpha", ColumnType::Boolean).import_enabled(true))?;
    let rep = upsert(
        &ws,
        json!({
            "alpha": "nope", "zeta": "x", "birthday": "2023-02-30", "gsm": "12",
            "status": "Z", "email": "bad", "name": "x".repeat(101), "contact_key": "k1",
            "priority": -1, "metadata": {"m": "x".repeat(66_000)}
        }),
    )?;
    let s = |c: &str| Some(c.to_owned());
    assert_eq!(
        errors(&rep),
        vec![
            (0, s("name"), "too_long"),
            (0, s("email"), "invalid_email"),
            (0, s("status"), "invalid_enum"),
            (0, s("gsm"), "invalid_phone"),
            (0, s("birthday"), "invalid_date"),
            (0, s("priority"), "invalid_priority"),
            (0, s("metadata"), "metadata_too_large"),
            (0, s("zeta"), "invalid_type"),
            (0, s("alpha"), "invalid_type"),
        ]
    );
    for e in &rep.errors {
        assert_eq!(e.key.as_deref(), Some("k1"));
        assert_eq!(e.index, 0);
    }
    assert_eq!(rep.results[0].key.as_deref(), Some("k1"));
    assert_eq!(rep.summary.invalid, 1);

    // A missing key is reported together with the other problems; key is null.
    let rep = upsert(&ws, json!({"email": "bad", "gsm": "x"}))?;
    assert_eq!(
        errors(&rep),
        vec![
            (0, s("contact_key"), "missing_key"),
            (0, s("email"), "invalid_email"),
            (0, s("gsm"), "invalid_phone"),
        ]
    );
    assert!(rep.errors.iter().all(|e| e.key.is_none()));
    assert_eq!(rep.results[0].key, None);
    assert_eq!(ws.count()?, 0);
    Ok(())
}

// R7: errors of several records are reported in input order with their index.
#[test]
fn errors_of_several_records_in_input_order() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let recs = json!([
        {"contact_key": "ok-0"},
        {"contact_key": "bad-1", "email": "x"},
        {"contact_key": "ok-2"},
        {"contact_key": "bad-3", "birthday": "x", "status": "x"},
    ]);
    let rep = ws.bulk(&skip(Mode::Upsert, recs))?;
    let s = |c: &str| Some(c.to_owned());
    assert_eq!(
        errors(&rep),
        vec![
            (1, s("email"), "invalid_email"),
            (3, s("status"), "invalid_enum"),
            (3, s("birthday"), "invalid_date"),
        ]
    );
    let keys: Vec<Option<&str>> = rep.errors.iter().map(|e| e.key.as_deref()).collect();
    assert_eq!(keys, vec![Some("bad-1"), Some("bad-3"), Some("bad-3")]);
    assert_eq!(outcomes(&rep), [Inserted, Failed, Inserted, Failed]);
    assert!(ws.get("bad-1")?.is_none());
    assert!(ws.get("bad-3")?.is_none());
    Ok(())
}

// R7: an invalid record never updates the stored contact, even partially.
#[test]
fn invalid_update_changes_nothing() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "k", "name": "Ann"}))?;
    let record = json!({"contact_key": "k", "name": "Bob", "email": "nope"});
    let rep = ws.bulk(&skip(Mode::Update, record))?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(outcomes(&rep), [Failed]);
    assert_eq!(
        read(&ws, "k", &["name", "version"])?,
        [json!("Ann"), json!(1)]
    );
    Ok(())
}
