//! API keys: a workspace's keys, stored by the SHA-256 of their token (never the
//! token), with a role.

use contactdb_backend::{ApiKey, KeyRole, WorkspaceId};
use postgres::Row;

use crate::{Error, PgRead, PgWrite, WorkspaceSql};

/// The columns [`key_of`] reads, in order.
const KEY_COLUMNS: &str = "workspace_id, id, role, created_at_us, revoked";

fn key_of(row: &Row) -> Result<ApiKey, Error> {
    let ws: i64 = row.try_get(0)?;
    let id: uuid::Uuid = row.try_get(1)?;
    let role: i16 = row.try_get(2)?;
    Ok(ApiKey {
        id: *id.as_bytes(),
        ws: WorkspaceId(
            u32::try_from(ws)
                .map_err(|_| Error::damaged("api_keys", format!("workspace id {ws}")))?,
        ),
        role: u8::try_from(role)
            .ok()
            .and_then(KeyRole::from_code)
            .ok_or_else(|| Error::damaged("api_keys", format!("unknown role {role}")))?,
        created_at_us: row.try_get(3)?,
        revoked: row.try_get(4)?,
    })
}

/// The key whose token hashes to `hash`, in any workspace: one probe of the
/// `api_key_hashes` reference table for its workspace and id, then one of
/// `api_keys` by its primary key (with Citus, a query to one shard).
fn by_hash(c: &mut impl postgres::GenericClient, hash: &[u8; 32]) -> Result<Option<ApiKey>, Error> {
    let Some(named) = c.query_opt(
        "SELECT workspace_id, id FROM api_key_hashes WHERE token_hash = $1",
        &[&hash.as_slice()],
    )?
    else {
        return Ok(None);
    };
    let (ws, id): (i64, uuid::Uuid) = (named.try_get(0)?, named.try_get(1)?);
    let row = c.query_opt(
        &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id = $2"),
        &[&ws, &id],
    )?;
    match row {
        Some(r) => Ok(Some(key_of(&r)?)),
        None => Err(Error::damaged(
            "api_key_hashes",
            format!("a token hash names key {id} of workspace {ws}, which does not exist"),
        )),
    }
}

impl PgRead {
    /// The key whose token hashes to `hash` (revoked or not; the caller refuses a
    /// revoked one).
    pub fn api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, Error> {
        self.with(|c| by_hash(c, hash))
    }

    /// Every key of `ws`, by creation time.
    pub fn api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKey>, Error> {
        self.with(|c| {
            c.query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1
                     ORDER BY created_at_us, id"
                ),
                &[&ws.sql()],
            )?
            .iter()
            .map(key_of)
            .collect()
        })
    }
}

impl PgWrite {
    /// Stores a new key of the workspace under the hash of its token.
    /// [`Error::KeyExists`] when a key of any workspace has this token hash (the
    /// primary key of `api_key_hashes`) or, in this workspace, this id.
    pub fn create_api_key(
        &mut self,
        hash: &[u8; 32],
        id: [u8; 16],
        role: KeyRole,
        now_us: i64,
    ) -> Result<ApiKey, Error> {
        let w = self.workspace().sql();
        let u = uuid::Uuid::from_bytes(id);
        let c = self.client()?;
        let taken = c.execute(
            "INSERT INTO api_key_hashes (token_hash, workspace_id, id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&hash.as_slice(), &w, &u],
        )?;
        if taken == 0 {
            return Err(Error::KeyExists);
        }
        let row = c.query_opt(
            &format!(
                "INSERT INTO api_keys (workspace_id, id, token_hash, role, created_at_us)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING
                 RETURNING {KEY_COLUMNS}"
            ),
            &[&w, &u, &hash.as_slice(), &i16::from(role.code()), &now_us],
        )?;
        match row {
            Some(r) => key_of(&r),
            None => Err(Error::KeyExists),
        }
    }

    /// Revokes the workspace's key with this id; returns whether it was live.
    pub fn revoke_api_key(&mut self, id: &[u8; 16]) -> Result<bool, Error> {
        let w = self.workspace().sql();
        let u = uuid::Uuid::from_bytes(*id);
        let n = self.client()?.execute(
            "UPDATE api_keys SET revoked = true
             WHERE workspace_id = $1 AND id = $2 AND NOT revoked",
            &[&w, &u],
        )?;
        Ok(n > 0)
    }
}
