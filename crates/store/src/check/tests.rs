//! Unit tests of `check`.

use contactdb_merge::ContactWrite;
use contactdb_policy::{FieldId, Fields, Value};
use redb::ReadableDatabase;

use super::*;
use crate::{Store, StoreOptions, Wait, WorkspaceId};

fn contact(key: &str, email: &str, gsm: &str, aliases: &[&str]) -> Contact {
    Contact {
        key: key.into(),
        fields: Fields::from_pairs([
            (FieldId::EMAIL, Value::Str(email.into())),
            (FieldId::GSM, Value::Str(gsm.into())),
        ]),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        version: 1,
        created_at_us: 0,
        updated_at_us: 0,
    }
}

fn setup() -> (tempfile::TempDir, Store, WorkspaceId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("db"),
        &StoreOptions {
            cache_size_bytes: 1 << 20,
        },
    )
    .unwrap();
    let ws = store
        .read()
        .unwrap()
        .workspace("default")
        .unwrap()
        .unwrap()
        .id;
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

#[test]
fn stray_index_entry_is_reported() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut idx = t.open_table(keys::EMAIL_INDEX).unwrap();
        // An entry for a contact that does not exist, and one whose contact has
        // another email.
        idx.insert(keys::index_key(ws.0, "z@x.io", "nobody").as_slice(), ())
            .unwrap();
        idx.insert(keys::index_key(ws.0, "z@x.io", "b").as_slice(), ())
            .unwrap();
    });
    let problems = store.check().unwrap();
    assert_eq!(
        tables(&problems),
        vec!["email_index", "email_index"],
        "{problems:#?}"
    );
    // Key order: "z@x.io\0b" before "z@x.io\0nobody".
    assert!(problems[0].message.contains("b@x.io"), "{problems:#?}");
    assert!(
        problems[1].message.contains("missing contact"),
        "{problems:#?}"
    );
}

#[test]
fn missing_index_entry_is_reported() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut idx = t.open_table(keys::PHONE_INDEX).unwrap();
        idx.remove(keys::index_key(ws.0, "+1000002", "b").as_slice())
            .unwrap();
    });
    let problems = store.check().unwrap();
    assert_eq!(tables(&problems), vec!["phone_index"], "{problems:#?}");
    assert!(problems[0].message.contains("+1000002"));
    // The lookup no longer finds it: that is what check() guards against.
    let v = store.read().unwrap().contacts(ws).unwrap();
    assert!(v.keys_by_phone("+1000002").unwrap().is_empty());
}

#[test]
fn alias_problems_are_reported() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut al = t.open_table(keys::ALIASES).unwrap();
        // Points to a missing contact.
        al.insert(ws_key(ws.0, b"ghost").as_slice(), b"nobody".as_slice())
            .unwrap();
        // Points to b, which does not list it.
        al.insert(ws_key(ws.0, b"unlisted").as_slice(), b"b".as_slice())
            .unwrap();
        // Both a key and an alias.
        al.insert(ws_key(ws.0, b"b").as_slice(), b"a".as_slice())
            .unwrap();
        // a lists a1, whose entry disappears.
        al.remove(ws_key(ws.0, b"a1").as_slice()).unwrap();
    });
    let problems = store.check().unwrap();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(problems.iter().all(|p| p.table == "aliases"), "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("a1") && t.contains("no alias entry")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("ghost") && t.contains("missing contact")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("unlisted") && t.contains("not listed")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|t| t.contains(":b]") && t.contains("both")),
        "{text:#?}"
    );
    // "b" as an alias of a is also not listed in a's aliases.
    assert_eq!(problems.len(), 5, "{text:#?}");
    // A dangling alias is an error on lookup, not a wrong answer.
    let v = store.read().unwrap().contacts(ws).unwrap();
    assert!(matches!(
        v.resolve("ghost"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn undecodable_contact_is_reported_and_is_an_error_on_read() {
    let (_d, store, ws) = setup();
    raw(&store, |t| {
        let mut c = t.open_table(keys::CONTACTS).unwrap();
        c.insert(
            ws_key(ws.0, b"b").as_slice(),
            [0x01u8, 0xff, 0xff].as_slice(),
        )
        .unwrap();
        c.insert(ws_key(ws.0, b"c").as_slice(), [0x66u8].as_slice())
            .unwrap();
    });
    let problems = store.check().unwrap();
    let contacts: Vec<_> = problems.iter().filter(|p| p.table == "contacts").collect();
    assert_eq!(contacts.len(), 2, "{problems:#?}");
    assert!(contacts[1].message.contains("0x66"));
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
