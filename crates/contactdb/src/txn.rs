//! [`Transaction`]: several bulk requests applied as one write transaction, each
//! planned against the database plus the requests before it.

use contactdb_backend::{Origin, PlanInput, Wait, WriteTxn, apply_plan, campaign_of, trigger_json};
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Report, Status};

use crate::database::now_us;
use crate::error::{BulkError, Error};
use crate::workspace::{Workspace, run_plan};

/// A write transaction on one workspace: [`apply`](Transaction::apply) as many bulk
/// requests as needed, then [`commit`](Transaction::commit). Dropping it without
/// committing aborts it: nothing it applied is written.
///
/// Each request is planned against the database as the transaction began plus the
/// requests applied in it before, exactly as if those had been committed; a
/// request whose report is `rejected` changes nothing, and the transaction goes on.
/// The transaction holds the database's single writer until it ends, so keep it
/// short. Each request is planned against what the transaction has written so
/// far (read through it), so memory does not grow with the contacts it changes:
/// the store writes what does not fit its cache to the file before the commit.
/// Requests in a transaction may not carry a
/// `request_id`: a retry of the whole transaction is the caller's to detect.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use contactdb::{BulkRequest, Database, Mode};
/// use serde_json::json;
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path().join("c.redb"))?;
/// let ws = db.workspace("default")?;
///
/// let mut txn = ws.begin()?;
/// txn.apply(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "k1", "name": "Ann"})]))?;
/// // The second request sees the first: k1 exists, so the update finds it.
/// let report = txn.apply(&BulkRequest::new(Mode::Update, vec![json!({"contact_key": "k1", "name": "Anne"})]))?;
/// assert_eq!(report.summary.updated, 1);
/// assert_eq!(ws.count()?, 0);   // readers see nothing before the commit
/// txn.commit()?;
/// assert_eq!(ws.get("k1")?.map(|c| c.columns["name"].clone()), Some(json!("Anne")));
///
/// let mut txn = ws.begin()?;
/// txn.apply(&BulkRequest::new(Mode::Insert, vec![json!({"contact_key": "k2"})]))?;
/// drop(txn);                    // aborts
/// assert_eq!(ws.count()?, 1);
/// # Ok(()) }
/// ```
pub struct Transaction<'ws> {
    ws: &'ws Workspace,
    write: Box<dyn WriteTxn + 'ws>,
    catalog: Catalog,
    now: i64,
    /// Writes were made that only plan the requests after them (see
    /// [`Rejected::WouldBeWrites`]): this transaction must not commit.
    doomed: bool,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("workspace", &self.ws.info().slug)
            .finish_non_exhaustive()
    }
}

/// What a request whose report is `rejected` leaves for the requests after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// Nothing: the next request sees the database as if it had not been made.
    Nothing,
    /// Its valid records' would-be writes: the next request is planned as the rest
    /// of one request (the batches of one import under `on_invalid=abort`).
    WouldBeWrites,
}

impl<'ws> Transaction<'ws> {
    pub(crate) fn begin(ws: &'ws Workspace, wait: Wait) -> Result<Self, Error> {
        let inner = &ws.db().inner;
        let mut write = inner.writer()?.begin_write(ws.id(), wait)?;
        let catalog = Catalog::new(&write.columns()?);
        Ok(Transaction {
            ws,
            write,
            catalog,
            now: now_us(),
            doomed: false,
        })
    }

    /// Plans `req` against the database plus the requests applied before it in this
    /// transaction, and applies it unless its report is `rejected`. Request-level
    /// problems are `Err(BulkError::Request(_))` and change nothing; the
    /// transaction can go on. A request may not carry a `request_id` here
    /// ([`BulkError::RequestIdInTransaction`]): a replay could not tell which
    /// transaction's requests had committed.
    ///
    /// ```
    /// # use contactdb::{BulkError, BulkRequest, Mode, Record, Status};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let mut txn = ws.begin()?;
    /// let missing = txn.apply(&BulkRequest::new(Mode::Update, vec![Record::new("k1").name("Ann").into()]))?;
    /// assert_eq!(missing.status, Status::Rejected); // not_found; the transaction goes on
    /// let mut retry = BulkRequest::new(Mode::Insert, vec![Record::new("k1").into()]);
    /// retry.request_id = Some("r-1".to_owned());
    /// assert!(matches!(txn.apply(&retry), Err(BulkError::RequestIdInTransaction)));
    /// retry.request_id = None;
    /// assert_eq!(txn.apply(&retry)?.summary.inserted, 1);
    /// # txn.commit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&mut self, req: &BulkRequest) -> Result<Report, BulkError> {
        if req.request_id.is_some() {
            return Err(BulkError::RequestIdInTransaction);
        }
        self.step(req, Rejected::Nothing, true)
            .map_err(Error::into_bulk)
    }

    /// As [`Transaction::apply`], with the choice of what a rejected request leaves
    /// for the requests after it.
    pub(crate) fn apply_with(
        &mut self,
        req: &BulkRequest,
        rejected: Rejected,
    ) -> Result<Report, Error> {
        self.step(req, rejected, true)
    }

    /// Plans `req` as [`Transaction::apply_with`] with
    /// [`Rejected::WouldBeWrites`] and remembers its writes for the requests after
    /// it, but writes nothing: the batches after a rejected one in an import that
    /// will not commit.
    pub(crate) fn plan_only(&mut self, req: &BulkRequest) -> Result<Report, Error> {
        self.step(req, Rejected::WouldBeWrites, false)
    }

    fn step(
        &mut self,
        req: &BulkRequest,
        rejected: Rejected,
        write: bool,
    ) -> Result<Report, Error> {
        if req.request_id.is_some() {
            return Err(Error::InvalidArgument(
                "requests applied in a transaction may not carry a request_id".to_owned(),
            ));
        }
        let inner = &self.ws.db().inner;
        let mut prepared = prepare(req, &self.catalog, &inner.limits)?;
        let campaign = campaign_of::<Error>(&mut *self.write, req, &self.catalog, &mut prepared)?;
        // The lookup sees the contacts with the transaction's earlier writes.
        let plan = {
            let lookup = self.write.plan_lookup(&PlanInput {
                req,
                prepared: &prepared,
                catalog: &self.catalog,
            })?;
            run_plan(inner, req, &prepared, &self.catalog, &lookup, self.now)?
        };
        // Writes made only to plan what comes after: the transaction will not commit.
        let planning_only = match (plan.report.status, rejected, write) {
            (Status::Rejected, Rejected::Nothing, _) => return Ok(plan.report),
            (Status::Rejected, Rejected::WouldBeWrites, _) => Some(&plan.rejected_writes),
            (_, _, false) => Some(&plan.writes),
            _ => None,
        };
        if let Some(writes) = planning_only {
            self.doomed = true;
            if !writes.is_empty() {
                self.write.apply(writes)?;
            }
            return Ok(plan.report);
        }
        let trigger = trigger_json(req)?;
        apply_plan(
            &mut *self.write,
            &plan,
            &Origin {
                campaign: campaign.as_ref(),
                trigger: trigger.as_deref(),
                job: None,
                now_us: self.now,
                trim_before_us: self.now.saturating_sub(inner.feed_retention_us),
            },
        )?;
        Ok(plan.report)
    }

    /// Makes everything applied in this transaction durable, at once.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let mut txn = ws.begin()?;
    /// txn.apply(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").into()]))?;
    /// txn.apply(&BulkRequest::new(Mode::Insert, vec![Record::new("k2").into()]))?;
    /// assert_eq!(ws.count()?, 0);
    /// txn.commit()?;
    /// assert_eq!(ws.count()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit(self) -> Result<(), BulkError> {
        self.commit_inner().map_err(Error::into_bulk)
    }

    pub(crate) fn commit_inner(mut self) -> Result<(), Error> {
        if self.doomed {
            return Err(Error::internal(
                "a transaction holding writes made only to plan later requests cannot commit",
            ));
        }
        let inner = &self.ws.db().inner;
        self.write
            .prune_requests(self.now.saturating_sub(inner.retention_us))?;
        self.write.commit()?;
        Ok(())
    }

    /// Ends the transaction without writing anything (as dropping it does).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let mut txn = ws.begin()?;
    /// txn.apply(&BulkRequest::new(Mode::Insert, vec![Record::new("k1").into()]))?;
    /// txn.rollback();
    /// assert_eq!(ws.count()?, 0);
    /// assert_eq!(ws.last_seq()?, 0); // no change event either
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rollback(self) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use contactdb_policy::Mode;
    use serde_json::json;

    use super::*;

    // After a rejected batch of an atomic import, its valid records' would-be
    // writes are written only so that the batches after it are planned over them:
    // the later batch sees them, and the transaction refuses to commit them.
    #[test]
    fn writes_made_only_to_plan_are_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Database::open(dir.path().join("c.redb")).unwrap();
        let ws = db.workspace("default").unwrap();
        let mut txn = Transaction::begin(&ws, Wait::Block).unwrap();
        let records = vec![
            json!({"contact_key": "k1"}),
            json!({"contact_key": "k2", "email": "bad@"}),
        ];
        let first = BulkRequest::new(Mode::Insert, records);
        let report = txn.apply_with(&first, Rejected::WouldBeWrites).unwrap();
        assert_eq!(report.status, Status::Rejected);
        let next = BulkRequest::new(
            Mode::Update,
            vec![json!({"contact_key": "k1", "name": "Ann"})],
        );
        assert_eq!(txn.plan_only(&next).unwrap().summary.updated, 1);
        assert!(txn.commit_inner().is_err());
        assert_eq!(ws.count().unwrap(), 0);
    }
}
