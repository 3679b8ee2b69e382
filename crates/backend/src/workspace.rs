//! Workspaces, applied request ids and how a write transaction begins.

/// The number of a workspace inside one database (in redb the prefix of its
/// keys, in PostgreSQL the `workspace_id` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceId(pub u32);

/// A workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceInfo {
    /// Its number in the database.
    pub id: WorkspaceId,
    /// Its slug, `[a-z0-9][a-z0-9-]{0,62}`
    /// ([`contactdb_policy::workspace::valid_slug`]).
    pub slug: String,
    /// Its stable UUID.
    pub uuid: [u8; 16],
    /// Creation time, microseconds since the Unix epoch (UTC).
    pub created_at_us: i64,
}

/// An applied request id's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRequest {
    /// SHA-256 of the request body without `request_id`, as canonical JSON.
    pub body_hash: [u8; 32],
    /// When it was applied, microseconds since the Unix epoch (UTC).
    pub applied_at_us: i64,
    /// The report of the first application, as JSON text.
    pub report_json: String,
}

/// Whether beginning a write transaction waits for another writer: the
/// redb store has one writer per file, the PostgreSQL store one per workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait until the write transaction can start.
    Block,
    /// Fail at once with the store's busy error while another writer is live.
    No,
}
