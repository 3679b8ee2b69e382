//! Unit tests of tiered tables: random writes against a `BTreeMap` model, with the
//! delta merged (into mid and into base) at every size threshold.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::*;
use crate::filter::{FilterOn, TableFilter};

const T: Tiered<u64> = Tiered {
    name: "t",
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

/// The logical content, read through `merged`, and checks of `get` and `prefixed`
/// (without and with each filter) and of the tombstone invariant.
fn content(
    db: &redb::Database,
    model: &BTreeMap<Vec<u8>, u64>,
    f: &Filters,
) -> Vec<(Vec<u8>, u64)> {
    let r = db.begin_read().unwrap();
    let base = r.open_table(T.base).unwrap();
    let mid = r.open_table(T.mid).unwrap();
    let delta = r.open_table(T.delta).unwrap();
    for e in delta.iter().unwrap() {
        let (k, v) = e.unwrap();
        if v.value().is_none() {
            assert!(
                below_delta(&base, &mid, k.value()).unwrap().is_some(),
                "useless delta tombstone"
            );
        }
    }
    for e in mid.iter().unwrap() {
        let (k, v) = e.unwrap();
        if v.value().is_none() {
            assert!(
                base.get(k.value()).unwrap().is_some(),
                "useless mid tombstone"
            );
        }
    }
    for i in 0..60 {
        for filter in [None, Some(&f.key), Some(&f.prefix)] {
            assert_eq!(
                get(&base, &mid, &delta, &key(i), filter).unwrap(),
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
            assert_eq!(prefixed(&base, &mid, &delta, p, filter).unwrap(), want);
        }
    }
    merged(
        base.iter().unwrap(),
        mid.iter().unwrap(),
        delta.iter().unwrap(),
    )
    .collect::<Result<_, _>>()
    .unwrap()
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
fn random_writes_match_a_map() {
    let mut into_mid_total = 0;
    let mut swept_total = 0;
    let mut sweeps_finished = 0;
    let mut slices_with_more_to_come = 0;
    // Each seed with whole merges into the base, and with a sweep.
    for with_sweep in [false, true] {
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
            let sweep = Sweep::default();
            for batch in 0..80u64 {
                let txn = db.begin_write().unwrap();
                let mut removes = Vec::new();
                let mut puts = Vec::new();
                let mut next = model.clone();
                for _ in 0..rng.below(8) + 1 {
                    let k = key(rng.below(60));
                    // As `write` requires: only present keys are removed. A key is
                    // put at most once per batch, possibly over a present one
                    // (removals are applied first, so a key may be removed and put
                    // again).
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
                    let mid = txn.open_table(T.mid).unwrap();
                    let mut delta = txn.open_table(T.delta).unwrap();
                    write(&base, &mid, &mut delta, &removes, &puts, Some(&filters.key)).unwrap();
                    // The other filter is fed by hand with the same keys.
                    for (k, _) in &puts {
                        filters.prefix.add(k);
                    }
                }
                let done = maybe_compact(
                    &txn,
                    &T,
                    min_delta,
                    // Slices of 1 (plus mid's excess), 8 and 16 entries in turn,
                    // whatever the batch wrote: against mids of tens of entries,
                    // sweeps of one call and of several.
                    with_sweep.then_some(SweepCall {
                        sweep: &sweep,
                        min_cycle: 0,
                        written: batch % 3,
                    }),
                )
                .unwrap();
                if !with_sweep {
                    assert_eq!(done.swept, 0);
                }
                swept_total += done.swept;
                if done.swept > 0 {
                    if sweep.under_way() {
                        slices_with_more_to_come += 1;
                    } else {
                        sweeps_finished += 1;
                    }
                }
                match done.delta {
                    Merge::None => {}
                    Merge::IntoMid => {
                        merges += 1;
                        into_mid_total += 1;
                        assert_eq!(txn.open_table(T.delta).unwrap().len().unwrap(), 0);
                    }
                    Merge::IntoBase => {
                        merges += 1;
                        assert_eq!(txn.open_table(T.delta).unwrap().len().unwrap(), 0);
                        assert_eq!(txn.open_table(T.mid).unwrap().len().unwrap(), 0);
                    }
                }
                txn.commit().unwrap();
                model = next;
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
                assert_eq!(
                    content(&db, &model, &filters),
                    want,
                    "seed {seed} batch {batch} sweep {with_sweep}"
                );
            }
            if min_delta < 1000 {
                assert!(merges > 3, "seed {seed}: only {merges} merges");
            } else {
                assert_eq!(merges, 0);
            }
        }
    }
    // Some seeds keep three levels (small m against a base of tens of keys).
    assert!(into_mid_total > 5, "only {into_mid_total} merges into mid");
    assert!(swept_total > 50, "only {swept_total} entries swept");
    assert!(
        sweeps_finished > 3,
        "only {sweeps_finished} sweeps finished"
    );
    assert!(
        slices_with_more_to_come > 3,
        "only {slices_with_more_to_come} slices left more to sweep"
    );
}

/// A sweep call of the default policy that wrote one entry into the delta (so
/// its slice is `SWEEP_PER_WRITE` entries).
fn call(sweep: &Sweep) -> SweepCall<'_> {
    SweepCall {
        sweep,
        min_cycle: SWEEP_MIN_CYCLE,
        written: 1,
    }
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

/// A base of 600 keys (m = 2: three levels) and a mid table one entry over its
/// threshold (odd keys set, every third even key removed); returns the threshold.
fn base_and_full_mid(db: &redb::Database) -> u64 {
    let (_, mid_max) = thresholds(2, 600);
    assert_eq!(thresholds(2, 600), (13, 89));
    let txn = db.begin_write().unwrap();
    {
        let mut base = txn.open_table(T.base).unwrap();
        let mut mid = txn.open_table(T.mid).unwrap();
        txn.open_table(T.delta).unwrap();
        for i in 0..600 {
            base.insert(key(i * 2).as_slice(), i).unwrap();
        }
        let mut n = 0;
        for i in 0.. {
            if n > mid_max {
                break;
            }
            let k = if i % 2 == 1 { Some(1_000 + i) } else { None };
            if k.is_some() || i % 3 == 0 {
                mid.insert(key(i).as_slice(), k).unwrap();
                n += 1;
            }
        }
    }
    txn.commit().unwrap();
    mid_max
}

// A sweep moves the mid table into the base a slice per call, in key order, and
// keeps the logical content (here: every key set in mid, and tombstones of base
// keys) the same after every slice.
#[test]
fn a_sweep_moves_mid_into_the_base_in_slices() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    let mid_max = base_and_full_mid(&db);
    let want = logical(&db);
    let sweep = Sweep::default();
    let mut slices = 0;
    let mut moved = 0;
    loop {
        let txn = db.begin_write().unwrap();
        let done = maybe_compact(&txn, &T, 2, Some(call(&sweep))).unwrap();
        txn.commit().unwrap();
        assert_eq!(done.delta, Merge::None);
        assert_eq!(logical(&db), want, "after slice {slices}");
        if done.swept == 0 {
            break;
        }
        slices += 1;
        moved += done.swept;
        if !sweep.under_way() {
            break;
        }
    }
    // SWEEP_PER_WRITE entries per slice, the first with the one over the threshold.
    assert_eq!(slices, mid_max.div_ceil(SWEEP_PER_WRITE), "{slices} slices");
    assert_eq!(moved, mid_max + 1);
    let r = db.begin_read().unwrap();
    assert_eq!(r.open_table(T.mid).unwrap().len().unwrap(), 0);
    // Between sweeps, nothing moves.
    drop(r);
    let txn = db.begin_write().unwrap();
    assert_eq!(
        maybe_compact(&txn, &T, 2, Some(call(&sweep)))
            .unwrap()
            .swept,
        0
    );
}

// A request too large for the sweep rule (it wrote as many entries as mid holds)
// merges mid and delta whole into the base, also in the middle of a sweep, and the
// next sweep starts from the first key again.
#[test]
fn a_large_request_merges_mid_whole_and_restarts_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    let mid_max = base_and_full_mid(&db);
    let sweep = Sweep::default();
    let txn = db.begin_write().unwrap();
    let done = maybe_compact(&txn, &T, 2, Some(call(&sweep))).unwrap();
    txn.commit().unwrap();
    assert!(done.swept > 0 && sweep.under_way(), "{done:?}");
    // 20 new keys (over the delta's threshold of 13), from a request that wrote
    // mid_max entries: mid would fill in one such request, so no sweep.
    let txn = db.begin_write().unwrap();
    let mut want: BTreeMap<Vec<u8>, u64> = logical(&db).into_iter().collect();
    {
        let mut delta = txn.open_table(T.delta).unwrap();
        for i in 0..20 {
            delta.insert(key(5_000 + i).as_slice(), Some(i)).unwrap();
            want.insert(key(5_000 + i), i);
        }
    }
    let large = SweepCall {
        sweep: &sweep,
        min_cycle: SWEEP_MIN_CYCLE,
        written: mid_max,
    };
    let done = maybe_compact(&txn, &T, 2, Some(large)).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        done,
        Compaction {
            delta: Merge::IntoBase,
            swept: 0
        }
    );
    assert!(!sweep.under_way());
    let r = db.begin_read().unwrap();
    assert_eq!(r.open_table(T.mid).unwrap().len().unwrap(), 0);
    assert_eq!(r.open_table(T.delta).unwrap().len().unwrap(), 0);
    drop(r);
    assert_eq!(logical(&db), want.into_iter().collect::<Vec<_>>());
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
        let base = txn.open_table(T.base).unwrap();
        let mut mid = txn.open_table(T.mid).unwrap();
        let mut delta = txn.open_table(T.delta).unwrap();
        mid.insert(k.as_slice(), Some(1)).unwrap();
        delta.insert(k.as_slice(), Some(2)).unwrap();
        assert_eq!(get(&base, &mid, &delta, &k, None).unwrap(), Some(2));
        write(&base, &mid, &mut delta, std::slice::from_ref(&k), &[], None).unwrap();
        assert_eq!(get(&base, &mid, &delta, &k, None).unwrap(), None);
        assert_eq!(
            delta.get(k.as_slice()).unwrap().map(|v| v.value()),
            Some(None)
        );
    }
    // Merged down (with m = 0, mid and delta straight into the base), nothing of
    // the key remains.
    assert_eq!(
        maybe_compact(&txn, &T, 0, None).unwrap(),
        Compaction {
            delta: Merge::IntoBase,
            swept: 0
        }
    );
    txn.commit().unwrap();
    let r = db.begin_read().unwrap();
    let parts = T.open_read(&r).unwrap();
    assert_eq!(parts.get(&k, None).unwrap(), None);
    assert_eq!(parts.iter().unwrap().count(), 0);
}
