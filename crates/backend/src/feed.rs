//! The change feed's events as a store reads them back.

pub use contactdb_merge::events::{EventKind, NewEvent};

/// One event of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Sequence number: 1, 2, 3, … within the workspace, without gaps (trimming
    /// removes the oldest events only).
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The contact's key after the change.
    pub key: String,
    /// The contact's version after the change.
    pub version: u64,
    /// When, µs since the Unix epoch.
    pub at_us: i64,
    /// The previous key (rekey), the alias (alias) or the campaign (join).
    pub detail: Option<String>,
    /// The trigger of the request that made the change, as JSON text.
    pub trigger: Option<String>,
    /// The job that made the change.
    pub job: Option<String>,
}
