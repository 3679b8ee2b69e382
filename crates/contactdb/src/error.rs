//! The facade's errors: one type per kind of operation ([`OpenError`] for opening
//! a file, [`WorkspaceError`] for finding or creating a workspace, [`BulkError`] for
//! writing a request), each convertible into the general [`Error`] the other calls
//! return, so `?` works across them.

use std::path::PathBuf;

use contactdb_backend::Failure;
use contactdb_policy::RequestError;
use contactdb_store::StoreError;

/// The storage underneath a call failed. Shared by every error type.
///
/// ```
/// use contactdb::StorageError;
/// let e = StorageError::Damaged { detail: "checksum mismatch on page 12".into() };
/// assert_eq!(e.to_string(), "the file is damaged: checksum mismatch on page 12");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file's content is damaged: redb found an inconsistent page or checksum,
    /// a stored entry does not decode, or a read stopped on a malformed page (then
    /// the handle refuses every later call). Restore the file from a backup.
    #[error("the file is damaged: {detail}")]
    Damaged {
        /// What was found.
        detail: String,
    },
    /// Reading or writing the file failed (an I/O error, a full disk).
    #[error("{detail}")]
    Io {
        /// What failed, as the operating system or redb said it.
        detail: String,
    },
    /// A bug: an internal step panicked. Nothing was written.
    #[error("internal error: {detail}")]
    Internal {
        /// What panicked.
        detail: String,
    },
}

/// Why a database file could not be opened, checked or repaired.
///
/// ```
/// use contactdb::{Database, OpenError};
/// let dir = tempfile::tempdir()?;
/// let missing = dir.path().join("none.redb");
/// match Database::open_read_only(&missing) {
///     Err(OpenError::NotFound { path }) => assert_eq!(path, missing),
///     other => panic!("expected NotFound, got {other:?}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another handle (this process or another one) has the file open for writing.
    #[error("busy: database {} is already open for writing (by this or another process)", path.display())]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },
    /// A read-only open (or a check) found no file at the path; nothing was created.
    #[error("no database at {}", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The file is not a contactdb database (empty, another kind of file, or a redb
    /// database of another program).
    #[error("cannot open database: the file is not a contactdb database ({detail})")]
    NotContactdb {
        /// What the open found.
        detail: String,
    },
    /// The file was written in another on-disk format. It is not converted in
    /// place: export it with the version that wrote it and import the export into
    /// a new file.
    #[error(
        "this file is format {found}; contactdb {} reads format {expected} only: export it with the contactdb version that wrote it (`contactdb export`) and import the export into a new file",
        env!("CARGO_PKG_VERSION")
    )]
    UnsupportedFormat {
        /// The format recorded in the file.
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
    /// A read-only open of a file whose last writer did not close it: open it once
    /// for writing, which recovers it.
    #[error(
        "the database was not closed cleanly and needs recovery, which a read-only open does not do: open it once for writing (any write command recovers it)"
    )]
    NeedsRecovery,
    /// A backup's destination exists already (a backup never overwrites a file).
    #[error("{} exists already: a backup never overwrites a file", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// A `postgres://` URL that does not parse.
    #[error("invalid PostgreSQL URL: {detail}")]
    InvalidUrl {
        /// What is wrong with it.
        detail: String,
    },
    /// The PostgreSQL server cannot be reached or refused the login.
    #[error("cannot connect to PostgreSQL at {target}: {detail}")]
    Connect {
        /// `host:port/dbname` (never the password).
        target: String,
        /// The driver's or server's words.
        detail: String,
    },
    /// A newer build of contactdb migrated the PostgreSQL database.
    #[error(
        "the PostgreSQL database's schema is at version {found}; contactdb {} knows up to {known}: use a newer contactdb",
        env!("CARGO_PKG_VERSION")
    )]
    SchemaTooNew {
        /// The schema version found.
        found: i32,
        /// The newest this build has.
        known: i32,
    },
    /// What this kind of database does not do (a file backup of PostgreSQL).
    #[error("{what}")]
    Unsupported {
        /// What was asked, and what to do instead.
        what: String,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a workspace could not be found or created.
///
/// ```
/// use contactdb::{Database, WorkspaceError};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path().join("c.redb"))?;
/// assert!(matches!(db.workspace("acme"), Err(WorkspaceError::NotFound { .. })));
/// assert!(matches!(db.create_workspace("Not A Slug"), Err(WorkspaceError::InvalidSlug { .. })));
/// db.create_workspace("acme")?;
/// assert!(matches!(db.create_workspace("acme"), Err(WorkspaceError::Exists { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// No workspace with that slug or UUID; workspaces are never created
    /// implicitly.
    #[error("no workspace {name:?}")]
    NotFound {
        /// As given.
        name: String,
    },
    /// A slug that does not match `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid workspace slug {slug:?}: must match [a-z0-9][a-z0-9-]{{0,62}}")]
    InvalidSlug {
        /// The refused slug.
        slug: String,
    },
    /// A workspace with this slug exists already.
    #[error("workspace {slug:?} already exists")]
    Exists {
        /// The slug that is taken.
        slug: String,
    },
    /// A write through a handle opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a bulk request, or a transaction of several, wrote nothing. Problems of
/// single records are not errors: they are in the [`crate::Report`].
///
/// ```
/// use contactdb::{BulkError, BulkRequest, Database, Mode};
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path().join("c.redb"))?;
/// let ws = db.workspace("default")?;
/// let empty = BulkRequest::new(Mode::Upsert, vec![]);
/// match ws.bulk(&empty) {
///     Err(BulkError::Request(e)) => assert_eq!(e.code(), "no_records"),
///     other => panic!("expected a rejected request, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BulkError {
    /// The request was rejected as a whole before anything was read or written.
    #[error("request rejected: {0}")]
    Request(#[from] RequestError),
    /// Another write is in progress and the call was not to wait
    /// ([`crate::Workspace::try_bulk`], [`crate::Workspace::try_begin`]).
    #[error("another write is in progress (busy)")]
    Busy,
    /// A write through a handle opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// A request with a `request_id` given to [`crate::Transaction::apply`].
    #[error("requests applied in a transaction may not carry a request_id")]
    RequestIdInTransaction,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A failed call: the error of the calls without an error type of their own, and
/// what every other error type converts into.
///
/// ```
/// use contactdb::{Database, Error};
/// fn count(path: &std::path::Path) -> Result<u64, Error> {
///     let db = Database::open(path)?;           // OpenError converts
///     let ws = db.workspace("default")?;        // WorkspaceError converts
///     ws.count()
/// }
/// let dir = tempfile::tempdir()?;
/// assert_eq!(count(&dir.path().join("c.redb"))?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bulk request was rejected as a whole before anything was read or written.
    #[error("request rejected: {0}")]
    Request(#[from] RequestError),
    /// Another write was in progress and the call was not to wait.
    #[error("another write is in progress (busy)")]
    Busy,
    /// An argument that is not valid (a slug, an email to search for, a column spec).
    #[error("{0}")]
    InvalidArgument(String),
    /// The file could not be opened.
    #[error(transparent)]
    Open(OpenError),
    /// A workspace could not be found or created.
    #[error(transparent)]
    Workspace(WorkspaceError),
    /// A write through a handle opened with [`crate::Database::open_read_only`].
    #[error("the database is open read-only")]
    ReadOnly,
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl StorageError {
    /// Whether the file's content is damaged (then restore it from a backup).
    ///
    /// ```
    /// use contactdb::StorageError;
    /// assert!(StorageError::Damaged { detail: "bad page".into() }.is_damage());
    /// assert!(!StorageError::Io { detail: "disk full".into() }.is_damage());
    /// ```
    pub fn is_damage(&self) -> bool {
        matches!(self, StorageError::Damaged { .. })
    }
}

impl OpenError {
    /// Whether the file's content is damaged.
    ///
    /// ```
    /// use contactdb::{OpenError, StorageError};
    /// let e = OpenError::from(StorageError::Damaged { detail: "bad page".into() });
    /// assert!(e.is_damage());
    /// assert!(!OpenError::NeedsRecovery.is_damage());
    /// ```
    pub fn is_damage(&self) -> bool {
        matches!(self, OpenError::Storage(s) if s.is_damage())
    }
}

impl WorkspaceError {
    /// Whether the file's content is damaged.
    ///
    /// ```
    /// use contactdb::{StorageError, WorkspaceError};
    /// let e = WorkspaceError::from(StorageError::Damaged { detail: "bad page".into() });
    /// assert!(e.is_damage());
    /// assert!(!WorkspaceError::ReadOnly.is_damage());
    /// ```
    pub fn is_damage(&self) -> bool {
        matches!(self, WorkspaceError::Storage(s) if s.is_damage())
    }
}

impl BulkError {
    /// Whether the file's content is damaged.
    ///
    /// ```
    /// use contactdb::{BulkError, StorageError};
    /// let e = BulkError::from(StorageError::Damaged { detail: "bad page".into() });
    /// assert!(e.is_damage());
    /// assert!(!BulkError::Busy.is_damage());
    /// ```
    pub fn is_damage(&self) -> bool {
        matches!(self, BulkError::Storage(s) if s.is_damage())
    }
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Storage(s) => Error::Storage(s),
            other => Error::Open(other),
        }
    }
}

impl From<WorkspaceError> for Error {
    fn from(e: WorkspaceError) -> Self {
        match e {
            WorkspaceError::ReadOnly => Error::ReadOnly,
            WorkspaceError::Storage(s) => Error::Storage(s),
            other => Error::Workspace(other),
        }
    }
}

impl From<BulkError> for Error {
    fn from(e: BulkError) -> Self {
        match e {
            BulkError::Request(r) => Error::Request(r),
            BulkError::Busy => Error::Busy,
            BulkError::ReadOnly => Error::ReadOnly,
            BulkError::Storage(s) => Error::Storage(s),
            other @ BulkError::RequestIdInTransaction => Error::InvalidArgument(other.to_string()),
        }
    }
}

impl Error {
    /// Whether the file's content is damaged (then restore it from a backup).
    ///
    /// ```
    /// use contactdb::{Error, StorageError};
    /// let e = Error::from(StorageError::Damaged { detail: "bad page".into() });
    /// assert!(e.is_damage());
    /// assert!(!Error::Busy.is_damage());
    /// ```
    pub fn is_damage(&self) -> bool {
        match self {
            Error::Storage(s) => s.is_damage(),
            Error::Open(o) => o.is_damage(),
            Error::Workspace(w) => w.is_damage(),
            _ => false,
        }
    }

    /// A backend's failure, as an error.
    pub(crate) fn failure(f: Failure) -> Self {
        match f {
            Failure::Busy => Error::Busy,
            Failure::ReadOnly => Error::ReadOnly,
            Failure::Invalid { message } => Error::InvalidArgument(message),
            Failure::Unsupported { .. } => Error::InvalidArgument(f.to_string()),
            Failure::InvalidSlug { .. } | Failure::WorkspaceExists { .. } => {
                Error::Workspace(workspace_error(f))
            }
            other => Error::Storage(storage_of(other)),
        }
    }

    /// A panic inside an internal step, as an error.
    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Error::Storage(StorageError::Internal {
            detail: detail.into(),
        })
    }

    /// This error as the error of a write call: the variants a write can meet map
    /// one to one; the others (which a write does not produce) are reported as an
    /// internal error naming them.
    pub(crate) fn into_bulk(self) -> BulkError {
        match self {
            Error::Request(r) => BulkError::Request(r),
            Error::Busy => BulkError::Busy,
            Error::ReadOnly => BulkError::ReadOnly,
            Error::Storage(s) => BulkError::Storage(s),
            other => BulkError::Storage(StorageError::Internal {
                detail: other.to_string(),
            }),
        }
    }
}

/// The storage failure inside a store error that is not one of the cases a caller
/// handles.
pub(crate) fn storage_error(e: StoreError) -> StorageError {
    if let StoreError::UnknownWorkspace(_) = e {
        // Workspace ids come from the store itself: an unknown one is a bug.
        return StorageError::Internal {
            detail: e.to_string(),
        };
    }
    storage_of(Failure::from(e))
}

/// A backend's failure as the storage error callers see: damage stays damage,
/// anything else is a failed I/O step with the backend's words.
fn storage_of(f: Failure) -> StorageError {
    match f {
        Failure::Damaged { detail } => StorageError::Damaged { detail },
        other => StorageError::Io {
            detail: other.to_string(),
        },
    }
}

/// Why opening a redb file failed.
pub(crate) fn open_error(e: StoreError) -> OpenError {
    match e {
        StoreError::AlreadyOpen { path } => OpenError::AlreadyOpen { path },
        StoreError::NoDatabase { path } => OpenError::NotFound { path },
        StoreError::BackupDestinationExists { path } => OpenError::DestinationExists { path },
        StoreError::FormatVersion { found, expected } => {
            OpenError::UnsupportedFormat { found, expected }
        }
        StoreError::NeedsRecovery => OpenError::NeedsRecovery,
        StoreError::NotADatabase { detail } => OpenError::NotContactdb { detail },
        StoreError::NotAContactDb => OpenError::NotContactdb {
            detail: "a redb database without a contactdb format version".into(),
        },
        other => OpenError::Storage(storage_error(other)),
    }
}

/// Why connecting to PostgreSQL failed.
pub(crate) fn pg_open_error(e: contactdb_pg::Error) -> OpenError {
    use contactdb_pg::Error as Pg;
    match e {
        Pg::InvalidUrl { detail } => OpenError::InvalidUrl { detail },
        Pg::Connect { target, detail } => OpenError::Connect { target, detail },
        Pg::SchemaTooNew { found, known } => OpenError::SchemaTooNew { found, known },
        other => OpenError::Storage(storage_of(Failure::from(other))),
    }
}

/// A backend's failure in a workspace call.
pub(crate) fn workspace_error(f: Failure) -> WorkspaceError {
    match f {
        Failure::InvalidSlug { slug } => WorkspaceError::InvalidSlug { slug },
        Failure::WorkspaceExists { slug } => WorkspaceError::Exists { slug },
        Failure::ReadOnly => WorkspaceError::ReadOnly,
        other => WorkspaceError::Storage(storage_of(other)),
    }
}

/// Lets `?` turn the backend's failures into errors; the backend crate is not
/// part of the API.
#[doc(hidden)]
impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        Error::failure(f)
    }
}
