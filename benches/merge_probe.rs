//! Merge only, as the shipped binary runs it (mimalloc), timed as best of N: the
//! same workload as `benches/merge.rs` (a 10k-record upsert planned against 100k
//! contacts in a `MemLookup`), without criterion's statistics, so two builds can be
//! alternated quickly and run under `valgrind --tool=callgrind` (toggle on
//! `*probe_once*`; with one thread the calling thread does all the work).
//!
//! `cargo bench --bench merge_probe -- [iterations=20] [threads=1,2] [chunk=64]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Instant;

use contactdb_merge::{CHUNK_RECORDS_DEFAULT, MemLookup, plan_chunked};
use contactdb_policy::{BulkRequest, Catalog, Prepared, Status};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXISTING: u64 = 100_000;
const BATCH: u64 = 10_000;

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let iterations: usize = args.first().map_or(20, |s| s.parse().expect("iterations"));
    let threads: Vec<usize> = args.get(1).map_or_else(
        || {
            vec![
                1,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ]
        },
        |s| s.split(',').map(|t| t.parse().expect("threads")).collect(),
    );
    let chunk: usize = args
        .get(2)
        .map_or(CHUNK_RECORDS_DEFAULT, |s| s.parse().expect("chunk"));

    let common::MergeWorkload {
        catalog,
        lookup,
        req,
        prepared,
    } = common::merge_workload(EXISTING, BATCH);

    for t in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        let mut best = f64::MAX;
        for _ in 0..iterations {
            let start = Instant::now();
            probe_once(&pool, chunk, &req, &prepared, &catalog, &lookup);
            best = best.min(start.elapsed().as_secs_f64());
        }
        println!(
            "merge_probe threads={t} best_of={iterations}: {:.2} ms per {BATCH}-record batch, {:.0} records/s",
            best * 1e3,
            BATCH as f64 / best
        );
    }
}

/// One planned batch, dropped inside the timing (as a caller's apply would).
#[inline(never)]
fn probe_once(
    pool: &rayon::ThreadPool,
    chunk: usize,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &MemLookup,
) {
    let plan = plan_chunked(
        Some(pool),
        chunk,
        req,
        prepared,
        catalog,
        lookup,
        common::NOW_US,
    )
    .unwrap();
    assert_eq!(plan.report.status, Status::Applied);
    drop(std::hint::black_box(plan));
}
