//! R3: custom columns — declaration, value types, import_enabled, required, type
//! changes, per-workspace catalogs and survival across reopen.

mod common;

use common::*;
use contactdb::Outcome::{Failed, Inserted, Unchanged, Updated};
use contactdb::{ColumnSpec, ColumnType, Mode, Status};
use serde_json::json;

fn string(n: u32) -> ColumnType {
    ColumnType::String { max_len: n }
}

// R3: declared columns are listed in declaration order with their flags.
#[test]
fn declare_and_list() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    assert!(ws.columns()?.is_empty());
    let specs = vec![
        ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true),
        ColumnSpec::new("note", string(10)).import_enabled(true),
        ColumnSpec::new("score", ColumnType::Decimal).import_enabled(true),
        ColumnSpec::new("vip", ColumnType::Boolean).import_enabled(true),
        ColumnSpec::new("joined", ColumnType::Date).import_enabled(true),
        ColumnSpec::new("extra", ColumnType::Json).import_enabled(true),
        ColumnSpec::new("secret", ColumnType::Integer),
        ColumnSpec::new("region", string(20))
            .import_enabled(true)
            .required(true),
    ];
    for s in &specs {
        ws.declare_column(s.clone())?;
    }
    assert_eq!(ws.columns()?, specs);
    // Defaults of a plain declaration.
    let secret = &ws.columns()?[6];
    assert!(!secret.import_enabled);
    assert!(!secret.required);
    Ok(())
}

// R3: declarations that break the naming rules are refused.
#[test]
fn invalid_declarations_refused() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let long = "a".repeat(64);
    for bad in [
        "",
        "Tier",
        "1tier",
        "_tier",
        "ti-er",
        "tier!",
        "email",
        "contact_key",
        "new_contact_key",
        "identifier",
        "phone_number",
        "first_name",
        "version",
        "aliases",
        "created_at",
        long.as_str(),
    ] {
        let got = ws.declare_column(ColumnSpec::new(bad, ColumnType::Integer));
        assert_eq!(error_kind(&got), "invalid_argument", "{bad:?}: {got:?}");
    }
    let got = ws.declare_column(ColumnSpec::new("s", string(0)));
    assert_eq!(error_kind(&got), "invalid_argument", "{got:?}");
    assert!(ws.columns()?.is_empty());
    ws.declare_column(ColumnSpec::new("a".repeat(63), ColumnType::Integer))?;
    ws.declare_column(ColumnSpec::new("x9_", ColumnType::Integer))?;
    assert_eq!(ws.columns()?.len(), 2);
    Ok(())
}

// R3: values of every custom type are normalized and stored.
#[test]
fn custom_values_stored() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("note", string(5)).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("score", ColumnType::Decimal).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("vip", ColumnType::Boolean).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("joined", ColumnType::Date).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("extra", ColumnType::Json).import_enabled(true))?;
    let rep = upsert(
        &ws,
        json!([
            {"contact_key": "a", "tier": 3, "note": " ñandú ", "score": "+007.50",
             "vip": "yes", "joined": "2024-02-29", "extra": {"z": 1, "a": [true]}},
            {"contact_key": "b", "tier": "-42", "note": 12, "score": -0.0, "vip": 0, "extra": "text"},
            {"contact_key": "c", "Tier": "+7", "SCORE": "-0012.340"},
        ]),
    )?;
    assert_eq!(rep.status, Status::Applied, "{:?}", errors(&rep));
    assert_eq!(
        read(
            &ws,
            "a",
            &["tier", "note", "score", "vip", "joined", "extra"]
        )?,
        [
            json!(3),
            json!("ñandú"),
            json!(7.5),
            json!(true),
            json!("2024-02-29"),
            json!({"a": [true], "z": 1})
        ]
    );
    assert_eq!(
        read(
            &ws,
            "b",
            &["tier", "note", "score", "vip", "extra", "joined"]
        )?,
        [
            json!(-42),
            json!("12"),
            json!(0),
            json!(false),
            json!("text"),
            json!(null)
        ]
    );
    let c = must_get(&ws, "c")?;
    assert_eq!(col(&c, "tier"), json!(7));
    assert_eq!(col(&c, "score"), json!(-12.34));

    // Same values in another notation are unchanged (canonical comparison, R13).
    let rep = upsert(
        &ws,
        json!({"contact_key": "c", "tier": 7, "score": "-12.34000"}),
    )?;
    assert_eq!(outcomes(&rep), [Unchanged]);
    assert_clean(&db)?;
    Ok(())
}

// R3, R5: a column that is not import-enabled may not appear in a request.
#[test]
fn not_import_enabled_is_request_error() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("secret", ColumnType::Integer))?;
    let res = upsert(
        &ws,
        json!([{"contact_key": "ok"}, {"contact_key": "k", "secret": 1}]),
    );
    assert_eq!(request_code(res), "column_not_import_enabled");
    // Also when listed in `columns` only.
    let r = req(Mode::Upsert, json!({"contact_key": "ok"})).listing(&["SECRET"]);
    assert_eq!(request_code(ws.bulk(&r)), "column_not_import_enabled");
    assert_eq!(ws.count()?, 0);

    // Enabling it later (a flag change) makes it usable.
    ws.declare_column(ColumnSpec::new("secret", ColumnType::Integer).import_enabled(true))?;
    seed(&ws, json!({"contact_key": "k", "secret": 1}))?;
    assert_eq!(col(&must_get(&ws, "k")?, "secret"), json!(1));
    // And disabling it again refuses it again, keeping the stored value.
    ws.declare_column(ColumnSpec::new("secret", ColumnType::Integer))?;
    assert_eq!(
        request_code(upsert(&ws, json!({"contact_key": "k", "secret": 2}))),
        "column_not_import_enabled"
    );
    assert_eq!(col(&must_get(&ws, "k")?, "secret"), json!(1));
    Ok(())
}

// R3: a required column must have a value on insert; clearing it is refused.
#[test]
fn required_columns() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "old"}))?;
    ws.declare_column(
        ColumnSpec::new("region", string(20))
            .import_enabled(true)
            .required(true),
    )?;
    let rep = ws.bulk(&skip(
        Mode::Upsert,
        json!([
            {"contact_key": "n1", "name": "no region"},
            {"contact_key": "n2", "region": null},
            {"contact_key": "n3", "region": "  "},
            {"contact_key": "n4", "region": "EU"},
            // An update that does not mention the column is fine (declared later).
            {"contact_key": "old", "name": "Old"},
            // An update that clears it fails.
            {"contact_key": "n4", "region": ""},
        ]),
    ))?;
    let s = |c: &str| Some(c.to_owned());
    assert_eq!(
        errors(&rep),
        vec![
            (0, s("region"), "required_missing"),
            (1, s("region"), "required_missing"),
            (2, s("region"), "required_missing"),
            (5, s("region"), "required_missing"),
        ]
    );
    assert_eq!(
        outcomes(&rep),
        [Failed, Failed, Failed, Inserted, Updated, Failed]
    );
    // required_missing is found at match time: a failure, not `invalid`.
    assert_eq!(rep.summary.invalid, 0);
    assert_eq!(rep.summary.valid, 6);
    assert_eq!(rep.summary.failed, 4);
    assert_eq!(rep.status, Status::Partial);
    assert!(ws.get("n1")?.is_none());
    assert_eq!(col(&must_get(&ws, "n4")?, "region"), json!("EU"));
    assert_eq!(col(&must_get(&ws, "old")?, "name"), json!("Old"));
    assert_eq!(col(&must_get(&ws, "old")?, "region"), json!(null));

    // Under empty_values=ignore, an empty value of a required column on update is
    // ignored rather than clearing it.
    let r = req(Mode::Update, json!({"contact_key": "n4", "region": ""})).ignoring_empty();
    assert_eq!(outcomes(&ws.bulk(&r)?), [Unchanged]);
    Ok(())
}

// R3: a type change is refused while any contact has a value, allowed when none has.
#[test]
fn type_change_rules() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    ws.declare_column(ColumnSpec::new("unused", ColumnType::Integer).import_enabled(true))?;
    seed(
        &ws,
        json!([{"contact_key": "a", "tier": 1}, {"contact_key": "b"}]),
    )?;

    // No contact has `unused`: its type may change.
    ws.declare_column(ColumnSpec::new("unused", string(8)).import_enabled(true))?;
    assert_eq!(ws.columns()?[1].ty, string(8));

    // `a` has a tier: refused, and the declaration stays.
    let got = ws.declare_column(ColumnSpec::new("tier", string(8)).import_enabled(true));
    assert_eq!(error_kind(&got), "invalid_argument", "{got:?}");
    assert_eq!(ws.columns()?[0].ty, ColumnType::Integer);
    assert_eq!(col(&must_get(&ws, "a")?, "tier"), json!(1));

    // A flag change with the same type is not a type change.
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;

    // Once the value is cleared, the type may change.
    let rep = upsert(&ws, json!({"contact_key": "a", "tier": null}))?;
    assert_eq!(outcomes(&rep), [Updated]);
    ws.declare_column(ColumnSpec::new("tier", string(8)).import_enabled(true))?;
    assert_eq!(ws.columns()?[0].ty, string(8));
    seed(&ws, json!({"contact_key": "a", "tier": "gold"}))?;
    assert_eq!(col(&must_get(&ws, "a")?, "tier"), json!("gold"));
    assert_clean(&db)?;
    Ok(())
}

// R3: a type change is judged per workspace: a value in another workspace does not
// block it, and catalogs are per workspace.
#[test]
fn columns_are_per_workspace() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    db.create_workspace("other")?;
    let other = db.workspace("other")?;
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    assert!(other.columns()?.is_empty());
    assert_eq!(
        request_code(upsert(&other, json!({"contact_key": "k", "tier": 1}))),
        "unknown_column"
    );
    other.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    seed(&other, json!({"contact_key": "k", "tier": 1}))?;
    // default has no value for tier: its type may change although `other` has one.
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Boolean).import_enabled(true))?;
    assert_eq!(ws.columns()?[0].ty, ColumnType::Boolean);
    assert_eq!(other.columns()?[0].ty, ColumnType::Integer);
    Ok(())
}

// R3: declarations and custom values survive close and reopen.
#[test]
fn declarations_survive_reopen() -> TestResult {
    let (_dir, path) = temp_path()?;
    let specs = vec![
        ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true),
        ColumnSpec::new("region", string(20))
            .import_enabled(true)
            .required(true),
        ColumnSpec::new("secret", ColumnType::Json),
    ];
    {
        let (_db, ws) = open_default(&path)?;
        for s in &specs {
            ws.declare_column(s.clone())?;
        }
        seed(&ws, json!({"contact_key": "k", "tier": 9, "region": "EU"}))?;
    }
    let (db, ws) = open_default(&path)?;
    assert_eq!(ws.columns()?, specs);
    let k = must_get(&ws, "k")?;
    assert_eq!(col(&k, "tier"), json!(9));
    assert_eq!(col(&k, "region"), json!("EU"));
    // The flags still apply after reopen.
    let rep = upsert(&ws, json!({"contact_key": "new"}))?;
    assert_eq!(
        errors(&rep),
        vec![(0, Some("region".to_owned()), "required_missing")]
    );
    assert_eq!(
        request_code(upsert(&ws, json!({"contact_key": "k", "secret": 1}))),
        "column_not_import_enabled"
    );
    // And the type-change rule.
    let got = ws.declare_column(ColumnSpec::new("tier", ColumnType::Boolean));
    assert_eq!(error_kind(&got), "invalid_argument", "{got:?}");
    assert_clean(&db)?;
    Ok(())
}
