//! [`PgStore::bulk`]: one bulk request applied to a workspace, for programs that
//! use this crate without the facade. It takes the same path as the facade's
//! requests ([`contactdb_backend::apply_request`]): the replay of an applied
//! request id, the set-based lookup, the merge, the set-based writes, campaign
//! joins, the feed events and the stored report, in one transaction under the
//! workspace's writer lock.

use contactdb_backend::{ApplyError, Clock, Failure, Wait, WorkspaceId, apply_request};
use contactdb_merge::plan;
use contactdb_policy::{BulkRequest, Limits, Report};

use crate::{Error, PgStore};

/// How [`PgStore::bulk`] applies a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOptions {
    /// Wait for another writer of the workspace, or fail with [`Error::Busy`].
    pub wait: Wait,
    /// The request's clock, µs since the Unix epoch.
    pub now_us: i64,
    /// How long an applied request id is remembered, µs.
    pub retention_us: i64,
    /// How long read feed events are kept, µs.
    pub feed_retention_us: i64,
    /// Request limits.
    pub limits: Limits,
}

/// Seven days in µs.
const WEEK_US: i64 = 7 * 24 * 3600 * 1_000_000;

impl BulkOptions {
    /// Waits for other writers, the clock now, 7 days of request ids and of read
    /// feed events, default limits.
    pub fn now() -> Self {
        BulkOptions {
            wait: Wait::Block,
            now_us: now_us(),
            retention_us: WEEK_US,
            feed_retention_us: WEEK_US,
            limits: Limits::default(),
        }
    }
}

/// Now, µs since the Unix epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_micros()).ok())
        .unwrap_or(0)
}

/// A backend failure in this crate's terms.
fn from_failure(f: Failure) -> Error {
    match f {
        Failure::Busy => Error::Busy,
        Failure::Damaged { detail } => Error::Damaged {
            table: "contactdb",
            detail,
        },
        Failure::LeaseLost => Error::LeaseLost,
        other => Error::Db(other.to_string()),
    }
}

impl PgStore {
    /// Applies a bulk request to workspace `ws` in one
    /// transaction. Request-level problems are [`Error::Request`] and change
    /// nothing; per-record problems are in the report. A request id applied within
    /// the retention returns its stored report (`replayed`), or
    /// `request_id_reused` when the body differs. A request that names a
    /// `campaign` makes every contact it reaches a member (once; `join` events),
    /// checks the campaign's required columns, and is refused with
    /// `no_such_campaign` when the campaign does not exist.
    pub fn bulk(
        &self,
        ws: WorkspaceId,
        req: &BulkRequest,
        opts: &BulkOptions,
    ) -> Result<Report, Error> {
        let write = self.begin_write(ws, opts.wait)?;
        let clock = Clock {
            now_us: opts.now_us,
            retention_us: opts.retention_us,
            feed_retention_us: opts.feed_retention_us,
        };
        apply_request(
            Box::new(write),
            req,
            &opts.limits,
            &clock,
            |prepared, catalog, lookup| plan(req, prepared, catalog, lookup, opts.now_us),
        )
        .map_err(|e| match e {
            ApplyError::Request(r) => Error::Request(r),
            ApplyError::Failure(f) | ApplyError::Plan(f) => from_failure(f),
        })
    }
}
