//! R2, R7: column names and values — normalization of every predefined column, the
//! `value_normalized` warning, field-name aliases, null/""/absent semantics and
//! `empty_values=ignore`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use contactdb::{Mode, Outcome, Status, Workspace};
use serde_json::{Value, json};

/// Upserts `{contact_key: key, column: input}` and checks the stored value of
/// `stored_as` (the canonical column name).
fn check(ws: &Workspace, n: usize, column: &str, input: Value, stored_as: &str, expected: Value) {
    let key = format!("norm-{n}");
    let mut rec = serde_json::Map::new();
    rec.insert("contact_key".into(), json!(key));
    rec.insert(column.into(), input.clone());
    let rep = upsert(ws, vec![Value::Object(rec)]).unwrap();
    assert_eq!(
        rep.status,
        Status::Applied,
        "{column}={input}: {:?}",
        rep.errors
    );
    let c = ws.get(&key).unwrap().expect("inserted");
    assert_eq!(
        col(&c, stored_as),
        expected,
        "{column}={input} stored as {stored_as}"
    );
}

// R2: every predefined column normalizes as the contract says.
#[test]
fn normalization_table() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let hundred = "ä".repeat(100);
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        // text: trimmed, ≤100 characters (not bytes), numbers written in decimal
        ("name", json!("  Ann  "), "name", json!("Ann")),
        ("name", json!(hundred), "name", json!(hundred)),
        ("name", json!(42), "name", json!("42")),
        ("name", json!("a\tb"), "name", json!("a\tb")),
        ("surname", json!(" Smith"), "surname", json!("Smith")),
        ("gender", json!("f "), "gender", json!("f")),
        // email: trimmed and lower-cased
        (
            "email",
            json!(" Ann.Lee@Example.COM "),
            "email",
            json!("ann.lee@example.com"),
        ),
        ("email", json!("a@b-c.d0.io"), "email", json!("a@b-c.d0.io")),
        // phone: separators dropped, 00 → +
        (
            "gsm",
            json!("0090 555 123 45 67"),
            "gsm",
            json!("+905551234567"),
        ),
        (
            "gsm",
            json!("+1 (555) 123-4567"),
            "gsm",
            json!("+15551234567"),
        ),
        (
            "gsm",
            json!("+44.20.7946.0958"),
            "gsm",
            json!("+442079460958"),
        ),
        ("gsm", json!("+1234567"), "gsm", json!("+1234567")),
        (
            "gsm",
            json!("+123456789012345"),
            "gsm",
            json!("+123456789012345"),
        ),
        // status enums: case-insensitive, stored upper-case
        ("status", json!("p"), "status", json!("P")),
        ("email_status", json!(" a "), "email_status", json!("A")),
        ("gsm_status", json!("P"), "gsm_status", json!("P")),
        // booleans as CSV exports write them
        ("email_permit", json!(true), "email_permit", json!(true)),
        ("email_permit", json!("yes"), "email_permit", json!(true)),
        ("email_permit", json!("N"), "email_permit", json!(false)),
        ("gsm_permit", json!(1), "gsm_permit", json!(true)),
        ("gsm_permit", json!(0), "gsm_permit", json!(false)),
        ("gsm_permit", json!("T"), "gsm_permit", json!(true)),
        ("gsm_permit", json!("False"), "gsm_permit", json!(false)),
        // dates
        (
            "birthday",
            json!(" 2000-02-29 "),
            "birthday",
            json!("2000-02-29"),
        ),
        (
            "subscription_start",
            json!("9999-12-31"),
            "subscription_start",
            json!("9999-12-31"),
        ),
        (
            "birthday",
            json!("0001-01-01"),
            "birthday",
            json!("0001-01-01"),
        ),
        // priority
        ("priority", json!(0), "priority", json!(0)),
        ("priority", json!("7"), "priority", json!(7)),
        // metadata: stored as given
        (
            "metadata",
            json!({"b": [1, 2, {"c": null}], "a": "x"}),
            "metadata",
            json!({"a": "x", "b": [1, 2, {"c": null}]}),
        ),
        ("metadata", json!([1, "two"]), "metadata", json!([1, "two"])),
        ("metadata", json!(12.5), "metadata", json!(12.5)),
        ("metadata", json!(false), "metadata", json!(false)),
        // column names are case-insensitive and snake_cased
        ("EMAIL", json!("x@y.io"), "email", json!("x@y.io")),
        ("Email_Status", json!("p"), "email_status", json!("P")),
        ("gsmPermit", json!(true), "gsm_permit", json!(true)),
        (
            "Subscription Start",
            json!("2024-01-31"),
            "subscription_start",
            json!("2024-01-31"),
        ),
    ];
    for (n, (column, input, stored_as, expected)) in cases.into_iter().enumerate() {
        check(&ws, n, column, input, stored_as, expected);
    }
    assert_clean(&db)?;
    Ok(())
}

// R2: keys are trimmed; JSON integers are keys written in decimal.
#[test]
fn keys_trimmed_and_integer_keys() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let rep = upsert(
        &ws,
        json!([{"contact_key": "  k-1 "}, {"contact_key": 12345}, {"contact_key": "Ключ"}]),
    )?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(rep.results[0].key.as_deref(), Some("k-1"));
    assert_eq!(rep.results[1].key.as_deref(), Some("12345"));
    assert!(ws.get("k-1")?.is_some());
    assert!(ws.get("12345")?.is_some());
    // Keys are case-sensitive.
    assert!(ws.get("Ключ")?.is_some());
    assert!(ws.get("ключ")?.is_none());
    assert!(ws.get("K-1")?.is_none());
    Ok(())
}

// R2: defaults on insert: status A, priority 5; version 1; no other columns.
#[test]
fn insert_defaults() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "k"}))?;
    let c = must_get(&ws, "k")?;
    assert_eq!(c.key, "k");
    assert_eq!(col(&c, "status"), json!("A"));
    assert_eq!(col(&c, "priority"), json!(5));
    assert_eq!(c.version, 1);
    assert!(c.aliases.is_empty());
    assert_eq!(c.created_at, c.updated_at);
    let names: Vec<&str> = c.columns.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["priority", "status"]);
    Ok(())
}

// R15, R2: value_normalized warnings name each column whose text changed, in
// column order; an already-normal record has none.
#[test]
fn value_normalized_warnings() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let rep = upsert(
        &ws,
        json!([
            {"contact_key": "k1", "gsm": "0090 555 123 45 67", "email": "A@B.CO", "name": " Ann", "status": "a"},
            {"contact_key": "k2", "gsm": "+905551234568", "email": "a@b.co", "name": "Ann", "status": "A"},
        ]),
    )?;
    assert_eq!(rep.status, Status::Applied);
    let w: Vec<(u32, Option<String>, String)> = warnings(&rep);
    let expect = |c: &str| (0u32, Some(c.to_owned()), "value_normalized".to_owned());
    assert_eq!(
        w,
        vec![
            expect("name"),
            expect("email"),
            expect("status"),
            expect("gsm")
        ]
    );
    Ok(())
}

// R2: the customer-import / bulk-add field names are aliases of the columns.
#[test]
fn field_name_aliases() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let rep = upsert(
        &ws,
        json!([
            {"identifier": "c-1", "phoneNumber": "+905551234567", "first_name": "Ann", "last_name": "Lee"},
            {"Identifier": "c-2", "phone_number": "0044 20 7946 0958", "firstName": "Bob", "LastName": "Ray"},
        ]),
    )?;
    assert_eq!(rep.status, Status::Applied, "{:?}", rep.errors);
    let c1 = must_get(&ws, "c-1")?;
    assert_eq!(col(&c1, "gsm"), json!("+905551234567"));
    assert_eq!(col(&c1, "name"), json!("Ann"));
    assert_eq!(col(&c1, "surname"), json!("Lee"));
    assert_eq!(col(&c1, "gsm_status"), json!("A"));
    let c2 = must_get(&ws, "c-2")?;
    assert_eq!(col(&c2, "gsm"), json!("+442079460958"));
    assert_eq!(col(&c2, "name"), json!("Bob"));
    assert_eq!(col(&c2, "surname"), json!("Ray"));
    // No column is stored under an alias name.
    for c in [&c1, &c2] {
        for alias in [
            "identifier",
            "phone_number",
            "phoneNumber",
            "first_name",
            "last_name",
        ] {
            assert!(!c.columns.contains_key(alias), "{alias} stored");
        }
    }
    // Errors name the canonical column, not the alias.
    let record = json!({"identifier": "c-3", "phoneNumber": "abc", "first_name": "x".repeat(101)});
    let rep = upsert(&ws, record)?;
    assert_eq!(
        errors(&rep),
        vec![
            (0, Some("name".to_owned()), "too_long"),
            (0, Some("gsm".to_owned()), "invalid_phone"),
        ]
    );
    Ok(())
}

// R7: an absent column keeps the stored value; null and "" clear it.
#[test]
fn null_and_empty_clear_absent_keeps() -> TestResult {
    let (_dir, db, ws) = seeded(json!({
        "contact_key": "k", "name": "Ann", "surname": "Lee", "gender": "f",
        "email": "ann@x.com", "gsm": "+905551234567", "birthday": "1990-01-02",
        "email_permit": true, "metadata": {"a": 1}
    }))?;
    let rep = bulk(
        &ws,
        Mode::Update,
        json!({
            "contact_key": "k", "name": null, "surname": "", "gender": "   ",
            "email": null, "birthday": "", "email_permit": null, "metadata": null
        }),
    )?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    let c = must_get(&ws, "k")?;
    for cleared in [
        "name",
        "surname",
        "gender",
        "email",
        "birthday",
        "email_permit",
        "metadata",
    ] {
        assert_eq!(col(&c, cleared), Value::Null, "{cleared} should be cleared");
    }
    // gsm was absent: kept.
    assert_eq!(col(&c, "gsm"), json!("+905551234567"));
    assert_eq!(c.version, 2);
    // The email index no longer finds it.
    assert!(ws.find_by_email("ann@x.com")?.is_empty());
    assert_eq!(ws.find_by_phone("+905551234567")?.len(), 1);
    assert_clean(&db)?;
    Ok(())
}

// Semantics: status and priority never become empty; clearing restores the default.
#[test]
fn clearing_defaulted_columns_restores_default() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "k", "status": "P", "priority": 1}))?;
    let rep = upsert(
        &ws,
        json!({"contact_key": "k", "status": null, "priority": ""}),
    )?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    assert_eq!(
        read(&ws, "k", &["status", "priority"])?,
        [json!("A"), json!(5)]
    );
    // Clearing them again changes nothing.
    let rep = upsert(
        &ws,
        json!({"contact_key": "k", "status": "", "priority": null}),
    )?;
    assert_eq!(outcomes(&rep), vec![Outcome::Unchanged]);
    assert_eq!(must_get(&ws, "k")?.version, 2);
    Ok(())
}

// R7: with empty_values=ignore, null and "" leave the stored value unchanged.
#[test]
fn empty_values_ignore() -> TestResult {
    let stored =
        json!({"contact_key": "k", "name": "Ann", "email": "ann@x.com", "birthday": "1990-01-02"});
    let (_dir, _db, ws) = seeded(stored)?;
    let ignoring = |mode: Mode, record: Value| ws.bulk(&req(mode, record).ignoring_empty());
    let rep = ignoring(
        Mode::Update,
        json!({"contact_key": "k", "name": null, "email": "", "birthday": "  "}),
    )?;
    assert_eq!(outcomes(&rep), vec![Outcome::Unchanged]);
    let c = must_get(&ws, "k")?;
    assert_eq!(col(&c, "name"), json!("Ann"));
    assert_eq!(col(&c, "email"), json!("ann@x.com"));
    assert_eq!(col(&c, "birthday"), json!("1990-01-02"));
    assert_eq!(c.version, 1);

    // Non-empty values still apply under ignore.
    let rep = ignoring(
        Mode::Update,
        json!({"contact_key": "k", "name": "Bo", "email": null}),
    )?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    assert_eq!(
        read(&ws, "k", &["name", "email", "version"])?,
        [json!("Bo"), json!("ann@x.com"), json!(2)]
    );

    // An empty key is still missing_key under ignore.
    let rep = ignoring(Mode::Upsert, json!({"contact_key": "", "name": "x"}))?;
    assert_eq!(
        errors(&rep),
        vec![(0, Some("contact_key".to_owned()), "missing_key")]
    );
    Ok(())
}

// R7: contact_key cannot be cleared.
#[test]
fn contact_key_cannot_be_cleared() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "k", "name": "Ann"}))?;
    for empty in [json!(null), json!(""), json!("   ")] {
        let rep = bulk(
            &ws,
            Mode::Update,
            json!({"contact_key": empty, "name": "Bob"}),
        )?;
        assert_eq!(rep.status, Status::Rejected);
        assert_eq!(
            errors(&rep),
            vec![(0, Some("contact_key".to_owned()), "missing_key")],
            "key {empty}"
        );
    }
    assert_eq!(
        read(&ws, "k", &["name", "version"])?,
        [json!("Ann"), json!(1)]
    );
    Ok(())
}

// R2: custom decimal values are stored in canonical form; reading them back must
// not lose digits (a float rounding of a long decimal is not its canonical form).
#[test]
fn long_decimal_reads_back_exactly() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    ws.declare_column(
        contactdb::ColumnSpec::new("amount", contactdb::ColumnType::Decimal).import_enabled(true),
    )?;
    let long = "12345678901234567890.123456789";
    seed(
        &ws,
        json!({"contact_key": "k", "amount": format!("+00{long}0")}),
    )?;
    let v = col(&must_get(&ws, "k")?, "amount");
    let text = match &v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(text, long, "stored {v:?}");
    Ok(())
}
