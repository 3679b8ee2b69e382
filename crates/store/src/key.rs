//! API keys: a workspace's keys by the SHA-256 of their token, with a role.

use crate::guard::guarded;
use redb::ReadableTable;
use std::sync::Arc;

use crate::codec::{self, StoredApiKey};
use crate::keys;
use crate::{ReadView, StoreError, WorkspaceId, WriteView};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyRole {
    /// Read: job status, contacts.
    Read,
    /// Write: bulk requests and jobs, and what read allows.
    Write,
    /// Manage: everything.
    Manage,
}

impl KeyRole {
    fn code(self) -> u8 {
        match self {
            KeyRole::Read => 1,
            KeyRole::Write => 2,
            KeyRole::Manage => 3,
        }
    }

    fn from_code(c: u8) -> Result<Self, StoreError> {
        Ok(match c {
            1 => KeyRole::Read,
            2 => KeyRole::Write,
            3 => KeyRole::Manage,
            other => {
                return Err(StoreError::corrupt(
                    "api_keys",
                    format!("unknown role {other}"),
                ));
            }
        })
    }
}

/// An API key as stored (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: [u8; 16],
    /// The workspace it belongs to.
    pub ws: WorkspaceId,
    /// Its role.
    pub role: KeyRole,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

fn key_of(k: StoredApiKey) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: k.id,
        ws: WorkspaceId(k.ws),
        role: KeyRole::from_code(k.role)?,
        created_at_us: k.created_at_us,
        revoked: k.revoked,
    })
}

impl ReadView {
    /// The key whose token hashes to `hash`.
    pub fn api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::API_KEYS)? else {
                return Ok(None);
            };
            t.get(hash.as_slice())?
                .map(|v| codec::decode_api_key(v.value()).and_then(key_of))
                .transpose()
        })
    }

    /// Every key of `ws`.
    pub fn api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKey>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::API_KEYS)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in t.iter()? {
                let (_, v) = entry?;
                let k = key_of(codec::decode_api_key(v.value())?)?;
                if k.ws == ws {
                    out.push(k);
                }
            }
            out.sort_by_key(|k| k.created_at_us);
            Ok(out)
        })
    }
}

impl WriteView {
    /// Stores a new key of `ws` under the hash of its token.
    pub fn create_api_key(
        &mut self,
        ws: WorkspaceId,
        hash: &[u8; 32],
        id: [u8; 16],
        role: KeyRole,
        now_us: i64,
    ) -> Result<ApiKey, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.require_workspace_pub(ws)?;
            let stored = StoredApiKey {
                id,
                ws: ws.0,
                role: role.code(),
                created_at_us: now_us,
                revoked: false,
            };
            self.txn
                .open_table(keys::API_KEYS)?
                .insert(hash.as_slice(), codec::encode_api_key(&stored)?.as_slice())?;
            key_of(stored)
        })
    }

    /// Revokes the key of `ws` with this id; returns whether it was live.
    pub fn revoke_api_key(&mut self, ws: WorkspaceId, id: &[u8; 16]) -> Result<bool, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let mut t = self.txn.open_table(keys::API_KEYS)?;
            let mut found: Option<(Vec<u8>, StoredApiKey)> = None;
            for entry in t.iter()? {
                let (k, v) = entry?;
                let stored = codec::decode_api_key(v.value())?;
                if stored.ws == ws.0 && stored.id == *id {
                    found = Some((k.value().to_vec(), stored));
                    break;
                }
            }
            let Some((k, mut stored)) = found else {
                return Ok(false);
            };
            if stored.revoked {
                return Ok(false);
            }
            stored.revoked = true;
            t.insert(k.as_slice(), codec::encode_api_key(&stored)?.as_slice())?;
            Ok(true)
        })
    }
}
