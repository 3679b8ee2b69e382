//! In-memory Bloom filters over the three tiered tables (their base, mid and delta
//! tables), so that looking up a key the table does not hold — every key,
//! email and phone of a new contact — costs no B-tree descent.
//!
//! Why: in the merge's lookup phase most probes miss (a load misses on all three
//! tables; an upsert on every new contact), and each miss costs a descent of each
//! of the delta, mid and base tables (3–4 pages each through redb's page
//! cache, an atomic-heavy path that both lookup threads share). With the filter, a
//! miss costs one cache line here. Measured: docs/performance.md.
//!
//! Never stored, so no part of the file format. The invariant that makes it correct:
//!
//! **Architecture invariant:** a table's filter holds every key its levels held in the committed snapshot it was built from, and every key any
//! later write transaction put into the delta (added during that transaction, before
//! it commits). Bits are never cleared. A merge only moves keys down a level (delta
//! to mid or base, mid to base), and a removal only removes
//! keys, so for the snapshot a filter was built from and every later one, a key the
//! filter lacks is in no table; a key it holds may be (about 1% of misses are probed
//! anyway), and is then looked up.
//!
//! Keeping it: filters are built only while the writer lock is held and before the
//! write transaction wrote to a tiered table (`Store::bulk_contacts`), from a read
//! transaction begun under that lock — which sees exactly the last commit, and no
//! commit can slip between that snapshot and the filter's installation. A filter is
//! rebuilt the same way once a quarter more keys were added to it than it was sized
//! for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use crate::StoreError;
use crate::keys;
use crate::tiered::{Plain, Tiered};

/// Filter bits per key of the capacity: about 1% false positives at capacity, and
/// ~0.1% at half of it, where a filter starts (see `TableFilter::new`).
const BITS_PER_KEY: u64 = 10;
/// The default least number of keys a new filter takes beyond its table's size
/// before it is due for a rebuild (`StoreOptions::filter_slack_min`); the slack is
/// `max(entries, this)`, so a filter starts half full and a growing table rebuilds
/// it each time it doubles.
pub const DEFAULT_SLACK_MIN: u64 = 1 << 16;
/// Filters are (re)built once the records planned since the last build reach
/// `identifiers entries / BUILD_DEMAND_DIVISOR`: a build reads every key of the
/// four tables once (a sequential scan, ~0.15 µs a key at 1M), each planned record
/// saves up to six descents (random, ~1 µs each), so building pays once the records
/// are a small fraction of the table.
pub const BUILD_DEMAND_DIVISOR: u64 = 64;

/// The most 256-bit blocks one filter takes (1 GiB).
const BLOCKS_MAX: u64 = 1 << 25;

/// The salts of the split-block Bloom filter of Apache Parquet's specification: one
/// odd multiplier per 32-bit word of a block.
const SALTS: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// A split-block Bloom filter over 64-bit hashes (the layout of Parquet's): the
/// high half of a hash picks a 256-bit block, the low half sets one bit in each of
/// the block's eight words. Inserting takes `&self` (atomic `fetch_or`), so views
/// that share the filter never see it shrink.
pub struct Bloom {
    blocks: Box<[[AtomicU32; 8]]>,
}

impl Bloom {
    /// A filter sized for `keys` keys at `BITS_PER_KEY` (at least one block, at
    /// most `BLOCKS_MAX`: beyond ~850M keys it only answers "maybe" more often).
    pub fn with_capacity(keys: u64) -> Bloom {
        let blocks = keys
            .saturating_mul(BITS_PER_KEY)
            .div_ceil(256)
            .clamp(1, BLOCKS_MAX);
        let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
        Bloom {
            blocks: (0..blocks).map(|_| Default::default()).collect(),
        }
    }

    /// The block `h` falls in: `(hi · n) >> 32 < n`, an index without a division.
    fn block_index(&self, h: u64) -> usize {
        let n = self.blocks.len() as u64;
        usize::try_from(((h >> 32) * n) >> 32).unwrap_or(usize::MAX)
    }

    fn block(&self, h: u64) -> Option<&[AtomicU32; 8]> {
        self.blocks.get(self.block_index(h))
    }

    fn masks(h: u64) -> impl Iterator<Item = u32> {
        let lo = h as u32;
        SALTS
            .into_iter()
            .map(move |s| 1u32 << (lo.wrapping_mul(s) >> 27))
    }

    /// Adds `h`. Safe to call while others read (they then see it or not yet);
    /// a bit already set costs no atomic write.
    pub fn insert(&self, h: u64) {
        if let Some(block) = self.block(h) {
            for (word, mask) in block.iter().zip(Self::masks(h)) {
                if word.load(Ordering::Relaxed) & mask == 0 {
                    word.fetch_or(mask, Ordering::Relaxed);
                }
            }
        }
    }

    /// Adds `h` to a filter nobody else holds yet (no atomic operations).
    pub fn insert_mut(&mut self, h: u64) {
        let i = self.block_index(h);
        if let Some(block) = self.blocks.get_mut(i) {
            for (word, mask) in block.iter_mut().zip(Self::masks(h)) {
                *word.get_mut() |= mask;
            }
        }
    }

    /// Whether `h` may have been added (`false`: it certainly was not).
    pub fn may_contain(&self, h: u64) -> bool {
        match self.block(h) {
            Some(block) => block
                .iter()
                .zip(Self::masks(h))
                .all(|(word, mask)| word.load(Ordering::Relaxed) & mask != 0),
            None => true,
        }
    }

    /// Memory held, bytes.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.blocks.len() * 32
    }
}

/// The 64-bit hash a filter keeps for a table key (or lookup prefix): eight bytes
/// at a time, multiply-rotate, then `keys::fmix64` so that every output bit
/// depends on every input bit. In memory only, so free to change.
pub fn filter_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = K ^ (bytes.len() as u64);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(chunks.remainder()) {
        *d = *s;
    }
    keys::fmix64((h ^ u64::from_le_bytes(last)).wrapping_mul(K))
}

/// The filter of one tiered table (the keys of its levels).
pub struct TableFilter {
    bloom: Bloom,
    /// How many bytes of a key the filter keys on: the whole key for
    /// `identifiers`, the `ws ‖ value_hash` prefix for the indexes (lookups there are
    /// by that prefix).
    prefix: FilterOn,
    /// Keys it was sized for; a quarter more make it due for a rebuild (at 1.25×
    /// its capacity it still answers ~97% of misses, and a rebuild reads every key
    /// of the tables).
    capacity: u64,
    /// Keys added (those of the build included; duplicates count again).
    added: AtomicU64,
}

/// Which part of a table key a filter keys on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOn {
    /// The whole key (point lookups: `identifiers`).
    Key,
    /// The first `n` bytes (prefix lookups: the email and phone indexes).
    Prefix(usize),
}

impl FilterOn {
    fn part(self, key: &[u8]) -> &[u8] {
        match self {
            FilterOn::Key => key,
            FilterOn::Prefix(n) => key.get(..n).unwrap_or(key),
        }
    }
}

impl TableFilter {
    /// An empty filter sized for `entries` keys and then `max(entries, slack_min)`
    /// more.
    pub(crate) fn new(prefix: FilterOn, entries: u64, slack_min: u64) -> TableFilter {
        let capacity = entries.saturating_add(entries.max(slack_min));
        TableFilter {
            bloom: Bloom::with_capacity(capacity),
            prefix,
            capacity,
            added: AtomicU64::new(0),
        }
    }

    /// Records that the table may now hold `key` (a whole table key).
    pub fn add(&self, key: &[u8]) {
        self.bloom.insert(filter_hash(self.prefix.part(key)));
        self.added.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the table may hold `key`.
    pub fn may_contain_key(&self, key: &[u8]) -> bool {
        self.bloom.may_contain(filter_hash(self.prefix.part(key)))
    }

    /// Whether the table may hold a key starting with `prefix`. Only a filter that
    /// keys on prefixes of exactly this length can say no.
    pub fn may_contain_prefix(&self, prefix: &[u8]) -> bool {
        match self.prefix {
            FilterOn::Prefix(n) if n == prefix.len() => self.bloom.may_contain(filter_hash(prefix)),
            _ => true,
        }
    }

    fn overfull(&self) -> bool {
        self.added.load(Ordering::Relaxed) > self.capacity.saturating_add(self.capacity / 4)
    }

    /// Builds the filter of `t` as of `rtx`, reading every key of its levels once (tombstones included: they hide keys the filter holds
    /// anyway).
    fn build<V: Plain>(
        rtx: &ReadTransaction,
        t: &Tiered<V>,
        prefix: FilterOn,
        slack_min: u64,
    ) -> Result<TableFilter, StoreError> {
        let t = t.open_read(rtx)?;
        let mut entries = t.base.len()?;
        for level in t.upper() {
            entries += level.len()?;
        }
        let mut f = TableFilter::new(prefix, entries, slack_min);
        let mut added = 0u64;
        let mut add = |key: &[u8]| {
            f.bloom.insert_mut(filter_hash(prefix.part(key)));
            added += 1;
        };
        for e in t.base.iter()? {
            add(e?.0.value());
        }
        for level in t.upper() {
            for e in level.iter()? {
                add(e?.0.value());
            }
        }
        *f.added.get_mut() = added;
        Ok(f)
    }
}

/// The filters of the three tiered tables.
pub struct Filters {
    /// `identifiers`.
    pub idents: TableFilter,
    /// `email_index`.
    pub emails: TableFilter,
    /// `phone_index`.
    pub phones: TableFilter,
}

/// Index lookups are by `ws ‖ value_hash`.
const INDEX_PREFIX: FilterOn = FilterOn::Prefix(12);

impl Filters {
    /// Builds all three from the committed snapshot `rtx`.
    fn build(rtx: &ReadTransaction, slack_min: u64) -> Result<Filters, StoreError> {
        Ok(Filters {
            idents: TableFilter::build(rtx, &keys::IDENTIFIERS, FilterOn::Key, slack_min)?,
            emails: TableFilter::build(rtx, &keys::EMAIL_INDEX, INDEX_PREFIX, slack_min)?,
            phones: TableFilter::build(rtx, &keys::PHONE_INDEX, INDEX_PREFIX, slack_min)?,
        })
    }

    fn overfull(&self) -> bool {
        self.idents.overfull() || self.emails.overfull() || self.phones.overfull()
    }
}

/// The filters of one open store, shared by the store and its write views.
pub struct FilterCell {
    state: std::sync::Mutex<FilterState>,
    /// See [`DEFAULT_SLACK_MIN`].
    slack_min: u64,
}

#[derive(Default)]
struct FilterState {
    current: Option<Arc<Filters>>,
    /// Records planned since the filters were last built (or the store opened).
    demand: u64,
    /// Builds so far (diagnostics and tests).
    builds: u64,
}

impl FilterCell {
    /// No filters yet; new ones get `max(entries, slack_min)` keys of slack.
    pub fn new(slack_min: u64) -> FilterCell {
        FilterCell {
            state: std::sync::Mutex::default(),
            slack_min,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FilterState> {
        // A panic while holding this lock cannot leave the state half-changed (each
        // change is one assignment), so a poisoned lock is used as it is.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current filters, if built.
    pub fn current(&self) -> Option<Arc<Filters>> {
        self.lock().current.clone()
    }

    /// How many times filters were built since the store opened.
    pub fn builds(&self) -> u64 {
        self.lock().builds
    }

    /// Drops the filters (tests: the same answers must come without them).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.current = None;
        s.demand = 0;
    }

    /// The filters to plan `records` records against the committed snapshot `rtx`,
    /// building (or rebuilding) them first when the demand since the last build
    /// justifies reading the tables.
    ///
    /// The caller must hold the writer lock, must have begun `rtx` under it, and its
    /// write transaction must not have written to a tiered table yet (module docs).
    pub fn for_planning(
        &self,
        rtx: &ReadTransaction,
        records: u64,
    ) -> Result<Option<Arc<Filters>>, StoreError> {
        let mut s = self.lock();
        s.demand = s.demand.saturating_add(records);
        let due = s.current.as_ref().is_none_or(|f| f.overfull());
        if due {
            let base = rtx.open_table(keys::IDENTIFIERS.base)?.len()?;
            if s.demand.saturating_mul(BUILD_DEMAND_DIVISOR) >= base {
                s.current = Some(Arc::new(Filters::build(rtx, self.slack_min)?));
                s.demand = 0;
                s.builds += 1;
            }
        }
        Ok(s.current.clone())
    }
}

#[cfg(test)]
mod tests;
