//! [`Snapshot`]: reads of one workspace from one consistent point in time.

use std::ops::ControlFlow;

use contactdb_backend::ContactReads;
use contactdb_policy::Catalog;
use contactdb_policy::normalize::{normalize_email, normalize_phone};

use crate::contact::Contact;
use crate::error::Error;

/// A read-only view of one workspace as of the moment it was taken: every read
/// through it sees the same state, whatever writers commit meanwhile. Reads never
/// block writers, nor writers reads. Holding a snapshot keeps the pages it sees
/// from being reused, so drop it when done.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use contactdb::{BulkRequest, Database, Mode};
/// use serde_json::json;
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path().join("c.redb"))?;
/// let ws = db.workspace("default")?;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "k1", "email": "a@x.io"})]))?;
///
/// let snap = ws.snapshot()?;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "k2"})]))?;
/// assert_eq!(snap.count()?, 1);               // still the state it was taken in
/// assert_eq!(snap.find_by_email("A@X.IO")?.len(), 1);
/// assert_eq!(ws.count()?, 2);
/// # Ok(()) }
/// ```
pub struct Snapshot {
    view: Box<dyn ContactReads + Send + Sync>,
    catalog: Catalog,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    pub(crate) fn new(view: Box<dyn ContactReads + Send + Sync>, catalog: Catalog) -> Self {
        Snapshot { view, catalog }
    }

    /// The contact with this key or alias.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
    /// let snap = ws.snapshot()?;
    /// assert_eq!(snap.get("c-1")?.map(|c| c.version), Some(1));
    /// assert!(snap.get("c-2")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, key_or_alias: &str) -> Result<Option<Contact>, Error> {
        Ok(self
            .view
            .resolve(key_or_alias.trim())
            .map_err(Error::failure)?
            .map(|c| Contact::from_stored(c, &self.catalog)))
    }

    /// Contacts whose email equals `email` after normalization (trim, lower-case).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").email("ann@example.com").into()]))?;
    /// let snap = ws.snapshot()?;
    /// let found = snap.find_by_email(" ANN@example.com")?;
    /// assert_eq!(found.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["c-1"]);
    /// assert!(snap.find_by_email("not an email").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_by_email(&self, email: &str) -> Result<Vec<Contact>, Error> {
        let e = normalize_email(email).map_err(|e| Error::InvalidArgument(e.message))?;
        let found = self.view.contacts_by_email(&e).map_err(Error::failure)?;
        Ok(self.public(found))
    }

    /// Contacts whose gsm equals `phone` after normalization to E.164.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").phone("+905551234567").into()]))?;
    /// let snap = ws.snapshot()?;
    /// let found = snap.find_by_phone("0090 555 123 45 67")?;
    /// assert_eq!(found.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["c-1"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_by_phone(&self, phone: &str) -> Result<Vec<Contact>, Error> {
        let g = normalize_phone(phone).map_err(|e| Error::InvalidArgument(e.message))?;
        let found = self.view.contacts_by_phone(&g).map_err(Error::failure)?;
        Ok(self.public(found))
    }

    /// Every contact, in key order. Holds them all in memory: for large tables use
    /// [`Snapshot::for_each_contact`].
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("b").into(), Record::new("a").into()]))?;
    /// let keys: Vec<String> = ws.snapshot()?.contacts()?.into_iter().map(|c| c.key).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contacts(&self) -> Result<Vec<Contact>, Error> {
        let mut all = Vec::new();
        self.for_each_contact(|c| {
            all.push(c);
            ControlFlow::Continue(())
        })?;
        all.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    /// Calls `f` on every contact in insertion order (the order in which the
    /// contacts were created; a rekey keeps a contact's place), streaming (memory
    /// does not grow with the table). Stops when `f` breaks.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # use std::ops::ControlFlow;
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let records = ["b", "a", "c"].map(|k| Record::new(k).into()).to_vec();
    /// ws.bulk(&BulkRequest::new(Mode::Insert, records))?;
    /// let mut first_two = Vec::new();
    /// ws.snapshot()?.for_each_contact(|c| {
    ///     first_two.push(c.key);
    ///     if first_two.len() == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    /// })?;
    /// assert_eq!(first_two, ["b", "a"]); // insertion order
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_each_contact(
        &self,
        mut f: impl FnMut(Contact) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        self.view
            .for_each(&mut |c| f(Contact::from_stored(c, &self.catalog)))
            .map_err(Error::failure)
    }

    /// Number of contacts.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let snap = ws.snapshot()?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
    /// assert_eq!(snap.count()?, 0);
    /// assert_eq!(ws.snapshot()?.count()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count(&self) -> Result<u64, Error> {
        self.view.count().map_err(Error::failure)
    }

    fn public(&self, stored: Vec<contactdb_policy::Contact>) -> Vec<Contact> {
        stored
            .into_iter()
            .map(|c| Contact::from_stored(c, &self.catalog))
            .collect()
    }
}
