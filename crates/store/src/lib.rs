//! contactdb's storage: the master contact table, its aliases, email and phone
//! indexes, workspaces, custom columns and applied request ids, in one redb file.
//!
//! Architecture invariants:
//! - Every stored value goes through the `codec` module: a format tag byte, then
//!   postcard of a stored struct that is separate from the domain types.
//! - Contacts are keyed by an internal id (a per-workspace sequence); keys and
//!   aliases map to ids in `identifiers`; the email and phone indexes are plain
//!   tables with composite keys (`ws ‖ hash(value) ‖ id`). Those three are
//!   [`tiered`] (base + mid + delta), written in the same transaction as the contacts
//!   they index; [`Store::check`] verifies they agree.
//! - Reads never block; one write transaction at a time (R19).
//!
//! The on-disk format is described in `docs/format.md`.

mod campaign;
mod check;
mod codec;
mod error;
mod feed;
/// Public because the public functions of `tiered` take its filters.
pub mod filter;
mod job;
mod key;
/// Public so that the benchmark floor can write exactly this layout.
pub mod keys;
mod read;
/// Public so that the benchmark floor can write exactly this layout.
pub mod tiered;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};

pub use campaign::{CampaignInfo, Member};
pub use error::{Problem, StoreError};
pub use feed::{Event, EventKind, NewEvent};
pub use job::{JobDataKind, JobRecord, JobState};
pub use key::{ApiKey, KeyRole};
pub use read::{ContactsView, ReadView};
pub use write::WriteView;

/// The on-disk format version this build writes (`meta.format_version`). It also
/// opens files of [`FORMAT_VERSIONS_UPGRADABLE`], upgrading them in place.
pub const FORMAT_VERSION: u32 = 5;

/// The older format versions `open` upgrades: version 4 is version 5 without the
/// campaign, feed and job tables, version 3 also without the tiered tables'
/// `frozen` tables, version 2 also without their `mid` tables; the missing tables
/// start empty (docs/format.md, "Format version").
pub const FORMAT_VERSIONS_UPGRADABLE: [u32; 3] = [2, 3, 4];

/// The slug of the workspace every new database starts with (R1).
pub const DEFAULT_WORKSPACE: &str = "default";

/// The default of [`StoreOptions::min_delta`].
pub const DEFAULT_MIN_DELTA: u64 = 16_384;

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bytes of memory redb may use to cache pages.
    pub cache_size_bytes: usize,
    /// The delta of a tiered table (identifiers, email and phone indexes) is merged
    /// into the next level when it holds more than about `sqrt(m · base entries)`
    /// entries (two levels) or `(m² · base entries)^(1/3)` (three, for bases above
    /// ~11.4·m), `m` being this value (see [`tiered::thresholds`]). Small values
    /// exercise the merges in tests; the default suits batches of ~10k records.
    pub min_delta: u64,
    /// A lookup filter (see [`filter`]) is sized for its table's keys plus
    /// `max(keys, filter_slack_min)` more, and rebuilt once it took more.
    /// Small values exercise the rebuild in tests; the default is
    /// [`filter::DEFAULT_SLACK_MIN`] (65,536).
    pub filter_slack_min: u64,
    /// A tiered table's frozen table (a full mid table on its way into the base)
    /// moves this many entries into the base per entry a request writes into the
    /// table (see [`tiered::Drain`]). 0 moves it whole in the request that froze
    /// it, as one merge of mid into the base (for comparisons); small values make
    /// a frozen table last many requests (tests); the default is
    /// [`tiered::DRAIN_PER_WRITE`] (4).
    pub drain_per_write: u64,
    /// A frozen table moves whole while its base holds fewer entries than this
    /// (see [`tiered::Drain::whole_below`]); `None` (the default) takes the entries
    /// that fill the page cache, `cache_size_bytes / tiered::BASE_ENTRY_BYTES`
    /// (2,097,152 for 64 MiB). `Some(0)` always drains in slices (tests).
    pub drain_whole_below: Option<u64>,
}

impl Default for StoreOptions {
    /// A 64 MiB cache; tiered deltas of at least 16,384 entries; filter slack of
    /// at least 65,536 keys; frozen tables drained 4 entries per entry written.
    fn default() -> Self {
        StoreOptions {
            cache_size_bytes: 64 * 1024 * 1024,
            min_delta: DEFAULT_MIN_DELTA,
            filter_slack_min: filter::DEFAULT_SLACK_MIN,
            drain_per_write: tiered::DRAIN_PER_WRITE,
            drain_whole_below: None,
        }
    }
}

/// Whether [`Store::begin_write`] waits for a live write transaction to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait until the write transaction can start.
    Block,
    /// Fail at once with [`StoreError::Busy`] if another write transaction is live.
    No,
}

/// The number of a workspace inside one database file (the prefix of its keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceId(pub u32);

/// A workspace (R1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceInfo {
    /// Its number in this file.
    pub id: WorkspaceId,
    /// Its slug, `[a-z0-9][a-z0-9-]{0,62}`.
    pub slug: String,
    /// Its stable UUID.
    pub uuid: [u8; 16],
    /// Creation time, microseconds since the Unix epoch (UTC).
    pub created_at_us: i64,
}

/// An applied request id's record (R21).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRequest {
    /// SHA-256 of the request body (without `request_id`), canonical JSON.
    pub body_hash: [u8; 32],
    /// When it was applied, microseconds since the Unix epoch (UTC).
    pub applied_at_us: i64,
    /// The report of the first application, as JSON text.
    pub report_json: String,
}

/// An open contactdb database file.
///
/// `Store` is `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Store {
    db: redb::Database,
    path: PathBuf,
    min_delta: u64,
    /// In-memory filters of the tiered tables (see [`filter`]), shared with every
    /// write view, which feeds them the keys it writes.
    filters: Arc<filter::FilterCell>,
    /// The drain rule of `StoreOptions::drain_per_write` and `drain_whole_below`
    /// (resolved), shared with every write view.
    drain: tiered::Drain,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Every table of format version 5 that `open` makes sure exists.
const ALL_TABLES: [&str; 31] = [
    "meta",
    "workspaces",
    "workspace_slugs",
    "workspace_uuids",
    "columns",
    "contacts",
    "identifiers",
    "identifiers_frozen",
    "identifiers_mid",
    "identifiers_delta",
    "email_index",
    "email_index_frozen",
    "email_index_mid",
    "email_index_delta",
    "phone_index",
    "phone_index_frozen",
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
    /// Opens the database at `path`, creating it (with workspace `default`) if the
    /// file is missing or empty.
    ///
    /// Errors: [`StoreError::AlreadyOpen`] when this or another process has it
    /// open, [`StoreError::FormatVersion`] when it was written in another format
    /// version, [`StoreError::NotAContactDb`] when it is a redb file of something else.
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        let db = redb::Database::builder()
            .set_cache_size(opts.cache_size_bytes)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                    path: path.to_path_buf(),
                },
                other => StoreError::Database(other),
            })?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            min_delta: opts.min_delta,
            filters: Arc::new(filter::FilterCell::new(opts.filter_slack_min)),
            drain: {
                let d = tiered::Drain::for_cache(opts.drain_per_write, opts.cache_size_bytes);
                tiered::Drain {
                    whole_below: opts.drain_whole_below.unwrap_or(d.whole_below),
                    ..d
                }
            },
        };
        store.init()?;
        Ok(store)
    }

    /// Checks the format version of an existing file, or initializes a new one.
    fn init(&self) -> Result<(), StoreError> {
        let (present, version): (Vec<String>, Option<u32>) = {
            let rtx = self.db.begin_read()?;
            let mut names: Vec<String> = rtx
                .list_tables()?
                .map(|h| redb::TableHandle::name(&h).to_owned())
                .collect();
            names.extend(
                rtx.list_multimap_tables()?
                    .map(|h| redb::MultimapTableHandle::name(&h).to_owned()),
            );
            let version = if names.is_empty() {
                None
            } else {
                Some(check_version(&rtx)?)
            };
            (names, version)
        };
        if present.is_empty() {
            // A new file (or one whose creation never committed).
            let mut w = self.begin_write(Wait::Block)?;
            w.init_tables()?;
            w.set_meta_u32(keys::META_FORMAT_VERSION, FORMAT_VERSION)?;
            w.set_meta_u32(keys::META_NEXT_WORKSPACE, 1)?;
            w.create_workspace(DEFAULT_WORKSPACE, random_uuid_v4(), now_us())?;
            w.commit()?;
        } else if version.is_some_and(|v| FORMAT_VERSIONS_UPGRADABLE.contains(&v)) {
            // Format 2, 3 or 4 → 5: the missing tables (campaigns, feed and jobs;
            // frozen for format 3, and mid for format 2) are created empty, then the
            // version says so, in one transaction (a crash leaves the file as it was).
            let mut w = self.begin_write(Wait::Block)?;
            w.init_tables()?;
            w.set_meta_u32(keys::META_FORMAT_VERSION, FORMAT_VERSION)?;
            w.commit()?;
        } else if ALL_TABLES.iter().any(|t| !present.iter().any(|p| p == t)) {
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
        Ok(ReadView::new(self.db.begin_read()?))
    }

    /// Begins the write transaction (R19). With [`Wait::No`] it fails at once with
    /// [`StoreError::Busy`] while another write transaction is live. Dropping the
    /// returned view without [`WriteView::commit`] aborts it.
    pub fn begin_write(&self, wait: Wait) -> Result<WriteView, StoreError> {
        let txn = match wait {
            Wait::Block => self.db.begin_write()?,
            Wait::No => self.db.try_begin_write().map_err(|e| match e {
                redb::TransactionError::WouldBlock => StoreError::Busy,
                other => StoreError::Transaction(other),
            })?,
        };
        Ok(WriteView::new(
            txn,
            self.min_delta,
            Arc::clone(&self.filters),
            self.drain,
        ))
    }

    /// The contacts of `ws` to plan a request of about `records` records in `write`:
    /// a read transaction begun now, so (with `write` holding the writer lock) it
    /// sees exactly the state `write` starts from, with the lookup [`filter`]s
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
        let rtx = self.db.begin_read()?;
        let filters = if !write.feeds(&self.filters) {
            None
        } else if write.wrote_tiered() {
            self.filters.current()
        } else {
            self.filters.for_planning(&rtx, records)?
        };
        ReadView::new(rtx).contacts_with(ws, filters)
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
        let rtx = self.db.begin_read()?;
        check::check(&rtx)
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

/// Reads `meta.format_version`: [`FORMAT_VERSION`] or
/// one of [`FORMAT_VERSIONS_UPGRADABLE`], else an error.
fn check_version(rtx: &redb::ReadTransaction) -> Result<u32, StoreError> {
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
    if found != FORMAT_VERSION && !FORMAT_VERSIONS_UPGRADABLE.contains(&found) {
        return Err(StoreError::FormatVersion {
            found,
            expected: FORMAT_VERSION,
        });
    }
    Ok(found)
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
    fn uuids_are_v4_and_differ() {
        let a = random_uuid_v4();
        let b = random_uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
    }
}
