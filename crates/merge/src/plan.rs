//! The output of a merge: the report, and the final state of every contact the
//! request changes.

use contactdb_policy::{Contact, Report};

/// One contact the request changes: its committed state and its final state.
/// The store derives every primary and index write from the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactWrite {
    /// The committed contact, `None` when the request creates it.
    pub before: Option<Contact>,
    /// The contact after every record of the request that reached it.
    pub after: Contact,
}

/// What a request will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The report (R15), complete.
    pub report: Report,
    /// Contacts to write; empty when the request is rejected. Each contact appears
    /// once, in the order the request first changed it.
    pub writes: Vec<ContactWrite>,
}
