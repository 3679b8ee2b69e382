//! Tiered tables: a large sorted `base` table, a `mid` table and a small `delta`
//! table of recent changes, as ordinary redb tables. Writes go to the delta; once
//! it holds more than its threshold, the write transaction that filled it merges it
//! into mid, or every level into the base when mid would then be full (or while
//! the table is small enough for two levels). `decide` makes that choice from the
//! levels' sizes alone (no I/O); `compact` applies it.
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
//! `11.4·b` entries. `thresholds` takes `b` to be the configured minimum `m`
//! (16,384 by default, a typical batch) and picks whichever is cheaper: below the
//! crossover the mid table stays empty and the delta is merged straight into the
//! base. This is an LSM tree of two or three levels.
//!
//! The logical content of a tiered table is `base` overlaid by `mid`, then by
//! `delta`: a `Some(v)` entry sets the key to `v`, `None` is a tombstone that hides
//! the entry of the levels below. Invariant kept by [`write`] and `compact` (and
//! verified by `check`): a tombstone is only stored for a key the levels below it
//! hold (logically: the level right below sets it, or says nothing about it and the
//! next one down holds it).
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

/// The entries each level of a tiered table holds (tombstones included), after a
/// write: what `decide` decides from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The base.
    pub base: u64,
    /// The mid table.
    pub mid: u64,
    /// The delta, the write's entries included.
    pub delta: u64,
}

/// What a write transaction merges before it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Nothing: the delta is within its threshold.
    None,
    /// The delta into the mid table.
    IntoMid,
    /// Mid and delta into the base.
    IntoBase,
}

/// The level decision, without I/O: with `(d0, d1) = thresholds(min_delta,
/// base)`, nothing while the delta holds at most `d0` entries; else the delta into
/// mid, unless the table has two levels (`d0 == d1`) or mid and delta together hold
/// more than `d1`: then mid and delta into the base.
pub fn decide(min_delta: u64, s: Sizes) -> Merge {
    let (delta_max, mid_max) = thresholds(min_delta, s.base);
    if s.delta <= delta_max {
        Merge::None
    } else if delta_max == mid_max || s.mid.saturating_add(s.delta) > mid_max {
        Merge::IntoBase
    } else {
        Merge::IntoMid
    }
}

/// A value type whose decoded form is itself (`()`, `u64`): what tiered tables hold.
pub trait Plain: Value + Copy + 'static + for<'a> Value<SelfType<'a> = Self> {}
impl<T> Plain for T where T: Value + Copy + 'static + for<'a> Value<SelfType<'a> = T> {}

/// The tables of one tiered table.
#[derive(Clone, Copy)]
pub struct Tiered<V: Plain> {
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
    /// Opens the tables in a read transaction.
    pub fn open_read(&self, txn: &ReadTransaction) -> Result<ReadOpened<V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            mid: txn.open_table(self.mid)?,
            delta: txn.open_table(self.delta)?,
        })
    }

    /// Opens base, mid and delta in the write transaction (creating any that is
    /// missing).
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
    /// The logical value of `key`: the delta's entry, else mid's, else the base's. With a `filter` of the table (one that holds every key of
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
        below_delta(&self.base, &self.mid, key)
    }

    /// The value of `key` in the levels below mid (what a mid entry would hide).
    pub fn below_mid<V: Plain>(&self, key: &[u8]) -> Result<Option<V>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        Ok(self.base.get(key)?.map(|v| v.value()))
    }

    /// The levels above the base, lowest first.
    pub fn upper(&self) -> [&D; 2] {
        [&self.mid, &self.delta]
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
        let upper = self
            .upper()
            .into_iter()
            .map(|t| t.range::<&[u8]>(bounds))
            .collect::<Result<Vec<_>, _>>()?;
        merged(self.base.range::<&[u8]>(bounds)?, upper).collect()
    }

    /// Every logical entry, in key order, streamed (see [`merged`]).
    pub fn iter<V: Plain>(
        &self,
    ) -> Result<impl Iterator<Item = Result<(Vec<u8>, V), StoreError>>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        let upper = self
            .upper()
            .into_iter()
            .map(|t| t.iter())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(merged(self.base.iter()?, upper))
    }
}

/// See [`Opened::below_delta`].
fn below_delta<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    mid: &impl ReadableTable<&'static [u8], Option<V>>,
    key: &[u8],
) -> Result<Option<V>, StoreError> {
    if let Some(m) = mid.get(key)? {
        return Ok(m.value());
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
/// (`upper`, lowest first), in key order (tombstones hide what they shadow and are
/// not returned).
pub fn merged<'a, V, B, U>(
    base: B,
    upper: Vec<U>,
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
pub fn layered<'a, V, B, U>(base: B, upper: Vec<U>) -> Layered<B, U>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    U: Iterator<Item = Entry<'a, Option<V>>>,
{
    Layered {
        base: base.peekable(),
        upper: upper.into_iter().map(Iterator::peekable).collect(),
    }
}

/// See [`layered`].
pub struct Layered<B: Iterator, U: Iterator> {
    base: Peekable<B>,
    upper: Vec<Peekable<U>>,
}

/// The key of a peeked entry: `Err(())` for a storage error, `Ok(None)` at the end.
fn peeked_key<'x, T: Value>(e: Option<&'x Entry<'_, T>>) -> Result<Option<&'x [u8]>, ()> {
    match e {
        None => Ok(None),
        Some(Err(_)) => Err(()),
        Some(Ok((k, _))) => Ok(Some(k.value())),
    }
}

impl<'a, V, B, U> Iterator for Layered<B, U>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    U: Iterator<Item = Entry<'a, Option<V>>>,
{
    type Item = Result<(Vec<u8>, Option<V>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Which levels hold the smallest key next. A failing level is reported
        // first, the highest one first (a retry continues after it).
        let (holds, base_holds) = {
            let mut keys: Vec<Option<&[u8]>> = vec![None; self.upper.len()];
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
            let holds: Vec<bool> = keys.iter().map(|k| *k == Some(*lo)).collect();
            (holds, base == Some(*lo))
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
                        Ok(below_delta(&t.base, &t.mid, k)?.is_some())
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

/// Applies `decide`'s decision for `t` in the write transaction, after the
/// transaction's writes to it, and returns it.
///
/// A merge walks the merged levels in key order, so each page of the table merged
/// into is rewritten once, then deletes the merged tables (freeing their pages at
/// once) and recreates them empty. (A filter of the table needs nothing: it holds
/// every key already.)
pub fn compact<V: Plain>(
    txn: &WriteTransaction,
    t: &Tiered<V>,
    min_delta: u64,
) -> Result<Merge, StoreError> {
    let merge = {
        let mut parts = t.open_write(txn)?;
        let sizes = Sizes {
            base: parts.base.len()?,
            mid: parts.mid.len()?,
            delta: parts.delta.len()?,
        };
        let merge = decide(min_delta, sizes);
        if merge == Merge::IntoMid {
            delta_into_mid(&mut parts)?;
        }
        merge
    };
    if merge == Merge::IntoBase {
        rebuild_base(txn, t)?;
        recreate(txn, t.mid)?;
    }
    if merge != Merge::None {
        recreate(txn, t.delta)?;
    }
    Ok(merge)
}

/// Merges every level into a new base, which replaces the old one under its name:
/// the logical entries are streamed in key order (base, mid and delta read
/// together) into an empty table through a cursor at its end, which packs them
/// into full leaves. A merge into the base touches nearly every base leaf anyway
/// (the mid table holds a sizeable fraction of the base's entries), so writing the
/// base anew costs about the same pages and far less work per entry than
/// inserting each entry where it belongs, and leaves no half-full pages.
fn rebuild_base<V: Plain>(txn: &WriteTransaction, t: &Tiered<V>) -> Result<(), StoreError> {
    let name = format!("{}.merged", redb::TableHandle::name(&t.base));
    let new: TableDefinition<'_, &'static [u8], V> = TableDefinition::new(&name);
    {
        let base = txn.open_table(t.base)?;
        let mid = txn.open_table(t.mid)?;
        let delta = txn.open_table(t.delta)?;
        let mut out = txn.open_table(new)?;
        let mut cursor = out.upper_bound_mut(std::ops::Bound::<&[u8]>::Unbounded)?;
        for e in merged(base.iter()?, vec![mid.iter()?, delta.iter()?]) {
            let (k, v) = e?;
            cursor
                .insert_before(k.as_slice(), v)
                .map_err(crate::backup::cursor_error)?;
        }
        cursor.close()?;
    }
    txn.delete_table(t.base)?;
    txn.rename_table(new, t.base)?;
    Ok(())
}

/// Writes the delta's entries into mid, in key order. A delta tombstone hid an entry
/// of mid or base; in mid it may only hide one of the base, so one that replaced a
/// mid `Some` is dropped when the base lacks the key.
fn delta_into_mid<V: Plain>(parts: &mut WriteOpened<'_, V>) -> Result<(), StoreError> {
    for e in parts.delta.iter()? {
        let (k, v) = e?;
        let k = k.value();
        match v.value() {
            Some(v) => {
                parts.mid.insert(k, Some(v))?;
            }
            None => {
                tombstone(&mut parts.mid, k, || Ok(parts.base.get(k)?.is_some()))?;
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

#[cfg(test)]
mod tests;
