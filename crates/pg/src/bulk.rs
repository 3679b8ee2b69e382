//! The bulk request path over [`PgWrite`]: replay of an applied request id,
//! the set-based lookup, the merge, the set-based writes, the feed events and the
//! stored report, in one transaction under the workspace's writer lock.

use contactdb_merge::plan;
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Limits, Report, RequestError, Status};
use sha2::{Digest, Sha256};

use contactdb_merge::events::write_events;

use crate::lookup::LookupValues;
use contactdb_backend::{
    EventKind, NewEvent, StoredRequest, Wait, WorkspaceId, pick_priority, priority_moves,
    reached_ids, setup_campaign,
};

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
    /// Request limits.
    pub limits: Limits,
}

impl BulkOptions {
    /// Waits for other writers, the clock now, 7 days of request ids, default limits.
    pub fn now() -> Self {
        BulkOptions {
            wait: Wait::Block,
            now_us: now_us(),
            retention_us: 7 * 24 * 3600 * 1_000_000,
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

/// SHA-256 of the request without its `request_id`, as JSON.
pub fn body_hash(req: &BulkRequest) -> Result<[u8; 32], Error> {
    let mut body = req.clone();
    body.request_id = None;
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| Error::Db(format!("request not serializable: {e}")))?;
    Ok(Sha256::digest(&bytes).into())
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
        let now = opts.now_us;
        let mut w = self.begin_write(ws, opts.wait)?;
        let catalog = Catalog::new(&w.columns()?);
        let hash = match &req.request_id {
            Some(id) => {
                let hash = body_hash(req)?;
                if let Some(stored) = w.get_request(id)?
                    && stored.applied_at_us >= now.saturating_sub(opts.retention_us)
                {
                    if stored.body_hash != hash {
                        return Err(Error::Request(RequestError::RequestIdReused {
                            request_id: id.clone(),
                        }));
                    }
                    let mut report: Report = serde_json::from_str(&stored.report_json)
                        .map_err(|e| Error::damaged("requests", format!("stored report: {e}")))?;
                    report.replayed = true;
                    return Ok(report);
                }
                Some(hash)
            }
            None => None,
        };
        let mut prepared = prepare(req, &catalog, &opts.limits)?;
        let campaign = setup_campaign(req, &catalog, &mut prepared, |name| w.campaign(name))?;
        let values = LookupValues::of_request(req, &prepared, &catalog);
        let lookup = w.lookup_for(&values)?;
        let plan = plan(req, &prepared, &catalog, &lookup, now)?;
        drop(lookup);
        if plan.report.status == Status::Rejected {
            return Ok(plan.report);
        }
        let ids = w.apply(&plan.writes)?;
        let mut events = Vec::with_capacity(plan.writes.len());
        for cw in &plan.writes {
            write_events(cw, &mut events);
        }
        // Members move in pick order when their priority changes.
        w.set_member_priorities(&priority_moves(&plan, &ids))?;
        if let Some(c) = &campaign {
            let reached = reached_ids(
                &plan,
                &ids,
                |key| w.contact_id(key),
                |key| {
                    Error::damaged(
                        "identifiers",
                        format!("contact {key:?} reached by the request has no id"),
                    )
                },
            )?;
            let joiners: Vec<(u64, u32)> = plan
                .reached
                .iter()
                .zip(reached)
                .map(|(r, id)| (id, pick_priority(r.priority)))
                .collect();
            let joined = w.join_campaign_many(c.number, &joiners)?;
            for (r, _) in plan.reached.iter().zip(joined).filter(|(_, j)| *j) {
                events.push(NewEvent {
                    kind: EventKind::Join,
                    key: &r.key,
                    version: r.version,
                    detail: Some(&c.name),
                });
            }
        }
        let trigger = req
            .trigger
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::Db(format!("trigger not serializable: {e}")))?;
        w.append_events(&events, now, trigger.as_deref(), None)?;
        if let (Some(id), Some(body_hash)) = (&req.request_id, hash) {
            let report_json = serde_json::to_string(&plan.report)
                .map_err(|e| Error::Db(format!("report not serializable: {e}")))?;
            w.put_request(
                id,
                &StoredRequest {
                    body_hash,
                    applied_at_us: now,
                    report_json,
                },
            )?;
        }
        w.prune_requests(now.saturating_sub(opts.retention_us))?;
        w.commit()?;
        Ok(plan.report)
    }
}
