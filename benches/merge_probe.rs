//! Merge only, as the shipped binary runs it (mimalloc), timed as best of N: the
//! same workload as `benches/merge.rs` (a 10k-record upsert planned against 100k
//! contacts in a `MemLookup`), without criterion's statistics, so two builds can be
//! alternated quickly and run under `valgrind --tool=callgrind` (toggle on
//! `*probe_once*` and `*bridge_producer_consumer*helper*` to count both phases).
//!
//! `cargo bench --bench merge_probe -- [iterations=20] [threads=1,2]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Instant;

use contactdb_merge::{MemLookup, plan_with_pool};
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Limits, Mode, Prepared, Status};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXISTING: u64 = 100_000;
const BATCH: u64 = 10_000;
const NOW: i64 = 1_767_225_600_000_000;

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

    let catalog = Catalog::new(&[]);
    let limits = Limits {
        records_max: 1_000_000,
    };
    let load = BulkRequest::new(Mode::Insert, common::records(0..EXISTING));
    let prepared = prepare(&load, &catalog, &limits).unwrap();
    let plan =
        plan_with_pool(None, &load, &prepared, &catalog, &MemLookup::default(), NOW).unwrap();
    let lookup = MemLookup::new(plan.writes.into_iter().map(|w| w.after));
    let req = common::upsert_request(common::upsert_batch(EXISTING, BATCH, 1));
    let prepared = prepare(&req, &catalog, &limits).unwrap();

    for t in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        let mut best = f64::MAX;
        for _ in 0..iterations {
            let start = Instant::now();
            probe_once(&pool, &req, &prepared, &catalog, &lookup);
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
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &MemLookup,
) {
    let plan = plan_with_pool(Some(pool), req, prepared, catalog, lookup, NOW).unwrap();
    assert_eq!(plan.report.status, Status::Applied);
    drop(std::hint::black_box(plan));
}
