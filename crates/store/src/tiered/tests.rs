//! Unit tests of tiered tables: random writes against a `BTreeMap` model, with the
//! delta merged (into mid and into base), mid frozen and the frozen table drained
//! at every size threshold.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use super::*;
use crate::filter::{FilterOn, TableFilter};

const T: Tiered<u64> = Tiered {
    name: "t",
    base: TableDefinition::new("t"),
    frozen: TableDefinition::new("t_frozen"),
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
    let t = T.open_read(&r).unwrap();
    for (level, hides) in [
        (
            &t.delta,
            &(|k: &[u8]| t.below_delta(k).unwrap()) as &dyn Fn(&[u8]) -> Option<u64>,
        ),
        (&t.mid, &|k: &[u8]| t.below_mid(k).unwrap()),
        (&t.frozen, &|k: &[u8]| {
            t.base.get(k).unwrap().map(|v| v.value())
        }),
    ] {
        for e in level.iter().unwrap() {
            let (k, v) = e.unwrap();
            if v.value().is_none() {
                assert!(hides(k.value()).is_some(), "useless tombstone");
            }
        }
    }
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
fn random_writes_match_a_map() {
    let mut into_mid_total = 0;
    let mut froze_total = 0;
    let mut drained_total = 0;
    let mut slices_leaving_more = 0;
    let mut frozen_left_at_freeze = 0;
    // Each seed with frozen tables moved whole (0) and drained 1 and 3 entries per
    // entry written.
    for per_write in [0u64, 1, 3] {
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
                let frozen_before = {
                    let mut t = T.open_write(&txn).unwrap();
                    write(&mut t, &removes, &puts, Some(&filters.key)).unwrap();
                    // The other filter is fed by hand with the same keys.
                    for (k, _) in &puts {
                        filters.prefix.add(k);
                    }
                    t.frozen.len().unwrap()
                };
                // Slices of 0, 1 and 2 × per_write entries in turn, whatever the
                // batch wrote: against frozen tables of tens of entries, drains of
                // one call and of many, and frozen tables still full when mid is.
                let drain = Drain {
                    whole_below: 0,
                    per_write,
                };
                let done = maybe_compact(&txn, &T, min_delta, drain, batch % 3).unwrap();
                let frozen_after = txn.open_table(T.frozen).unwrap().len().unwrap();
                if done.froze {
                    froze_total += 1;
                    if frozen_before > 0 {
                        frozen_left_at_freeze += 1;
                    }
                }
                if per_write == 0 {
                    assert_eq!(frozen_after, 0, "a whole drain leaves nothing frozen");
                }
                drained_total += done.drained;
                if done.drained > 0 && frozen_after > 0 {
                    slices_leaving_more += 1;
                }
                match done.delta {
                    Merge::None => assert!(!done.froze),
                    Merge::IntoMid => {
                        merges += 1;
                        into_mid_total += 1;
                        assert_eq!(txn.open_table(T.delta).unwrap().len().unwrap(), 0);
                    }
                    Merge::IntoBase => {
                        merges += 1;
                        for level in [T.delta, T.mid, T.frozen] {
                            assert_eq!(txn.open_table(level).unwrap().len().unwrap(), 0);
                        }
                    }
                }
                txn.commit().unwrap();
                model = next;
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
                assert_eq!(
                    content(&db, &model, &filters),
                    want,
                    "seed {seed} batch {batch} per_write {per_write}"
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
    assert!(froze_total > 5, "only {froze_total} mid tables frozen");
    assert!(drained_total > 50, "only {drained_total} entries drained");
    assert!(
        slices_leaving_more > 3,
        "only {slices_leaving_more} slices left more to drain"
    );
    assert!(
        frozen_left_at_freeze > 0,
        "no frozen table was still full when mid froze again"
    );
}

/// A drain of one entry per entry written, always in slices (with one entry
/// written per call: see `put_and_compact`).
const ONE: Drain = Drain {
    whole_below: 0,
    per_write: 1,
};

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

/// Table lengths: (frozen, mid, delta).
fn lens(db: &redb::Database) -> (u64, u64, u64) {
    let r = db.begin_read().unwrap();
    let t = T.open_read(&r).unwrap();
    (
        t.frozen.len().unwrap(),
        t.mid.len().unwrap(),
        t.delta.len().unwrap(),
    )
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

/// Puts `n` new keys (from `from` on) into the delta and compacts with `drain`, as a
/// call that wrote one entry (so a slice is `drain.per_write` entries).
fn put_and_compact(db: &redb::Database, from: u64, n: u64, drain: Drain) -> Compaction {
    let txn = db.begin_write().unwrap();
    let puts: Vec<_> = (from..from + n).map(|i| (key(i), i)).collect();
    {
        let mut t = T.open_write(&txn).unwrap();
        write(&mut t, &[], &puts, None).unwrap();
    }
    let done = maybe_compact(&txn, &T, 2, drain, 1).unwrap();
    txn.commit().unwrap();
    done
}

// A full mid table takes the delta and is frozen (a new mid starts empty), then
// moves into the base a slice per call, in key order, keeping the logical content
// the same after every slice.
#[test]
fn a_full_mid_table_freezes_and_drains_in_slices() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    let mid_max = base_and_full_mid(&db);
    // 14 new keys: over the delta's threshold (13), so mid would exceed its own.
    let done = put_and_compact(&db, 5_000, 14, ONE);
    assert_eq!(
        done,
        Compaction {
            delta: Merge::IntoMid,
            froze: true,
            drained: 1
        }
    );
    assert_eq!(lens(&db), (mid_max + 14 - 1, 0, 0));
    let want = logical(&db);
    let mut slices = 1;
    loop {
        let txn = db.begin_write().unwrap();
        let done = maybe_compact(
            &txn,
            &T,
            2,
            Drain {
                whole_below: 0,
                per_write: 4,
            },
            2,
        )
        .unwrap();
        txn.commit().unwrap();
        assert_eq!(done.delta, Merge::None);
        assert!(!done.froze);
        assert_eq!(logical(&db), want, "after slice {slices}");
        if done.drained == 0 {
            break;
        }
        assert!(done.drained <= 8);
        slices += 1;
    }
    // 1 entry, then 8 per slice.
    assert_eq!(
        slices,
        1 + (mid_max + 14 - 1).div_ceil(8),
        "{slices} slices"
    );
    assert_eq!(lens(&db), (0, 0, 0));
    // With nothing frozen, nothing moves.
    assert_eq!(put_and_compact(&db, 6_000, 1, ONE).drained, 0);
}

// Below `whole_below` base entries a full mid table goes into the base with the
// delta in the request that fills it (its frozen form would move whole anyway); at
// or above, it freezes and drains in slices.
#[test]
fn a_small_base_takes_a_full_mid_table_whole() {
    for (whole_below, merge, frozen_left) in [
        (601, Merge::IntoBase, 0),
        (600, Merge::IntoMid, 89 + 14 - 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        base_and_full_mid(&db);
        let want: BTreeMap<Vec<u8>, u64> = logical(&db)
            .into_iter()
            .chain((5_000..5_014).map(|i| (key(i), i)))
            .collect();
        let done = put_and_compact(&db, 5_000, 14, Drain { whole_below, ..ONE });
        assert_eq!(done.delta, merge, "whole_below {whole_below}");
        assert_eq!(done.froze, merge == Merge::IntoMid);
        assert_eq!(lens(&db), (frozen_left, 0, 0), "whole_below {whole_below}");
        assert_eq!(logical(&db), want.into_iter().collect::<Vec<_>>());
    }
}

// A mid table that fills again while the frozen table still holds entries (a
// request far larger than the ones before) moves what is left of the frozen table
// into the base first, then freezes.
#[test]
fn a_mid_table_full_again_drains_the_rest_of_the_frozen_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    let mid_max = base_and_full_mid(&db);
    assert!(put_and_compact(&db, 5_000, 14, ONE).froze);
    let first = mid_max + 14 - 1;
    assert_eq!(lens(&db), (first, 0, 0));
    // 14 new keys: into the empty mid.
    assert_eq!(
        put_and_compact(&db, 6_000, 14, ONE),
        Compaction {
            delta: Merge::IntoMid,
            froze: false,
            drained: 1
        }
    );
    assert_eq!(lens(&db), (first - 1, 14, 0));
    let mut want: BTreeMap<Vec<u8>, u64> = logical(&db).into_iter().collect();
    // mid_max new keys: mid (14) and delta exceed the threshold.
    let done = put_and_compact(&db, 7_000, mid_max, ONE);
    for i in 7_000..7_000 + mid_max {
        want.insert(key(i), i);
    }
    assert_eq!(
        done,
        Compaction {
            delta: Merge::IntoMid,
            froze: true,
            // The rest of the old frozen table, then one entry of the new one.
            drained: first - 1 + 1
        }
    );
    assert_eq!(lens(&db), (14 + mid_max - 1, 0, 0));
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
    assert_eq!(
        maybe_compact(&txn, &T, 0, ONE, 1).unwrap(),
        Compaction {
            delta: Merge::IntoBase,
            froze: false,
            drained: 0
        }
    );
    txn.commit().unwrap();
    let r = db.begin_read().unwrap();
    let parts = T.open_read(&r).unwrap();
    assert_eq!(parts.get(&k, None).unwrap(), None);
    assert_eq!(parts.iter().unwrap().count(), 0);
}

// The same one level down: a key set in frozen (not in the base), set again in mid,
// then removed through the delta and merged into mid: mid's tombstone must stay,
// else the frozen value would show through.
#[test]
fn removing_a_key_set_in_frozen_and_mid_keeps_the_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
    base_and_full_mid(&db);
    let k = key(9_999);
    let txn = db.begin_write().unwrap();
    {
        let mut t = T.open_write(&txn).unwrap();
        t.frozen.insert(k.as_slice(), Some(1)).unwrap();
        t.mid.retain(|_, _| false).unwrap();
        t.mid.insert(k.as_slice(), Some(2)).unwrap();
        write(&mut t, std::slice::from_ref(&k), &[], None).unwrap();
        // Filler so the delta merges into mid (threshold 13).
        let puts: Vec<_> = (0..14).map(|i| (key(20_000 + i), i)).collect();
        write(&mut t, &[], &puts, None).unwrap();
    }
    let done = maybe_compact(
        &txn, &T, 2, ONE, // Nothing written, nothing drained: the frozen entry stays.
        0,
    )
    .unwrap();
    assert_eq!(done.delta, Merge::IntoMid);
    assert!(!done.froze);
    {
        let t = T.open_write(&txn).unwrap();
        assert_eq!(
            t.mid.get(k.as_slice()).unwrap().map(|v| v.value()),
            Some(None)
        );
        assert_eq!(t.get(&k, None).unwrap(), None);
    }
    txn.commit().unwrap();
}
