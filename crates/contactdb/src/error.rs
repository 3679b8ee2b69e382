//! The facade's error type: every way a call into contactdb can fail.

use contactdb_policy::RequestError;
use contactdb_store::StoreError;

/// A failed call. Request-level problems of a bulk request are [`Error::Request`];
/// per-record problems are not errors, they are in the [`crate::Report`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bulk request was rejected as a whole before anything was read or written (R5).
    #[error("request rejected: {0}")]
    Request(#[from] RequestError),
    /// `try_bulk` found another write in progress (R19).
    #[error("another write is in progress (busy)")]
    Busy,
    /// No workspace with that slug or UUID (R1).
    #[error("no workspace {name:?}")]
    NoSuchWorkspace {
        /// As given.
        name: String,
    },
    /// An argument that is not valid (a slug, an email to search for, a column spec).
    #[error("{0}")]
    InvalidArgument(String),
    /// The database file is open for writing by another handle or process (R19).
    #[error("{0}")]
    AlreadyOpen(String),
    /// A read-only open found no file at the path; nothing was created.
    #[error("no database at {0}")]
    NoDatabase(String),
    /// A write through a handle opened with [`crate::Database::open_read_only`].
    #[error("the database is open read-only")]
    ReadOnly,
    /// The file's content is damaged: redb found an inconsistent page or checksum,
    /// a stored entry does not decode, or a read stopped on a malformed page (then
    /// the handle refuses every later call). Restore the file from a backup.
    #[error("the file is damaged: {0}")]
    Damaged(String),
    /// Storage failed: an I/O error, or a file that is not a contactdb database
    /// of a format this version reads. The text says which.
    #[error("{0}")]
    Storage(String),
    /// A bug: an internal step panicked. Nothing was written.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        if e.is_damage() {
            return Error::Damaged(match e {
                StoreError::Damaged { detail } => detail,
                other => other.to_string(),
            });
        }
        match e {
            StoreError::Busy => Error::Busy,
            StoreError::NoDatabase { path } => Error::NoDatabase(path.display().to_string()),
            StoreError::ReadOnly => Error::ReadOnly,
            StoreError::AlreadyOpen { .. } => Error::AlreadyOpen(e.to_string()),
            StoreError::InvalidSlug { .. }
            | StoreError::WorkspaceExists { .. }
            | StoreError::ColumnInvalid { .. }
            | StoreError::ColumnInUse { .. }
            | StoreError::TooManyColumns
            | StoreError::BackupDestinationExists { .. } => Error::InvalidArgument(e.to_string()),
            other => Error::Storage(other.to_string()),
        }
    }
}
