//! Copying every table in key order: `Store::backup` into a new file, and the dense
//! rebuild that `Store::compact` runs in place.
//!
//! A backup copies every table entry by entry, with its own key and value types,
//! from one snapshot into a new redb file beside the destination, which is renamed
//! into place only once complete. A writer (this process or another) may commit
//! meanwhile: the copy holds exactly the snapshot's state, never part of a later
//! commit.
//!
//! Both write through a redb cursor at the end of an empty table, which packs
//! entries arriving in key order into full leaves; tables that grew by inserts at
//! random places hold pages about two thirds full, so a copy is denser than the
//! table it was made from.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use crate::StoreError;
use crate::keys;
use crate::tiered::{Plain, Tiered};

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Table entries copied.
    pub entries: u64,
    /// Size of the copy in bytes.
    pub bytes: u64,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Storage(redb::StorageError::Io(e))
}

/// Where [`copy_named`] sends a table: the table's definition (its name and types)
/// decides what the sink copies.
trait Sink {
    /// Copies the table `def`; returns its entries.
    fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<u64, StoreError>;
}

/// The store's error for a failed insert through a redb cursor. Callers insert
/// keys in increasing order, so an unordered key means a table iterated out of
/// order.
pub(crate) fn cursor_error(e: redb::CursorError) -> StoreError {
    match e {
        redb::CursorError::Storage(s) => StoreError::Storage(s),
        redb::CursorError::UnorderedKey => {
            StoreError::corrupt("meta", "a table's entries are out of key order".to_owned())
        }
        other => StoreError::Storage(redb::StorageError::Io(std::io::Error::other(
            other.to_string(),
        ))),
    }
}

/// Writes `src`'s entries, in key order, into the empty table `dst` through a
/// cursor at its end. Returns how many.
fn fill<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &impl ReadableTable<K, V>,
    dst: &mut redb::Table<'_, K, V>,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    let mut cursor = dst.upper_bound_mut(Bound::<K::SelfType<'_>>::Unbounded)?;
    for entry in src.iter()? {
        let (k, v) = entry?;
        cursor
            .insert_before(k.value(), v.value())
            .map_err(cursor_error)?;
        n += 1;
    }
    cursor.close()?;
    Ok(n)
}

/// A snapshot copied into another database, one transaction per table (redb writes
/// the pages of a transaction larger than its write buffer to the file as it goes).
struct ToFile<'a> {
    rtx: &'a ReadTransaction,
    dst: &'a redb::Database,
}

impl Sink for ToFile<'_> {
    fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<u64, StoreError> {
        let src = self.rtx.open_table(def)?;
        let wtx = self.dst.begin_write()?;
        let n = fill(&src, &mut wtx.open_table(def)?)?;
        wtx.commit()?;
        Ok(n)
    }
}

/// Each table rewritten within its own file: copied into a new table, which then
/// replaces it under its name, in one write transaction per table.
struct InPlace<'a> {
    db: &'a redb::Database,
}

impl Sink for InPlace<'_> {
    fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<u64, StoreError> {
        let name = format!("{}.rebuilt", def.name());
        let new: TableDefinition<'_, K, V> = TableDefinition::new(&name);
        let wtx = self.db.begin_write()?;
        let n = fill(&wtx.open_table(def)?, &mut wtx.open_table(new)?)?;
        wtx.delete_table(def)?;
        wtx.rename_table(new, def)?;
        wtx.commit()?;
        Ok(n)
    }
}

/// Copies the level of tiered table `t` named `name`, if it is one of `t`'s.
fn copy_level<V: Plain>(
    sink: &impl Sink,
    t: &Tiered<V>,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(if name == t.base.name() {
        Some(sink.copy(t.base)?)
    } else if name == t.mid.name() {
        Some(sink.copy(t.mid)?)
    } else if name == t.delta.name() {
        Some(sink.copy(t.delta)?)
    } else {
        None
    })
}

/// The byte-keyed, byte-valued tables.
const BYTE_TABLES: [TableDefinition<'static, &'static [u8], &'static [u8]>; 17] = [
    keys::WORKSPACES,
    keys::WORKSPACE_SLUGS,
    keys::WORKSPACE_UUIDS,
    keys::COLUMNS,
    keys::CONTACTS,
    keys::REQUESTS,
    keys::COUNTERS,
    keys::CAMPAIGNS,
    keys::CAMPAIGN_NAMES,
    keys::MEMBERSHIPS,
    keys::CAMPAIGN_PICK,
    keys::FEED,
    keys::FEED_CONSUMERS,
    keys::JOBS,
    keys::JOB_DATA,
    keys::JOB_IDS,
    keys::API_KEYS,
];

/// Copies the table called `name` with its own key and value types.
fn copy_named(sink: &impl Sink, name: &str) -> Result<u64, StoreError> {
    if name == keys::META.name() {
        return sink.copy(keys::META);
    }
    if name == keys::REQUEST_EXPIRY.name() {
        return sink.copy(keys::REQUEST_EXPIRY);
    }
    if let Some(def) = BYTE_TABLES.iter().find(|d| d.name() == name) {
        return sink.copy(*def);
    }
    if let Some(n) = copy_level(sink, &keys::IDENTIFIERS, name)? {
        return Ok(n);
    }
    if let Some(n) = copy_level(sink, &keys::EMAIL_INDEX, name)? {
        return Ok(n);
    }
    if let Some(n) = copy_level(sink, &keys::PHONE_INDEX, name)? {
        return Ok(n);
    }
    Err(StoreError::corrupt(
        "meta",
        format!("unknown table {name:?}: not copied"),
    ))
}

/// Every table of the snapshot, each copied with its own types by
/// [`copy_named`]: a table this build does not know stops the copy rather than
/// be left out.
fn table_names(rtx: &ReadTransaction) -> Result<Vec<String>, StoreError> {
    if let Some(h) = rtx.list_multimap_tables()?.next() {
        return Err(StoreError::corrupt(
            "meta",
            format!(
                "unknown multimap table {:?}: not copied",
                redb::MultimapTableHandle::name(&h)
            ),
        ));
    }
    Ok(rtx
        .list_tables()?
        .map(|h| redb::TableHandle::name(&h).to_owned())
        .collect())
}

/// Rewrites every table of `db` densely, in place ([`InPlace`]); returns the
/// entries copied. Each table is one durable commit, so a crash leaves every table
/// either as it was or rebuilt, with the same content. The file needs room for the
/// largest table twice meanwhile; `Store::compact` gives the room back afterwards.
pub(crate) fn rebuild(db: &redb::Database) -> Result<u64, StoreError> {
    let names = table_names(&db.begin_read()?)?;
    let mut entries = 0;
    for name in &names {
        entries += copy_named(&InPlace { db }, name)?;
    }
    Ok(entries)
}

/// The temporary file a backup to `dest` writes first.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Copies the snapshot `rtx` into a new database file at `dest`.
pub(crate) fn backup(
    rtx: &ReadTransaction,
    dest: &Path,
    cache_size_bytes: usize,
) -> Result<BackupSummary, StoreError> {
    if dest.exists() {
        return Err(StoreError::BackupDestinationExists {
            path: dest.to_path_buf(),
        });
    }
    let tmp = partial_path(dest);
    let result = (|| {
        let dst = redb::Database::builder()
            .set_cache_size(cache_size_bytes)
            .create(&tmp)?;
        let mut entries = 0;
        for name in &table_names(rtx)? {
            entries += copy_named(&ToFile { rtx, dst: &dst }, name)?;
        }
        dst.close()?;
        if dest.exists() {
            return Err(StoreError::BackupDestinationExists {
                path: dest.to_path_buf(),
            });
        }
        std::fs::rename(&tmp, dest).map_err(io)?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself is durable once the directory is synced.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        let bytes = std::fs::metadata(dest).map_err(io)?.len();
        Ok(BackupSummary { entries, bytes })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

    use crate::{Store, StoreOptions, keys};

    /// Keys inserted at random places leave pages partly full; the rebuild packs
    /// them, keeps every entry and its value, and leaves the table under its name.
    #[test]
    fn rebuild_packs_a_table_filled_at_random_places() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db =
            redb::Database::create(dir.path().join("r.redb")).unwrap_or_else(|e| panic!("{e}"));
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut want = Vec::new();
        let w = db.begin_write().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut t = w
                .open_table(keys::CONTACTS)
                .unwrap_or_else(|e| panic!("{e}"));
            for i in 0u32..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = x.to_be_bytes();
                let v = i.to_be_bytes().repeat(20);
                t.insert(k.as_slice(), v.as_slice())
                    .unwrap_or_else(|e| panic!("{e}"));
                want.push((k.to_vec(), v));
            }
        }
        w.commit().unwrap_or_else(|e| panic!("{e}"));
        want.sort();
        let read = |db: &redb::Database| {
            let r = db.begin_read().unwrap_or_else(|e| panic!("{e}"));
            let t = r
                .open_table(keys::CONTACTS)
                .unwrap_or_else(|e| panic!("{e}"));
            let stats = t.stats().unwrap_or_else(|e| panic!("{e}"));
            let all: Vec<(Vec<u8>, Vec<u8>)> = t
                .iter()
                .unwrap_or_else(|e| panic!("{e}"))
                .map(|e| {
                    let (k, v) = e.unwrap_or_else(|e| panic!("{e}"));
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect();
            (stats.leaf_pages(), stats.fragmented_bytes(), all)
        };
        let (pages_before, unused_before, before) = read(&db);
        assert_eq!(before, want);
        assert_eq!(
            super::rebuild(&db).unwrap_or_else(|e| panic!("{e}")),
            20_000
        );
        let (pages_after, unused_after, after) = read(&db);
        assert_eq!(after, want);
        // Random inserts leave leaves about two thirds full; packed ones are full
        // but for the last entry that did not fit.
        assert!(
            pages_after * 10 <= pages_before * 8,
            "{pages_before} -> {pages_after} leaf pages"
        );
        assert!(
            unused_after * 4 <= unused_before,
            "{unused_before} -> {unused_after} unused bytes"
        );
        let r = db.begin_read().unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = r
            .list_tables()
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|h| redb::TableHandle::name(&h).to_owned())
            .collect();
        assert_eq!(names, ["contacts"]);
    }

    /// A new store has every table this build knows: a backup of it copies each
    /// (a table the backup does not know would fail it).
    #[test]
    fn every_table_is_backed_up() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("a.redb"), &StoreOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let dest = dir.path().join("b.redb");
        let summary = store.backup(&dest).unwrap_or_else(|e| panic!("{e}"));
        assert!(summary.entries > 0);
        let copy = Store::open_read_only(&dest, &StoreOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(copy.check().unwrap_or_else(|e| panic!("{e}")).is_empty());
        let tables = |s: &Store| -> Vec<String> {
            let r = s.db.begin_read().unwrap_or_else(|e| panic!("{e}"));
            let mut v: Vec<String> = redb::ReadTransaction::list_tables(&r)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(|h| redb::TableHandle::name(&h).to_owned())
                .collect();
            v.sort();
            v
        };
        let mut all: Vec<String> = crate::ALL_TABLES.iter().map(|t| (*t).to_owned()).collect();
        all.sort();
        assert_eq!(tables(&store), all);
        assert_eq!(tables(&copy), all);
    }
}
