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

use contactdb_merge::{MemLookup, plan_with_pool};
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Limits, Mode, Status};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const EXISTING: u64 = 100_000;
const BATCH: u64 = 10_000;
const NOW: i64 = 1_767_225_600_000_000;

fn merge(c: &mut Criterion) {
    let catalog = Catalog::new(&[]);
    let limits = Limits {
        records_max: 1_000_000,
    };
    // The 100k committed contacts, built by the merge itself from insert records.
    let load = BulkRequest::new(Mode::Insert, common::records(0..EXISTING));
    let prepared = prepare(&load, &catalog, &limits).unwrap();
    let plan =
        plan_with_pool(None, &load, &prepared, &catalog, &MemLookup::default(), NOW).unwrap();
    assert_eq!(plan.report.summary.inserted, EXISTING);
    let lookup = MemLookup::new(plan.writes.into_iter().map(|w| w.after));

    let req = common::upsert_request(common::upsert_batch(EXISTING, BATCH, 1));
    let prepared = prepare(&req, &catalog, &limits).unwrap();

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
        let check = plan_with_pool(Some(&pool), &req, &prepared, &catalog, &lookup, NOW).unwrap();
        assert_eq!(check.report.status, Status::Applied);
        assert_eq!(check.report.summary.updated, BATCH / 2);
        assert_eq!(check.report.summary.inserted, BATCH - BATCH / 2);
        g.bench_function(format!("upsert_10k_vs_100k/threads={threads}"), |b| {
            b.iter(|| {
                plan_with_pool(Some(&pool), &req, &prepared, &catalog, &lookup, NOW).unwrap()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
