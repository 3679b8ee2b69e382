//! The overlap of phase 1 and the resolution pass (R6): a request big enough for
//! many chunks plans the same on any number of threads and any chunk size, and a
//! lookup's failure or panic ends the plan, whichever thread meets it.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::panic::{AssertUnwindSafe, catch_unwind};

mod common;

use common::contact;
use contactdb_merge::{Lookup, MemLookup, Plan, Stored, plan_chunked};
use contactdb_policy::request::prepare;
use contactdb_policy::{BulkRequest, Catalog, Limits, MatchOn, Mode, OnDuplicate, OnInvalid};
use serde_json::{Value as Json, json};

const RECORDS: usize = 600;

/// A deterministic LCG, so every run draws the same request.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn snapshot() -> MemLookup {
    MemLookup::new((0..100).map(|i| {
        contact(
            &format!("k{i}"),
            Some(&format!("e{}@x.co", i % 40)),
            Some(&format!("+4411100{:03}", i % 50)),
        )
    }))
}

/// Records drawn from small pools of keys, emails and phones, so that records in
/// different chunks keep reaching the same contacts, by key and by value; some are
/// invalid, some rename their contact (update mode only).
fn records(seed: u64, renames: bool) -> Vec<Json> {
    let mut g = Lcg(seed);
    (0..RECORDS)
        .map(|_| {
            let mut r = json!({
                "contact_key": format!("k{}", g.below(160)),
                "name": format!("n{}", g.below(5)),
            });
            if g.below(2) == 0 {
                r["email"] = json!(format!("E{}@X.co", g.below(60)));
            }
            if g.below(3) == 0 {
                r["gsm"] = json!(format!("+44 111 00{:03}", g.below(70)));
            }
            if g.below(25) == 0 {
                r["email"] = json!("not an email");
            }
            if renames && g.below(10) == 0 {
                r["new_contact_key"] = json!(format!("k{}", g.below(160)));
            }
            r
        })
        .collect()
}

fn request(mode: Mode, on_duplicate: OnDuplicate, records: Vec<Json>) -> BulkRequest {
    let mut req = BulkRequest::new(mode, records);
    req.match_on = MatchOn::ALL;
    req.on_invalid = OnInvalid::Skip;
    req.on_duplicate = on_duplicate;
    req
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
}

fn plan_on<L: Lookup>(
    lookup: &L,
    req: &BulkRequest,
    threads: usize,
    chunk: usize,
) -> Result<Plan, L::Error> {
    let cat = Catalog::new(&[]);
    let p = prepare(req, &cat, &Limits::default()).expect("valid request");
    plan_chunked(Some(&pool(threads)), chunk, req, &p, &cat, lookup, 7)
}

// R6, R6a: one chunk on one thread is phase 1 then the pass, strictly in turn; every
// other split of the work must give exactly that plan.
#[test]
fn any_threads_and_chunk_size_plan_the_same() {
    let db = snapshot();
    let mut cases = Vec::new();
    for policy in [
        OnDuplicate::Merge,
        OnDuplicate::First,
        OnDuplicate::Last,
        OnDuplicate::Reject,
    ] {
        cases.push(request(Mode::Upsert, policy, records(1, false)));
    }
    cases.push(request(Mode::Update, OnDuplicate::Merge, records(2, true)));
    cases.push(request(Mode::Insert, OnDuplicate::Merge, records(3, false)));
    for req in &cases {
        let sequential = plan_on(&db, req, 1, usize::MAX).unwrap();
        // The workload must really interact across chunks.
        assert!(sequential.report.summary.updated > 0 || req.mode == Mode::Insert);
        assert!(
            sequential
                .report
                .results
                .iter()
                .any(|r| r.duplicate_of.is_some())
        );
        for threads in [1, 2, 4, 8] {
            for chunk in [1, 3, 64] {
                let plan = plan_on(&db, req, threads, chunk).unwrap();
                assert!(
                    plan == sequential,
                    "{:?} {:?}: {threads} threads, chunks of {chunk} differ",
                    req.mode,
                    req.on_duplicate
                );
            }
        }
    }
}

/// A lookup that fails, or panics, when asked for one key.
struct Faulty {
    inner: MemLookup,
    key: String,
    panics: bool,
}

impl Lookup for Faulty {
    type Error = String;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, String> {
        if id == self.key {
            assert!(!self.panics, "lookup of {id} panicked");
            return Err(format!("lookup of {id} failed"));
        }
        Ok(self.inner.by_identifier(id).unwrap())
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, String> {
        Ok(self.inner.keys_by_email(email).unwrap())
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, String> {
        Ok(self.inner.keys_by_phone(gsm).unwrap())
    }
}

/// Upserts of distinct keys, record `at` asking for the faulty one.
fn faulty_request(at: usize) -> BulkRequest {
    let recs = (0..RECORDS)
        .map(|i| {
            let key = if i == at {
                "bad".to_owned()
            } else {
                format!("k{i}")
            };
            json!({"contact_key": key, "name": "n"})
        })
        .collect();
    request(Mode::Upsert, OnDuplicate::Merge, recs)
}

// A lookup error ends the plan with that error, whether a helper or the calling
// thread meets it, early or late in the request; nothing waits forever.
#[test]
fn lookup_error_ends_the_plan() {
    for at in [0, 63, 64, 599] {
        let req = faulty_request(at);
        let db = Faulty {
            inner: snapshot(),
            key: "bad".to_owned(),
            panics: false,
        };
        for threads in [1, 2, 4] {
            for chunk in [1, 64] {
                let err = plan_on(&db, &req, threads, chunk).unwrap_err();
                assert_eq!(
                    err, "lookup of bad failed",
                    "{threads} threads, record {at}"
                );
            }
        }
    }
}

// A panicking lookup panics the plan (the caller turns that into an error) instead
// of leaving the calling thread waiting for a chunk that never comes.
#[test]
fn lookup_panic_reaches_the_caller() {
    for at in [0, 300, 599] {
        let req = faulty_request(at);
        let db = Faulty {
            inner: snapshot(),
            key: "bad".to_owned(),
            panics: true,
        };
        for threads in [1, 2, 4] {
            let r = catch_unwind(AssertUnwindSafe(|| plan_on(&db, &req, threads, 16)));
            assert!(r.is_err(), "{threads} threads, record {at}: no panic");
        }
    }
}
