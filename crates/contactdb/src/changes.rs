//! What a request's writes mean around the contacts, written in the same
//! transaction: change-feed events, campaign memberships, and members moved in
//! pick order when their priority changes.

use contactdb_backend::{
    CampaignInfo, EventKind, NewEvent, WriteTxn, pick_priority, priority_moves,
};
use contactdb_merge::Plan;
use contactdb_merge::events::write_events;

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
    write: &mut dyn WriteTxn,
    plan: &Plan,
    ids: &[u64],
) -> Result<Vec<u64>, Error> {
    contactdb_backend::reached_ids(
        plan,
        ids,
        |key| Ok(write.contact_id(key)?),
        |key| Error::internal(format!("contact {key:?} reached by the request has no id")),
    )
}

/// Records what `plan` (just applied in `write`, its contacts at `ids`) means
/// around the contacts.
pub(crate) fn record(
    write: &mut dyn WriteTxn,
    plan: &Plan,
    ids: &[u64],
    origin: &Origin<'_>,
) -> Result<(), Error> {
    let mut events: Vec<NewEvent<'_>> = Vec::with_capacity(plan.writes.len());
    for w in &plan.writes {
        write_events(w, &mut events);
    }
    // Members move in pick order when their priority changes.
    let moves = priority_moves(plan, ids);
    if !moves.is_empty() {
        write.set_member_priorities(&moves)?;
    }
    if let Some(c) = origin.campaign {
        let reached = reached_ids(write, plan, ids)?;
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
