//! API keys: a workspace's keys by the SHA-256 of their token, with a role.

use crate::guard::guarded;
use redb::ReadableTable;
use std::sync::Arc;

use contactdb_backend::{ApiKey, KeyRole, WorkspaceId};

use crate::codec::{self, StoredApiKey};
use crate::keys;
use crate::{ReadView, StoreError, WriteView};

/// The role a stored code stands for.
fn role_of(c: u8) -> Result<KeyRole, StoreError> {
    KeyRole::from_code(c)
        .ok_or_else(|| StoreError::corrupt("api_keys", format!("unknown role {c}")))
}

fn key_of(k: StoredApiKey) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: k.id,
        ws: WorkspaceId(k.ws),
        role: role_of(k.role)?,
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
