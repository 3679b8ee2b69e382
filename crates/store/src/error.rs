//! The store's error type and the integrity problems `Store::check` reports.

use std::fmt;
use std::path::PathBuf;

use contactdb_policy::workspace::SLUG_PATTERN;

use crate::WorkspaceId;

/// Why a store operation failed.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// Another handle (this process or another one) has the database file open for
    /// writing, or a read-only handle of an older build has it open.
    #[error("busy: database {} is already open for writing (by this or another process)", path.display())]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },
    /// The file was written with another on-disk format version. It is not
    /// converted in place: the way over is an export with the build that wrote it
    /// and an import into a new file.
    #[error(
        "this file is format {found}; contactdb {} reads format {expected} only: export it with the contactdb version that wrote it (`contactdb export`) and import the export into a new file",
        env!("CARGO_PKG_VERSION")
    )]
    FormatVersion {
        /// The version recorded in the file.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// A read-only open found no file at the path (it never creates one).
    #[error("no database at {}", path.display())]
    NoDatabase {
        /// The path as given.
        path: PathBuf,
    },
    /// A backup's destination exists already (a backup never overwrites a file).
    #[error("{} exists already: a backup never overwrites a file", path.display())]
    BackupDestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// A write through a handle opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// A read-only open of a file whose last writer did not close it and that no
    /// writer has recovered since (a read-only open never writes the recovery).
    #[error(
        "the database was not closed cleanly and needs recovery, which a read-only open does not do: open it once for writing (any write command recovers it)"
    )]
    NeedsRecovery,
    /// The file is not a redb database at all (empty, or another kind of file).
    #[error("cannot open database: the file is not a contactdb database ({detail})")]
    NotADatabase {
        /// What the open found.
        detail: String,
    },
    /// The file is damaged: redb's own structures are inconsistent (found by a
    /// read, or a panic inside redb that the store contained).
    #[error("the file is damaged: {detail}")]
    Damaged {
        /// What was found, as precisely as redb or the store said it.
        detail: String,
    },
    /// An earlier call on this handle stopped on a damaged page; the handle refuses
    /// every later call, since redb's in-memory state may be inconsistent.
    #[error(
        "the file is damaged: an earlier read stopped on an inconsistent page ({first}); close the database"
    )]
    Poisoned {
        /// What the first failure said.
        first: String,
    },
    /// The file is a redb database but not a contactdb one (no `meta` table, or no
    /// format version in it).
    #[error("the file is a redb database but not a contactdb database (no format version)")]
    NotAContactDb,
    /// A write transaction is live and the caller asked not to wait.
    #[error("busy: another write transaction is in progress")]
    Busy,
    /// A workspace slug that does not match `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid workspace slug {slug:?}: must match {SLUG_PATTERN}")]
    InvalidSlug {
        /// The refused slug.
        slug: String,
    },
    /// A campaign with this name exists already in the workspace.
    #[error("campaign {name:?} already exists")]
    CampaignExists {
        /// The name that is taken.
        name: String,
    },
    /// A workspace with this slug (or UUID) exists already.
    #[error("workspace {slug:?} already exists")]
    WorkspaceExists {
        /// The slug (or UUID text) that is taken.
        slug: String,
    },
    /// An operation was given a workspace id this database does not hold. Ids
    /// come from the store's own answers ([`ReadView::workspace`],
    /// [`ReadView::workspace_by_id`]), which say `None` for a workspace that does
    /// not exist; the caller decides what a missing workspace means to its users.
    ///
    /// [`ReadView::workspace`]: crate::ReadView::workspace
    /// [`ReadView::workspace_by_id`]: crate::ReadView::workspace_by_id
    #[error("workspace id {} is not in this database", .0.0)]
    UnknownWorkspace(WorkspaceId),
    /// A column declaration that is not valid.
    #[error("invalid column declaration: {message}")]
    ColumnInvalid {
        /// What is wrong.
        message: String,
    },
    /// A column's type cannot change while a contact has a value for it.
    #[error("column {name:?} cannot change type: some contacts have a value for it")]
    ColumnInUse {
        /// The column.
        name: String,
    },
    /// The workspace already has the most custom columns allowed.
    #[error(
        "too many custom columns: a workspace may declare at most {}",
        contactdb_policy::limits::CUSTOM_COLUMNS_MAX
    )]
    TooManyColumns,
    /// A stored entry that does not decode or contradicts another one.
    #[error("corrupt entry in table {table}: {message}")]
    Corrupt {
        /// The table holding the entry.
        table: &'static str,
        /// What is wrong, naming the entry.
        message: String,
    },
    /// redb storage failure (I/O, corruption detected by redb, …).
    #[error("storage error: {0}")]
    Storage(#[from] redb::StorageError),
    /// redb failed to open or create the file.
    #[error("cannot open database: {0}")]
    Database(#[from] redb::DatabaseError),
    /// redb failed to begin a transaction.
    #[error("cannot begin transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    /// redb failed to open a table.
    #[error("cannot open table: {0}")]
    Table(#[from] redb::TableError),
    /// redb failed to commit.
    #[error("cannot commit: {0}")]
    Commit(#[from] redb::CommitError),
}

impl StoreError {
    /// Whether the error means the file's content is damaged (as opposed to a busy
    /// file, a missing file, an I/O failure or bad input): redb found a checksum or
    /// structure that does not hold, a stored entry does not decode, or a panic
    /// inside redb was contained.
    pub fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged { .. }
            | StoreError::Poisoned { .. }
            | StoreError::Corrupt { .. } => true,
            other => matches!(other.storage(), Some(redb::StorageError::Corrupted(_))),
        }
    }

    /// The redb storage error inside, if any.
    fn storage(&self) -> Option<&redb::StorageError> {
        match self {
            StoreError::Storage(s)
            | StoreError::Database(redb::DatabaseError::Storage(s))
            | StoreError::Transaction(redb::TransactionError::Storage(s))
            | StoreError::Table(redb::TableError::Storage(s))
            | StoreError::Commit(redb::CommitError::Storage(s)) => Some(s),
            _ => None,
        }
    }

    /// A [`StoreError::Corrupt`] for `table`.
    pub(crate) fn corrupt(table: &'static str, message: impl Into<String>) -> Self {
        StoreError::Corrupt {
            table,
            message: message.into(),
        }
    }
}

/// One integrity problem found by `Store::check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The table holding the offending entry.
    pub table: &'static str,
    /// The entry's key, readable: `<workspace number>:<rest of the key>`, with
    /// non-printable bytes escaped.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl From<Problem> for contactdb_backend::Problem {
    fn from(p: Problem) -> Self {
        contactdb_backend::Problem {
            table: p.table,
            key: p.key,
            message: p.message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.table, self.key, self.message)
    }
}

impl From<StoreError> for contactdb_backend::Failure {
    fn from(e: StoreError) -> Self {
        use contactdb_backend::Failure;
        if e.is_damage() {
            return Failure::Damaged {
                detail: match e {
                    StoreError::Damaged { detail } => detail,
                    other => other.to_string(),
                },
            };
        }
        match e {
            StoreError::Busy => Failure::Busy,
            StoreError::ReadOnly => Failure::ReadOnly,
            StoreError::InvalidSlug { slug } => Failure::InvalidSlug { slug },
            StoreError::WorkspaceExists { slug } => Failure::WorkspaceExists { slug },
            StoreError::CampaignExists { .. }
            | StoreError::ColumnInvalid { .. }
            | StoreError::ColumnInUse { .. }
            | StoreError::TooManyColumns => Failure::Invalid {
                message: e.to_string(),
            },
            other => Failure::Io {
                detail: other.to_string(),
            },
        }
    }
}
