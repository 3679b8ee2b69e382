//! [`Workspace`]: one tenant's master contact table, and the bulk request path.

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use contactdb_backend::{
    ApplyError, CampaignInfo, Clock, Failure, PlanInput, ReadTxn, Wait, WorkspaceId, apply_request,
};
use contactdb_merge::{Lookup, Part, Plan};
use contactdb_policy::Prepared;
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, ColumnSpec, Report, Status};

use crate::contact::Contact;
use crate::database::{Database, Inner, WorkspaceInfo, now_us};
use crate::error::{BulkError, Error};
use crate::layered::{Carry, Layered};
use crate::snapshot::Snapshot;
use crate::txn::{Rejected, Transaction};

/// A handle on one workspace of a [`Database`]. Cheap to clone; `Send + Sync`.
///
/// ```
/// # use contactdb::{BulkRequest, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// let ws = db.workspace("default")?;
/// let handles: Vec<_> = (0..4).map(|i| {
///     let ws = ws.clone();
///     std::thread::spawn(move || ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new(format!("k{i}")).into()])))
/// }).collect();
/// for h in handles {
///     h.join().map_err(|_| "a writer panicked")??;
/// }
/// assert_eq!(ws.count()?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Workspace {
    db: Database,
    id: WorkspaceId,
    info: WorkspaceInfo,
}

impl Workspace {
    pub(crate) fn new(db: Database, info: contactdb_backend::WorkspaceInfo) -> Self {
        Workspace {
            id: info.id,
            info: WorkspaceInfo::from_store(&info),
            db,
        }
    }

    /// Slug, UUID and creation time.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// assert_eq!(ws.info().slug, "default");
    /// assert_eq!(db.workspace(&ws.info().uuid)?.info(), ws.info());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> &WorkspaceInfo {
        &self.info
    }

    /// Applies a bulk request, waiting for any write in progress.
    ///
    /// Request-level problems (no records or too many, an unknown or disabled
    /// column, a missing campaign, ...) are `Err(BulkError::Request(_))` and change
    /// nothing; per-record problems are in the returned [`Report`]. The request is
    /// applied in one transaction: all of it or none of it survives a crash.
    ///
    /// ```
    /// use contactdb::{BulkRequest, Database, Mode, Outcome, Status};
    /// use serde_json::json;
    /// # fn main() -> Result<(), contactdb::Error> {
    /// # let dir = tempfile::tempdir().map_err(|e| contactdb::Error::InvalidArgument(e.to_string()))?;
    /// let db = Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "k1", "name": "Ann"})]))?;
    ///
    /// // Update mode: an unknown key is `not_found`; under the default `abort`
    /// // nothing is written and the valid record is `not_applied`.
    /// let report = ws.bulk(&BulkRequest::new(Mode::Update, vec![
    ///     json!({"contact_key": "k1", "name": "Anne"}),
    ///     json!({"contact_key": "nope", "name": "X"}),
    /// ]))?;
    /// assert_eq!(report.status, Status::Rejected);
    /// assert_eq!(report.results[0].outcome, Outcome::NotApplied);
    /// assert_eq!(report.errors[0].code.as_str(), "not_found");
    /// assert_eq!(ws.get("k1")?.map(|c| c.columns["name"].clone()), Some(json!("Ann")));
    /// # Ok(()) }
    /// ```
    pub fn bulk(&self, req: &BulkRequest) -> Result<Report, BulkError> {
        self.bulk_with(req, Wait::Block).map_err(Error::into_bulk)
    }

    /// As [`Workspace::bulk`], but returns [`BulkError::Busy`] at once instead of
    /// waiting for another write.
    ///
    /// ```
    /// use contactdb::{BulkError, BulkRequest, Database, Mode};
    /// use serde_json::json;
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let txn = ws.begin()?;                        // holds the write lock
    /// let req = BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "k1"})]);
    /// assert!(matches!(ws.try_bulk(&req), Err(BulkError::Busy)));
    /// drop(txn);
    /// assert_eq!(ws.try_bulk(&req)?.summary.inserted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_bulk(&self, req: &BulkRequest) -> Result<Report, BulkError> {
        self.bulk_with(req, Wait::No).map_err(Error::into_bulk)
    }

    pub(crate) fn bulk_with(&self, req: &BulkRequest, wait: Wait) -> Result<Report, Error> {
        let inner = &self.db.inner;
        let write = inner.writer()?.begin_write(self.id, wait)?;
        let clock = Clock {
            now_us: now_us(),
            retention_us: inner.retention_us,
            feed_retention_us: inner.feed_retention_us,
        };
        apply_request(
            write,
            req,
            &inner.limits,
            &clock,
            |prepared, catalog, lookup| {
                run_plan(inner, req, prepared, catalog, lookup, clock.now_us)
            },
        )
        .map_err(|e| match e {
            ApplyError::Request(r) => Error::Request(r),
            ApplyError::Failure(f) => Error::from(f),
            ApplyError::Plan(e) => e,
        })
    }

    /// Applies many batches in ONE write transaction: each batch is planned against
    /// the database plus the batches before it, every batch is planned and handed to
    /// `on_report` (so every failure is known), and the transaction commits only if
    /// no batch was `rejected`. Returns the overall status: `rejected` (nothing was
    /// written), `partial` or `applied`.
    ///
    /// This is how an import of many batches with `on_invalid=abort` writes nothing
    /// when any record fails. Each batch is planned through the transaction (it
    /// sees the batches before it as written), so memory does not grow with the
    /// contacts changed: what outgrows the page cache is written to the file
    /// before the commit. Batches may not carry a
    /// `request_id`. An `Err` from `batches` or `on_report` aborts and is returned.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record, Status};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let ok = BulkRequest::new(Mode::Insert, vec![Record::new("k1").email("ann@example.com").into()]);
    /// let bad = BulkRequest::new(Mode::Insert, vec![Record::new("k2").email("bob@example").into()]);
    /// let mut failed = Vec::new();
    /// let status = ws.bulk_atomic([ok, bad].into_iter().map(Ok::<_, contactdb::Error>), |r| {
    ///     failed.extend(r.errors.iter().map(|e| e.code.as_str().to_owned()));
    ///     Ok(())
    /// })?;
    /// assert_eq!((status, failed), (Status::Rejected, vec!["invalid_email".to_owned()]));
    /// assert_eq!(ws.count()?, 0); // the first batch was not written either
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bulk_atomic<E: From<Error>>(
        &self,
        batches: impl Iterator<Item = Result<BulkRequest, E>>,
        on_report: impl FnMut(&Report) -> Result<(), E>,
    ) -> Result<Status, E> {
        self.bulk_batches(batches, on_report)
    }

    /// As [`Workspace::bulk_atomic`], but writes nothing: every batch is validated
    /// and matched against one snapshot of the database plus the batches before it,
    /// and reported exactly as [`Workspace::bulk_atomic`] would report it. It reads
    /// only, so it runs beside a writer, on a database opened read-only
    /// ([`Database::open_read_only`]), and leaves the file untouched. This is a dry
    /// run of an import.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use contactdb::{BulkRequest, Database, Mode, Status};
    /// use serde_json::json;
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let batches = [
    ///     BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "k1"})]),
    ///     BulkRequest::new(Mode::Update, vec![json!({"contact_key": "k1", "name": "Ann"})]),
    /// ];
    /// let mut outcomes = Vec::new();
    /// let status = ws.bulk_dry_run(batches.into_iter().map(Ok::<_, contactdb::Error>), |r| {
    ///     outcomes.push(r.summary.inserted + r.summary.updated);
    ///     Ok(())
    /// })?;
    /// assert_eq!((status, outcomes), (Status::Applied, vec![1, 1]));
    /// assert_eq!(ws.count()?, 0);
    /// # Ok(()) }
    /// ```
    pub fn bulk_dry_run<E: From<Error>>(
        &self,
        batches: impl Iterator<Item = Result<BulkRequest, E>>,
        on_report: impl FnMut(&Report) -> Result<(), E>,
    ) -> Result<Status, E> {
        let inner = &self.db.inner;
        let (read, catalog) = self.view()?;
        let mut carry = Carry::default();
        let now = now_us();
        run_batches(batches, on_report, |req, _| {
            let mut prepared = prepare(req, &catalog, &inner.limits)?;
            campaign_setup(req, &catalog, &mut prepared, |name| {
                read.campaign(self.id, name)
            })?;
            let base = read.plan_lookup(
                self.id,
                &PlanInput {
                    req,
                    prepared: &prepared,
                    catalog: &catalog,
                },
            )?;
            let layered = Layered {
                base: &base,
                carry: &carry,
            };
            let plan = run_plan(inner, req, &prepared, &catalog, &layered, now)?;
            carry.absorb(if plan.report.status == Status::Rejected {
                &plan.rejected_writes
            } else {
                &plan.writes
            });
            Ok(plan.report)
        })
    }

    fn bulk_batches<E: From<Error>>(
        &self,
        batches: impl Iterator<Item = Result<BulkRequest, E>>,
        on_report: impl FnMut(&Report) -> Result<(), E>,
    ) -> Result<Status, E> {
        let mut txn = Transaction::begin(self, Wait::Block)?;
        // Once a batch is rejected nothing will be committed; the later batches are
        // still planned (so every failure is reported) as the rest of one request: a
        // rejected batch carries what its valid records would do.
        let status = run_batches(batches, on_report, |req, after_rejection| {
            if after_rejection {
                txn.plan_only(req)
            } else {
                txn.apply_with(req, Rejected::WouldBeWrites)
            }
        })?;
        if status != Status::Rejected {
            txn.commit_inner()?;
        }
        Ok(status)
    }

    /// Starts a write transaction that applies several requests atomically,
    /// waiting for any write in progress (see [`Transaction`]).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let mut txn = ws.begin()?;
    /// txn.apply(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").into()]))?;
    /// txn.apply(&BulkRequest::new(Mode::Update, vec![Record::new("k1").new_key("k2").into()]))?;
    /// txn.commit()?;
    /// assert_eq!(ws.get("k2")?.map(|c| c.version), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn begin(&self) -> Result<Transaction<'_>, BulkError> {
        Transaction::begin(self, Wait::Block).map_err(Error::into_bulk)
    }

    /// As [`Workspace::begin`], but returns [`BulkError::Busy`] at once instead of
    /// waiting for another write.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let first = ws.try_begin()?;
    /// assert!(matches!(ws.try_begin(), Err(contactdb::BulkError::Busy)));
    /// first.rollback();
    /// assert!(ws.try_begin().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_begin(&self) -> Result<Transaction<'_>, BulkError> {
        Transaction::begin(self, Wait::No).map_err(Error::into_bulk)
    }

    /// The campaign `req` names, as `write` sees it; sets `prepared` up to check its
    /// required columns and to list the contacts that join it. A missing campaign
    /// is a request-level error.
    pub(crate) fn id(&self) -> WorkspaceId {
        self.id
    }

    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Declares a custom column, or changes an existing one's flags
    /// (`import_enabled`, `required`). Changing its type is refused while any
    /// contact has a value for it.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, ColumnSpec, ColumnType, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").set("tier", 2).into()]))?;
    /// // Flags may change; the type may not while a contact has a value.
    /// ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(false))?;
    /// let retype = ws.declare_column(ColumnSpec::new("tier", ColumnType::Json));
    /// assert!(matches!(retype, Err(contactdb::Error::InvalidArgument(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn declare_column(&self, spec: ColumnSpec) -> Result<(), Error> {
        let mut w = self
            .db
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        w.declare_column(&spec)?;
        w.commit()?;
        Ok(())
    }

    /// The custom columns, in declaration order.
    ///
    /// ```
    /// # use contactdb::{ColumnSpec, ColumnType};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer))?;
    /// ws.declare_column(ColumnSpec::new("notes", ColumnType::String { max_len: 500 }))?;
    /// let names: Vec<String> = ws.columns()?.into_iter().map(|c| c.name).collect();
    /// assert_eq!(names, ["tier", "notes"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn columns(&self) -> Result<Vec<ColumnSpec>, Error> {
        let r = self.db.inner.store.read()?;
        Ok(r.columns(self.id)?.into_iter().map(|c| c.spec).collect())
    }

    fn view(&self) -> Result<(Box<dyn ReadTxn + '_>, Catalog), Error> {
        let r = self.db.inner.store.read()?;
        let catalog = Catalog::new(&r.columns(self.id)?);
        Ok((r, catalog))
    }

    /// A consistent read-only view of this workspace as of now (see [`Snapshot`]).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let before = ws.snapshot()?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").into()]))?;
    /// assert!(before.get("k1")?.is_none());
    /// assert!(ws.snapshot()?.get("k1")?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let (r, catalog) = self.view()?;
        Ok(Snapshot::new(r.contacts(self.id)?, catalog))
    }

    /// The contact with this key or alias (the key of a record that matched the
    /// contact by email or phone).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, MatchOn, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").email("ann@example.com").into()]))?;
    /// // Matched by email under another key: that key becomes an alias.
    /// let mut req = BulkRequest::new(Mode::Upsert, vec![Record::new("crm-7").email("ann@example.com").into()]);
    /// req.match_on = MatchOn::ALL;
    /// ws.bulk(&req)?;
    /// let ann = ws.get("crm-7")?.ok_or("missing")?;
    /// assert_eq!((ann.key.as_str(), ann.aliases.as_slice()), ("k1", &["crm-7".to_owned()][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, key_or_alias: &str) -> Result<Option<Contact>, Error> {
        self.snapshot()?.get(key_or_alias)
    }

    /// Contacts whose email equals `email` after normalization (trim, lower-case).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let twins = vec![Record::new("k1").email("ann@example.com").into(), Record::new("k2").email("ANN@example.com").into()];
    /// ws.bulk(&BulkRequest::new(Mode::Insert, twins))?;
    /// let keys: Vec<String> = ws.find_by_email("Ann@Example.com")?.into_iter().map(|c| c.key).collect();
    /// assert_eq!(keys, ["k1", "k2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_by_email(&self, email: &str) -> Result<Vec<Contact>, Error> {
        self.snapshot()?.find_by_email(email)
    }

    /// Contacts whose gsm equals `phone` after normalization to E.164.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").phone("+90 555 123 45 67").into()]))?;
    /// assert_eq!(ws.find_by_phone("00905551234567")?[0].key, "k1");
    /// assert!(ws.find_by_phone("+905550000000")?.is_empty());
    /// assert!(ws.find_by_phone("call me").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn find_by_phone(&self, phone: &str) -> Result<Vec<Contact>, Error> {
        self.snapshot()?.find_by_phone(phone)
    }

    /// Every contact, in key order. Holds them all in memory: for large tables use
    /// [`Workspace::for_each_contact`].
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let records = ["b", "c", "a"].map(|k| Record::new(k).into()).to_vec();
    /// ws.bulk(&BulkRequest::new(Mode::Insert, records))?;
    /// let keys: Vec<String> = ws.contacts()?.into_iter().map(|c| c.key).collect();
    /// assert_eq!(keys, ["a", "b", "c"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contacts(&self) -> Result<Vec<Contact>, Error> {
        self.snapshot()?.contacts()
    }

    /// Calls `f` on every contact in insertion order (the order in which the
    /// contacts were created; a rekey keeps a contact's place), from one consistent
    /// snapshot, streaming (memory does not grow with the table). Stops when `f`
    /// breaks.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # use std::ops::ControlFlow;
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("b").into(), Record::new("a").into()]))?;
    /// ws.bulk(&BulkRequest::new(Mode::Update, vec![Record::new("b").new_key("z").into()]))?;
    /// let mut keys = Vec::new();
    /// ws.for_each_contact(|c| { keys.push(c.key); ControlFlow::Continue(()) })?;
    /// assert_eq!(keys, ["z", "a"]); // the renamed contact keeps its place
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_each_contact(&self, f: impl FnMut(Contact) -> ControlFlow<()>) -> Result<(), Error> {
        self.snapshot()?.for_each_contact(f)
    }

    /// Number of contacts.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let records = (0..3).map(|i| Record::new(format!("k{i}")).into()).collect();
    /// ws.bulk(&BulkRequest::new(Mode::Insert, records))?;
    /// assert_eq!(ws.count()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count(&self) -> Result<u64, Error> {
        self.snapshot()?.count()
    }
}

/// Plans a request. A panic inside the merge (a bug) becomes an internal [`crate::StorageError`];
/// the caller's write transaction is then dropped, which aborts it.
pub(crate) fn run_plan<L: Lookup<Error = Failure>>(
    inner: &Inner,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    now: i64,
) -> Result<Plan, Error> {
    run_plan_part(inner, req, prepared, catalog, lookup, now, &Part::default())
}

/// As [`run_plan`], for one part of a larger request (a job's chunk).
pub(crate) fn run_plan_part<L: Lookup<Error = Failure>>(
    inner: &Inner,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    now: i64,
    part: &Part<'_>,
) -> Result<Plan, Error> {
    catch_unwind(AssertUnwindSafe(|| {
        contactdb_merge::plan_part(
            inner.pool.as_ref(),
            inner.merge_chunk_records,
            req,
            prepared,
            catalog,
            lookup,
            now,
            part,
        )
    }))
    .map_err(|_| Error::internal("the merge panicked; nothing was written".to_owned()))?
    .map_err(Error::from)
}

/// Runs `step` on every batch, hands each report to `on_report`, and returns the
/// overall status: `rejected` once any batch is, else `partial` once any batch is,
/// else `applied`. `step` learns whether a batch before was rejected. Batches may
/// not carry a `request_id`.
fn run_batches<E: From<Error>>(
    batches: impl Iterator<Item = Result<BulkRequest, E>>,
    mut on_report: impl FnMut(&Report) -> Result<(), E>,
    mut step: impl FnMut(&BulkRequest, bool) -> Result<Report, Error>,
) -> Result<Status, E> {
    let mut status = Status::Applied;
    for batch in batches {
        let req = batch?;
        if req.request_id.is_some() {
            return Err(Error::InvalidArgument(
                "batches of one import may not carry a request_id".to_owned(),
            )
            .into());
        }
        let report = step(&req, status == Status::Rejected)?;
        on_report(&report)?;
        match report.status {
            Status::Rejected => status = Status::Rejected,
            Status::Partial if status == Status::Applied => status = Status::Partial,
            _ => {}
        }
    }
    Ok(status)
}

/// The campaign `req` names, found by `find` (see
/// [`contactdb_backend::setup_campaign`]).
fn campaign_setup(
    req: &BulkRequest,
    catalog: &Catalog,
    prepared: &mut Prepared,
    find: impl FnOnce(&str) -> Result<Option<CampaignInfo>, Failure>,
) -> Result<Option<CampaignInfo>, Error> {
    contactdb_backend::setup_campaign(req, catalog, prepared, |name| Ok(find(name)?))
}
