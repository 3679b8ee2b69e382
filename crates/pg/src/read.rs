//! [`PgRead`]: one read-only REPEATABLE READ transaction, a consistent snapshot.

use std::ops::ControlFlow;
use std::sync::Mutex;

use contactdb_backend::{
    Event, JobDataEntry, JobDataKind, JobRecord, StoredRequest, WorkspaceId, WorkspaceInfo,
};
use contactdb_policy::{ColumnSpec, ColumnType, Contact, CustomColumn, FieldId};
use postgres::{Client, GenericClient};

use crate::feed;
use crate::job;
use crate::pool::Pooled;
use crate::rows::{self, CONTACT_COLUMNS, WORKSPACE_COLUMNS, signed, unsigned};
use crate::{Error, WorkspaceSql};
use contactdb_backend::{LookupValues, Prefetched};

/// One read transaction: every call sees the database as of its first statement.
/// Reads never take a writer lock. `Send + Sync` (calls are serialized on its one
/// connection). Dropping it ends the transaction.
pub struct PgRead {
    conn: Mutex<Option<Pooled>>,
}

impl std::fmt::Debug for PgRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRead").finish_non_exhaustive()
    }
}

/// Contacts per round trip of [`PgRead::for_each_contact`].
const PAGE: i64 = 2_000;

impl PgRead {
    pub(crate) fn begin(mut conn: Pooled) -> Result<PgRead, Error> {
        // The snapshot is taken by the first query, not by BEGIN: take it now.
        conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1")?;
        Ok(PgRead {
            conn: Mutex::new(Some(conn)),
        })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(c) => f(c),
            None => Err(Error::Db("the read transaction has ended".to_owned())),
        }
    }

    /// Every workspace, by number.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, Error> {
        self.with(|c| {
            c.query(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces ORDER BY workspace_id"),
                &[],
            )?
            .iter()
            .map(rows::workspace)
            .collect()
        })
    }

    /// The workspace named `slug_or_uuid`: by slug first, then by UUID text.
    pub fn workspace(&self, slug_or_uuid: &str) -> Result<Option<WorkspaceInfo>, Error> {
        self.with(|c| {
            if let Some(r) = c.query_opt(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE slug = $1"),
                &[&slug_or_uuid],
            )? {
                return rows::workspace(&r).map(Some);
            }
            let Ok(u) = uuid::Uuid::parse_str(slug_or_uuid.trim()) else {
                return Ok(None);
            };
            c.query_opt(
                &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE uuid = $1"),
                &[&u],
            )?
            .as_ref()
            .map(rows::workspace)
            .transpose()
        })
    }

    /// The workspace with id `ws`, `None` when the database has none.
    pub fn workspace_by_id(&self, ws: WorkspaceId) -> Result<Option<WorkspaceInfo>, Error> {
        self.with(|c| workspace_by_id(c, ws))
    }

    /// The custom columns of `ws`, by id.
    pub fn columns(&self, ws: WorkspaceId) -> Result<Vec<CustomColumn>, Error> {
        self.with(|c| columns(c, ws))
    }

    /// The contact whose primary key is `key` (aliases are not consulted).
    pub fn get(&self, ws: WorkspaceId, key: &str) -> Result<Option<Contact>, Error> {
        Ok(self.resolve(ws, key)?.filter(|c| c.key == key))
    }

    /// The contact whose key, or one of whose aliases, is `key_or_alias`.
    pub fn resolve(&self, ws: WorkspaceId, key_or_alias: &str) -> Result<Option<Contact>, Error> {
        self.with(|c| resolve(c, ws, key_or_alias))
    }

    /// The contact with internal id `id`.
    pub fn by_internal_id(&self, ws: WorkspaceId, id: u64) -> Result<Option<Contact>, Error> {
        self.with(|c| {
            c.query_opt(
                &format!(
                    "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.workspace_id = $1 AND c.contact_id = $2"
                ),
                &[&ws.sql(), &signed(id)?],
            )?
            .as_ref()
            .map(|r| rows::contact(r, 0))
            .transpose()
        })
    }

    /// Every contact whose normalized email is `email`, sorted by key.
    pub fn contacts_by_email(&self, ws: WorkspaceId, email: &str) -> Result<Vec<Contact>, Error> {
        self.with(|c| by_value(c, ws, "email", email))
    }

    /// Every contact whose normalized gsm is `gsm`, sorted by key.
    pub fn contacts_by_phone(&self, ws: WorkspaceId, gsm: &str) -> Result<Vec<Contact>, Error> {
        self.with(|c| by_value(c, ws, "gsm", gsm))
    }

    /// The number of contacts of `ws` (the counter kept with the contacts).
    pub fn count(&self, ws: WorkspaceId) -> Result<u64, Error> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT contacts FROM counters WHERE workspace_id = $1",
                &[&ws.sql()],
            )?;
            match row {
                Some(r) => unsigned("counters", r.try_get(0)?),
                None => Err(Error::UnknownWorkspace(ws)),
            }
        })
    }

    /// Calls `f` on every contact of `ws` in insertion order (internal id order),
    /// fetched a page at a time; stops when `f` breaks.
    pub fn for_each_contact(
        &self,
        ws: WorkspaceId,
        mut f: impl FnMut(Contact) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        let mut after: i64 = 0;
        loop {
            let page = self.with(|c| {
                c.query(
                    &format!(
                        "SELECT {CONTACT_COLUMNS} FROM contacts c
                         WHERE c.workspace_id = $1 AND c.contact_id > $2
                         ORDER BY c.contact_id LIMIT $3"
                    ),
                    &[&ws.sql(), &after, &PAGE],
                )
                .map_err(Error::from)
            })?;
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == PAGE;
            for row in &page {
                let contact = rows::contact(row, 0)?;
                after = row.try_get(0)?;
                if f(contact).is_break() {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Every contact of `ws` in insertion order.
    pub fn contacts(&self, ws: WorkspaceId) -> Result<Vec<Contact>, Error> {
        let mut out = Vec::new();
        self.for_each_contact(ws, |c| {
            out.push(c);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// The contacts `values` name, for planning a request (a dry run: nothing is
    /// written through a read).
    pub fn lookup_for(&self, ws: WorkspaceId, values: &LookupValues) -> Result<Prefetched, Error> {
        self.with(|c| crate::lookup::fetch(c, ws, values))
    }

    /// The stored record of `request_id` in `ws`, if that id was applied.
    pub fn request(
        &self,
        ws: WorkspaceId,
        request_id: &str,
    ) -> Result<Option<StoredRequest>, Error> {
        self.with(|c| request(c, ws, request_id))
    }

    /// Up to `limit` events of `ws` with a sequence number above `after`, in order.
    pub fn events(&self, ws: WorkspaceId, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        self.with(|c| feed::events(c, ws, after, limit))
    }

    /// The last sequence number given in `ws` (0 if none).
    pub fn last_seq(&self, ws: WorkspaceId) -> Result<u64, Error> {
        self.with(|c| feed::last_seq(c, ws))
    }

    /// The named consumers of `ws` and their acknowledged sequence numbers.
    pub fn consumers(&self, ws: WorkspaceId) -> Result<Vec<(String, u64)>, Error> {
        self.with(|c| feed::consumers(c, ws))
    }

    /// The acknowledged sequence number of consumer `name` (0 for a new one).
    pub fn consumer(&self, ws: WorkspaceId, name: &str) -> Result<u64, Error> {
        self.with(|c| feed::consumer(c, ws, name))
    }

    /// The job of `ws` with this id.
    pub fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, Error> {
        self.with(|c| job::by_id(c, ws, id))
    }

    /// Every job of `ws` in submission order (only unfinished ones when asked).
    pub fn jobs(&self, ws: WorkspaceId, unfinished_only: bool) -> Result<Vec<JobRecord>, Error> {
        self.with(|c| job::list(c, ws, unfinished_only))
    }

    /// Every `job_data` entry of job `number` of this kind, by `rest`.
    pub fn job_data(
        &self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
    ) -> Result<Vec<JobDataEntry>, Error> {
        self.with(|c| job::data(c, ws, number, kind))
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        let slot = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = slot.take()
            && c.batch_execute("ROLLBACK").is_err()
        {
            c.discard();
        }
    }
}

/// Whether PostgreSQL text can hold `value` (no NUL character). A value it cannot
/// hold is invalid in a record and names no stored contact: reads and lookups of
/// it find nothing without asking the server (which would refuse the parameter).
pub(crate) fn storable(value: &str) -> bool {
    !value.contains('\0')
}

pub(crate) fn resolve(
    c: &mut Client,
    ws: WorkspaceId,
    key_or_alias: &str,
) -> Result<Option<Contact>, Error> {
    if !storable(key_or_alias) {
        return Ok(None);
    }
    let row = c.query_opt(
        &format!(
            "SELECT {CONTACT_COLUMNS} FROM identifiers i
             JOIN contacts c ON c.workspace_id = i.workspace_id AND c.contact_id = i.contact_id
             WHERE i.workspace_id = $1 AND i.ident = $2"
        ),
        &[&ws.sql(), &key_or_alias],
    )?;
    row.as_ref().map(|r| rows::contact(r, 0)).transpose()
}

pub(crate) fn by_value(
    c: &mut Client,
    ws: WorkspaceId,
    column: &'static str,
    value: &str,
) -> Result<Vec<Contact>, Error> {
    if !storable(value) {
        return Ok(Vec::new());
    }
    let rows = c.query(
        &format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.workspace_id = $1 AND c.{column} = $2
             ORDER BY c.key"
        ),
        &[&ws.sql(), &value],
    )?;
    rows.iter().map(|r| rows::contact(r, 0)).collect()
}

pub(crate) fn request(
    c: &mut Client,
    ws: WorkspaceId,
    request_id: &str,
) -> Result<Option<StoredRequest>, Error> {
    let row = c.query_opt(
        "SELECT body_hash, applied_at_us, report_json FROM requests
         WHERE workspace_id = $1 AND request_id = $2",
        &[&ws.sql(), &request_id],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    let hash: Vec<u8> = r.try_get(0)?;
    Ok(Some(StoredRequest {
        body_hash: hash
            .try_into()
            .map_err(|_| Error::damaged("requests", "body_hash is not 32 bytes"))?,
        applied_at_us: r.try_get(1)?,
        report_json: r.try_get(2)?,
    }))
}

/// The stored form of a column type: `(type, max_len)`.
pub(crate) fn type_to_stored(ty: ColumnType) -> (&'static str, Option<i32>) {
    match ty {
        ColumnType::String { max_len } => {
            ("string", Some(i32::try_from(max_len).unwrap_or(i32::MAX)))
        }
        ColumnType::Integer => ("integer", None),
        ColumnType::Decimal => ("decimal", None),
        ColumnType::Boolean => ("boolean", None),
        ColumnType::Date => ("date", None),
        ColumnType::Json => ("json", None),
    }
}

fn type_from_stored(ty: &str, max_len: Option<i32>) -> Result<ColumnType, Error> {
    Ok(match ty {
        "string" => ColumnType::String {
            max_len: max_len
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| Error::damaged("columns", "a string column without max_len"))?,
        },
        "integer" => ColumnType::Integer,
        "decimal" => ColumnType::Decimal,
        "boolean" => ColumnType::Boolean,
        "date" => ColumnType::Date,
        "json" => ColumnType::Json,
        other => {
            return Err(Error::damaged(
                "columns",
                format!("unknown column type {other:?}"),
            ));
        }
    })
}

/// The workspace with id `ws`, `None` when the database has none.
pub(crate) fn workspace_by_id(
    c: &mut impl GenericClient,
    ws: WorkspaceId,
) -> Result<Option<WorkspaceInfo>, Error> {
    c.query_opt(
        &format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE workspace_id = $1"),
        &[&ws.sql()],
    )?
    .as_ref()
    .map(rows::workspace)
    .transpose()
}

/// Fails with [`Error::UnknownWorkspace`] unless `ws` exists.
pub(crate) fn require_workspace(c: &mut impl GenericClient, ws: WorkspaceId) -> Result<(), Error> {
    let exists = c
        .query_opt(
            "SELECT 1 FROM workspaces WHERE workspace_id = $1",
            &[&ws.sql()],
        )?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(Error::UnknownWorkspace(ws))
    }
}

pub(crate) fn columns(c: &mut Client, ws: WorkspaceId) -> Result<Vec<CustomColumn>, Error> {
    require_workspace(c, ws)?;
    let rows = c.query(
        "SELECT name, field_id, type, max_len, import_enabled, required FROM columns
         WHERE workspace_id = $1 ORDER BY field_id",
        &[&ws.sql()],
    )?;
    rows.iter()
        .map(|r| {
            let id: i32 = r.try_get(1)?;
            let ty: &str = r.try_get(2)?;
            Ok(CustomColumn {
                id: FieldId(
                    u16::try_from(id)
                        .map_err(|_| Error::damaged("columns", format!("field id {id}")))?,
                ),
                spec: ColumnSpec {
                    name: r.try_get(0)?,
                    ty: type_from_stored(ty, r.try_get(3)?)?,
                    import_enabled: r.try_get(4)?,
                    required: r.try_get(5)?,
                },
            })
        })
        .collect()
}
