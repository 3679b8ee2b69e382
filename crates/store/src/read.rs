//! Read access: [`ReadView`] (one redb read transaction) and [`ContactsView`] (the
//! contact tables of one workspace, shareable across threads for parallel lookups).

use std::ops::ControlFlow;
use std::sync::Arc;

use contactdb_backend::{Failure, StoredRequest, WorkspaceId, WorkspaceInfo};
use contactdb_merge::Stored;
use contactdb_policy::{ColumnSpec, Contact, CustomColumn, FieldId};
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};

use crate::StoreError;
use crate::codec;
use crate::filter::{Filters, TableFilter};
use crate::guard::{Poison, guarded};
use crate::keys::{self, as_slices, prefix_range, ws_bytes, ws_key};
use crate::tiered;

/// One read transaction: a consistent snapshot of the last committed state.
pub struct ReadView {
    pub(crate) txn: ReadTransaction,
    /// The store's poison flag (see the `guard` module).
    pub(crate) poison: Arc<Poison>,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView").finish_non_exhaustive()
    }
}

/// A byte-keyed table opened for reading.
type Bytes = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The `WorkspaceInfo` of a stored workspace.
pub(crate) fn workspace_info(ws: u32, w: codec::StoredWorkspace) -> WorkspaceInfo {
    WorkspaceInfo {
        id: WorkspaceId(ws),
        slug: w.slug,
        uuid: w.uuid,
        created_at_us: w.created_at_us,
    }
}

/// Decodes a `columns` entry (`ws ‖ name` → record) into a custom column.
pub(crate) fn column_from_entry(name: &[u8], value: &[u8]) -> Result<CustomColumn, StoreError> {
    let c = codec::decode_column(value)?;
    let name = std::str::from_utf8(name)
        .map_err(|_| {
            StoreError::corrupt(
                "columns",
                format!("column name {} is not UTF-8", keys::show_bytes(name)),
            )
        })?
        .to_owned();
    Ok(CustomColumn {
        id: FieldId(c.id),
        spec: ColumnSpec {
            name,
            ty: codec::column_type_from_stored(c.ty, c.max_len)?,
            import_enabled: c.import_enabled,
            required: c.required,
        },
    })
}

/// A read-only table of byte-string keys and values.
pub(crate) type BytesTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// Opens table `def` in `txn`, or `None` when the file has no such table.
pub(crate) fn open_optional<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: redb::TableDefinition<'static, K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl ReadView {
    pub(crate) fn new(txn: ReadTransaction, poison: Arc<Poison>) -> Self {
        ReadView { txn, poison }
    }

    /// Opens table `def`, or `None` when the file has no such table.
    pub(crate) fn open_optional(
        &self,
        def: redb::TableDefinition<'static, &'static [u8], &'static [u8]>,
    ) -> Result<Option<BytesTable>, StoreError> {
        open_optional(&self.txn, def)
    }

    fn workspace_by_number(&self, ws: u32) -> Result<Option<WorkspaceInfo>, StoreError> {
        let t = self.txn.open_table(keys::WORKSPACES)?;
        Ok(crate::load_workspace(&t, ws)?.map(|w| workspace_info(ws, w)))
    }

    /// The workspace with id `ws`, `None` when this database has none.
    pub fn workspace_by_id(&self, ws: WorkspaceId) -> Result<Option<WorkspaceInfo>, StoreError> {
        guarded(&self.poison, || self.workspace_by_number(ws.0))
    }

    /// Fails with [`StoreError::UnknownWorkspace`] unless `ws` exists.
    fn require_workspace(&self, ws: WorkspaceId) -> Result<(), StoreError> {
        let t = self.txn.open_table(keys::WORKSPACES)?;
        if t.get(ws_bytes(ws.0).as_slice())?.is_none() {
            return Err(StoreError::UnknownWorkspace(ws));
        }
        Ok(())
    }

    /// Every workspace, by number.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, StoreError> {
        guarded(&self.poison, || {
            let t = self.txn.open_table(keys::WORKSPACES)?;
            let mut out = Vec::new();
            for entry in t.iter()? {
                let (k, v) = entry?;
                let ws = keys::ws_from_bytes(k.value()).ok_or_else(|| {
                    StoreError::corrupt(
                        "workspaces",
                        format!("key {} is not 4 bytes", keys::show_bytes(k.value())),
                    )
                })?;
                out.push(workspace_info(ws, codec::decode_workspace(v.value())?));
            }
            Ok(out)
        })
    }

    /// The workspace named `slug_or_uuid`: by slug first, then by UUID text
    /// (hyphenated or 32 hex digits, any case). `None` when neither names one.
    pub fn workspace(&self, slug_or_uuid: &str) -> Result<Option<WorkspaceInfo>, StoreError> {
        guarded(&self.poison, || {
            let slugs = self.txn.open_table(keys::WORKSPACE_SLUGS)?;
            let mut number = slugs
                .get(slug_or_uuid.as_bytes())?
                .map(|v| v.value().to_vec());
            if number.is_none()
                && let Some(uuid) = keys::parse_uuid(slug_or_uuid)
            {
                let uuids = self.txn.open_table(keys::WORKSPACE_UUIDS)?;
                number = uuids.get(uuid.as_slice())?.map(|v| v.value().to_vec());
            }
            let Some(number) = number else {
                return Ok(None);
            };
            let ws = keys::ws_from_bytes(&number).ok_or_else(|| {
                StoreError::corrupt(
                    "workspace_slugs",
                    format!("{slug_or_uuid:?} maps to a value that is not 4 bytes"),
                )
            })?;
            match self.workspace_by_number(ws)? {
                Some(info) => Ok(Some(info)),
                None => Err(StoreError::corrupt(
                    "workspace_slugs",
                    format!("{slug_or_uuid:?} maps to missing workspace {ws}"),
                )),
            }
        })
    }

    /// The custom columns of `ws`, by id.
    pub fn columns(&self, ws: WorkspaceId) -> Result<Vec<CustomColumn>, StoreError> {
        guarded(&self.poison, || {
            self.require_workspace(ws)?;
            let t = self.txn.open_table(keys::COLUMNS)?;
            let range = prefix_range(&ws_bytes(ws.0));
            let mut out = Vec::new();
            for entry in t.range::<&[u8]>(as_slices(&range))? {
                let (k, v) = entry?;
                let name = k.value().get(4..).unwrap_or_default();
                out.push(column_from_entry(name, v.value())?);
            }
            out.sort_by_key(|c| c.id);
            Ok(out)
        })
    }

    /// The contacts of `ws`, with their identifiers and indexes.
    pub fn contacts(&self, ws: WorkspaceId) -> Result<ContactsView, StoreError> {
        self.contacts_with(ws, None)
    }

    /// As [`ReadView::contacts`], with lookup filters that hold every key of this
    /// snapshot's tiered tables (see [`crate::filter`]; `Store::bulk_contacts` is
    /// what ensures it).
    pub(crate) fn contacts_with(
        &self,
        ws: WorkspaceId,
        filters: Option<Arc<Filters>>,
    ) -> Result<ContactsView, StoreError> {
        guarded(&self.poison, || {
            let t = self.txn.open_table(keys::WORKSPACES)?;
            let record =
                crate::load_workspace(&t, ws.0)?.ok_or(StoreError::UnknownWorkspace(ws))?;
            Ok(ContactsView {
                poison: Arc::clone(&self.poison),
                ws: ws.0,
                count: record.contacts,
                contacts: self.txn.open_table(keys::CONTACTS)?,
                idents: keys::IDENTIFIERS.open_read(&self.txn)?,
                emails: keys::EMAIL_INDEX.open_read(&self.txn)?,
                phones: keys::PHONE_INDEX.open_read(&self.txn)?,
                filters,
            })
        })
    }

    /// The stored record of `request_id` in `ws`, if that id was applied.
    pub fn request(
        &self,
        ws: WorkspaceId,
        request_id: &str,
    ) -> Result<Option<StoredRequest>, StoreError> {
        guarded(&self.poison, || {
            self.require_workspace(ws)?;
            let t = self.txn.open_table(keys::REQUESTS)?;
            let Some(v) = t.get(ws_key(ws.0, request_id.as_bytes()).as_slice())? else {
                return Ok(None);
            };
            let r = codec::decode_request(v.value())?;
            Ok(Some(StoredRequest {
                body_hash: r.body_hash,
                applied_at_us: r.applied_at_us,
                report_json: r.report_json,
            }))
        })
    }
}

/// The levels of a tiered table, opened for reading.
pub(crate) type Part<V> = tiered::ReadOpened<V>;

/// The contact tables of one workspace in one read transaction.
///
/// `Sync`: many threads may look contacts up at once (the merge's parallel phase).
/// It keeps its snapshot alive on its own, also after the [`ReadView`] is dropped.
pub struct ContactsView {
    /// The store's poison flag (see the `guard` module).
    poison: Arc<Poison>,
    ws: u32,
    /// The workspace's contact counter as of this read transaction.
    count: u64,
    contacts: Bytes,
    idents: Part<u64>,
    emails: Part<()>,
    phones: Part<()>,
    /// Filters of the three tiered tables, valid for this snapshot, when planning a
    /// request.
    filters: Option<Arc<Filters>>,
}

impl std::fmt::Debug for ContactsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactsView")
            .field("ws", &self.ws)
            .finish_non_exhaustive()
    }
}

impl ContactsView {
    /// The workspace this view reads.
    pub fn workspace(&self) -> WorkspaceId {
        WorkspaceId(self.ws)
    }

    /// The contact with internal id `id`, which an identifier or index entry named:
    /// a missing one is corruption.
    fn by_id(&self, id: u64, named_by: &'static str) -> Result<Stored, StoreError> {
        match self
            .contacts
            .get(keys::contact_key(self.ws, id).as_slice())?
        {
            Some(v) => Ok(Stored {
                id: Some(id),
                contact: codec::decode_contact(v.value())?,
            }),
            None => Err(StoreError::corrupt(
                named_by,
                format!("entry points to missing contact id {id}"),
            )),
        }
    }

    /// The contact with internal id `id` (as a campaign's members name them).
    pub fn by_internal_id(&self, id: u64) -> Result<Option<Contact>, StoreError> {
        match self
            .contacts
            .get(keys::contact_key(self.ws, id).as_slice())?
        {
            Some(v) => Ok(Some(codec::decode_contact(v.value())?)),
            None => Ok(None),
        }
    }

    /// The contact whose primary key is `key` (aliases are not consulted).
    pub fn get(&self, key: &str) -> Result<Option<Contact>, StoreError> {
        Ok(self.resolve(key)?.filter(|c| c.key == key))
    }

    /// The contact whose key, or one of whose aliases, is `key_or_alias`.
    pub fn resolve(&self, key_or_alias: &str) -> Result<Option<Contact>, StoreError> {
        Ok(self.resolve_stored(key_or_alias)?.map(|s| s.contact))
    }

    /// As [`ContactsView::resolve`], with the contact's internal id.
    fn resolve_stored(&self, key_or_alias: &str) -> Result<Option<Stored>, StoreError> {
        guarded(&self.poison, || {
            let filter = self.filters.as_deref().map(|f| &f.idents);
            let Some(id) = self
                .idents
                .get(ws_key(self.ws, key_or_alias.as_bytes()).as_slice(), filter)?
            else {
                return Ok(None);
            };
            let s = self.by_id(id, "identifiers")?;
            check_named(key_or_alias, id, &s.contact)?;
            Ok(Some(s))
        })
    }

    /// The contacts whose `field` is `value`, found through `index` (entries are
    /// keyed by the value's hash, so each candidate is checked), sorted by key.
    fn find(
        &self,
        index: &Part<()>,
        filter: Option<&TableFilter>,
        name: &'static str,
        value: &str,
        field: fn(&Contact) -> Option<&str>,
    ) -> Result<Vec<Stored>, StoreError> {
        guarded(&self.poison, || {
            let mut out = Vec::new();
            for (k, ()) in index.prefixed(&keys::index_prefix(self.ws, value), filter)? {
                let s = self.by_id(index_id(&k, name)?, name)?;
                if field(&s.contact) == Some(value) {
                    out.push(s);
                }
            }
            out.sort_by(|a, b| a.contact.key.cmp(&b.contact.key));
            Ok(out)
        })
    }

    /// Every contact whose normalized email is `email`, with its internal id,
    /// sorted by key.
    fn stored_by_email(&self, email: &str) -> Result<Vec<Stored>, StoreError> {
        let filter = self.filters.as_deref().map(|f| &f.emails);
        self.find(&self.emails, filter, "email_index", email, Contact::email)
    }

    /// Every contact whose normalized gsm is `gsm`, with its internal id, sorted
    /// by key.
    fn stored_by_phone(&self, gsm: &str) -> Result<Vec<Stored>, StoreError> {
        let filter = self.filters.as_deref().map(|f| &f.phones);
        self.find(&self.phones, filter, "phone_index", gsm, Contact::gsm)
    }

    /// Every contact whose normalized email is `email`, sorted by key.
    pub fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, StoreError> {
        Ok(contacts(self.stored_by_email(email)?))
    }

    /// Every contact whose normalized gsm is `gsm`, sorted by key.
    pub fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Contact>, StoreError> {
        Ok(contacts(self.stored_by_phone(gsm)?))
    }

    /// The keys of every contact whose normalized email is `email`, sorted.
    pub fn keys_by_email(&self, email: &str) -> Result<Vec<String>, StoreError> {
        Ok(keys_of(self.stored_by_email(email)?))
    }

    /// The keys of every contact whose normalized gsm is `gsm`, sorted.
    pub fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, StoreError> {
        Ok(keys_of(self.stored_by_phone(gsm)?))
    }

    /// The number of contacts in the workspace: the counter kept in the workspace
    /// record (O(1)); `Store::check` verifies it against the table.
    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self.count)
    }

    /// Every contact of the workspace in insertion order (the order of their
    /// internal ids), decoded one at a time as the iterator advances.
    pub fn iter(
        &self,
    ) -> Result<impl Iterator<Item = Result<Contact, StoreError>> + '_, StoreError> {
        let range = prefix_range(&ws_bytes(self.ws));
        let mut inner = guarded(&self.poison, || {
            Ok(self.contacts.range::<&[u8]>(as_slices(&range))?)
        })?;
        // Each step runs guarded; after the first error the iterator ends.
        let mut done = false;
        Ok(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let step = guarded(&self.poison, || match inner.next() {
                None => Ok(None),
                Some(entry) => Ok(Some(codec::decode_contact(entry?.1.value())?)),
            });
            match step {
                Ok(Some(c)) => Some(Ok(c)),
                Ok(None) => {
                    done = true;
                    None
                }
                Err(e) => {
                    done = true;
                    Some(Err(e))
                }
            }
        }))
    }
}

/// Fails unless `ident`, whose `identifiers` entry names contact `id`, is the key
/// or an alias of that contact `c`.
pub(crate) fn check_named(ident: &str, id: u64, c: &Contact) -> Result<(), StoreError> {
    if contactdb_backend::names(c, ident) {
        return Ok(());
    }
    Err(StoreError::corrupt(
        "identifiers",
        format!(
            "{ident:?} points to contact {:?} (id {id}), which neither has it as key nor as alias",
            c.key
        ),
    ))
}

/// The contact id of a key of index `table`.
pub(crate) fn index_id(k: &[u8], table: &'static str) -> Result<u64, StoreError> {
    keys::split_index(k)
        .map(|(_, _, id)| id)
        .ok_or_else(|| StoreError::corrupt(table, "index key is not 20 bytes"))
}

/// The contacts of `found`, without their ids.
fn contacts(found: Vec<Stored>) -> Vec<Contact> {
    found.into_iter().map(|s| s.contact).collect()
}

/// The keys of `found`.
fn keys_of(found: Vec<Stored>) -> Vec<String> {
    found.into_iter().map(|s| s.contact.key).collect()
}

impl contactdb_merge::Lookup for ContactsView {
    type Error = StoreError;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        self.resolve_stored(id)
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, StoreError> {
        ContactsView::keys_by_email(self, email)
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, StoreError> {
        ContactsView::keys_by_phone(self, gsm)
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<Stored>, StoreError> {
        self.stored_by_email(email)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Stored>, StoreError> {
        self.stored_by_phone(gsm)
    }
}

impl contactdb_backend::ContactReads for ContactsView {
    fn resolve(&self, key_or_alias: &str) -> Result<Option<Contact>, Failure> {
        Ok(ContactsView::resolve(self, key_or_alias)?)
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, Failure> {
        Ok(ContactsView::contacts_by_email(self, email)?)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Contact>, Failure> {
        Ok(ContactsView::contacts_by_phone(self, gsm)?)
    }

    fn for_each(&self, f: &mut dyn FnMut(Contact) -> ControlFlow<()>) -> Result<(), Failure> {
        for c in self.iter()? {
            if f(c?).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn count(&self) -> Result<u64, Failure> {
        Ok(ContactsView::count(self)?)
    }

    fn by_internal_id(&self, id: u64) -> Result<Option<Contact>, Failure> {
        Ok(ContactsView::by_internal_id(self, id)?)
    }
}
