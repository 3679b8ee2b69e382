//! Decoding rows into the engine's types.

use contactdb_backend::{WorkspaceId, WorkspaceInfo};
use contactdb_policy::Contact;
use postgres::Row;

use crate::Error;
use crate::codec;

/// The columns [`contact_with_id`] reads, in order, from a `contacts` row aliased `c`.
pub(crate) const CONTACT_COLUMNS: &str =
    "c.contact_id, c.key, c.fields, c.aliases, c.version, c.created_at_us, c.updated_at_us";

/// A stored non-negative number as `u64`.
pub(crate) fn unsigned(table: &'static str, v: i64) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::damaged(table, format!("negative number {v}")))
}

/// A `u64` as a stored number.
pub(crate) fn signed(v: u64) -> Result<i64, Error> {
    i64::try_from(v).map_err(|_| Error::Db(format!("number {v} is out of PostgreSQL's range")))
}

/// The internal id and the contact in `row` from column `at` on
/// ([`CONTACT_COLUMNS`]).
pub(crate) fn contact_with_id(row: &Row, at: usize) -> Result<(u64, Contact), Error> {
    let id: i64 = row.try_get(at)?;
    let fields: &[u8] = row.try_get(at + 2)?;
    let version: i64 = row.try_get(at + 4)?;
    let contact = Contact {
        key: row.try_get(at + 1)?,
        fields: codec::decode_fields(fields)?,
        aliases: row.try_get(at + 3)?,
        version: unsigned("contacts", version)?,
        created_at_us: row.try_get(at + 5)?,
        updated_at_us: row.try_get(at + 6)?,
    };
    Ok((unsigned("contacts", id)?, contact))
}

/// The contact in `row` from column `at` on ([`CONTACT_COLUMNS`]).
pub(crate) fn contact(row: &Row, at: usize) -> Result<Contact, Error> {
    Ok(contact_with_id(row, at)?.1)
}

/// The columns [`workspace`] reads.
pub(crate) const WORKSPACE_COLUMNS: &str = "workspace_id, slug, uuid, created_at_us";

pub(crate) fn workspace(row: &Row) -> Result<WorkspaceInfo, Error> {
    let id: i64 = row.try_get(0)?;
    let uuid: uuid::Uuid = row.try_get(2)?;
    Ok(WorkspaceInfo {
        id: WorkspaceId(
            u32::try_from(id)
                .map_err(|_| Error::damaged("workspaces", format!("workspace id {id}")))?,
        ),
        slug: row.try_get(1)?,
        uuid: *uuid.as_bytes(),
        created_at_us: row.try_get(3)?,
    })
}
