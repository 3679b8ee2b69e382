//! End to end: `Workspace::bulk` of 10k upserts (half updates with a changed email,
//! name and phone, half new contacts; match_on key+email+phone; full validation)
//! against a file of 100k contacts. Each iteration runs on a fresh copy of the file.
//!
//! `cargo bench --bench bulk`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Duration;

use contactdb::{Database, Status};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const BASE: u64 = 100_000;
const BATCH: u64 = 10_000;
const CACHE: usize = 64 << 20;

fn bulk(c: &mut Criterion) {
    let keep = tempfile::tempdir().unwrap();
    let base = common::base_file(keep.path(), BASE, BATCH, CACHE);
    let req = common::upsert_request(common::upsert_batch(BASE, BATCH, 1));

    let mut g = c.benchmark_group("bulk");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BATCH));
    g.bench_function("upsert_10k_vs_100k", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("c.redb");
                std::fs::copy(&base, &path).unwrap();
                let db = Database::builder()
                    .cache_size_bytes(CACHE)
                    .open(&path)
                    .unwrap();
                let ws = db.workspace("default").unwrap();
                (dir, db, ws)
            },
            |(dir, db, ws)| {
                let report = ws.bulk(&req).unwrap();
                assert_eq!(report.status, Status::Applied);
                assert_eq!(report.summary.updated, BATCH / 2);
                assert_eq!(report.summary.inserted, BATCH - BATCH / 2);
                (dir, db, report)
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
