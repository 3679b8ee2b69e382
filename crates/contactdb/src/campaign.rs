//! Campaigns of a workspace: created explicitly, joined by the contacts of the
//! requests that name them, listed in pick order.

use contactdb_backend::{CampaignInfo, Wait};
use contactdb_policy::Catalog;
use serde::Serialize;

use crate::contact::timestamp;
use crate::error::Error;
use crate::workspace::Workspace;

/// Most characters in a campaign name.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// use contactdb::CAMPAIGN_NAME_MAX;
/// assert!(ws.create_campaign(&"x".repeat(CAMPAIGN_NAME_MAX), &[]).is_ok());
/// assert!(ws.create_campaign(&"y".repeat(CAMPAIGN_NAME_MAX + 1), &[]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CAMPAIGN_NAME_MAX: usize = 100;

/// A campaign: contacts to call (or to run a workflow for) in priority order.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// let spring = ws.create_campaign("spring", &["phoneNumber", "Name"])?;
/// assert_eq!(spring.required, ["gsm", "name"]); // canonical column names
/// assert_eq!(spring.members, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Campaign {
    /// Its name, unique in the workspace.
    pub name: String,
    /// Columns every member must have a value for.
    pub required: Vec<String>,
    /// When it was created.
    #[serde(serialize_with = "crate::contact::ser_ts")]
    pub created_at: jiff::Timestamp,
    /// Number of members.
    pub members: u64,
}

impl Campaign {
    fn from_store(c: CampaignInfo) -> Self {
        Campaign {
            name: c.name,
            required: c.required,
            created_at: timestamp(c.created_at_us),
            members: c.members,
        }
    }
}

/// A member of a campaign, as the pick order lists it.
///
/// ```
/// # use contactdb::{BulkRequest, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// ws.create_campaign("spring", &[])?;
/// let mut req = BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").set("priority", 1).into()]);
/// req.campaign = Some("spring".to_owned());
/// ws.bulk(&req)?;
/// let first = &ws.members("spring")?[0];
/// assert_eq!((first.contact_key.as_str(), first.priority, first.joined), ("b", 1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The contact's key (it follows renames).
    pub contact_key: String,
    /// The contact's priority: lower is picked first (0 is the highest).
    pub priority: u32,
    /// Order of joining within the campaign (1 for the first member).
    pub joined: u64,
}

fn check_name(name: &str) -> Result<(), Error> {
    let n = name.chars().count();
    if n == 0 || n > CAMPAIGN_NAME_MAX || name.trim() != name || name.chars().any(char::is_control)
    {
        return Err(Error::InvalidArgument(format!(
            "invalid campaign name {name:?}: 1 to {CAMPAIGN_NAME_MAX} characters, no control characters, no surrounding spaces"
        )));
    }
    Ok(())
}

impl Workspace {
    /// Creates a campaign. `required` names columns (predefined or custom, matched
    /// like request columns) that every contact joining it must have a value for;
    /// a request whose record would join it without one fails that record with
    /// `campaign_column_missing`.
    ///
    /// ```
    /// use contactdb::{BulkRequest, Database, Mode};
    /// use serde_json::json;
    /// # fn main() -> Result<(), contactdb::Error> {
    /// # let dir = tempfile::tempdir().map_err(|e| contactdb::Error::InvalidArgument(e.to_string()))?;
    /// let db = Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// ws.create_campaign("spring", &["gsm"])?;
    /// let mut req = BulkRequest::new(Mode::Upsert, vec![
    ///     json!({"contact_key": "a", "gsm": "+905551112233", "priority": 7}),
    ///     json!({"contact_key": "b", "gsm": "+905551112244", "priority": 0}),
    /// ]);
    /// req.campaign = Some("spring".to_owned());
    /// ws.bulk(&req)?;
    /// let order: Vec<String> = ws.members("spring")?.into_iter().map(|m| m.contact_key).collect();
    /// assert_eq!(order, ["b", "a"]); // priority 0 is picked first
    /// # Ok(()) }
    /// ```
    pub fn create_campaign(&self, name: &str, required: &[&str]) -> Result<Campaign, Error> {
        check_name(name)?;
        let mut w = self
            .db()
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        // The writer lock is held: this read sees the state the write starts from.
        let catalog = Catalog::new(&self.db().inner.store.read()?.columns(self.id())?);
        let mut cols: Vec<String> = Vec::new();
        for raw in required {
            let col = catalog.resolve(raw).map_err(|_| {
                Error::InvalidArgument(format!("campaign column {raw:?} is not a column"))
            })?;
            if !cols.contains(&col.name) {
                cols.push(col.name.clone());
            }
        }
        let c = w.create_campaign(name, &cols, crate::database::now_us())?;
        w.commit()?;
        Ok(Campaign::from_store(c))
    }

    /// Every campaign, in order of creation.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.create_campaign("spring", &[])?;
    /// ws.create_campaign("autumn", &[])?;
    /// let names: Vec<String> = ws.campaigns()?.into_iter().map(|c| c.name).collect();
    /// assert_eq!(names, ["spring", "autumn"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn campaigns(&self) -> Result<Vec<Campaign>, Error> {
        let r = self.db().inner.store.read()?;
        Ok(r.campaigns(self.id())?
            .into_iter()
            .map(Campaign::from_store)
            .collect())
    }

    /// The campaign named `name`.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.create_campaign("spring", &[])?;
    /// let mut req = BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").into()]);
    /// req.campaign = Some("spring".to_owned());
    /// ws.bulk(&req)?;
    /// assert_eq!(ws.campaign("spring")?.map(|c| c.members), Some(2));
    /// assert!(ws.campaign("winter")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn campaign(&self, name: &str) -> Result<Option<Campaign>, Error> {
        let r = self.db().inner.store.read()?;
        Ok(r.campaign(self.id(), name)?.map(Campaign::from_store))
    }

    /// Drops a campaign and its memberships (the contacts stay); returns whether it
    /// existed.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.create_campaign("spring", &[])?;
    /// let mut req = BulkRequest::new(Mode::Insert, vec![Record::new("a").into()]);
    /// req.campaign = Some("spring".to_owned());
    /// ws.bulk(&req)?;
    /// assert!(ws.drop_campaign("spring")?);
    /// assert!(!ws.drop_campaign("spring")?);
    /// assert_eq!(ws.count()?, 1); // the contact stays
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drop_campaign(&self, name: &str) -> Result<bool, Error> {
        let mut w = self
            .db()
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        let dropped = w.drop_campaign(name)?;
        w.commit()?;
        Ok(dropped)
    }

    /// Every member of campaign `name` in pick order: `priority` ascending, then
    /// order of joining. Holds them all in memory; [`Workspace::members_page`]
    /// reads a page at a time.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.create_campaign("spring", &[])?;
    /// let records = [("a", 5), ("b", 0), ("c", 5)].map(|(k, p)| Record::new(k).set("priority", p).into());
    /// let mut req = BulkRequest::new(Mode::Insert, records.to_vec());
    /// req.campaign = Some("spring".to_owned());
    /// ws.bulk(&req)?;
    /// let order: Vec<String> = ws.members("spring")?.into_iter().map(|m| m.contact_key).collect();
    /// assert_eq!(order, ["b", "a", "c"]); // priority, then order of joining
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members(&self, name: &str) -> Result<Vec<Member>, Error> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self.members_page(name, after, 10_000)?;
            let Some(last) = page.last() else {
                return Ok(all);
            };
            after = Some((last.priority, last.joined));
            all.extend(page);
        }
    }

    /// Up to `limit` members of campaign `name` in pick order, after the member
    /// at `(priority, joined)` when given (from the last member of the page
    /// before). One consistent snapshot per call.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.create_campaign("spring", &[])?;
    /// # let mut req = BulkRequest::new(Mode::Insert, ["a", "b", "c"].map(|k| Record::new(k).into()).to_vec());
    /// # req.campaign = Some("spring".to_owned());
    /// # ws.bulk(&req)?;
    /// let (mut keys, mut after) = (Vec::new(), None);
    /// loop {
    ///     let page = ws.members_page("spring", after, 2)?;
    ///     let Some(last) = page.last() else { break };
    ///     after = Some((last.priority, last.joined));
    ///     keys.extend(page.into_iter().map(|m| m.contact_key));
    /// }
    /// assert_eq!(keys, ["a", "b", "c"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members_page(
        &self,
        name: &str,
        after: Option<(u32, u64)>,
        limit: usize,
    ) -> Result<Vec<Member>, Error> {
        let r = self.db().inner.store.read()?;
        let Some(c) = r.campaign(self.id(), name)? else {
            return Err(Error::InvalidArgument(format!("no campaign {name:?}")));
        };
        let members = r.members(self.id(), c.number, after, limit)?;
        let contacts = r.contacts(self.id())?;
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let Some(contact) = contacts.by_internal_id(m.contact_id)? else {
                return Err(Error::internal(format!(
                    "campaign {name:?} lists contact id {} that does not exist; run check",
                    m.contact_id
                )));
            };
            out.push(Member {
                contact_key: contact.key,
                priority: m.priority,
                joined: m.joined,
            });
        }
        Ok(out)
    }
}
