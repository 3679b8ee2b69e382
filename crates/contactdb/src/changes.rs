//! What a request's writes mean around the contacts, written in the same
//! transaction: change-feed events, campaign memberships, and members moved in
//! pick order when their priority changes.

use contactdb_backend::{
    CampaignInfo, EventKind, NewEvent, WorkspaceId, pick_priority, priority_moves,
};
use contactdb_merge::Plan;
use contactdb_merge::events::write_events;
use contactdb_store::WriteView;

use crate::error::Error;

/// Most feed events one request trims (old, acknowledged ones): trimming never
/// costs a request much more than its own writes.
const TRIM_MAX: usize = 10_000;

/// Where a request's changes come from.
pub(crate) struct Origin<'a> {
    /// The campaign every reached contact joins.
    pub(crate) campaign: Option<&'a CampaignInfo>,
    /// The request's trigger as JSON text.
    pub(crate) trigger: Option<&'a str>,
    /// The job applying the request.
    pub(crate) job: Option<&'a str>,
    /// The request's clock.
    pub(crate) now_us: i64,
    /// Events older than this may be trimmed once every consumer has read them.
    pub(crate) trim_before_us: i64,
}

/// The internal id of each contact in `plan.reached` (see
/// [`contactdb_backend::reached_ids`]).
pub(crate) fn reached_ids(
    write: &WriteView,
    ws: WorkspaceId,
    plan: &Plan,
    ids: &[u64],
) -> Result<Vec<u64>, Error> {
    contactdb_backend::reached_ids(
        plan,
        ids,
        |key| Ok(write.contact_id(ws, key)?),
        |key| Error::internal(format!("contact {key:?} reached by the request has no id")),
    )
}

/// Records what `plan` (just applied to `ws` in `write`, its contacts at `ids`)
/// means around the contacts.
pub(crate) fn record(
    write: &mut WriteView,
    ws: WorkspaceId,
    plan: &Plan,
    ids: &[u64],
    origin: &Origin<'_>,
) -> Result<(), Error> {
    let mut events: Vec<NewEvent<'_>> = Vec::with_capacity(plan.writes.len());
    for w in &plan.writes {
        write_events(w, &mut events);
    }
    // Members move in pick order when their priority changes.
    for (id, p) in priority_moves(plan, ids) {
        write.set_member_priority(ws, id, p)?;
    }
    if let Some(c) = origin.campaign {
        for (r, id) in plan.reached.iter().zip(reached_ids(write, ws, plan, ids)?) {
            if write.join_campaign(ws, c.number, id, pick_priority(r.priority))? {
                events.push(NewEvent {
                    kind: EventKind::Join,
                    key: &r.key,
                    version: r.version,
                    detail: Some(&c.name),
                });
            }
        }
    }
    write.append_events(ws, &events, origin.now_us, origin.trigger, origin.job)?;
    write.trim_feed(ws, origin.trim_before_us, TRIM_MAX)?;
    Ok(())
}
