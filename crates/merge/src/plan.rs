//! The output of a merge: the report, and the final state of every contact the
//! request changes.

use contactdb_policy::{Contact, Report};

use crate::Stored;

/// One contact the request changes: its committed state and its final state.
/// The store derives every primary and index write from the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactWrite {
    /// The committed contact (with its storage id when the lookup gave it),
    /// `None` when the request creates it.
    pub before: Option<Stored>,
    /// The contact after every record of the request that reached it.
    pub after: Contact,
}

/// What a request will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The report, complete.
    pub report: Report,
    /// Contacts to write; empty when the request is rejected. Each contact appears
    /// once, in the order the request first changed it.
    pub writes: Vec<ContactWrite>,
    /// When the request is rejected: the writes its applicable records would have
    /// made had it not been (else empty). Never to be applied; a caller that plans
    /// several requests as one (an import of many batches that must succeed or fail
    /// as a whole) layers them under the next request, so that it sees the earlier
    /// records exactly as one request would.
    pub rejected_writes: Vec<ContactWrite>,
    /// When the request asked for it ([`contactdb_policy::Prepared::list_reached`])
    /// and was not rejected: every contact an applied record reached (inserted,
    /// updated or unchanged), once, in the order they were first reached.
    pub reached: Vec<Reached>,
}

/// A contact a request reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// The index of the first applied record that reached it (in an earlier part
    /// of the request, for a contact that part reached first).
    pub first: u32,
    /// Its internal id when it existed before the request (as the lookup gave it).
    pub stored_id: Option<u64>,
    /// Its key after the request.
    pub key: String,
    /// Its `priority` after the request, when set.
    pub priority: Option<i64>,
    /// Its version after the request.
    pub version: u64,
}
