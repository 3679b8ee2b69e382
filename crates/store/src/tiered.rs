//! Tiered tables: a large sorted `base` table plus a small `delta` table of recent
//! changes, merged into the base in one sorted pass when the delta grows past a
//! threshold that grows with the square root of the base.
//!
//! Why: a B-tree under random inserts dirties about one page per inserted entry once
//! the tree is larger than a batch, and copy-on-write rewrites every dirtied page at
//! commit. A batch written into a delta of `D` entries dirties at most the delta's
//! pages (about `D / entries per page`), and each merge rewrites the base's pages once
//! per `D` entries. With `B` base entries and batches of `b` entries the pages
//! written per batch are about `(D + b·B/D) / entries per page`, least at
//! `D = sqrt(b·B)`: so the delta is merged when it exceeds [`threshold`](crate::tiered::threshold)`(B)` =
//! `max(m, sqrt(m·B))`, with `m` the configured minimum (16,384 by default, a typical
//! batch). This is the write buffer of an LSM tree with two levels, expressed as two
//! ordinary redb tables.
//!
//! The logical content of a tiered table is `base` overlaid by `delta`: a delta entry
//! `Some(v)` sets the key to `v`, `None` is a tombstone that hides the base entry.
//! Invariant kept by [`write`] (and verified by `check`): a tombstone is only stored
//! for a key the base has.
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

/// The number of delta entries above which the delta of a table whose base has
/// `base` entries is merged: `max(min_delta, sqrt(min_delta · base))` (see the
/// module documentation for why).
pub fn threshold(min_delta: u64, base: u64) -> u64 {
    let product = u128::from(min_delta) * u128::from(base);
    // isqrt of a u128 that is at most (2^64-1)^2 fits in a u64.
    let root = u64::try_from(product.isqrt()).unwrap_or(u64::MAX);
    min_delta.max(root)
}

/// A value type whose decoded form is itself (`()`, `u64`): what tiered tables hold.
pub trait Plain: Value + Copy + 'static + for<'a> Value<SelfType<'a> = Self> {}
impl<T> Plain for T where T: Value + Copy + 'static + for<'a> Value<SelfType<'a> = T> {}

/// The two tables of one tiered table.
#[derive(Clone, Copy)]
pub struct Tiered<V: Plain> {
    /// Name of the logical table (for problem reports).
    pub name: &'static str,
    /// The large, sorted part.
    pub base: TableDefinition<'static, &'static [u8], V>,
    /// Recent changes: `Some` sets, `None` hides the base entry.
    pub delta: TableDefinition<'static, &'static [u8], Option<V>>,
}

/// Both tables of a tiered table, opened in one transaction: read-only tables of a
/// read transaction ([`Tiered::open_read`]) or tables of the write transaction
/// ([`Tiered::open_write`]).
pub struct Opened<B, D> {
    /// The base table.
    pub base: B,
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
    /// Opens both tables in a read transaction.
    pub fn open_read(&self, txn: &ReadTransaction) -> Result<ReadOpened<V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            delta: txn.open_table(self.delta)?,
        })
    }

    /// Opens both tables in the write transaction.
    pub fn open_write<'t>(
        &self,
        txn: &'t WriteTransaction,
    ) -> Result<WriteOpened<'t, V>, StoreError> {
        Ok(Opened {
            base: txn.open_table(self.base)?,
            delta: txn.open_table(self.delta)?,
        })
    }
}

impl<B, D> Opened<B, D> {
    /// The logical value of `key`, reading neither part when `filter` (a filter of
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
        get(&self.base, &self.delta, key, filter)
    }

    /// Every logical entry whose key starts with `prefix`, reading neither part
    /// when `filter` says it lacks `prefix` (see [`prefixed`]).
    pub fn prefixed<V: Plain>(
        &self,
        prefix: &[u8],
        filter: Option<&TableFilter>,
    ) -> Result<Vec<(Vec<u8>, V)>, StoreError>
    where
        B: ReadableTable<&'static [u8], V>,
        D: ReadableTable<&'static [u8], Option<V>>,
    {
        prefixed(&self.base, &self.delta, prefix, filter)
    }
}

/// The logical value of `key`. With a `filter` of the table (one that holds every
/// key of this snapshot's base and delta, see [`crate::filter`]), a key it lacks is
/// looked for in neither.
pub fn get<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
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
    Ok(base.get(key)?.map(|v| v.value()))
}

/// Every logical entry whose key starts with `prefix`, in key order. With a
/// `filter` that lacks `prefix`, nothing is read (see [`get`]).
pub fn prefixed<V: Plain>(
    base: &impl ReadableTable<&'static [u8], V>,
    delta: &impl ReadableTable<&'static [u8], Option<V>>,
    prefix: &[u8],
    filter: Option<&TableFilter>,
) -> Result<Vec<(Vec<u8>, V)>, StoreError> {
    if filter.is_some_and(|f| !f.may_contain_prefix(prefix)) {
        return Ok(Vec::new());
    }
    let range = crate::keys::prefix_range(prefix);
    let bounds = crate::keys::as_slices(&range);
    merged(base.range::<&[u8]>(bounds)?, delta.range::<&[u8]>(bounds)?).collect()
}

/// One entry of a redb range over a tiered table's part.
pub type Entry<'a, V> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, V>,
    ),
    redb::StorageError,
>;

/// The logical entries of two sorted iterators over base and delta, in key order.
pub fn merged<'a, V, B, D>(base: B, delta: D) -> Merged<'a, V, B, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    Merged {
        base: base.peekable(),
        delta: delta.peekable(),
    }
}

/// See [`merged`].
pub struct Merged<'a, V, B, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    base: Peekable<B>,
    delta: Peekable<D>,
}

impl<'a, V, B, D> Iterator for Merged<'a, V, B, D>
where
    V: Plain,
    B: Iterator<Item = Entry<'a, V>>,
    D: Iterator<Item = Entry<'a, Option<V>>>,
{
    type Item = Result<(Vec<u8>, V), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.delta.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(_), None) => Ordering::Less,
                (_, Some(Err(_))) | (None, Some(_)) => Ordering::Greater,
                (Some(Ok((b, _))), Some(Ok((d, _)))) => b.value().cmp(d.value()),
            };
            match order {
                Ordering::Less => {
                    return self.base.next().map(|e| {
                        let (k, v) = e?;
                        Ok((k.value().to_vec(), v.value()))
                    });
                }
                Ordering::Equal => {
                    // The delta entry decides; the base entry is shadowed.
                    self.base.next();
                }
                Ordering::Greater => {}
            }
            match self.delta.next() {
                None => return None,
                Some(Err(e)) => return Some(Err(e.into())),
                Some(Ok((k, v))) => {
                    if let Some(v) = v.value() {
                        return Some(Ok((k.value().to_vec(), v)));
                    }
                }
            }
        }
    }
}

/// Applies removals and insertions to the logical table, in one pass in key order
/// (so each delta page is dirtied once per batch, not once per list). Both lists
/// must be sorted by key, and every removed key must be present in the logical
/// table (the store removes only entries derived from committed contacts). A key
/// both removed and put ends up put: removals come first.
///
/// A removal writes a tombstone and looks at what it replaced: a key the delta did
/// not mention is present, so it is in the base, and the tombstone stays. Only a
/// key the delta set needs a base probe (to choose between the tombstone and no
/// entry). At 1M+ entries the base probe is a cache miss; the delta is small and
/// cached.
///
/// Every put key is added to `filter` (the filter of this table, if any: see
/// [`crate::filter`]) before it is written; a removed key is present, so a valid
/// filter holds it already.
pub fn write<V: Plain>(
    base: &Table<&'static [u8], V>,
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
                    remove(base, delta, k)?;
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
    delta: &mut Table<&'static [u8], Option<V>>,
    k: &[u8],
) -> Result<(), StoreError> {
    let replaced = delta.insert(k, None)?.map(|old| old.value().is_some());
    // Some(true): the delta had set the key; the tombstone is only needed if the
    // base has it too (the invariant: tombstones only hide base entries).
    if replaced == Some(true) && base.get(k)?.is_none() {
        delta.remove(k)?;
    }
    Ok(())
}

/// Merges the delta into the base when it holds more than
/// [`threshold`]`(min_delta, base entries)` entries. Returns whether it merged.
///
/// The merge walks the delta in key order, so each base page is rewritten once,
/// then deletes the delta table (freeing its pages at once) and recreates it empty.
/// (A filter of the table needs nothing: it holds the delta's keys already.)
pub fn maybe_compact<V: Plain>(
    txn: &WriteTransaction,
    t: &Tiered<V>,
    min_delta: u64,
) -> Result<bool, StoreError> {
    {
        let mut parts = t.open_write(txn)?;
        if parts.delta.len()? <= threshold(min_delta, parts.base.len()?) {
            return Ok(false);
        }
        // Streamed: the delta is read in key order while the base is written.
        for e in parts.delta.iter()? {
            let (k, v) = e?;
            match v.value() {
                Some(v) => {
                    parts.base.insert(k.value(), v)?;
                }
                None => {
                    parts.base.remove(k.value())?;
                }
            }
        }
    }
    txn.delete_table(t.delta)?;
    txn.open_table(t.delta)?;
    Ok(true)
}

#[cfg(test)]
mod tests;
