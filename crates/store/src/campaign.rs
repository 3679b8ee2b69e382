//! Campaigns and their members, in pick order: `priority` ascending, then order of
//! joining. Members are contacts by internal id, so a rekey keeps them.

use crate::guard::guarded;
use redb::{ReadableTable, Table};
use std::sync::Arc;

use contactdb_backend::{CampaignInfo, Member, WorkspaceId};

use crate::codec::{self, StoredCampaign};
use crate::keys::{self, ws_bytes, ws_key};
use crate::{ReadView, StoreError, WriteView};

fn info(number: u32, c: StoredCampaign) -> CampaignInfo {
    CampaignInfo {
        number,
        name: c.name,
        required: c.required,
        created_at_us: c.created_at_us,
        members: c.members,
    }
}

fn campaign_key(ws: u32, number: u32) -> Vec<u8> {
    ws_key(ws, &number.to_be_bytes())
}

fn pick_key(ws: u32, campaign: u32, priority: u32, joined: u64) -> Vec<u8> {
    let mut k = campaign_key(ws, campaign);
    k.extend_from_slice(&priority.to_be_bytes());
    k.extend_from_slice(&joined.to_be_bytes());
    k
}

fn membership_key(ws: u32, contact_id: u64, campaign: u32) -> Vec<u8> {
    let mut k = ws_key(ws, &contact_id.to_be_bytes());
    k.extend_from_slice(&campaign.to_be_bytes());
    k
}

fn membership_value(priority: u32, joined: u64) -> [u8; 12] {
    let mut v = [0u8; 12];
    let (p, j) = v.split_at_mut(4);
    p.copy_from_slice(&priority.to_be_bytes());
    j.copy_from_slice(&joined.to_be_bytes());
    v
}

fn split_membership_value(v: &[u8]) -> Result<(u32, u64), StoreError> {
    let bad = || StoreError::corrupt("memberships", "value is not priority ‖ join number");
    let (p, j) = v.split_at_checked(4).ok_or_else(bad)?;
    Ok((
        keys::u32_from(p).ok_or_else(bad)?,
        keys::u64_from(j).ok_or_else(bad)?,
    ))
}

/// The campaign named `name` in an open `campaign_names` + `campaigns` pair.
fn find(
    names: &impl ReadableTable<&'static [u8], &'static [u8]>,
    campaigns: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: u32,
    name: &str,
) -> Result<Option<CampaignInfo>, StoreError> {
    let Some(n) = names.get(ws_key(ws, name.as_bytes()).as_slice())? else {
        return Ok(None);
    };
    let number = keys::u32_from(n.value())
        .ok_or_else(|| StoreError::corrupt("campaign_names", "value is not a campaign number"))?;
    let c = campaigns
        .get(campaign_key(ws, number).as_slice())?
        .ok_or_else(|| {
            StoreError::corrupt(
                "campaign_names",
                format!("{name:?} names missing campaign {number}"),
            )
        })?;
    Ok(Some(info(number, codec::decode_campaign(c.value())?)))
}

impl ReadView {
    /// The campaign of `ws` named `name`.
    pub fn campaign(
        &self,
        ws: WorkspaceId,
        name: &str,
    ) -> Result<Option<CampaignInfo>, StoreError> {
        guarded(&self.poison, || {
            let Some(names) = self.open_optional(keys::CAMPAIGN_NAMES)? else {
                return Ok(None);
            };
            let Some(campaigns) = self.open_optional(keys::CAMPAIGNS)? else {
                return Ok(None);
            };
            find(&names, &campaigns, ws.0, name)
        })
    }

    /// Every campaign of `ws`, by number (creation order).
    pub fn campaigns(&self, ws: WorkspaceId) -> Result<Vec<CampaignInfo>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::CAMPAIGNS)? else {
                return Ok(Vec::new());
            };
            let range = keys::prefix_range(&ws_bytes(ws.0));
            let mut out = Vec::new();
            for entry in t.range::<&[u8]>(keys::as_slices(&range))? {
                let (k, v) = entry?;
                let number =
                    k.value().get(4..).and_then(keys::u32_from).ok_or_else(|| {
                        StoreError::corrupt("campaigns", "key is not ws ‖ number")
                    })?;
                out.push(info(number, codec::decode_campaign(v.value())?));
            }
            Ok(out)
        })
    }

    /// Up to `limit` members of campaign `number` in pick order, after `after` (a
    /// member's `(priority, joined)`).
    pub fn members(
        &self,
        ws: WorkspaceId,
        number: u32,
        after: Option<(u32, u64)>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::CAMPAIGN_PICK)? else {
                return Ok(Vec::new());
            };
            let prefix = campaign_key(ws.0, number);
            let (lower, upper) = keys::prefix_range(&prefix);
            let lower = match after {
                Some((p, j)) => std::ops::Bound::Excluded(pick_key(ws.0, number, p, j)),
                None => lower,
            };
            let range = (lower, upper);
            let mut out = Vec::new();
            for entry in t.range::<&[u8]>(keys::as_slices(&range))?.take(limit) {
                let (k, v) = entry?;
                let bad = || {
                    StoreError::corrupt(
                        "campaign_pick",
                        "key is not ws ‖ campaign ‖ priority ‖ join",
                    )
                };
                let rest = k.value().get(8..).ok_or_else(bad)?;
                let (p, j) = rest.split_at_checked(4).ok_or_else(bad)?;
                out.push(Member {
                    contact_id: keys::u64_from(v.value()).ok_or_else(|| {
                        StoreError::corrupt("campaign_pick", "value is not a contact id")
                    })?,
                    priority: keys::u32_from(p).ok_or_else(bad)?,
                    joined: keys::u64_from(j).ok_or_else(bad)?,
                });
            }
            Ok(out)
        })
    }
}

impl WriteView {
    /// The campaign of `ws` named `name`, as this transaction sees it.
    pub fn campaign(
        &self,
        ws: WorkspaceId,
        name: &str,
    ) -> Result<Option<CampaignInfo>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let names = self.txn.open_table(keys::CAMPAIGN_NAMES)?;
            let campaigns = self.txn.open_table(keys::CAMPAIGNS)?;
            find(&names, &campaigns, ws.0, name)
        })
    }

    /// Creates campaign `name` in `ws`; [`StoreError::CampaignExists`] if the name
    /// is taken. The caller validates the name and the required columns.
    pub fn create_campaign(
        &mut self,
        ws: WorkspaceId,
        name: &str,
        required: &[String],
        now_us: i64,
    ) -> Result<CampaignInfo, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.require_workspace_pub(ws)?;
            if self.campaign(ws, name)?.is_some() {
                return Err(StoreError::CampaignExists {
                    name: name.to_owned(),
                });
            }
            let number = u32::try_from(self.bump_counter(ws, "campaign_id")?)
                .map_err(|_| StoreError::corrupt("counters", "campaign numbers exhausted"))?;
            let stored = StoredCampaign {
                name: name.to_owned(),
                required: required.to_vec(),
                created_at_us: now_us,
                next_join: 1,
                members: 0,
            };
            self.txn.open_table(keys::CAMPAIGNS)?.insert(
                campaign_key(ws.0, number).as_slice(),
                codec::encode_campaign(&stored)?.as_slice(),
            )?;
            self.txn.open_table(keys::CAMPAIGN_NAMES)?.insert(
                ws_key(ws.0, name.as_bytes()).as_slice(),
                number.to_be_bytes().as_slice(),
            )?;
            Ok(info(number, stored))
        })
    }

    /// Drops campaign `name` of `ws` and every membership in it; returns whether it
    /// existed.
    pub fn drop_campaign(&mut self, ws: WorkspaceId, name: &str) -> Result<bool, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let Some(c) = self.campaign(ws, name)? else {
                return Ok(false);
            };
            let mut pick = self.txn.open_table(keys::CAMPAIGN_PICK)?;
            let mut memberships = self.txn.open_table(keys::MEMBERSHIPS)?;
            let range = keys::prefix_range(&campaign_key(ws.0, c.number));
            let mut members = Vec::new();
            for entry in pick.range::<&[u8]>(keys::as_slices(&range))? {
                let (k, v) = entry?;
                let id = keys::u64_from(v.value()).ok_or_else(|| {
                    StoreError::corrupt("campaign_pick", "value is not a contact id")
                })?;
                members.push((k.value().to_vec(), id));
            }
            for (k, id) in members {
                pick.remove(k.as_slice())?;
                memberships.remove(membership_key(ws.0, id, c.number).as_slice())?;
            }
            self.txn
                .open_table(keys::CAMPAIGNS)?
                .remove(campaign_key(ws.0, c.number).as_slice())?;
            self.txn
                .open_table(keys::CAMPAIGN_NAMES)?
                .remove(ws_key(ws.0, name.as_bytes()).as_slice())?;
            Ok(true)
        })
    }

    /// Makes contact `contact_id` a member of campaign `number` with `priority`,
    /// unless it is one already; returns whether it joined now.
    pub fn join_campaign(
        &mut self,
        ws: WorkspaceId,
        number: u32,
        contact_id: u64,
        priority: u32,
    ) -> Result<bool, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let mut memberships = self.txn.open_table(keys::MEMBERSHIPS)?;
            let mk = membership_key(ws.0, contact_id, number);
            if memberships.get(mk.as_slice())?.is_some() {
                return Ok(false);
            }
            let mut campaigns = self.txn.open_table(keys::CAMPAIGNS)?;
            let ck = campaign_key(ws.0, number);
            let mut c = match campaigns.get(ck.as_slice())? {
                Some(v) => codec::decode_campaign(v.value())?,
                None => {
                    return Err(StoreError::corrupt(
                        "campaigns",
                        format!("no campaign {number} to join"),
                    ));
                }
            };
            let joined = c.next_join;
            c.next_join = joined.saturating_add(1);
            c.members = c.members.saturating_add(1);
            campaigns.insert(ck.as_slice(), codec::encode_campaign(&c)?.as_slice())?;
            memberships.insert(mk.as_slice(), membership_value(priority, joined).as_slice())?;
            self.txn.open_table(keys::CAMPAIGN_PICK)?.insert(
                pick_key(ws.0, number, priority, joined).as_slice(),
                contact_id.to_be_bytes().as_slice(),
            )?;
            Ok(true)
        })
    }

    /// Moves every membership of contact `contact_id` to `priority` in its
    /// campaigns' pick order (keeping its order of joining).
    pub fn set_member_priority(
        &mut self,
        ws: WorkspaceId,
        contact_id: u64,
        priority: u32,
    ) -> Result<(), StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let mut memberships = self.txn.open_table(keys::MEMBERSHIPS)?;
            let prefix = ws_key(ws.0, &contact_id.to_be_bytes());
            let range = keys::prefix_range(&prefix);
            let mut moves = Vec::new();
            for entry in memberships.range::<&[u8]>(keys::as_slices(&range))? {
                let (k, v) = entry?;
                let number = k
                    .value()
                    .get(12..)
                    .and_then(keys::u32_from)
                    .ok_or_else(|| {
                        StoreError::corrupt("memberships", "key is not ws ‖ id ‖ campaign")
                    })?;
                let (old, joined) = split_membership_value(v.value())?;
                if old != priority {
                    moves.push((k.value().to_vec(), number, old, joined));
                }
            }
            if moves.is_empty() {
                return Ok(());
            }
            let mut pick: Table<&[u8], &[u8]> = self.txn.open_table(keys::CAMPAIGN_PICK)?;
            for (mk, number, old, joined) in moves {
                pick.remove(pick_key(ws.0, number, old, joined).as_slice())?;
                pick.insert(
                    pick_key(ws.0, number, priority, joined).as_slice(),
                    contact_id.to_be_bytes().as_slice(),
                )?;
                memberships.insert(mk.as_slice(), membership_value(priority, joined).as_slice())?;
            }
            Ok(())
        })
    }

    /// The internal id of the contact whose key or alias is `key`, as this
    /// transaction sees it.
    pub fn contact_id(&self, ws: WorkspaceId, key: &str) -> Result<Option<u64>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let idents = keys::IDENTIFIERS.open_write(&self.txn)?;
            self.ident_id(&idents, ws.0, key)
        })
    }

    /// Adds one to counter `name` of `ws` and returns its new value (the first is 1).
    pub(crate) fn bump_counter(&mut self, ws: WorkspaceId, name: &str) -> Result<u64, StoreError> {
        self.bump_counter_by(ws, name, 1)
    }

    /// Adds `n` to counter `name` of `ws` and returns its new value.
    pub(crate) fn bump_counter_by(
        &mut self,
        ws: WorkspaceId,
        name: &str,
        n: u64,
    ) -> Result<u64, StoreError> {
        let mut t = self.txn.open_table(keys::COUNTERS)?;
        let k = ws_key(ws.0, name.as_bytes());
        let old = match t.get(k.as_slice())? {
            Some(v) => keys::u64_from(v.value())
                .ok_or_else(|| StoreError::corrupt("counters", format!("{name} is not a u64")))?,
            None => 0,
        };
        let new = old.saturating_add(n);
        t.insert(k.as_slice(), new.to_be_bytes().as_slice())?;
        Ok(new)
    }
}
