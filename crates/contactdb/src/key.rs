//! API keys of a workspace: tokens for the HTTP server, stored only as hashes.

use contactdb_backend::{KeyRole, Wait};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::contact::timestamp;
use crate::database::{Database, now_us};
use crate::error::Error;
use crate::workspace::Workspace;

/// What a key may do.
///
/// ```
/// use contactdb::Role;
/// // Each role allows what the roles before it allow.
/// assert!(Role::Manage > Role::Write && Role::Write > Role::Read);
/// assert_eq!(serde_json::to_value(Role::Write)?, "write");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read job states and contacts.
    Read,
    /// Send bulk requests and jobs; and what read allows.
    Write,
    /// Everything.
    Manage,
}

impl Role {
    fn of(r: KeyRole) -> Self {
        match r {
            KeyRole::Read => Role::Read,
            KeyRole::Write => Role::Write,
            KeyRole::Manage => Role::Manage,
        }
    }
}

impl Role {
    fn stored(self) -> KeyRole {
        match self {
            Role::Read => KeyRole::Read,
            Role::Write => KeyRole::Write,
            Role::Manage => KeyRole::Manage,
        }
    }
}

/// An API key (never its token).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// let (info, _token) = ws.create_key(contactdb::Role::Read)?;
/// assert_eq!((info.workspace.as_str(), info.role, info.revoked), ("default", contactdb::Role::Read, false));
/// assert_eq!(ws.keys()?, [info]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Its id, to revoke it by.
    pub id: String,
    /// The slug of its workspace.
    pub workspace: String,
    /// Its role.
    pub role: Role,
    /// When it was created.
    #[serde(serialize_with = "crate::contact::ser_ts")]
    pub created_at: jiff::Timestamp,
    /// Whether it was revoked.
    pub revoked: bool,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Workspace {
    /// Creates an API key with `role` and returns it with its token. The token is
    /// shown this once: only its SHA-256 is stored.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// # let ws = db.workspace("default")?;
    /// let (info, token) = ws.create_key(contactdb::Role::Write)?;
    /// assert!(token.starts_with("cdb_"));
    /// let (found, role, id) = db.authenticate(&token)?.ok_or("unknown token")?;
    /// assert_eq!((found.info().slug.as_str(), role, id), ("default", contactdb::Role::Write, info.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_key(&self, role: Role) -> Result<(KeyInfo, String), Error> {
        let mut secret = [0u8; 32];
        let (a, b) = secret.split_at_mut(16);
        a.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        b.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let token: String = std::iter::once("cdb_".to_owned())
            .chain(secret.iter().map(|x| format!("{x:02x}")))
            .collect();
        let id = *uuid::Uuid::new_v4().as_bytes();
        let mut w = self
            .db()
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        let k = w.create_api_key(&hash(&token), id, role.stored(), now_us())?;
        w.commit()?;
        Ok((self.key_info(&k), token))
    }

    /// Every key of the workspace, oldest first.
    ///
    /// ```
    /// # use contactdb::Role;
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.create_key(Role::Manage)?;
    /// ws.create_key(Role::Read)?;
    /// let roles: Vec<Role> = ws.keys()?.into_iter().map(|k| k.role).collect();
    /// assert_eq!(roles, [Role::Manage, Role::Read]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<KeyInfo>, Error> {
        let r = self.db().inner.store.read()?;
        Ok(r.api_keys(self.id())?
            .iter()
            .map(|k| self.key_info(k))
            .collect())
    }

    /// Revokes the key with this id; returns whether it was live.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// # let ws = db.workspace("default")?;
    /// let (info, token) = ws.create_key(contactdb::Role::Read)?;
    /// assert!(ws.revoke_key(&info.id)?);
    /// assert!(!ws.revoke_key(&info.id)?); // already revoked
    /// assert!(db.authenticate(&token)?.is_none());
    /// assert!(ws.keys()?[0].revoked);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn revoke_key(&self, id: &str) -> Result<bool, Error> {
        let id = uuid::Uuid::parse_str(id.trim())
            .map_err(|_| Error::InvalidArgument(format!("{id:?} is not a key id")))?;
        let mut w = self
            .db()
            .inner
            .writer()?
            .begin_write(self.id(), Wait::Block)?;
        let revoked = w.revoke_api_key(id.as_bytes())?;
        w.commit()?;
        Ok(revoked)
    }

    fn key_info(&self, k: &contactdb_backend::ApiKey) -> KeyInfo {
        KeyInfo {
            id: uuid::Uuid::from_bytes(k.id).hyphenated().to_string(),
            workspace: self.info().slug.clone(),
            role: Role::of(k.role),
            created_at: timestamp(k.created_at_us),
            revoked: k.revoked,
        }
    }
}

impl Database {
    /// The workspace, role and id of a live key with this token; `None` for an
    /// unknown or revoked one.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = contactdb::Database::open(dir.path().join("c.redb"))?;
    /// let acme = db.workspace(&db.create_workspace("acme")?.slug)?;
    /// let (_, token) = acme.create_key(contactdb::Role::Read)?;
    /// let (ws, role, _id) = db.authenticate(&token)?.ok_or("unknown token")?;
    /// assert_eq!((ws.info().slug.as_str(), role), ("acme", contactdb::Role::Read));
    /// assert!(db.authenticate("cdb_not-a-token")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authenticate(&self, token: &str) -> Result<Option<(Workspace, Role, String)>, Error> {
        let r = self.inner.store.read()?;
        let Some(k) = r.api_key(&hash(token))? else {
            return Ok(None);
        };
        if k.revoked {
            return Ok(None);
        }
        let Some(info) = r.workspaces()?.into_iter().find(|w| w.id == k.ws) else {
            return Ok(None);
        };
        let id = uuid::Uuid::from_bytes(k.id).hyphenated().to_string();
        Ok(Some((
            Workspace::new(self.clone(), info),
            Role::of(k.role),
            id,
        )))
    }
}
