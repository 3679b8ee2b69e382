//! Shared helpers of the behaviour tests: opening a fresh database, building
//! requests, and reading reports compactly.
#![allow(dead_code)]

use contactdb::{
    BulkRequest, Contact, Database, MatchOn, Mode, OnDuplicate, OnInvalid, Outcome, Report,
    Workspace,
};
use serde_json::Value;

/// What every test returns.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A fresh database in a temporary directory (keep the `TempDir` alive).
pub fn fresh() -> Result<(tempfile::TempDir, Database), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().join("contacts.redb"))?;
    Ok((dir, db))
}

/// A fresh database and its `default` workspace.
pub fn fresh_ws() -> Result<(tempfile::TempDir, Database, Workspace), Box<dyn std::error::Error>> {
    let (dir, db) = fresh()?;
    let ws = db.workspace("default")?;
    Ok((dir, db, ws))
}

/// A request with default options.
pub fn req(mode: Mode, records: Vec<Value>) -> BulkRequest {
    BulkRequest::new(mode, records)
}

/// A request with `on_invalid=skip`.
pub fn skip(mode: Mode, records: Vec<Value>) -> BulkRequest {
    let mut r = BulkRequest::new(mode, records);
    r.on_invalid = OnInvalid::Skip;
    r
}

/// A request matching on key, email and phone.
pub fn match_all(mode: Mode, records: Vec<Value>) -> BulkRequest {
    let mut r = BulkRequest::new(mode, records);
    r.match_on = MatchOn::ALL;
    r
}

/// A request with this duplicate policy.
pub fn dup(mode: Mode, policy: OnDuplicate, records: Vec<Value>) -> BulkRequest {
    let mut r = BulkRequest::new(mode, records);
    r.on_duplicate = policy;
    r
}

/// Upserts records with default options; the request must be accepted.
pub fn upsert(ws: &Workspace, records: Vec<Value>) -> Result<Report, contactdb::BulkError> {
    ws.bulk(&req(Mode::Upsert, records))
}

/// Upserts and asserts the request was applied.
pub fn seed(ws: &Workspace, records: Vec<Value>) -> Result<Report, Box<dyn std::error::Error>> {
    let r = upsert(ws, records)?;
    assert_eq!(
        r.status,
        contactdb::Status::Applied,
        "seed not applied: {r:#?}"
    );
    Ok(r)
}

/// The outcome of every record.
pub fn outcomes(r: &Report) -> Vec<Outcome> {
    r.results.iter().map(|x| x.outcome).collect()
}

/// Every error as (index, column, code).
pub fn errors(r: &Report) -> Vec<(u32, Option<String>, &'static str)> {
    r.errors
        .iter()
        .map(|e| {
            (
                e.index,
                e.column.as_deref().map(str::to_owned),
                e.code.as_str(),
            )
        })
        .collect()
}

/// Every warning as (index, column, code as snake_case text).
pub fn warnings(r: &Report) -> Vec<(u32, Option<String>, String)> {
    r.warnings
        .iter()
        .map(|w| {
            (
                w.index,
                w.column.as_deref().map(str::to_owned),
                code_text(&w.code),
            )
        })
        .collect()
}

/// A serde enum's snake_case text.
pub fn code_text<T: serde::Serialize>(code: &T) -> String {
    match serde_json::to_value(code) {
        Ok(Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// The contact with this key or alias; panics in the test if it is missing.
pub fn must_get(ws: &Workspace, key: &str) -> Result<Contact, Box<dyn std::error::Error>> {
    ws.get(key)?
        .ok_or_else(|| format!("contact {key:?} should exist").into())
}

/// A column of a contact, `Value::Null` when unset.
pub fn col(c: &Contact, name: &str) -> Value {
    c.columns.get(name).cloned().unwrap_or(Value::Null)
}

/// Asserts `db.check()` finds nothing.
pub fn assert_clean(db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    let problems = db.check()?;
    assert!(problems.is_empty(), "check found problems: {problems:?}");
    Ok(())
}

/// Every contact as (key, version), in key order.
pub fn versions(ws: &Workspace) -> Result<Vec<(String, u64)>, contactdb::Error> {
    Ok(ws
        .contacts()?
        .into_iter()
        .map(|c| (c.key, c.version))
        .collect())
}

/// The code of a request-level error, or a description of what came back instead.
pub fn request_code(res: Result<Report, contactdb::BulkError>) -> String {
    match res {
        Err(contactdb::BulkError::Request(e)) => e.code().to_owned(),
        Err(other) => format!("other error: {other:?}"),
        Ok(r) => format!("accepted with status {:?}", r.status),
    }
}

/// The value of a call a test helper cannot go on without: an error fails the test
/// with the error's text, at the caller's line.
#[track_caller]
#[allow(clippy::panic)]
pub fn expect_ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

/// The value of an `Option` a test helper cannot go on without.
#[track_caller]
#[allow(clippy::panic)]
pub fn expect_some<T>(o: Option<T>, what: &str) -> T {
    match o {
        Some(v) => v,
        None => panic!("{what} is missing"),
    }
}

/// A report's summary as `(total, valid, invalid, inserted, updated, unchanged,
/// failed, batches)`, to compare with one tuple.
pub fn counts(r: &Report) -> (u64, u64, u64, u64, u64, u64, u64, u64) {
    let s = &r.summary;
    (
        s.total,
        s.valid,
        s.invalid,
        s.inserted,
        s.updated,
        s.unchanged,
        s.failed,
        s.batches,
    )
}
