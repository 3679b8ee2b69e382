//! Unit tests of tiered tables: the level decision (table-driven), random writes
//! against a `BTreeMap` model with the delta merged into mid and into base at every
//! size threshold.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::*;
use crate::filter::{FilterOn, TableFilter};

const T: Tiered<u64> = Tiered {
    base: TableDefinition::new("t"),
    mid: TableDefinition::new("t_mid"),
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

/// Asserts the tombstone invariant of every level of `t`.
fn tombstones_hide_something(t: &ReadOpened<u64>) {
    let levels = [
        (
            &t.delta,
            &(|k: &[u8]| t.below_delta(k).unwrap()) as &dyn Fn(&[u8]) -> Option<u64>,
        ),
        (&t.mid, &|k: &[u8]| t.below_mid(k).unwrap()),
    ];
    for (level, hides) in levels {
        for e in level.iter().unwrap() {
            let (k, v) = e.unwrap();
            if v.value().is_none() {
                assert!(hides(k.value()).is_some(), "useless tombstone");
            }
        }
    }
}

/// The logical content, read through `merged`, and checks of `get` and `prefixed`
/// (without and with each filter) and of the tombstone invariant.
fn content(
    db: &redb::Database,
    model: &BTreeMap<Vec<u8>, u64>,
    f: &Filters,
) -> Vec<(Vec<u8>, u64)> {
    let r = db.begin_read().unwrap();
    let t = T.open_read(&r).unwrap();
    tombstones_hide_something(&t);
    for i in 0..60 {
        for filter in [None, Some(&f.key), Some(&f.prefix)] {
            assert_eq!(t.get(&key(i), filter).unwrap(), model.get(&key(i)).copied());
        }
    }
    for p in [b"k01", b"k04", b"k07"] {
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.starts_with(p))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for filter in [None, Some(&f.key), Some(&f.prefix)] {
            assert_eq!(t.prefixed(p, filter).unwrap(), want);
        }
    }
    t.iter().unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn thresholds_use_two_levels_then_three() {
    // Two levels (delta == mid): max(m, sqrt(m·B)), while 3·cbrt(m²B) >= 2·sqrt(mB).
    assert_eq!(thresholds(16_384, 0), (16_384, 16_384));
    assert_eq!(thresholds(16_384, 100_000), (40_477, 40_477));
    // The crossover is at B ≈ 11.4·m (186,624 for m = 16,384).
    assert_eq!(thresholds(16_384, 180_000), (54_305, 54_305));
    assert_eq!(thresholds(16_384, 200_000), (37_724, 86_861));
    // Three levels: cbrt(m²·B) and cbrt(m·B²).
    assert_eq!(thresholds(16_384, 1_000_000), (64_507, 253_984));
    assert_eq!(thresholds(16_384, 10_000_000), (138_978, 1_178_890));
    assert_eq!(thresholds(0, 1_000_000), (0, 0));
    assert_eq!(thresholds(2, 20), (6, 6));
    assert_eq!(thresholds(2, 50), (5, 17));
    assert_eq!(thresholds(2, 60), (6, 19));
    assert_eq!(thresholds(u64::MAX, u64::MAX), (u64::MAX, u64::MAX));
}

#[test]
fn icbrt_is_exact() {
    for x in [0u128, 1, 7, 8, 9, 26, 27, 28, 999, 1000, 1001] {
        let r = u128::from(icbrt(x));
        assert!(r * r * r <= x && (r + 1) * (r + 1) * (r + 1) > x, "{x}");
    }
    for r in [1_000u128, 1_048_576, 2_642_245, 3_000_000_000] {
        for x in [r * r * r - 1, r * r * r, r * r * r + 1] {
            let got = u128::from(icbrt(x));
            assert!(got * got * got <= x && (got + 1).pow(3) > x, "{x}");
        }
    }
    assert_eq!(icbrt(u128::MAX), 6_981_463_658_331);
}

#[test]
fn decide_merges_by_level_sizes() {
    let sizes = |base, mid, delta| Sizes { base, mid, delta };
    // m = 16,384 (the default): two levels up to a base of ~11.4·m entries, then
    // three (thresholds (64,507, 253,984) at 1M, (138,978, 1,178,890) at 10M).
    let m = 16_384;
    for (m, s, want) in [
        // An empty table: the delta goes into the base once over m.
        (m, sizes(0, 0, 0), Merge::None),
        (m, sizes(0, 0, 16_384), Merge::None),
        (m, sizes(0, 0, 16_385), Merge::IntoBase),
        // Two levels (100k: 40,477 for both): mid is skipped, and a mid left from
        // a larger base goes down with the delta.
        (m, sizes(100_000, 0, 40_477), Merge::None),
        (m, sizes(100_000, 0, 40_478), Merge::IntoBase),
        (m, sizes(100_000, 5_000, 40_478), Merge::IntoBase),
        // Three levels at 1M: a full delta into mid while mid and delta fit.
        (m, sizes(1_000_000, 0, 64_507), Merge::None),
        (m, sizes(1_000_000, 0, 64_508), Merge::IntoMid),
        (m, sizes(1_000_000, 189_476, 64_508), Merge::IntoMid),
        (m, sizes(1_000_000, 189_477, 64_508), Merge::IntoBase),
        // A delta within its threshold waits, however full mid is.
        (m, sizes(1_000_000, 253_984, 10), Merge::None),
        // One write larger than mid's threshold goes down at once.
        (m, sizes(1_000_000, 0, 300_000), Merge::IntoBase),
        (m, sizes(10_000_000, 1_000_000, 138_979), Merge::IntoMid),
        (m, sizes(10_000_000, 1_039_912, 138_979), Merge::IntoBase),
        // Saturating sums.
        (m, sizes(1_000_000, u64::MAX, 64_508), Merge::IntoBase),
        // m = 0: every non-empty delta goes into the base.
        (0, sizes(0, 0, 1), Merge::IntoBase),
        (0, sizes(1_000_000, 0, 1), Merge::IntoBase),
        // m = 2 (tests): three levels from a base of tens of entries.
        (2, sizes(600, 0, 13), Merge::None),
        (2, sizes(600, 0, 14), Merge::IntoMid),
        (2, sizes(600, 76, 14), Merge::IntoBase),
    ] {
        assert_eq!(decide(m, s), want, "m {m}, {s:?}");
    }
}

#[test]
fn random_writes_match_a_map() {
    let mut into_mid_total = 0;
    let mut into_base_after_mid = 0;
    for (seed, min_delta) in [(1u64, 0u64), (2, 1), (3, 2), (5, 3), (6, 10), (4, 1000)] {
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
                // at most once per batch, possibly over a present one (removals
                // are applied first, so a key may be removed and put again).
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
            let sizes = {
                let mut t = T.open_write(&txn).unwrap();
                write(&mut t, &removes, &puts, Some(&filters.key)).unwrap();
                // The other filter is fed by hand with the same keys.
                for (k, _) in &puts {
                    filters.prefix.add(k);
                }
                Sizes {
                    base: t.base.len().unwrap(),
                    mid: t.mid.len().unwrap(),
                    delta: t.delta.len().unwrap(),
                }
            };
            let merge = compact(&txn, &T, min_delta).unwrap();
            // What was applied is what the pure decision says.
            assert_eq!(merge, decide(min_delta, sizes));
            let len = |d| txn.open_table(d).unwrap().len().unwrap();
            match merge {
                Merge::None => {}
                Merge::IntoMid => {
                    merges += 1;
                    into_mid_total += 1;
                    assert_eq!(len(T.delta), 0);
                }
                Merge::IntoBase => {
                    merges += 1;
                    if sizes.mid > 0 {
                        into_base_after_mid += 1;
                    }
                    assert_eq!((len(T.mid), len(T.delta)), (0, 0));
                }
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
    // Some seeds keep three levels (small m against a base of tens of keys).
    assert!(into_mid_total > 5, "only {into_mid_total} merges into mid");
    assert!(
        into_base_after_mid > 2,
        "only {into_base_after_mid} full mid tables merged into the base"
    );
}

/// The logical content of `T` in `db`.
fn logical(db: &redb::Database) -> Vec<(Vec<u8>, u64)> {
    let r = db.begin_read().unwrap();
    T.open_read(&r)
        .unwrap()
        .iter()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Table lengths: (mid, delta).
fn lens(db: &redb::Database) -> (u64, u64) {
    let r = db.begin_read().unwrap();
    let t = T.open_read(&r).unwrap();
    (t.mid.len().unwrap(), t.delta.len().unwrap())
}

/// A base of 600 keys (m = 2: three levels) and a mid table at its threshold (odd
/// keys set, every third even key removed: tombstones of base keys); returns the
/// threshold.
fn base_and_full_mid(db: &redb::Database) -> u64 {
    let (_, mid_max) = thresholds(2, 600);
    assert_eq!(thresholds(2, 600), (13, 89));
    let txn = db.begin_write().unwrap();
    {
        let mut t = T.open_write(&txn).unwrap();
        for i in 0..600 {
            t.base.insert(key(i * 2).as_slice(), i).unwrap();
        }
        let mut n = 0;
        for i in 0.. {
            if n == mid_max {
                break;
            }
            let k = if i % 2 == 1 { Some(1_000 + i) } else { None };
            if k.is_some() || i % 3 == 0 {
                t.mid.insert(key(i).as_slice(), k).unwrap();
                n += 1;
            }
        }
    }
    txn.commit().unwrap();
    mid_max
}

/// Puts `n` new keys (from `from` on) into the delta and compacts.
fn put_and_compact(db: &redb::Database, from: u64, n: u64) -> Merge {
    let txn = db.begin_write().unwrap();
    let puts: Vec<_> = (from..from + n).map(|i| (key(i), i)).collect();
    {
        let mut t = T.open_write(&txn).unwrap();
        write(&mut t, &[], &puts, None).unwrap();
    }
    let done = compact(&txn, &T, 2).unwrap();
    txn.commit().unwrap();
    done
}

// A delta over its threshold goes into mid while mid has room; the request that
// would fill mid merges mid and delta into the base, keeping the logical content.
#[test]
fn a_full_mid_table_goes_into_the_base_with_the_delta() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    base_and_full_mid(&db);
    // Empty mid, then 14 new keys: over the delta's threshold (13), into mid.
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(T.mid).unwrap().retain(|_, _| false).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(put_and_compact(&db, 5_000, 14), Merge::IntoMid);
    assert_eq!(lens(&db), (14, 0));
    // A full mid table and 14 more: everything into the base.
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    base_and_full_mid(&db);
    let want: BTreeMap<Vec<u8>, u64> = logical(&db)
        .into_iter()
        .chain((5_000..5_014).map(|i| (key(i), i)))
        .collect();
    assert_eq!(put_and_compact(&db, 5_000, 14), Merge::IntoBase);
    assert_eq!(lens(&db), (0, 0));
    assert_eq!(logical(&db), want.into_iter().collect::<Vec<_>>());
    // A delta under its threshold stays.
    assert_eq!(put_and_compact(&db, 6_000, 3), Merge::None);
    assert_eq!(lens(&db), (0, 3));
}

// A key set in mid (and not in the base), set again in the delta, then removed: the
// delta tombstone must stay, else the mid value would show through.
#[test]
fn removing_a_key_set_in_mid_and_delta_keeps_the_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    let k = key(7);
    let txn = db.begin_write().unwrap();
    {
        let mut t = T.open_write(&txn).unwrap();
        t.mid.insert(k.as_slice(), Some(1)).unwrap();
        t.delta.insert(k.as_slice(), Some(2)).unwrap();
        assert_eq!(t.get(&k, None).unwrap(), Some(2));
        write(&mut t, std::slice::from_ref(&k), &[], None).unwrap();
        assert_eq!(t.get(&k, None).unwrap(), None);
        assert_eq!(
            t.delta.get(k.as_slice()).unwrap().map(|v| v.value()),
            Some(None)
        );
    }
    // Merged down (with m = 0, mid and delta straight into the base), nothing of
    // the key remains.
    assert_eq!(compact(&txn, &T, 0).unwrap(), Merge::IntoBase);
    txn.commit().unwrap();
    let r = db.begin_read().unwrap();
    let parts = T.open_read(&r).unwrap();
    assert_eq!(parts.get(&k, None).unwrap(), None);
    assert_eq!(parts.iter().unwrap().count(), 0);
}

// The delta merged into mid: a tombstone over a key mid set and the base lacks is
// dropped with the mid entry; one over a base key stays in mid.
#[test]
fn a_delta_tombstone_merged_into_mid_stays_only_over_a_base_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    base_and_full_mid(&db);
    let (in_mid, in_base) = (key(9_999), key(10));
    let txn = db.begin_write().unwrap();
    {
        let mut t = T.open_write(&txn).unwrap();
        t.mid.retain(|_, _| false).unwrap();
        t.mid.insert(in_mid.as_slice(), Some(2)).unwrap();
        t.mid.insert(in_base.as_slice(), Some(3)).unwrap();
        write(&mut t, &[in_base.clone(), in_mid.clone()], &[], None).unwrap();
        // Filler so the delta merges into mid (threshold 13).
        let puts: Vec<_> = (0..14).map(|i| (key(20_000 + i), i)).collect();
        write(&mut t, &[], &puts, None).unwrap();
    }
    assert_eq!(compact(&txn, &T, 2).unwrap(), Merge::IntoMid);
    {
        let t = T.open_write(&txn).unwrap();
        assert_eq!(
            t.mid.get(in_mid.as_slice()).unwrap().map(|v| v.value()),
            None
        );
        assert_eq!(
            t.mid.get(in_base.as_slice()).unwrap().map(|v| v.value()),
            Some(None)
        );
        assert_eq!(t.get(&in_mid, None).unwrap(), None);
        assert_eq!(t.get(&in_base, None).unwrap(), None);
    }
    txn.commit().unwrap();
}

// A merge into the base writes the base anew, packed: random keys written batch by
// batch and merged leave its pages nearly full (inserting each key where it
// belongs leaves them about two thirds full), and every entry reads back.
#[test]
fn a_merge_into_the_base_leaves_it_packed() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    let mut rng = Rng(0x5eed_0001);
    let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut into_base = 0;
    for batch in 0..40u64 {
        let mut puts: Vec<(Vec<u8>, u64)> = (0..500)
            .map(|_| (format!("k{:016}", rng.below(u64::MAX)).into_bytes(), batch))
            .collect();
        puts.sort();
        puts.dedup_by(|a, b| a.0 == b.0);
        model.extend(puts.iter().cloned());
        let txn = db.begin_write().unwrap();
        {
            let mut t = T.open_write(&txn).unwrap();
            write(&mut t, &[], &puts, None).unwrap();
        }
        if compact(&txn, &T, 1_000).unwrap() == Merge::IntoBase {
            into_base += 1;
        }
        txn.commit().unwrap();
    }
    assert!(into_base >= 3, "{into_base} merges into the base");
    let r = db.begin_read().unwrap();
    let t = T.open_read(&r).unwrap();
    let stats = t.base.stats().unwrap();
    assert!(
        stats.fragmented_bytes() * 10 < stats.stored_bytes(),
        "{} bytes unused in pages holding {} bytes",
        stats.fragmented_bytes(),
        stats.stored_bytes()
    );
    let all: Vec<(Vec<u8>, u64)> = t.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>());
}
