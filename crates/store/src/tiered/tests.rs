//! Unit tests of tiered tables: random writes against a `BTreeMap` model, with the
//! delta merged at every size threshold.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::*;
use crate::filter::{FilterOn, TableFilter};

const T: Tiered<u64> = Tiered {
    name: "t",
    base: TableDefinition::new("t"),
    delta: TableDefinition::new("t_delta"),
};

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:03}").into_bytes()
}

/// Filters of `T`, fed with every key put: one on whole keys, one on 3-byte
/// prefixes (the length `content` looks up by).
struct Filters {
    key: TableFilter,
    prefix: TableFilter,
}

/// The logical content, read through `merged`, and checks of `get` and `prefixed`
/// (without and with each filter) and of the tombstone invariant.
fn content(
    db: &redb::Database,
    model: &BTreeMap<Vec<u8>, u64>,
    f: &Filters,
) -> Vec<(Vec<u8>, u64)> {
    let r = db.begin_read().unwrap();
    let base = r.open_table(T.base).unwrap();
    let delta = r.open_table(T.delta).unwrap();
    for e in delta.iter().unwrap() {
        let (k, v) = e.unwrap();
        if v.value().is_none() {
            assert!(base.get(k.value()).unwrap().is_some(), "useless tombstone");
        }
    }
    for i in 0..60 {
        for filter in [None, Some(&f.key), Some(&f.prefix)] {
            assert_eq!(
                get(&base, &delta, &key(i), filter).unwrap(),
                model.get(&key(i)).copied()
            );
        }
    }
    for p in [b"k01", b"k04", b"k07"] {
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.starts_with(p))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for filter in [None, Some(&f.key), Some(&f.prefix)] {
            assert_eq!(prefixed(&base, &delta, p, filter).unwrap(), want);
        }
    }
    merged(base.iter().unwrap(), delta.iter().unwrap())
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn threshold_grows_with_the_square_root_of_the_base() {
    assert_eq!(threshold(16_384, 0), 16_384);
    assert_eq!(threshold(16_384, 1_000_000), 128_000);
    assert_eq!(threshold(16_384, 10_000_000), 404_771);
    assert_eq!(threshold(0, 1_000_000), 0);
    assert_eq!(threshold(2, 50), 10);
    assert_eq!(threshold(u64::MAX, u64::MAX), u64::MAX);
}

#[test]
fn random_writes_match_a_map() {
    for (seed, min_delta) in [(1u64, 0u64), (2, 3), (3, 10), (4, 1000)] {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut merges = 0;
        let filters = Filters {
            key: TableFilter::new(FilterOn::Key, 0, 1),
            prefix: TableFilter::new(FilterOn::Prefix(3), 0, 1),
        };
        for batch in 0..80u64 {
            let txn = db.begin_write().unwrap();
            let mut removes = Vec::new();
            let mut puts = Vec::new();
            let mut next = model.clone();
            for _ in 0..rng.below(8) + 1 {
                let k = key(rng.below(60));
                // As `write` requires: only present keys are removed. A key is put
                // at most once per batch, possibly over a present one (removals are
                // applied first, so a key may be removed and put again).
                if rng.below(3) == 0 {
                    if model.contains_key(&k)
                        && !removes.contains(&k)
                        && !puts.iter().any(|(p, _)| *p == k)
                    {
                        next.remove(&k);
                        removes.push(k);
                    }
                } else if !puts.iter().any(|(p, _)| *p == k) {
                    next.insert(k.clone(), batch);
                    puts.push((k, batch));
                }
            }
            removes.sort();
            puts.sort();
            {
                let base = txn.open_table(T.base).unwrap();
                let mut delta = txn.open_table(T.delta).unwrap();
                write(&base, &mut delta, &removes, &puts, Some(&filters.key)).unwrap();
                // The other filter is fed by hand with the same keys.
                for (k, _) in &puts {
                    filters.prefix.add(k);
                }
            }
            if maybe_compact(&txn, &T, min_delta).unwrap() {
                merges += 1;
                assert_eq!(txn.open_table(T.delta).unwrap().len().unwrap(), 0);
            }
            txn.commit().unwrap();
            model = next;
            let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
            assert_eq!(
                content(&db, &model, &filters),
                want,
                "seed {seed} batch {batch}"
            );
        }
        if min_delta < 1000 {
            assert!(merges > 3, "seed {seed}: only {merges} merges");
        } else {
            assert_eq!(merges, 0);
        }
    }
}
