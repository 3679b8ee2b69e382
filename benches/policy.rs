//! Policy: normalize + validate records (R7), without merge or storage.
//!
//! `cargo bench --bench policy`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use contactdb_policy::record::normalize_record;
use contactdb_policy::request::prepare;
use contactdb_policy::{Catalog, Limits};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn policy(c: &mut Criterion) {
    let catalog = Catalog::new(&[]);
    let limits = Limits {
        records_max: 10_000,
    };
    let req = common::upsert_request(common::records(0..10_000));
    let prepared = prepare(&req, &catalog, &limits).unwrap();
    // Sanity: the generated records are valid.
    for (i, r) in req.records.iter().enumerate() {
        let n = normalize_record(i as u32, r, &catalog, &prepared);
        assert!(n.errors.is_empty(), "record {i}: {:?}", n.errors);
    }

    let mut g = c.benchmark_group("policy");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    g.throughput(Throughput::Elements(1));
    let one = &req.records[0];
    g.bench_function("normalize_record/1", |b| {
        b.iter(|| normalize_record(0, black_box(one), &catalog, &prepared));
    });

    g.throughput(Throughput::Elements(10_000));
    g.bench_function("prepare+normalize_record/10k", |b| {
        b.iter(|| {
            let prepared = prepare(black_box(&req), &catalog, &limits).unwrap();
            let out: Vec<_> = req
                .records
                .iter()
                .enumerate()
                .map(|(i, r)| normalize_record(i as u32, r, &catalog, &prepared))
                .collect();
            out
        });
    });
    g.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
