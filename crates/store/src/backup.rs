//! `Store::backup`: a consistent copy of the database from one read transaction.
//!
//! Every table is copied entry by entry, with its own key and value types, from one
//! snapshot into a new redb file beside the destination, which is renamed into place
//! only once complete. A writer (this process or another) may commit meanwhile: the
//! copy holds exactly the snapshot's state, never part of a later commit.

use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableTable, TableDefinition};

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

fn copy_tiered<V: Plain>(
    rtx: &ReadTransaction,
    dst: &redb::Database,
    t: &Tiered<V>,
) -> Result<u64, StoreError> {
    Ok(copy(rtx, dst, t.base)?
        + copy(rtx, dst, t.frozen)?
        + copy(rtx, dst, t.mid)?
        + copy(rtx, dst, t.delta)?)
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
        entries += copy(rtx, &dst, keys::META)?;
        entries += copy(rtx, &dst, keys::WORKSPACES)?;
        entries += copy(rtx, &dst, keys::WORKSPACE_SLUGS)?;
        entries += copy(rtx, &dst, keys::WORKSPACE_UUIDS)?;
        entries += copy(rtx, &dst, keys::COLUMNS)?;
        entries += copy(rtx, &dst, keys::CONTACTS)?;
        entries += copy_tiered(rtx, &dst, &keys::IDENTIFIERS)?;
        entries += copy_tiered(rtx, &dst, &keys::EMAIL_INDEX)?;
        entries += copy_tiered(rtx, &dst, &keys::PHONE_INDEX)?;
        entries += copy(rtx, &dst, keys::REQUESTS)?;
        entries += copy(rtx, &dst, keys::REQUEST_EXPIRY)?;
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
