//! Background jobs: a bulk request stored durably when it is submitted, applied
//! later by a runner, chunk by chunk, each chunk's writes, the job's progress and
//! its report so far committed in one transaction. A job interrupted by a crash
//! resumes from its last committed chunk, so it applies every record exactly once.

use ahash::AHashMap;
use contactdb_backend::{
    JobDataKind, JobRecord, Origin, PlanInput, Wait, WriteTxn, apply_plan, campaign_of,
    reached_ids_in, trigger_json,
};
use contactdb_merge::{LeftOut, Part, Plan};
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Limits, OnInvalid, Prepared, Report, Status};
use serde::Serialize;

use crate::contact::timestamp;
use crate::database::now_us;
use crate::error::Error;
use crate::workspace::{Workspace, run_plan_part};

/// Default records a job applies per transaction.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use contactdb::JOB_CHUNK_RECORDS_DEFAULT;
/// assert_eq!(JOB_CHUNK_RECORDS_DEFAULT, 10_000);
/// // Smaller chunks: less work to redo after a crash, more transactions.
/// let _db = contactdb::Database::builder()
///     .job_chunk_records(JOB_CHUNK_RECORDS_DEFAULT / 10)
///     .open(dir.path().join("c.redb"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const JOB_CHUNK_RECORDS_DEFAULT: usize = 10_000;
/// Default most records one job may hold.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use contactdb::JOB_RECORDS_MAX_DEFAULT;
/// assert_eq!(JOB_RECORDS_MAX_DEFAULT, 1_000_000);
/// let _db = contactdb::Database::builder()
///     .job_records_max(2 * JOB_RECORDS_MAX_DEFAULT) // room for bigger jobs
///     .open(dir.path().join("c.redb"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const JOB_RECORDS_MAX_DEFAULT: usize = 1_000_000;
/// Default seconds a runner holds a job between two chunks before another runner
/// may take it over (PostgreSQL; the redb file has one runner process).
///
/// ```
/// assert_eq!(contactdb::JOB_LEASE_SECONDS_DEFAULT, 60);
/// ```
pub const JOB_LEASE_SECONDS_DEFAULT: u32 = 60;

/// Where a job is in its life.
///
/// ```
/// # use contactdb::{BulkRequest, JobState, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// let id = ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("a").into()]))?;
/// assert_eq!(ws.job(&id)?.map(|j| j.state), Some(JobState::Queued));
/// assert_eq!(ws.run_job(&id)?.state, JobState::Succeeded);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for a runner.
    Queued,
    /// Started (and, after a crash, resumed by the next runner).
    Running,
    /// Ran to its end; the report says what happened to each record.
    Succeeded,
    /// Could not run: the request was refused as a whole, or storage failed; the
    /// error says why.
    Failed,
    /// Cancelled before it started.
    Cancelled,
}

impl JobState {
    fn of(s: contactdb_backend::JobState) -> Self {
        match s {
            contactdb_backend::JobState::Queued => JobState::Queued,
            contactdb_backend::JobState::Running => JobState::Running,
            contactdb_backend::JobState::Succeeded => JobState::Succeeded,
            contactdb_backend::JobState::Failed => JobState::Failed,
            contactdb_backend::JobState::Cancelled => JobState::Cancelled,
        }
    }
}

impl JobState {
    /// Whether the job has ended.
    ///
    /// ```
    /// use contactdb::JobState;
    /// assert!(!JobState::Queued.is_final() && !JobState::Running.is_final());
    /// assert!(JobState::Succeeded.is_final() && JobState::Failed.is_final() && JobState::Cancelled.is_final());
    /// ```
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job's state, progress and (once it ran to its end) report.
///
/// ```
/// # use contactdb::{BulkRequest, JobState, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// let records = vec![Record::new("a").into(), Record::new("b").into()];
/// let job = ws.run_job(&ws.submit(&BulkRequest::new(Mode::Insert, records))?)?;
/// assert_eq!((job.state, job.processed, job.total), (JobState::Succeeded, 2, 2));
/// assert_eq!(job.report.map(|r| r.summary.inserted), Some(2));
/// assert!(job.error.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Its id (a UUID).
    pub id: String,
    /// Its state.
    pub state: JobState,
    /// Records applied so far.
    pub processed: u64,
    /// Records in the request.
    pub total: u64,
    /// When it was submitted.
    #[serde(serialize_with = "crate::contact::ser_ts")]
    pub submitted_at: jiff::Timestamp,
    /// When its state or progress last changed.
    #[serde(serialize_with = "crate::contact::ser_ts")]
    pub updated_at: jiff::Timestamp,
    /// The report: complete once the job succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn job_of(r: &JobRecord, with_report: bool) -> Result<Job, Error> {
    let state = JobState::of(r.state);
    let report = if with_report && state == JobState::Succeeded && !r.report_json.is_empty() {
        Some(
            serde_json::from_str(&r.report_json)
                .map_err(|e| Error::internal(format!("stored job report unreadable: {e}")))?,
        )
    } else {
        None
    };
    Ok(Job {
        id: uuid::Uuid::from_bytes(r.id).hyphenated().to_string(),
        state,
        processed: r.processed,
        total: r.total,
        submitted_at: timestamp(r.submitted_at_us),
        updated_at: timestamp(r.updated_at_us),
        report,
        error: r.error.clone(),
    })
}

fn parse_id(id: &str) -> Result<[u8; 16], Error> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| *u.as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("{id:?} is not a job id")))
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}

/// Folds the reports of a job's chunks (in order) into the job's report.
fn combine(parts: Vec<Report>, request_id: Option<String>) -> Report {
    let mut out = Report {
        status: Status::Applied,
        summary: Default::default(),
        results: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        request_id,
        replayed: false,
        request_error: None,
    };
    out.results
        .reserve_exact(parts.iter().map(|p| p.results.len()).sum());
    for p in parts {
        out.summary.add(&p.summary);
        out.results.extend(p.results);
        out.errors.extend(p.errors);
        out.warnings.extend(p.warnings);
    }
    let s = &out.summary;
    out.status = if s.failed == 0 {
        Status::Applied
    } else if s.inserted + s.updated + s.unchanged == 0 {
        Status::Rejected
    } else {
        Status::Partial
    };
    out
}

/// Why a job's request cannot run at all: a request-level error, with its code.
fn refusal(e: &Error) -> Option<String> {
    match e {
        Error::Request(r) => Some(format!("{}: {r}", r.code())),
        _ => None,
    }
}

impl Workspace {
    /// Stores `req` as a background job and returns its id at once. A runner
    /// ([`Workspace::run_jobs`], [`Workspace::run_job`]) applies it later. A job is
    /// one request for its semantics, however many transactions apply it; it may
    /// hold up to the job limit ([`crate::Builder::job_records_max`]) records.
    ///
    /// ```
    /// use contactdb::{BulkRequest, Database, JobState, Mode};
    /// use serde_json::json;
    /// # fn main() -> Result<(), contactdb::Error> {
    /// # let dir = tempfile::tempdir().map_err(|e| contactdb::Error::InvalidArgument(e.to_string()))?;
    /// let db = Database::open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let id = ws.submit(&BulkRequest::new(Mode::Upsert, vec![json!({"contact_key": "a"})]))?;
    /// assert_eq!(ws.job(&id)?.map(|j| j.state), Some(JobState::Queued));
    /// let job = ws.run_job(&id)?;
    /// assert_eq!((job.state, job.processed, job.total), (JobState::Succeeded, 1, 1));
    /// assert_eq!(job.report.map(|r| r.summary.inserted), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn submit(&self, req: &BulkRequest) -> Result<String, Error> {
        if req.request_id.is_some() {
            return Err(Error::InvalidArgument(
                "a job does not take a request_id: its job id identifies it".to_owned(),
            ));
        }
        let json = serde_json::to_string(req).map_err(internal("request not serializable"))?;
        let total = u64::try_from(req.records.len()).unwrap_or(u64::MAX);
        let id = *uuid::Uuid::new_v4().as_bytes();
        self.db()
            .inner
            .writer()?
            .submit_job(self.id(), id, json, total, now_us())?;
        Ok(uuid::Uuid::from_bytes(id).hyphenated().to_string())
    }

    /// The job with this id: state, progress, and the report once it succeeded.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, JobState, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let id = ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("a").into()]))?;
    /// let queued = ws.job(&id)?.ok_or("no such job")?;
    /// assert_eq!((queued.state, queued.processed, queued.total), (JobState::Queued, 0, 1));
    /// assert!(queued.report.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn job(&self, id: &str) -> Result<Option<Job>, Error> {
        let r = self.db().inner.store.read()?;
        r.job(self.id(), &parse_id(id)?)?
            .map(|j| job_of(&j, true))
            .transpose()
    }

    /// Every job in submission order, without reports.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, JobState, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let first = ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("a").into()]))?;
    /// let second = ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("b").into()]))?;
    /// ws.run_job(&first)?;
    /// let states: Vec<(String, JobState)> = ws.jobs()?.into_iter().map(|j| (j.id, j.state)).collect();
    /// assert_eq!(states, [(first, JobState::Succeeded), (second, JobState::Queued)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn jobs(&self) -> Result<Vec<Job>, Error> {
        let r = self.db().inner.store.read()?;
        r.jobs(self.id(), false)?
            .iter()
            .map(|j| job_of(j, false))
            .collect()
    }

    /// Cancels a queued job (its request is dropped); returns whether it was
    /// queued. A job that has started runs to its end.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, JobState, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let id = ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("a").into()]))?;
    /// assert!(ws.cancel_job(&id)?);
    /// assert!(!ws.cancel_job(&id)?); // no longer queued
    /// assert_eq!(ws.run_job(&id)?.state, JobState::Cancelled);
    /// assert_eq!(ws.count()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_job(&self, id: &str) -> Result<bool, Error> {
        let bytes = parse_id(id)?;
        let _runner = self.db().inner.job_runner.lock();
        let mut w = self
            .db()
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        let Some(mut j) = w.job(&bytes)? else {
            return Err(Error::InvalidArgument(format!("no job {id:?}")));
        };
        if j.state != contactdb_backend::JobState::Queued {
            return Ok(false);
        }
        j.state = contactdb_backend::JobState::Cancelled;
        j.updated_at_us = now_us();
        w.put_job(&j)?;
        w.clear_job_data(j.number)?;
        w.commit()?;
        Ok(true)
    }

    /// Runs every queued or interrupted job of this workspace to its end, in
    /// submission order; returns how many ran.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("a").into()]))?;
    /// ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("b").into()]))?;
    /// assert_eq!(ws.run_jobs()?, 2);
    /// assert_eq!(ws.run_jobs()?, 0); // nothing left
    /// assert_eq!(ws.count()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_jobs(&self) -> Result<usize, Error> {
        self.run_jobs_until(&|| false)
    }

    /// As [`Workspace::run_jobs`], but asks `stop` before each chunk and before
    /// each job: once it says yes, the job in progress stays `running` after its
    /// last committed chunk (the next run resumes it) and no other job starts.
    /// Returns how many jobs ran to their end.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # use std::sync::atomic::{AtomicBool, Ordering};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.submit(&BulkRequest::new(Mode::Upsert, vec![Record::new("a").into()]))?;
    /// let shutdown = AtomicBool::new(true); // e.g. set by a signal handler
    /// assert_eq!(ws.run_jobs_until(&|| shutdown.load(Ordering::Relaxed))?, 0);
    /// shutdown.store(false, Ordering::Relaxed);
    /// assert_eq!(ws.run_jobs_until(&|| shutdown.load(Ordering::Relaxed))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_jobs_until(&self, stop: &dyn Fn() -> bool) -> Result<usize, Error> {
        let mut ended = 0;
        loop {
            if stop() {
                break;
            }
            let Some(job) = self.claim(None)? else { break };
            // A job that does not end here was stopped (the loop ends) or taken
            // over by another runner (which finishes it).
            if self.run_claimed(job, stop)?.state.is_final() {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Runs job `id` to its end (resuming it if it was interrupted) and returns it;
    /// a job that has ended is returned as it is.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, JobState, Mode, OnInvalid, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let mut req = BulkRequest::new(Mode::Insert, vec![Record::new("a").into(), Record::new("b").email("bad").into()]);
    /// req.on_invalid = OnInvalid::Skip;
    /// let job = ws.run_job(&ws.submit(&req)?)?;
    /// let report = job.report.ok_or("no report")?;
    /// assert_eq!((job.state, report.summary.inserted, report.summary.failed), (JobState::Succeeded, 1, 1));
    /// assert_eq!(ws.run_job(&job.id)?.state, JobState::Succeeded); // ended: returned as it is
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_job(&self, id: &str) -> Result<Job, Error> {
        let id = parse_id(id)?;
        match self.claim(Some(&id))? {
            Some(job) => self.run_claimed(job, &|| false),
            None => self.current(&id),
        }
    }

    /// Claims job `id` (or the oldest one) for this process's runner; `None` when
    /// it has ended or another runner holds it.
    fn claim(&self, id: Option<&[u8; 16]>) -> Result<Option<JobRecord>, Error> {
        let inner = &self.db().inner;
        let _runner = inner.job_runner.lock();
        Ok(inner
            .writer()?
            .claim_job(self.id(), id, &inner.runner, inner.job_lease_us, now_us())?)
    }

    /// Job `id` as stored now.
    fn current(&self, id: &[u8; 16]) -> Result<Job, Error> {
        let Some(r) = self.db().inner.store.read()?.job(self.id(), id)? else {
            return Err(Error::InvalidArgument(format!(
                "no job {}",
                uuid::Uuid::from_bytes(*id).hyphenated()
            )));
        };
        job_of(&r, true)
    }

    /// Runs a claimed job until it ends, `stop` says so, or another runner takes
    /// it over; returns it as stored then.
    fn run_claimed(&self, job: JobRecord, stop: &dyn Fn() -> bool) -> Result<Job, Error> {
        // One runner per process at a time (with redb, another process cannot open
        // the file for writing at all; with PostgreSQL, claims keep runners of
        // several processes apart).
        let _runner = self.db().inner.job_runner.lock();
        let id = job.id;
        match self.run_to_end(job.clone(), stop) {
            Ok(()) => {}
            Err(e) => match refusal(&e) {
                Some(reason) => self.fail_job(&id, reason)?,
                None => return Err(e),
            },
        }
        self.current(&id)
    }

    /// Job `id` in `w`, if this runner still holds it (it is not final, and no
    /// other runner's lease is on it); `None` once it was taken over or ended.
    fn hold(&self, w: &mut dyn WriteTxn, id: &[u8; 16]) -> Result<Option<JobRecord>, Error> {
        let inner = &self.db().inner;
        let Some(mut j) = w.job(id)? else {
            return Err(Error::internal("a job vanished while it ran".to_owned()));
        };
        let ours = !j.state.is_final()
            && j.lease_owner
                .as_deref()
                .is_none_or(|owner| owner == inner.runner);
        if !ours {
            return Ok(None);
        }
        let now = now_us();
        j.updated_at_us = now;
        if j.lease_owner.is_some() {
            j.lease_until_us = Some(now.saturating_add(inner.job_lease_us));
        }
        Ok(Some(j))
    }

    fn fail_job(&self, id: &[u8; 16], reason: String) -> Result<(), Error> {
        let mut w = self
            .db()
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        let Some(mut j) = self.hold(&mut *w, id)? else {
            return Ok(());
        };
        j.state = contactdb_backend::JobState::Failed;
        j.error = Some(reason);
        release(&mut j);
        w.put_job(&j)?;
        w.clear_job_data(j.number)?;
        w.commit()?;
        Ok(())
    }

    fn run_to_end(&self, job: JobRecord, stop: &dyn Fn() -> bool) -> Result<(), Error> {
        let inner = &self.db().inner;
        let req = self.stored_request(&job)?;
        let limits = Limits {
            records_max: inner.job_records_max,
        };
        let catalog = Catalog::new(&inner.store.read()?.columns(self.id())?);
        let mut prepared = prepare(&req, &catalog, &limits)?;
        if req.on_invalid == OnInvalid::Abort {
            return self.run_whole(&job, &req, &catalog, prepared);
        }
        prepared.list_reached = true;
        let Some((job, left_out)) = self.start(&job, &req, &catalog, &prepared)? else {
            return Ok(());
        };
        let mut run = ChunkRun {
            trigger: trigger_json(&req)?,
            job_text: uuid::Uuid::from_bytes(job.id).hyphenated().to_string(),
            reached: self.stored_reached(&job)?,
            left_out,
            req,
            catalog,
            prepared,
        };
        let total = run.req.records.len();
        let chunk = inner.job_chunk_records.max(1);
        let mut processed = usize::try_from(job.processed).unwrap_or(usize::MAX);
        while processed < total {
            if stop() {
                return Ok(());
            }
            let end = total.min(processed.saturating_add(chunk));
            if !self.run_chunk(&job, &mut run, processed..end)? {
                return Ok(());
            }
            processed = end;
        }
        // The records and their plans are not needed to finish (the report is).
        let request_id = run.req.request_id.take();
        drop(run);
        self.finish(&job, request_id)
    }

    fn stored_request(&self, job: &JobRecord) -> Result<BulkRequest, Error> {
        let stored =
            self.db()
                .inner
                .store
                .read()?
                .job_data(self.id(), job.number, JobDataKind::Request)?;
        if stored.is_empty() {
            return Err(Error::internal(
                "a running job has no stored request".to_owned(),
            ));
        }
        // Stored in pieces, in key order (one piece on PostgreSQL).
        let text: Vec<u8> = stored.into_iter().flat_map(|(_, piece)| piece).collect();
        serde_json::from_slice(&text)
            .map_err(|e| Error::internal(format!("stored job request unreadable: {e}")))
    }

    fn stored_reached(&self, job: &JobRecord) -> Result<AHashMap<u64, u32>, Error> {
        let mut reached = AHashMap::new();
        let stored =
            self.db()
                .inner
                .store
                .read()?
                .job_data(self.id(), job.number, JobDataKind::Reached)?;
        for (k, v) in stored {
            if let (Ok(c), Ok(first)) = (
                <[u8; 8]>::try_from(k.as_slice()),
                <[u8; 4]>::try_from(v.as_slice()),
            ) {
                let (c, first) = (u64::from_be_bytes(c), u32::from_be_bytes(first));
                reached.insert(c, first);
            }
        }
        Ok(reached)
    }

    /// Applies records `range` of a started job in one transaction with its
    /// progress; `false` when the job was taken over (nothing written).
    fn run_chunk(
        &self,
        job: &JobRecord,
        run: &mut ChunkRun,
        range: std::ops::Range<usize>,
    ) -> Result<bool, Error> {
        let inner = &self.db().inner;
        let (start, end) = (range.start, range.end);
        // The request without its records, then the chunk's (not all of them).
        let records = std::mem::take(&mut run.req.records);
        let mut part_req = run.req.clone();
        part_req.records = records.get(range.clone()).unwrap_or_default().to_vec();
        run.req.records = records;
        let mut w = inner.writer()?.begin_write(self.id(), Wait::Block)?;
        let Some(mut j) = self.hold(&mut *w, &job.id)? else {
            return Ok(false);
        };
        let campaign = campaign_of::<Error>(&mut *w, &run.req, &run.catalog, &mut run.prepared)?;
        let now = now_us();
        let part = Part {
            first_index: u32::try_from(start).unwrap_or(u32::MAX),
            left_out: run.left_out.as_deref().and_then(|l| l.get(range)),
            reached_before: Some(&run.reached),
        };
        let plan = {
            let lookup = w.plan_lookup(&PlanInput {
                req: &part_req,
                prepared: &run.prepared,
                catalog: &run.catalog,
            })?;
            run_plan_part(
                inner,
                &part_req,
                &run.prepared,
                &run.catalog,
                &lookup,
                now,
                &part,
            )?
        };
        if plan.report.status != Status::Rejected {
            let ids = apply_plan(
                &mut *w,
                &plan,
                &Origin {
                    campaign: campaign.as_ref(),
                    trigger: run.trigger.as_deref(),
                    job: Some(&run.job_text),
                    now_us: now,
                    trim_before_us: now.saturating_sub(inner.feed_retention_us),
                },
            )?;
            remember_reached(&mut *w, job.number, &plan, &ids, &mut run.reached)?;
        }
        let part_report =
            serde_json::to_vec(&plan.report).map_err(internal("report not serializable"))?;
        w.put_job_data(
            job.number,
            JobDataKind::Report,
            &u32::try_from(start).unwrap_or(u32::MAX).to_be_bytes(),
            &part_report,
        )?;
        j.processed = u64::try_from(end).unwrap_or(u64::MAX);
        w.put_job(&j)?;
        w.commit()?;
        Ok(true)
    }

    /// Starts (or resumes) a claimed job: the duplicate policy's decision, made
    /// once and stored with the job's running state. Returns the job as held and
    /// the decision; `None` when another runner took it over.
    #[allow(clippy::type_complexity)]
    fn start(
        &self,
        job: &JobRecord,
        req: &BulkRequest,
        catalog: &Catalog,
        prepared: &Prepared,
    ) -> Result<Option<(JobRecord, Option<Vec<Option<LeftOut>>>)>, Error> {
        let inner = &self.db().inner;
        let mut w = inner.writer()?.begin_write(self.id(), Wait::Block)?;
        let Some(mut j) = self.hold(&mut *w, &job.id)? else {
            return Ok(None);
        };
        // Refuse a missing campaign before anything is applied.
        let mut p = prepared.clone();
        campaign_of::<Error>(&mut *w, req, catalog, &mut p)?;
        let stored = w.job_data(j.number, JobDataKind::LeftOut)?;
        let decided = if let Some((_, v)) = stored.first() {
            Some(serde_json::from_slice(v).map_err(internal("stored job decision unreadable"))?)
        } else if req.on_duplicate == contactdb_policy::OnDuplicate::Merge {
            None
        } else {
            let l = {
                let lookup = w.plan_lookup(&PlanInput {
                    req,
                    prepared,
                    catalog,
                })?;
                contactdb_merge::left_out(inner.pool.as_ref(), req, prepared, catalog, &lookup)?
            };
            let bytes = serde_json::to_vec(&l).map_err(internal("decision not serializable"))?;
            w.put_job_data(j.number, JobDataKind::LeftOut, &[], &bytes)?;
            Some(l)
        };
        j.state = contactdb_backend::JobState::Running;
        w.put_job(&j)?;
        w.commit()?;
        Ok(Some((j, decided)))
    }

    fn finish(&self, job: &JobRecord, request_id: Option<String>) -> Result<(), Error> {
        let inner = &self.db().inner;
        let mut w = inner.writer()?.begin_write(self.id(), Wait::Block)?;
        let Some(mut j) = self.hold(&mut *w, &job.id)? else {
            return Ok(());
        };
        let stored = w.job_data(j.number, JobDataKind::Report)?;
        let json_bytes: usize = stored.iter().map(|(_, v)| v.len()).sum();
        let parts = stored
            .into_iter()
            .map(|(_, v)| serde_json::from_slice::<Report>(&v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal("stored chunk report unreadable"))?;
        let report = combine(parts, request_id);
        j.state = contactdb_backend::JobState::Succeeded;
        // About the parts' size: the text is not copied as it grows.
        let mut json = Vec::with_capacity(json_bytes.saturating_add(4096));
        serde_json::to_writer(&mut json, &report).map_err(internal("report not serializable"))?;
        drop(report);
        j.report_json = String::from_utf8(json)
            .map_err(|e| Error::internal(format!("report not UTF-8: {e}")))?;
        release(&mut j);
        w.put_job(&j)?;
        w.clear_job_data(j.number)?;
        w.commit()?;
        Ok(())
    }

    /// Applies a job whose invalid records abort it, in one transaction.
    fn run_whole(
        &self,
        job: &JobRecord,
        req: &BulkRequest,
        catalog: &Catalog,
        mut prepared: Prepared,
    ) -> Result<(), Error> {
        let inner = &self.db().inner;
        let mut w = inner.writer()?.begin_write(self.id(), Wait::Block)?;
        let Some(mut j) = self.hold(&mut *w, &job.id)? else {
            return Ok(());
        };
        let campaign = campaign_of::<Error>(&mut *w, req, catalog, &mut prepared)?;
        let now = now_us();
        let plan = {
            let lookup = w.plan_lookup(&PlanInput {
                req,
                prepared: &prepared,
                catalog,
            })?;
            run_plan_part(
                inner,
                req,
                &prepared,
                catalog,
                &lookup,
                now,
                &Part::default(),
            )?
        };
        if plan.report.status != Status::Rejected {
            let trigger = trigger_json(req)?;
            let job_text = uuid::Uuid::from_bytes(j.id).hyphenated().to_string();
            apply_plan(
                &mut *w,
                &plan,
                &Origin {
                    campaign: campaign.as_ref(),
                    trigger: trigger.as_deref(),
                    job: Some(&job_text),
                    now_us: now,
                    trim_before_us: now.saturating_sub(inner.feed_retention_us),
                },
            )?;
        }
        j.state = contactdb_backend::JobState::Succeeded;
        j.processed = j.total;
        j.report_json =
            serde_json::to_string(&plan.report).map_err(internal("report not serializable"))?;
        release(&mut j);
        w.put_job(&j)?;
        w.clear_job_data(j.number)?;
        w.commit()?;
        Ok(())
    }
}

/// Ends a job's lease (it is final).
fn release(j: &mut JobRecord) {
    j.lease_owner = None;
    j.lease_until_us = None;
}

/// Stores, with the chunk, the first record that reached each contact the chunk
/// reached for the first time.
fn remember_reached(
    w: &mut dyn WriteTxn,
    number: u64,
    plan: &Plan,
    ids: &[u64],
    reached: &mut AHashMap<u64, u32>,
) -> Result<(), Error> {
    for (r, id) in plan.reached.iter().zip(reached_ids_in(w, plan, ids)?) {
        if !reached.contains_key(&id) {
            reached.insert(id, r.first);
            w.put_job_data(
                number,
                JobDataKind::Reached,
                &id.to_be_bytes(),
                &r.first.to_be_bytes(),
            )?;
        }
    }
    Ok(())
}

/// What every chunk of a running skip job shares.
struct ChunkRun {
    req: BulkRequest,
    catalog: Catalog,
    prepared: Prepared,
    /// The duplicate policy's decision, made at the job's start.
    left_out: Option<Vec<Option<LeftOut>>>,
    /// Contacts reached by committed chunks → first record that reached each.
    reached: AHashMap<u64, u32>,
    trigger: Option<String>,
    job_text: String,
}
