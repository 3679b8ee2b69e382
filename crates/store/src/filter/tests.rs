//! Unit tests of the base filters: no false negatives, a bounded false-positive
//! rate, and prefix filters that answer only for their own prefix length.

use super::*;

#[test]
fn added_hashes_are_always_found() {
    for n in [0u64, 1, 7, 1000, 50_000] {
        let b = Bloom::with_capacity(n);
        for i in 0..n {
            b.insert(filter_hash(&i.to_be_bytes()));
        }
        for i in 0..n {
            assert!(b.may_contain(filter_hash(&i.to_be_bytes())), "n {n}, i {i}");
        }
    }
}

/// False positives per 100,000 probes of absent keys, for a filter sized for
/// `capacity` keys holding 100,000.
fn false_positives_per_100k(capacity: u64) -> u64 {
    let n = 100_000u64;
    let b = Bloom::with_capacity(capacity);
    for i in 0..n {
        b.insert(filter_hash(format!("cust-{i}").as_bytes()));
    }
    (n..2 * n)
        .filter(|i| b.may_contain(filter_hash(format!("cust-{i}").as_bytes())))
        .count() as u64
}

// 10 bits per key in 256-bit blocks; each bound allows for noise.
#[test]
fn false_positive_rates_at_each_fill() {
    // Half full, where a new filter starts: ~0.1%.
    let half = false_positives_per_100k(200_000);
    assert!(half < 300, "{half} per 100k half full");
    // At capacity: ~1%.
    let full = false_positives_per_100k(100_000);
    assert!(full < 1_500, "{full} per 100k at capacity");
    // A quarter past capacity, where a rebuild is due: ~2.5%.
    let over = false_positives_per_100k(80_000);
    assert!(over < 4_000, "{over} per 100k a quarter past capacity");
}

#[test]
fn filters_take_ten_bits_per_key_of_capacity() {
    let n = 100_000u64;
    assert_eq!(
        Bloom::with_capacity(n).bytes() as u64,
        (n * BITS_PER_KEY).div_ceil(256) * 32
    );
}

#[test]
fn an_empty_filter_contains_nothing() {
    let b = Bloom::with_capacity(0);
    assert_eq!(b.bytes(), 32);
    assert!((0..1000u64).all(|i| !b.may_contain(filter_hash(&i.to_le_bytes()))));
}

#[test]
fn prefix_filters_answer_only_for_their_length() {
    let f = TableFilter::new(FilterOn::Prefix(4), 0, DEFAULT_SLACK_MIN);
    f.add(b"abcd-rest");
    assert!(f.may_contain_prefix(b"abcd"));
    assert!(f.may_contain_key(b"abcd-other"));
    assert!(!f.may_contain_prefix(b"abce"));
    // Another length: the filter cannot tell, so it must say "maybe".
    assert!(f.may_contain_prefix(b"zz"));
    assert!(f.may_contain_prefix(b"zzzzz"));

    let k = TableFilter::new(FilterOn::Key, 0, DEFAULT_SLACK_MIN);
    k.add(b"key-1");
    assert!(k.may_contain_key(b"key-1"));
    assert!(!k.may_contain_key(b"key-2"));
    // A whole-key filter says nothing about prefixes.
    assert!(k.may_contain_prefix(b"nothing"));
}

#[test]
fn a_filter_is_due_for_a_rebuild_past_its_capacity() {
    let f = TableFilter::new(FilterOn::Key, 10, DEFAULT_SLACK_MIN);
    assert_eq!(f.capacity, 10 + DEFAULT_SLACK_MIN);
    for i in 0..f.capacity + f.capacity / 4 {
        f.add(&i.to_be_bytes());
    }
    assert!(!f.overfull());
    f.add(b"one more");
    assert!(f.overfull());
    assert_eq!(
        TableFilter::new(FilterOn::Key, 1_000_000, DEFAULT_SLACK_MIN).capacity,
        2_000_000
    );
}

#[test]
fn shared_and_exclusive_inserts_set_the_same_bits() {
    let shared = Bloom::with_capacity(5000);
    let mut exclusive = Bloom::with_capacity(5000);
    for i in 0..5000u64 {
        shared.insert(filter_hash(&i.to_le_bytes()));
        exclusive.insert_mut(filter_hash(&i.to_le_bytes()));
    }
    let bits = |b: &Bloom| -> Vec<u32> {
        b.blocks
            .iter()
            .flat_map(|blk| blk.iter().map(|w| w.load(Ordering::Relaxed)))
            .collect()
    };
    assert_eq!(bits(&shared), bits(&exclusive));
}

#[test]
fn the_hash_depends_on_every_byte_and_the_length() {
    let base = filter_hash(b"cust-0902856274948");
    assert_ne!(base, filter_hash(b"cust-0902856274949"));
    assert_ne!(base, filter_hash(b"dust-0902856274948"));
    assert_ne!(filter_hash(b"ab"), filter_hash(b"ab\0"));
    assert_ne!(filter_hash(b""), filter_hash(b"\0"));
}
