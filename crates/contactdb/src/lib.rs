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
mod changes;
mod contact;
mod database;
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
    Problem, REQUEST_ID_RETENTION_DAYS_DEFAULT, WorkspaceInfo,
};
pub use error::{BulkError, Error, OpenError, StorageError, WorkspaceError};
pub use feed::{Consumer, Event, EventKind, FEED_CHUNK_DEFAULT};
pub use job::{JOB_CHUNK_RECORDS_DEFAULT, JOB_RECORDS_MAX_DEFAULT, Job, JobState};
pub use key::{KeyInfo, Role};
pub use record::Record;
pub use snapshot::Snapshot;
pub use txn::Transaction;
pub use workspace::Workspace;

pub use contactdb_policy::report::RequestErrorInfo;
pub use contactdb_policy::{
    BulkRequest, ColumnSpec, ColumnType, EmptyValues, ErrorCode, MatchKey, MatchOn, MatchedBy,
    Mode, OnDuplicate, OnInvalid, Outcome, PhoneCheck, RecordError, RecordResult, Report,
    RequestError, Status, Summary, Trigger, Warning, WarningCode,
};

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
    pub use contactdb_policy::column::{
        Catalog, ColumnDef, CustomColumn, FieldId, Kind, ResolveError, canonical_name,
    };
}
