//! What a request's writes mean around the contacts, written in the same
//! transaction: change-feed events, campaign memberships, and members moved in
//! pick order when their priority changes.

use ahash::AHashMap;
use contactdb_backend::{CampaignInfo, EventKind, NewEvent, WorkspaceId};
use contactdb_merge::Plan;
use contactdb_merge::events::write_events;
use contactdb_policy::{Contact, FieldId, Value};
use contactdb_store::WriteView;

use crate::error::Error;

/// The default `priority` of a contact without one.
pub(crate) const PRIORITY_DEFAULT: u32 = 5;

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

fn priority(c: &Contact) -> u32 {
    match c.fields.get(FieldId::PRIORITY) {
        Some(Value::Int(p)) => u32::try_from(*p).unwrap_or(u32::MAX),
        _ => PRIORITY_DEFAULT,
    }
}

/// The internal id of each contact in `plan.reached`, in its order: the id it was
/// read with, else the id `apply` gave its write (`ids`, in the order of
/// `plan.writes`), else the one its key names now.
pub(crate) fn reached_ids(
    write: &WriteView,
    ws: WorkspaceId,
    plan: &Plan,
    ids: &[u64],
) -> Result<Vec<u64>, Error> {
    let by_key: AHashMap<&str, u64> = plan
        .writes
        .iter()
        .zip(ids)
        .map(|(w, id)| (w.after.key.as_str(), *id))
        .collect();
    plan.reached
        .iter()
        .map(|r| {
            let id = match r.stored_id.or_else(|| by_key.get(r.key.as_str()).copied()) {
                Some(id) => Some(id),
                None => write.contact_id(ws, &r.key)?,
            };
            id.ok_or_else(|| {
                Error::internal(format!(
                    "contact {:?} reached by the request has no id",
                    r.key
                ))
            })
        })
        .collect()
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
    for (w, id) in plan.writes.iter().zip(ids) {
        if let Some(b) = &w.before
            && priority(&b.contact) != priority(&w.after)
        {
            write.set_member_priority(ws, *id, priority(&w.after))?;
        }
    }
    if let Some(c) = origin.campaign {
        for (r, id) in plan.reached.iter().zip(reached_ids(write, ws, plan, ids)?) {
            let p = r
                .priority
                .map_or(PRIORITY_DEFAULT, |p| u32::try_from(p).unwrap_or(u32::MAX));
            if write.join_campaign(ws, c.number, id, p)? {
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
