//! Campaigns and their members, in pick order: `priority` ascending, then order of
//! joining (the `campaign_members_pick` index). Members are contacts by internal
//! id, so a rekey keeps them.

use contactdb_backend::{CampaignInfo, Member, WorkspaceId};
use postgres::{GenericClient, Row};

use crate::rows::{signed, unsigned};
use crate::{Error, PgRead, PgWrite, WorkspaceSql};

/// The columns [`info`] reads, in order.
const CAMPAIGN_COLUMNS: &str = "number, name, required, created_at_us, members";

fn info(row: &Row) -> Result<CampaignInfo, Error> {
    let number: i64 = row.try_get(0)?;
    Ok(CampaignInfo {
        number: u32::try_from(number)
            .map_err(|_| Error::damaged("campaigns", format!("campaign number {number}")))?,
        name: row.try_get(1)?,
        required: row.try_get(2)?,
        created_at_us: row.try_get(3)?,
        members: unsigned("campaigns", row.try_get(4)?)?,
    })
}

fn member(row: &Row) -> Result<Member, Error> {
    let priority: i64 = row.try_get(1)?;
    Ok(Member {
        contact_id: unsigned("campaign_members", row.try_get(0)?)?,
        priority: u32::try_from(priority)
            .map_err(|_| Error::damaged("campaign_members", format!("priority {priority}")))?,
        joined: unsigned("campaign_members", row.try_get(2)?)?,
    })
}

fn by_name(
    c: &mut impl GenericClient,
    ws: WorkspaceId,
    name: &str,
) -> Result<Option<CampaignInfo>, Error> {
    c.query_opt(
        &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE workspace_id = $1 AND name = $2"),
        &[&ws.sql(), &name],
    )?
    .as_ref()
    .map(info)
    .transpose()
}

impl PgRead {
    /// The campaign of `ws` named `name`.
    pub fn campaign(&self, ws: WorkspaceId, name: &str) -> Result<Option<CampaignInfo>, Error> {
        self.with(|c| by_name(c, ws, name))
    }

    /// Every campaign of `ws`, by number (creation order).
    pub fn campaigns(&self, ws: WorkspaceId) -> Result<Vec<CampaignInfo>, Error> {
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE workspace_id = $1 ORDER BY number"
                ),
                &[&ws.sql()],
            )?
            .iter()
            .map(info)
            .collect()
        })
    }

    /// Up to `limit` members of campaign `number` of `ws` in pick order, after
    /// `after` (a member's `(priority, joined)`).
    pub fn members(
        &self,
        ws: WorkspaceId,
        number: u32,
        after: Option<(u32, u64)>,
        limit: usize,
    ) -> Result<Vec<Member>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (p, j) = match after {
            Some((p, j)) => (i64::from(p), signed(j)?),
            // Before every member: priorities and joining numbers are never negative.
            None => (-1, -1),
        };
        self.with(|c| {
            c.query(
                "SELECT contact_id, priority, joined FROM campaign_members
                 WHERE workspace_id = $1 AND campaign = $2 AND (priority, joined) > ($3, $4)
                 ORDER BY priority, joined LIMIT $5",
                &[&ws.sql(), &i64::from(number), &p, &j, &limit],
            )?
            .iter()
            .map(member)
            .collect()
        })
    }

    /// The campaigns of `ws` contact `contact_id` is a member of: `(campaign
    /// number, member)`, by campaign number.
    pub fn memberships(
        &self,
        ws: WorkspaceId,
        contact_id: u64,
    ) -> Result<Vec<(u32, Member)>, Error> {
        let id = signed(contact_id)?;
        self.with(|c| {
            c.query(
                "SELECT contact_id, priority, joined, campaign FROM campaign_members
                 WHERE workspace_id = $1 AND contact_id = $2 ORDER BY campaign",
                &[&ws.sql(), &id],
            )?
            .iter()
            .map(|r| {
                let n: i64 = r.try_get(3)?;
                let n = u32::try_from(n)
                    .map_err(|_| Error::damaged("campaign_members", format!("campaign {n}")))?;
                Ok((n, member(r)?))
            })
            .collect()
        })
    }
}

impl PgWrite {
    /// The campaign named `name`, as this transaction sees it.
    pub fn campaign(&mut self, name: &str) -> Result<Option<CampaignInfo>, Error> {
        let ws = self.workspace();
        by_name(self.client()?, ws, name)
    }

    /// Creates campaign `name`; [`Error::CampaignExists`] if the name is taken.
    /// The caller validates the name and the required columns (canonical column
    /// names, as the campaign keeps them).
    pub fn create_campaign(
        &mut self,
        name: &str,
        required: &[String],
        now_us: i64,
    ) -> Result<CampaignInfo, Error> {
        if self.campaign(name)?.is_some() {
            return Err(Error::CampaignExists {
                name: name.to_owned(),
            });
        }
        let w = self.workspace().sql();
        let c = self.client()?;
        let row = c.query_opt(
            "UPDATE counters SET next_campaign = next_campaign + 1
             WHERE workspace_id = $1 RETURNING next_campaign - 1",
            &[&w],
        )?;
        let Some(row) = row else {
            return Err(Error::damaged(
                "counters",
                "the workspace has no counters row",
            ));
        };
        let number: i64 = row.try_get(0)?;
        if u32::try_from(number).is_err() {
            return Err(Error::damaged("counters", "campaign numbers exhausted"));
        }
        let row = c.query_one(
            &format!(
                "INSERT INTO campaigns (workspace_id, number, name, required, created_at_us)
                 VALUES ($1, $2, $3, $4, $5) RETURNING {CAMPAIGN_COLUMNS}"
            ),
            &[&w, &number, &name, &required, &now_us],
        )?;
        info(&row)
    }

    /// Drops campaign `name` and every membership in it (the contacts stay);
    /// returns whether it existed.
    pub fn drop_campaign(&mut self, name: &str) -> Result<bool, Error> {
        let Some(info) = self.campaign(name)? else {
            return Ok(false);
        };
        let w = self.workspace().sql();
        let number = i64::from(info.number);
        let c = self.client()?;
        c.execute(
            "DELETE FROM campaign_members WHERE workspace_id = $1 AND campaign = $2",
            &[&w, &number],
        )?;
        c.execute(
            "DELETE FROM campaigns WHERE workspace_id = $1 AND number = $2",
            &[&w, &number],
        )?;
        Ok(true)
    }

    /// Makes contact `contact_id` a member of campaign `number` with `priority`,
    /// unless it is one already; returns whether it joined now.
    pub fn join_campaign(
        &mut self,
        number: u32,
        contact_id: u64,
        priority: u32,
    ) -> Result<bool, Error> {
        Ok(self
            .join_campaign_many(number, &[(contact_id, priority)])?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Makes each `(contact_id, priority)` of `joiners` a member of campaign
    /// `number`, in that order, unless it is one already (or named earlier in
    /// `joiners`); returns, for each, whether it joined now. Three statements,
    /// whatever the number of joiners.
    pub fn join_campaign_many(
        &mut self,
        number: u32,
        joiners: &[(u64, u32)],
    ) -> Result<Vec<bool>, Error> {
        if joiners.is_empty() {
            return Ok(Vec::new());
        }
        let w = self.workspace().sql();
        let campaign = i64::from(number);
        let ids = joiners
            .iter()
            .map(|(id, _)| signed(*id))
            .collect::<Result<Vec<i64>, Error>>()?;
        let c = self.client()?;
        let mut members: ahash::AHashSet<i64> = ahash::AHashSet::with_capacity(ids.len());
        // One index probe per joiner (see `crate::lookup`): `= ANY` of thousands of ids
        // is planned as a scan of the campaign's members.
        for row in c.query(
            "SELECT u.id FROM unnest($3::bigint[]) AS u(id)
             CROSS JOIN LATERAL (SELECT 1 FROM campaign_members
                                 WHERE workspace_id = $1 AND campaign = $2 AND contact_id = u.id
                                 OFFSET 0) AS m",
            &[&w, &campaign, &ids],
        )? {
            members.insert(row.try_get(0)?);
        }
        let mut joined_now = Vec::with_capacity(joiners.len());
        let (mut new_ids, mut new_priorities) = (Vec::new(), Vec::new());
        for (id, (_, priority)) in ids.iter().zip(joiners) {
            let joins = members.insert(*id);
            joined_now.push(joins);
            if joins {
                new_ids.push(*id);
                new_priorities.push(i64::from(*priority));
            }
        }
        if new_ids.is_empty() {
            return Ok(joined_now);
        }
        let n = i64::try_from(new_ids.len()).unwrap_or(i64::MAX);
        let row = c.query_opt(
            "UPDATE campaigns SET next_join = next_join + $3, members = members + $3
             WHERE workspace_id = $1 AND number = $2 RETURNING next_join - $3",
            &[&w, &campaign, &n],
        )?;
        let Some(row) = row else {
            return Err(Error::damaged(
                "campaigns",
                format!("no campaign {number} to join"),
            ));
        };
        let first: i64 = row.try_get(0)?;
        c.execute(
            "INSERT INTO campaign_members (workspace_id, campaign, contact_id, priority, joined)
             SELECT $1, $2, t.contact_id, t.priority, $5 + t.ord - 1
             FROM unnest($3::bigint[], $4::bigint[]) WITH ORDINALITY AS t(contact_id, priority, ord)",
            &[&w, &campaign, &new_ids, &new_priorities, &first],
        )?;
        Ok(joined_now)
    }

    /// Moves every membership of contact `contact_id` to `priority` in its
    /// campaigns' pick order (keeping its order of joining).
    pub fn set_member_priority(&mut self, contact_id: u64, priority: u32) -> Result<(), Error> {
        self.set_member_priorities(&[(contact_id, priority)])
    }

    /// [`PgWrite::set_member_priority`] for each `(contact_id, priority)`, in one
    /// statement (a contact named twice takes its last priority).
    pub fn set_member_priorities(&mut self, moves: &[(u64, u32)]) -> Result<(), Error> {
        if moves.is_empty() {
            return Ok(());
        }
        let mut last: ahash::AHashMap<i64, i64> = ahash::AHashMap::with_capacity(moves.len());
        for (id, p) in moves {
            last.insert(signed(*id)?, i64::from(*p));
        }
        let (ids, priorities): (Vec<i64>, Vec<i64>) = last.into_iter().unzip();
        let w = self.workspace().sql();
        self.client()?.execute(
            "UPDATE campaign_members m SET priority = t.priority
             FROM unnest($2::bigint[], $3::bigint[]) AS t(contact_id, priority)
             WHERE m.workspace_id = $1 AND m.contact_id = t.contact_id
               AND m.priority <> t.priority",
            &[&w, &ids, &priorities],
        )?;
        Ok(())
    }
}
