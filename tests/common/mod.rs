//! Shared helpers of the behaviour tests: opening a fresh database, building
//! requests, and reading reports compactly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use contactdb::{
    BulkError, BulkRequest, Contact, Database, EmptyValues, MatchOn, MatchedBy, Mode, OnDuplicate,
    OnInvalid, Outcome, Report, Workspace,
};
use serde_json::Value;

/// What every test returns.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What a helper that may fail returns.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A temporary database and one of its workspaces (keep the [`Scratch`] alive).
pub type Fixture = (Scratch, Database, Workspace);

#[path = "../../crates/pg/tests/common/mod.rs"]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]
mod pgdb;

/// The variable that runs the behaviour tests on PostgreSQL: with
/// `CONTACTDB_TEST_BACKEND=postgres` (and `CONTACTDB_TEST_PG_URL` naming a
/// cluster) every fresh database is a new PostgreSQL database of that cluster.
pub const BACKEND_VAR: &str = "CONTACTDB_TEST_BACKEND";

/// Whether fresh databases are PostgreSQL ones.
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_VAR).is_ok_and(|v| v == "postgres")
}

/// Where a fresh database lives: a temporary directory, and with PostgreSQL the
/// database created for it (dropped with it).
pub struct Scratch {
    dir: tempfile::TempDir,
    pg: Option<pgdb::TestDb>,
}

impl Scratch {
    /// A new scratch place.
    pub fn new() -> Res<Scratch> {
        let pg = if on_postgres() {
            Some(pgdb::TestDb::new("b").ok_or("CONTACTDB_TEST_PG_URL is not set")?)
        } else {
            None
        };
        Ok(Scratch {
            dir: tempfile::tempdir()?,
            pg,
        })
    }

    /// The temporary directory (for files a test writes beside the database).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// What to open: the PostgreSQL URL, or a file `name` in the directory.
    pub fn db(&self, name: &str) -> PathBuf {
        match &self.pg {
            Some(db) => PathBuf::from(&db.url),
            None => self.dir.path().join(name),
        }
    }
}

/// Matching by key and email.
pub const EMAIL: MatchOn = MatchOn {
    email: true,
    phone: false,
};

/// Matching by key and phone.
pub const PHONE: MatchOn = MatchOn {
    email: false,
    phone: true,
};

/// The records of a request: a `Vec` of records, a JSON array of records, or one
/// JSON object (a request of one record).
pub trait Records {
    /// The records, in order.
    fn records(self) -> Vec<Value>;
}

impl Records for Vec<Value> {
    fn records(self) -> Vec<Value> {
        self
    }
}

impl Records for Value {
    fn records(self) -> Vec<Value> {
        match self {
            Value::Array(items) => items,
            one => vec![one],
        }
    }
}

/// Options of a request, set in a chain: `req(mode, records).skipping().matching(EMAIL)`.
pub trait RequestExt: Sized {
    /// `on_invalid=skip`.
    fn skipping(self) -> Self;
    /// This `match_on`.
    fn matching(self, on: MatchOn) -> Self;
    /// This `on_duplicate`.
    fn on_dup(self, policy: OnDuplicate) -> Self;
    /// This `request_id`.
    fn with_id(self, id: &str) -> Self;
    /// The campaign the request's contacts join.
    fn in_campaign(self, name: &str) -> Self;
    /// `empty_values=ignore`.
    fn ignoring_empty(self) -> Self;
    /// This `columns` list.
    fn listing(self, columns: &[&str]) -> Self;
}

impl RequestExt for BulkRequest {
    fn skipping(mut self) -> Self {
        self.on_invalid = OnInvalid::Skip;
        self
    }
    fn matching(mut self, on: MatchOn) -> Self {
        self.match_on = on;
        self
    }
    fn on_dup(mut self, policy: OnDuplicate) -> Self {
        self.on_duplicate = policy;
        self
    }
    fn with_id(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_owned());
        self
    }
    fn in_campaign(mut self, name: &str) -> Self {
        self.campaign = Some(name.to_owned());
        self
    }
    fn ignoring_empty(mut self) -> Self {
        self.empty_values = EmptyValues::Ignore;
        self
    }
    fn listing(mut self, columns: &[&str]) -> Self {
        self.columns = Some(columns.iter().map(|c| (*c).to_owned()).collect());
        self
    }
}

/// A fresh database (keep the [`Scratch`] alive): a file in a temporary
/// directory, or a PostgreSQL database (see [`BACKEND_VAR`]).
pub fn fresh() -> Result<(Scratch, Database), Box<dyn std::error::Error>> {
    let scratch = Scratch::new()?;
    let db = Database::open(scratch.db("contacts.redb"))?;
    Ok((scratch, db))
}

/// A fresh database and its `default` workspace.
pub fn fresh_ws() -> Res<Fixture> {
    let (dir, db) = fresh()?;
    let ws = db.workspace("default")?;
    Ok((dir, db, ws))
}

/// A fresh database whose `default` workspace holds `records` (upserted, applied).
pub fn seeded(records: impl Records) -> Res<Fixture> {
    let (dir, db, ws) = fresh_ws()?;
    seed(&ws, records)?;
    Ok((dir, db, ws))
}

/// A temporary directory and the path of a database file in it (not created yet).
pub fn temp_path() -> Res<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("c.redb");
    Ok((dir, path))
}

/// Opens the database at `path` and its `default` workspace.
pub fn open_default(path: &Path) -> Res<(Database, Workspace)> {
    let db = Database::open(path)?;
    let ws = db.workspace("default")?;
    Ok((db, ws))
}

/// A request with default options.
pub fn req(mode: Mode, records: impl Records) -> BulkRequest {
    BulkRequest::new(mode, records.records())
}

/// A request with `on_invalid=skip`.
pub fn skip(mode: Mode, records: impl Records) -> BulkRequest {
    req(mode, records).skipping()
}

/// A request matching on key, email and phone.
pub fn match_all(mode: Mode, records: impl Records) -> BulkRequest {
    req(mode, records).matching(MatchOn::ALL)
}

/// A request with this duplicate policy.
pub fn dup(mode: Mode, policy: OnDuplicate, records: impl Records) -> BulkRequest {
    req(mode, records).on_dup(policy)
}

/// Sends a request of `records` with default options.
pub fn bulk(ws: &Workspace, mode: Mode, records: impl Records) -> Result<Report, BulkError> {
    ws.bulk(&req(mode, records))
}

/// Upserts records with default options; the request must be accepted.
pub fn upsert(ws: &Workspace, records: impl Records) -> Result<Report, BulkError> {
    ws.bulk(&req(Mode::Upsert, records))
}

/// Upserts and asserts the request was applied.
pub fn seed(ws: &Workspace, records: impl Records) -> Result<Report, Box<dyn std::error::Error>> {
    let r = upsert(ws, records)?;
    assert_eq!(
        r.status,
        contactdb::Status::Applied,
        "seed not applied: {r:#?}"
    );
    Ok(r)
}

/// Gives the contact that has `email` the alias `alias` (an update matched by
/// email) and checks that it did.
pub fn add_alias(ws: &Workspace, alias: &str, email: &str) -> TestResult {
    let record = serde_json::json!({"contact_key": alias, "email": email});
    let rep = ws.bulk(&match_all(Mode::Update, record))?;
    assert_eq!(outcomes(&rep), [Outcome::Updated], "alias {alias}: {rep:?}");
    Ok(())
}

/// The outcome of every record.
pub fn outcomes(r: &Report) -> Vec<Outcome> {
    r.results.iter().map(|x| x.outcome).collect()
}

/// How every record was matched.
pub fn matched(r: &Report) -> Vec<Option<MatchedBy>> {
    r.results.iter().map(|x| x.matched_by).collect()
}

/// The code of every error, in order.
pub fn codes(r: &Report) -> Vec<&'static str> {
    r.errors.iter().map(|e| e.code.as_str()).collect()
}

/// The keys of these contacts, in order.
pub fn keys_of(contacts: Vec<Contact>) -> Vec<String> {
    contacts.into_iter().map(|c| c.key).collect()
}

/// The keys of the contacts with this email.
pub fn by_email(ws: &Workspace, email: &str) -> Result<Vec<String>, contactdb::Error> {
    Ok(keys_of(ws.find_by_email(email)?))
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

/// Fields of the contact with this key or alias, in the order asked: a column's
/// value (`Value::Null` when unset), or `version`, `key` or `aliases`.
pub fn read(ws: &Workspace, key: &str, names: &[&str]) -> Res<Vec<Value>> {
    let c = must_get(ws, key)?;
    Ok(names
        .iter()
        .map(|n| match *n {
            "version" => Value::from(c.version),
            "key" => Value::from(c.key.clone()),
            "aliases" => Value::from(c.aliases.clone()),
            column => col(&c, column),
        })
        .collect())
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
pub fn request_code<E: Into<contactdb::Error>>(res: Result<Report, E>) -> String {
    match res.map_err(Into::into) {
        Err(contactdb::Error::Request(e)) => e.code().to_owned(),
        Err(other) => format!("other error: {other:?}"),
        Ok(r) => format!("accepted with status {:?}", r.status),
    }
}

/// The code and text of a request-level error; anything else is an error of the
/// test that names what came back.
pub fn refused<E: Into<contactdb::Error>>(res: Result<Report, E>) -> Res<(&'static str, String)> {
    match res.map_err(Into::into) {
        Err(contactdb::Error::Request(e)) => Ok((e.code(), e.to_string())),
        Err(other) => Err(format!("expected a request error, got {other:?}").into()),
        Ok(r) => Err(format!("expected a request error, got a report: {r:?}").into()),
    }
}

/// What a call gave, as (kind, text): the kind of error in snake_case
/// (`invalid_argument`, `busy`, `no_such_workspace`, `invalid_slug`,
/// `already_open`, `read_only`, `no_database`, `request`, ...) and its text, or `ok`
/// and the value. The tests name error variants through this one function.
pub fn failure<T: std::fmt::Debug, E: Kind>(res: &Result<T, E>) -> (&'static str, String) {
    match res {
        Ok(v) => ("ok", format!("{v:?}")),
        Err(e) => (e.kind(), e.to_string()),
    }
}

/// The kind of error a call gave (see [`failure`]), or `ok`.
pub fn error_kind<T: std::fmt::Debug, E: Kind>(res: &Result<T, E>) -> &'static str {
    failure(res).0
}

/// An error of the facade, named in snake_case.
pub trait Kind: std::fmt::Display {
    /// The variant's name.
    fn kind(&self) -> &'static str;
}

impl Kind for contactdb::StorageError {
    fn kind(&self) -> &'static str {
        use contactdb::StorageError as S;
        match self {
            S::Damaged { .. } => "damaged",
            S::Io { .. } => "storage",
            S::Internal { .. } => "internal",
            _ => "other",
        }
    }
}

impl Kind for contactdb::OpenError {
    fn kind(&self) -> &'static str {
        use contactdb::OpenError as O;
        match self {
            O::AlreadyOpen { .. } => "already_open",
            O::NotFound { .. } => "no_database",
            O::NotContactdb { .. } => "not_contactdb",
            O::UnsupportedFormat { .. } => "unsupported_format",
            O::NeedsRecovery => "needs_recovery",
            O::DestinationExists { .. } => "destination_exists",
            O::Storage(s) => s.kind(),
            _ => "other",
        }
    }
}

impl Kind for contactdb::WorkspaceError {
    fn kind(&self) -> &'static str {
        use contactdb::WorkspaceError as W;
        match self {
            W::NotFound { .. } => "no_such_workspace",
            W::InvalidSlug { .. } => "invalid_slug",
            W::Exists { .. } => "workspace_exists",
            W::ReadOnly => "read_only",
            W::Storage(s) => s.kind(),
            _ => "other",
        }
    }
}

impl Kind for contactdb::BulkError {
    fn kind(&self) -> &'static str {
        use contactdb::BulkError as B;
        match self {
            B::Request(_) => "request",
            B::Busy => "busy",
            B::ReadOnly => "read_only",
            B::RequestIdInTransaction => "request_id_in_transaction",
            B::Storage(s) => s.kind(),
            _ => "other",
        }
    }
}

impl Kind for contactdb::Error {
    fn kind(&self) -> &'static str {
        use contactdb::Error as E;
        match self {
            E::Request(_) => "request",
            E::Busy => "busy",
            E::InvalidArgument(_) => "invalid_argument",
            E::Open(o) => o.kind(),
            E::Workspace(w) => w.kind(),
            E::ReadOnly => "read_only",
            E::Storage(s) => s.kind(),
            _ => "other",
        }
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
