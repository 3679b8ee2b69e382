//! contactdb: an embedded master-contact store with an atomic, parallel bulk upsert
//! core.
//!
//! A [`Database`] is one local file holding workspaces (tenants); each
//! [`Workspace`] holds a master contact table. [`Workspace::bulk`] merges a batch of
//! records into it — insert, update or upsert, matched by key, email or phone —
//! validated in parallel, applied atomically, and reported record by record.
//!
//! ```
//! use contactdb::{BulkRequest, Database, MatchOn, Mode, Status};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path().join("contacts.redb"))?;
//! let ws = db.workspace("default")?;
//!
//! let mut req = BulkRequest::new(Mode::Upsert, vec![
//!     json!({"contact_key": "c-1", "email": " Ann@Example.COM ", "phoneNumber": "0090 555 123 45 67"}),
//!     json!({"identifier": "c-2", "name": "Bob", "email": "bob@example"}),
//! ]);
//! req.match_on = MatchOn::ALL;
//! req.on_invalid = contactdb::OnInvalid::Skip;
//! let report = ws.bulk(&req)?;
//! assert_eq!(report.status, Status::Partial);      // c-2's email is invalid
//! assert_eq!(report.summary.inserted, 1);
//!
//! let ann = ws.get("c-1")?.ok_or("c-1 was not inserted")?;
//! assert_eq!(ann.columns["email"], "ann@example.com");
//! assert_eq!(ann.columns["gsm"], "+905551234567");
//! assert_eq!(ann.columns["email_status"], "A");
//! # Ok(()) }
//! ```

/// The README's library example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

mod campaign;
mod contact;
mod database;
mod each;
mod error;
mod feed;
mod job;
mod key;
mod layered;
mod record;
mod snapshot;
mod txn;
mod workspace;

pub use campaign::{CAMPAIGN_NAME_MAX, Campaign, Member};
pub use contact::Contact;
pub use database::{
    BackupSummary, Builder, CACHE_SIZE_BYTES_DEFAULT, Database, FEED_RETENTION_DAYS_DEFAULT,
    Problem, REQUEST_ID_RETENTION_DAYS_DEFAULT, WorkspaceInfo, is_postgres_url,
};
pub use each::EachSummary;
pub use error::{BulkError, Error, OpenError, StorageError, WorkspaceError};
pub use feed::{Consumer, Event, EventKind, FEED_CHUNK_DEFAULT};
pub use job::{
    JOB_CHUNK_RECORDS_DEFAULT, JOB_LEASE_SECONDS_DEFAULT, JOB_RECORDS_MAX_DEFAULT, Job, JobState,
};
pub use key::{KeyInfo, Role};
pub use record::Record;
pub use snapshot::Snapshot;
pub use txn::Transaction;
pub use workspace::Workspace;

/// A bulk request: a mode, its options and the records. Build one with
/// [`BulkRequest::new`] and set the options you need, or read the JSON body of
/// the HTTP API (`contactDatas` is accepted for `records`).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, MatchOn, Mode};
/// let body = r#"{"mode": "upsert", "match_on": ["key", "email"],
///                "contactDatas": [{"identifier": "c-1", "email": "ann@example.com"}]}"#;
/// let req: BulkRequest = serde_json::from_str(body)?;
/// assert_eq!((req.mode, req.match_on), (Mode::Upsert, MatchOn { email: true, phone: false }));
/// assert_eq!(ws.bulk(&req)?.summary.inserted, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::BulkRequest;

/// The declaration of a custom column: its name, type, and whether bulk requests
/// may write it and inserts must give it. Declare it with
/// [`Workspace::declare_column`]; a column that is not `import_enabled` cannot be
/// written by a request.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkError, BulkRequest, ColumnSpec, ColumnType, Mode};
/// use serde_json::json;
/// let spec: ColumnSpec = serde_json::from_value(json!({"name": "tier", "type": "integer"}))?;
/// assert_eq!(spec, ColumnSpec::new("tier", ColumnType::Integer));
/// ws.declare_column(spec)?; // not import-enabled: requests may not write it
/// let req = BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "c-1", "tier": 2})]);
/// let Err(BulkError::Request(e)) = ws.bulk(&req) else { return Err("not refused".into()) };
/// assert_eq!(e.code(), "column_not_import_enabled");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::ColumnSpec;

/// The type of a custom column. It reads and writes as the `type` field of a
/// column declaration, and prints in short form (`string(40)`, `integer`).
///
/// ```
/// use contactdb::ColumnType;
/// use serde_json::json;
/// let notes = ColumnType::String { max_len: 40 };
/// assert_eq!(notes.to_string(), "string(40)");
/// assert_eq!(serde_json::to_value(notes)?, json!({"type": "string", "max_len": 40}));
/// let ty: ColumnType = serde_json::from_value(json!({"type": "decimal"}))?;
/// assert_eq!(ty, ColumnType::Decimal);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::ColumnType;

/// What `null` and empty strings in a record mean: `clear` (the default) empties
/// the stored value, `ignore` leaves it as it is.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, EmptyValues, Mode};
/// use serde_json::json;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "c-1", "name": "Ann"})]))?;
/// let mut req = BulkRequest::new(Mode::Update, vec![json!({"contact_key": "c-1", "name": null})]);
/// req.empty_values = EmptyValues::Ignore;
/// ws.bulk(&req)?;
/// assert_eq!(ws.get("c-1")?.ok_or("missing")?.columns["name"], json!("Ann"));
/// req.empty_values = EmptyValues::Clear;
/// ws.bulk(&req)?;
/// assert!(!ws.get("c-1")?.ok_or("missing")?.columns.contains_key("name"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::EmptyValues;

/// The stable code of a record's error in a [`Report`]: match on it, or compare
/// its snake_case text ([`ErrorCode::as_str`], also its JSON form).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, ErrorCode, Mode};
/// use serde_json::json;
/// let req = BulkRequest::new(Mode::Update, vec![json!({"contact_key": "nobody"})]);
/// let code = ws.bulk(&req)?.errors[0].code;
/// assert_eq!(code, ErrorCode::NotFound);
/// assert_eq!((code.as_str(), code.is_validation()), ("not_found", false));
/// assert_eq!(serde_json::to_value(ErrorCode::InvalidEmail)?, json!("invalid_email"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::ErrorCode;

/// One way of matching a record to a contact: `key` (always on), `email` or
/// `phone`. A [`MatchOn`] reads from and writes as a list of them.
///
/// ```
/// use contactdb::{MatchKey, MatchOn};
/// use serde_json::json;
/// assert_eq!(serde_json::to_value(MatchKey::Phone)?, json!("phone"));
/// let keys: Vec<MatchKey> = serde_json::from_value(json!(["key", "email"]))?;
/// assert_eq!(keys, [MatchKey::Key, MatchKey::Email]);
/// let on: MatchOn = serde_json::from_value(json!(keys))?;
/// assert!(on.email && !on.phone);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::MatchKey;

/// Which keys a request matches records by, besides the contact key: email,
/// phone, both ([`MatchOn::ALL`]) or neither ([`MatchOn::KEY`], the default). A
/// record that finds a contact by email or phone updates it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, MatchOn, Mode, Record};
/// use serde_json::json;
/// let existing = Record::new("c-1").email("ann@example.com");
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![existing.into()]))?;
/// let ann = Record::new("crm-7").email("ann@example.com");
/// let mut req = BulkRequest::new(Mode::Upsert, vec![ann.into()]);
/// req.match_on = MatchOn::ALL;
/// assert_eq!(serde_json::to_value(req.match_on)?, json!(["key", "email", "phone"]));
/// assert_eq!(ws.bulk(&req)?.summary.inserted, 0); // found c-1 by email
/// assert_eq!(ws.count()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::MatchOn;

/// How a record found its contact, in its [`RecordResult`]: by key, by an alias
/// of the contact, by email or by phone.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, MatchOn, MatchedBy, Mode, Record};
/// let existing = Record::new("c-1").phone("+905551234567");
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![existing.into()]))?;
/// let ann = Record::new("crm-7").phone("0090 555 123 45 67");
/// let mut req = BulkRequest::new(Mode::Upsert, vec![ann.into()]);
/// req.match_on = MatchOn::ALL;
/// let first = ws.bulk(&req)?;
/// assert_eq!(first.results[0].matched_by, Some(MatchedBy::Phone));
/// let again = ws.bulk(&req)?; // crm-7 is now an alias of c-1
/// assert_eq!(again.results[0].matched_by, Some(MatchedBy::Alias));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::MatchedBy;

/// What a request does with matched and unmatched records: `insert` creates only,
/// `update` changes only, `upsert` does both.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, Outcome};
/// use serde_json::json;
/// assert_eq!(serde_json::to_value(Mode::Upsert)?, json!("upsert"));
/// let records = vec![json!({"contact_key": "c-1", "name": "Ann"})];
/// ws.bulk(&BulkRequest::new(Mode::Insert, records.clone()))?;
/// let again = ws.bulk(&BulkRequest::new(Mode::Insert, records))?;
/// assert_eq!(again.errors[0].code.as_str(), "already_exists");
/// assert_eq!(again.results[0].outcome, Outcome::Failed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Mode;

/// What a second record reaching the same contact in one request does: `merge`
/// (the default) applies both in order, `first` or `last` applies only that one,
/// `reject` fails the later ones with `duplicate_in_batch`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, OnDuplicate, Outcome};
/// use serde_json::json;
/// let mut req = BulkRequest::new(Mode::Upsert, vec![
///     json!({"contact_key": "c-1", "name": "Ann"}),
///     json!({"contact_key": "c-1", "name": "Anne"}),
/// ]);
/// req.on_duplicate = OnDuplicate::First;
/// let report = ws.bulk(&req)?;
/// assert_eq!(report.results[1].outcome, Outcome::Duplicate);
/// assert_eq!(ws.get("c-1")?.ok_or("missing")?.columns["name"], json!("Ann"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::OnDuplicate;

/// What a failing record does to its request: `abort` (the default) rejects the
/// whole request, `skip` leaves the failing records out and applies the rest.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, OnInvalid, Status};
/// use serde_json::json;
/// let mut req = BulkRequest::new(Mode::Upsert, vec![
///     json!({"contact_key": "c-1", "email": "ann@example.com"}),
///     json!({"contact_key": "c-2", "email": "not an email"}),
/// ]);
/// assert_eq!((ws.bulk(&req)?.status, ws.count()?), (Status::Rejected, 0));
/// req.on_invalid = OnInvalid::Skip;
/// assert_eq!((ws.bulk(&req)?.status, ws.count()?), (Status::Partial, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::OnInvalid;

/// What happened to one record, in its [`RecordResult`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, Outcome};
/// use serde_json::json;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "c-1", "name": "Ann"})]))?;
/// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![
///     json!({"contact_key": "c-1", "name": "Ann"}),
///     json!({"contact_key": "c-2", "name": "Bob"}),
/// ]))?;
/// let outcomes: Vec<Outcome> = report.results.iter().map(|r| r.outcome).collect();
/// assert_eq!(outcomes, [Outcome::Unchanged, Outcome::Inserted]);
/// assert!(outcomes.iter().all(|o| o.is_applied()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Outcome;

/// How strictly a request checks phone numbers: `format` (the default) accepts any
/// number of E.164's shape, `valid` also asks libphonenumber's metadata whether
/// the number is valid for its region.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, PhoneCheck};
/// use serde_json::json;
/// let record = json!({"contact_key": "c-1", "gsm": "+90 123 456 78 90"}); // not a number in use
/// let mut req = BulkRequest::new(Mode::Upsert, vec![record]);
/// req.phone_check = PhoneCheck::Valid;
/// assert_eq!(ws.bulk(&req)?.errors[0].code.as_str(), "invalid_phone");
/// req.phone_check = PhoneCheck::Format;
/// assert!(ws.bulk(&req)?.errors.is_empty());
/// assert_eq!(serde_json::to_value(PhoneCheck::Valid)?, json!("valid"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::PhoneCheck;

/// One problem with one record: its position and key, the column at fault, a
/// stable code and a message naming the value. A record may have several.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, ErrorCode, Mode};
/// use serde_json::json;
/// let req = BulkRequest::new(Mode::Upsert, vec![
///     json!({"contact_key": "c-1", "email": "ann@", "birthday": "2023-02-29"}),
/// ]);
/// let report = ws.bulk(&req)?;
/// let found: Vec<(&str, ErrorCode)> =
///     report.errors.iter().map(|e| (e.column.as_deref().unwrap_or(""), e.code)).collect();
/// assert_eq!(found, [("email", ErrorCode::InvalidEmail), ("birthday", ErrorCode::InvalidDate)]);
/// assert_eq!(report.errors[0].key.as_deref(), Some("c-1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::RecordError;

/// One record's result: its position, its key, what happened, and how it found
/// its contact (with that contact's key when it differs from the record's).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, MatchOn, MatchedBy, Mode, Outcome, Record};
/// let existing = Record::new("c-1").email("ann@example.com");
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![existing.into()]))?;
/// let ann = Record::new("crm-7").email("ANN@example.com").name("Ann");
/// let mut req = BulkRequest::new(Mode::Update, vec![ann.into()]);
/// req.match_on = MatchOn::ALL;
/// let result = &ws.bulk(&req)?.results[0];
/// assert_eq!((result.index, result.key.as_deref()), (0, Some("crm-7")));
/// assert_eq!((result.outcome, result.matched_by), (Outcome::Updated, Some(MatchedBy::Email)));
/// assert_eq!(result.contact_key.as_deref(), Some("c-1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::RecordResult;

/// The report of one bulk request: the overall [`Status`], the [`Summary`] counts,
/// one [`RecordResult`] per record in input order, and every [`RecordError`] and
/// [`Warning`]. It serializes to JSON under its field names (`status`, `summary`, …).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, Status};
/// use serde_json::json;
/// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "c-1"})]))?;
/// assert_eq!(report.status, Status::Applied);
/// assert_eq!((report.results.len(), report.errors.len()), (1, 0));
/// let body = serde_json::to_value(&report)?;
/// assert_eq!((&body["status"], &body["summary"]["inserted"]), (&json!("applied"), &json!(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Report;

/// A request rejected as a whole before anything was read or written, inside
/// [`BulkError::Request`]; [`RequestError::code`] is its stable code.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkError, BulkRequest, Mode, RequestError};
/// use serde_json::json;
/// let req = BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "c-1", "shoe_size": 42})]);
/// match ws.bulk(&req) {
///     Err(BulkError::Request(RequestError::UnknownColumn { name })) => {
///         assert_eq!(name, "shoe_size")
///     }
///     other => return Err(format!("expected unknown_column, got {other:?}").into()),
/// }
/// assert_eq!(RequestError::NoRecords.code(), "no_records");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::RequestError;

/// The code and message of a request rejected as a whole, as a [`Report`] carries
/// it in `request_error`: what a program that reports every request the same way
/// (such as the CLI) builds from a [`RequestError`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkError, BulkRequest, Mode, Report, Status};
/// let req = BulkRequest::new(Mode::Upsert, vec![]);
/// let report = match ws.bulk(&req) {
///     Err(BulkError::Request(e)) => Report::rejected_request(0, e.code(), e.to_string()),
///     other => other?,
/// };
/// assert_eq!(report.status, Status::Rejected);
/// let info = report.request_error.ok_or("no request_error")?;
/// assert_eq!(info.code, "no_records");
/// assert_eq!(info.message, "the request has no records");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::report::RequestErrorInfo;

/// The overall status of a request: `applied` (every record succeeded), `partial`
/// (some failed and were skipped) or `rejected` (nothing was applied).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, Outcome, Status};
/// use serde_json::json;
/// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![
///     json!({"contact_key": "c-1"}),
///     json!({"contact_key": "c-2", "priority": -1}),
/// ]))?;
/// assert_eq!(report.status, Status::Rejected);
/// assert_eq!(serde_json::to_value(report.status)?, json!("rejected"));
/// assert_eq!(report.results[0].outcome, Outcome::NotApplied);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Status;

/// The counts of a report. `total` is the number of records; `valid` and
/// `invalid` split them by their own validation errors; `inserted`, `updated`,
/// `unchanged` and `failed` count outcomes. [`Summary::add`] sums the parts of one
/// request.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, OnInvalid, Summary};
/// use serde_json::json;
/// let records = vec![json!({"contact_key": "c-1"}), json!({"contact_key": ""})];
/// let mut req = BulkRequest::new(Mode::Upsert, records);
/// req.on_invalid = OnInvalid::Skip;
/// let s = ws.bulk(&req)?.summary;
/// assert_eq!((s.total, s.valid, s.invalid, s.inserted, s.failed), (2, 1, 1, 1, 1));
/// let mut all = Summary::default();
/// all.add(&s);
/// assert_eq!(all, s);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Summary;

/// What a request's changes set off downstream: calls by a dialer (`call`, the
/// call configuration) or a workflow (`workflow`, `true` or its name), never both.
/// Every change event of the request carries it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, Trigger};
/// use serde_json::json;
/// let mut req = BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "c-1"})]);
/// req.trigger = Some(Trigger { workflow: Some(json!("welcome")), ..Trigger::default() });
/// ws.bulk(&req)?;
/// assert_eq!(ws.feed(0, 10)?[0].trigger, Some(json!({"workflow": "welcome"})));
/// let both = Trigger { call: Some(json!({"agentId": 7})), workflow: Some(json!(true)) };
/// assert_eq!(both.check().map_err(|e| e.code()), Err("conflicting_trigger"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Trigger;

/// A remark on a record that was applied: its position and key, the column
/// concerned, a [`WarningCode`] and a message.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, Mode, Record, WarningCode};
/// let ann = Record::new("c-1").email(" Ann@Example.COM ");
/// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![ann.into()]))?;
/// let w = &report.warnings[0];
/// assert_eq!((w.index, w.key.as_deref(), w.column.as_deref()), (0, Some("c-1"), Some("email")));
/// assert_eq!(w.code, WarningCode::ValueNormalized);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::Warning;

/// The stable code of a [`Warning`]: `value_normalized` (a value was reformatted,
/// lower-cased or trimmed), `alias_added` (the record's key became an alias of the
/// contact it matched) or `duplicate_in_batch`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// # let ws = db.workspace("default")?;
/// use contactdb::{BulkRequest, MatchOn, Mode, Record, WarningCode};
/// let existing = Record::new("c-1").email("ann@example.com");
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![existing.into()]))?;
/// let ann = Record::new("crm-7").email("ann@example.com");
/// let mut req = BulkRequest::new(Mode::Upsert, vec![ann.into()]);
/// req.match_on = MatchOn::ALL;
/// let codes: Vec<WarningCode> = ws.bulk(&req)?.warnings.iter().map(|w| w.code).collect();
/// assert_eq!(codes, [WarningCode::AliasAdded]);
/// assert_eq!(serde_json::to_value(WarningCode::AliasAdded)?, serde_json::json!("alias_added"));
/// assert_eq!(ws.get("crm-7")?.map(|c| c.key), Some("c-1".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use contactdb_policy::WarningCode;

/// The timestamp type of contacts, events, campaigns and workspaces (from the
/// `jiff` crate), re-exported so programs need not depend on `jiff` themselves.
///
/// ```
/// let t: contactdb::Timestamp = "2026-12-03T09:00:00Z".parse()?;
/// assert_eq!(t.as_second(), 1_796_288_400);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use jiff::Timestamp;

/// Whether a panic raised now, on this thread, will be caught by contactdb and
/// reported as a damaged file ([`StorageError::Damaged`]) instead of unwinding. A
/// process-wide panic hook uses it to stay silent about panics that end as
/// ordinary errors.
///
/// ```
/// assert!(!contactdb::panic_is_contained());
/// ```
pub fn panic_is_contained() -> bool {
    contactdb_store::panic_is_contained()
}

/// The column catalog: the built-in columns, their aliases and kinds, and a
/// workspace's custom columns, for programs that map foreign headers (a CSV file's
/// first line) onto contact columns before they build records.
///
/// ```
/// use contactdb::column::{Catalog, canonical_name};
///
/// assert_eq!(canonical_name("First Name").as_deref(), Some("first_name"));
/// let catalog = Catalog::new(&[]);
/// let column = catalog.resolve("phoneNumber").map_err(|e| format!("{e:?}"))?;
/// assert_eq!(column.name, "gsm");
/// # Ok::<(), String>(())
/// ```
pub mod column {
    /// A workspace's column catalog: it resolves a caller's column name in any
    /// case, or through an alias, to its [`ColumnDef`].
    ///
    /// ```
    /// use contactdb::column::{Catalog, CustomColumn, FieldId};
    /// use contactdb::{ColumnSpec, ColumnType};
    /// let tier = ColumnSpec::new("tier", ColumnType::Integer).required(true);
    /// let tier = CustomColumn { id: FieldId(FieldId::CUSTOM_FIRST), spec: tier };
    /// let catalog = Catalog::new(&[tier]);
    /// assert_eq!(catalog.resolve("Tier").map(|c| c.custom), Ok(true));
    /// assert_eq!(catalog.resolve("identifier").map(|c| c.name.as_str()), Ok("contact_key"));
    /// let required: Vec<&str> = catalog.required_custom().map(|c| c.name.as_str()).collect();
    /// assert_eq!(required, ["tier"]);
    /// ```
    pub use contactdb_policy::column::Catalog;
    /// One column of a catalog: its id, canonical name, kind, and whether requests
    /// may write it and inserts must give it.
    ///
    /// ```
    /// use contactdb::column::{Catalog, FieldId, Kind};
    /// let catalog = Catalog::new(&[]);
    /// let gsm = catalog.resolve("Phone Number").map_err(|e| format!("{e:?}"))?;
    /// assert_eq!((gsm.id, gsm.name.as_str(), gsm.kind), (FieldId::GSM, "gsm", Kind::Phone));
    /// assert!(gsm.import_enabled && !gsm.required && !gsm.custom);
    /// assert_eq!(gsm.label(), "gsm");
    /// # Ok::<(), String>(())
    /// ```
    pub use contactdb_policy::column::ColumnDef;
    /// A custom column's [`ColumnSpec`](crate::ColumnSpec) with the id it keeps
    /// from its declaration on; a [`Catalog`] is built from them.
    ///
    /// ```
    /// use contactdb::column::{Catalog, CustomColumn, FieldId, Kind};
    /// use contactdb::{ColumnSpec, ColumnType};
    /// let notes = ColumnSpec::new("notes", ColumnType::String { max_len: 500 });
    /// let notes = notes.import_enabled(true);
    /// let custom = CustomColumn { id: FieldId(FieldId::CUSTOM_FIRST), spec: notes };
    /// let catalog = Catalog::new(&[custom]);
    /// let def = catalog.by_id(FieldId(FieldId::CUSTOM_FIRST)).ok_or("not in the catalog")?;
    /// assert_eq!((def.name.as_str(), def.kind), ("notes", Kind::Text { chars_max: 500 }));
    /// assert!(def.custom && def.import_enabled);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub use contactdb_policy::column::CustomColumn;
    /// A column's id: a constant such as [`FieldId::EMAIL`] for a predefined
    /// column, [`FieldId::CUSTOM_FIRST`] or above for a custom one.
    ///
    /// ```
    /// use contactdb::column::{Catalog, FieldId};
    /// let catalog = Catalog::new(&[]);
    /// assert_eq!(catalog.resolve("EMAIL").map(|c| c.id), Ok(FieldId::EMAIL));
    /// assert_eq!(catalog.by_id(FieldId::GSM).map(|c| c.name.as_str()), Some("gsm"));
    /// assert!(FieldId::METADATA.0 < FieldId::CUSTOM_FIRST);
    /// assert_eq!(catalog.by_id(FieldId(FieldId::CUSTOM_FIRST)), None);
    /// ```
    pub use contactdb_policy::column::FieldId;
    /// A column's kind: fixed for a predefined column, given by the type of a
    /// custom one.
    ///
    /// ```
    /// use contactdb::ColumnType;
    /// use contactdb::column::{Catalog, Kind};
    /// let catalog = Catalog::new(&[]);
    /// assert_eq!(catalog.resolve("email_status").map(|c| c.kind), Ok(Kind::Status));
    /// assert_eq!(catalog.resolve("birthday").map(|c| c.kind), Ok(Kind::Date));
    /// assert_eq!(ColumnType::String { max_len: 40 }.kind(), Kind::Text { chars_max: 40 });
    /// assert_eq!(ColumnType::Boolean.kind(), Kind::Bool);
    /// ```
    pub use contactdb_policy::column::Kind;
    /// The two ways [`Catalog::resolve`] refuses a name: no such column, or a
    /// read-only system field (`aliases`, `version`, `created_at`, `updated_at`).
    ///
    /// ```
    /// use contactdb::column::{Catalog, ResolveError};
    /// let catalog = Catalog::new(&[]);
    /// assert_eq!(catalog.resolve("shoe_size"), Err(ResolveError::Unknown));
    /// assert_eq!(catalog.resolve("updatedAt"), Err(ResolveError::ReadOnly));
    /// assert_eq!(catalog.resolve("Naïve"), Err(ResolveError::Unknown));
    /// ```
    pub use contactdb_policy::column::ResolveError;
    /// The snake_case form of a caller's column name, before aliases are applied
    /// ([`Catalog::resolve`] applies them).
    ///
    /// ```
    /// use contactdb::column::canonical_name;
    /// assert_eq!(canonical_name("phoneNumber").as_deref(), Some("phone_number"));
    /// assert_eq!(canonical_name(" Last-Name ").as_deref(), Some("last_name"));
    /// assert_eq!(canonical_name("EMAIL").as_deref(), Some("email"));
    /// assert_eq!(canonical_name("nämé"), None);
    /// ```
    pub use contactdb_policy::column::canonical_name;
}
