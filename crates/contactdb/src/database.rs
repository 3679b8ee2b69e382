//! [`Database`]: one contactdb file, its workspaces, and its settings.

use std::path::Path;
use std::sync::Arc;

use contactdb_backend::{Backend, Failure};
use contactdb_pg::{PgOptions, PgStore};
use contactdb_policy::Limits;
use contactdb_policy::limits::{RECORDS_MAX_CEILING, RECORDS_MAX_DEFAULT};
use contactdb_store::{Store, StoreOptions};

use crate::error::{Error, OpenError, WorkspaceError, open_error, pg_open_error, workspace_error};
use crate::workspace::Workspace;

/// Default redb page cache: 64 MiB (redb's own default is 1 GiB per database).
///
/// ```
/// assert_eq!(contactdb::CACHE_SIZE_BYTES_DEFAULT, 64 << 20);
/// let defaults = format!("{:?}", contactdb::Database::builder());
/// assert!(defaults.contains("cache_size_bytes: 67108864"));
/// ```
pub const CACHE_SIZE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Default days a `request_id` is remembered: a retry within them is answered with
/// the first application's report instead of being applied again.
///
/// ```
/// assert_eq!(contactdb::REQUEST_ID_RETENTION_DAYS_DEFAULT, 7);
/// ```
pub const REQUEST_ID_RETENTION_DAYS_DEFAULT: u32 = 7;
/// Default days a change-feed event is kept after every consumer has read it.
///
/// ```
/// assert_eq!(contactdb::FEED_RETENTION_DAYS_DEFAULT, 7);
/// ```
pub const FEED_RETENTION_DAYS_DEFAULT: u32 = 7;

pub(crate) struct Inner {
    /// The storage engine: a redb file or a PostgreSQL database.
    pub(crate) store: Box<dyn Backend>,
    /// Opened read-only: every write is refused before it reaches the backend.
    read_only: bool,
    pub(crate) limits: Limits,
    pub(crate) retention_us: i64,
    /// How long change-feed events are kept once every consumer has read them.
    pub(crate) feed_retention_us: i64,
    /// Pool for phase 1 of merges; `None` = rayon's global pool.
    pub(crate) pool: Option<rayon::ThreadPool>,
    /// Records per chunk of phase-1 work (see `contactdb_merge::plan_chunked`).
    pub(crate) merge_chunk_records: usize,
    /// Records a job applies per transaction.
    pub(crate) job_chunk_records: usize,
    /// Most records one job may hold.
    pub(crate) job_records_max: usize,
    /// Held by the job runner of this process while it runs a job.
    pub(crate) job_runner: std::sync::Mutex<()>,
    /// This process's name as a job runner (its jobs' lease owner).
    pub(crate) runner: String,
    /// How long a runner's claim on a job lasts between two chunks.
    pub(crate) job_lease_us: i64,
    /// About the most bytes the reports of one `bulk_each` transaction may hold
    /// before it commits: twice the page cache's size.
    pub(crate) group_bytes_max: usize,
}

/// An open contactdb file. Cheap to clone; `Send + Sync`, so one handle can be
/// shared by every thread of a program. Writes are serialized (one write
/// transaction at a time); reads never block and see the last committed state.
///
/// ```
/// # use contactdb::{BulkRequest, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// let writer = db.clone();
/// std::thread::spawn(move || -> Result<(), contactdb::Error> {
///     let ws = writer.workspace("default")?;
///     ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
///     Ok(())
/// })
/// .join()
/// .map_err(|_| "the writer panicked")??;
/// assert_eq!(db.workspace("default")?.count()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// A workspace's identity: either its slug or its UUID names it.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// let acme = db.create_workspace("acme")?;
/// assert_eq!(acme.uuid.len(), 36);
/// assert_eq!(db.workspace("acme")?.info(), &acme);      // by slug
/// assert_eq!(db.workspace(&acme.uuid)?.info(), &acme);  // by UUID
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkspaceInfo {
    /// `[a-z0-9][a-z0-9-]{0,62}`.
    pub slug: String,
    /// Stable UUID, hyphenated lower-case.
    pub uuid: String,
    /// When it was created.
    #[serde(serialize_with = "ser_ts")]
    pub created_at: jiff::Timestamp,
}

fn ser_ts<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

impl WorkspaceInfo {
    pub(crate) fn from_store(w: &contactdb_backend::WorkspaceInfo) -> Self {
        WorkspaceInfo {
            slug: w.slug.clone(),
            uuid: uuid::Uuid::from_bytes(w.uuid).hyphenated().to_string(),
            created_at: crate::contact::timestamp(w.created_at_us),
        }
    }
}

/// Settings for opening a [`Database`].
///
/// ```
/// # fn main() -> Result<(), contactdb::Error> {
/// # let dir = tempfile::tempdir().map_err(|e| contactdb::Error::InvalidArgument(e.to_string()))?;
/// let db = contactdb::Database::builder()
///     .cache_size_bytes(16 << 20)
///     .records_max(50_000)
///     .request_id_retention_days(30)
///     .open(dir.path().join("c.redb"))?;
/// let acme = db.create_workspace("acme")?;
/// assert_eq!(db.workspace(&acme.uuid)?.info().slug, "acme");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    cache_size_bytes: usize,
    records_max: usize,
    retention_days: u32,
    feed_retention_days: u32,
    job_chunk_records: usize,
    job_records_max: usize,
    job_lease_seconds: u32,
    merge_threads: Option<usize>,
    merge_chunk_records: usize,
    index_buffer_min: u64,
    filter_slack_min: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            cache_size_bytes: CACHE_SIZE_BYTES_DEFAULT,
            records_max: RECORDS_MAX_DEFAULT,
            retention_days: REQUEST_ID_RETENTION_DAYS_DEFAULT,
            feed_retention_days: FEED_RETENTION_DAYS_DEFAULT,
            job_chunk_records: crate::job::JOB_CHUNK_RECORDS_DEFAULT,
            job_records_max: crate::job::JOB_RECORDS_MAX_DEFAULT,
            job_lease_seconds: crate::job::JOB_LEASE_SECONDS_DEFAULT,
            merge_threads: None,
            merge_chunk_records: contactdb_merge::CHUNK_RECORDS_DEFAULT,
            index_buffer_min: contactdb_store::DEFAULT_MIN_DELTA,
            filter_slack_min: contactdb_store::DEFAULT_FILTER_SLACK_MIN,
        }
    }
}

impl Builder {
    /// Page cache size. Default = 64 MiB. Half of it holds a write transaction's
    /// changed pages; a request that changes more writes some pages twice, so
    /// files of millions of contacts gain from more (10M contacts, 10k-record
    /// upserts: 256 MiB wrote 36% fewer bytes than 64 MiB and ran 12% faster;
    /// docs/performance.md). A write transaction also keeps up to about this much
    /// memory again in contact writes it has not yet put into their tables (the
    /// requests of [`Workspace::bulk_each`](crate::Workspace::bulk_each) committed
    /// together are written sorted, each page once), so peak memory grows by up to
    /// twice this value.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder()
    ///     .cache_size_bytes(256 << 20)
    ///     .open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
    /// assert_eq!(ws.count()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache_size_bytes(mut self, bytes: usize) -> Self {
        self.cache_size_bytes = bytes;
        self
    }

    /// Most records in one bulk request, clamped to 1..=1,000,000; a larger request
    /// is rejected with `too_many_records`.
    /// Default = 10,000.
    ///
    /// ```
    /// # use contactdb::{BulkError, BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().records_max(2).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let three = ["a", "b", "c"].map(|k| Record::new(k).into()).to_vec();
    /// match ws.bulk(&BulkRequest::new(Mode::Insert, three)) {
    ///     Err(BulkError::Request(e)) => assert_eq!(e.code(), "too_many_records"),
    ///     other => panic!("expected too_many_records, got {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn records_max(mut self, n: usize) -> Self {
        self.records_max = n.clamp(1, RECORDS_MAX_CEILING);
        self
    }

    /// Tunes when an index's write buffer (the delta of its tiered table, see
    /// ARCHITECTURE.md) is merged into the next level: when it holds more than
    /// `max(m, sqrt(m · index entries))` entries while the index has up to ~11.4·m
    /// entries (two levels), `max(m, cbrt(m² · index entries))` above (three
    /// levels), `m` being this value. Default = 16,384 (about one batch). Results
    /// never depend on it; small values make requests pay for merges more often
    /// (tests use them to exercise the merges).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().index_buffer_min(4).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// for batch in 0..5 {
    ///     let records = (0..10).map(|i| Record::new(format!("k{batch}-{i}")).email(format!("u{batch}{i}@x.io")).into());
    ///     ws.bulk(&BulkRequest::new(Mode::Insert, records.collect()))?;
    /// }
    /// assert_eq!(ws.find_by_email("u37@x.io")?[0].key, "k3-7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn index_buffer_min(mut self, entries: u64) -> Self {
        self.index_buffer_min = entries;
        self
    }

    /// Bulk requests look keys, emails and phones up through in-memory filters of
    /// the large index tables (ARCHITECTURE.md), sized for the tables' entries plus
    /// `max(entries, n)`, and rebuilt from the tables once they took more.
    /// Default = 65,536. Results never depend on it; small values make requests
    /// rebuild filters often (tests use them to exercise the rebuild).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().lookup_filter_slack_min(1).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let batch = |n: usize| (0..n).map(|i| Record::new(format!("k{i}")).into()).collect();
    /// ws.bulk(&BulkRequest::new(Mode::Upsert, batch(5)))?;
    /// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, batch(8)))?;
    /// assert_eq!((report.summary.unchanged, report.summary.inserted), (5, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn lookup_filter_slack_min(mut self, n: u64) -> Self {
        self.filter_slack_min = n;
        self
    }

    /// Days a `request_id` is remembered: a retry within them gets the stored report
    /// (`replayed: true`) instead of being applied again. Default = 7.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().request_id_retention_days(30).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let mut req = BulkRequest::new(Mode::Upsert, vec![Record::new("c-1").into()]);
    /// req.request_id = Some("import-2026-05-01".to_owned());
    /// assert!(!ws.bulk(&req)?.replayed);
    /// assert!(ws.bulk(&req)?.replayed); // a retry within 30 days gets the first report
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn request_id_retention_days(mut self, days: u32) -> Self {
        self.retention_days = days;
        self
    }

    /// Threads that plan a request: the calling thread and `n - 1` helpers that
    /// normalize, validate and look up records ahead of it. Default = rayon's global
    /// pool (one thread per core). Results never depend on it: a request's outcome
    /// is that of applying its records one at a time, in input order.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().merge_threads(2).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let records = (0..1000).map(|i| Record::new(format!("k{}", i % 600)).into()).collect();
    /// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, records))?;
    /// assert_eq!((report.summary.inserted, ws.count()?), (600, 600));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn merge_threads(mut self, n: usize) -> Self {
        self.merge_threads = Some(n.max(1));
        self
    }

    /// Records per chunk of work handed from the helpers to the calling thread.
    /// Default = 64. Results never depend on
    /// it (every record sees the records before it, wherever the chunks end); tests
    /// set 1 so that a chunk boundary falls between every two records.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # use serde_json::json;
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().merge_chunk_records(1).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let records = vec![Record::new("k1").name("Ann").into(), Record::new("k1").surname("Lee").into()];
    /// ws.bulk(&BulkRequest::new(Mode::Upsert, records))?; // the second record sees the first
    /// let c = ws.get("k1")?.ok_or("missing")?;
    /// assert_eq!((&c.columns["name"], &c.columns["surname"]), (&json!("Ann"), &json!("Lee")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn merge_chunk_records(mut self, n: usize) -> Self {
        self.merge_chunk_records = n.max(1);
        self
    }

    /// Records a job with `on_invalid=skip` applies per transaction (default
    /// 10,000): each chunk's writes commit with the job's progress, so a crash loses
    /// at most the chunk in flight, which the next run applies again. A job with
    /// `on_invalid=abort` is applied in one transaction, all of it or none of it.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, JobState, Mode, OnInvalid, Record};
    /// # use std::cell::Cell;
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().job_chunk_records(2).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let mut req = BulkRequest::new(Mode::Upsert, (0..5).map(|i| Record::new(format!("k{i}")).into()).collect());
    /// req.on_invalid = OnInvalid::Skip;
    /// let id = ws.submit(&req)?;
    /// let asked = Cell::new(0);
    /// ws.run_jobs_until(&|| { asked.set(asked.get() + 1); asked.get() > 2 })?; // stop after one chunk
    /// let job = ws.job(&id)?.ok_or("missing")?;
    /// assert_eq!((job.state, job.processed, ws.count()?), (JobState::Running, 2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn job_chunk_records(mut self, n: usize) -> Self {
        self.job_chunk_records = n.max(1);
        self
    }

    /// Most records one job may hold (default 1,000,000); a larger job fails with
    /// `too_many_records`.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, JobState, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().job_records_max(2).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// let three = ["a", "b", "c"].map(|k| Record::new(k).into()).to_vec();
    /// let job = ws.run_job(&ws.submit(&BulkRequest::new(Mode::Upsert, three))?)?;
    /// assert_eq!(job.state, JobState::Failed);
    /// assert!(job.error.is_some_and(|e| e.starts_with("too_many_records")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn job_records_max(mut self, n: usize) -> Self {
        self.job_records_max = n.max(1);
        self
    }

    /// Seconds a job runner holds a job between two chunks (default 60). With
    /// PostgreSQL several processes run jobs from one queue: a runner that dies
    /// mid-job leaves its job to another runner once its hold runs out, which
    /// resumes after the last committed chunk. The redb file has one runner
    /// process and ignores it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder()
    ///     .job_lease_seconds(300)
    ///     .open(dir.path().join("c.redb"))?;
    /// assert!(format!("{db:?}").contains("Database"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn job_lease_seconds(mut self, seconds: u32) -> Self {
        self.job_lease_seconds = seconds.max(1);
        self
    }

    /// Days a change-feed event is kept once every named consumer has acknowledged
    /// it (default 7; with no consumer, days since it was written). 0 trims events
    /// as soon as they qualify.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder().feed_retention_days(0).open(dir.path().join("c.redb"))?;
    /// let ws = db.workspace("default")?;
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("a").into()]))?;
    /// ws.ack("mailer", ws.last_seq()?)?;
    /// # std::thread::sleep(std::time::Duration::from_millis(2));
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("b").into()]))?; // trims a's event
    /// let keys: Vec<String> = ws.feed(0, 100)?.into_iter().map(|e| e.key).collect();
    /// assert_eq!(keys, ["b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn feed_retention_days(mut self, days: u32) -> Self {
        self.feed_retention_days = days;
        self
    }

    /// Opens the file at `path` for writing, creating it (with workspace
    /// `default`) if missing. Other processes may open it read-only meanwhile
    /// ([`Builder::open_read_only`]); a second writer gets
    /// [`OpenError::AlreadyOpen`].
    ///
    /// A `path` that reads `postgres://…` or `postgresql://…` connects to that
    /// PostgreSQL database instead, creating or migrating its tables (with
    /// workspace `default` in a new one): [`OpenError::InvalidUrl`],
    /// [`OpenError::Connect`] or [`OpenError::SchemaTooNew`] when that fails. The
    /// file settings (cache size, index buffers) do not apply there.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder()
    ///     .cache_size_bytes(16 << 20)
    ///     .open(dir.path().join("c.redb"))?;
    /// assert!(!db.is_read_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database, OpenError> {
        if let Some(url) = postgres_url(path.as_ref()) {
            return self.finish(Box::new(connect(url)?), false);
        }
        let store = Store::open(path.as_ref(), &self.store_options()).map_err(open_error)?;
        self.finish(Box::new(store), false)
    }

    /// Opens an existing file read-only: it is never created, recovered or
    /// otherwise written ([`OpenError::NotFound`] when missing). Any number of
    /// read-only handles may run beside one writer process, each read seeing its
    /// last commit. Writes through the handle fail with [`Error::ReadOnly`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// drop(contactdb::Database::open(&path)?);
    /// let reader = contactdb::Database::builder().open_read_only(&path)?;
    /// assert!(reader.is_read_only());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(self, path: impl AsRef<Path>) -> Result<Database, OpenError> {
        if let Some(url) = postgres_url(path.as_ref()) {
            return self.finish(Box::new(connect(url)?), true);
        }
        let store =
            Store::open_read_only(path.as_ref(), &self.store_options()).map_err(open_error)?;
        self.finish(Box::new(store), false)
    }

    fn store_options(&self) -> StoreOptions {
        StoreOptions {
            cache_size_bytes: self.cache_size_bytes,
            min_delta: self.index_buffer_min,
            filter_slack_min: self.filter_slack_min,
        }
    }

    /// Runs the integrity checks on the file at `path` without opening it for
    /// writing: redb's own check (every page checksum, the allocator state) on a
    /// copy in a temporary directory, since that check repairs what it can, then
    /// the engine's invariants ([`Database::check`]) on that copy. Returns every
    /// problem found; empty = clean. The original file is only read.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// drop(contactdb::Database::open(&path)?);
    /// assert!(contactdb::Database::builder().check_file(&path)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_file(self, path: impl AsRef<Path>) -> Result<Vec<Problem>, OpenError> {
        if let Some(url) = postgres_url(path.as_ref()) {
            let problems = connect(url)?.check().map_err(pg_open_error)?;
            return Ok(problems.into_iter().map(Problem::from_backend).collect());
        }
        let problems =
            Store::check_file(path.as_ref(), &self.store_options()).map_err(open_error)?;
        Ok(problems.into_iter().map(Problem::from_store).collect())
    }

    /// Repairs the file at `path` in place: redb's integrity check (every page
    /// checksum verified, the allocator state rebuilt), which writes the file, then
    /// the engine's invariants ([`Database::check`]). Returns whether the file
    /// was clean (nothing repaired) and the problems left. Fails with [`OpenError::AlreadyOpen`]
    /// while a writer has the file open; back the file up first.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// drop(contactdb::Database::open(&path)?);
    /// let (clean, problems) = contactdb::Database::builder().repair_file(&path)?;
    /// assert!(clean && problems.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn repair_file(self, path: impl AsRef<Path>) -> Result<(bool, Vec<Problem>), OpenError> {
        if postgres_url(path.as_ref()).is_some() {
            return Err(OpenError::Unsupported {
                what: "repair works on a database file; PostgreSQL recovers its own storage (check reports what contactdb finds)".to_owned(),
            });
        }
        let (clean, problems) =
            Store::repair_file(path.as_ref(), &self.store_options()).map_err(open_error)?;
        Ok((
            clean,
            problems.into_iter().map(Problem::from_store).collect(),
        ))
    }

    /// Compacts the file at `path` in place, to the size its content allows:
    /// every table is rewritten densely (in key order into a new table that
    /// replaces it), then the free pages that copy-on-write leaves behind (after
    /// a large import, more than half the file) are given back. The content is
    /// unchanged. Each step is a commit, so a crash leaves a consistent file with
    /// the same content. Takes seconds per GB and needs free disk space for the
    /// largest table while it runs. Returns the file's size in bytes before and
    /// after. Fails with [`OpenError::AlreadyOpen`] while a writer has the file
    /// open.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// drop(contactdb::Database::open(&path)?);
    /// let (before, after) = contactdb::Database::builder().compact_file(&path)?;
    /// assert!(after <= before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact_file(self, path: impl AsRef<Path>) -> Result<(u64, u64), OpenError> {
        if postgres_url(path.as_ref()).is_some() {
            return Err(OpenError::Unsupported {
                what: "compact works on a database file; PostgreSQL reclaims space with VACUUM"
                    .to_owned(),
            });
        }
        Store::compact_file(path.as_ref(), &self.store_options()).map_err(open_error)
    }

    fn finish(self, store: Box<dyn Backend>, read_only: bool) -> Result<Database, OpenError> {
        let pool = match self.merge_threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("contactdb-merge-{i}"))
                    .build()
                    .map_err(|e| {
                        OpenError::Storage(crate::StorageError::Internal {
                            detail: format!("cannot start merge threads: {e}"),
                        })
                    })?,
            ),
            None => None,
        };
        Ok(Database {
            inner: Arc::new(Inner {
                store,
                read_only,
                limits: Limits {
                    records_max: self.records_max,
                },
                retention_us: i64::from(self.retention_days).saturating_mul(86_400 * 1_000_000),
                feed_retention_us: i64::from(self.feed_retention_days)
                    .saturating_mul(86_400 * 1_000_000),
                pool,
                merge_chunk_records: self.merge_chunk_records,
                job_chunk_records: self.job_chunk_records,
                job_records_max: self.job_records_max,
                job_runner: std::sync::Mutex::new(()),
                runner: format!(
                    "pid {} ({})",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                ),
                job_lease_us: i64::from(self.job_lease_seconds).saturating_mul(1_000_000),
                group_bytes_max: self.cache_size_bytes.saturating_mul(2),
            }),
        })
    }
}

impl Database {
    /// Opens (or creates) a database with default settings: a file, or a
    /// PostgreSQL database named by a `postgres://user@host:port/dbname` URL (its
    /// tables are created or migrated on first use; see [`Builder::open`]).
    ///
    /// A second writer of a file (another handle of this process, or another
    /// process) gets [`OpenError::AlreadyOpen`]; read-only handles may run beside
    /// it. A PostgreSQL database takes any number of handles: writes to one
    /// workspace are serialized by a lock in the server.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// assert_eq!(db.workspaces()?[0].slug, "default");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```no_run
    /// let db = contactdb::Database::open("postgres://app@db.internal:5432/contacts")?;
    /// assert_eq!(db.location(), "postgres://db.internal:5432/contacts");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Database, OpenError> {
        Builder::default().open(path)
    }

    /// Opens an existing database read-only with default settings (see
    /// [`Builder::open_read_only`]).
    ///
    /// ```
    /// # use contactdb::{BulkError, BulkRequest, Database, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// let writer = Database::open(&path)?;
    /// writer.workspace("default")?.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
    /// let reader = Database::open_read_only(&path)?;
    /// let ws = reader.workspace("default")?;
    /// assert_eq!(ws.count()?, 1);
    /// let write = ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-2").into()]));
    /// assert!(matches!(write, Err(BulkError::ReadOnly)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Database, OpenError> {
        Builder::default().open_read_only(path)
    }

    /// Whether this handle was opened read-only.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// let writer = contactdb::Database::open(&path)?;
    /// let reader = contactdb::Database::open_read_only(&path)?;
    /// assert_eq!((writer.is_read_only(), reader.is_read_only()), (false, true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only || self.inner.store.is_read_only()
    }

    /// Settings for opening a database.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::builder()
    ///     .records_max(50_000)
    ///     .merge_threads(4)
    ///     .open(dir.path().join("c.redb"))?;
    /// assert_eq!(db.workspace("default")?.count()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Creates a workspace. Its UUID is random.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// let acme = db.create_workspace("acme")?;
    /// assert_eq!(db.workspace(&acme.uuid)?.info().slug, "acme");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_workspace(&self, slug: &str) -> Result<WorkspaceInfo, WorkspaceError> {
        let info = self
            .inner
            .writer()
            .and_then(|w| w.create_workspace(slug, *uuid::Uuid::new_v4().as_bytes(), now_us()))
            .map_err(workspace_error)?;
        Ok(WorkspaceInfo::from_store(&info))
    }

    /// Every workspace, by slug.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// db.create_workspace("zeta")?;
    /// db.create_workspace("acme")?;
    /// let slugs: Vec<String> = db.workspaces()?.into_iter().map(|w| w.slug).collect();
    /// assert_eq!(slugs, ["acme", "default", "zeta"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, Error> {
        let r = self.inner.store.read()?;
        let mut v: Vec<WorkspaceInfo> = r
            .workspaces()?
            .iter()
            .map(WorkspaceInfo::from_store)
            .collect();
        v.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(v)
    }

    /// The workspace with this slug or UUID; never creates one.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// assert_eq!(db.workspace("default")?.count()?, 0);
    /// assert!(db.workspace("nobody").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workspace(&self, slug_or_uuid: &str) -> Result<Workspace, WorkspaceError> {
        let r = self.inner.store.read().map_err(workspace_error)?;
        match r.workspace(slug_or_uuid).map_err(workspace_error)? {
            Some(info) => Ok(Workspace::new(self.clone(), info)),
            None => Err(WorkspaceError::NotFound {
                name: slug_or_uuid.to_owned(),
            }),
        }
    }

    /// Walks the whole file and reports every inconsistency between contacts and
    /// their indexes. Empty = clean.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// assert!(db.check()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<Vec<Problem>, Error> {
        let problems = self.inner.store.check()?;
        Ok(problems.into_iter().map(Problem::from_backend).collect())
    }

    /// Writes a consistent copy of the last committed state to a new file at
    /// `dest` (which must not exist), from one read transaction, so writers —
    /// in this process or another — may go on meanwhile. Works on read-only
    /// handles. Returns the entries copied and the copy's size in bytes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// let copy = db.backup(dir.path().join("copy.redb"))?;
    /// assert!(copy.bytes > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupSummary, OpenError> {
        let Some(store) = self.inner.store.as_any().downcast_ref::<Store>() else {
            return Err(OpenError::Unsupported {
                what: "backup copies a database file; back a PostgreSQL database up with pg_dump or the server's own backups".to_owned(),
            });
        };
        let s = store.backup(dest.as_ref()).map_err(open_error)?;
        Ok(BackupSummary {
            entries: s.entries,
            bytes: s.bytes,
        })
    }

    /// Size of the database file in bytes.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// assert!(db.file_size()? > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file_size(&self) -> Result<u64, Error> {
        self.inner.store.file_size()?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} is not a file: it has no file size",
                self.inner.store.describe()
            ))
        })
    }

    /// Where the data lives: the file's path, or `postgres://host:port/dbname`
    /// (never a password).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("c.redb");
    /// let db = contactdb::Database::open(&path)?;
    /// assert_eq!(db.location(), path.display().to_string());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn location(&self) -> String {
        self.inner.store.describe()
    }
}

/// What [`Database::backup`] copied.
///
/// ```
/// # use contactdb::{BulkRequest, Database, Mode, Record};
/// # let dir = tempfile::tempdir()?;
/// # let db = Database::open(dir.path().join("c.redb"))?;
/// # db.workspace("default")?.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
/// let dest = dir.path().join("copy.redb");
/// let summary = db.backup(&dest)?;
/// assert_eq!(summary.bytes, std::fs::metadata(&dest)?.len());
/// assert!(summary.entries > 0);
/// assert_eq!(Database::open(&dest)?.workspace("default")?.count()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupSummary {
    /// Table entries copied.
    pub entries: u64,
    /// Size of the copy in bytes.
    pub bytes: u64,
}

/// One inconsistency found by [`Database::check`] or [`Builder::check_file`].
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
/// let report: Vec<String> = db.check()?.iter().map(|p| p.to_string()).collect(); // "table [key]: message"
/// assert!(report.is_empty(), "damaged: {report:?}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The table holding the offending entry.
    pub table: &'static str,
    /// The entry's key, readable, with non-printable bytes escaped.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn from_backend(p: contactdb_backend::Problem) -> Self {
        Problem {
            table: p.table,
            key: p.key,
            message: p.message,
        }
    }

    fn from_store(p: contactdb_store::Problem) -> Self {
        Problem::from_backend(p.into())
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]: {}", self.table, self.key, self.message)
    }
}

/// The clock, in microseconds since the Unix epoch.
impl Inner {
    /// The backend, for a write: refused when the handle was opened read-only.
    pub(crate) fn writer(&self) -> Result<&dyn Backend, Failure> {
        if self.read_only {
            return Err(Failure::ReadOnly);
        }
        Ok(&*self.store)
    }
}

/// Connects to the PostgreSQL database `url` names (creating or migrating its
/// tables).
fn connect(url: &str) -> Result<PgStore, OpenError> {
    PgStore::connect(url, &PgOptions::default()).map_err(pg_open_error)
}

/// Whether `path` names a PostgreSQL database (`postgres://…` or
/// `postgresql://…`) rather than a file.
///
/// ```
/// assert!(contactdb::is_postgres_url("postgres://app@db:5432/contacts"));
/// assert!(contactdb::is_postgres_url("postgresql://db/contacts"));
/// assert!(!contactdb::is_postgres_url("./postgres/contacts.redb"));
/// ```
pub fn is_postgres_url(path: impl AsRef<Path>) -> bool {
    postgres_url(path.as_ref()).is_some()
}

/// The URL in `path` when it names a PostgreSQL database.
pub(crate) fn postgres_url(path: &Path) -> Option<&str> {
    let s = path.to_str()?;
    (s.starts_with("postgres://") || s.starts_with("postgresql://")).then_some(s)
}

pub(crate) fn now_us() -> i64 {
    let us = jiff::Timestamp::now().as_microsecond();
    // Keep timestamps monotonic enough for tests that compare them: never before 1970.
    us.max(0)
}
