//! contactdb's storage: the master contact table, its aliases, email and phone
//! indexes, workspaces, custom columns and applied request ids, in one redb file.
//!
//! Architecture invariants:
//! - Every stored value goes through the `codec` module: a format tag byte, then
//!   postcard of a stored struct that is separate from the domain types.
//! - Contacts are keyed by an internal id (a per-workspace sequence); keys and
//!   aliases map to ids in `identifiers`; the email and phone indexes are plain
//!   tables with composite keys (`ws ‖ hash(value) ‖ id`). Those three are
//!   tiered (base + mid + delta), written in the same transaction as the contacts
//!   they index; [`Store::check`] verifies they agree.
//! - Reads never block; one write transaction at a time.
//!
//! The records it reads and writes (workspaces, applied request ids, feed events,
//! jobs, campaigns, API keys) are those of `contactdb_backend`, the same for
//! every store; how they are encoded in the file stays here. The on-disk format is
//! described in `docs/format.md`.

mod backend;
mod backup;
mod campaign;
mod check;
mod codec;
mod error;
mod feed;
mod filter;
mod guard;
mod job;
mod key;
mod keys;
mod overlay;
mod read;
#[cfg(test)]
mod test_support;
mod tiered;
mod write;

#[cfg(feature = "bench")]
pub mod bench;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use contactdb_backend::{Wait, WorkspaceId};
use redb::{ReadableDatabase, ReadableTable};

pub use backup::BackupSummary;
pub use error::{Problem, StoreError};
pub use guard::panic_is_contained;
use guard::{Poison, guarded};
pub use read::{ContactsView, ReadView};
pub use write::WriteView;

/// The on-disk format version this build reads and writes (`meta.format_version`);
/// a file of any other version is refused ([`StoreError::FormatVersion`]).
pub const FORMAT_VERSION: u32 = 6;

/// The slug of the workspace every new database starts with.
pub const DEFAULT_WORKSPACE: &str = "default";

/// The default of [`StoreOptions::min_delta`].
pub const DEFAULT_MIN_DELTA: u64 = 16_384;

/// The default of [`StoreOptions::filter_slack_min`].
pub const DEFAULT_FILTER_SLACK_MIN: u64 = filter::DEFAULT_SLACK_MIN;

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bytes of memory redb may use to cache pages. A write transaction also
    /// holds up to about this much again in contact writes not yet written to
    /// their tables (several requests in one transaction write each page once).
    pub cache_size_bytes: usize,
    /// The delta of a tiered table (identifiers, email and phone indexes) is merged
    /// into the next level when it holds more than about `sqrt(m · base entries)`
    /// entries (two levels) or `(m² · base entries)^(1/3)` (three, for bases above
    /// ~11.4·m), `m` being this value (see `docs/format.md`, "Tiered tables"). Small values
    /// exercise the merges in tests; the default suits batches of ~10k records.
    pub min_delta: u64,
    /// A lookup filter (an in-memory Bloom filter over a tiered table's keys) is
    /// sized for its table's keys plus `max(keys, filter_slack_min)` more, and
    /// rebuilt once it took more. Small values exercise the rebuild in tests; the
    /// default is [`DEFAULT_FILTER_SLACK_MIN`] (65,536).
    pub filter_slack_min: u64,
}

impl Default for StoreOptions {
    /// A 64 MiB cache; tiered deltas of at least 16,384 entries; filter slack of
    /// at least 65,536 keys.
    fn default() -> Self {
        StoreOptions {
            cache_size_bytes: 64 * 1024 * 1024,
            min_delta: DEFAULT_MIN_DELTA,
            filter_slack_min: DEFAULT_FILTER_SLACK_MIN,
        }
    }
}

/// The redb handle: writable, or read-only beside at most one writer process.
enum Handle {
    Write(redb::Database),
    Read(redb::ReadOnlyDatabase),
    /// Read-only, over a file its last writer did not close: redb recovered it
    /// into memory (see the `overlay` module); the file is not written. The flag
    /// closes the overlay.
    Recovered(redb::Database, Arc<std::sync::atomic::AtomicBool>),
    /// Closed: what a store holds while it is dropped.
    Closed,
}

impl Handle {
    fn begin_read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Handle::Write(db) | Handle::Recovered(db, _) => db.begin_read(),
            Handle::Read(db) => db.begin_read(),
            Handle::Closed => Err(redb::TransactionError::Storage(redb::StorageError::Io(
                std::io::Error::other("the database is closed"),
            ))),
        }
    }

    /// A raw write transaction (unit tests that damage a file on purpose).
    #[cfg(test)]
    fn begin_write(&self) -> Result<redb::WriteTransaction, redb::TransactionError> {
        match self {
            Handle::Write(db) => db.begin_write(),
            Handle::Read(_) | Handle::Recovered(..) | Handle::Closed => Err(
                redb::TransactionError::Storage(redb::StorageError::Unsupported),
            ),
        }
    }
}

/// How every process opens the file: one writer process and any number of
/// read-only processes beside it, which follow its commits.
const CONCURRENCY: redb::ConcurrencyMode = redb::ConcurrencyMode::SingleWriter;

/// An open contactdb database file.
///
/// `Store` is `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Store {
    db: Handle,
    /// Set once a call stopped on a panic inside redb (see the `guard` module).
    poison: Arc<Poison>,
    path: PathBuf,
    /// `StoreOptions::cache_size_bytes` (a backup's destination uses it too).
    cache_size_bytes: usize,
    min_delta: u64,
    /// In-memory filters of the tiered tables (see [`filter`]), shared with every
    /// write view, which feeds them the keys it writes.
    filters: Arc<filter::FilterCell>,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing a redb database can commit (a writable handle trims its allocator
        // state on close), and on a damaged file that step can panic inside redb.
        // A close has no caller to tell: the panic is contained, and the file stays
        // as its last commit left it.
        let db = std::mem::replace(&mut self.db, Handle::Closed);
        if let Handle::Recovered(_, closer) = &db {
            // The recovered copy is discarded: nothing of it is read again.
            closer.store(true, std::sync::atomic::Ordering::Release);
        }
        guard::contained(move || drop(db));
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Every table of format version 5 that `open` makes sure exists.
const ALL_TABLES: [&str; 28] = [
    "meta",
    "workspaces",
    "workspace_slugs",
    "workspace_uuids",
    "columns",
    "contacts",
    "identifiers",
    "identifiers_mid",
    "identifiers_delta",
    "email_index",
    "email_index_mid",
    "email_index_delta",
    "phone_index",
    "phone_index_mid",
    "phone_index_delta",
    "requests",
    "request_expiry",
    "counters",
    "campaigns",
    "campaign_names",
    "memberships",
    "campaign_pick",
    "feed",
    "feed_consumers",
    "jobs",
    "job_ids",
    "job_data",
    "api_keys",
];

impl Store {
    /// Opens the database at `path` for writing, creating it (with workspace
    /// `default`) if the file is missing or empty. Other processes may open it
    /// read-only meanwhile ([`Store::open_read_only`]); a second writer is refused.
    ///
    /// Errors: [`StoreError::AlreadyOpen`] when this or another process has it
    /// open for writing, [`StoreError::FormatVersion`] when it was written in
    /// another format version, [`StoreError::NotAContactDb`] when it is a redb file
    /// of something else, [`StoreError::NotADatabase`] when it is no redb file,
    /// [`StoreError::Damaged`] when redb's structures in it are inconsistent.
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        if !path.exists() {
            Store::create_new(path, opts)?;
        }
        let poison = Arc::new(Poison::default());
        guarded(&poison, || refuse_foreign(path, opts))?;
        let db = guarded(&poison, || {
            redb::Database::builder()
                .set_cache_size(opts.cache_size_bytes)
                .set_concurrency_mode(CONCURRENCY)
                .create(path)
                .map_err(|e| open_error(path, e))
        })?;
        let store = Store::with_handle(Handle::Write(db), poison, path, opts);
        guarded(&store.poison, || store.init())?;
        Ok(store)
    }

    /// Creates a new, initialized database at `path` without ever leaving a
    /// half-written file there: it is built under a temporary name in the same
    /// directory and linked into place only once complete (a process killed while
    /// creating leaves at most the temporary file). Linking fails when `path`
    /// appeared meanwhile (another process created it first): that file is kept.
    fn create_new(path: &Path, opts: &StoreOptions) -> Result<(), StoreError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.creating-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let created = (|| {
            let poison = Arc::new(Poison::default());
            let db = guarded(&poison, || {
                redb::Database::builder()
                    .set_cache_size(opts.cache_size_bytes)
                    .set_concurrency_mode(CONCURRENCY)
                    .create(&tmp)
                    .map_err(|e| open_error(&tmp, e))
            })?;
            let store = Store::with_handle(Handle::Write(db), poison, &tmp, opts);
            guarded(&store.poison, || store.init())?;
            drop(store);
            let io = |e: std::io::Error| StoreError::Storage(redb::StorageError::Io(e));
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                // A file system without hard links: a rename, which a concurrent
                // creator could race (the last one wins, before anything is in it).
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    std::fs::rename(&tmp, path).map_err(io)
                }
                Err(e) => Err(io(e)),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        created
    }

    /// Opens the database over a custom redb storage backend, creating it if the
    /// backend is empty: for tests that inject I/O failures or model a power loss
    /// (feature `test-support`). `path` only names the database in messages.
    #[cfg(feature = "test-support")]
    pub fn open_with_backend(
        backend: impl redb::StorageBackend,
        path: &Path,
        opts: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let poison = Arc::new(Poison::default());
        let db = guarded(&poison, || {
            redb::Database::builder()
                .set_cache_size(opts.cache_size_bytes)
                .create_with_backend(backend)
                .map_err(|e| open_error(path, e))
        })?;
        let store = Store::with_handle(Handle::Write(db), poison, path, opts);
        guarded(&store.poison, || store.init())?;
        Ok(store)
    }

    /// Opens an existing database read-only: never creates, recovers or
    /// otherwise writes the file. It may run beside one writer process and sees
    /// each of its commits from the next read on. A file whose last writer did not
    /// close it (and that no writer has opened since) is recovered in memory —
    /// redb's recovery reads the whole file — and read as of its last commit; such
    /// a handle does not follow later commits.
    ///
    /// Errors: [`StoreError::NoDatabase`] when there is no file at `path`, and
    /// those of [`Store::open`].
    pub fn open_read_only(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        let poison = Arc::new(Poison::default());
        let db = guarded(&poison, || {
            let opened = redb::Database::builder()
                .set_cache_size(opts.cache_size_bytes)
                .set_concurrency_mode(CONCURRENCY)
                .open_read_only(path)
                .map_err(|e| open_error(path, e));
            match opened {
                Ok(db) => Ok(Handle::Read(db)),
                // No writer is running and the last one did not close the file:
                // recover it in memory, leaving the file as it is.
                Err(StoreError::NeedsRecovery) => {
                    let file = std::fs::File::open(path)
                        .map_err(|e| StoreError::Storage(redb::StorageError::Io(e)))?;
                    let overlay = overlay::Overlay::new(file)
                        .map_err(|e| StoreError::Storage(redb::StorageError::Io(e)))?;
                    let closer = overlay.closer();
                    let db = redb::Database::builder()
                        .set_cache_size(opts.cache_size_bytes)
                        .create_with_backend(overlay)
                        .map_err(|e| open_error(path, e))?;
                    Ok(Handle::Recovered(db, closer))
                }
                Err(e) => Err(e),
            }
        })?;
        let store = Store::with_handle(db, poison, path, opts);
        guarded(&store.poison, || check_version(&store.db.begin_read()?))?;
        Ok(store)
    }

    /// Runs redb's integrity check **in place** on the file at `path` — it
    /// verifies every page checksum and rebuilds the allocator state, repairing
    /// what it can, which writes the file — then [`Store::check`]. Returns whether
    /// the file was clean (`false`: redb repaired it, or the open cleared a header
    /// mark that served readers the commit before the last) and the problems left.
    /// Needs the file to itself: fails with [`StoreError::AlreadyOpen`] while a
    /// writer has it open, and with [`StoreError::NotAContactDb`] when the
    /// repaired file holds no contactdb tables (it is not made a new database).
    pub fn repair_file(
        path: &Path,
        opts: &StoreOptions,
    ) -> Result<(bool, Vec<Problem>), StoreError> {
        if !path.exists() {
            return Err(StoreError::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        // The open below clears this mark (a writer's recovery): a repair too.
        let marked = readers_served_previous(path);
        let poison = Arc::new(Poison::default());
        let clean = guarded(&poison, || {
            let mut db = redb::Database::builder()
                .set_cache_size(opts.cache_size_bytes)
                .set_concurrency_mode(CONCURRENCY)
                .open(path)
                .map_err(|e| open_error(path, e))?;
            let clean = db.check_integrity().map_err(|e| open_error(path, e))?;
            // A repaired file with no contactdb tables is not made a new, empty
            // database by the open below: refused, as readers refuse it.
            check_version(&db.begin_read()?)?;
            Ok(clean)
        })?;
        let store = Store::open(path, opts)?;
        Ok((clean && !marked, store.check()?))
    }

    fn with_handle(db: Handle, poison: Arc<Poison>, path: &Path, opts: &StoreOptions) -> Store {
        Store {
            db,
            poison,
            path: path.to_path_buf(),
            cache_size_bytes: opts.cache_size_bytes,
            min_delta: opts.min_delta,
            filters: Arc::new(filter::FilterCell::new(opts.filter_slack_min)),
        }
    }

    /// Whether this handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        !matches!(self.db, Handle::Write(_))
    }

    /// The redb integrity check of the file at `path`, run on a copy in a
    /// temporary directory (the check repairs what it can, so it never runs on the
    /// original), followed by [`Store::check`] on that copy. The original is only
    /// read. Returns every problem found; empty means both checks passed.
    ///
    /// A copy taken while a writer process commits may be torn; run it when no
    /// writer is active to trust a failure.
    pub fn check_file(path: &Path, opts: &StoreOptions) -> Result<Vec<Problem>, StoreError> {
        if !path.exists() {
            return Err(StoreError::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        let io = |e: std::io::Error| StoreError::Storage(redb::StorageError::Io(e));
        let dir = tempfile::tempdir().map_err(io)?;
        let copy = dir.path().join("check.redb");
        std::fs::copy(path, &copy).map_err(io)?;
        if std::fs::metadata(&copy).map_err(io)?.len() == 0 {
            return Err(StoreError::NotADatabase {
                detail: "the file is empty".to_owned(),
            });
        }
        let mut problems = Vec::new();
        let poison = Arc::new(Poison::default());
        if let Some(damage) = header_damage(&copy, opts) {
            problems.push(damage);
        }
        let redb_check = guarded(&poison, || {
            let mut db = redb::Database::builder()
                .set_cache_size(opts.cache_size_bytes)
                .open(&copy)
                .map_err(|e| open_error(path, e))?;
            let clean = db.check_integrity().map_err(|e| open_error(path, e))?;
            Ok((db, clean))
        });
        let db = match redb_check {
            Ok((db, true)) => db,
            Ok((db, false)) => {
                problems.push(Problem {
                    table: "(file)",
                    key: String::new(),
                    message: "redb's integrity check failed: a page checksum or the allocator state did not match (a copy was repaired to check the tables below)".to_owned(),
                });
                db
            }
            Err(e @ (StoreError::NotADatabase { .. } | StoreError::NotAContactDb)) => {
                return Err(e);
            }
            Err(e) => {
                problems.push(Problem {
                    table: "(file)",
                    key: String::new(),
                    message: format!(
                        "redb's integrity check failed and could not repair a copy: {e}"
                    ),
                });
                return Ok(problems);
            }
        };
        // A writer's view with no tables would be initialized by the open below:
        // readers refuse such a file, and so does the check.
        if let Err(e @ (StoreError::NotAContactDb | StoreError::FormatVersion { .. })) =
            guarded(&poison, || check_version(&db.begin_read()?))
        {
            return Err(e);
        }
        drop(db);
        let opened = Store::open(&copy, opts);
        match opened.and_then(|store| store.check()) {
            Ok(found) => problems.extend(found),
            Err(e @ (StoreError::NotAContactDb | StoreError::FormatVersion { .. })) => {
                return Err(e);
            }
            Err(e) => problems.push(Problem {
                table: "(file)",
                key: String::new(),
                message: format!("the tables cannot be walked: {e}"),
            }),
        }
        Ok(problems)
    }

    /// Checks the format version of an existing file, or initializes a new one.
    /// In an existing file it creates any missing table empty, in one write
    /// transaction.
    fn init(&self) -> Result<(), StoreError> {
        let present: Vec<String> = {
            let rtx = self.db.begin_read()?;
            let mut names: Vec<String> = rtx
                .list_tables()?
                .map(|h| redb::TableHandle::name(&h).to_owned())
                .collect();
            names.extend(
                rtx.list_multimap_tables()?
                    .map(|h| redb::MultimapTableHandle::name(&h).to_owned()),
            );
            if !names.is_empty() {
                check_version(&rtx)?;
            }
            names
        };
        let has = |name: &str| present.iter().any(|p| p == name);
        if present.is_empty() {
            // A new file (or one whose creation never committed).
            let mut w = self.begin_write(Wait::Block)?;
            w.init_tables()?;
            w.set_meta_u32(keys::META_FORMAT_VERSION, FORMAT_VERSION)?;
            w.set_meta_u32(keys::META_NEXT_WORKSPACE, 1)?;
            w.create_workspace(DEFAULT_WORKSPACE, random_uuid_v4(), now_us())?;
            w.commit()?;
            return Ok(());
        }
        if ALL_TABLES.iter().any(|t| !has(t)) {
            let w = self.begin_write(Wait::Block)?;
            w.init_tables()?;
            w.commit()?;
        }
        Ok(())
    }

    /// Begins a read transaction: a snapshot of the last committed state.
    ///
    /// While the caller holds a [`WriteView`], a read opened after it sees exactly
    /// the state that write transaction started from.
    pub fn read(&self) -> Result<ReadView, StoreError> {
        guarded(&self.poison, || {
            Ok(ReadView::new(
                self.db.begin_read()?,
                Arc::clone(&self.poison),
            ))
        })
    }

    /// Begins the write transaction. With [`Wait::No`] it fails at once with
    /// [`StoreError::Busy`] while another write transaction is live. Dropping the
    /// returned view without [`WriteView::commit`] aborts it.
    pub fn begin_write(&self, wait: Wait) -> Result<WriteView, StoreError> {
        let Handle::Write(db) = &self.db else {
            return Err(StoreError::ReadOnly);
        };
        let txn = guarded(&self.poison, || match wait {
            Wait::Block => Ok(db.begin_write()?),
            Wait::No => db.try_begin_write().map_err(|e| match e {
                redb::TransactionError::WouldBlock => StoreError::Busy,
                other => StoreError::Transaction(other),
            }),
        })?;
        Ok(WriteView::new(
            txn,
            self.min_delta,
            self.cache_size_bytes,
            Arc::clone(&self.filters),
            Arc::clone(&self.poison),
        ))
    }

    /// The contacts of `ws` to plan a request of about `records` records in `write`:
    /// a read transaction begun now, so (with `write` holding the writer lock) it
    /// sees exactly the state `write` starts from, with the lookup filters
    /// attached (built first when the work planned since the last build justifies
    /// reading the tables). Lookups through it read nothing for keys the filters
    /// lack.
    ///
    /// Filters are only built before `write` has written to a tiered table (else
    /// the current ones, which `write` keeps up to date, are used), and only for a
    /// `write` of this store (for another, the view has no filters).
    pub fn bulk_contacts(
        &self,
        write: &WriteView,
        ws: WorkspaceId,
        records: u64,
    ) -> Result<ContactsView, StoreError> {
        guarded(&self.poison, || {
            let rtx = self.db.begin_read()?;
            let filters = if !write.feeds(&self.filters) {
                None
            } else if write.wrote_tiered() {
                self.filters.current()
            } else {
                self.filters.for_planning(&rtx, records)?
            };
            ReadView::new(rtx, Arc::clone(&self.poison)).contacts_with(ws, filters)
        })
    }

    /// Drops the in-memory lookup filters; the next [`Store::bulk_contacts`] may
    /// build them again. Results never depend on them: tests use this to compare.
    pub fn drop_filters(&self) {
        self.filters.clear();
    }

    /// How many times the lookup filters were built since the store opened (tests
    /// and diagnostics).
    pub fn filter_builds(&self) -> u64 {
        self.filters.builds()
    }

    /// Walks every table in one read transaction and returns every integrity
    /// problem found; an empty list means the database is consistent.
    pub fn check(&self) -> Result<Vec<Problem>, StoreError> {
        guarded(&self.poison, || {
            let rtx = self.db.begin_read()?;
            check::check(&rtx)
        })
    }

    /// Writes a consistent copy of the last committed state to a new file at
    /// `dest`, from one read transaction: writers may go on meanwhile, the copy
    /// holds exactly one committed state. The copy is written beside `dest` and
    /// renamed into place once complete; an existing `dest` is never overwritten
    /// ([`StoreError::BackupDestinationExists`]).
    pub fn backup(&self, dest: &Path) -> Result<BackupSummary, StoreError> {
        guarded(&self.poison, || {
            let rtx = self.db.begin_read()?;
            backup::backup(&rtx, dest, self.cache_size_bytes)
        })
    }

    /// Makes the file as small as its content allows, in two steps. First every
    /// table is rewritten densely: copied in key order into a new table that
    /// replaces it (tables grown by inserts at random places hold pages about
    /// two thirds full). Then redb's compaction moves the pages in use towards the
    /// start of the file and truncates the free pages after them (copy-on-write
    /// leaves pages behind that only later writes reuse, so after a large import
    /// the file can be about twice its live data). The logical content is
    /// unchanged. Each step is a series of redb commits, so a crash in between
    /// leaves the file at a consistent state with the same content.
    ///
    /// Takes time proportional to the file (seconds per GB), and needs no read or
    /// write view of this store to be open: fails with [`StoreError::Busy`] while
    /// one is.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        let Store {
            db,
            poison,
            filters,
            ..
        } = self;
        let Handle::Write(db) = db else {
            return Err(StoreError::ReadOnly);
        };
        guarded(poison, || {
            if Arc::strong_count(poison) > 1 {
                // A view holds a clone of the poison flag.
                return Err(StoreError::Busy);
            }
            backup::rebuild(db)?;
            db.compact().map_err(compaction_error)?;
            Ok(())
        })?;
        filters.clear();
        Ok(())
    }

    /// Opens the database at `path` for writing, compacts it ([`Store::compact`])
    /// and closes it; returns the file's size in bytes before and after. Needs the
    /// file to itself: fails with [`StoreError::AlreadyOpen`] while a writer has it
    /// open, and creates no file ([`StoreError::NoDatabase`]).
    pub fn compact_file(path: &Path, opts: &StoreOptions) -> Result<(u64, u64), StoreError> {
        if !path.exists() {
            return Err(StoreError::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        let mut store = Store::open(path, opts)?;
        let before = store.file_size()?;
        store.compact()?;
        drop(store);
        let after = std::fs::metadata(path)
            .map_err(|e| StoreError::Storage(redb::StorageError::Io(e)))?
            .len();
        Ok((before, after))
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> Result<u64, StoreError> {
        let meta = std::fs::metadata(&self.path)
            .map_err(|e| StoreError::Storage(redb::StorageError::Io(e)))?;
        Ok(meta.len())
    }

    /// The path the store was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The store's error for a failed redb compaction. The store creates no
/// savepoints, so only a file written by another program can hold one.
fn compaction_error(e: redb::CompactionError) -> StoreError {
    match e {
        redb::CompactionError::TransactionInProgress => StoreError::Busy,
        redb::CompactionError::Storage(s) => StoreError::Storage(s),
        other => StoreError::Storage(redb::StorageError::Io(std::io::Error::other(format!(
            "cannot compact: {other}"
        )))),
    }
}

/// The damage a read-only open of `copy` meets in the file's header, which a
/// writable open repairs silently: a damaged primary commit slot makes a writer
/// fall back to the commit before it, so the last commit is lost; a header that
/// sends readers to another commit than a writer's (see [`readers_served_previous`]).
/// A file whose last writer did not close it is not damaged.
fn header_damage(copy: &Path, opts: &StoreOptions) -> Option<Problem> {
    let poison = Poison::default();
    let opened = guarded(&poison, || {
        redb::Database::builder()
            .set_cache_size(opts.cache_size_bytes)
            .set_concurrency_mode(CONCURRENCY)
            .open_read_only(copy)
            .map_err(|e| open_error(copy, e))
    });
    let db = match opened {
        Ok(db) => db,
        Err(StoreError::Damaged { detail }) => {
            return Some(Problem {
                table: "(file)",
                key: String::new(),
                message: format!(
                    "the file's header is damaged ({detail}): opening it for writing falls back to the commit before the last one"
                ),
            });
        }
        Err(_) => return None,
    };
    if readers_served_previous(copy) {
        return Some(Problem {
            table: "(file)",
            key: String::new(),
            message: "the file's header marks its last commit as not yet flushed while no writer has it open: readers are served the commit before it (which may be damaged), a writer the last one; `repair` clears the mark".to_owned(),
        });
    }
    // What a reader does next: its first read transaction and the format check.
    match guarded(&poison, || check_version(&db.begin_read()?)) {
        Ok(()) | Err(StoreError::NotAContactDb | StoreError::FormatVersion { .. }) => None,
        Err(e) => Some(Problem {
            table: "(file)",
            key: String::new(),
            message: format!(
                "a reader cannot read the file's last commit ({e}): opening it read-only fails, opening it for writing recovers what it can"
            ),
        }),
    }
}

/// Whether the header of the redb file at `path` sends readers to the commit
/// before the last one while no writer is at work: redb's "primary unflushed" mark
/// without its "recovery required" mark. A writer sets the first between writing a
/// commit's header and flushing it, and keeps the second set as long as it has the
/// file open (a writer that stopped leaves it set, and every open recovers); so the
/// first alone is left by no writer, only by damage. Readers are then served the
/// previous commit slot, unchecked, while a writer takes the last one: two views
/// of one file. redb keeps the marks in its header's flag byte (file format 3,
/// redb 4.6): bit 1 recovery required, bit 3 primary unflushed; a unit test checks
/// that readers are served another commit when it is set.
fn readers_served_previous(path: &Path) -> bool {
    const MAGIC: &[u8] = &[b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
    const RECOVERY_REQUIRED: u8 = 2;
    const PRIMARY_UNFLUSHED: u8 = 8;
    let mut head = [0u8; 10];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    read.is_ok()
        && head.starts_with(MAGIC)
        && head[9] & PRIMARY_UNFLUSHED != 0
        && head[9] & RECOVERY_REQUIRED == 0
}

/// The store's error for a failed redb open of `path`.
fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            StoreError::AlreadyOpen {
                path: path.to_path_buf(),
            }
        }
        redb::DatabaseError::RepairAborted => StoreError::NeedsRecovery,
        redb::DatabaseError::UpgradeRequired(v) => StoreError::NotADatabase {
            detail: format!("it is in redb file format {v}, which this build does not read"),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::NotFound =>
        {
            StoreError::NoDatabase {
                path: path.to_path_buf(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::NotADatabase {
                detail: io.to_string(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Damaged { detail }
        }
        other => StoreError::Database(other),
    }
}

/// Before a writable open, which writes redb's header even when the file is then
/// refused: an existing file of another format version, or a redb file of
/// something else, is refused through a read-only open, so it stays byte for byte
/// as it was. A file that no read-only open reads (empty, not closed cleanly, not a
/// redb file, locked by an older build) is left to the writable open, which
/// reports or initializes it.
fn refuse_foreign(path: &Path, opts: &StoreOptions) -> Result<(), StoreError> {
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(());
    }
    let Ok(db) = redb::Database::builder()
        .set_cache_size(opts.cache_size_bytes)
        .set_concurrency_mode(CONCURRENCY)
        .open_read_only(path)
    else {
        return Ok(());
    };
    let rtx = db.begin_read()?;
    if rtx.list_tables()?.next().is_none() && rtx.list_multimap_tables()?.next().is_none() {
        return Ok(());
    }
    check_version(&rtx)
}

/// Checks that `meta.format_version` is [`FORMAT_VERSION`].
fn check_version(rtx: &redb::ReadTransaction) -> Result<(), StoreError> {
    let meta = match rtx.open_table(keys::META) {
        Ok(t) => t,
        Err(
            redb::TableError::TableDoesNotExist(_) | redb::TableError::TableTypeMismatch { .. },
        ) => {
            return Err(StoreError::NotAContactDb);
        }
        Err(e) => return Err(e.into()),
    };
    let Some(v) = meta.get(keys::META_FORMAT_VERSION)? else {
        return Err(StoreError::NotAContactDb);
    };
    let found = keys::ws_from_bytes(v.value()).ok_or_else(|| {
        StoreError::corrupt("meta", "format_version is not a 4-byte big-endian number")
    })?;
    if found != FORMAT_VERSION {
        return Err(StoreError::FormatVersion {
            found,
            expected: FORMAT_VERSION,
        });
    }
    Ok(())
}

/// Now, in microseconds since the Unix epoch.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_micros()).ok())
        .unwrap_or(0)
}

/// A random (version 4) UUID for the default workspace: 16 bytes of the OS random
/// source, or, where that cannot be read, of std's randomly seeded hasher mixed
/// with the clock and process id.
fn random_uuid_v4() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read;

    let mut b = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !from_os {
        let mut halves = [0u64; 2];
        for (i, h) in halves.iter_mut().enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_i64(now_us());
            hasher.write_u32(std::process::id());
            hasher.write_usize(i);
            *h = hasher.finish();
        }
        let [lo, hi] = halves;
        for (dst, src) in b
            .iter_mut()
            .zip(lo.to_le_bytes().into_iter().chain(hi.to_le_bytes()))
        {
            *dst = src;
        }
    }
    if let Some(x) = b.get_mut(6) {
        *x = (*x & 0x0f) | 0x40;
    }
    if let Some(x) = b.get_mut(8) {
        *x = (*x & 0x3f) | 0x80;
    }
    b
}

/// Loads workspace `ws`'s record from an open `workspaces` table.
fn load_workspace(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: u32,
) -> Result<Option<codec::StoredWorkspace>, StoreError> {
    match t.get(keys::ws_bytes(ws).as_slice())? {
        Some(v) => Ok(Some(codec::decode_workspace(v.value())?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn thread_safety() {
        assert_send_sync::<Store>();
        assert_send_sync::<ContactsView>();
        assert_send_sync::<StoreError>();
    }

    #[test]
    fn compaction_waits_for_no_view_and_needs_a_writer() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Storage(e.into()))?;
        let path = dir.path().join("c.redb");
        let mut store = Store::open(&path, &StoreOptions::default())?;
        let view = store.read()?;
        assert!(matches!(store.compact(), Err(StoreError::Busy)));
        drop(view);
        store.compact()?;
        assert!(store.check()?.is_empty());
        drop(store);
        let mut ro = Store::open_read_only(&path, &StoreOptions::default())?;
        assert!(matches!(ro.compact(), Err(StoreError::ReadOnly)));
        Ok(())
    }

    #[test]
    fn uuids_are_v4_and_differ() {
        let a = random_uuid_v4();
        let b = random_uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
    }
}
