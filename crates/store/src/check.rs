//! The integrity walk behind `Store::check`: every table read in one transaction,
//! every cross-table invariant verified, every violation reported.

use std::collections::{BTreeMap, BTreeSet};

use contactdb_policy::Contact;
use contactdb_policy::workspace::valid_slug;
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};

use crate::keys::{self, show_bytes, show_key, split_ws, ws_bytes, ws_key};
use crate::read::Part;
use crate::tiered::Plain;
use crate::{FORMAT_VERSION, Problem, StoreError, codec};

type Bytes = ReadOnlyTable<&'static [u8], &'static [u8]>;

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

/// What a lookup of a contact by its id found.
enum Found {
    /// No such contact.
    Missing,
    /// The contact.
    Contact(Contact),
    /// A contact that does not decode (reported by the contacts walk).
    Undecodable,
}

/// Looks contact `id` of `ws` up; `Err` only for storage failures.
fn contact_at(contacts: &Bytes, ws: u32, id: u64) -> Result<Found, StoreError> {
    let Some(v) = contacts.get(keys::contact_key(ws, id).as_slice())? else {
        return Ok(Found::Missing);
    };
    Ok(match codec::decode_contact(v.value()) {
        Ok(c) => Found::Contact(c),
        Err(_) => Found::Undecodable,
    })
}

/// Reports every tombstone of a tiered table that hides nothing: the writer only
/// stores a tombstone for a key the levels below it hold (a delta tombstone for a
/// key of mid or base, a mid one for a base key).
fn check_tombstones<V: Plain>(
    walk: &mut Walk,
    t: &Part<V>,
    name: &'static str,
) -> Result<(), StoreError> {
    let mut level = |table: &ReadOnlyTable<&'static [u8], Option<V>>,
                     what: &str,
                     hides: &dyn Fn(&[u8]) -> Result<bool, StoreError>|
     -> Result<(), StoreError> {
        for entry in table.iter()? {
            let (k, v) = entry?;
            if v.value().is_none() && !hides(k.value())? {
                walk.report(name, show_key(k.value()), what);
            }
        }
        Ok(())
    };
    level(
        &t.delta,
        "tombstone in the delta hides no entry of the levels below",
        &|k| Ok(t.below_delta(k)?.is_some()),
    )?;
    level(
        &t.mid,
        "tombstone in the mid table hides no entry of the levels below",
        &|k| Ok(t.below_mid(k)?.is_some()),
    )
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
    let next_workspace = check_meta(&mut walk, rtx)?;
    let known = check_workspaces(&mut walk, rtx, next_workspace)?;
    check_columns(&mut walk, rtx, &known)?;
    let t = ContactTables {
        contacts: rtx.open_table(keys::CONTACTS)?,
        idents: keys::IDENTIFIERS.open_read(rtx)?,
        emails: keys::EMAIL_INDEX.open_read(rtx)?,
        phones: keys::PHONE_INDEX.open_read(rtx)?,
    };
    let counted = check_contacts(&mut walk, &t, &known)?;
    check_identifiers(&mut walk, &t)?;
    check_counters(&mut walk, &known, &counted);
    check_index(
        &mut walk,
        "email_index",
        &t.emails,
        &t.contacts,
        Contact::email,
    )?;
    check_index(
        &mut walk,
        "phone_index",
        &t.phones,
        &t.contacts,
        Contact::gsm,
    )?;
    check_tombstones(&mut walk, &t.idents, "identifiers")?;
    check_tombstones(&mut walk, &t.emails, "email_index")?;
    check_tombstones(&mut walk, &t.phones, "phone_index")?;
    check_requests(&mut walk, rtx, &known)?;
    around::check(rtx, &mut walk)?;
    Ok(walk.problems)
}

/// Every decodable workspace record, by number.
type Known = BTreeMap<u32, codec::StoredWorkspace>;

/// The contact tables, opened for the walk.
struct ContactTables {
    contacts: Bytes,
    idents: Part<u64>,
    emails: Part<()>,
    phones: Part<()>,
}

/// Checks `meta`; returns `next_workspace` when it is readable.
fn check_meta(walk: &mut Walk, rtx: &ReadTransaction) -> Result<Option<u32>, StoreError> {
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
    Ok(match meta_u32(keys::META_NEXT_WORKSPACE)? {
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
    })
}

/// Checks the workspace records against `meta.next_workspace` and their name
/// tables (both ways); returns every decodable record.
fn check_workspaces(
    walk: &mut Walk,
    rtx: &ReadTransaction,
    next_workspace: Option<u32>,
) -> Result<Known, StoreError> {
    let workspaces: Bytes = rtx.open_table(keys::WORKSPACES)?;
    let slugs: Bytes = rtx.open_table(keys::WORKSPACE_SLUGS)?;
    let uuids: Bytes = rtx.open_table(keys::WORKSPACE_UUIDS)?;
    let mut known = Known::new();
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
        if next_workspace.is_some_and(|n| ws >= n) {
            walk.report(
                "workspaces",
                ws.to_string(),
                "workspace number is not below meta.next_workspace",
            );
        }
        if !valid_slug(&w.slug) {
            walk.report(
                "workspaces",
                ws.to_string(),
                format!("invalid slug {:?}", w.slug),
            );
        }
        check_names_map_back(walk, ws, &w, &slugs, &uuids)?;
        known.insert(ws, w);
    }
    check_workspace_map(
        walk,
        "workspace_slugs",
        &slugs,
        &workspaces,
        "slug",
        |w, k| w.slug.as_bytes() == k,
    )?;
    check_workspace_map(
        walk,
        "workspace_uuids",
        &uuids,
        &workspaces,
        "uuid",
        |w, k| w.uuid.as_slice() == k,
    )?;
    Ok(known)
}

/// Checks that workspace `ws`'s slug and UUID map back to it.
fn check_names_map_back(
    walk: &mut Walk,
    ws: u32,
    w: &codec::StoredWorkspace,
    slugs: &Bytes,
    uuids: &Bytes,
) -> Result<(), StoreError> {
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
    Ok(())
}

/// Checks every custom column: its workspace exists, its declaration is valid,
/// its field id was assigned by the workspace and is used once.
fn check_columns(walk: &mut Walk, rtx: &ReadTransaction, known: &Known) -> Result<(), StoreError> {
    let columns: Bytes = rtx.open_table(keys::COLUMNS)?;
    let mut ids: BTreeSet<(u32, u16)> = BTreeSet::new();
    for entry in columns.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, name)) = split_ws(k.value()) else {
            walk.report("columns", shown, "key is shorter than 4 bytes");
            continue;
        };
        let Some(next_field_id) = known.get(&ws).map(|w| w.next_field_id) else {
            walk.report("columns", shown, format!("workspace {ws} does not exist"));
            continue;
        };
        let c = match crate::read::column_from_entry(name, v.value()) {
            Ok(c) => c,
            Err(e) => {
                walk.report("columns", shown, e.to_string());
                continue;
            }
        };
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
    Ok(())
}

/// Checks every contact: its workspace exists and assigned its id, it decodes,
/// and its key, aliases and values have their identifier and index entries.
/// Returns the contacts counted per workspace.
fn check_contacts(
    walk: &mut Walk,
    t: &ContactTables,
    known: &Known,
) -> Result<BTreeMap<u32, u64>, StoreError> {
    let mut counted: BTreeMap<u32, u64> = BTreeMap::new();
    for entry in t.contacts.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, id)) = keys::split_contact_key(k.value()) else {
            walk.report("contacts", shown, "key is not 12 bytes");
            continue;
        };
        *counted.entry(ws).or_default() += 1;
        match known.get(&ws) {
            None => walk.report(
                "contacts",
                shown.clone(),
                format!("workspace {ws} does not exist"),
            ),
            Some(w) if id == 0 || id >= w.next_contact_id => walk.report(
                "contacts",
                shown.clone(),
                format!("id {id} was never assigned (next id {})", w.next_contact_id),
            ),
            Some(_) => {}
        }
        match codec::decode_contact(v.value()) {
            Ok(c) => check_contact_entries(walk, t, ws, id, &c)?,
            Err(e) => walk.report("contacts", shown, e.to_string()),
        }
    }
    Ok(counted)
}

/// Checks that contact `id` of `ws` has its index entries and that its key and
/// aliases have identifier entries pointing to it.
fn check_contact_entries(
    walk: &mut Walk,
    t: &ContactTables,
    ws: u32,
    id: u64,
    c: &Contact,
) -> Result<(), StoreError> {
    let shown = format!("{ws}:{} (id {id})", c.key);
    for (table, index, value) in [
        ("email_index", &t.emails, c.email()),
        ("phone_index", &t.phones, c.gsm()),
    ] {
        if let Some(value) = value
            && index.get(&keys::index_key(ws, value, id), None)?.is_none()
        {
            walk.report(
                table,
                shown.clone(),
                format!("no index entry for the contact's value {value:?}"),
            );
        }
    }
    if t.idents.get(&ws_key(ws, c.key.as_bytes()), None)? != Some(id) {
        walk.report(
            "identifiers",
            shown.clone(),
            "the contact's key has no identifier entry pointing to it",
        );
    }
    for alias in &c.aliases {
        if t.idents.get(&ws_key(ws, alias.as_bytes()), None)? != Some(id) {
            walk.report(
                "identifiers",
                shown.clone(),
                format!("the contact's alias {alias:?} has no identifier entry pointing to it"),
            );
        }
    }
    Ok(())
}

/// Checks that every identifier names a contact that has it as key or alias.
fn check_identifiers(walk: &mut Walk, t: &ContactTables) -> Result<(), StoreError> {
    for entry in t.idents.iter()? {
        let (k, id) = entry?;
        let shown = show_key(&k);
        let Some((ws, ident)) = split_ws(&k) else {
            walk.report("identifiers", shown, "key is shorter than 4 bytes");
            continue;
        };
        match contact_at(&t.contacts, ws, id)? {
            Found::Missing => walk.report(
                "identifiers",
                shown,
                format!("points to missing contact id {id}"),
            ),
            Found::Contact(c) => {
                if c.key.as_bytes() != ident && !c.aliases.iter().any(|a| a.as_bytes() == ident) {
                    walk.report(
                        "identifiers",
                        shown,
                        format!(
                            "neither the key nor an alias of contact {:?} (id {id})",
                            c.key
                        ),
                    );
                }
            }
            Found::Undecodable => {}
        }
    }
    Ok(())
}

/// Checks each workspace's contact counter against the contacts counted.
fn check_counters(walk: &mut Walk, known: &Known, counted: &BTreeMap<u32, u64>) {
    for (ws, w) in known {
        let actual = counted.get(ws).copied().unwrap_or(0);
        if w.contacts != actual {
            walk.report(
                "workspaces",
                ws.to_string(),
                format!(
                    "contact counter is {}, the workspace has {actual} contacts",
                    w.contacts
                ),
            );
        }
    }
}

/// Checks `requests` against the workspaces and `request_expiry`, and
/// `request_expiry` against `requests`.
fn check_requests(walk: &mut Walk, rtx: &ReadTransaction, known: &Known) -> Result<(), StoreError> {
    let requests: Bytes = rtx.open_table(keys::REQUESTS)?;
    let expiry = rtx.open_table(keys::REQUEST_EXPIRY)?;
    for entry in requests.iter()? {
        let (k, v) = entry?;
        let shown = show_key(k.value());
        let Some((ws, id)) = split_ws(k.value()) else {
            walk.report("requests", shown, "key is shorter than 4 bytes");
            continue;
        };
        if !known.contains_key(&ws) {
            walk.report(
                "requests",
                shown.clone(),
                format!("workspace {ws} does not exist"),
            );
        }
        let r = match codec::decode_request(v.value()) {
            Ok(r) => r,
            Err(e) => {
                walk.report("requests", shown, e.to_string());
                continue;
            }
        };
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
    check_request_expiry(walk, &requests, &expiry)
}

/// Checks that every `request_expiry` entry names a stored request applied at
/// that time.
fn check_request_expiry(
    walk: &mut Walk,
    requests: &Bytes,
    expiry: &ReadOnlyTable<&'static [u8], ()>,
) -> Result<(), StoreError> {
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
    Ok(())
}

fn check_index(
    walk: &mut Walk,
    name: &'static str,
    index: &Part<()>,
    contacts: &Bytes,
    field: fn(&Contact) -> Option<&str>,
) -> Result<(), StoreError> {
    for entry in index.iter()? {
        let (k, ()) = entry?;
        let shown = show_key(&k);
        let Some((ws, hash, id)) = keys::split_index(&k) else {
            walk.report(name, shown, "key is not 20 bytes");
            continue;
        };
        match contact_at(contacts, ws, id)? {
            Found::Missing => {
                walk.report(name, shown, format!("points to missing contact id {id}"))
            }
            Found::Contact(c) => {
                if field(&c).map(keys::value_hash) != Some(hash) {
                    walk.report(
                        name,
                        shown,
                        format!(
                            "contact {:?} (id {id}) has {:?}, whose hash is not the indexed one",
                            c.key,
                            field(&c).unwrap_or(""),
                        ),
                    );
                }
            }
            Found::Undecodable => {}
        }
    }
    Ok(())
}

mod around;
#[cfg(test)]
mod tests;
