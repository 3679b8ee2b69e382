//! [`PgWrite`]: the write transaction of one workspace, under its writer lock.

use ahash::AHashMap;
use contactdb_backend::{
    Event, JobDataEntry, JobDataKind, NewEvent, StoredRequest, Wait, WorkspaceId,
};
use contactdb_merge::{ContactWrite, Stored};
use contactdb_policy::limits::CUSTOM_COLUMNS_MAX;
use contactdb_policy::{ColumnSpec, Contact, CustomColumn, FieldId};
use postgres::Client;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

use crate::codec;
use crate::feed;
use crate::job::{self, kind_code};
use crate::pool::Pooled;
use crate::read;
use crate::rows::{signed, unsigned};
use crate::{Error, WorkspaceSql, writer_lock_key};
use contactdb_backend::{LookupValues, Prefetched};

/// The write transaction of one workspace: it holds the workspace's
/// writer lock until it ends. Dropping it without [`PgWrite::commit`] rolls back
/// every change made through it.
pub struct PgWrite {
    conn: Option<Pooled>,
    ws: WorkspaceId,
    /// Whether the temporary staging tables exist on this connection and were
    /// written in this transaction (then they are emptied before reuse).
    staged: bool,
}

impl std::fmt::Debug for PgWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWrite")
            .field("ws", &self.ws)
            .finish_non_exhaustive()
    }
}

/// The staging table of [`PgWrite::apply`]'s changed contacts: per connection,
/// emptied at commit.
const STAGING: &str = "
    CREATE TEMP TABLE IF NOT EXISTS contactdb_contacts_in (
        workspace_id bigint, contact_id bigint, key text, fields bytea, aliases text[],
        version bigint, created_at_us bigint, updated_at_us bigint, email text, gsm text
    ) ON COMMIT DELETE ROWS";

/// The column types of a `contacts` row in a binary `COPY` (see [`write_contact`]).
const CONTACT_TYPES: [Type; 10] = [
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::BYTEA,
    Type::TEXT_ARRAY,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
];

/// Writes the final contact of each write at its id into `table` (`contacts` or
/// the staging table, both with the contact columns) by one binary `COPY`.
fn copy_contact_rows<'a>(
    c: &mut Client,
    table: &str,
    w: &i64,
    rows: impl Iterator<Item = (&'a ContactWrite, &'a i64)>,
) -> Result<(), Error> {
    let sink = c.copy_in(&format!(
        "COPY {table} (workspace_id, contact_id, key, fields, aliases, version,
         created_at_us, updated_at_us, email, gsm) FROM STDIN (FORMAT binary)"
    ))?;
    let mut out = BinaryCopyInWriter::new(sink, &CONTACT_TYPES);
    let mut fields = Vec::with_capacity(256);
    for (cw, id) in rows {
        write_contact(&mut out, w, &cw.after, *id, &mut fields)?;
    }
    out.finish()?;
    Ok(())
}

/// Writes contact `a` of workspace `w` at internal id `id` as one binary `COPY`
/// row of [`CONTACT_TYPES`] (`fields` is scratch space).
fn write_contact(
    out: &mut BinaryCopyInWriter<'_>,
    w: &i64,
    a: &Contact,
    id: i64,
    fields: &mut Vec<u8>,
) -> Result<(), Error> {
    fields.clear();
    codec::encode_fields(&a.fields, fields)?;
    let version = signed(a.version)?;
    out.write(&[
        w,
        &id,
        &a.key,
        &fields.as_slice(),
        &a.aliases,
        &version,
        &a.created_at_us,
        &a.updated_at_us,
        &a.email(),
        &a.gsm(),
    ])?;
    Ok(())
}

impl PgWrite {
    pub(crate) fn begin(mut conn: Pooled, ws: WorkspaceId, wait: Wait) -> Result<PgWrite, Error> {
        // READ COMMITTED: each statement after the lock sees every commit before it
        // (a REPEATABLE READ snapshot would be taken before the lock is held).
        conn.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")?;
        let mut w = PgWrite {
            conn: Some(conn),
            ws,
            staged: false,
        };
        let key = writer_lock_key(ws);
        let c = w.client()?;
        let locked: bool = match wait {
            Wait::No => c
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])?
                .try_get(0)?,
            Wait::Block => {
                c.execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
                true
            }
        };
        if !locked {
            return Err(Error::Busy);
        }
        read::require_workspace(c, ws)?;
        Ok(w)
    }

    pub(crate) fn client(&mut self) -> Result<&mut Client, Error> {
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(Error::Db("the write transaction has ended".to_owned())),
        }
    }

    /// The server process id of this transaction's connection (to watch it, or to
    /// end it with `pg_terminate_backend` from another connection).
    pub fn backend_pid(&mut self) -> Result<i32, Error> {
        Ok(self
            .client()?
            .query_one("SELECT pg_backend_pid()", &[])?
            .try_get(0)?)
    }

    /// The workspace this transaction writes.
    pub fn workspace(&self) -> WorkspaceId {
        self.ws
    }

    /// The contacts `values` name, as this transaction sees them (including its
    /// own earlier writes): the [`contactdb_merge::Lookup`] to plan a request
    /// with. Three queries, whatever the number of values.
    pub fn lookup_for(&mut self, values: &LookupValues) -> Result<Prefetched, Error> {
        let ws = self.ws;
        crate::lookup::fetch(self.client()?, ws, values)
    }

    /// The custom columns of the workspace, by id.
    pub fn columns(&mut self) -> Result<Vec<CustomColumn>, Error> {
        let ws = self.ws;
        read::columns(self.client()?, ws)
    }

    /// The contact whose key or alias is `key_or_alias`, as this transaction sees it.
    pub fn resolve(&mut self, key_or_alias: &str) -> Result<Option<Contact>, Error> {
        let ws = self.ws;
        read::resolve(self.client()?, ws, key_or_alias)
    }

    /// The internal id of the contact whose key or alias is `key`.
    pub fn contact_id(&mut self, key: &str) -> Result<Option<u64>, Error> {
        let w = self.ws.sql();
        let row = self.client()?.query_opt(
            "SELECT contact_id FROM identifiers WHERE workspace_id = $1 AND ident = $2",
            &[&w, &key],
        )?;
        row.map(|r| unsigned("identifiers", r.try_get(0)?))
            .transpose()
    }

    /// Writes the final state of every contact a plan changed (see
    /// [`ContactWrite`]) as sets: new contacts by one binary `COPY` straight into
    /// `contacts`; changed ones by one binary `COPY` into a staging table and one
    /// `INSERT … SELECT … ON CONFLICT (workspace_id, contact_id) DO UPDATE`; the
    /// identifiers that go (old keys, dropped aliases) in one `DELETE` (one index
    /// probe each), the new ones by one binary `COPY` into `identifiers`. Removals come before
    /// insertions, so renames, chains and swaps within one call are safe. New
    /// contacts get the workspace's next internal ids in the order of `writes`; a
    /// `before` contact's id is its [`Stored::id`] (set by the lookup, `crate::lookup`), else
    /// looked up by its key. Returns each write's internal id, in the order of
    /// `writes`.
    pub fn apply(&mut self, writes: &[ContactWrite]) -> Result<Vec<u64>, Error> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.place(writes)?;
        let (removes, puts) = identifier_changes(writes, &ids);
        let new = writes
            .iter()
            .zip(&ids)
            .filter(|(cw, _)| cw.before.is_none());
        self.copy_contacts(new)?;
        let changed: Vec<(&ContactWrite, &i64)> = writes
            .iter()
            .zip(&ids)
            .filter(|(cw, _)| cw.before.is_some())
            .collect();
        if !changed.is_empty() {
            self.stage()?;
            self.update_contacts(changed.into_iter())?;
        }
        self.write_identifiers(&removes, &puts)?;
        ids.into_iter().map(|id| unsigned("contacts", id)).collect()
    }

    /// Makes the staging table exist and empty (created by the first apply of
    /// this transaction, emptied by the later ones).
    fn stage(&mut self) -> Result<(), Error> {
        let staged = self.staged;
        let c = self.client()?;
        if staged {
            c.batch_execute("TRUNCATE contactdb_contacts_in")?;
        } else {
            c.batch_execute(STAGING)?;
        }
        self.staged = true;
        Ok(())
    }

    /// Inserts the contacts of new writes (at their fresh ids) by one binary
    /// `COPY` into `contacts`: an id already taken fails the copy (the
    /// workspace's counter is behind its contacts) instead of overwriting a contact.
    fn copy_contacts<'a>(
        &mut self,
        rows: impl Iterator<Item = (&'a ContactWrite, &'a i64)>,
    ) -> Result<(), Error> {
        let mut rows = rows.peekable();
        if rows.peek().is_none() {
            return Ok(());
        }
        let w = self.ws.sql();
        copy_contact_rows(self.client()?, "contacts", &w, rows)
    }

    /// Writes the final contact of changed writes at their ids: one binary `COPY`
    /// into the staging table, then one upsert.
    fn update_contacts<'a>(
        &mut self,
        rows: impl Iterator<Item = (&'a ContactWrite, &'a i64)>,
    ) -> Result<(), Error> {
        debug_assert!(self.staged, "the staging table is not ready");
        let w = self.ws.sql();
        let c = self.client()?;
        copy_contact_rows(c, "contactdb_contacts_in", &w, rows)?;
        c.batch_execute(
            "INSERT INTO contacts (workspace_id, contact_id, key, fields, aliases, version,
                                   created_at_us, updated_at_us, email, gsm)
             SELECT workspace_id, contact_id, key, fields, aliases, version, created_at_us,
                    updated_at_us, email, gsm
             FROM contactdb_contacts_in
             ON CONFLICT (workspace_id, contact_id) DO UPDATE SET
                 key = EXCLUDED.key, fields = EXCLUDED.fields, aliases = EXCLUDED.aliases,
                 version = EXCLUDED.version, created_at_us = EXCLUDED.created_at_us,
                 updated_at_us = EXCLUDED.updated_at_us, email = EXCLUDED.email,
                 gsm = EXCLUDED.gsm",
        )?;
        Ok(())
    }

    /// Deletes the identifiers in `removes`, then inserts `puts` (one binary
    /// `COPY`), so that an identifier moving between contacts within one call is
    /// safe.
    fn write_identifiers(&mut self, removes: &[&str], puts: &[(&str, i64)]) -> Result<(), Error> {
        let w = self.ws.sql();
        let c = self.client()?;
        if !removes.is_empty() {
            // One index probe per identifier (see `crate::lookup`), then a delete by
            // row address.
            c.execute(
                "DELETE FROM identifiers WHERE ctid = ANY(ARRAY(
                     SELECT i.ctid FROM unnest($2::text[]) AS u(ident)
                     CROSS JOIN LATERAL (SELECT ctid FROM identifiers
                                         WHERE workspace_id = $1 AND ident = u.ident
                                         OFFSET 0) AS i))",
                &[&w, &removes],
            )?;
        }
        if !puts.is_empty() {
            let sink = c.copy_in(
                "COPY identifiers (workspace_id, ident, contact_id) FROM STDIN (FORMAT binary)",
            )?;
            let mut out = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::INT8]);
            for (ident, id) in puts {
                out.write(&[&w, ident, id])?;
            }
            out.finish()?;
        }
        Ok(())
    }

    /// The internal id of each write's contact: the stored id of its `before`
    /// (checked against `identifiers` in debug builds), else found by key; new
    /// contacts get the next ids.
    fn place(&mut self, writes: &[ContactWrite]) -> Result<Vec<i64>, Error> {
        let w = self.ws.sql();
        let check = cfg!(debug_assertions);
        let wanted: Vec<&str> = writes
            .iter()
            .filter_map(|cw| cw.before.as_ref())
            .filter(|b| check || b.id.is_none())
            .map(|b| b.contact.key.as_str())
            .collect();
        let c = self.client()?;
        let mut found: AHashMap<String, i64> = AHashMap::with_capacity(wanted.len());
        if !wanted.is_empty() {
            for row in c.query(
                "SELECT u.ident, i.contact_id FROM unnest($2::text[]) AS u(ident)
                 CROSS JOIN LATERAL (SELECT contact_id FROM identifiers
                                     WHERE workspace_id = $1 AND ident = u.ident OFFSET 0) AS i",
                &[&w, &wanted],
            )? {
                found.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        let new = i64::try_from(writes.iter().filter(|cw| cw.before.is_none()).count())
            .unwrap_or(i64::MAX);
        let mut next = if new > 0 {
            let row = c.query_opt(
                "UPDATE counters SET next_contact_id = next_contact_id + $2, contacts = contacts + $2
                 WHERE workspace_id = $1 RETURNING next_contact_id - $2",
                &[&w, &new],
            )?;
            match row {
                Some(r) => r.try_get::<_, i64>(0)?,
                None => {
                    return Err(Error::damaged(
                        "counters",
                        "the workspace has no counters row",
                    ));
                }
            }
        } else {
            0
        };
        let mut ids = Vec::with_capacity(writes.len());
        for cw in writes {
            let id = match &cw.before {
                Some(Stored {
                    id: hint,
                    contact: b,
                }) => {
                    let by_key = found.get(&b.key).copied();
                    match (*hint, by_key) {
                        (Some(hint), Some(id)) if signed(hint)? != id => {
                            return Err(Error::damaged(
                                "identifiers",
                                format!(
                                    "contact {:?} was read at id {hint} but its key names id {id}",
                                    b.key
                                ),
                            ));
                        }
                        (_, Some(id)) => id,
                        (Some(hint), None) if !check => signed(hint)?,
                        _ => {
                            return Err(Error::damaged(
                                "identifiers",
                                format!("no entry for the stored contact key {:?}", b.key),
                            ));
                        }
                    }
                }
                None => {
                    let id = next;
                    next = next.saturating_add(1);
                    id
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    /// Appends `events` to the workspace's feed in order, all stamped `at_us` and
    /// with the given trigger and job; returns the last sequence number given (the
    /// current one when `events` is empty). Sequence numbers come from the
    /// workspace's counter under the writer lock: commit order is sequence order.
    pub fn append_events(
        &mut self,
        events: &[NewEvent<'_>],
        at_us: i64,
        trigger: Option<&str>,
        job: Option<&str>,
    ) -> Result<u64, Error> {
        let ws = self.ws;
        let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let c = self.client()?;
        let row = c.query_opt(
            "UPDATE counters SET feed_seq = feed_seq + $2 WHERE workspace_id = $1 RETURNING feed_seq",
            &[&ws.sql(), &n],
        )?;
        let Some(row) = row else {
            return Err(Error::damaged(
                "counters",
                "the workspace has no counters row",
            ));
        };
        let last = unsigned("counters", row.try_get(0)?)?;
        if !events.is_empty() {
            let first = last.saturating_sub(unsigned("feed", n)?).saturating_add(1);
            feed::copy_events(c, ws, first, events, at_us, trigger, job)?;
        }
        Ok(last)
    }

    /// Events after `after`, as this transaction sees them.
    pub fn events(&mut self, after: u64, limit: usize) -> Result<Vec<Event>, Error> {
        let ws = self.ws;
        feed::events(self.client()?, ws, after, limit)
    }

    /// Removes the oldest events (at most `max`) that every consumer has
    /// acknowledged and that are older than `before_us`; returns how many went.
    ///
    /// Events are appended in time order, so when the oldest event is not older
    /// than `before_us` there is nothing to trim: one primary-key probe then,
    /// instead of a scan of the feed (every request trims).
    pub fn trim_feed(&mut self, before_us: i64, max: usize) -> Result<u64, Error> {
        let w = self.ws.sql();
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let c = self.client()?;
        let oldest = c.query_opt(
            "SELECT at_us FROM feed WHERE workspace_id = $1 ORDER BY seq LIMIT 1",
            &[&w],
        )?;
        let oldest: Option<i64> = oldest.map(|r| r.try_get(0)).transpose()?;
        if oldest.is_none_or(|at| at >= before_us) {
            return Ok(0);
        }
        let n = c.execute(
            "DELETE FROM feed WHERE workspace_id = $1 AND seq IN (
                 SELECT seq FROM feed
                 WHERE workspace_id = $1 AND at_us < $2
                   AND seq <= coalesce((SELECT min(acked) FROM feed_consumers
                                        WHERE workspace_id = $1), 9223372036854775807)
                 ORDER BY seq LIMIT $3)",
            &[&w, &before_us, &max],
        )?;
        Ok(n)
    }

    /// Records that `request_id` was applied, replacing an earlier
    /// (expired) entry of the same id.
    pub fn put_request(&mut self, request_id: &str, req: &StoredRequest) -> Result<(), Error> {
        let w = self.ws.sql();
        self.client()?.execute(
            "INSERT INTO requests (workspace_id, request_id, body_hash, applied_at_us, report_json)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (workspace_id, request_id) DO UPDATE SET
                 body_hash = EXCLUDED.body_hash, applied_at_us = EXCLUDED.applied_at_us,
                 report_json = EXCLUDED.report_json",
            &[
                &w,
                &request_id,
                &req.body_hash.as_slice(),
                &req.applied_at_us,
                &req.report_json,
            ],
        )?;
        Ok(())
    }

    /// The stored record of `request_id`, as this transaction sees it.
    pub fn get_request(&mut self, request_id: &str) -> Result<Option<StoredRequest>, Error> {
        let ws = self.ws;
        read::request(self.client()?, ws, request_id)
    }

    /// Removes the request ids applied strictly before `applied_before_us`;
    /// returns how many went.
    pub fn prune_requests(&mut self, applied_before_us: i64) -> Result<u64, Error> {
        let w = self.ws.sql();
        Ok(self.client()?.execute(
            "DELETE FROM requests WHERE workspace_id = $1 AND applied_at_us < $2",
            &[&w, &applied_before_us],
        )?)
    }

    /// Declares or redeclares a custom column: a new name gets the next
    /// field id (never reused); an existing one keeps its id, and may change type
    /// only while no contact has a value for it.
    pub fn declare_column(&mut self, spec: &ColumnSpec) -> Result<CustomColumn, Error> {
        spec.validate()
            .map_err(|message| Error::ColumnInvalid { message })?;
        let ws = self.ws;
        let w = ws.sql();
        let (ty, max_len) = read::type_to_stored(spec.ty);
        let c = self.client()?;
        let old = c.query_opt(
            "SELECT field_id, type, max_len FROM columns WHERE workspace_id = $1 AND name = $2",
            &[&w, &spec.name],
        )?;
        let id: i32 = match old {
            Some(r) => {
                let id: i32 = r.try_get(0)?;
                let (old_ty, old_max): (String, Option<i32>) = (r.try_get(1)?, r.try_get(2)?);
                if (old_ty.as_str(), old_max) != (ty, max_len) && self.field_in_use(id)? {
                    return Err(Error::ColumnInUse {
                        name: spec.name.clone(),
                    });
                }
                id
            }
            None => {
                let count: i64 = c
                    .query_one(
                        "SELECT count(*) FROM columns WHERE workspace_id = $1",
                        &[&w],
                    )?
                    .try_get(0)?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= CUSTOM_COLUMNS_MAX {
                    return Err(Error::TooManyColumns);
                }
                let row = c.query_one(
                    "UPDATE counters SET next_field_id = greatest(next_field_id, $2) + 1
                     WHERE workspace_id = $1 RETURNING next_field_id - 1",
                    &[&w, &i32::from(FieldId::CUSTOM_FIRST)],
                )?;
                let id: i32 = row.try_get(0)?;
                if id > i32::from(u16::MAX) {
                    return Err(Error::TooManyColumns);
                }
                id
            }
        };
        self.client()?.execute(
            "INSERT INTO columns (workspace_id, name, field_id, type, max_len, import_enabled, required)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (workspace_id, name) DO UPDATE SET
                 type = EXCLUDED.type, max_len = EXCLUDED.max_len,
                 import_enabled = EXCLUDED.import_enabled, required = EXCLUDED.required",
            &[&w, &spec.name, &id, &ty, &max_len, &spec.import_enabled, &spec.required],
        )?;
        Ok(CustomColumn {
            id: FieldId(u16::try_from(id).map_err(|_| Error::TooManyColumns)?),
            spec: spec.clone(),
        })
    }

    /// Whether any contact has a value for field `id` (a scan of the workspace).
    fn field_in_use(&mut self, id: i32) -> Result<bool, Error> {
        let field = FieldId(u16::try_from(id).map_err(|_| Error::damaged("columns", "field id"))?);
        let w = self.ws.sql();
        let mut after = 0i64;
        loop {
            let rows = self.client()?.query(
                "SELECT contact_id, fields FROM contacts WHERE workspace_id = $1 AND contact_id > $2
                 ORDER BY contact_id LIMIT 5000",
                &[&w, &after],
            )?;
            for r in &rows {
                after = r.try_get(0)?;
                let bytes: &[u8] = r.try_get(1)?;
                if codec::decode_fields(bytes)?.contains(field) {
                    return Ok(true);
                }
            }
            if rows.len() < 5000 {
                return Ok(false);
            }
        }
    }

    /// Puts one `job_data` entry of job `number`.
    pub fn put_job_data(
        &mut self,
        number: u64,
        kind: JobDataKind,
        rest: &[u8],
        value: &[u8],
    ) -> Result<(), Error> {
        let w = self.ws.sql();
        self.client()?.execute(
            "INSERT INTO job_data (workspace_id, number, kind, rest, value) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (workspace_id, number, kind, rest) DO UPDATE SET value = EXCLUDED.value",
            &[&w, &signed(number)?, &kind_code(kind), &rest, &value],
        )?;
        Ok(())
    }

    /// Every `job_data` entry of job `number` of this kind, as this transaction
    /// sees them.
    pub fn job_data(&mut self, number: u64, kind: JobDataKind) -> Result<Vec<JobDataEntry>, Error> {
        let ws = self.ws;
        job::data(self.client()?, ws, number, kind)
    }

    /// Commits every change made through this transaction, and releases the
    /// writer lock.
    pub fn commit(mut self) -> Result<(), Error> {
        let Some(mut c) = self.conn.take() else {
            return Err(Error::Db("the write transaction has ended".to_owned()));
        };
        match c.batch_execute("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => {
                c.discard();
                Err(e.into())
            }
        }
    }

    /// Rolls back every change made through this transaction (as dropping it does).
    pub fn rollback(mut self) -> Result<(), Error> {
        let Some(mut c) = self.conn.take() else {
            return Ok(());
        };
        match c.batch_execute("ROLLBACK") {
            Ok(()) => Ok(()),
            Err(e) => {
                c.discard();
                Err(e.into())
            }
        }
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        if let Some(mut c) = self.conn.take()
            && c.batch_execute("ROLLBACK").is_err()
        {
            c.discard();
        }
    }
}

/// The identifiers `writes` (their contacts at `ids`) drop and add: a changed
/// key and dropped aliases go; a new contact's key, a changed key and new
/// aliases come, pointing at the contact's id.
fn identifier_changes<'a>(
    writes: &'a [ContactWrite],
    ids: &[i64],
) -> (Vec<&'a str>, Vec<(&'a str, i64)>) {
    let mut removes: Vec<&str> = Vec::new();
    let mut puts: Vec<(&str, i64)> = Vec::new();
    for (cw, &id) in writes.iter().zip(ids) {
        let a = &cw.after;
        let b = cw.before.as_ref().map(|b| &b.contact);
        let key_changed = b.is_some_and(|b| b.key != a.key);
        if let Some(b) = b {
            if key_changed {
                removes.push(&b.key);
            }
            removes.extend(
                b.aliases
                    .iter()
                    .filter(|x| !a.aliases.contains(x))
                    .map(String::as_str),
            );
        }
        if b.is_none() || key_changed {
            puts.push((&a.key, id));
        }
        for alias in &a.aliases {
            if !b.is_some_and(|b| b.aliases.contains(alias)) {
                puts.push((alias, id));
            }
        }
    }
    (removes, puts)
}
