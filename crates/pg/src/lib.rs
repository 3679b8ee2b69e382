//! contactdb's PostgreSQL storage: the same duties as the embedded redb store
//! (contacts, identifiers, email and phone lookups, workspaces, custom columns,
//! applied request ids, the change feed, background jobs, campaigns and API
//! keys), in tables of one PostgreSQL database that many processes share.
//!
//! Design:
//! - **Schema.** Created and migrated by [`PgStore::connect`] from the versioned
//!   files in `migrations/` (embedded), recorded in `schema_migrations`. Every
//!   table's primary key and every index starts with `workspace_id`, so with Citus
//!   each table is distributed by workspace and `workspaces` is a reference table.
//! - **One writer per workspace**: a write transaction starts with
//!   `pg_try_advisory_xact_lock` (or `pg_advisory_xact_lock` to wait) on a key made
//!   of a namespace constant and the workspace id; the lock ends with the
//!   transaction. Reads never take it. Write transactions run at READ COMMITTED, so
//!   every statement after the lock sees the last writer's commit.
//! - **Reads as sets.** Before planning a request, [`PgWrite::lookup_for`] fetches
//!   every contact the request's keys, aliases, emails and phones name, in a few
//!   queries that probe the index once per value (`unnest($2)` joined to the
//!   table), into a [`Prefetched`] that answers the merge's
//!   [`contactdb_merge::Lookup`] calls from memory.
//! - **Writes as sets.** [`PgWrite::apply`] copies new contacts and their
//!   identifiers straight into their tables (binary `COPY`); contacts that exist
//!   go through one `COPY` into a temporary table and one `INSERT … SELECT … ON
//!   CONFLICT DO UPDATE`; identifiers that go are deleted in one statement. No
//!   statement per record.
//! - **Gapless feed**: sequence numbers come from the workspace's counter row,
//!   taken under the writer lock, so commit order is sequence order: a reader never
//!   sees a sequence number while an earlier one is still to come.
//! - **Jobs**: a claim (`Backend::claim_job`) takes the oldest queued job, or a
//!   running one whose runner's lease ran out, with `FOR UPDATE SKIP LOCKED`; each chunk's
//!   transaction re-checks the lease and commits its progress with its writes, so
//!   a runner that dies mid-chunk loses that chunk only and the next runner resumes
//!   after the last committed one.
//!
//! The facade reaches all of this through [`contactdb_backend::Backend`], which
//! [`PgStore`] implements (its read transactions, [`PgWrite`] as the write
//! transaction of one workspace, job claims, `check`).
//!
//! The driver is the blocking `postgres` crate: the engine's API is synchronous
//! and its server already calls it from blocking tasks. See `docs/postgres.md`.
//!
//! The records it reads and writes (workspaces, applied request ids, feed events,
//! jobs, campaigns and their members, API keys) are those of `contactdb_backend`,
//! the same as the redb store's; how they map to columns stays here.

mod backend;
mod bulk;
mod campaign;
mod check;
mod codec;
mod contacts;
mod error;
mod feed;
mod job;
mod key;
mod lookup;
mod migrate;
mod pool;
mod read;
mod rows;
mod write;

use std::sync::Arc;
use std::time::Duration;

use contactdb_backend::{JobRecord, Wait, WorkspaceId, WorkspaceInfo};
use contactdb_policy::workspace::valid_slug;

pub use bulk::{BulkOptions, now_us};
pub use contactdb_backend::{LookupValues, Prefetched};
pub use contacts::PgContacts;
pub use error::Error;
pub use migrate::latest_version;
pub use read::PgRead;
pub use write::PgWrite;

use pool::Pool;

/// The slug of the workspace every new database starts with.
pub const DEFAULT_WORKSPACE: &str = "default";

/// The high 32 bits of every writer-lock key (`"cdbw"`); the low 32 bits are the
/// workspace id.
pub const WRITER_LOCK_NAMESPACE: i64 = 0x6364_6277;

/// The advisory lock key of workspace `ws`'s writer.
pub fn writer_lock_key(ws: WorkspaceId) -> i64 {
    (WRITER_LOCK_NAMESPACE << 32) | ws.sql()
}

/// A workspace id as PostgreSQL holds it (`workspace_id bigint`).
pub(crate) trait WorkspaceSql {
    /// The `workspace_id` value.
    fn sql(self) -> i64;
}

impl WorkspaceSql for WorkspaceId {
    fn sql(self) -> i64 {
        i64::from(self.0)
    }
}

/// How to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Idle connections kept for reuse (more are opened when needed, and closed
    /// when given back beyond this many).
    pub max_idle: usize,
    /// How long a connection attempt may take (unless the URL sets
    /// `connect_timeout`).
    pub connect_timeout: Duration,
    /// `application_name` of the connections (unless the URL sets it).
    pub application_name: String,
}

impl Default for PgOptions {
    /// 8 idle connections, a 10 s connect timeout, application name `contactdb`.
    fn default() -> Self {
        PgOptions {
            max_idle: 8,
            connect_timeout: Duration::from_secs(10),
            application_name: "contactdb".to_owned(),
        }
    }
}

/// A contactdb database in PostgreSQL. `Send + Sync`: share it by reference or
/// `Arc`; every read and write takes a connection of its own from the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Arc<Pool>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/dbname[?…]`),
    /// creating or migrating the schema as needed (with workspace `default` in a new
    /// database).
    ///
    /// Errors: [`Error::InvalidUrl`], [`Error::Connect`] when the server cannot be
    /// reached or refuses the login, [`Error::SchemaTooNew`] when a newer build
    /// migrated the database.
    pub fn connect(url: &str, opts: &PgOptions) -> Result<PgStore, Error> {
        let pool = Pool::new(
            url,
            opts.max_idle,
            opts.connect_timeout,
            &opts.application_name,
        )?;
        let mut c = pool.get()?;
        migrate::migrate(&mut c)?;
        drop(c);
        Ok(PgStore { pool })
    }

    /// `host:port/dbname` of the server (for messages; never the password).
    pub fn target(&self) -> &str {
        self.pool.target()
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i32, Error> {
        migrate::current_version(&mut *self.pool.get()?)
    }

    /// Applies the migrations the database lacks (done by [`PgStore::connect`]);
    /// returns how many ran.
    pub fn migrate(&self) -> Result<usize, Error> {
        migrate::migrate(&mut *self.pool.get()?)
    }

    /// A read transaction: one consistent snapshot (REPEATABLE READ, read only).
    pub fn read(&self) -> Result<PgRead, Error> {
        PgRead::begin(self.pool.get()?)
    }

    /// Begins the write transaction of workspace `ws`. With [`Wait::No`] it
    /// fails at once with [`Error::Busy`] while another writer holds the
    /// workspace. Dropping the returned [`PgWrite`] without
    /// [`PgWrite::commit`] rolls it back.
    pub fn begin_write(&self, ws: WorkspaceId, wait: Wait) -> Result<PgWrite, Error> {
        PgWrite::begin(self.pool.get()?, ws, wait)
    }

    /// Creates a workspace. The slug must match `[a-z0-9][a-z0-9-]{0,62}` and
    /// be free; the UUID must be free too.
    pub fn create_workspace(
        &self,
        slug: &str,
        uuid: [u8; 16],
        now_us: i64,
    ) -> Result<WorkspaceInfo, Error> {
        if !valid_slug(slug) {
            return Err(Error::InvalidSlug {
                slug: slug.to_owned(),
            });
        }
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        tx.batch_execute("LOCK TABLE workspaces IN SHARE ROW EXCLUSIVE MODE")?;
        let u = uuid::Uuid::from_bytes(uuid);
        let taken = tx.query_opt(
            "SELECT slug FROM workspaces WHERE slug = $1 OR uuid = $2 LIMIT 1",
            &[&slug, &u],
        )?;
        if let Some(row) = taken {
            let s: String = row.try_get(0)?;
            return Err(Error::WorkspaceExists {
                slug: if s == slug {
                    s
                } else {
                    u.hyphenated().to_string()
                },
            });
        }
        let id: i64 = tx
            .query_one(
                "SELECT coalesce(max(workspace_id), 0) + 1 FROM workspaces",
                &[],
            )?
            .try_get(0)?;
        let ws = u32::try_from(id)
            .map_err(|_| Error::damaged("workspaces", "workspace ids are exhausted"))?;
        tx.execute(
            "INSERT INTO workspaces (workspace_id, slug, uuid, created_at_us) VALUES ($1, $2, $3, $4)",
            &[&id, &slug, &u, &now_us],
        )?;
        tx.execute("INSERT INTO counters (workspace_id) VALUES ($1)", &[&id])?;
        tx.commit()?;
        Ok(WorkspaceInfo {
            id: WorkspaceId(ws),
            slug: slug.to_owned(),
            uuid,
            created_at_us: now_us,
        })
    }

    /// The workspace named `slug_or_uuid` (slug first, then UUID text).
    pub fn workspace(&self, slug_or_uuid: &str) -> Result<Option<WorkspaceInfo>, Error> {
        self.read()?.workspace(slug_or_uuid)
    }

    /// Sets consumer `name`'s acknowledged sequence number in `ws` (creating the
    /// consumer). A cursor never moves back. Returns the cursor after the call.
    /// Takes no writer lock: consumers acknowledge while writers write.
    pub fn ack(&self, ws: WorkspaceId, name: &str, seq: u64) -> Result<u64, Error> {
        feed::ack(&mut *self.pool.get()?, ws, name, seq)
    }

    /// Removes consumer `name` of `ws`; returns whether it existed.
    pub fn drop_consumer(&self, ws: WorkspaceId, name: &str) -> Result<bool, Error> {
        let n = self.pool.get()?.execute(
            "DELETE FROM feed_consumers WHERE workspace_id = $1 AND name = $2",
            &[&ws.sql(), &name],
        )?;
        Ok(n > 0)
    }

    /// Stores a new queued job of `ws` for `request_json` (`total` records).
    /// Takes no writer lock.
    pub fn submit_job(
        &self,
        ws: WorkspaceId,
        id: [u8; 16],
        request_json: &str,
        total: u64,
        now_us: i64,
    ) -> Result<JobRecord, Error> {
        job::submit(&mut *self.pool.get()?, ws, id, request_json, total, now_us)
    }

    /// A connection of the store's pool, for tests and tools that run their own SQL.
    pub fn raw_client(&self) -> Result<impl std::ops::DerefMut<Target = postgres::Client>, Error> {
        self.pool.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn thread_safety() {
        assert_send_sync::<PgStore>();
        assert_send_sync::<Prefetched>();
        assert_send_sync::<PgRead>();
        assert_send_sync::<Error>();
    }

    #[test]
    fn lock_keys_differ_per_workspace_and_carry_the_namespace() {
        let a = writer_lock_key(WorkspaceId(1));
        let b = writer_lock_key(WorkspaceId(u32::MAX));
        assert_ne!(a, b);
        assert_eq!(a >> 32, WRITER_LOCK_NAMESPACE);
        assert_eq!(b >> 32, WRITER_LOCK_NAMESPACE);
    }
}
