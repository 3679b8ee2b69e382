//! The crate's error type.

use contactdb_policy::workspace::SLUG_PATTERN;

use contactdb_backend::WorkspaceId;

/// What can go wrong in the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a PostgreSQL connection URL.
    #[error("invalid PostgreSQL URL: {detail}")]
    InvalidUrl {
        /// Why it was refused.
        detail: String,
    },
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {detail}")]
    Connect {
        /// Host, port and database (never the password).
        target: String,
        /// Why.
        detail: String,
    },
    /// Another writer holds this workspace's writer lock.
    #[error("another write is in progress on this workspace")]
    Busy,
    /// An operation was given a workspace id this database does not hold. Ids
    /// come from the store's own answers ([`PgStore::workspace`],
    /// [`PgRead::workspace_by_id`]), which say `None` for a workspace that does
    /// not exist; the caller decides what a missing workspace means to its users.
    ///
    /// [`PgStore::workspace`]: crate::PgStore::workspace
    /// [`PgRead::workspace_by_id`]: crate::PgRead::workspace_by_id
    #[error("workspace id {} is not in this database", .0.0)]
    UnknownWorkspace(WorkspaceId),
    /// The slug or UUID of a new workspace is taken.
    #[error("workspace {slug:?} already exists")]
    WorkspaceExists {
        /// The slug (or UUID) that is taken.
        slug: String,
    },
    /// A workspace slug that does not match `[a-z0-9][a-z0-9-]{0,62}`.
    #[error("invalid workspace slug {slug:?}: it must match {SLUG_PATTERN}")]
    InvalidSlug {
        /// The refused slug.
        slug: String,
    },
    /// A custom column declaration that is not valid.
    #[error("invalid column: {message}")]
    ColumnInvalid {
        /// Why.
        message: String,
    },
    /// Changing the type of a column that contacts have values for.
    #[error("column {name:?} has values: its type cannot change")]
    ColumnInUse {
        /// The column.
        name: String,
    },
    /// The workspace has the most custom columns it may have.
    #[error("too many custom columns")]
    TooManyColumns,
    /// A campaign of that name exists in the workspace.
    #[error("campaign {name:?} already exists")]
    CampaignExists {
        /// The name that is taken.
        name: String,
    },
    /// A new API key whose token hash (or id) a stored key already has.
    #[error("an API key with this token or id already exists")]
    KeyExists,
    /// Something named does not exist (a job, a contact).
    #[error("not found: {0}")]
    NotFound(String),
    /// The runner no longer holds the job: its lease ran out and another runner
    /// took the job over, or the job ended.
    #[error("the job is no longer held by this runner (its lease ran out or it ended)")]
    LeaseLost,
    /// The database was migrated by a newer build.
    #[error("the database schema is at version {found}; this build knows up to {known}")]
    SchemaTooNew {
        /// The version found.
        found: i32,
        /// The newest version this build has.
        known: i32,
    },
    /// Stored data that does not decode, or tables that disagree.
    #[error("damaged data in {table}: {detail}")]
    Damaged {
        /// The table.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The request was refused as a whole: nothing was written.
    #[error("{0}")]
    Request(#[from] contactdb_policy::RequestError),
    /// What this store does not do (yet).
    #[error("not supported by the PostgreSQL store: {0}")]
    Unsupported(&'static str),
    /// Any other failure reported by PostgreSQL or the connection.
    #[error("PostgreSQL: {0}")]
    Db(String),
}

impl Error {
    pub(crate) fn damaged(table: &'static str, detail: impl Into<String>) -> Self {
        Error::Damaged {
            table,
            detail: detail.into(),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Db(describe(&e))
    }
}

/// A one-line description of a driver error: the server's message with its
/// SQLSTATE and detail, or the connection failure and its cause.
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} ({})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(": ");
            s.push_str(d);
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
