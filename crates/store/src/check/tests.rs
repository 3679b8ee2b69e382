//! Unit tests of `check`.

use contactdb_merge::ContactWrite;

use super::*;
use crate::test_support::{contact, default_ws};
use crate::{Store, StoreOptions, Wait, WorkspaceId};

fn setup() -> (tempfile::TempDir, Store, WorkspaceId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("db"),
        &StoreOptions {
            cache_size_bytes: 1 << 20,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let ws = default_ws(&store);
    let mut w = store.begin_write(Wait::Block).unwrap();
    w.apply(
        ws,
        &[
            ContactWrite {
                before: None,
                after: contact("a", "a@x.io", "+1000001", &["a1"]),
            },
            ContactWrite {
                before: None,
                after: contact("b", "b@x.io", "+1000002", &[]),
            },
        ],
    )
    .unwrap();
    w.commit().unwrap();
    assert_eq!(store.check().unwrap(), vec![]);
    (dir, store, ws)
}

/// Runs `f` on a raw write transaction and commits it.
fn raw(store: &Store, f: impl FnOnce(&redb::WriteTransaction)) {
    let t = store.db.begin_write().unwrap();
    f(&t);
    t.commit().unwrap();
}

fn tables(problems: &[Problem]) -> Vec<&'static str> {
    problems.iter().map(|p| p.table).collect()
}

/// Removes `key` from both parts of a tiered table.
fn remove_everywhere<V: crate::tiered::Plain>(
    t: &redb::WriteTransaction,
    tiered: &crate::tiered::Tiered<V>,
    key: &[u8],
) {
    t.open_table(tiered.base).unwrap().remove(key).unwrap();
    t.open_table(tiered.delta).unwrap().remove(key).unwrap();
}

// setup() gives contact "a" id 1 and "b" id 2.

#[test]
fn stray_index_entry_is_reported() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut idx = t.open_table(keys::EMAIL_INDEX.base).unwrap();
        // An entry for a contact that does not exist, and one whose contact has
        // another email.
        idx.insert(keys::index_key(ws.0, "z@x.io", 99).as_slice(), ())
            .unwrap();
        idx.insert(keys::index_key(ws.0, "z@x.io", 2).as_slice(), ())
            .unwrap();
    });
    let problems = store.check().unwrap();
    assert_eq!(
        tables(&problems),
        vec!["email_index", "email_index"],
        "{problems:#?}"
    );
    // Key order: id 2 before id 99.
    assert!(problems[0].message.contains("b@x.io"), "{problems:#?}");
    assert!(
        problems[1].message.contains("missing contact"),
        "{problems:#?}"
    );
    // A lookup checks every candidate's value, so stray entries give no wrong answer.
    let v = store.read().unwrap().contacts(ws).unwrap();
    assert!(v.keys_by_email("z@x.io").is_err(), "id 99 is missing");
}

#[test]
fn missing_index_entry_is_reported() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        remove_everywhere(t, &keys::PHONE_INDEX, &keys::index_key(ws.0, "+1000002", 2));
    });
    let problems = store.check().unwrap();
    assert_eq!(tables(&problems), vec!["phone_index"], "{problems:#?}");
    assert!(problems[0].message.contains("+1000002"));
    // The lookup no longer finds it: that is what check() guards against.
    let v = store.read().unwrap().contacts(ws).unwrap();
    assert!(v.keys_by_phone("+1000002").unwrap().is_empty());
}

#[test]
fn identifier_problems_are_reported() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut base = t.open_table(keys::IDENTIFIERS.base).unwrap();
        // Points to a missing contact.
        base.insert(ws_key(ws.0, b"ghost").as_slice(), 99).unwrap();
        // Points to b, which does not list it.
        base.insert(ws_key(ws.0, b"unlisted").as_slice(), 2)
            .unwrap();
        drop(base);
        // b's key now names a (the delta shadows whatever the base has).
        let mut delta = t.open_table(keys::IDENTIFIERS.delta).unwrap();
        delta
            .insert(ws_key(ws.0, b"b").as_slice(), Some(1))
            .unwrap();
        drop(delta);
        // a lists a1, whose entry disappears.
        remove_everywhere(t, &keys::IDENTIFIERS, &ws_key(ws.0, b"a1"));
    });
    let problems = store.check().unwrap();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.iter().all(|p| p.table == "identifiers"),
        "{text:#?}"
    );
    let has = |a: &str, b: &str| text.iter().any(|t| t.contains(a) && t.contains(b));
    assert!(has("a1", "no identifier entry"), "{text:#?}");
    assert!(has("ghost", "missing contact"), "{text:#?}");
    assert!(has("unlisted", "neither"), "{text:#?}");
    assert!(has(":b]", "neither"), "{text:#?}");
    assert!(
        has("1:b (id 2)", "key has no identifier entry"),
        "{text:#?}"
    );
    assert_eq!(problems.len(), 5, "{text:#?}");
    // A dangling or misdirected identifier is an error on lookup, not a wrong answer.
    let v = store.read().unwrap().contacts(ws).unwrap();
    assert!(matches!(
        v.resolve("ghost"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        v.resolve("unlisted"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(v.get("b"), Err(StoreError::Corrupt { .. })));
}

/// Puts tombstones for one email index key into `levels` (over a base entry when
/// `in_base`) and checks that `check` reports exactly one problem of the email
/// index, whose message contains `message`.
fn tombstones_report(
    levels: &[redb::TableDefinition<'static, &'static [u8], Option<()>>],
    in_base: bool,
    message: &str,
) {
    let (_d, store, ws) = setup();
    let key = keys::index_key(ws.0, "q@x.io", 1);
    raw(&store, |t| {
        if in_base {
            t.open_table(keys::EMAIL_INDEX.base)
                .unwrap()
                .insert(key.as_slice(), ())
                .unwrap();
        }
        for level in levels {
            t.open_table(*level)
                .unwrap()
                .insert(key.as_slice(), None)
                .unwrap();
        }
    });
    let problems = store.check().unwrap();
    assert_eq!(tables(&problems), vec!["email_index"], "{problems:#?}");
    assert!(problems[0].message.contains(message), "{problems:#?}");
}

#[test]
fn useless_tombstone_is_reported() {
    tombstones_report(&[keys::EMAIL_INDEX.delta], false, "tombstone in the delta");
}

#[test]
fn useless_mid_tombstone_is_reported() {
    tombstones_report(
        &[keys::EMAIL_INDEX.mid],
        false,
        "tombstone in the mid table",
    );
}

// A delta tombstone over a mid tombstone hides nothing either: the mid one already
// hid the base entry.
#[test]
fn delta_tombstone_over_a_mid_tombstone_is_reported() {
    let t = keys::EMAIL_INDEX;
    tombstones_report(&[t.mid, t.delta], true, "tombstone in the delta");
}

#[test]
fn undecodable_contact_is_reported_and_is_an_error_on_read() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut c = t.open_table(keys::CONTACTS).unwrap();
        c.insert(
            keys::contact_key(ws.0, 2).as_slice(),
            [0x01u8, 0xff, 0xff].as_slice(),
        )
        .unwrap();
        c.insert(keys::contact_key(ws.0, 3).as_slice(), [0x66u8].as_slice())
            .unwrap();
    });
    let problems = store.check().unwrap();
    let contacts: Vec<_> = problems.iter().filter(|p| p.table == "contacts").collect();
    // id 2 does not decode; id 3 does not decode and was never assigned.
    assert_eq!(contacts.len(), 3, "{problems:#?}");
    assert!(contacts.iter().any(|p| p.message.contains("0x66")));
    assert!(
        contacts
            .iter()
            .any(|p| p.message.contains("never assigned"))
    );
    let v = store.read().unwrap().contacts(ws).unwrap();
    assert!(matches!(
        v.get("b"),
        Err(StoreError::Corrupt {
            table: "contacts",
            ..
        })
    ));
    assert!(v.iter().unwrap().any(|r| r.is_err()));
}

#[test]
fn workspace_and_meta_problems_are_reported() {
    let (_d, store, _ws) = setup();
    raw(&store, |t| {
        let mut s = t.open_table(keys::WORKSPACE_SLUGS).unwrap();
        s.insert(b"phantom".as_slice(), ws_bytes(42).as_slice())
            .unwrap();
        let mut u = t.open_table(keys::WORKSPACE_UUIDS).unwrap();
        u.retain(|_, _| false).unwrap();
        let mut m = t.open_table(keys::META).unwrap();
        m.insert(keys::META_FORMAT_VERSION, [0u8, 0].as_slice())
            .unwrap();
    });
    let problems = store.check().unwrap();
    let mut got = tables(&problems);
    got.sort_unstable();
    assert_eq!(
        got,
        vec!["meta", "workspace_slugs", "workspace_uuids"],
        "{problems:#?}"
    );
}

#[test]
fn contact_counter_is_kept_and_checked() {
    let (_d, store, ws) = setup();
    let count = || store.read().unwrap().contacts(ws).unwrap().count().unwrap();
    assert_eq!(count(), 2);
    assert!(store.check().unwrap().is_empty());
    raw(&store, |t| {
        let mut w = t.open_table(keys::WORKSPACES).unwrap();
        let bytes = w
            .get(ws_bytes(ws.0).as_slice())
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let mut rec = codec::decode_workspace(&bytes).unwrap();
        rec.contacts = 7;
        w.insert(
            ws_bytes(ws.0).as_slice(),
            codec::encode_workspace(&rec).unwrap().as_slice(),
        )
        .unwrap();
    });
    assert_eq!(count(), 7);
    let problems = store.check().unwrap();
    assert_eq!(tables(&problems), vec!["workspaces"], "{problems:#?}");
    assert!(
        problems[0].message.contains("counter is 7"),
        "{problems:#?}"
    );
}

#[test]
fn check_reads_in_one_snapshot() {
    let (_d, store, _ws) = setup();
    // A sanity check that check() works while a write is live.
    let _w = store.begin_write(Wait::No).unwrap();
    assert_eq!(store.check().unwrap(), vec![]);
    let r = store.db.begin_read().unwrap();
    assert!(check(&r).unwrap().is_empty());
}
