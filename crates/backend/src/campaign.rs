//! Campaigns and their members, and the rules every store applies when a request
//! reaches them: which campaign it joins, in which pick order, and who moves.

use ahash::AHashMap;
use contactdb_merge::Plan;
use contactdb_policy::limits::PRIORITY_DEFAULT;
use contactdb_policy::{BulkRequest, Catalog, Contact, FieldId, Prepared, RequestError, Value};

/// A campaign of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignInfo {
    /// Its number in the workspace.
    pub number: u32,
    /// Its name, unique in the workspace.
    pub name: String,
    /// Columns every member must have a value for.
    pub required: Vec<String>,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// Number of members.
    pub members: u64,
}

/// One member of a campaign, as the pick order lists it (`priority` ascending,
/// then order of joining).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The contact's internal id.
    pub contact_id: u64,
    /// The contact's priority (0 is picked first).
    pub priority: u32,
    /// Order of joining within the campaign.
    pub joined: u64,
}

/// A `priority` value as a pick-order priority: members are picked lowest first;
/// a contact without one has the default, and a value out of range picks last.
///
/// ```
/// use contactdb_backend::pick_priority;
/// assert_eq!(pick_priority(Some(2)), 2);
/// assert_eq!(pick_priority(None), 5);
/// assert_eq!(pick_priority(Some(i64::MAX)), u32::MAX);
/// ```
pub fn pick_priority(priority: Option<i64>) -> u32 {
    u32::try_from(priority.unwrap_or(PRIORITY_DEFAULT)).unwrap_or(u32::MAX)
}

/// The pick-order priority of a stored contact (its `priority` column).
fn contact_priority(c: &Contact) -> u32 {
    pick_priority(match c.fields.get(FieldId::PRIORITY) {
        Some(Value::Int(p)) => Some(*p),
        _ => None,
    })
}

/// The members `plan`'s writes move in pick order: `(contact id, new priority)` of
/// each updated contact whose priority changed. `ids` are the ids of `plan.writes`,
/// in order.
pub fn priority_moves(plan: &Plan, ids: &[u64]) -> Vec<(u64, u32)> {
    debug_assert_eq!(plan.writes.len(), ids.len(), "one id per write");
    plan.writes
        .iter()
        .zip(ids)
        .filter_map(|(w, id)| {
            let before = contact_priority(&w.before.as_ref()?.contact);
            let after = contact_priority(&w.after);
            (before != after).then_some((*id, after))
        })
        .collect()
}

/// The campaign `req` names, found by `find`, with `prepared` set up to check its
/// required columns on every record and to list the contacts the request reaches
/// (they join it). A request naming a campaign the workspace does not have is the
/// request error `no_such_campaign`; a request naming none gives `None`.
pub fn setup_campaign<E: From<RequestError>>(
    req: &BulkRequest,
    catalog: &Catalog,
    prepared: &mut Prepared,
    find: impl FnOnce(&str) -> Result<Option<CampaignInfo>, E>,
) -> Result<Option<CampaignInfo>, E> {
    let Some(name) = &req.campaign else {
        return Ok(None);
    };
    let Some(c) = find(name)? else {
        return Err(RequestError::NoSuchCampaign { name: name.clone() }.into());
    };
    prepared.campaign_required = c
        .required
        .iter()
        .filter_map(|col| catalog.resolve(col).ok().map(|d| d.id))
        .collect();
    prepared.list_reached = true;
    Ok(Some(c))
}

/// The internal id of each contact in `plan.reached`, in its order: the id it was
/// read with, else the id its write was given (`ids`, in the order of
/// `plan.writes`), else the one `by_key` says its key names now; `missing` is the
/// error for a reached contact without one.
pub fn reached_ids<E>(
    plan: &Plan,
    ids: &[u64],
    mut by_key: impl FnMut(&str) -> Result<Option<u64>, E>,
    missing: impl Fn(&str) -> E,
) -> Result<Vec<u64>, E> {
    let written: AHashMap<&str, u64> = plan
        .writes
        .iter()
        .zip(ids)
        .map(|(w, id)| (w.after.key.as_str(), *id))
        .collect();
    plan.reached
        .iter()
        .map(|r| {
            let id = match r.stored_id.or_else(|| written.get(r.key.as_str()).copied()) {
                Some(id) => Some(id),
                None => by_key(&r.key)?,
            };
            id.ok_or_else(|| missing(&r.key))
        })
        .collect()
}
