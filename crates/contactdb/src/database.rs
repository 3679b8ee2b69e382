//! [`Database`]: one contactdb file, its workspaces, and its settings.

use std::path::Path;
use std::sync::Arc;

use contactdb_policy::Limits;
use contactdb_policy::limits::{RECORDS_MAX_CEILING, RECORDS_MAX_DEFAULT};
use contactdb_store::{Problem, Store, StoreOptions, Wait};

use crate::error::Error;
use crate::workspace::Workspace;

/// Default redb page cache: 64 MiB (redb's own default is 1 GiB per database).
pub const CACHE_SIZE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;
/// Default days a `request_id` is remembered (R21).
pub const REQUEST_ID_RETENTION_DAYS_DEFAULT: u32 = 7;
/// Default days a change-feed event is kept after every consumer has read it.
pub const FEED_RETENTION_DAYS_DEFAULT: u32 = 7;

pub(crate) struct Inner {
    pub(crate) store: Store,
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
}

/// An open contactdb file. Cheap to clone; `Send + Sync`, so one handle can be
/// shared by every thread of a program. Writes are serialized, reads never block
/// (R19).
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

/// A workspace's identity (R1).
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
    pub(crate) fn from_store(w: &contactdb_store::WorkspaceInfo) -> Self {
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
    /// docs/performance.md).
    #[must_use]
    pub fn cache_size_bytes(mut self, bytes: usize) -> Self {
        self.cache_size_bytes = bytes;
        self
    }

    /// Most records in one bulk request (R4), clamped to 1..=1,000,000.
    /// Default = 10,000.
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
    #[must_use]
    pub fn lookup_filter_slack_min(mut self, n: u64) -> Self {
        self.filter_slack_min = n;
        self
    }

    /// Days a `request_id` is remembered (R21). Default = 7.
    #[must_use]
    pub fn request_id_retention_days(mut self, days: u32) -> Self {
        self.retention_days = days;
        self
    }

    /// Threads that plan a request: the calling thread and `n - 1` helpers that
    /// normalize, validate and look up records ahead of it. Default = rayon's global
    /// pool (one thread per core). Results never depend on it (R6).
    #[must_use]
    pub fn merge_threads(mut self, n: usize) -> Self {
        self.merge_threads = Some(n.max(1));
        self
    }

    /// Records per chunk of work handed from the helpers to the calling thread.
    /// Default = [`contactdb_merge::CHUNK_RECORDS_DEFAULT`]. Results never depend on
    /// it (R6); tests set 1 so that a chunk boundary falls between every two records.
    #[must_use]
    pub fn merge_chunk_records(mut self, n: usize) -> Self {
        self.merge_chunk_records = n.max(1);
        self
    }

    /// Records a job applies per transaction (default 10,000): each chunk's
    /// writes commit with the job's progress, so a crash loses at most the chunk in
    /// flight, which the next run applies again.
    #[must_use]
    pub fn job_chunk_records(mut self, n: usize) -> Self {
        self.job_chunk_records = n.max(1);
        self
    }

    /// Most records one job may hold (default 1,000,000); a larger job fails with
    /// `too_many_records`.
    #[must_use]
    pub fn job_records_max(mut self, n: usize) -> Self {
        self.job_records_max = n.max(1);
        self
    }

    /// Days a change-feed event is kept once every named consumer has acknowledged
    /// it (default 7; with no consumer, days since it was written). 0 trims events
    /// as soon as they qualify.
    #[must_use]
    pub fn feed_retention_days(mut self, days: u32) -> Self {
        self.feed_retention_days = days;
        self
    }

    /// Opens the file at `path` for writing, creating it (with workspace
    /// `default`) if missing. Other processes may open it read-only meanwhile
    /// ([`Builder::open_read_only`]); a second writer gets [`Error::AlreadyOpen`].
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database, Error> {
        let store = Store::open(path.as_ref(), &self.store_options())?;
        self.finish(store)
    }

    /// Opens an existing file read-only: it is never created, recovered or
    /// otherwise written ([`Error::NoDatabase`] when missing). Any number of
    /// read-only handles may run beside one writer process, each read seeing its
    /// last commit. Writes through the handle fail with [`Error::ReadOnly`].
    pub fn open_read_only(self, path: impl AsRef<Path>) -> Result<Database, Error> {
        let store = Store::open_read_only(path.as_ref(), &self.store_options())?;
        self.finish(store)
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
    pub fn check_file(self, path: impl AsRef<Path>) -> Result<Vec<Problem>, Error> {
        Ok(Store::check_file(path.as_ref(), &self.store_options())?)
    }

    /// Repairs the file at `path` in place: redb's integrity check (every page
    /// checksum verified, the allocator state rebuilt), which writes the file, then
    /// the engine's invariants ([`Database::check`]). Returns whether redb found
    /// the file clean and the problems left. Fails with [`Error::AlreadyOpen`]
    /// while a writer has the file open; back the file up first.
    pub fn repair_file(self, path: impl AsRef<Path>) -> Result<(bool, Vec<Problem>), Error> {
        Ok(Store::repair_file(path.as_ref(), &self.store_options())?)
    }

    fn finish(self, store: Store) -> Result<Database, Error> {
        let pool = match self.merge_threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("contactdb-merge-{i}"))
                    .build()
                    .map_err(|e| Error::Internal(format!("cannot start merge threads: {e}")))?,
            ),
            None => None,
        };
        Ok(Database {
            inner: Arc::new(Inner {
                store,
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
            }),
        })
    }
}

impl Database {
    /// Opens (or creates) a database with default settings.
    ///
    /// A second writer (another handle of this process, or another process)
    /// gets [`Error::AlreadyOpen`]; read-only handles may run beside it.
    pub fn open(path: impl AsRef<Path>) -> Result<Database, Error> {
        Builder::default().open(path)
    }

    /// Opens an existing database read-only with default settings (see
    /// [`Builder::open_read_only`]).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Database, Error> {
        Builder::default().open_read_only(path)
    }

    /// Whether this handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.store.is_read_only()
    }

    /// Settings for opening a database.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Creates a workspace (R1). Its UUID is random.
    pub fn create_workspace(&self, slug: &str) -> Result<WorkspaceInfo, Error> {
        let mut w = self.inner.store.begin_write(Wait::Block)?;
        let info = w.create_workspace(slug, *uuid::Uuid::new_v4().as_bytes(), now_us())?;
        w.commit()?;
        Ok(WorkspaceInfo::from_store(&info))
    }

    /// Every workspace, by slug.
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

    /// The workspace with this slug or UUID; never creates one (R1).
    pub fn workspace(&self, slug_or_uuid: &str) -> Result<Workspace, Error> {
        let r = self.inner.store.read()?;
        match r.workspace(slug_or_uuid)? {
            Some(info) => Ok(Workspace::new(self.clone(), info)),
            None => Err(Error::NoSuchWorkspace {
                name: slug_or_uuid.to_owned(),
            }),
        }
    }

    /// Walks the whole file and reports every inconsistency between contacts and
    /// their indexes. Empty = clean.
    pub fn check(&self) -> Result<Vec<Problem>, Error> {
        Ok(self.inner.store.check()?)
    }

    /// Writes a consistent copy of the last committed state to a new file at
    /// `dest` (which must not exist), from one read transaction, so writers —
    /// in this process or another — may go on meanwhile. Works on read-only
    /// handles. Returns the entries copied and the copy's size in bytes.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<contactdb_store::BackupSummary, Error> {
        Ok(self.inner.store.backup(dest.as_ref())?)
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> Result<u64, Error> {
        Ok(self.inner.store.file_size()?)
    }
}

/// The clock, in microseconds since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    let us = jiff::Timestamp::now().as_microsecond();
    // Keep timestamps monotonic enough for tests that compare them: never before 1970.
    us.max(0)
}
