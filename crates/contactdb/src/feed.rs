//! The change feed of a workspace: every insert, update, rekey, alias and
//! campaign join, in commit order, with durable cursors for named consumers.

use serde::Serialize;

use crate::contact::timestamp;
use crate::error::Error;
use crate::workspace::Workspace;

/// How many events a feed read returns when not told (the bulk-add seed's batch).
///
/// ```
/// # use contactdb::{BulkRequest, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// let records = (0..600).map(|i| Record::new(format!("k{i}")).into()).collect();
/// ws.bulk(&BulkRequest::new(Mode::Insert, records))?;
/// let first = ws.feed(0, contactdb::FEED_CHUNK_DEFAULT)?;
/// assert_eq!(first.len(), 500);
/// assert_eq!(ws.feed(first[499].seq, contactdb::FEED_CHUNK_DEFAULT)?.len(), 100);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const FEED_CHUNK_DEFAULT: usize = 500;

/// What a change-feed event reports.
///
/// ```
/// # use contactdb::{BulkRequest, EventKind, MatchOn, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").email("ann@example.com").into()]))?;
/// let mut req = BulkRequest::new(Mode::Upsert, vec![Record::new("crm-7").email("ann@example.com").into()]);
/// req.match_on = MatchOn::ALL;
/// ws.bulk(&req)?;
/// let events: Vec<(EventKind, Option<String>)> = ws.feed(0, 10)?.into_iter().map(|e| (e.kind, e.detail)).collect();
/// assert_eq!(events, [(EventKind::Insert, None), (EventKind::Alias, Some("crm-7".to_owned()))]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

impl EventKind {
    fn of(k: contactdb_backend::EventKind) -> Self {
        match k {
            contactdb_backend::EventKind::Insert => EventKind::Insert,
            contactdb_backend::EventKind::Update => EventKind::Update,
            contactdb_backend::EventKind::Rekey => EventKind::Rekey,
            contactdb_backend::EventKind::Alias => EventKind::Alias,
            contactdb_backend::EventKind::Join => EventKind::Join,
        }
    }
}

/// One change-feed event. Events are appended in the transaction of the change
/// they report, so a reader never sees a change without its event or the other way
/// round, and none is lost or doubled by a crash.
///
/// ```
/// # use contactdb::{BulkRequest, EventKind, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").into()]))?;
/// ws.bulk(&BulkRequest::new(Mode::Update, vec![Record::new("k1").name("Ann").into()]))?;
/// let last = ws.feed(1, 10)?.pop().ok_or("no event")?;
/// assert_eq!((last.seq, last.kind, last.key.as_str(), last.version), (2, EventKind::Update, "k1", 2));
/// assert_eq!(last.workspace, "default");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// ws.ack("mailer", 0)?;
/// let mailer = &ws.consumers()?[0];
/// assert_eq!((mailer.name.as_str(), mailer.acked), ("mailer", 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
                    kind: EventKind::of(e.kind),
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
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").into()]))?;
    /// let batch = ws.feed_for("mailer", 500)?;
    /// assert_eq!(batch.len(), 2);
    /// assert_eq!(ws.feed_for("mailer", 500)?.len(), 2); // not acknowledged yet
    /// ws.ack("mailer", batch[1].seq)?;
    /// assert!(ws.feed_for("mailer", 500)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn feed_for(&self, name: &str, limit: usize) -> Result<Vec<Event>, Error> {
        let after = self.db().inner.store.read()?.consumer(self.id(), name)?;
        self.feed(after, limit)
    }

    /// Records that consumer `name` has handled every event up to `seq` (creating
    /// the consumer). A position never moves back. Returns the position.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").into()]))?;
    /// assert_eq!(ws.ack("mailer", 2)?, 2);
    /// assert_eq!(ws.ack("mailer", 1)?, 2); // never moves back
    /// assert!(ws.ack("", 1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ack(&self, name: &str, seq: u64) -> Result<u64, Error> {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!(
                "invalid consumer name {name:?}: 1 to 255 bytes, no control characters"
            )));
        }
        Ok(self.db().inner.writer()?.ack(self.id(), name, seq)?)
    }

    /// Removes consumer `name`, so that its position no longer keeps events from
    /// being trimmed; returns whether it existed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.ack("mailer", 0)?;
    /// assert!(ws.drop_consumer("mailer")?);
    /// assert!(!ws.drop_consumer("mailer")?);
    /// assert!(ws.consumers()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drop_consumer(&self, name: &str) -> Result<bool, Error> {
        Ok(self.db().inner.writer()?.drop_consumer(self.id(), name)?)
    }

    /// The named consumers and their positions.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").into()]))?;
    /// ws.ack("mailer", 2)?;
    /// ws.ack("dialer", 1)?;
    /// let mut at: Vec<(String, u64)> = ws.consumers()?.into_iter().map(|c| (c.name, c.acked)).collect();
    /// at.sort();
    /// assert_eq!(at, [("dialer".to_owned(), 1), ("mailer".to_owned(), 2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumers(&self) -> Result<Vec<Consumer>, Error> {
        let r = self.db().inner.store.read()?;
        Ok(r.consumers(self.id())?
            .into_iter()
            .map(|(name, acked)| Consumer { name, acked })
            .collect())
    }

    /// The sequence number of the last event ever appended (0 if none).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// assert_eq!(ws.last_seq()?, 0);
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").into()]))?;
    /// assert_eq!(ws.last_seq()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_seq(&self) -> Result<u64, Error> {
        Ok(self.db().inner.store.read()?.last_seq(self.id())?)
    }
}
