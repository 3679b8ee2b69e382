//! Deterministic records for the criterion benches (the comparison crate in
//! `benches/compare` has the full workload generator): contact `i` at generation `g`,
//! as a CRM export sends it — mixed-case email, formatted phone, lower-case status.
//! Keys, emails and phones are unique per contact and uncorrelated with `i`'s order.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use contactdb::{BulkRequest, Database, MatchOn, Mode, OnInvalid, Status};
use serde_json::{Value as Json, json};

/// splitmix64's finalizer: a bijection on u64.
pub fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A splitmix64 PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = ((u128::from(self.next_u64()) * (i as u128 + 1)) >> 64) as usize;
            v.swap(i, j);
        }
    }
}

const SEED: u64 = 0x00C0_47AC_7DB0_2026;
const FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "David", "Elif", "Frank", "Gizem", "Hakan",
];
const LAST: &[&str] = &[
    "Smith", "Yilmaz", "Garcia", "Kaya", "Muller", "Demir", "Rossi",
];
const DOMAINS: &[&str] = &[
    "Example.COM",
    "GMail.com",
    "Outlook.Com",
    "mail.Example.org",
];

/// The key of contact `i` (scattered over the key space, like CRM ids).
pub fn key(i: u64) -> String {
    format!("cust-{:020}", mix64(i ^ SEED))
}

/// Contact `i` at generation `g` (0 = first version; later generations change
/// email, name and phone).
pub fn record(i: u64, g: u64) -> Json {
    let h = mix64(i ^ SEED ^ 0x5EED);
    let first = FIRST[((h + g) % FIRST.len() as u64) as usize];
    let last = LAST[((h >> 8) % LAST.len() as u64) as usize];
    let token = mix64((g << 40) ^ i ^ SEED ^ 0x0045_4D41_494C);
    let domain = DOMAINS[((h >> 16) % DOMAINS.len() as u64) as usize];
    // 12 digits, unique per (i, g) for i < 2^32 and g < 16: x -> x * A mod 10^12 is
    // a bijection (A is coprime with 10), which scatters consecutive contacts.
    let x = u128::from((g << 32) | i);
    let digits = format!("{:012}", x * 2_654_435_761 % 1_000_000_000_000);
    let (a, b, c) = (&digits[0..4], &digits[4..8], &digits[8..12]);
    let gsm = if h.is_multiple_of(2) {
        format!("+44 {a} {b} {c}")
    } else {
        format!("0044 ({a}) {b}-{c}")
    };
    json!({
        "contact_key": key(i),
        "name": first,
        "surname": last,
        "email": format!("{first}.{last}.{token:016x}@{domain}"),
        "gsm": gsm,
        "status": if h.is_multiple_of(3) { "p" } else { "A" },
        "priority": (h >> 40) % 10,
        "birthday": format!("{:04}-{:02}-{:02}", 1950 + (h >> 24) % 56, 1 + (h >> 32) % 12, 1 + (h >> 44) % 28),
    })
}

/// Records of contacts `range` at generation 0.
pub fn records(range: std::ops::Range<u64>) -> Vec<Json> {
    range.map(|i| record(i, 0)).collect()
}

/// An upsert batch over a table of contacts `0..existing`: `count / 2` of them
/// (a deterministic random choice) at generation `g`, and `count - count / 2` new
/// contacts from `existing` on, in random order.
pub fn upsert_batch(existing: u64, count: u64, g: u64) -> Vec<Json> {
    let mut rng = Rng(SEED ^ g);
    let mut olds: Vec<u64> = (0..existing).collect();
    rng.shuffle(&mut olds);
    let mut v: Vec<Json> = olds
        .into_iter()
        .take((count / 2) as usize)
        .map(|i| record(i, g))
        .chain((existing..existing + count - count / 2).map(|i| record(i, 0)))
        .collect();
    rng.shuffle(&mut v);
    v
}

/// The request every bench sends: upsert, match_on key+email+phone, on_invalid skip.
pub fn upsert_request(records: Vec<Json>) -> BulkRequest {
    let mut req = BulkRequest::new(Mode::Upsert, records);
    req.match_on = MatchOn::ALL;
    req.on_invalid = OnInvalid::Skip;
    req
}

/// A database file `dir/base.redb` of contacts `0..count`, loaded through the facade
/// in insert requests of `batch` records, with a page cache of `cache` bytes.
pub fn base_file(dir: &Path, count: u64, batch: u64, cache: usize) -> PathBuf {
    let path = dir.join("base.redb");
    let db = Database::builder()
        .cache_size_bytes(cache)
        .open(&path)
        .unwrap();
    let ws = db.workspace("default").unwrap();
    for start in (0..count).step_by(usize::try_from(batch).unwrap()) {
        let end = (start + batch).min(count);
        let req = BulkRequest::new(Mode::Insert, records(start..end));
        assert_eq!(ws.bulk(&req).unwrap().status, Status::Applied);
    }
    path
}

/// The merge-only workload of the `merge` and `merge_probe` benches: `existing`
/// contacts in a `MemLookup` (built by the merge itself from insert records) and a
/// prepared upsert request of `batch` records over them.
pub struct MergeWorkload {
    pub catalog: contactdb_policy::Catalog,
    pub lookup: contactdb_merge::MemLookup,
    pub req: BulkRequest,
    pub prepared: contactdb_policy::Prepared,
}

/// The timestamp every merge bench plans with.
pub const NOW_US: i64 = 1_767_225_600_000_000;

pub fn merge_workload(existing: u64, batch: u64) -> MergeWorkload {
    use contactdb_merge::{MemLookup, plan_with_pool};
    use contactdb_policy::request::prepare;
    let catalog = contactdb_policy::Catalog::new(&[]);
    let limits = contactdb_policy::Limits {
        records_max: 1_000_000,
    };
    let load = BulkRequest::new(Mode::Insert, records(0..existing));
    let prepared = prepare(&load, &catalog, &limits).unwrap();
    let plan = plan_with_pool(
        None,
        &load,
        &prepared,
        &catalog,
        &MemLookup::default(),
        NOW_US,
    )
    .unwrap();
    assert_eq!(plan.report.summary.inserted, existing);
    let lookup = MemLookup::new(plan.writes.into_iter().map(|w| w.after));
    let req = upsert_request(upsert_batch(existing, batch, 1));
    let prepared = prepare(&req, &catalog, &limits).unwrap();
    MergeWorkload {
        catalog,
        lookup,
        req,
        prepared,
    }
}
