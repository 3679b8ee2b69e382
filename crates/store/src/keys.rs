//! Table definitions and the big-endian composite key encoding of every table.
//!
//! Every workspace-scoped key starts with the workspace number as 4 big-endian
//! bytes, so one workspace's entries are one contiguous key range.

use std::ops::Bound;

use redb::TableDefinition;

use crate::tiered::Tiered;

/// `meta`: `format_version`, `next_workspace` → u32 big-endian.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `workspaces`: ws → tagged `StoredWorkspace`.
pub const WORKSPACES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workspaces");
/// `workspace_slugs`: slug bytes → ws.
pub const WORKSPACE_SLUGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workspace_slugs");
/// `workspace_uuids`: 16 UUID bytes → ws.
pub const WORKSPACE_UUIDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workspace_uuids");
/// `columns`: ws ‖ column name → tagged `StoredColumn`.
pub const COLUMNS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("columns");
/// `contacts`: ws ‖ id (8 bytes big-endian) → tagged `StoredContact`. Ids are
/// assigned in insertion order per workspace, so new contacts are appended.
pub const CONTACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contacts");
/// `identifiers`: ws ‖ contact key or alias → id (tiered).
pub const IDENTIFIERS: Tiered<u64> = Tiered {
    base: TableDefinition::new("identifiers"),
    mid: TableDefinition::new("identifiers_mid"),
    delta: TableDefinition::new("identifiers_delta"),
};
/// `email_index`: ws ‖ value_hash(email) ‖ id → () (tiered).
pub const EMAIL_INDEX: Tiered<()> = Tiered {
    base: TableDefinition::new("email_index"),
    mid: TableDefinition::new("email_index_mid"),
    delta: TableDefinition::new("email_index_delta"),
};
/// `phone_index`: ws ‖ value_hash(gsm) ‖ id → () (tiered).
pub const PHONE_INDEX: Tiered<()> = Tiered {
    base: TableDefinition::new("phone_index"),
    mid: TableDefinition::new("phone_index_mid"),
    delta: TableDefinition::new("phone_index_delta"),
};
/// `requests`: ws ‖ request_id → tagged `StoredRequest`.
pub const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests");
/// `ws ‖ applied_at (8 bytes, order-preserving) ‖ request_id` → (): expiry order of
/// `requests`, so pruning costs O(expired), not O(stored).
pub const REQUEST_EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("request_expiry");

/// `counters`: ws ‖ counter name → u64 big-endian (`feed_seq`: the last event's
/// sequence number; `campaign_id`: the last campaign number given out).
pub const COUNTERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("counters");
/// `campaigns`: ws ‖ campaign number (4 bytes) → tagged `StoredCampaign`.
pub const CAMPAIGNS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("campaigns");
/// `campaign_names`: ws ‖ name → campaign number (4 bytes).
pub const CAMPAIGN_NAMES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("campaign_names");
/// `memberships`: ws ‖ contact id (8) ‖ campaign number (4) → priority (4) ‖ join
/// number (8): the campaigns of a contact.
pub const MEMBERSHIPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("memberships");
/// `campaign_pick`: ws ‖ campaign number (4) ‖ priority (4) ‖ join number (8) →
/// contact id (8): a campaign's members in pick order.
pub const CAMPAIGN_PICK: TableDefinition<&[u8], &[u8]> = TableDefinition::new("campaign_pick");
/// `feed`: ws ‖ first sequence number (8) → tagged `StoredEvents`: the events of
/// one write transaction, numbered consecutively from the key's.
pub const FEED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feed");
/// `feed_consumers`: ws ‖ consumer name → acknowledged sequence number (8).
pub const FEED_CONSUMERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feed_consumers");
/// `jobs`: ws ‖ job number (8) → tagged `StoredJob`.
pub const JOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jobs");
/// `job_data`: ws ‖ job number (8) ‖ kind (1) ‖ rest → bytes: what a running job
/// keeps between its chunks (see `job.rs`), deleted when it ends.
pub const JOB_DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("job_data");
/// `api_keys`: SHA-256 of the token (32 bytes) → tagged `StoredApiKey`.
pub const API_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("api_keys");
/// `job_ids`: 16 UUID bytes → ws ‖ job number (8).
pub const JOB_IDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("job_ids");

/// The 64-bit hash of an indexed value (email or gsm text): FNV-1a 64 over the
/// UTF-8 bytes, then the `fmix64` finalizer of MurmurHash3 so that every output bit
/// depends on every input bit. Part of the on-disk format (docs/format.md): never
/// change it within a format version.
pub fn value_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finalizer: every output bit depends on every input bit.
/// Part of [`value_hash`], so of the on-disk format.
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// An i64 as 8 big-endian bytes that sort like the numbers (sign bit flipped).
pub fn ordered_i64(v: i64) -> [u8; 8] {
    (u64::from_ne_bytes(v.to_ne_bytes()) ^ (1 << 63)).to_be_bytes()
}

/// `ws ‖ ordered_i64(applied_at_us) ‖ request_id`, the key of a `request_expiry` entry.
pub fn expiry_key(ws: u32, applied_at_us: i64, request_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + request_id.len());
    k.extend_from_slice(&ws_bytes(ws));
    k.extend_from_slice(&ordered_i64(applied_at_us));
    k.extend_from_slice(request_id.as_bytes());
    k
}

/// `meta` key of the format version.
pub const META_FORMAT_VERSION: &str = "format_version";
/// `meta` key of the next workspace number.
pub const META_NEXT_WORKSPACE: &str = "next_workspace";

/// The 4-byte prefix of workspace `ws`.
pub fn ws_bytes(ws: u32) -> [u8; 4] {
    ws.to_be_bytes()
}

/// The workspace number of a 4-byte value, if it is 4 bytes.
pub fn ws_from_bytes(b: &[u8]) -> Option<u32> {
    let arr: [u8; 4] = b.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

/// `ws ‖ rest`.
pub fn ws_key(ws: u32, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + rest.len());
    k.extend_from_slice(&ws_bytes(ws));
    k.extend_from_slice(rest);
    k
}

/// `ws ‖ n` with `n` as 8 big-endian bytes: a `contacts` key (n = id) and the
/// prefix of an index key (n = value hash).
fn ws_u64(ws: u32, n: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    let (w, i) = k.split_at_mut(4);
    w.copy_from_slice(&ws_bytes(ws));
    i.copy_from_slice(&n.to_be_bytes());
    k
}

/// `(ws, n)` of a `ws ‖ n` key; `None` unless it is 12 bytes.
fn split_ws_u64(key: &[u8]) -> Option<(u32, u64)> {
    let (ws, n) = split_ws(key)?;
    Some((ws, u64::from_be_bytes(n.try_into().ok()?)))
}

/// `ws ‖ n` with `n` as 8 big-endian bytes (a `feed` key, a `jobs` key).
pub fn ws_seq(ws: u32, n: u64) -> [u8; 12] {
    ws_u64(ws, n)
}

/// A u64 of 8 big-endian bytes.
pub fn u64_from(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// A u32 of 4 big-endian bytes.
pub fn u32_from(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

/// `ws ‖ id`, the key of a `contacts` entry.
pub fn contact_key(ws: u32, id: u64) -> [u8; 12] {
    ws_u64(ws, id)
}

/// `(ws, id)` of a `contacts` key; `None` unless it is 12 bytes.
pub fn split_contact_key(key: &[u8]) -> Option<(u32, u64)> {
    split_ws_u64(key)
}

/// `ws ‖ value_hash(value)`, the prefix of every index entry for `value`.
pub fn index_prefix(ws: u32, value: &str) -> [u8; 12] {
    ws_u64(ws, value_hash(value))
}

/// `ws ‖ value_hash(value) ‖ id`, the key of an index entry.
pub fn index_key(ws: u32, value: &str, id: u64) -> [u8; 20] {
    index_key_at(index_prefix(ws, value), id)
}

/// `prefix ‖ id`: the key of an index entry under `prefix` (an [`index_prefix`]).
pub fn index_key_at(prefix: [u8; 12], id: u64) -> [u8; 20] {
    let mut k = [0u8; 20];
    let (p, i) = k.split_at_mut(12);
    p.copy_from_slice(&prefix);
    i.copy_from_slice(&id.to_be_bytes());
    k
}

/// `(ws, hash, id)` of an index key; `None` unless it is 20 bytes.
pub fn split_index(key: &[u8]) -> Option<(u32, u64, u64)> {
    let (prefix, id) = key.split_at_checked(12)?;
    let (ws, hash) = split_ws_u64(prefix)?;
    Some((ws, hash, u64::from_be_bytes(id.try_into().ok()?)))
}

/// Splits a workspace-scoped key into `(ws, rest)`; `None` when shorter than 4 bytes.
pub fn split_ws(key: &[u8]) -> Option<(u32, &[u8])> {
    let (ws, rest) = key.split_at_checked(4)?;
    Some((ws_from_bytes(ws)?, rest))
}

/// The smallest byte string greater than every string starting with `prefix`;
/// `None` when there is none (the prefix is all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The key range of every key starting with `prefix`, as owned bounds.
pub fn prefix_range(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let upper = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), upper)
}

/// Borrows owned bounds as `&[u8]` bounds for `range`.
pub fn as_slices(r: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    fn b(x: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        match x {
            Bound::Included(v) => Bound::Included(v.as_slice()),
            Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }
    (b(&r.0), b(&r.1))
}

/// A readable rendering of a workspace-scoped key for problem reports.
pub fn show_key(key: &[u8]) -> String {
    match split_ws(key) {
        Some((ws, rest)) => format!("{ws}:{}", show_bytes(rest)),
        None => format!("?:{}", show_bytes(key)),
    }
}

/// Bytes as text, non-printable characters escaped.
pub fn show_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(b).escape_debug().to_string()
}

/// Parses a UUID written as 32 hex digits, with or without the hyphens of the
/// `8-4-4-4-12` form (any case), optionally in braces or with a `urn:uuid:` prefix.
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    uuid::Uuid::try_parse(text.trim())
        .ok()
        .map(|u| *u.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    #[test]
    fn index_keys_split() {
        let k = index_key(3, "a@b.co", 77);
        assert_eq!(split_index(&k), Some((3, value_hash("a@b.co"), 77)));
        assert!(k.starts_with(&index_prefix(3, "a@b.co")));
        assert_eq!(split_index(&[0, 0, 0]), None);
        assert_eq!(split_index(&k[..19]), None);
        assert_eq!(split_contact_key(&contact_key(9, 5)), Some((9, 5)));
        assert_eq!(split_contact_key(&[0; 11]), None);
        // Ids sort numerically within a workspace.
        assert!(contact_key(1, 255) < contact_key(1, 256));
    }

    #[test]
    fn value_hash_is_fixed() {
        // Part of the on-disk format: these values must never change. Reference
        // values computed independently (Python, from the definition in format.md).
        assert_eq!(value_hash(""), 0xefd0_1f60_ba99_2926);
        assert_eq!(value_hash("a@x.io"), 0xbaf9_d1e8_97bd_d4af);
        assert_eq!(value_hash("+905551234567"), 0xc077_e4ae_926d_faae);
    }

    #[test]
    fn workspace_order_is_numeric() {
        assert!(ws_key(1, b"zzz") < ws_key(2, b""));
        assert!(ws_key(255, b"") < ws_key(256, b""));
    }

    #[test]
    fn uuids_parse() {
        let want = [
            0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f,
            0xe0, 0xc8,
        ];
        assert_eq!(
            parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            Some(want)
        );
        assert_eq!(parse_uuid("67E5504410B1426F9247BB680E5FE0C8"), Some(want));
        assert_eq!(
            parse_uuid("{67e55044-10b1-426f-9247-bb680e5fe0c8}"),
            Some(want)
        );
        assert_eq!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c"), None);
        assert_eq!(parse_uuid("67e5504410b1-426f-9247-bb680e5fe0c8-"), None);
        assert_eq!(parse_uuid("g7e5504410b1426f9247bb680e5fe0c8"), None);
        assert_eq!(parse_uuid("é7e5504410b1426f9247bb680e5fe0c"), None);
        assert_eq!(parse_uuid(""), None);
    }
}
