//! `Store::backup`: a consistent copy of the database from one read transaction.
//!
//! Every table is copied entry by entry, with its own key and value types, from one
//! snapshot into a new redb file beside the destination, which is renamed into place
//! only once complete. A writer (this process or another) may commit meanwhile: the
//! copy holds exactly the snapshot's state, never part of a later commit.

use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle};

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

/// Copies one table of the snapshot into `dst`, in one transaction (redb writes
/// the pages of a transaction larger than its write buffer to the file as it goes).
fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    rtx: &ReadTransaction,
    dst: &redb::Database,
    def: TableDefinition<'static, K, V>,
) -> Result<u64, StoreError> {
    let src = rtx.open_table(def)?;
    let mut n = 0u64;
    let wtx = dst.begin_write()?;
    {
        let mut table = wtx.open_table(def)?;
        for entry in src.iter()? {
            let (k, v) = entry?;
            table.insert(k.value(), v.value())?;
            n += 1;
        }
    }
    wtx.commit()?;
    Ok(n)
}

/// Copies the level of tiered table `t` named `name`, if it is one of `t`'s.
fn copy_level<V: Plain>(
    rtx: &ReadTransaction,
    dst: &redb::Database,
    t: &Tiered<V>,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    Ok(if name == t.base.name() {
        Some(copy(rtx, dst, t.base)?)
    } else if name == t.frozen.name() {
        Some(copy(rtx, dst, t.frozen)?)
    } else if name == t.mid.name() {
        Some(copy(rtx, dst, t.mid)?)
    } else if name == t.delta.name() {
        Some(copy(rtx, dst, t.delta)?)
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
fn copy_named(rtx: &ReadTransaction, dst: &redb::Database, name: &str) -> Result<u64, StoreError> {
    if name == keys::META.name() {
        return copy(rtx, dst, keys::META);
    }
    if name == keys::REQUEST_EXPIRY.name() {
        return copy(rtx, dst, keys::REQUEST_EXPIRY);
    }
    if let Some(def) = BYTE_TABLES.iter().find(|d| d.name() == name) {
        return copy(rtx, dst, *def);
    }
    if let Some(n) = copy_level(rtx, dst, &keys::IDENTIFIERS, name)? {
        return Ok(n);
    }
    if let Some(n) = copy_level(rtx, dst, &keys::EMAIL_INDEX, name)? {
        return Ok(n);
    }
    if let Some(n) = copy_level(rtx, dst, &keys::PHONE_INDEX, name)? {
        return Ok(n);
    }
    Err(StoreError::corrupt(
        "meta",
        format!("unknown table {name:?}: not backed up"),
    ))
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
        // Every table the snapshot has, each with its own types; a table this
        // build does not know stops the backup rather than leave it out.
        let names: Vec<String> = rtx
            .list_tables()?
            .map(|h| redb::TableHandle::name(&h).to_owned())
            .collect();
        if let Some(h) = rtx.list_multimap_tables()?.next() {
            return Err(StoreError::corrupt(
                "meta",
                format!(
                    "unknown multimap table {:?}: not backed up",
                    redb::MultimapTableHandle::name(&h)
                ),
            ));
        }
        for name in &names {
            entries += copy_named(rtx, &dst, name)?;
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
    use crate::{Store, StoreOptions};

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
