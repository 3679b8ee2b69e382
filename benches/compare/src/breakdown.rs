//! Where a redb file's bytes go (`--breakdown`): per table its entries, the bytes
//! of its keys and values, its leaf and branch pages and the unused bytes in them;
//! the rest of the file is redb's own tables (allocator state, the table tree) and
//! free pages. Read through a read-only open, so the file is left as it is.

use std::path::Path;

use anyhow::Result;
use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

const MIB: f64 = 1024.0 * 1024.0;

/// The breakdown of the redb file at `path`, as `NOTE` lines for the parent to
/// print, headed by `label` (the phase).
pub fn notes(path: &Path, label: &str) -> Result<Vec<String>> {
    let file_bytes = std::fs::metadata(path)?.len();
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .open_read_only(path)?;
    let rtx = db.begin_read()?;
    let mut rows = Vec::new();
    for handle in rtx.list_tables()? {
        let t = rtx.open_untyped_table(handle.clone())?;
        let s = t.stats()?;
        rows.push(TableBytes {
            name: handle.name().to_owned(),
            entries: t.len()?,
            stored: s.stored_bytes(),
            metadata: s.metadata_bytes(),
            unused: s.fragmented_bytes(),
        });
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.allocated()));
    let mib = |b: u64| b as f64 / MIB;
    let mut out = vec![format!(
        "breakdown after {label}: file {:.1} MiB; table | entries | keys+values MiB | \
         page metadata MiB (offsets, headers, branch pages) | unused in its pages MiB | \
         its pages MiB | bytes per entry",
        mib(file_bytes)
    )];
    let mut all = TableBytes {
        name: "all tables".to_owned(),
        entries: 0,
        stored: 0,
        metadata: 0,
        unused: 0,
    };
    for r in &rows {
        all.entries += r.entries;
        all.stored += r.stored;
        all.metadata += r.metadata;
        all.unused += r.unused;
    }
    for r in rows.iter().chain([&all]) {
        if r.allocated() < 64 * 1024 {
            continue;
        }
        out.push(format!(
            "  {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}",
            r.name,
            r.entries,
            mib(r.stored),
            mib(r.metadata),
            mib(r.unused),
            mib(r.allocated()),
            r.allocated() as f64 / r.entries.max(1) as f64
        ));
    }
    out.push(format!(
        "  the rest of the file (free pages, redb's system tables, header): {:.1} MiB",
        mib(file_bytes.saturating_sub(all.allocated()))
    ));
    Ok(out)
}

/// One table's bytes, as redb's statistics count them.
struct TableBytes {
    name: String,
    entries: u64,
    /// Keys and values.
    stored: u64,
    /// Page headers, per-entry offsets, branch pages.
    metadata: u64,
    /// Allocated but unused bytes in its pages.
    unused: u64,
}

impl TableBytes {
    /// Every byte of its pages.
    fn allocated(&self) -> u64 {
        self.stored + self.metadata + self.unused
    }
}
