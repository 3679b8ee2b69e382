//! Tiered tables: a large sorted `base` table, a `mid` table and a small `delta`
//! table of recent changes, plus a `frozen` table: a full mid table on its way into
//! the base. Writes go to the delta; a full delta is merged into the mid table; a
//! full mid table becomes the frozen table, which each later write moves into the
//! base a slice at a time.
//!
//! Why: a B-tree under random inserts dirties about one page per inserted entry once
//! the tree is larger than a batch, and copy-on-write rewrites every dirtied page at
//! commit. A batch written into a delta of `D` entries dirties at most the delta's
//! pages (about `D / entries per page`), and each merge rewrites the pages of the
//! table it merges into once. With two levels (delta and base; `B` base entries,
//! batches of `b` entries) the pages written per batch are about
//! `(D + b·B/D) / entries per page`, least at `D = sqrt(b·B)`. With three (delta
//! `D0`, mid `D1`, base) they are `(D0 + b·D1/D0 + b·B/D1) / entries per page`,
//! least at `D0 = (b²·B)^(1/3)` and `D1 = (b·B²)^(1/3)`; that is fewer once
//! `3·(b²·B)^(1/3) < 2·sqrt(b·B)`, i.e. once the base holds more than about
//! `11.4·b` entries. [`thresholds`] takes `b` to be the configured minimum `m`
//! (16,384 by default, a typical batch) and picks whichever is cheaper: below the
//! crossover the mid table stays empty and the delta is merged straight into the
//! base. This is an LSM tree of two or three levels, expressed as ordinary redb
//! tables.
//!
//! The frozen table spreads the merge of mid into the base over many requests
//! (see [`maybe_compact`]): merged in one request, a full mid table rewrites most
//! of the base's pages, seconds at 10M entries. A full mid table is renamed to
//! `frozen` (a catalog change, not a copy) and a new, empty mid table takes the
//! deltas; every call from then on moves the frozen table's first entries, in key
//! order, into the base, a number in proportion to what the call wrote, so the
//! frozen table is empty long before the new mid table is full. The file is valid after
//! any slice: the frozen table's remaining entries are its own progress.
//!
//! The logical content of a tiered table is `base` overlaid by `frozen`, by `mid`,
//! then by `delta`: a `Some(v)` entry sets the key to `v`, `None` is a tombstone that
//! hides the entry of the levels below. Invariants kept by [`write`] and
//! [`maybe_compact`] (and verified by `check`): a tombstone is only stored for a key
//! the levels below it hold (logically: the level right below sets it, or says
//! nothing about it and the next one down holds it, and so on to the base).
//!
//! The store uses three: `identifiers`, `email_index` and `phone_index`
//! (docs/format.md, "Tiered tables").

use std::cmp::Ordering;
use std::iter::Peekable;

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    Value, WriteTransaction,
};

use crate::StoreError;
use crate::filter::TableFilter;

/// When a tiered table whose base has `base` entries merges, for the configured
/// minimum `min_delta` (`m`): `(delta, mid)` — the delta is merged once it holds
/// more than `delta` entries, into the base when the mid and delta then hold more
/// than `mid` entries together, else into the mid table (see the module
/// documentation for why).
///
/// Two levels (`delta == mid`, the mid table unused) while
/// `3·(m²·base)^(1/3) ≥ 2·sqrt(m·base)`, with `max(m, sqrt(m·base))`; three above,
/// with `max(m, (m²·base)^(1/3))` and `max(that, (m·base²)^(1/3))`.
pub fn thresholds(min_delta: u64, base: u64) -> (u64, u64) {
    let m = u128::from(min_delta);
    let b = u128::from(base);
    // Both factors are below 2^64, so `m·b` fits; the cubes' products saturate
    // (the thresholds then exceed any table anyway).
    let two = isqrt(m * b);
    let d0 = icbrt((m * m).saturating_mul(b));
    let d1 = icbrt((m * b).saturating_mul(b));
    // 3·d0 < 2·two, compared in u128 (both sides are below 2^66).
    if 3 * u128::from(d0) < 2 * u128::from(two) {
        let d0 = min_delta.max(d0);
        (d0, d0.max(d1))
    } else {
        let t = min_delta.max(two);
        (t, t)
    }
}

/// `floor(sqrt(x))`, saturated to `u64`.
fn isqrt(x: u128) -> u64 {
    u64::try_from(x.isqrt()).unwrap_or(u64::MAX)
}

/// `floor(cbrt(x))` for any `u128`.
fn icbrt(x: u128) -> u64 {
    // Start from the f64 estimate, then correct it by exact integer steps (a cube
    // that overflows is above every `x`).
    let cube = |r: u128| r.checked_mul(r).and_then(|r2| r2.checked_mul(r));
    let mut r = (x as f64).cbrt() as u128;
    while r > 0 && cube(r).is_none_or(|c| c > x) {
        r -= 1;
    }
    while cube(r + 1).is_some_and(|c| c <= x) {
        r += 1;
    }
    u64::try_from(r).unwrap_or(u64::MAX)
}

/// A value type whose decoded form is itself (`()`, `u64`): what tiered tables hold.
pub trait Plain: Value + Copy + 'static + for<'a> Value<SelfType<'a> = Self> {}
impl<T> Plain for T where T: Value + Copy + 'static + for<'a> Value<SelfType<'a> = T> {}

/// The four tables of one tiered table.
#[derive(Clone, Copy)]
pub struct Tiered<V: Plain> {
    /// Name of the logical table (for problem reports).
    pub name: &'static str,
    /// The large, sorted part.
    pub base: TableDefinition<'static, &'static [u8], V>,
    /// A former mid table being moved into the base: `Some` sets, `None` hides the
    /// base entry. Takes no new entries.
    pub frozen: TableDefinition<'static, &'static [u8], Option<V>>,
    /// Older changes: `Some` sets, `None` hides the entry of frozen or base.
    pub mid: TableDefinition<'static, &'static [u8], Option<V>>,
    /// Recent changes: `Some` sets, `None` hides the entry of a level below.
    pub delta: TableDefinition<'static, &'static [u8], Option<V>>,
}

/// The tables of a tiered table, opened in one transaction: read-only tables of a
/// read transaction ([`Tiered::open_read`]) or tables of the write transaction
/// ([`Tiered::open_write`]).
pub struct Opened<B, D> {
    /// The base table.
    pub base: B,
    /// The frozen table.
    pub frozen: D,
    /// The mid table.
    pub mid: D,
    /// The delta table.
    pub delta: D,
}

/// A tiered table opened in a read transaction.
pub type ReadOpened<V> =
    Opened<ReadOnlyTable<&'static [u8], V>, ReadOnlyTable<&'static [u8], Option<V>>>;

/// A tiered table opened in the write transaction.
pub type WriteOpened<'t, V> =
    Opened<Table<'t, &'static [u8], V>, Table<'t, &'static [u8], Option<V>>>;

impl<V: Plain> Tiered<V> {
    /// Opens the four tables in a read transaction.
    pub fn open_read(&self, txn: &ReadTransaction) -> Result<ReadOpened<V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            frozen: txn.open_table(self.frozen)?,
            mid: txn.open_table(self.mid)?,
            delta: txn.open_table(self.delta)?,
        })
    }

    /// Opens the four tables in the write transaction (creating any that is
    /// missing).
    pub fn open_write<'t>(
        &self,
        txn: &'t WriteTransaction,
    ) -> Result<WriteOpened<'t, V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            frozen: txn.open_table(self.frozen)?,
            mid: txn.open_table(self.mid)?,
            delta: txn.open_table(self.delta)?,
        })
    }
}

impl<B, D> Opened<B, D> {
    /// The logical value of `key`: the delta's entry, else mid's, else frozen's,
    /// else the base's. With a `filter` of the table (one that holds every key of
    /// this snapshot's tables, see [`crate::filter`]), a key it lacks is looked
    /// for in none.
    pub fn get<V: Plain>(
        &self,
        key: &[u8],
        filter: Option<&TableFilter>,
    ) -> Result<Option<V>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        if filter.is_some_and(|f| !f.may_contain_key(key)) {
            return Ok(None);
        }
        if let Some(d) = self.delta.get(key)? {
            return Ok(d.value());
        }
        self.below_delta(key)
    }

    /// The value of `key` in the levels below the delta (what a delta entry
    /// would hide).
    pub fn below_delta<V: Plain>(&self, key: &[u8]) -> Result<Option<V>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        below_delta(&self.base, &self.frozen, &self.mid, key)
    }

    /// The value of `key` in frozen overlaid on base (what a mid entry would hide).
    pub fn below_mid<V: Plain>(&self, key: &[u8]) -> Result<Option<V>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        below_mid(&self.base, &self.frozen, key)
    }

    /// Every logical entry whose key starts with `prefix`, in key order. With a
    /// `filter` that lacks `prefix`, nothing is read (see [`Opened::get`]).
    pub fn prefixed<V: Plain>(
        &self,
        prefix: &[u8],
        filter: Option<&TableFilter>,
    ) -> Result<Vec<(Vec<u8>, V)>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        if filter.is_some_and(|f| !f.may_contain_prefix(prefix)) {
            return Ok(Vec::new());
        }
        let range = crate::keys::prefix_range(prefix);
        let bounds = crate::keys::as_slices(&range);
        merged(
            self.base.range::<&[u8]>(bounds)?,
            [
                self.frozen.range::<&[u8]>(bounds)?,
                self.mid.range::<&[u8]>(bounds)?,
                self.delta.range::<&[u8]>(bounds)?,
            ],
        )
        .collect()
    }

    /// Every logical entry, in key order, streamed (see [`merged`]).
    pub fn iter<V: Plain>(
        &self,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, V), StoreError>>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        Ok(merged(
            self.base.iter()?,
            [self.frozen.iter()?, self.mid.iter()?, self.delta.iter()?],
        ))
    }
}

/// See [`Opened::below_delta`].
fn below_delta<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    frozen: &impl ReadableTable<&'static [u8], Option<V>>,
    mid: &impl ReadableTable<&'static [u8], Option<V>>,
    key: &[u8],
) -> Result<Option<V>, StoreError> {
    if let Some(m) = mid.get(key)? {
        return Ok(m.value());
    }
    below_mid(base, frozen, key)
}

/// See [`Opened::below_mid`].
fn below_mid<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    frozen: &impl ReadableTable<&'static [u8], Option<V>>,
    key: &[u8],
) -> Result<Option<V>, StoreError> {
    if let Some(f) = frozen.get(key)? {
        return Ok(f.value());
    }
    Ok(base.get(key)?.map(|v| v.value()))
}

/// One entry of a redb range over a tiered table's part.
pub type Entry<'a, V> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, V>,
    ),
    redb::StorageError,
>;

/// The logical entries of sorted iterators over the base and the levels above it
/// (`upper`: frozen, mid, delta, lowest first), in key order (tombstones hide what
/// they shadow and are not returned).
pub fn merged<'a, V, B, U, const N: usize>(
    base: B,
    upper: [U; N],
) -> impl Iterator<Item = Result<(Vec<u8>, V), StoreError>>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    U: Iterator<Item = Entry<'a, Option<V>>>,
{
    layered(base, upper).filter_map(|e| match e {
        Ok((k, Some(v))) => Some(Ok((k, v))),
        Ok((_, None)) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Every key of the base and the levels above it (`upper`, lowest first) once, in
/// key order, with the entry of the highest level that has it: `Some(v)`, or
/// `None` for a tombstone (kept, so that merging levels can carry it down).
pub fn layered<'a, V, B, U, const N: usize>(base: B, upper: [U; N]) -> Layered<B, U, N>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    U: Iterator<Item = Entry<'a, Option<V>>>,
{
    Layered {
        base: base.peekable(),
        upper: upper.map(Iterator::peekable),
    }
}

/// See [`layered`].
pub struct Layered<B: Iterator, U: Iterator, const N: usize> {
    base: Peekable<B>,
    upper: [Peekable<U>; N],
}

/// The key of a peeked entry: `Err(())` for a storage error, `Ok(None)` at the end.
fn peeked_key<'x, T: Value>(e: Option<&'x Entry<'_, T>>) -> Result<Option<&'x [u8]>, ()> {
    match e {
        None => Ok(None),
        Some(Err(_)) => Err(()),
        Some(Ok((k, _))) => Ok(Some(k.value())),
    }
}

impl<'a, V, B, U, const N: usize> Iterator for Layered<B, U, N>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    U: Iterator<Item = Entry<'a, Option<V>>>,
{
    type Item = Result<(Vec<u8>, Option<V>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Which levels hold the smallest key next. A failing level is reported
        // first, the highest one first (a retry continues after it).
        let mut holds = [false; N];
        let base_holds = {
            let mut keys: [Option<&[u8]>; N] = [None; N];
            for (slot, level) in keys.iter_mut().zip(self.upper.iter_mut()).rev() {
                match peeked_key(level.peek()) {
                    Ok(k) => *slot = k,
                    Err(()) => return level.next().and_then(Result::err).map(|e| Err(e.into())),
                }
            }
            let base = match peeked_key(self.base.peek()) {
                Ok(k) => k,
                Err(()) => {
                    return self
                        .base
                        .next()
                        .and_then(Result::err)
                        .map(|e| Err(e.into()));
                }
            };
            let lo = keys.iter().chain([&base]).flatten().min()?;
            for (h, k) in holds.iter_mut().zip(keys) {
                *h = k == Some(*lo);
            }
            base == Some(*lo)
        };
        // Every level holding the key advances; the highest one decides.
        let mut entry: Option<(Vec<u8>, Option<V>)> = None;
        if base_holds {
            match self.base.next() {
                Some(Ok((k, v))) => entry = Some((k.value().to_vec(), Some(v.value()))),
                // Peeked as `Ok` just above, so not reached; reported rather than lost.
                Some(Err(e)) => return Some(Err(e.into())),
                None => {}
            }
        }
        for (level, h) in self.upper.iter_mut().zip(holds) {
            if h {
                match level.next() {
                    Some(Ok((k, v))) => entry = Some((k.value().to_vec(), v.value())),
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => {}
                }
            }
        }
        entry.map(Ok)
    }
}

/// Applies removals and insertions to the logical table, in one pass in key order
/// (so each delta page is dirtied once per batch, not once per list). Both lists
/// must be sorted by key, and every removed key must be present in the logical
/// table (the store removes only entries derived from committed contacts). A key
/// both removed and put ends up put: removals come first.
///
/// A removal writes a tombstone and looks at what it replaced: a key the delta did
/// not mention is present, so the levels below hold it, and the tombstone stays.
/// Only a key the delta set needs a probe of the levels below (to choose between
/// the tombstone and no entry). At 1M+ entries the base probe is a cache miss; the
/// delta is small and cached.
///
/// Every put key is added to `filter` (the filter of this table, if any: see
/// [`crate::filter`]) before it is written; a removed key is present, so a valid
/// filter holds it already.
pub fn write<V: Plain>(
    t: &mut WriteOpened<'_, V>,
    removes: &[Vec<u8>],
    puts: &[(Vec<u8>, V)],
    filter: Option<&TableFilter>,
) -> Result<(), StoreError> {
    let mut removes = removes.iter().peekable();
    let mut puts = puts.iter().peekable();
    loop {
        let order = match (removes.peek(), puts.peek()) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(r), Some((p, _))) => r.as_slice().cmp(p.as_slice()),
        };
        match order {
            Ordering::Less => {
                if let Some(k) = removes.next() {
                    tombstone(&mut t.delta, k, || {
                        Ok(below_delta(&t.base, &t.frozen, &t.mid, k)?.is_some())
                    })?;
                }
            }
            // Removed and put: the put decides.
            Ordering::Equal => {
                removes.next();
            }
            Ordering::Greater => {
                if let Some((k, v)) = puts.next() {
                    if let Some(f) = filter {
                        f.add(k);
                    }
                    t.delta.insert(k.as_slice(), Some(*v))?;
                }
            }
        }
    }
}

/// Writes a tombstone for `k` into `level` (delta or mid), keeping the invariant
/// that a tombstone hides an entry below it. A tombstone that replaced nothing
/// hides a key the levels below hold (the caller only removes present keys), so
/// it stays; one that replaced a value set at this level stays only if
/// `below_holds` (the levels below hold `k` too), else the entry is removed.
fn tombstone<V: Plain>(
    level: &mut Table<&'static [u8], Option<V>>,
    k: &[u8],
    below_holds: impl FnOnce() -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let replaced_value = level
        .insert(k, None)?
        .is_some_and(|old| old.value().is_some());
    if replaced_value && !below_holds()? {
        level.remove(k)?;
    }
    Ok(())
}

/// What [`maybe_compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// What became of the delta.
    pub delta: Merge,
    /// Whether the mid table was full and became the frozen table.
    pub froze: bool,
    /// Entries moved from the frozen table into the base (not counted in a merge
    /// of every level into the base).
    pub drained: u64,
}

/// What [`maybe_compact`] did with the delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The delta is below its threshold.
    None,
    /// The delta was merged into the mid table.
    IntoMid,
    /// Every level was merged into the base (two levels, see [`thresholds`], or a
    /// full mid table that would have drained whole).
    IntoBase,
}

/// The default of [`Drain::per_write`].
pub const DRAIN_PER_WRITE: u64 = 4;

/// Bytes an entry of a tiered table's base takes in a leaf page, about (a 20-byte
/// index key or a short identifier, its value and redb's per-entry offsets): what
/// [`Drain::whole_below`] is estimated with from a cache size.
pub const BASE_ENTRY_BYTES: u64 = 32;

/// How much of the frozen table one [`maybe_compact`] call moves into the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// Frozen entries moved per entry the call wrote into the delta
    /// ([`DRAIN_PER_WRITE`] by default). 0 moves the whole frozen table at once:
    /// a full mid table then goes into the base in one request, as before the
    /// frozen table existed (benchmarks compare the two).
    pub per_write: u64,
    /// While the base holds fewer entries than this, the frozen table moves whole,
    /// in the request that froze it. The store passes the entries that fill its
    /// page cache (cache bytes / [`BASE_ENTRY_BYTES`]): a whole merge into a base
    /// that size fits redb's write buffer (half the cache) about once, while slices
    /// added to many requests push each of them over it (measured at 1M entries and
    /// a 64 MiB cache: +3–7% bytes written). Above, one merge overflows the buffer
    /// anyway and slices cost nothing extra. 0 always drains in slices (tests).
    pub whole_below: u64,
}

impl Drain {
    /// `per_write`, with `whole_below` the entries that fill a page cache of
    /// `cache_bytes` (cache bytes / [`BASE_ENTRY_BYTES`]).
    pub fn for_cache(per_write: u64, cache_bytes: usize) -> Drain {
        Drain {
            per_write,
            whole_below: u64::try_from(cache_bytes).unwrap_or(u64::MAX) / BASE_ENTRY_BYTES,
        }
    }

    /// The frozen entries a call that wrote `written` entries into the delta moves,
    /// for a base of `base` entries.
    fn slice(self, base: u64, written: u64) -> u64 {
        if self.per_write == 0 || base < self.whole_below {
            u64::MAX
        } else {
            self.per_write.saturating_mul(written)
        }
    }
}

/// Merges the delta once it holds more than its threshold ([`thresholds`]`(min_delta,
/// base entries)`), and moves the frozen table into the base.
///
/// With three levels, a full delta goes into the mid table. When mid and delta
/// hold more than the mid threshold, the mid table, the delta's entries included,
/// then becomes the frozen table (renamed, so no entry is copied; what is left of
/// the previous frozen table goes into the base before), and a new mid table starts
/// empty, as after a merge into the base. Then, at every call, the frozen table's
/// first `drain.per_write × written` entries (see [`Drain`]; `written` is what the
/// call wrote into the delta, puts and removals) move into the
/// base, in key order, until it is empty; while the base holds fewer than
/// `drain.whole_below` entries, the whole frozen table moves in the call that froze
/// it. With the default of 4 per entry written, a frozen table is empty after the
/// calls that refill a quarter of mid, so the rest of a previous frozen table only
/// meets a full mid table when one request writes far more than the ones before.
/// Each slice rewrites the base pages of its key range, so a frozen table rewrites
/// the base's pages about once, as one merge of mid into the base does, but spread
/// over the requests that fill a quarter of mid, each in proportion to its own
/// size, instead of landing on one (10M entries: seconds).
///
/// With two levels (delta and base; see [`thresholds`]), a full delta goes into the
/// base, with whatever the frozen and mid tables hold; so it does with three when
/// mid is full and its frozen form would move whole in this call anyway.
///
/// A merge walks the merged levels in key order, so each page of the table merged
/// into is rewritten once, then deletes the merged tables (freeing their pages at
/// once) and recreates them empty. (A filter of the table needs nothing: it holds
/// every key already.)
pub fn maybe_compact<V: Plain>(
    txn: &WriteTransaction,
    t: &Tiered<V>,
    min_delta: u64,
    drain: Drain,
    written: u64,
) -> Result<Compaction, StoreError> {
    let (merge, froze, forced, drained) = {
        let mut parts = t.open_write(txn)?;
        let delta_len = parts.delta.len()?;
        let base_len = parts.base.len()?;
        let (delta_max, mid_max) = thresholds(min_delta, base_len);
        let upper_len = parts.mid.len()?.saturating_add(delta_len);
        // A mid table full now whose frozen form would move whole in this call
        // anyway goes into the base with the delta at once (one pass, as before
        // frozen tables).
        let whole = upper_len > mid_max && drain.slice(base_len, written) >= upper_len;
        let (merge, froze, forced) = if delta_len <= delta_max {
            (Merge::None, false, 0)
        } else if delta_max == mid_max || whole {
            // Streamed: the levels above are read in key order while the base is
            // written.
            let upper = [parts.frozen.iter()?, parts.mid.iter()?, parts.delta.iter()?];
            for e in layered(std::iter::empty(), upper) {
                let (k, v) = e?;
                settle(&mut parts.base, &k, v)?;
            }
            (Merge::IntoBase, false, 0)
        } else {
            let froze = upper_len > mid_max;
            // The frozen table must be empty before mid takes its name: what is
            // left of it goes into the base first (after a request far larger than
            // the ones that filled mid). The base then holds what frozen over base
            // held, so the tombstone rule below reads the same.
            let forced = if froze { drain_all(&mut parts)? } else { 0 };
            delta_into_mid(&mut parts)?;
            (Merge::IntoMid, froze, forced)
        };
        // Unless mid is about to take the frozen table's name, the drain works on
        // the tables open here (the delta's merge into mid does not touch frozen).
        let drained = if froze || merge == Merge::IntoBase {
            None
        } else {
            Some(drain_frozen(&mut parts, drain, written)?)
        };
        (merge, froze, forced, drained)
    };
    if merge == Merge::IntoBase {
        recreate(txn, t.frozen)?;
        recreate(txn, t.mid)?;
    }
    if merge != Merge::None {
        recreate(txn, t.delta)?;
    }
    if froze {
        // Mid, with the delta in it, becomes the frozen table, and mid starts
        // empty, as after a merge into the base.
        txn.delete_table(t.frozen)?;
        txn.rename_table(t.mid, t.frozen)?;
        txn.open_table(t.mid)?;
    }
    let (drained, emptied) = match drained {
        Some(d) => d,
        None if froze => drain_frozen(&mut t.open_write(txn)?, drain, written)?,
        None => (0, false),
    };
    if emptied {
        recreate(txn, t.frozen)?;
    }
    Ok(Compaction {
        delta: merge,
        froze,
        drained: forced + drained,
    })
}

/// Moves the frozen table's share of this call into the base (see
/// [`maybe_compact`]): nothing, a slice, or the whole table. Returns the entries
/// moved and whether the table is now to be deleted (drained whole).
fn drain_frozen<V: Plain>(
    parts: &mut WriteOpened<'_, V>,
    drain: Drain,
    written: u64,
) -> Result<(u64, bool), StoreError> {
    let frozen_len = parts.frozen.len()?;
    if frozen_len == 0 {
        return Ok((0, false));
    }
    let slice = drain.slice(parts.base.len()?, written);
    Ok(if slice == 0 {
        (0, false)
    } else if slice >= frozen_len {
        (drain_all(parts)?, true)
    } else {
        (drain_slice(parts, slice)?, false)
    })
}

/// Writes the delta's entries into mid, in key order. A delta tombstone hid an entry
/// of a level below; in mid it may only hide one of frozen or base, so one that
/// replaced a mid `Some` is dropped when neither holds the key.
fn delta_into_mid<V: Plain>(parts: &mut WriteOpened<'_, V>) -> Result<(), StoreError> {
    for e in parts.delta.iter()? {
        let (k, v) = e?;
        let k = k.value();
        match v.value() {
            Some(v) => {
                parts.mid.insert(k, Some(v))?;
            }
            None => {
                tombstone(&mut parts.mid, k, || {
                    Ok(below_mid(&parts.base, &parts.frozen, k)?.is_some())
                })?;
            }
        }
    }
    Ok(())
}

/// Deletes a table (freeing its pages at once) and creates it again, empty.
fn recreate<V: Plain>(
    txn: &WriteTransaction,
    t: TableDefinition<'static, &'static [u8], Option<V>>,
) -> Result<(), StoreError> {
    txn.delete_table(t)?;
    txn.open_table(t)?;
    Ok(())
}

/// Writes an entry of a higher level into the base: `Some` sets the key, a
/// tombstone removes it.
fn settle<V: Plain>(
    base: &mut Table<&'static [u8], V>,
    k: &[u8],
    v: Option<V>,
) -> Result<(), StoreError> {
    match v {
        Some(v) => {
            base.insert(k, v)?;
        }
        None => {
            base.remove(k)?;
        }
    }
    Ok(())
}

/// Moves the whole frozen table into the base, streamed in key order; the caller
/// then deletes it. Returns the entries moved.
fn drain_all<V: Plain>(parts: &mut WriteOpened<'_, V>) -> Result<u64, StoreError> {
    let mut moved = 0u64;
    for e in parts.frozen.iter()? {
        let (k, v) = e?;
        settle(&mut parts.base, k.value(), v.value())?;
        moved += 1;
    }
    Ok(moved)
}

/// Moves the frozen table's first `slice` entries into the base (see
/// [`maybe_compact`]). A frozen tombstone hides a base entry (the invariant),
/// which it now removes; a tombstone of mid or delta over a moved `Some` hides the
/// base entry instead. Returns the entries moved.
fn drain_slice<V: Plain>(parts: &mut WriteOpened<'_, V>, slice: u64) -> Result<u64, StoreError> {
    let mut moved: Vec<(Vec<u8>, Option<V>)> = Vec::new();
    for e in parts.frozen.iter()? {
        if moved.len() as u64 == slice {
            break;
        }
        let (k, v) = e?;
        moved.push((k.value().to_vec(), v.value()));
    }
    // Key order, so each base page is rewritten once.
    for (k, v) in &moved {
        settle(&mut parts.base, k, *v)?;
    }
    if let (Some((first, _)), Some((last, _))) = (moved.first(), moved.last()) {
        parts
            .frozen
            .retain_in::<&[u8], _>(first.as_slice()..=last.as_slice(), |_, _| false)?;
    }
    Ok(moved.len() as u64)
}

#[cfg(test)]
mod tests;
