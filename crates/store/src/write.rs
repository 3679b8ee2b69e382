//! Write access: [`WriteView`] wraps the one redb write transaction and derives every
//! primary, alias and index write from the difference between committed and final
//! contacts.

use ahash::AHashMap;
use contactdb_backend::{
    Indexed, LookupValues, Prefetched, StoredRequest, WorkspaceId, WorkspaceInfo, distinct_sorted,
};
use contactdb_merge::{ContactWrite, Stored};
use contactdb_policy::limits::CUSTOM_COLUMNS_MAX;
use contactdb_policy::workspace::valid_slug;
use contactdb_policy::{ColumnSpec, Contact, CustomColumn, FieldId};
use std::sync::Arc;

use rayon::prelude::*;

use redb::{ReadableTable, WriteTransaction};

use crate::StoreError;
use crate::codec::{self, StoredColumn, StoredWorkspace};
use crate::filter::{FilterCell, TableFilter};
use crate::guard::{Poison, guarded};
use crate::keys::{self, as_slices, prefix_range, ws_bytes, ws_key};
use crate::read::{check_named, index_id};
use crate::tiered::{self, Plain, Tiered, WriteOpened};

/// The one write transaction. Dropping it without [`WriteView::commit`]
/// aborts every change made through it.
pub struct WriteView {
    pub(crate) txn: WriteTransaction,
    /// `StoreOptions::min_delta`: tunes when tiered tables merge their delta.
    min_delta: u64,
    /// The store's lookup filters: every key this transaction puts into a tiered
    /// table is added to the current ones before it commits.
    filters: Arc<FilterCell>,
    /// Whether this transaction wrote to a tiered table (then no filter may be
    /// built from the committed snapshot until it ends: it would lack those keys).
    wrote: bool,
    /// The store's poison flag (see the `guard` module).
    pub(crate) poison: Arc<Poison>,
    /// Contact writes applied but not yet in their tables (see [`Pending`]).
    pending: Pending,
    /// The bytes of pending writes above which `apply` writes them out.
    pending_max: usize,
}

impl std::fmt::Debug for WriteView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteView").finish_non_exhaustive()
    }
}

/// The writes to one tiered table: those of one apply (removals to be applied
/// before insertions), gathered into [`PendingTiered`]; or, taken from it, one
/// final operation per key, written sorted by key.
struct TieredWrites<V> {
    removes: Vec<Vec<u8>>,
    puts: Vec<(Vec<u8>, V)>,
}

impl<V> Default for TieredWrites<V> {
    fn default() -> Self {
        TieredWrites {
            removes: Vec::new(),
            puts: Vec::new(),
        }
    }
}

impl<V: Plain> TieredWrites<V> {
    /// Sorts both lists (their keys are distinct: one pending operation per key),
    /// writes them (adding what it puts to `filter`), and, with `merge`, merges
    /// levels as [`tiered::decide`] says.
    fn apply(
        mut self,
        txn: &WriteTransaction,
        t: &Tiered<V>,
        merge: Option<u64>,
        filter: Option<&TableFilter>,
    ) -> Result<(), StoreError> {
        self.removes.sort_unstable();
        self.puts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        {
            let mut t = t.open_write(txn)?;
            tiered::write(&mut t, &self.removes, &self.puts, filter)?;
        }
        if let Some(min_delta) = merge {
            tiered::compact(txn, t, min_delta)?;
        }
        Ok(())
    }
}

/// What a pending entry costs beyond its key and value bytes: its slot in the
/// map, the vector headers and the allocator's rounding (a heap profile of a 1M
/// upsert measured about this).
const ENTRY_COST: usize = 96;

/// The final operation on one key of a tiered table among a transaction's
/// pending writes.
#[derive(Clone, Copy)]
struct Op<V> {
    /// `Some` puts the value, `None` removes the key.
    value: Option<V>,
    /// Whether the table is known to hold the key (the first pending operation on
    /// it was a removal, and callers only remove present keys); when not, a final
    /// removal first looks whether there is anything to remove.
    held: bool,
}

/// The pending writes of one tiered table: the last operation on each key.
struct PendingTiered<V> {
    ops: AHashMap<Vec<u8>, Op<V>>,
}

impl<V> Default for PendingTiered<V> {
    fn default() -> Self {
        PendingTiered {
            ops: AHashMap::new(),
        }
    }
}

impl<V: Plain> PendingTiered<V> {
    /// Adds one apply's writes (its removals come before its insertions); returns
    /// the bytes added.
    fn add(&mut self, w: TieredWrites<V>) -> usize {
        let mut bytes = 0;
        let ops = w
            .removes
            .into_iter()
            .map(|k| (k, None))
            .chain(w.puts.into_iter().map(|(k, v)| (k, Some(v))));
        for (k, value) in ops {
            bytes += k.len() + ENTRY_COST;
            self.ops
                .entry(k)
                .and_modify(|op| op.value = value)
                .or_insert(Op {
                    value,
                    held: value.is_none(),
                });
        }
        bytes
    }

    /// The final operation on `key`, if any is pending.
    fn get(&self, key: &[u8]) -> Option<Option<V>> {
        self.ops.get(key).map(|op| op.value)
    }

    /// Takes the pending writes as removals and insertions of `t`, dropping the
    /// removal of a key `t` does not hold (put and removed again before it was
    /// written).
    fn take(
        &mut self,
        txn: &WriteTransaction,
        t: &Tiered<V>,
    ) -> Result<TieredWrites<V>, StoreError> {
        let mut out = TieredWrites::default();
        let mut unsure: Vec<Vec<u8>> = Vec::new();
        for (k, op) in self.ops.drain() {
            match op.value {
                Some(v) => out.puts.push((k, v)),
                None if op.held => out.removes.push(k),
                None => unsure.push(k),
            }
        }
        if !unsure.is_empty() {
            let opened = t.open_write(txn)?;
            for k in unsure {
                if opened.get(&k, None)?.is_some() {
                    out.removes.push(k);
                }
            }
        }
        Ok(out)
    }
}

/// Contact writes applied in this transaction but not yet written to their
/// tables: the last encoded record of each contact and the last operation on each
/// key of the tiered tables. Written sorted, each table once, when they take
/// more memory than the page cache's size (counted as [`ENTRY_COST`] per entry
/// plus its bytes) and at commit, so that several applies in one
/// transaction (a group of requests committed together) dirty each page once and
/// merge the tiered tables once. Reads of these tables through the transaction
/// look here first ([`WriteView::contact_id`]) or write them out first.
#[derive(Default)]
struct Pending {
    rows: AHashMap<[u8; 12], Vec<u8>>,
    idents: PendingTiered<u64>,
    emails: PendingTiered<()>,
    phones: PendingTiered<()>,
    /// The ids with a pending email and phone index operation, by value hash:
    /// built by the first own lookup of emails or phones (see
    /// [`WriteView::lookup_own`]), then kept up to date until the next write-out.
    by_hash: Option<Box<[ByHash; 2]>>,
    /// What the entries cost (see [`ENTRY_COST`]); 0 exactly when there are none.
    bytes: usize,
}

/// Contact ids by the value hash (the first 12 bytes of an index key) of the
/// index entries they have a pending operation on: how a transaction's own lookup
/// finds the pending operations on one value's entries without a scan.
type ByHash = AHashMap<[u8; 12], Vec<u64>>;

/// What a [`ByHash`] entry costs beyond its ids: the hash, the vector header, its
/// slot in the map and the allocator's rounding of its first allocation.
const BY_HASH_ENTRY_COST: usize = 80;

/// Adds the ids of the index keys `keys` to `by`; returns the bytes added.
fn note_ids<'k>(by: &mut ByHash, keys: impl Iterator<Item = &'k Vec<u8>>) -> usize {
    let mut bytes = 0;
    for k in keys {
        if let (Some(hash), Some((_, _, id))) = (
            k.get(..12).and_then(|p| <[u8; 12]>::try_from(p).ok()),
            keys::split_index(k),
        ) {
            let ids = by.entry(hash).or_insert_with(|| {
                bytes += BY_HASH_ENTRY_COST;
                Vec::new()
            });
            ids.push(id);
            bytes += size_of::<u64>();
        }
    }
    bytes
}

/// The keys `w` removes and puts.
fn index_keys(w: &TieredWrites<()>) -> impl Iterator<Item = &Vec<u8>> {
    w.removes.iter().chain(w.puts.iter().map(|(k, ())| k))
}

/// One contact write with the internal id of its contact.
struct Placed<'a> {
    id: u64,
    write: &'a ContactWrite,
}

/// A `contacts` entry: `ws ‖ id` and the encoded record.
type Row = ([u8; 12], Vec<u8>);

/// Writes of the `contacts` table and the `identifiers` tiered table.
fn primary_writes(
    w: u32,
    placed: &[Placed<'_>],
) -> Result<(Vec<Row>, TieredWrites<u64>), StoreError> {
    let mut rows = Vec::with_capacity(placed.len());
    let mut idents = TieredWrites::default();
    for p in placed {
        let a = &p.write.after;
        rows.push((keys::contact_key(w, p.id), codec::encode_contact(a)?));
        let b: Option<&Contact> = p.write.before.as_ref().map(|b| &b.contact);
        let key_changed = b.is_some_and(|b| b.key != a.key);
        if let Some(b) = b {
            if key_changed {
                idents.removes.push(ws_key(w, b.key.as_bytes()));
            }
            for alias in &b.aliases {
                if !a.aliases.contains(alias) {
                    idents.removes.push(ws_key(w, alias.as_bytes()));
                }
            }
        }
        if b.is_none() || key_changed {
            idents.puts.push((ws_key(w, a.key.as_bytes()), p.id));
        }
        // The id does not change on a rekey, so kept aliases keep pointing to it.
        for alias in &a.aliases {
            if !b.is_some_and(|b| b.aliases.contains(alias)) {
                idents.puts.push((ws_key(w, alias.as_bytes()), p.id));
            }
        }
    }
    Ok((rows, idents))
}

/// The internal id of stored contact `b` of workspace `w`. Read from this
/// workspace's committed state (the snapshot the plan was made from), it comes
/// with its id; debug builds (every test) check that id against `identifiers`
/// (as this transaction sees it) all the same. Without one, its key's identifier
/// entry gives it.
fn stored_id(
    idents: &WriteOpened<'_, u64>,
    pending: &PendingTiered<u64>,
    w: u32,
    b: &Stored,
) -> Result<u64, StoreError> {
    if let Some(id) = b.id
        && !cfg!(debug_assertions)
    {
        return Ok(id);
    }
    let key = &b.contact.key;
    let found = ident_id(idents, pending, w, key)?.ok_or_else(|| {
        StoreError::corrupt(
            "identifiers",
            format!("no entry for the stored contact key {key:?}"),
        )
    })?;
    if let Some(hint) = b.id
        && hint != found
    {
        return Err(StoreError::corrupt(
            "identifiers",
            format!(
                "contact {key:?} was read at id {:?} but its key names id {found}",
                Some(hint)
            ),
        ));
    }
    Ok(found)
}

/// The id `key` (a contact key or alias of workspace `w`) names, as the
/// transaction sees it: its pending writes first, then the table.
fn ident_id(
    idents: &WriteOpened<'_, u64>,
    pending: &PendingTiered<u64>,
    w: u32,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    let k = ws_key(w, key.as_bytes());
    match pending.get(&k) {
        Some(op) => Ok(op),
        None => idents.get(k.as_slice(), None),
    }
}

/// Adds the index writes of one contact for one indexed field; nothing is written
/// when the value's hash (and so the entry) is unchanged.
fn index_diff(
    w: u32,
    id: u64,
    before: Option<&str>,
    after: Option<&str>,
    out: &mut TieredWrites<()>,
) {
    let before = before.map(|v| keys::index_key(w, v, id));
    let after = after.map(|v| keys::index_key(w, v, id));
    if before == after {
        return;
    }
    if let Some(k) = before {
        out.removes.push(k.to_vec());
    }
    if let Some(k) = after {
        out.puts.push((k.to_vec(), ()));
    }
}

/// Writes of the email and phone index tables.
fn index_writes(w: u32, placed: &[Placed<'_>]) -> (TieredWrites<()>, TieredWrites<()>) {
    let mut emails = TieredWrites::default();
    let mut phones = TieredWrites::default();
    for p in placed {
        let a = &p.write.after;
        let b: Option<&Contact> = p.write.before.as_ref().map(|b| &b.contact);
        index_diff(w, p.id, b.and_then(Contact::email), a.email(), &mut emails);
        index_diff(w, p.id, b.and_then(Contact::gsm), a.gsm(), &mut phones);
    }
    (emails, phones)
}

impl WriteView {
    pub(crate) fn new(
        txn: WriteTransaction,
        min_delta: u64,
        pending_max: usize,
        filters: Arc<FilterCell>,
        poison: Arc<Poison>,
    ) -> Self {
        WriteView {
            txn,
            min_delta,
            filters,
            wrote: false,
            poison,
            pending: Pending::default(),
            pending_max,
        }
    }

    /// Whether this view keeps `cell` up to date (it belongs to that store).
    pub(crate) fn feeds(&self, cell: &Arc<FilterCell>) -> bool {
        Arc::ptr_eq(&self.filters, cell)
    }

    /// The id `key` names in workspace `w`, as this transaction sees it (see
    /// [`ident_id`]).
    pub(crate) fn ident_id(
        &self,
        idents: &WriteOpened<'_, u64>,
        w: u32,
        key: &str,
    ) -> Result<Option<u64>, StoreError> {
        ident_id(idents, &self.pending.idents, w, key)
    }

    /// Whether this transaction wrote to a tiered table.
    pub(crate) fn wrote_tiered(&self) -> bool {
        self.wrote
    }

    /// Creates every table of the format (opening a table in a write transaction
    /// creates it).
    pub(crate) fn init_tables(&self) -> Result<(), StoreError> {
        self.txn.open_table(keys::META)?;
        self.txn.open_table(keys::WORKSPACES)?;
        self.txn.open_table(keys::WORKSPACE_SLUGS)?;
        self.txn.open_table(keys::WORKSPACE_UUIDS)?;
        self.txn.open_table(keys::COLUMNS)?;
        self.txn.open_table(keys::CONTACTS)?;
        for t in [&keys::EMAIL_INDEX, &keys::PHONE_INDEX] {
            t.open_write(&self.txn)?;
        }
        keys::IDENTIFIERS.open_write(&self.txn)?;
        self.txn.open_table(keys::REQUESTS)?;
        self.txn.open_table(keys::REQUEST_EXPIRY)?;
        for t in [
            keys::COUNTERS,
            keys::CAMPAIGNS,
            keys::CAMPAIGN_NAMES,
            keys::MEMBERSHIPS,
            keys::CAMPAIGN_PICK,
            keys::FEED,
            keys::FEED_CONSUMERS,
            keys::JOBS,
            keys::JOB_IDS,
            keys::JOB_DATA,
            keys::API_KEYS,
        ] {
            self.txn.open_table(t)?;
        }
        Ok(())
    }

    /// Sets a u32 (big-endian) entry of `meta`.
    pub(crate) fn set_meta_u32(&mut self, key: &str, value: u32) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(keys::META)?;
        t.insert(key, value.to_be_bytes().as_slice())?;
        Ok(())
    }

    fn meta_u32(&self, key: &str) -> Result<u32, StoreError> {
        let t = self.txn.open_table(keys::META)?;
        let v = t
            .get(key)?
            .ok_or_else(|| StoreError::corrupt("meta", format!("{key} is missing")))?;
        keys::ws_from_bytes(v.value()).ok_or_else(|| {
            StoreError::corrupt("meta", format!("{key} is not a 4-byte big-endian number"))
        })
    }

    fn load_workspace(&self, ws: WorkspaceId) -> Result<StoredWorkspace, StoreError> {
        let t = self.txn.open_table(keys::WORKSPACES)?;
        crate::load_workspace(&t, ws.0)?.ok_or(StoreError::UnknownWorkspace(ws))
    }

    /// Fails with [`StoreError::UnknownWorkspace`] unless `ws` exists.
    pub(crate) fn require_workspace_pub(&self, ws: WorkspaceId) -> Result<(), StoreError> {
        self.require_workspace(ws)
    }

    fn require_workspace(&self, ws: WorkspaceId) -> Result<(), StoreError> {
        let t = self.txn.open_table(keys::WORKSPACES)?;
        if t.get(ws_bytes(ws.0).as_slice())?.is_none() {
            return Err(StoreError::UnknownWorkspace(ws));
        }
        Ok(())
    }

    /// Creates a workspace. The slug must match `[a-z0-9][a-z0-9-]{0,62}` and
    /// be free; the UUID must be free too.
    pub fn create_workspace(
        &mut self,
        slug: &str,
        uuid: [u8; 16],
        now_us: i64,
    ) -> Result<WorkspaceInfo, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            if !valid_slug(slug) {
                return Err(StoreError::InvalidSlug {
                    slug: slug.to_owned(),
                });
            }
            {
                let slugs = self.txn.open_table(keys::WORKSPACE_SLUGS)?;
                if slugs.get(slug.as_bytes())?.is_some() {
                    return Err(StoreError::WorkspaceExists {
                        slug: slug.to_owned(),
                    });
                }
                let uuids = self.txn.open_table(keys::WORKSPACE_UUIDS)?;
                if uuids.get(uuid.as_slice())?.is_some() {
                    return Err(StoreError::WorkspaceExists {
                        slug: uuid_text(&uuid),
                    });
                }
            }
            let ws = self.meta_u32(keys::META_NEXT_WORKSPACE)?;
            let next = ws
                .checked_add(1)
                .ok_or_else(|| StoreError::corrupt("meta", "next_workspace is exhausted"))?;
            let record = StoredWorkspace {
                slug: slug.to_owned(),
                uuid,
                created_at_us: now_us,
                next_field_id: FieldId::CUSTOM_FIRST,
                contacts: 0,
                next_contact_id: 1,
            };
            let number = ws_bytes(ws);
            self.txn.open_table(keys::WORKSPACES)?.insert(
                number.as_slice(),
                codec::encode_workspace(&record)?.as_slice(),
            )?;
            self.txn
                .open_table(keys::WORKSPACE_SLUGS)?
                .insert(slug.as_bytes(), number.as_slice())?;
            self.txn
                .open_table(keys::WORKSPACE_UUIDS)?
                .insert(uuid.as_slice(), number.as_slice())?;
            self.set_meta_u32(keys::META_NEXT_WORKSPACE, next)?;
            Ok(crate::read::workspace_info(ws, record))
        })
    }

    /// Declares or redeclares a custom column of `ws`.
    ///
    /// A new name gets the workspace's next field id (from
    /// [`FieldId::CUSTOM_FIRST`], never reused); at most
    /// [`CUSTOM_COLUMNS_MAX`] columns per workspace. An existing name with the same
    /// type (including a string's `max_len`) updates `import_enabled` and
    /// `required`; with another type it is refused with
    /// [`StoreError::ColumnInUse`] while any contact of `ws` has a value for it.
    pub fn declare_column(
        &mut self,
        ws: WorkspaceId,
        spec: &ColumnSpec,
    ) -> Result<CustomColumn, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            spec.validate()
                .map_err(|message| StoreError::ColumnInvalid { message })?;
            let mut workspace = self.load_workspace(ws)?;
            let key = ws_key(ws.0, spec.name.as_bytes());
            let (ty, max_len) = codec::column_type_to_stored(spec.ty);
            let existing = {
                let t = self.txn.open_table(keys::COLUMNS)?;
                match t.get(key.as_slice())? {
                    Some(v) => Some(codec::decode_column(v.value())?),
                    None => None,
                }
            };
            let id = match existing {
                Some(old) => {
                    if (old.ty, old.max_len) != (ty, max_len)
                        && self.field_in_use(ws, FieldId(old.id))?
                    {
                        return Err(StoreError::ColumnInUse {
                            name: spec.name.clone(),
                        });
                    }
                    old.id
                }
                None => {
                    let count = {
                        let t = self.txn.open_table(keys::COLUMNS)?;
                        let range = prefix_range(&ws_bytes(ws.0));
                        let mut n = 0usize;
                        for entry in t.range::<&[u8]>(as_slices(&range))? {
                            entry?;
                            n += 1;
                        }
                        n
                    };
                    if count >= CUSTOM_COLUMNS_MAX {
                        return Err(StoreError::TooManyColumns);
                    }
                    let id = workspace.next_field_id.max(FieldId::CUSTOM_FIRST);
                    workspace.next_field_id =
                        id.checked_add(1).ok_or(StoreError::TooManyColumns)?;
                    self.txn.open_table(keys::WORKSPACES)?.insert(
                        ws_bytes(ws.0).as_slice(),
                        codec::encode_workspace(&workspace)?.as_slice(),
                    )?;
                    id
                }
            };
            let record = StoredColumn {
                id,
                ty,
                max_len,
                import_enabled: spec.import_enabled,
                required: spec.required,
            };
            self.txn
                .open_table(keys::COLUMNS)?
                .insert(key.as_slice(), codec::encode_column(&record)?.as_slice())?;
            Ok(CustomColumn {
                id: FieldId(id),
                spec: spec.clone(),
            })
        })
    }

    /// Whether any contact of `ws` has a value for `field` (a full scan, after
    /// writing the pending contacts out).
    fn field_in_use(&mut self, ws: WorkspaceId, field: FieldId) -> Result<bool, StoreError> {
        self.flush(false)?;
        let t = self.txn.open_table(keys::CONTACTS)?;
        let range = prefix_range(&ws_bytes(ws.0));
        for entry in t.range::<&[u8]>(as_slices(&range))? {
            let (_, v) = entry?;
            if codec::decode_contact(v.value())?.fields.contains(field) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes the final state of every contact a request changed (see
    /// [`ContactWrite`]). Every removal (old keys, dropped aliases, stale index
    /// entries) is applied before any insertion, so renames, chains and swaps
    /// between the writes of one call are safe. Unchanged index entries are not
    /// rewritten. New contacts get the workspace's next internal ids, in the order
    /// of `writes`. A `before` contact's id is taken from its [`Stored::id`] when
    /// set (it was read through a view of this store's committed state), else
    /// looked up by its key. Returns the internal id of each write's contact, in
    /// the order of `writes`.
    pub fn apply(
        &mut self,
        ws: WorkspaceId,
        writes: &[ContactWrite],
    ) -> Result<Vec<u64>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let mut record = self.load_workspace(ws)?;
            let placed = self.place(ws.0, &mut record, writes)?;
            if placed.iter().any(|p| p.write.before.is_none()) {
                self.txn.open_table(keys::WORKSPACES)?.insert(
                    ws_bytes(ws.0).as_slice(),
                    codec::encode_workspace(&record)?.as_slice(),
                )?;
            }
            // Set before any tiered write: from here on no filter may be built from the
            // committed snapshot while this transaction lives.
            self.wrote = true;
            let (rows, idents) = primary_writes(ws.0, &placed)?;
            let (emails, phones) = index_writes(ws.0, &placed);
            let ids = placed.iter().map(|p| p.id).collect();
            let p = &mut self.pending;
            for (k, v) in rows {
                p.bytes += k.len() + v.len() + ENTRY_COST;
                p.rows.insert(k, v);
            }
            if let Some([e, g]) = p.by_hash.as_deref_mut() {
                p.bytes += note_ids(e, index_keys(&emails));
                p.bytes += note_ids(g, index_keys(&phones));
            }
            p.bytes += p.idents.add(idents) + p.emails.add(emails) + p.phones.add(phones);
            if p.bytes > self.pending_max {
                self.flush(false)?;
            }
            Ok(ids)
        })
    }

    /// The internal id of each write's contact: a stored contact's own (see
    /// [`stored_id`]); for a new one the workspace's next id, which
    /// `record` counts.
    fn place<'a>(
        &self,
        w: u32,
        record: &mut StoredWorkspace,
        writes: &'a [ContactWrite],
    ) -> Result<Vec<Placed<'a>>, StoreError> {
        let idents = keys::IDENTIFIERS.open_write(&self.txn)?;
        let mut placed = Vec::with_capacity(writes.len());
        for cw in writes {
            let id = match &cw.before {
                Some(b) => stored_id(&idents, &self.pending.idents, w, b)?,
                None => {
                    let id = record.next_contact_id.max(1);
                    record.next_contact_id = id.checked_add(1).ok_or_else(|| {
                        StoreError::corrupt("workspaces", "contact ids exhausted")
                    })?;
                    record.contacts = record.contacts.saturating_add(1);
                    id
                }
            };
            placed.push(Placed { id, write: cw });
        }
        Ok(placed)
    }

    /// Writes the pending contact writes to their tables, sorted; with `merge` (at
    /// commit) also merges the tiered tables' levels as their sizes then call for.
    /// A flush before the commit (the pending writes outgrew `pending_max`) leaves
    /// the levels as they are: the pages it dirties stay this transaction's until
    /// the commit writes them once, so a merge there would only rewrite the table
    /// merged into again at the next one (the levels bound what each *commit*
    /// rewrites). The primary side
    /// (contacts + identifiers) and the index side (email + phone) touch disjoint
    /// tables, so they are written on two threads inside the one write transaction
    /// (redb's WriteTransaction is Sync). rayon's pool keeps its threads: a thread
    /// spawned per write would leave its allocator heap behind each time
    /// (mimalloc abandons thread heaps at exit; a 1M-row import's peak RSS was
    /// ~300 MiB that way, ~265 MiB without).
    pub(crate) fn flush(&mut self, merge: bool) -> Result<(), StoreError> {
        // At the commit the levels are merged also when nothing is pending: an
        // earlier write-out of this transaction may have filled the deltas.
        if self.pending.bytes == 0 && !(merge && self.wrote) {
            return Ok(());
        }
        // No filter may be built from the committed snapshot once a tiered table
        // is written (it would lack these keys).
        debug_assert!(self.wrote, "tiered writes before `wrote` was set");
        let mut p = std::mem::take(&mut self.pending);
        let txn = &self.txn;
        let mut rows: Vec<([u8; 12], Vec<u8>)> = p.rows.into_iter().collect();
        rows.sort_unstable_by_key(|r| r.0);
        let idents = p.idents.take(txn, &keys::IDENTIFIERS)?;
        let emails = p.emails.take(txn, &keys::EMAIL_INDEX)?;
        let phones = p.phones.take(txn, &keys::PHONE_INDEX)?;
        let merge = merge.then_some(self.min_delta);
        let filters = self.filters.current();
        let filters = filters.as_deref();
        let (primary, indexes) = rayon::join(
            || -> Result<(), StoreError> {
                {
                    let mut contacts = txn.open_table(keys::CONTACTS)?;
                    for (k, v) in &rows {
                        contacts.insert(k.as_slice(), v.as_slice())?;
                    }
                }
                idents.apply(txn, &keys::IDENTIFIERS, merge, filters.map(|f| &f.idents))
            },
            || -> Result<(), StoreError> {
                emails.apply(txn, &keys::EMAIL_INDEX, merge, filters.map(|f| &f.emails))?;
                phones.apply(txn, &keys::PHONE_INDEX, merge, filters.map(|f| &f.phones))
            },
        );
        primary.and(indexes)
    }

    /// Whether contacts were written through this transaction: a lookup of the
    /// committed snapshot no longer sees everything it holds.
    pub(crate) fn applied(&self) -> bool {
        self.wrote
    }

    /// The contacts `values` name in workspace `ws` as this transaction sees them,
    /// its own writes included: what a request applied after others in one
    /// transaction is planned against: the tables as changed by the pending writes,
    /// read from several threads (the values, then the contacts they name).
    pub(crate) fn lookup_own(
        &mut self,
        ws: WorkspaceId,
        values: &LookupValues,
    ) -> Result<Prefetched, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let p = &mut self.pending;
            let by_values = !values.emails.is_empty()
                || !values.phones.is_empty()
                || !values.if_unnamed.is_empty();
            if by_values
                && p.by_hash.is_none()
                && (!p.emails.ops.is_empty() || !p.phones.ops.is_empty())
            {
                let mut by: [ByHash; 2] = Default::default();
                p.bytes += note_ids(&mut by[0], p.emails.ops.keys());
                p.bytes += note_ids(&mut by[1], p.phones.ops.keys());
                p.by_hash = Some(Box::new(by));
            }
            let (w, txn, pending) = (ws.0, &self.txn, &self.pending);
            let no_ids = ByHash::new();
            let [email_ids, phone_ids] = match pending.by_hash.as_deref() {
                Some([e, g]) => [e, g],
                None => [&no_ids, &no_ids],
            };
            let filters = self.filters.current();
            let filters = filters.as_deref();
            // redb's tables are `Sync`: one of each, read from every thread.
            let ident_t = keys::IDENTIFIERS.open_write(txn)?;
            let email_t = keys::EMAIL_INDEX.open_write(txn)?;
            let phone_t = keys::PHONE_INDEX.open_write(txn)?;
            let contacts = txn.open_table(keys::CONTACTS)?;
            let idents = distinct_sorted(&values.identifiers);
            let f = filters.map(|f| &f.idents);
            let named: Vec<Option<u64>> = idents
                .par_iter()
                .map(|i| {
                    let k = ws_key(w, i.as_bytes());
                    match pending.idents.get(&k) {
                        Some(op) => Ok(op),
                        None => ident_t.get(k.as_slice(), f),
                    }
                })
                .collect::<Result<_, StoreError>>()?;
            let (emails, phones) = values.emails_and_phones(|k| {
                idents
                    .binary_search(&k)
                    .is_ok_and(|i| named.get(i).is_some_and(Option::is_some))
            });
            let emails = holders(
                (&email_t, "email_index"),
                &pending.emails,
                email_ids,
                filters.map(|f| &f.emails),
                w,
                &emails,
            )?;
            let phones = holders(
                (&phone_t, "phone_index"),
                &pending.phones,
                phone_ids,
                filters.map(|f| &f.phones),
                w,
                &phones,
            )?;
            let mut ids: Vec<u64> = named.iter().flatten().copied().collect();
            ids.extend(
                emails
                    .iter()
                    .chain(&phones)
                    .flat_map(|(_, ids)| ids.iter().copied()),
            );
            ids.sort_unstable();
            ids.dedup();
            let found: Vec<Contact> = ids
                .par_iter()
                .map(|&id| {
                    let k = keys::contact_key(w, id);
                    match pending.rows.get(&k) {
                        Some(v) => codec::decode_contact(v),
                        None => match contacts.get(k.as_slice())? {
                            Some(v) => codec::decode_contact(v.value()),
                            None => Err(StoreError::corrupt(
                                "identifiers",
                                format!("an entry points to missing contact id {id}"),
                            )),
                        },
                    }
                })
                .collect::<Result<_, StoreError>>()?;
            let mut out = Prefetched::default();
            for (id, c) in ids.into_iter().zip(found) {
                out.add_contact(id, c);
            }
            for (ident, id) in idents.into_iter().zip(named) {
                if let Some(id) = id
                    && let Some(c) = out.contact(id)
                {
                    check_named(ident, id, c)?;
                }
                out.name(ident.to_owned(), id);
            }
            for (field, found) in [(Indexed::Email, emails), (Indexed::Phone, phones)] {
                for (value, mut ids) in found {
                    // Entries are keyed by the value's hash: keep the true holders.
                    ids.retain(|id| out.contact(*id).and_then(|c| field.of(c)) == Some(value));
                    out.found(field, value.to_owned(), ids);
                }
            }
            Ok(out)
        })
    }

    /// Records that `request_id` was applied in `ws`, replacing an earlier
    /// (expired) entry of the same id.
    pub fn put_request(
        &mut self,
        ws: WorkspaceId,
        request_id: &str,
        req: &StoredRequest,
    ) -> Result<(), StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.require_workspace(ws)?;
            let value = codec::encode_request(&codec::StoredRequestV1 {
                body_hash: req.body_hash,
                applied_at_us: req.applied_at_us,
                report_json: req.report_json.clone(),
            })?;
            let key = ws_key(ws.0, request_id.as_bytes());
            let mut requests = self.txn.open_table(keys::REQUESTS)?;
            let mut expiry = self.txn.open_table(keys::REQUEST_EXPIRY)?;
            let old = requests.insert(key.as_slice(), value.as_slice())?;
            if let Some(old) = old {
                let old_at = codec::decode_request(old.value())?.applied_at_us;
                expiry.remove(keys::expiry_key(ws.0, old_at, request_id).as_slice())?;
            }
            expiry.insert(
                keys::expiry_key(ws.0, req.applied_at_us, request_id).as_slice(),
                (),
            )?;
            Ok(())
        })
    }

    /// Removes the request ids of `ws` applied strictly before `applied_before_us`;
    /// returns how many were removed. Walks only the expired entries of the
    /// `request_expiry` table.
    pub fn prune_requests(
        &mut self,
        ws: WorkspaceId,
        applied_before_us: i64,
    ) -> Result<u64, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.require_workspace(ws)?;
            let mut requests = self.txn.open_table(keys::REQUESTS)?;
            let mut expiry = self.txn.open_table(keys::REQUEST_EXPIRY)?;
            let lower = ws_bytes(ws.0).to_vec();
            let mut upper = lower.clone();
            upper.extend_from_slice(&keys::ordered_i64(applied_before_us));
            let mut expired: Vec<Vec<u8>> = Vec::new();
            for entry in expiry.range::<&[u8]>(lower.as_slice()..upper.as_slice())? {
                let (k, _) = entry?;
                expired.push(k.value().to_vec());
            }
            for k in &expired {
                expiry.remove(k.as_slice())?;
                let id = k.get(12..).unwrap_or_default();
                requests.remove(ws_key(ws.0, id).as_slice())?;
            }
            Ok(u64::try_from(expired.len()).unwrap_or(u64::MAX))
        })
    }

    /// Commits every change made through this view, durably.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let poison = Arc::clone(&self.poison);
        guarded(&poison, move || {
            self.flush(true)?;
            self.txn.commit()?;
            Ok(())
        })
    }
}

/// For each distinct value of `values`: the ids of the entries of index `t`
/// under its hash, as the transaction sees them: the table's, changed by the
/// `pending` operations on keys under that hash (found through `by_hash`):
/// candidates, to be checked against the contacts.
fn holders<'v>(
    (t, name): (&WriteOpened<'_, ()>, &'static str),
    pending: &PendingTiered<()>,
    by_hash: &ByHash,
    filter: Option<&TableFilter>,
    w: u32,
    values: &'v [&str],
) -> Result<Vec<(&'v str, Vec<u64>)>, StoreError> {
    distinct_sorted(values)
        .into_par_iter()
        .map(|v| {
            let prefix = keys::index_prefix(w, v);
            let entries = t.prefixed(&prefix, filter)?;
            let mut ids = entries
                .iter()
                .map(|(k, ())| index_id(k, name))
                .collect::<Result<Vec<u64>, StoreError>>()?;
            for &id in by_hash.get(&prefix).into_iter().flatten() {
                if let Some(op) = pending.get(&keys::index_key_at(prefix, id)) {
                    ids.retain(|x| *x != id);
                    if op.is_some() {
                        ids.push(id);
                    }
                }
            }
            Ok((v, ids))
        })
        .collect()
}

/// A UUID in hyphenated lower-case text.
fn uuid_text(u: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*u).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use contactdb_backend::Wait;
    use contactdb_merge::ContactWrite;
    use redb::ReadableTableMetadata;

    use crate::test_support::{contact, default_ws};
    use crate::{Store, StoreOptions, keys};

    fn insert(n: usize) -> ContactWrite {
        let (key, email, gsm) = (
            format!("c{n:04}"),
            format!("c{n}@x.io"),
            format!("+1555{n:07}"),
        );
        ContactWrite {
            before: None,
            after: contact(&key, &email, &gsm, &[]),
        }
    }

    /// (base, mid, delta) entries of the identifiers table, as `view` sees them.
    fn idents(view: &super::WriteView) -> (u64, u64, u64) {
        let t = keys::IDENTIFIERS.open_write(&view.txn).unwrap();
        (
            t.base.len().unwrap(),
            t.mid.len().unwrap(),
            t.delta.len().unwrap(),
        )
    }

    // A flush of pending writes before the commit (they outgrew the cache) puts
    // them into the deltas and merges nothing, however far past its threshold a
    // delta is; the commit merges as the levels' sizes say.
    #[test]
    fn levels_merge_at_commit_not_at_earlier_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            cache_size_bytes: 4096,
            min_delta: 1,
            filter_slack_min: 3,
        };
        let store = Store::open(&dir.path().join("t.redb"), &opts).unwrap();
        let ws = default_ws(&store);
        let mut view = store.begin_write(Wait::Block).unwrap();
        for chunk in 0..10 {
            let writes: Vec<ContactWrite> = (chunk * 20..chunk * 20 + 20).map(insert).collect();
            view.apply(ws, &writes).unwrap();
        }
        // 200 contacts take far more than 4 KiB pending: flushed along the way.
        let (base, mid, delta) = idents(&view);
        assert_eq!((base, mid), (0, 0), "no merge before the commit");
        assert!(delta > 100, "flushed into the delta: {delta}");
        view.commit().unwrap();
        let view = store.begin_write(Wait::Block).unwrap();
        let (base, mid, delta) = idents(&view);
        assert_eq!((base, mid, delta), (200, 0, 0), "merged at the commit");
        drop(view);
        assert!(store.check().unwrap().is_empty());
    }

    /// What `lookup_own` answers for `key`, `email` and `gsm`: the key named, and
    /// the keys holding the email and the phone.
    fn own(
        view: &mut super::WriteView,
        ws: contactdb_backend::WorkspaceId,
        key: &str,
        email: &str,
        gsm: &str,
    ) -> (Option<String>, Vec<String>, Vec<String>) {
        use contactdb_merge::Lookup;
        let values = contactdb_backend::LookupValues {
            identifiers: vec![key.to_owned()],
            emails: vec![email.to_owned()],
            phones: vec![gsm.to_owned()],
            if_unnamed: Vec::new(),
        };
        let found = view.lookup_own(ws, &values).unwrap();
        (
            found.by_identifier(key).unwrap().map(|s| s.contact.key),
            found.keys_by_email(email).unwrap(),
            found.keys_by_phone(gsm).unwrap(),
        )
    }

    // A write transaction's own lookup sees its writes whether they are still
    // pending or were written out to the tables (and, for the tables, merged
    // levels of earlier commits): an insert, then a rekey that keeps the old key
    // as an alias and changes the email.
    #[test]
    fn own_lookup_sees_pending_and_written_out_writes() {
        for cache_size_bytes in [1 << 20, 256] {
            let dir = tempfile::tempdir().unwrap();
            let opts = StoreOptions {
                cache_size_bytes,
                min_delta: 1,
                filter_slack_min: 3,
            };
            let store = Store::open(&dir.path().join("t.redb"), &opts).unwrap();
            let ws = default_ws(&store);
            let mut view = store.begin_write(Wait::Block).unwrap();
            view.apply(ws, &(0..5).map(insert).collect::<Vec<_>>())
                .unwrap();
            view.commit().unwrap();

            let mut view = store.begin_write(Wait::Block).unwrap();
            let (key, email, gsm) = ("c0009", "c9@x.io", "+15550000009");
            assert_eq!(own(&mut view, ws, key, email, gsm), (None, vec![], vec![]));
            let ins = insert(9);
            view.apply(ws, std::slice::from_ref(&ins)).unwrap();
            let k = vec![key.to_owned()];
            let all = (Some(key.to_owned()), k.clone(), k.clone());
            assert_eq!(own(&mut view, ws, key, email, gsm), all);
            let stored = view.lookup_own(
                ws,
                &contactdb_backend::LookupValues {
                    identifiers: k.clone(),
                    ..Default::default()
                },
            );
            let before = contactdb_merge::Lookup::by_identifier(&stored.unwrap(), key)
                .unwrap()
                .unwrap();
            let rekeyed = ContactWrite {
                before: Some(before),
                after: contact("n9", "new@x.io", gsm, &[key]),
            };
            view.apply(ws, &[rekeyed]).unwrap();
            let n = vec!["n9".to_owned()];
            assert_eq!(
                own(&mut view, ws, key, email, gsm),
                (Some("n9".to_owned()), vec![], n.clone())
            );
            assert_eq!(
                own(&mut view, ws, "n9", "new@x.io", gsm),
                (Some("n9".to_owned()), n.clone(), n.clone())
            );
            // Contacts of earlier commits still answer.
            let c1 = vec!["c0001".to_owned()];
            assert_eq!(
                own(&mut view, ws, "c0001", "c1@x.io", "+15550000001"),
                (Some("c0001".to_owned()), c1.clone(), c1)
            );
            view.commit().unwrap();
            assert!(store.check().unwrap().is_empty());
        }
    }
}
