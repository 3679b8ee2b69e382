//! R20: hostile input never panics, never corrupts the file and never loses a
//! committed record: huge strings, deep and huge metadata, wrong JSON types in every
//! column, control characters in keys, hostile names and ids.
//! (Invalid UTF-8 cannot be represented in serde_json::Value; the CLI tests cover it.)

mod common;

use common::*;
use contactdb::{ColumnSpec, ColumnType, Database, Mode, Outcome, Report, Status, Workspace};
use serde_json::{Value, json};

const MB: usize = 1024 * 1024;

/// Seeds a committed contact that every hostile request must leave intact.
fn committed(ws: &Workspace) -> contactdb::Contact {
    expect_ok(seed(
        ws,
        vec![json!({"contact_key": "keep", "name": "Keep", "email": "keep@x.com"})],
    ));
    expect_some(expect_ok(ws.get("keep")), "keep")
}

fn one(ws: &Workspace, rec: Value) -> Report {
    expect_ok(ws.bulk(&skip(Mode::Upsert, vec![rec])))
}

fn only_error(r: &Report) -> (Option<String>, &'static str) {
    let e = errors(r);
    assert_eq!(e.len(), 1, "{e:?}");
    let (_, column, code) = expect_some(e.into_iter().next(), "the error");
    (column, code)
}

// R20: 1 MB strings in every text-like column get a clear error (and the message
// does not echo the megabyte back).
#[test]
fn huge_strings() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let keep = committed(&ws);
    let huge = "x".repeat(MB);
    let on_k = |column: &str, value: &str| json!({"contact_key": "k", column: value});
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"contact_key": huge}), "contact_key", "too_long"),
        (on_k("name", &huge), "name", "too_long"),
        (on_k("email", &huge), "email", "too_long"),
        (on_k("gsm", &huge), "gsm", "invalid_phone"),
        (on_k("birthday", &huge), "birthday", "invalid_date"),
        (on_k("status", &huge), "status", "invalid_enum"),
        (on_k("priority", &huge), "priority", "invalid_priority"),
        (on_k("email_permit", &huge), "email_permit", "invalid_type"),
        (on_k("metadata", &huge), "metadata", "metadata_too_large"),
        (
            on_k("gsm", &format!("+1{}", "2".repeat(MB))),
            "gsm",
            "invalid_phone",
        ),
        (
            on_k("priority", &"9".repeat(MB)),
            "priority",
            "invalid_priority",
        ),
    ];
    for (rec, column, code) in cases {
        let rep = one(&ws, rec);
        assert_eq!(
            only_error(&rep),
            (Some(column.to_owned()), code),
            "{column}"
        );
        assert_eq!(rep.status, Status::Rejected, "{column}");
        let msg = &rep.errors[0].message;
        assert!(msg.len() < 4096, "{column}: message of {} bytes", msg.len());
    }
    assert_eq!(ws.count()?, 1);
    assert_eq!(must_get(&ws, "keep")?, keep);
    assert_clean(&db)?;
    Ok(())
}

// R20, R2: metadata over 64 KiB serialized is metadata_too_large; 64 KiB exactly
// is fine; a huge object of many keys too.
#[test]
fn metadata_sizes() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let keep = committed(&ws);
    // A string of n chars serializes to n + 2 bytes.
    let at_limit = json!("m".repeat(65_536 - 2));
    let over = json!("m".repeat(65_536 - 1));
    let rep = one(&ws, json!({"contact_key": "a", "metadata": at_limit}));
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted], "{:?}", rep.errors);
    let rep = one(&ws, json!({"contact_key": "b", "metadata": over}));
    assert_eq!(
        only_error(&rep),
        (Some("metadata".to_owned()), "metadata_too_large")
    );
    // 100,000 keys: far over the limit.
    let mut many = serde_json::Map::new();
    for i in 0..100_000 {
        many.insert(format!("k{i}"), json!(i));
    }
    let rep = one(
        &ws,
        json!({"contact_key": "c", "metadata": Value::Object(many)}),
    );
    assert_eq!(
        only_error(&rep),
        (Some("metadata".to_owned()), "metadata_too_large")
    );
    // Many small keys under the limit are stored exactly.
    let mut some = serde_json::Map::new();
    for i in 0..2000 {
        some.insert(format!("k{i}"), json!([i, null, true]));
    }
    let some = Value::Object(some);
    let rep = one(&ws, json!({"contact_key": "d", "metadata": some.clone()}));
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted], "{:?}", rep.errors);
    assert_eq!(col(&must_get(&ws, "d")?, "metadata"), some);
    assert_eq!(must_get(&ws, "keep")?, keep);
    assert_clean(&db)?;
    Ok(())
}

fn nested(depth: usize) -> Value {
    let mut v = json!("leaf");
    for i in 0..depth {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "d": v })
        };
    }
    v
}

// R20, R2: deeply nested metadata either is refused with a clear error or is
// stored as given — it must never be silently changed (e.g. read back as null).
#[test]
fn deep_metadata() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let keep = committed(&ws);
    let mut bad = Vec::new();
    for depth in [100, 127, 128, 129, 200, 1000] {
        let meta = nested(depth);
        let key = format!("deep-{depth}");
        let rep = one(&ws, json!({"contact_key": key, "metadata": meta.clone()}));
        match outcomes(&rep).as_slice() {
            [Outcome::Inserted] => {
                let got = col(&must_get(&ws, &key)?, "metadata");
                if got != meta {
                    let shown: String = got.to_string().chars().take(40).collect();
                    bad.push(format!("depth {depth}: stored, but reads back as {shown}"));
                }
            }
            [Outcome::Failed] => {
                let (column, code) = only_error(&rep);
                assert_eq!(column.as_deref(), Some("metadata"), "depth {depth}");
                assert!(
                    ["metadata_too_large", "invalid_type"].contains(&code),
                    "depth {depth}: {code}"
                );
            }
            other => bad.push(format!("depth {depth}: outcome {other:?}")),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(must_get(&ws, "keep")?, keep);
    assert_clean(&db)?;
    Ok(())
}

// R20, R7: every wrong JSON type in every column gets its documented code.
#[test]
fn wrong_types_everywhere() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("n", ColumnType::Integer).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("d", ColumnType::Decimal).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("b", ColumnType::Boolean).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("dt", ColumnType::Date).import_enabled(true))?;
    ws.declare_column(
        ColumnSpec::new("s", ColumnType::String { max_len: 10 }).import_enabled(true),
    )?;
    let keep = committed(&ws);
    // column → code for true (a non-boolean string for boolean columns), [1],
    // {"a":1} and [] (text columns accept numbers, so numbers are not here).
    let table: Vec<(&str, &str)> = vec![
        ("contact_key", "invalid_type"),
        ("name", "invalid_type"),
        ("surname", "invalid_type"),
        ("gender", "invalid_type"),
        ("email", "invalid_type"),
        ("email_permit", "invalid_type"),
        ("gsm_permit", "invalid_type"),
        ("email_status", "invalid_enum"),
        ("gsm_status", "invalid_enum"),
        ("status", "invalid_enum"),
        ("gsm", "invalid_type"),
        ("birthday", "invalid_type"),
        ("subscription_start", "invalid_type"),
        ("priority", "invalid_priority"),
        ("n", "invalid_type"),
        ("d", "invalid_type"),
        ("b", "invalid_type"),
        ("dt", "invalid_type"),
        ("s", "invalid_type"),
    ];
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    for (column, code) in table {
        let boolean = ["email_permit", "gsm_permit", "b"].contains(&column);
        let wrong = if boolean {
            vec![json!("maybe"), json!([1]), json!({"a": 1}), json!([])]
        } else {
            vec![json!(true), json!([1]), json!({"a": 1}), json!([])]
        };
        cases.extend(wrong.into_iter().map(|value| (column, value, code)));
    }
    // Floats where integers are wanted.
    for (column, code) in [
        ("priority", "invalid_priority"),
        ("n", "invalid_type"),
        ("gsm", "invalid_type"),
        ("contact_key", "invalid_type"),
        ("email_permit", "invalid_type"),
    ] {
        cases.push((column, json!(1.5), code));
    }
    // Out-of-range numbers.
    cases.extend([
        ("priority", json!(u64::MAX), "invalid_priority"),
        ("priority", json!(-0.0), "invalid_priority"),
        ("n", json!(u64::MAX), "invalid_type"),
        ("n", json!("-9223372036854775809"), "invalid_type"),
        ("email_permit", json!(-1), "invalid_type"),
    ]);
    let mut mismatches = Vec::new();
    for (column, value, code) in cases {
        // The record names contact_key "wt" unless the column is the key itself.
        let mut rec = json!({"contact_key": "wt"});
        rec[column] = value.clone();
        let got = errors(&one(&ws, rec));
        let want = vec![(0, Some(column.to_owned()), code)];
        if got != want {
            mismatches.push(format!("{column}={value}: {got:?}, want {want:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Extreme values that are valid.
    let rep = one(
        &ws,
        json!({"contact_key": "ext", "n": i64::MIN, "priority": i64::MAX, "d": "-0.000"}),
    );
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted], "{:?}", rep.errors);
    assert_eq!(
        read(&ws, "ext", &["n", "priority", "d"])?,
        [json!(i64::MIN), json!(i64::MAX), json!(0)]
    );
    assert_eq!(ws.count()?, 2);
    assert_eq!(must_get(&ws, "keep")?, keep);
    assert_clean(&db)?;
    Ok(())
}

// R20, R2: keys with control characters are invalid_key; other Unicode is fine.
#[test]
fn hostile_keys() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let keep = committed(&ws);
    for k in [
        "\u{0}",
        "a\u{0}b",
        "a\rb",
        "\u{1b}[31m",
        "a\u{85}b",
        "k\u{9f}",
        "x\u{7f}",
    ] {
        let rep = one(&ws, json!({"contact_key": k}));
        assert_eq!(
            only_error(&rep),
            (Some("contact_key".to_owned()), "invalid_key"),
            "{k:?}"
        );
    }
    let fine = [
        "😀",
        "a b",
        "ключ",
        "'; DROP TABLE contacts; --",
        "\u{200b}z",
        "%00",
        "../..",
    ];
    let rep = upsert(&ws, json!(fine.map(|k| json!({"contact_key": k}))))?;
    assert_eq!(rep.status, Status::Applied, "{:?}", rep.errors);
    for k in fine {
        assert_eq!(must_get(&ws, k)?.key, k);
    }
    assert_eq!(ws.count()?, 1 + fine.len() as u64);
    assert_eq!(must_get(&ws, "keep")?, keep);
    // Lookups with hostile text find nothing and do not fail.
    assert!(ws.get("\u{0}")?.is_none());
    assert!(ws.get(&"z".repeat(MB))?.is_none());
    assert_eq!(
        error_kind(&ws.find_by_email("not an email")),
        "invalid_argument"
    );
    assert_eq!(error_kind(&ws.find_by_phone("12")), "invalid_argument");
    assert_clean(&db)?;
    Ok(())
}

// R20, R5: hostile column names and request ids are request-level errors.
#[test]
fn hostile_names_and_ids() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let keep = committed(&ws);
    let long_name = "c".repeat(MB);
    for name in [
        long_name.as_str(),
        "",
        " ",
        "\u{0}",
        "na\u{0}me",
        "émail",
        "__proto__",
    ] {
        let mut rec = serde_json::Map::new();
        rec.insert("contact_key".into(), json!("k"));
        rec.insert(name.into(), json!(1));
        let (code, text) = refused(upsert(&ws, Value::Object(rec)))?;
        assert_eq!(code, "unknown_column", "{:?}", name.get(..10));
        assert!(text.len() < 2 * MB);
    }
    let r = req(Mode::Upsert, json!({"contact_key": "k"})).with_id(&"r".repeat(MB));
    assert_eq!(request_code(ws.bulk(&r)), "invalid_request_id");
    // Custom column declarations with hostile names.
    let huge_text = ColumnType::String { max_len: u32::MAX };
    for spec in [
        ColumnSpec::new(long_name.as_str(), ColumnType::Integer),
        ColumnSpec::new("\u{0}", ColumnType::Integer),
        ColumnSpec::new("ñ", ColumnType::Integer),
        ColumnSpec::new("s", huge_text),
    ] {
        let got = ws.declare_column(spec);
        assert_eq!(error_kind(&got), "invalid_argument", "{got:?}");
    }
    // Hostile workspace names.
    assert_eq!(error_kind(&db.workspace(&long_name)), "no_such_workspace");
    assert_eq!(error_kind(&db.create_workspace(&long_name)), "invalid_slug");
    assert_eq!(ws.count()?, 1);
    assert_eq!(must_get(&ws, "keep")?, keep);
    assert_clean(&db)?;
    Ok(())
}

// R20: many hostile records at once (a whole request of garbage) are all reported
// and the request neither panics nor writes.
#[test]
fn request_of_garbage() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let keep = committed(&ws);
    let garbage: Vec<Value> = (0..2000)
        .map(|i| match i % 5 {
            0 => json!({"contact_key": i, "email": i, "gsm": [i]}),
            1 => json!({"contact_key": {"k": i}}),
            2 => json!({"contact_key": format!("g{i}"), "birthday": "9999-99-99", "status": "?"}),
            3 => json!({"contact_key": "", "metadata": null}),
            _ => json!({"contact_key": "\u{1}", "priority": -i}),
        })
        .collect();
    let rep = upsert(&ws, garbage)?;
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(rep.summary.total, 2000);
    assert_eq!(rep.summary.invalid, 2000);
    assert_eq!(rep.summary.failed, 2000);
    // 0: email+gsm, 1: key, 2: status+birthday, 3: key, 4: key+priority
    assert_eq!(rep.errors.len(), 400 * (2 + 1 + 2 + 1 + 2));
    assert_eq!(ws.count()?, 1);
    assert_eq!(must_get(&ws, "keep")?, keep);
    assert_clean(&db)?;
    Ok(())
}

// R20: a file that is not a contactdb database gets a clear error, not a panic, and
// is not overwritten.
#[test]
fn garbage_file_is_a_clear_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("garbage.redb");
    let bytes: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes)?;
    let res = Database::open(&path);
    assert!(res.is_err(), "garbage opened as a database");
    let msg = res.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!msg.is_empty());
    assert_eq!(
        std::fs::read(&path)?,
        bytes,
        "the garbage file was modified"
    );
    Ok(())
}
