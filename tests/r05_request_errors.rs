//! R4, R5: request options and request-level errors — every one rejects the whole
//! request with one code before anything is written; the records limit is
//! configurable.

mod common;

use common::*;
use contactdb::{BulkRequest, ColumnSpec, ColumnType, Database, Mode, Status, Workspace};
use serde_json::{Value, json};

/// Parses `request` (JSON as a caller sends it), sends it, and checks it is the
/// request-level error `code` and that the workspace is exactly as before.
fn check(ws: &Workspace, request: Value, code: &str) {
    let shown = request.to_string();
    let req: BulkRequest = expect_ok(serde_json::from_value(request));
    let before = expect_ok(versions(ws));
    let got = ws.bulk(&req);
    assert_eq!(request_code(got), code, "request {shown}");
    assert_eq!(
        expect_ok(versions(ws)),
        before,
        "request {shown} wrote something"
    );
    // try_bulk reports the same error.
    assert_eq!(request_code(ws.try_bulk(&req)), code, "try_bulk {shown}");
}

fn ok() -> Value {
    json!({"contact_key": "new-1", "name": "valid"})
}

// R5: every request-level error, each with a valid record next to it that must not
// be written.
#[test]
fn request_level_errors_table() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "old", "name": "Old"}))?;
    ws.declare_column(ColumnSpec::new("secret", ColumnType::Integer))?;
    let upd = json!({"contact_key": "old", "name": "changed"});
    // An upsert of `ok()` and then `record`.
    let after_ok = |record: Value| json!({"mode": "upsert", "records": [ok(), record]});
    // An upsert of `ok()` with this `columns` list.
    let listing = |columns: Value| json!({"mode": "upsert", "columns": columns, "records": [ok()]});
    let with_id = |id: Value| json!({"mode": "upsert", "request_id": id, "records": [ok()]});
    let table: Vec<(Value, &str)> = vec![
        (json!({"mode": "upsert", "records": []}), "no_records"),
        (
            json!({"mode": "upsert", "records": [ok(), upd, {"nope": 1}]}),
            "unknown_column",
        ),
        (
            after_ok(json!({"contact_key": "x", "": 1})),
            "unknown_column",
        ),
        (
            after_ok(json!({"contact_key": "x", "nämé": 1})),
            "unknown_column",
        ),
        (listing(json!(["bogus"])), "unknown_column"),
        (
            after_ok(json!({"contact_key": "x", "secret": 1})),
            "column_not_import_enabled",
        ),
        (
            after_ok(json!({"contact_key": "old", "version": 3})),
            "read_only_column",
        ),
        (
            after_ok(json!({"contact_key": "old", "aliases": []})),
            "read_only_column",
        ),
        (
            after_ok(json!({"contact_key": "old", "created_at": "x"})),
            "read_only_column",
        ),
        (
            after_ok(json!({"contact_key": "old", "updatedAt": "x"})),
            "read_only_column",
        ),
        (listing(json!(["email", "EMAIL"])), "column_listed_twice"),
        (
            listing(json!(["gsm", "phoneNumber"])),
            "column_listed_twice",
        ),
        (
            listing(json!(["contact_key", "identifier"])),
            "column_listed_twice",
        ),
        (
            after_ok(json!({"contact_key": "old", "new_contact_key": "x"})),
            "new_key_not_allowed",
        ),
        (
            json!({"mode": "insert", "records": [ok(), {"contact_key": "old", "new_contact_key": "x"}]}),
            "new_key_not_allowed",
        ),
        (
            json!({"mode": "upsert", "columns": ["name"], "records": [ok(), {"contact_key": "x", "email": "a@b.co"}]}),
            "column_not_in_list",
        ),
        (
            after_ok(json!({"identifier": "x", "contact_key": "x"})),
            "record_column_twice",
        ),
        (
            after_ok(json!({"contact_key": "x", "first_name": "a", "name": "b"})),
            "record_column_twice",
        ),
        (
            after_ok(
                json!({"contact_key": "x", "phone_number": "+905551234567", "phoneNumber": "+905551234567"}),
            ),
            "record_column_twice",
        ),
        (after_ok(json!([1, 2])), "record_not_object"),
        (after_ok(json!("k")), "record_not_object"),
        (after_ok(json!(null)), "record_not_object"),
        (after_ok(json!(7)), "record_not_object"),
        (with_id(json!("")), "invalid_request_id"),
        (with_id(json!("a\nb")), "invalid_request_id"),
        (with_id(json!("r".repeat(256))), "invalid_request_id"),
    ];
    for (request, code) in table {
        check(&ws, request, code);
    }
    assert_eq!(ws.count()?, 1);
    assert_eq!(col(&must_get(&ws, "old")?, "name"), json!("Old"));
    assert_clean(&db)?;
    Ok(())
}

// R5: the error names the problem: the column and the record index.
#[test]
fn request_errors_name_the_problem() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let (code, text) = refused(upsert(
        &ws,
        vec![ok(), json!({"contact_key": "x", "nope": 1})],
    ))?;
    assert_eq!(code, "unknown_column");
    assert!(text.contains("nope"), "{text}");
    let recs = vec![ok(), ok(), json!({"contact_key": "x", "email": "a@b.co"})];
    let (code, text) = refused(ws.bulk(&req(Mode::Upsert, recs).listing(&["name"])))?;
    assert_eq!(code, "column_not_in_list");
    assert!(text.contains('2') && text.contains("email"), "{text}");
    Ok(())
}

// R4: `columns` may name contact_key (implied) and lets records omit listed columns.
#[test]
fn columns_list_is_accepted() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let recs = json!([
        {"contact_key": "a", "name": "A", "email": "a@x.co"},
        {"contact_key": "b"},
        {"identifier": "c", "Name": "C"},
    ]);
    let rep = ws.bulk(&req(Mode::Upsert, recs).listing(&["contact_key", "name", "Email"]))?;
    assert_eq!(rep.status, Status::Applied, "{:?}", errors(&rep));
    assert_eq!(ws.count()?, 3);
    assert_eq!(col(&must_get(&ws, "c")?, "name"), json!("C"));
    Ok(())
}

// R4: the request's JSON names and defaults (the seed name contactDatas is accepted).
#[test]
fn request_json_names_and_defaults() -> TestResult {
    let r: BulkRequest = serde_json::from_value(json!({
        "mode": "update", "contactDatas": [{"contact_key": "a"}]
    }))?;
    assert_eq!(r.mode, Mode::Update);
    assert_eq!(r.records.len(), 1);
    assert_eq!(r.match_on, contactdb::MatchOn::KEY);
    assert_eq!(r.on_invalid, contactdb::OnInvalid::Abort);
    assert_eq!(r.on_duplicate, contactdb::OnDuplicate::Merge);
    assert_eq!(r.empty_values, contactdb::EmptyValues::Clear);
    assert_eq!(r.request_id, None);
    assert_eq!(r.columns, None);
    let r: BulkRequest = serde_json::from_value(json!({
        "mode": "upsert", "match_on": ["phone", "email"], "on_invalid": "skip",
        "on_duplicate": "last", "empty_values": "ignore", "request_id": "r1",
        "columns": ["name"], "records": [{}]
    }))?;
    assert_eq!(r.match_on, contactdb::MatchOn::ALL);
    assert_eq!(r.on_invalid, contactdb::OnInvalid::Skip);
    assert_eq!(r.on_duplicate, contactdb::OnDuplicate::Last);
    assert_eq!(r.empty_values, contactdb::EmptyValues::Ignore);
    let back = serde_json::to_value(&r)?;
    assert_eq!(back["match_on"], json!(["key", "email", "phone"]));
    Ok(())
}

// R4: records_max is configurable; the default is 10,000.
#[test]
fn records_max_configurable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let recs = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"contact_key": format!("k{i}")}))
            .collect()
    };
    {
        let db = Database::builder()
            .records_max(3)
            .open(dir.path().join("a.redb"))?;
        let ws = db.workspace("default")?;
        assert_eq!(request_code(upsert(&ws, recs(4))), "too_many_records");
        assert_eq!(ws.count()?, 0);
        assert_eq!(upsert(&ws, recs(3))?.summary.inserted, 3);
        let (code, t) = refused(upsert(&ws, recs(5)))?;
        assert_eq!(code, "too_many_records");
        assert!(t.contains('5') && t.contains('3'), "{t}");
    }
    let db = Database::open(dir.path().join("b.redb"))?;
    let ws = db.workspace("default")?;
    assert_eq!(
        request_code(bulk(&ws, Mode::Insert, recs(10_001))),
        "too_many_records"
    );
    assert_eq!(ws.count()?, 0);
    let rep = bulk(&ws, Mode::Insert, recs(10_000))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(rep.summary.inserted, 10_000);
    assert_eq!(ws.count()?, 10_000);
    Ok(())
}

// R5: a request error also leaves request ids unused (a later good request with the
// same id is applied, not a replay or a reuse error).
#[test]
fn request_error_stores_no_request_id() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let bad = req(Mode::Upsert, json!({"contact_key": "a", "nope": 1})).with_id("rid");
    assert_eq!(request_code(ws.bulk(&bad)), "unknown_column");
    let good = req(Mode::Upsert, json!({"contact_key": "a"})).with_id("rid");
    let rep = ws.bulk(&good)?;
    assert!(!rep.replayed);
    assert_eq!(rep.summary.inserted, 1);
    Ok(())
}

// R5: a request with several problems is refused with the first in the documented
// order: unknown column, not import-enabled, listed twice, new_contact_key outside
// update, column not in `columns`, record not an object.
#[test]
fn r05_several_problems_name_the_first_in_order() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("locked", ColumnType::Integer))?;
    let not_object = json!(7);
    let new_key = json!({"contact_key": "a", "new_contact_key": "b"});
    let not_listed = json!({"contact_key": "a", "surname": "S"});
    let twice = json!({"contact_key": "a", "gsm": "+905551112233", "phoneNumber": "+905551112233"});
    let locked = json!({"contact_key": "a", "locked": 1});
    let unknown = json!({"contact_key": "a", "nope": 1});
    let all = [
        &not_object,
        &new_key,
        &not_listed,
        &twice,
        &locked,
        &unknown,
    ];
    let body = |from: usize| {
        let records: Vec<&Value> = all.iter().skip(from).copied().collect();
        json!({"mode": "upsert", "columns": ["name", "new_contact_key", "gsm", "locked", "nope"], "records": records})
    };
    // `columns` names an unknown column too: it is met first.
    check(&ws, body(0), "unknown_column");
    let mut b = body(0);
    b["columns"] = json!(["name", "new_contact_key", "gsm", "locked"]);
    check(&ws, b.clone(), "unknown_column");
    b["records"] = json!([&not_object, &new_key, &not_listed, &twice, &locked]);
    check(&ws, b.clone(), "column_not_import_enabled");
    b["columns"] = json!(["name", "new_contact_key", "gsm"]);
    b["records"] = json!([&not_object, &new_key, &not_listed, &twice]);
    check(&ws, b.clone(), "record_column_twice");
    b["records"] = json!([&not_object, &new_key, &not_listed]);
    check(&ws, b.clone(), "new_key_not_allowed");
    b["columns"] = json!(["name", "gsm"]);
    b["records"] = json!([&not_object, &not_listed]);
    check(&ws, b.clone(), "column_not_in_list");
    b["records"] = json!([&not_object, ok()]);
    check(&ws, b.clone(), "record_not_object");
    // Listed twice in `columns` comes before the records' problems.
    b["columns"] = json!(["name", "first_name"]);
    check(&ws, b, "column_listed_twice");
    Ok(())
}

// R5 (null means absent): `"new_contact_key": null` in an upsert is no rename and no
// error; null request options take their defaults.
#[test]
fn r05_null_new_contact_key_in_upsert_is_absent() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let req: BulkRequest = serde_json::from_value(json!({
        "mode": "upsert",
        "match_on": null,
        "on_invalid": null,
        "on_duplicate": null,
        "empty_values": null,
        "request_id": null,
        "columns": null,
        "records": [{"contact_key": "a", "name": "A", "new_contact_key": null}]
    }))?;
    let rep = ws.bulk(&req)?;
    assert_eq!(rep.status, contactdb::Status::Applied);
    assert_eq!(col(&must_get(&ws, "a")?, "name"), json!("A"));
    // A non-null one is still refused.
    check(
        &ws,
        json!({"mode": "upsert", "records": [{"contact_key": "a", "new_contact_key": "b"}]}),
        "new_key_not_allowed",
    );
    // In update, null asks for no rename.
    let req: BulkRequest = serde_json::from_value(json!({
        "mode": "update",
        "records": [{"contact_key": "a", "name": "A2", "new_contact_key": null}]
    }))?;
    assert_eq!(ws.bulk(&req)?.status, contactdb::Status::Applied);
    assert_eq!(col(&must_get(&ws, "a")?, "name"), json!("A2"));
    Ok(())
}
