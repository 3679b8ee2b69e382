//! Store apply: the primary and index writes of 10k new contacts, and the same
//! through the facade (`bulk`, mode insert) for comparison.
//!
//! `cargo bench --bench store`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::path::Path;
use std::time::Duration;

use contactdb::{BulkRequest, Database, Mode};
use contactdb_backend::{Wait, WorkspaceId};
use contactdb_merge::{ContactWrite, MemLookup, plan_with_pool};
use contactdb_policy::request::prepare;
use contactdb_policy::{Catalog, Limits};
use contactdb_store::{Store, StoreOptions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tempfile::TempDir;

const BASE: u64 = 100_000;
const BATCH: u64 = 10_000;
const CACHE: usize = 64 << 20;

/// A fresh store: empty, or a copy of `from`.
fn fresh_store(from: Option<&Path>) -> (TempDir, Store, WorkspaceId) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    if let Some(from) = from {
        std::fs::copy(from, &path).unwrap();
    }
    let store = Store::open(
        &path,
        &StoreOptions {
            cache_size_bytes: CACHE,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let ws = store
        .read()
        .unwrap()
        .workspace("default")
        .unwrap()
        .unwrap()
        .id;
    (dir, store, ws)
}

fn store(c: &mut Criterion) {
    let keep = tempfile::tempdir().unwrap();
    let base = common::base_file(keep.path(), BASE, BATCH, CACHE);

    // The writes of 10k new contacts (contacts BASE.., absent from the base file).
    let catalog = Catalog::new(&[]);
    let insert = BulkRequest::new(Mode::Insert, common::records(BASE..BASE + BATCH));
    let prepared = prepare(&insert, &catalog, &Limits::default()).unwrap();
    let writes: Vec<ContactWrite> = plan_with_pool(
        None,
        &insert,
        &prepared,
        &catalog,
        &MemLookup::default(),
        1_767_225_600_000_000,
    )
    .unwrap()
    .writes;
    assert_eq!(writes.len() as u64, BATCH);

    let mut g = c.benchmark_group("store");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BATCH));
    for (name, from) in [("empty", None), ("100k", Some(base.as_path()))] {
        g.bench_function(format!("apply_10k_inserts/into_{name}"), |b| {
            b.iter_batched(
                || fresh_store(from),
                |(dir, store, ws)| {
                    let mut w = store.begin_write(Wait::Block).unwrap();
                    w.apply(ws, &writes).unwrap();
                    w.commit().unwrap();
                    (dir, store)
                },
                BatchSize::PerIteration,
            );
        });
    }
    for (name, from) in [("empty", None), ("100k", Some(base.as_path()))] {
        g.bench_function(format!("facade_bulk_insert_10k/into_{name}"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("c.redb");
                    if let Some(from) = from {
                        std::fs::copy(from, &path).unwrap();
                    }
                    let db = Database::builder()
                        .cache_size_bytes(CACHE)
                        .open(&path)
                        .unwrap();
                    let ws = db.workspace("default").unwrap();
                    (dir, db, ws)
                },
                |(dir, db, ws)| {
                    let report = ws.bulk(&insert).unwrap();
                    assert_eq!(report.summary.inserted, BATCH);
                    (dir, db, report)
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
