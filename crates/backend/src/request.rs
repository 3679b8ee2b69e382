//! One bulk request applied in the write transaction of its workspace, and what
//! its writes mean around the contacts (feed events, campaign joins, priority
//! moves): the one path every backend's requests take.

use contactdb_merge::Plan;
use contactdb_merge::events::write_events;
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Limits, Prepared, Report, RequestError, Status};
use sha2::{Digest, Sha256};

use crate::{
    CampaignInfo, EventKind, Failure, NewEvent, PlanInput, PlanLookup, StoredRequest, WriteTxn,
    pick_priority, priority_moves, setup_campaign,
};

/// Most feed events one request trims (old, acknowledged ones): trimming never
/// costs a request much more than its own writes.
pub const TRIM_MAX: usize = 10_000;

/// A request's clock and how long what it leaves is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The request's time, µs since the Unix epoch.
    pub now_us: i64,
    /// How long an applied request id is remembered, µs.
    pub retention_us: i64,
    /// How long read feed events are kept, µs.
    pub feed_retention_us: i64,
}

/// Why a request was not applied.
#[derive(Debug)]
pub enum ApplyError<E> {
    /// The request as a whole is refused; nothing was written.
    Request(RequestError),
    /// The storage failed.
    Failure(Failure),
    /// Planning failed.
    Plan(E),
}

impl<E> From<Failure> for ApplyError<E> {
    fn from(f: Failure) -> Self {
        ApplyError::Failure(f)
    }
}

impl<E> From<RequestError> for ApplyError<E> {
    fn from(r: RequestError) -> Self {
        ApplyError::Request(r)
    }
}

/// Applies `req` in `write` and commits: the replay of an applied request id
/// (its stored report, `replayed`; `request_id_reused` for another body), the
/// request-level checks, the campaign it names, the plan (`plan` runs the merge
/// over the lookup it is given), the writes, what they mean around the contacts,
/// the stored report, the pruning of old request ids. A replayed or rejected
/// request writes nothing (the transaction is dropped).
pub fn apply_request<E>(
    mut write: Box<dyn WriteTxn + '_>,
    req: &BulkRequest,
    limits: &Limits,
    clock: &Clock,
    plan: impl FnOnce(&Prepared, &Catalog, &PlanLookup<'_>) -> Result<Plan, E>,
) -> Result<Report, ApplyError<E>> {
    let catalog = Catalog::new(&write.columns()?);
    let now = clock.now_us;
    let hash = match &req.request_id {
        Some(id) => {
            let hash = body_hash(req)?;
            if let Some(stored) = write.request(id)?
                && stored.applied_at_us >= now.saturating_sub(clock.retention_us)
            {
                if stored.body_hash != hash {
                    return Err(ApplyError::Request(RequestError::RequestIdReused {
                        request_id: id.clone(),
                    }));
                }
                let mut report: Report =
                    serde_json::from_str(&stored.report_json).map_err(|e| Failure::Damaged {
                        detail: format!("stored report of request {id:?}: {e}"),
                    })?;
                report.replayed = true;
                return Ok(report);
            }
            Some(hash)
        }
        None => None,
    };
    // After the replay: a retry gets its stored report even when the checks below
    // would now refuse the body (a column's flags changed since).
    let mut prepared = prepare(req, &catalog, limits)?;
    let campaign = campaign_of::<ApplyError<E>>(&mut *write, req, &catalog, &mut prepared)?;
    let plan = {
        let lookup = write.plan_lookup(&PlanInput {
            req,
            prepared: &prepared,
            catalog: &catalog,
        })?;
        plan(&prepared, &catalog, &lookup).map_err(ApplyError::Plan)?
    };
    if plan.report.status == Status::Rejected {
        return Ok(plan.report);
    }
    let trigger = trigger_json(req)?;
    apply_plan(
        &mut *write,
        &plan,
        &Origin {
            campaign: campaign.as_ref(),
            trigger: trigger.as_deref(),
            job: None,
            now_us: now,
            trim_before_us: now.saturating_sub(clock.feed_retention_us),
        },
    )?;
    if let (Some(id), Some(body_hash)) = (&req.request_id, hash) {
        let report_json = serde_json::to_string(&plan.report).map_err(|e| Failure::Io {
            detail: format!("report not serializable: {e}"),
        })?;
        write.put_request(
            id,
            &StoredRequest {
                body_hash,
                applied_at_us: now,
                report_json,
            },
        )?;
    }
    write.prune_requests(now.saturating_sub(clock.retention_us))?;
    write.commit()?;
    Ok(plan.report)
}

/// The campaign `req` names, read through `write`, with `prepared` set up for it
/// (see [`setup_campaign`]).
pub fn campaign_of<E: From<RequestError> + From<Failure>>(
    write: &mut dyn WriteTxn,
    req: &BulkRequest,
    catalog: &Catalog,
    prepared: &mut Prepared,
) -> Result<Option<CampaignInfo>, E> {
    setup_campaign(req, catalog, prepared, |name| Ok(write.campaign(name)?))
}

/// SHA-256 of the request without its `request_id`, as canonical JSON: a retry
/// carrying the same `request_id` must have this same body.
pub fn body_hash(req: &BulkRequest) -> Result<[u8; 32], Failure> {
    let mut body = req.clone();
    body.request_id = None;
    let bytes = serde_json::to_vec(&body).map_err(|e| Failure::Io {
        detail: format!("request not serializable: {e}"),
    })?;
    Ok(Sha256::digest(&bytes).into())
}

/// The request's trigger as JSON text.
pub fn trigger_json(req: &BulkRequest) -> Result<Option<String>, Failure> {
    req.trigger
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Failure::Io {
            detail: format!("trigger not serializable: {e}"),
        })
}

/// Where a request's changes come from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The campaign every reached contact joins.
    pub campaign: Option<&'a CampaignInfo>,
    /// The request's trigger as JSON text.
    pub trigger: Option<&'a str>,
    /// The job applying the request.
    pub job: Option<&'a str>,
    /// The request's clock.
    pub now_us: i64,
    /// Events older than this may be trimmed once every consumer has read them.
    pub trim_before_us: i64,
}

/// The internal id of each contact in `plan.reached` (see
/// [`crate::reached_ids`]), read through `write`.
pub fn reached_ids_in(
    write: &mut dyn WriteTxn,
    plan: &Plan,
    ids: &[u64],
) -> Result<Vec<u64>, Failure> {
    crate::reached_ids(
        plan,
        ids,
        |key| write.contact_id(key),
        |key| Failure::Damaged {
            detail: format!("contact {key:?} reached by the request has no id"),
        },
    )
}

/// Applies `plan`'s writes in `write` and records their changes
/// ([`record_changes`]); returns the contacts' ids, in the order of the writes.
pub fn apply_plan(
    write: &mut dyn WriteTxn,
    plan: &Plan,
    origin: &Origin<'_>,
) -> Result<Vec<u64>, Failure> {
    let ids = write.apply(&plan.writes)?;
    record_changes(write, plan, &ids, origin)?;
    Ok(ids)
}

/// Records what `plan` (just applied in `write`, its contacts at `ids`) means
/// around the contacts: members whose priority changed move in pick order, every
/// contact the request reached joins its campaign (once, with a `join` event), the
/// feed gets the request's events, and old read events are trimmed.
pub fn record_changes(
    write: &mut dyn WriteTxn,
    plan: &Plan,
    ids: &[u64],
    origin: &Origin<'_>,
) -> Result<(), Failure> {
    let mut events: Vec<NewEvent<'_>> = Vec::with_capacity(plan.writes.len());
    for w in &plan.writes {
        write_events(w, &mut events);
    }
    let moves = priority_moves(plan, ids);
    if !moves.is_empty() {
        write.set_member_priorities(&moves)?;
    }
    if let Some(c) = origin.campaign {
        let reached = reached_ids_in(write, plan, ids)?;
        let joiners: Vec<(u64, u32)> = plan
            .reached
            .iter()
            .zip(&reached)
            .map(|(r, id)| (*id, pick_priority(r.priority)))
            .collect();
        let joined = write.join_campaign(c.number, &joiners)?;
        for (r, _) in plan.reached.iter().zip(joined).filter(|(_, j)| *j) {
            events.push(NewEvent {
                kind: EventKind::Join,
                key: &r.key,
                version: r.version,
                detail: Some(&c.name),
            });
        }
    }
    write.append_events(&events, origin.now_us, origin.trigger, origin.job)?;
    write.trim_feed(origin.trim_before_us, TRIM_MAX)?;
    Ok(())
}
