//! Merge only: a 10k-record upsert batch planned against an in-memory lookup of 100k
//! contacts (no storage), on a 1-thread and an all-thread rayon pool.
//!
//! `cargo bench --bench merge`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Duration;

use contactdb_merge::plan_with_pool;
use contactdb_policy::Status;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const EXISTING: u64 = 100_000;
const BATCH: u64 = 10_000;

fn merge(c: &mut Criterion) {
    let common::MergeWorkload {
        catalog,
        lookup,
        req,
        prepared,
    } = common::merge_workload(EXISTING, BATCH);
    let now = common::NOW_US;

    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("merge");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BATCH));
    for threads in [1, all] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let check = plan_with_pool(Some(&pool), &req, &prepared, &catalog, &lookup, now).unwrap();
        assert_eq!(check.report.status, Status::Applied);
        assert_eq!(check.report.summary.updated, BATCH / 2);
        assert_eq!(check.report.summary.inserted, BATCH - BATCH / 2);
        g.bench_function(format!("upsert_10k_vs_100k/threads={threads}"), |b| {
            b.iter(|| {
                plan_with_pool(Some(&pool), &req, &prepared, &catalog, &lookup, now).unwrap()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
