//! The records a contactdb store keeps and hands to the facade, the same for
//! every storage backend (the embedded redb file and PostgreSQL): workspaces,
//! applied request ids, the change feed's events, background jobs, campaigns and
//! API keys.
//!
//! These are plain data. How a store writes them (postcard values in redb,
//! columns in PostgreSQL) stays in that store; the numeric codes of the enums
//! ([`JobState::code`], [`JobDataKind::code`], [`KeyRole::code`], and the feed's
//! [`EventKind::code`]) are the one mapping every store uses. Nothing here
//! depends on a storage engine.
//!
//! The facade talks to a storage engine through [`Backend`] and its
//! transactions [`ReadTxn`] and [`WriteTxn`].
//!
//! Beside the records: [`ContactReads`], the reads of one workspace's contacts
//! that every backend answers from one point in time, and [`Failure`], why a store
//! operation failed, in the same terms for every backend.

mod campaign;
mod failure;
mod feed;
mod job;
mod key;
mod prefetch;
mod read;
mod request;
mod store;
mod workspace;

pub use campaign::{
    CampaignInfo, Member, pick_priority, priority_moves, reached_ids, setup_campaign,
};
pub use failure::Failure;
pub use feed::{Event, EventKind, NewEvent};
pub use job::{JobDataEntry, JobDataKind, JobRecord, JobState};
pub use key::{ApiKey, KeyRole};
pub use prefetch::{IfUnnamed, Indexed, LookupValues, Prefetched, distinct_sorted, names};
pub use read::ContactReads;
pub use request::{
    ApplyError, Clock, Origin, TRIM_MAX, apply_plan, apply_request, body_hash, campaign_of,
    reached_ids_in, record_changes, trigger_json,
};
pub use store::{Backend, FailureLookup, PlanInput, PlanLookup, Problem, ReadTxn, WriteTxn};
pub use workspace::{StoredRequest, Wait, WorkspaceId, WorkspaceInfo};
