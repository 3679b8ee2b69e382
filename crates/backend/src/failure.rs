//! [`Failure`]: why a store operation failed, the same for every backend.

/// Why a store operation failed, as every backend reports it to the facade.
///
/// ```
/// use contactdb_backend::Failure;
/// let f = Failure::Damaged { detail: "checksum mismatch".into() };
/// assert!(f.is_damage());
/// assert_eq!(f.to_string(), "the store is damaged: checksum mismatch");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// Another write is in progress and the caller asked not to wait.
    #[error("busy: another write is in progress")]
    Busy,
    /// A write through a handle opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// The stored data is damaged (a page, a checksum or an entry that does not
    /// decode).
    #[error("the store is damaged: {detail}")]
    Damaged {
        /// What was found.
        detail: String,
    },
    /// The call was refused: what it asked for is not possible (a column type
    /// change while values exist, a campaign or key that exists already, too many
    /// columns).
    #[error("{message}")]
    Invalid {
        /// Why, for the user.
        message: String,
    },
    /// A workspace with this slug or UUID exists already.
    #[error("workspace {slug:?} already exists")]
    WorkspaceExists {
        /// The slug (or UUID) that is taken.
        slug: String,
    },
    /// A slug that does not match the slug rule.
    #[error(
        "invalid workspace slug {slug:?}: it must match {}",
        contactdb_policy::workspace::SLUG_PATTERN
    )]
    InvalidSlug {
        /// The slug given.
        slug: String,
    },
    /// The job is no longer held by this runner: another runner took it over
    /// after its lease ran out, or it ended.
    #[error("the job is no longer held by this runner (its lease ran out or it ended)")]
    LeaseLost,
    /// The backend does not do this.
    #[error("not supported by the {backend} store: {what}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What was asked.
        what: &'static str,
    },
    /// The storage failed otherwise (I/O, a lost connection, a refused query).
    #[error("{detail}")]
    Io {
        /// What failed, as the storage said it.
        detail: String,
    },
}

impl Failure {
    /// Whether the stored data is damaged.
    ///
    /// ```
    /// assert!(!contactdb_backend::Failure::Busy.is_damage());
    /// ```
    pub fn is_damage(&self) -> bool {
        matches!(self, Failure::Damaged { .. })
    }
}
