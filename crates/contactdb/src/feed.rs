//! The change feed of a workspace: every insert, update, rekey, alias and
//! campaign join, in commit order, with durable cursors for named consumers.

use contactdb_store::Wait;
use serde::Serialize;

use crate::contact::timestamp;
use crate::error::Error;
use crate::workspace::Workspace;

/// How many events a feed read returns when not told (the bulk-add seed's batch).
pub const FEED_CHUNK_DEFAULT: usize = 500;

/// What a change-feed event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A contact was inserted.
    Insert,
    /// A contact's columns changed.
    Update,
    /// A contact was renamed; `detail` is its previous key.
    Rekey,
    /// A contact gained an alias; `detail` is the alias.
    Alias,
    /// A contact joined a campaign; `detail` is the campaign.
    Join,
}

impl From<contactdb_store::EventKind> for EventKind {
    fn from(k: contactdb_store::EventKind) -> Self {
        match k {
            contactdb_store::EventKind::Insert => EventKind::Insert,
            contactdb_store::EventKind::Update => EventKind::Update,
            contactdb_store::EventKind::Rekey => EventKind::Rekey,
            contactdb_store::EventKind::Alias => EventKind::Alias,
            contactdb_store::EventKind::Join => EventKind::Join,
        }
    }
}

/// One change-feed event. Events are appended in the transaction of the change
/// they report, so a reader never sees a change without its event or the other way
/// round, and none is lost or doubled by a crash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Sequence number: strictly increasing within the workspace, in commit order.
    pub seq: u64,
    /// The workspace's slug.
    pub workspace: String,
    /// The contact's key after the change.
    pub key: String,
    /// What happened.
    pub kind: EventKind,
    /// The contact's version after the change.
    pub version: u64,
    /// When the change was made.
    #[serde(serialize_with = "crate::contact::ser_ts")]
    pub at: jiff::Timestamp,
    /// The previous key (rekey), the alias (alias) or the campaign (join).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The trigger of the request that made the change.
    pub trigger: Option<serde_json::Value>,
    /// The job that made the change, when a job did.
    pub job: Option<String>,
}

/// A named reader of the feed and how far it has acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumer {
    /// Its name.
    pub name: String,
    /// The last sequence number it acknowledged.
    pub acked: u64,
}

impl Workspace {
    /// Up to `limit` events with a sequence number above `after`, in order.
    ///
    /// ```
    /// use contactdb::{BulkRequest, Database, EventKind, Mode};
    /// use serde_json::json;
    /// # fn main() -> Result<(), contactdb::Error> {
    /// # let dir = tempfile::tempdir().map_err(|e| contactdb::Error::InvalidArgument(e.to_string()))?;
    /// let db = Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "a"})]))?;
    /// ws.bulk(&BulkRequest::new(Mode::Update, vec![json!({"contact_key": "a", "new_contact_key": "b"})]))?;
    /// let kinds: Vec<(EventKind, String)> =
    ///     ws.feed(0, 500)?.into_iter().map(|e| (e.kind, e.key)).collect();
    /// assert_eq!(kinds, [(EventKind::Insert, "a".into()), (EventKind::Rekey, "b".into())]);
    /// # Ok(()) }
    /// ```
    pub fn feed(&self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        let r = self.db().inner.store.read()?;
        let slug = &self.info().slug;
        r.events(self.id(), after, limit)?
            .into_iter()
            .map(|e| {
                Ok(Event {
                    seq: e.seq,
                    workspace: slug.clone(),
                    key: e.key,
                    kind: e.kind.into(),
                    version: e.version,
                    at: timestamp(e.at_us),
                    detail: e.detail,
                    trigger: match e.trigger {
                        Some(t) => Some(serde_json::from_str(&t).map_err(|err| {
                            Error::internal(format!("stored trigger unreadable: {err}"))
                        })?),
                        None => None,
                    },
                    job: e.job,
                })
            })
            .collect()
    }

    /// Up to `limit` events after consumer `name`'s acknowledged position (a new
    /// consumer starts at the beginning). Reading does not move the position:
    /// [`Workspace::ack`] does, once the events are handled.
    pub fn feed_for(&self, name: &str, limit: usize) -> Result<Vec<Event>, Error> {
        let after = self.db().inner.store.read()?.consumer(self.id(), name)?;
        self.feed(after, limit)
    }

    /// Records that consumer `name` has handled every event up to `seq` (creating
    /// the consumer). A position never moves back. Returns the position.
    pub fn ack(&self, name: &str, seq: u64) -> Result<u64, Error> {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!(
                "invalid consumer name {name:?}: 1 to 255 bytes, no control characters"
            )));
        }
        let mut w = self.db().inner.store.begin_write(Wait::Block)?;
        let at = w.ack(self.id(), name, seq)?;
        w.commit()?;
        Ok(at)
    }

    /// Removes consumer `name`, so that its position no longer keeps events from
    /// being trimmed; returns whether it existed.
    pub fn drop_consumer(&self, name: &str) -> Result<bool, Error> {
        let mut w = self.db().inner.store.begin_write(Wait::Block)?;
        let existed = w.drop_consumer(self.id(), name)?;
        w.commit()?;
        Ok(existed)
    }

    /// The named consumers and their positions.
    pub fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        let r = self.db().inner.store.read()?;
        Ok(r.consumers(self.id())?
            .into_iter()
            .map(|(name, acked)| Consumer { name, acked })
            .collect())
    }

    /// The sequence number of the last event ever appended (0 if none).
    pub fn last_seq(&self) -> Result<u64, Error> {
        Ok(self.db().inner.store.read()?.last_seq(self.id())?)
    }
}
