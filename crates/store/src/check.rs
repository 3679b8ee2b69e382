//! The integrity walk behind `Store::check`: every table read in one transaction,
//! every cross-table invariant verified, every violation reported.

use std::collections::{BTreeMap, BTreeSet};

use contactdb_policy::Contact;
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};

use crate::keys::{self, show_bytes, show_key, split_index, split_ws, ws_bytes, ws_key};
use crate::{FORMAT_VERSION, Problem, StoreError, codec};

type Bytes = ReadOnlyTable<&'static [u8], &'static [u8]>;
type Index = ReadOnlyTable<&'static [u8], ()>;

struct Walk {
    problems: Vec<Problem>,
}

impl Walk {
    fn report(&mut self, table: &'static str, key: String, message: impl Into<String>) {
        self.problems.push(Problem {
            table,
            key,
            message: message.into(),
        });
    }
}

/// What a lookup of a contact by its full table key found.
enum Found {
    /// No such contact.
    Missing,
    /// The contact.
    Contact(Contact),
    /// A contact that does not decode (reported by the contacts walk).
    Undecodable,
}

/// Looks a contact up by its full table key; `Err` only for storage failures.
fn contact_at(contacts: &Bytes, full_key: &[u8]) -> Result<Found, StoreError> {
    let Some(v) = contacts.get(full_key)? else {
        return Ok(Found::Missing);
    };
    let key = String::from_utf8_lossy(full_key.get(4..).unwrap_or_default()).into_owned();
    Ok(match codec::decode_contact(&key, v.value()) {
        Ok(c) => Found::Contact(c),
        Err(_) => Found::Undecodable,
    })
}

/// Checks that every entry of a lookup table (`workspace_slugs`, `workspace_uuids`)
/// names a workspace whose record carries that entry's key (`matches`).
fn check_workspace_map(
    walk: &mut Walk,
    table: &'static str,
    map: &Bytes,
    workspaces: &Bytes,
    what: &str,
    matches: impl Fn(&codec::StoredWorkspace, &[u8]) -> bool,
) -> Result<(), StoreError> {
    for entry in map.iter()? {
        let (k, v) = entry?;
        let ok = match keys::ws_from_bytes(v.value()) {
            Some(ws) => match workspaces.get(ws_bytes(ws).as_slice())? {
                Some(rec) => {
                    codec::decode_workspace(rec.value()).is_ok_and(|w| matches(&w, k.value()))
                }
                None => false,
            },
            None => false,
        };
        if !ok {
            walk.report(
                table,
                show_bytes(k.value()),
                format!("does not name a workspace with this {what}"),
            );
        }
    }
    Ok(())
}

/// Runs every check; storage errors abort the walk, data problems are collected.
pub(crate) fn check(rtx: &ReadTransaction) -> Result<Vec<Problem>, StoreError> {
    let mut walk = Walk {
        problems: Vec::new(),
    };

    // meta
    let meta = rtx.open_table(keys::META)?;
    let meta_u32 = |name: &str| -> Result<Option<Option<u32>>, StoreError> {
        Ok(meta.get(name)?.map(|v| keys::ws_from_bytes(v.value())))
    };
    match meta_u32(keys::META_FORMAT_VERSION)? {
        None => walk.report("meta", keys::META_FORMAT_VERSION.into(), "missing"),
        Some(None) => walk.report(
            "meta",
            keys::META_FORMAT_VERSION.into(),
            "not a 4-byte big-endian number",
        ),
        Some(Some(v)) if v != FORMAT_VERSION => walk.report(
            "meta",
            keys::META_FORMAT_VERSION.into(),
            format!("format version {v}, expected {FORMAT_VERSION}"),
        ),
        Some(Some(_)) => {}
    }
    let next_workspace = match meta_u32(keys::META_NEXT_WORKSPACE)? {
        Some(Some(v)) => Some(v),
        None => {
            walk.report("meta", keys::META_NEXT_WORKSPACE.into(), "missing");
            None
        }
        Some(None) => {
            walk.report(
                "meta",
                keys::META_NEXT_WORKSPACE.into(),
                "not a 4-byte big-endian number",
            );
            None
        }
    };

    // workspaces and their name tables
    let workspaces: Bytes = rtx.open_table(keys::WORKSPACES)?;
    let slugs: Bytes = rtx.open_table(keys::WORKSPACE_SLUGS)?;
    let uuids: Bytes = rtx.open_table(keys::WORKSPACE_UUIDS)?;
    // ws → next_field_id of every decodable workspace
    let mut known: BTreeMap<u32, u16> = BTreeMap::new();
    // Each workspace's stored contact counter, checked against the contacts walk.
    let mut counters: BTreeMap<u32, u64> = BTreeMap::new();
    for entry in workspaces.iter()? {
        let (k, v) = entry?;
        let shown = show_bytes(k.value());
        let Some(ws) = keys::ws_from_bytes(k.value()) else {
            walk.report("workspaces", shown, "key is not 4 bytes");
            continue;
        };
        let w = match codec::decode_workspace(v.value()) {
            Ok(w) => w,
            Err(e) => {
                walk.report("workspaces", ws.to_string(), e.to_string());
                continue;
            }
        };
        known.insert(ws, w.next_field_id);
        counters.insert(ws, w.contacts);
        if next_workspace.is_some_and(|n| ws >= n) {
            walk.report(
                "workspaces",
                ws.to_string(),
                "workspace number is not below meta.next_workspace",
            );
        }
        if !keys::valid_slug(&w.slug) {
            walk.report(
                "workspaces",
                ws.to_string(),
                format!("invalid slug {:?}", w.slug),
            );
        }
        let number = ws_bytes(ws);
        if slugs.get(w.slug.as_bytes())?.map(|v| v.value().to_vec()) != Some(number.to_vec()) {
            walk.report(
                "workspace_slugs",
                w.slug.clone(),
                format!("slug of workspace {ws} does not map back to it"),
            );
        }
        if uuids.get(w.uuid.as_slice())?.map(|v| v.value().to_vec()) != Some(number.to_vec()) {
            walk.report(
                "workspace_uuids",
                show_bytes(&w.uuid),
                format!("uuid of workspace {ws} does not map back to it"),
            );
        }
    }
    check_workspace_map(
        &mut walk,
        "workspace_slugs",
        &slugs,
        &workspaces,
        "slug",
        |w, k| w.slug.as_bytes() == k,
    )?;
    check_workspace_map(
        &mut walk,
        "workspace_uuids",
        &uuids,
        &workspaces,
        "uuid",
        |w, k| w.uuid.as_slice() == k,
    )?;

    // columns
    let columns: Bytes = rtx.open_table(keys::COLUMNS)?;
    let mut ids: BTreeSet<(u32, u16)> = BTreeSet::new();
    for entry in columns.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, name)) = split_ws(k.value()) else {
            walk.report("columns", shown, "key is shorter than 4 bytes");
            continue;
        };
        let Some(next_field_id) = known.get(&ws).copied() else {
            walk.report("columns", shown, format!("workspace {ws} does not exist"));
            continue;
        };
        match crate::read::column_from_entry(name, v.value()) {
            Err(e) => walk.report("columns", shown, e.to_string()),
            Ok(c) => {
                if let Err(e) = c.spec.validate() {
                    walk.report("columns", shown.clone(), e);
                }
                if c.id.0 < contactdb_policy::FieldId::CUSTOM_FIRST || c.id.0 >= next_field_id {
                    walk.report(
                        "columns",
                        shown.clone(),
                        format!("field id {} outside the workspace's assigned ids", c.id.0),
                    );
                }
                if !ids.insert((ws, c.id.0)) {
                    walk.report(
                        "columns",
                        shown,
                        format!("field id {} used by two columns", c.id.0),
                    );
                }
            }
        }
    }

    // contacts, each against its aliases and index entries
    let contacts: Bytes = rtx.open_table(keys::CONTACTS)?;
    let aliases: Bytes = rtx.open_table(keys::ALIASES)?;
    let emails: Index = rtx.open_table(keys::EMAIL_INDEX)?;
    let phones: Index = rtx.open_table(keys::PHONE_INDEX)?;
    let mut counted: BTreeMap<u32, u64> = BTreeMap::new();
    for entry in contacts.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, key)) = split_ws(k.value()) else {
            walk.report("contacts", shown, "key is shorter than 4 bytes");
            continue;
        };
        *counted.entry(ws).or_default() += 1;
        if !known.contains_key(&ws) {
            walk.report(
                "contacts",
                shown.clone(),
                format!("workspace {ws} does not exist"),
            );
        }
        let Ok(key) = std::str::from_utf8(key) else {
            walk.report("contacts", shown, "contact key is not UTF-8");
            continue;
        };
        let c = match codec::decode_contact(key, v.value()) {
            Ok(c) => c,
            Err(e) => {
                walk.report("contacts", shown, e.to_string());
                continue;
            }
        };
        if let Some(email) = c.email()
            && emails
                .get(keys::index_key(ws, email, key).as_slice())?
                .is_none()
        {
            walk.report(
                "email_index",
                shown.clone(),
                format!("no index entry for the contact's email {email:?}"),
            );
        }
        if let Some(gsm) = c.gsm()
            && phones
                .get(keys::index_key(ws, gsm, key).as_slice())?
                .is_none()
        {
            walk.report(
                "phone_index",
                shown.clone(),
                format!("no index entry for the contact's gsm {gsm:?}"),
            );
        }
        for alias in &c.aliases {
            let target = aliases
                .get(ws_key(ws, alias.as_bytes()).as_slice())?
                .map(|t| t.value().to_vec());
            if target.as_deref() != Some(key.as_bytes()) {
                walk.report(
                    "aliases",
                    shown.clone(),
                    format!("the contact's alias {alias:?} has no alias entry pointing to it"),
                );
            }
        }
    }

    // aliases, each against its contact
    for entry in aliases.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, alias)) = split_ws(k.value()) else {
            walk.report("aliases", shown, "key is shorter than 4 bytes");
            continue;
        };
        if contacts.get(k.value())?.is_some() {
            walk.report(
                "aliases",
                shown.clone(),
                "the string is both a contact key and an alias",
            );
        }
        match contact_at(&contacts, &ws_key(ws, v.value()))? {
            Found::Missing => walk.report(
                "aliases",
                shown,
                format!("points to missing contact {:?}", show_bytes(v.value())),
            ),
            Found::Contact(c) => {
                if !c.aliases.iter().any(|a| a.as_bytes() == alias) {
                    walk.report(
                        "aliases",
                        shown,
                        format!("not listed in the aliases of contact {:?}", c.key),
                    );
                }
            }
            Found::Undecodable => {}
        }
    }

    for (ws, stored) in &counters {
        let actual = counted.get(ws).copied().unwrap_or(0);
        if *stored != actual {
            walk.report(
                "workspaces",
                ws.to_string(),
                format!("contact counter is {stored}, the workspace has {actual} contacts"),
            );
        }
    }

    // email and phone indexes, each entry against its contact
    check_index(&mut walk, "email_index", &emails, &contacts, Contact::email)?;
    check_index(&mut walk, "phone_index", &phones, &contacts, Contact::gsm)?;

    // requests
    let requests: Bytes = rtx.open_table(keys::REQUESTS)?;
    let expiry = rtx.open_table(keys::REQUEST_EXPIRY)?;
    for entry in requests.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        match split_ws(k.value()) {
            None => walk.report("requests", shown, "key is shorter than 4 bytes"),
            Some((ws, _)) => {
                if !known.contains_key(&ws) {
                    walk.report(
                        "requests",
                        shown.clone(),
                        format!("workspace {ws} does not exist"),
                    );
                }
                match codec::decode_request(v.value()) {
                    Err(e) => walk.report("requests", shown, e.to_string()),
                    Ok(r) => {
                        let id = k.value().get(4..).unwrap_or_default();
                        let mut ek = ws_bytes(ws).to_vec();
                        ek.extend_from_slice(&keys::ordered_i64(r.applied_at_us));
                        ek.extend_from_slice(id);
                        if expiry.get(ek.as_slice())?.is_none() {
                            walk.report(
                                "requests",
                                shown,
                                "no request_expiry entry for its applied_at",
                            );
                        }
                    }
                }
            }
        }
    }

    // request_expiry: every entry names a stored request applied at that time
    for entry in expiry.iter()? {
        let (k, _) = entry?;
        let key = k.value();
        let shown = show_key(key);
        let (Some(ws), Some(at), Some(id)) = (
            key.get(..4).and_then(keys::ws_from_bytes),
            key.get(4..12),
            key.get(12..),
        ) else {
            walk.report("request_expiry", shown, "key is shorter than 12 bytes");
            continue;
        };
        let stored = requests.get(ws_key(ws, id).as_slice())?;
        let matches = stored
            .and_then(|v| codec::decode_request(v.value()).ok())
            .is_some_and(|r| keys::ordered_i64(r.applied_at_us) == at);
        if !matches {
            walk.report(
                "request_expiry",
                shown,
                "no stored request applied at this time",
            );
        }
    }

    Ok(walk.problems)
}

fn check_index(
    walk: &mut Walk,
    name: &'static str,
    index: &Index,
    contacts: &Bytes,
    field: fn(&Contact) -> Option<&str>,
) -> Result<(), StoreError> {
    for entry in index.iter()? {
        let (k, _) = entry?;
        let shown = show_key(k.value());
        let Some((ws, value, key)) = split_index(k.value()) else {
            walk.report(name, shown, "key has no 0x00 separator");
            continue;
        };
        match contact_at(contacts, &ws_key(ws, key))? {
            Found::Missing => walk.report(
                name,
                shown,
                format!("points to missing contact {:?}", show_bytes(key)),
            ),
            Found::Contact(c) => {
                if field(&c).map(str::as_bytes) != Some(value) {
                    walk.report(
                        name,
                        shown,
                        format!(
                            "contact {:?} has {:?}, not the indexed {:?}",
                            c.key,
                            field(&c).unwrap_or(""),
                            show_bytes(value)
                        ),
                    );
                }
            }
            Found::Undecodable => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
}
