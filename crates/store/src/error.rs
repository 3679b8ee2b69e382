//! The store's error type and the integrity problems `Store::check` reports.

use std::fmt;
use std::path::PathBuf;

/// Why a store operation failed.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// Another handle (this process or another one) has the database file open (R19).
    #[error("database {} is already open (by this or another process)", path.display())]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
    },
    /// The file was written with another on-disk format version.
    #[error(
        "database format version {found} is not supported (this build reads version {expected})"
    )]
    FormatVersion {
        /// The version recorded in the file.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// The file is a redb database but not a contactdb one (no `meta` table, or no
    /// format version in it).
    #[error("the file is a redb database but not a contactdb database (no format version)")]
    NotAContactDb,
    /// A write transaction is live and the caller asked not to wait (R19).
    #[error("busy: another write transaction is in progress")]
    Busy,
    /// A workspace slug that does not match `[a-z0-9][a-z0-9-]{0,62}` (R1).
    #[error("invalid workspace slug {slug:?}: must match [a-z0-9][a-z0-9-]{{0,62}}")]
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
    /// The workspace does not exist (R1: never created implicitly).
    #[error("no such workspace")]
    NoSuchWorkspace,
    /// A column declaration that is not valid (R3).
    #[error("invalid column declaration: {message}")]
    ColumnInvalid {
        /// What is wrong.
        message: String,
    },
    /// A column's type cannot change while a contact has a value for it (R3).
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

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.table, self.key, self.message)
    }
}
