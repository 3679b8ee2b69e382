//! The invariants of the tables around the contacts: campaigns and their two
//! membership indexes, the change feed's sequence numbers, and jobs.

use std::collections::BTreeMap;

use contactdb_backend::JobDataKind;
use contactdb_policy::{FieldId, Value};
use redb::{ReadTransaction, ReadableTable};

use super::{Bytes, Walk};
use crate::job::REPORT_PIECES;
use crate::keys::{self, show_key, split_ws, ws_key};
use crate::read::open_optional as open;
use crate::{StoreError, codec};

/// The priority a contact's pick entries must carry (5 when it has none).
fn priority_of(contacts: &Bytes, ws: u32, id: u64) -> Result<Option<u32>, StoreError> {
    let Some(v) = contacts.get(keys::contact_key(ws, id).as_slice())? else {
        return Ok(None);
    };
    let Ok(c) = codec::decode_contact(v.value()) else {
        return Ok(None);
    };
    Ok(Some(match c.fields.get(FieldId::PRIORITY) {
        Some(Value::Int(p)) => u32::try_from(*p).unwrap_or(u32::MAX),
        _ => 5,
    }))
}

/// Per campaign (workspace, number): its member count and its next join number
/// as stored, or as counted in `campaign_pick` (count, last join).
type Counts = BTreeMap<(u32, u32), (u64, u64)>;

pub(super) fn check(rtx: &ReadTransaction, walk: &mut Walk) -> Result<(), StoreError> {
    let (Some(campaigns), Some(names), Some(members), Some(pick), Some(contacts)) = (
        open(rtx, keys::CAMPAIGNS)?,
        open(rtx, keys::CAMPAIGN_NAMES)?,
        open(rtx, keys::MEMBERSHIPS)?,
        open(rtx, keys::CAMPAIGN_PICK)?,
        open(rtx, keys::CONTACTS)?,
    ) else {
        return Ok(());
    };
    let stored = check_campaigns(walk, &campaigns, &names)?;
    check_memberships(walk, &members, &pick, &contacts, &stored)?;
    let counted = check_pick(walk, &pick, &members)?;
    check_campaign_counts(walk, &stored, &counted);
    check_feed(rtx, walk)?;
    check_jobs(rtx, walk)
}

/// campaigns ↔ campaign_names; returns each decodable campaign's stored counts.
fn check_campaigns(
    walk: &mut Walk,
    campaigns: &Bytes,
    names: &Bytes,
) -> Result<Counts, StoreError> {
    let mut stored = Counts::new();
    for entry in campaigns.iter()? {
        let (k, v) = entry?;
        let key = k.value();
        let shown = show_key(key);
        let Some((ws, number)) = split_ws(key).and_then(|(w, n)| Some((w, keys::u32_from(n)?)))
        else {
            walk.report("campaigns", shown, "key is not ws ‖ campaign number");
            continue;
        };
        let c = match codec::decode_campaign(v.value()) {
            Ok(c) => c,
            Err(e) => {
                walk.report("campaigns", shown, e.to_string());
                continue;
            }
        };
        let named = names
            .get(ws_key(ws, c.name.as_bytes()).as_slice())?
            .and_then(|n| keys::u32_from(n.value()));
        if named != Some(number) {
            walk.report(
                "campaigns",
                shown,
                format!("its name {:?} does not name it", c.name),
            );
        }
        stored.insert((ws, number), (c.members, c.next_join));
    }
    for entry in names.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let target = split_ws(k.value()).zip(keys::u32_from(v.value()));
        if !target.is_some_and(|((ws, _), n)| stored.contains_key(&(ws, n))) {
            walk.report("campaign_names", shown, "names no campaign");
        }
    }
    Ok(stored)
}

/// memberships → campaign, contact (and its priority), pick entry.
fn check_memberships(
    walk: &mut Walk,
    members: &Bytes,
    pick: &Bytes,
    contacts: &Bytes,
    stored: &Counts,
) -> Result<(), StoreError> {
    for entry in members.iter()? {
        let (k, v) = entry?;
        let key = k.value();
        let shown = show_key(key);
        let parsed = split_ws(key).and_then(|(ws, rest)| {
            let (id, c) = rest.split_at_checked(8)?;
            Some((ws, keys::u64_from(id)?, keys::u32_from(c)?))
        });
        let value = v
            .value()
            .split_at_checked(4)
            .and_then(|(p, j)| Some((keys::u32_from(p)?, keys::u64_from(j)?)));
        let (Some((ws, id, campaign)), Some((priority, joined))) = (parsed, value) else {
            walk.report(
                "memberships",
                shown,
                "entry is not ws ‖ id ‖ campaign → priority ‖ join",
            );
            continue;
        };
        if !stored.contains_key(&(ws, campaign)) {
            walk.report(
                "memberships",
                shown.clone(),
                format!("campaign {campaign} does not exist"),
            );
        }
        match priority_of(contacts, ws, id)? {
            None => walk.report(
                "memberships",
                shown.clone(),
                format!("contact id {id} does not exist"),
            ),
            Some(p) if p != priority => walk.report(
                "memberships",
                shown.clone(),
                format!("priority {priority}, but the contact's is {p}"),
            ),
            Some(_) => {}
        }
        let mut pk = ws_key(ws, &campaign.to_be_bytes());
        pk.extend_from_slice(&priority.to_be_bytes());
        pk.extend_from_slice(&joined.to_be_bytes());
        let back = pick
            .get(pk.as_slice())?
            .and_then(|x| keys::u64_from(x.value()));
        if back != Some(id) {
            walk.report("memberships", shown, "no pick entry names this contact");
        }
    }
    Ok(())
}

/// campaign_pick → memberships; returns the counts found per campaign.
fn check_pick(walk: &mut Walk, pick: &Bytes, members: &Bytes) -> Result<Counts, StoreError> {
    let mut counted = Counts::new();
    for entry in pick.iter()? {
        let (k, v) = entry?;
        let key = k.value();
        let shown = show_key(key);
        let parsed = split_ws(key).and_then(|(ws, rest)| {
            let (c, rest) = rest.split_at_checked(4)?;
            let (p, j) = rest.split_at_checked(4)?;
            Some((
                ws,
                keys::u32_from(c)?,
                keys::u32_from(p)?,
                keys::u64_from(j)?,
            ))
        });
        let (Some((ws, campaign, priority, joined)), Some(id)) =
            (parsed, keys::u64_from(v.value()))
        else {
            walk.report(
                "campaign_pick",
                shown,
                "entry is not ws ‖ campaign ‖ priority ‖ join → id",
            );
            continue;
        };
        let mut mk = ws_key(ws, &id.to_be_bytes());
        mk.extend_from_slice(&campaign.to_be_bytes());
        let mut want = priority.to_be_bytes().to_vec();
        want.extend_from_slice(&joined.to_be_bytes());
        if members.get(mk.as_slice())?.map(|m| m.value().to_vec()) != Some(want) {
            walk.report("campaign_pick", shown, "no membership matches this entry");
        }
        let e = counted.entry((ws, campaign)).or_insert((0, 0));
        e.0 += 1;
        e.1 = e.1.max(joined);
    }
    Ok(counted)
}

/// Each campaign's stored member count and next join number against the pick
/// entries found.
fn check_campaign_counts(walk: &mut Walk, stored: &Counts, counted: &Counts) {
    for ((ws, campaign), (members, next_join)) in stored {
        let (n, last_join) = counted.get(&(*ws, *campaign)).copied().unwrap_or((0, 0));
        if n != *members || last_join >= *next_join {
            walk.report(
                "campaigns",
                format!("{ws}:{campaign}"),
                format!("{members} members and next join {next_join} stored; {n} found, last join {last_join}"),
            );
        }
    }
}

/// Every `feed` entry decodes, holds at least one event, and its events are
/// numbered above the entry before it and at most the workspace's last sequence
/// number.
fn check_feed(rtx: &ReadTransaction, walk: &mut Walk) -> Result<(), StoreError> {
    let (Some(feed), Some(counters)) = (open(rtx, keys::FEED)?, open(rtx, keys::COUNTERS)?) else {
        return Ok(());
    };
    // Per workspace: the last sequence number given, and the last one seen so far.
    let mut state: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for entry in feed.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, first)) =
            split_ws(k.value()).and_then(|(w, s)| Some((w, keys::u64_from(s)?)))
        else {
            walk.report("feed", shown, "key is not ws ‖ sequence number");
            continue;
        };
        let n = match codec::decode_events(v.value()) {
            Ok(b) => u64::try_from(b.events.len()).unwrap_or(u64::MAX),
            Err(e) => {
                walk.report("feed", shown, e.to_string());
                continue;
            }
        };
        let (given, seen) = match state.get(&ws) {
            Some(s) => *s,
            None => {
                let l = counters
                    .get(ws_key(ws, b"feed_seq").as_slice())?
                    .and_then(|c| keys::u64_from(c.value()))
                    .unwrap_or(0);
                (l, 0)
            }
        };
        let last = first.saturating_add(n).saturating_sub(1);
        if n == 0 || first <= seen || last > given {
            walk.report(
                "feed",
                shown,
                format!("events {first}..={last}: empty, overlapping the entry before (to {seen}) or above the last given ({given})"),
            );
        }
        state.insert(ws, (given, last.max(seen)));
    }
    Ok(())
}

/// `job_ids` ↔ `jobs`; an unfinished job has its request, a finished one no data
/// but its report's pieces (when its record holds no report).
fn check_jobs(rtx: &ReadTransaction, walk: &mut Walk) -> Result<(), StoreError> {
    let (Some(jobs), Some(ids), Some(data)) = (
        open(rtx, keys::JOBS)?,
        open(rtx, keys::JOB_IDS)?,
        open(rtx, keys::JOB_DATA)?,
    ) else {
        return Ok(());
    };
    for entry in jobs.iter()? {
        let (k, v) = entry?;
        let key = k.value().to_vec();
        let shown = show_key(&key);
        let j = match codec::decode_job(v.value()) {
            Ok(j) => j,
            Err(e) => {
                walk.report("jobs", shown, e.to_string());
                continue;
            }
        };
        if ids.get(j.id.as_slice())?.map(|x| x.value().to_vec()) != Some(key.clone()) {
            walk.report("jobs", shown.clone(), "its id does not name it");
        }
        // Whether the job has a `job_data` entry of this kind (its request's pieces,
        // its report's).
        let has_kind = |kind: u8| -> Result<bool, StoreError> {
            let mut prefix = key.clone();
            prefix.push(kind);
            let range = keys::prefix_range(&prefix);
            Ok(data
                .range::<&[u8]>(keys::as_slices(&range))?
                .next()
                .is_some())
        };
        let has_request = has_kind(JobDataKind::Request.code())?;
        let has_pieces = has_kind(REPORT_PIECES)?;
        let finished = matches!(j.state, 3..=5);
        if has_pieces && (!finished || !j.report_json.is_empty()) {
            walk.report(
                "jobs",
                shown.clone(),
                "report pieces beside an unfinished job or a report in its record",
            );
        }
        if finished == has_request {
            walk.report(
                "jobs",
                shown,
                if finished {
                    "a finished job still has its request"
                } else {
                    "an unfinished job has no request"
                },
            );
        }
    }
    for entry in ids.iter()? {
        let (k, v) = entry?;
        if jobs.get(v.value())?.is_none() {
            walk.report("job_ids", show_key(k.value()), "names no job");
        }
    }
    Ok(())
}
