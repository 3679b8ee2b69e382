//! Tiered tables: a large sorted `base` table, a `mid` table and a small `delta`
//! table of recent changes. Writes go to the delta; a full delta is merged into the
//! mid table, and a full mid table into the base, each in one sorted pass.
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
//! The logical content of a tiered table is `base` overlaid by `mid`, overlaid by
//! `delta`: a `Some(v)` entry sets the key to `v`, `None` is a tombstone that hides
//! the entry of the levels below. Invariants kept by [`write`] and
//! [`maybe_compact`] (and verified by `check`): a delta tombstone is only stored for
//! a key the levels below hold (a `Some` in mid, or a base entry the mid does not
//! mention), and a mid tombstone only for a key the base has.
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

/// The three tables of one tiered table.
#[derive(Clone, Copy)]
pub struct Tiered<V: Plain> {
    /// Name of the logical table (for problem reports).
    pub name: &'static str,
    /// The large, sorted part.
    pub base: TableDefinition<'static, &'static [u8], V>,
    /// Older changes: `Some` sets, `None` hides the base entry.
    pub mid: TableDefinition<'static, &'static [u8], Option<V>>,
    /// Recent changes: `Some` sets, `None` hides the entry of mid or base.
    pub delta: TableDefinition<'static, &'static [u8], Option<V>>,
}

/// The tables of a tiered table, opened in one transaction: read-only tables of a
/// read transaction ([`Tiered::open_read`]) or tables of the write transaction
/// ([`Tiered::open_write`]).
pub struct Opened<B, D> {
    /// The base table.
    pub base: B,
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
    /// Opens the three tables in a read transaction.
    pub fn open_read(&self, txn: &ReadTransaction) -> Result<ReadOpened<V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            mid: txn.open_table(self.mid)?,
            delta: txn.open_table(self.delta)?,
        })
    }

    /// Opens the three tables in the write transaction.
    pub fn open_write<'t>(
        &self,
        txn: &'t WriteTransaction,
    ) -> Result<WriteOpened<'t, V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            mid: txn.open_table(self.mid)?,
            delta: txn.open_table(self.delta)?,
        })
    }
}

impl<B, D> Opened<B, D> {
    /// The logical value of `key`, reading no table when `filter` (a filter of
    /// this table, valid for this snapshot: see [`crate::filter`]) says it lacks
    /// `key` (see [`get`]).
    pub fn get<V: Plain>(
        &self,
        key: &[u8],
        filter: Option<&TableFilter>,
    ) -> Result<Option<V>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        get(&self.base, &self.mid, &self.delta, key, filter)
    }

    /// Every logical entry whose key starts with `prefix`, reading no table when
    /// `filter` says it lacks `prefix` (see [`prefixed`]).
    pub fn prefixed<V: Plain>(
        &self,
        prefix: &[u8],
        filter: Option<&TableFilter>,
    ) -> Result<Vec<(Vec<u8>, V)>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        prefixed(&self.base, &self.mid, &self.delta, prefix, filter)
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
            self.mid.iter()?,
            self.delta.iter()?,
        ))
    }
}

/// The logical value of `key`: the delta's entry, else the mid table's, else the
/// base's. With a `filter` of the table (one that holds every key of this
/// snapshot's tables, see [`crate::filter`]), a key it lacks is looked for in none.
pub fn get<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    mid: &impl ReadableTable<&'static [u8], Option<V>>,
    delta: &impl ReadableTable<&'static [u8], Option<V>>,
    key: &[u8],
    filter: Option<&TableFilter>,
) -> Result<Option<V>, StoreError> {
    if filter.is_some_and(|f| !f.may_contain_key(key)) {
        return Ok(None);
    }
    if let Some(d) = delta.get(key)? {
        return Ok(d.value());
    }
    below_delta(base, mid, key)
}

/// The value of `key` in mid overlaid on base (what a delta entry would hide).
pub(crate) fn below_delta<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    mid: &impl ReadableTable<&'static [u8], Option<V>>,
    key: &[u8],
) -> Result<Option<V>, StoreError> {
    if let Some(m) = mid.get(key)? {
        return Ok(m.value());
    }
    Ok(base.get(key)?.map(|v| v.value()))
}

/// Every logical entry whose key starts with `prefix`, in key order. With a
/// `filter` that lacks `prefix`, nothing is read (see [`get`]).
pub fn prefixed<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    mid: &impl ReadableTable<&'static [u8], Option<V>>,
    delta: &impl ReadableTable<&'static [u8], Option<V>>,
    prefix: &[u8],
    filter: Option<&TableFilter>,
) -> Result<Vec<(Vec<u8>, V)>, StoreError> {
    if filter.is_some_and(|f| !f.may_contain_prefix(prefix)) {
        return Ok(Vec::new());
    }
    let range = crate::keys::prefix_range(prefix);
    let bounds = crate::keys::as_slices(&range);
    merged(
        base.range::<&[u8]>(bounds)?,
        mid.range::<&[u8]>(bounds)?,
        delta.range::<&[u8]>(bounds)?,
    )
    .collect()
}

/// One entry of a redb range over a tiered table's part.
pub type Entry<'a, V> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, V>,
    ),
    redb::StorageError,
>;

/// The logical entries of sorted iterators over base, mid and delta, in key order
/// (tombstones hide what they shadow and are not returned).
pub fn merged<'a, V, B, M, D>(
    base: B,
    mid: M,
    delta: D,
) -> impl Iterator<Item = Result<(Vec<u8>, V), StoreError>>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    M: Iterator<Item = Entry<'a, Option<V>>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    layered(base, mid, delta).filter_map(|e| match e {
        Ok((k, Some(v))) => Some(Ok((k, v))),
        Ok((_, None)) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Every key of base, mid and delta once, in key order, with the entry of the
/// highest level that has it: `Some(v)`, or `None` for a tombstone (kept, so that
/// merging levels can carry it down).
pub fn layered<'a, V, B, M, D>(base: B, mid: M, delta: D) -> Layered<'a, V, B, M, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    M: Iterator<Item = Entry<'a, Option<V>>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    Layered {
        base: base.peekable(),
        mid: mid.peekable(),
        delta: delta.peekable(),
    }
}

/// See [`layered`].
pub struct Layered<'a, V, B, M, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    M: Iterator<Item = Entry<'a, Option<V>>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    base: Peekable<B>,
    mid: Peekable<M>,
    delta: Peekable<D>,
}

/// The key of a peeked entry: `Err(())` for a storage error, `Ok(None)` at the end.
fn peeked_key<'x, T: Value>(e: Option<&'x Entry<'_, T>>) -> Result<Option<&'x [u8]>, ()> {
    match e {
        None => Ok(None),
        Some(Err(_)) => Err(()),
        Some(Ok((k, _))) => Ok(Some(k.value())),
    }
}

/// Which levels hold the smallest key next (or which one failed).
enum Step {
    Done,
    Failed(Level),
    Take { base: bool, mid: bool, delta: bool },
}

#[derive(Clone, Copy)]
enum Level {
    Base,
    Mid,
    Delta,
}

impl<'a, V, B, M, D> Layered<'a, V, B, M, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    M: Iterator<Item = Entry<'a, Option<V>>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    fn step(&mut self) -> Step {
        let (b, m, d) = match (
            peeked_key(self.base.peek()),
            peeked_key(self.mid.peek()),
            peeked_key(self.delta.peek()),
        ) {
            (Ok(b), Ok(m), Ok(d)) => (b, m, d),
            // Report one failing level, the highest first (a retry continues after it).
            (_, _, Err(())) => return Step::Failed(Level::Delta),
            (_, Err(()), _) => return Step::Failed(Level::Mid),
            (Err(()), _, _) => return Step::Failed(Level::Base),
        };
        match [b, m, d].into_iter().flatten().min() {
            None => Step::Done,
            Some(lo) => Step::Take {
                base: b == Some(lo),
                mid: m == Some(lo),
                delta: d == Some(lo),
            },
        }
    }
}

impl<'a, V, B, M, D> Iterator for Layered<'a, V, B, M, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    M: Iterator<Item = Entry<'a, Option<V>>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    type Item = Result<(Vec<u8>, Option<V>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (base, mid, delta) = match self.step() {
            Step::Done => return None,
            Step::Failed(level) => {
                let e = match level {
                    Level::Base => self.base.next().and_then(Result::err),
                    Level::Mid => self.mid.next().and_then(Result::err),
                    Level::Delta => self.delta.next().and_then(Result::err),
                };
                return e.map(|e| Err(e.into()));
            }
            Step::Take { base, mid, delta } => (base, mid, delta),
        };
        // Every level holding the key advances; the highest one decides.
        let b = if base { self.base.next() } else { None };
        let m = if mid { self.mid.next() } else { None };
        let d = if delta { self.delta.next() } else { None };
        let entry = match (d, m, b) {
            (Some(Ok((k, v))), _, _) | (None, Some(Ok((k, v))), _) => {
                (k.value().to_vec(), v.value())
            }
            (None, None, Some(Ok((k, v)))) => (k.value().to_vec(), Some(v.value())),
            // Peeked as `Ok` just above, so not reached; reported rather than lost.
            (Some(Err(e)), _, _) | (_, Some(Err(e)), _) | (_, _, Some(Err(e))) => {
                return Some(Err(e.into()));
            }
            (None, None, None) => return None,
        };
        Some(Ok(entry))
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
/// Only a key the delta set needs a probe of mid and base (to choose between the
/// tombstone and no entry). At 1M+ entries the base probe is a cache miss; the
/// delta is small and cached.
///
/// Every put key is added to `filter` (the filter of this table, if any: see
/// [`crate::filter`]) before it is written; a removed key is present, so a valid
/// filter holds it already.
pub fn write<V: Plain>(
    base: &Table<&'static [u8], V>,
    mid: &Table<&'static [u8], Option<V>>,
    delta: &mut Table<&'static [u8], Option<V>>,
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
                    remove(base, mid, delta, k)?;
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
                    delta.insert(k.as_slice(), Some(*v))?;
                }
            }
        }
    }
}

/// Removes a present key from the logical table (see [`write`]).
fn remove<V: Plain>(
    base: &Table<&'static [u8], V>,
    mid: &Table<&'static [u8], Option<V>>,
    delta: &mut Table<&'static [u8], Option<V>>,
    k: &[u8],
) -> Result<(), StoreError> {
    tombstone(delta, k, || Ok(below_delta(base, mid, k)?.is_some()))
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
    /// Entries a sweep moved from the mid table into the base.
    pub swept: u64,
}

/// What [`maybe_compact`] did with the delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The delta is below its threshold.
    None,
    /// The delta was merged into the mid table.
    IntoMid,
    /// Mid and delta were merged into the base.
    IntoBase,
}

/// A sweep's slice: this many mid entries per entry the call wrote into the delta
/// (see [`maybe_compact`]).
pub const SWEEP_PER_WRITE: u64 = 8;

/// The default of [`SweepCall::min_cycle`].
pub const SWEEP_MIN_CYCLE: u64 = 32;

/// What [`maybe_compact`] needs to sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepCall<'a> {
    /// The table's sweep position.
    pub sweep: &'a Sweep,
    /// The call sweeps only while the mid threshold is at least `min_cycle` times
    /// `written`, i.e. while mid takes at least that many such calls to fill
    /// ([`SWEEP_MIN_CYCLE`] by default; 0 always sweeps, as tests do).
    pub min_cycle: u64,
    /// The entries this call wrote into the delta (puts and removals).
    pub written: u64,
}

/// Where the sweep of one tiered table's mid table into its base stands: the key
/// the next slice starts at, or nothing between sweeps. Kept in memory by the
/// store (one per tiered table; an opened store starts between sweeps): the file
/// is valid wherever a sweep stopped, so it is only a position, never state that
/// must survive.
#[derive(Debug, Default)]
pub struct Sweep(std::sync::Mutex<Option<Vec<u8>>>);

impl Sweep {
    /// Whether a sweep is under way (for tests).
    pub fn under_way(&self) -> bool {
        self.position().is_some()
    }

    fn position(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        // Any position is valid (a panic elsewhere cannot leave a wrong one).
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sweep positions of the store's three tiered tables (`identifiers`,
/// `email_index`, `phone_index`) and the rule they sweep by: in memory, one set
/// per open store (see [`maybe_compact`]).
#[derive(Debug)]
pub struct Sweeps {
    /// `identifiers`.
    pub idents: Sweep,
    /// `email_index`.
    pub emails: Sweep,
    /// `phone_index`.
    pub phones: Sweep,
    /// [`SweepCall::min_cycle`] of every call.
    pub min_cycle: u64,
}

impl Sweeps {
    /// Three tables between sweeps, sweeping by `min_cycle`.
    pub fn new(min_cycle: u64) -> Sweeps {
        Sweeps {
            idents: Sweep::default(),
            emails: Sweep::default(),
            phones: Sweep::default(),
            min_cycle,
        }
    }
}

/// Merges the delta once it holds more than its threshold ([`thresholds`]`(min_delta,
/// base entries)`), and moves the mid table into the base.
///
/// Without a `sweep`: the delta goes into the base together with the mid table
/// when the two then hold more than the mid threshold, else into the mid table.
/// That merge into the base rewrites every base page the two levels touch in
/// one request: at 10M entries, seconds.
///
/// With a `sweep` (what the store passes), while there are three levels and the
/// mid threshold is at least `min_cycle` ([`SWEEP_MIN_CYCLE`]) × `written` (see
/// [`SweepCall`]), a full delta always goes into the mid table, and
/// once mid and delta hold more than the mid threshold, the mid table moves into
/// the base a key range per call: each call moves the next [`SWEEP_PER_WRITE`] ×
/// `written` mid entries after the last call's (plus however far mid is above its
/// threshold), until the sweep passes mid's last key; the next sweep starts when
/// mid is full again. A sweep rewrites each base page about once, as one merge
/// does, but spread over the requests that fill about an eighth of mid, each in
/// proportion to its own size, instead of landing on one. Entries that arrive in
/// mid behind the sweep wait for the next one, and mid stays fuller while a sweep
/// runs than between whole merges, so every merge of the delta into it costs more:
/// measured with slices of `mid threshold / 16`, at 10M entries with 10k-record
/// requests (mid takes ~79 of them to fill) sweeps wrote 0.7–1.4% more bytes than
/// whole merges, at 1M (~17) 19% more. Hence `min_cycle`: calls that fill mid
/// faster merge it whole (a sweep under way pauses). With two levels (the delta
/// merged straight into the base), the sweep is not used.
///
/// A merge walks the merged levels in key order, so each page of the table merged
/// into is rewritten once, then deletes the merged tables (freeing their pages at
/// once) and recreates them empty. (A filter of the table needs nothing: it holds
/// every key already.)
pub fn maybe_compact<V: Plain>(
    txn: &WriteTransaction,
    t: &Tiered<V>,
    min_delta: u64,
    sweep: Option<SweepCall<'_>>,
) -> Result<Compaction, StoreError> {
    let done = {
        let mut parts = t.open_write(txn)?;
        let delta_len = parts.delta.len()?;
        let (delta_max, mid_max) = thresholds(min_delta, parts.base.len()?);
        let sweeps = delta_max < mid_max
            && sweep.is_some_and(|s| s.written.saturating_mul(s.min_cycle) <= mid_max);
        let merge = if delta_len <= delta_max {
            Merge::None
        } else if !sweeps && parts.mid.len()? + delta_len > mid_max {
            // Streamed: mid and delta are read in key order while the base is written.
            for e in layered(std::iter::empty(), parts.mid.iter()?, parts.delta.iter()?) {
                let (k, v) = e?;
                settle(&mut parts.base, &k, v)?;
            }
            Merge::IntoBase
        } else {
            for e in parts.delta.iter()? {
                let (k, v) = e?;
                let k = k.value();
                match v.value() {
                    Some(v) => {
                        parts.mid.insert(k, Some(v))?;
                    }
                    None => {
                        // The delta's tombstone hid an entry of mid or base; in the
                        // mid table it may only hide a base entry.
                        let base = &parts.base;
                        tombstone(&mut parts.mid, k, || Ok(base.get(k)?.is_some()))?;
                    }
                }
            }
            Merge::IntoMid
        };
        // What stays in the delta counts towards mid's share, as in the merge
        // without a sweep.
        let pending = if merge == Merge::None { delta_len } else { 0 };
        let swept = match sweep {
            Some(s) if sweeps => sweep_step(
                &mut parts,
                s.sweep,
                mid_max,
                pending,
                SWEEP_PER_WRITE.saturating_mul(s.written),
            )?,
            // The whole mid table went into the base: a sweep starts afresh.
            Some(s) if merge == Merge::IntoBase => {
                *s.sweep.position() = None;
                0
            }
            _ => 0,
        };
        Compaction {
            delta: merge,
            swept,
        }
    };
    if done.delta == Merge::IntoBase {
        txn.delete_table(t.mid)?;
        txn.open_table(t.mid)?;
    }
    if done.delta != Merge::None {
        txn.delete_table(t.delta)?;
        txn.open_table(t.delta)?;
    }
    Ok(done)
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

/// One call's part of a sweep (see [`maybe_compact`]): starts one when mid and the
/// `pending` delta entries hold more than `mid_max`, and moves the next `slice`
/// mid entries (at least one, plus mid's excess over `mid_max`) into the base.
/// Returns the entries moved.
fn sweep_step<V: Plain>(
    parts: &mut WriteOpened<'_, V>,
    sweep: &Sweep,
    mid_max: u64,
    pending: u64,
    slice: u64,
) -> Result<u64, StoreError> {
    let mut position = sweep.position();
    let mid_len = parts.mid.len()?;
    if position.is_none() {
        if mid_len + pending <= mid_max {
            return Ok(0);
        }
        *position = Some(Vec::new());
    }
    let from = position.take().unwrap_or_default();
    let slice = slice
        .max(1)
        .saturating_add((mid_len + pending).saturating_sub(mid_max));
    let mut moved: Vec<(Vec<u8>, Option<V>)> = Vec::new();
    for e in parts.mid.range::<&[u8]>(from.as_slice()..)? {
        let (k, v) = e?;
        if moved.len() as u64 == slice {
            // The next call starts here; past mid's last key the sweep is over.
            *position = Some(k.value().to_vec());
            break;
        }
        moved.push((k.value().to_vec(), v.value()));
    }
    // Key order, so each base page is rewritten once. A mid tombstone hides a base
    // entry (the invariant), which it now removes; a delta tombstone over a moved
    // `Some` hides the base entry instead.
    for (k, v) in &moved {
        settle(&mut parts.base, k, *v)?;
    }
    if let (Some((first, _)), Some((last, _))) = (moved.first(), moved.last()) {
        parts
            .mid
            .retain_in::<&[u8], _>(first.as_slice()..=last.as_slice(), |_, _| false)?;
    }
    Ok(moved.len() as u64)
}

#[cfg(test)]
mod tests;
