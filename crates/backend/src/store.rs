//! [`Backend`]: what the facade asks of a storage engine. The embedded redb file
//! and PostgreSQL implement it; the facade holds a `Box<dyn Backend>` and knows no
//! engine.
//!
//! A backend hands out transactions: [`ReadTxn`], one consistent view of the whole
//! database, and [`WriteTxn`], the write transaction of one workspace (redb has one
//! writer per file, PostgreSQL one per workspace; either way, while a `WriteTxn`
//! lives no other writer changes its workspace). Dropping a `WriteTxn` without
//! [`WriteTxn::commit`] rolls it back.
//!
//! Every call fails with a [`Failure`], in the same terms for every backend.

use contactdb_merge::{ContactWrite, Lookup};
use contactdb_policy::{BulkRequest, Catalog, ColumnSpec, CustomColumn, Prepared};

use crate::{
    ApiKey, CampaignInfo, ContactReads, Event, Failure, JobDataEntry, JobDataKind, JobRecord,
    KeyRole, Member, NewEvent, StoredRequest, Wait, WorkspaceId, WorkspaceInfo,
};

/// The lookups a request is planned against: the merge's [`Lookup`] over one
/// workspace's contacts as the write (or read) that made it sees them.
pub struct PlanLookup<'a>(Box<dyn Lookup<Error = Failure> + Send + 'a>);

impl<'a> PlanLookup<'a> {
    /// `lookup`, its errors made [`Failure`]s.
    pub fn new<L>(lookup: L) -> Self
    where
        L: Lookup + Send + 'a,
        L::Error: Into<Failure>,
    {
        PlanLookup(Box::new(FailureLookup(lookup)))
    }
}

impl std::fmt::Debug for PlanLookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanLookup").finish_non_exhaustive()
    }
}

impl Lookup for PlanLookup<'_> {
    type Error = Failure;

    fn by_identifier(&self, id: &str) -> Result<Option<contactdb_merge::Stored>, Failure> {
        self.0.by_identifier(id)
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Failure> {
        self.0.keys_by_email(email)
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Failure> {
        self.0.keys_by_phone(gsm)
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<contactdb_merge::Stored>, Failure> {
        self.0.contacts_by_email(email)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<contactdb_merge::Stored>, Failure> {
        self.0.contacts_by_phone(gsm)
    }
}

/// A request about to be planned, for a backend that fetches what the plan may
/// look up ahead of time (PostgreSQL reads every contact the request names in a
/// few queries); a backend that looks up on demand ignores it.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The request.
    pub req: &'a BulkRequest,
    /// Its prepared form.
    pub prepared: &'a Prepared,
    /// The workspace's columns.
    pub catalog: &'a Catalog,
}

impl PlanInput<'_> {
    /// How many records the request holds.
    pub fn records(&self) -> u64 {
        u64::try_from(self.req.records.len()).unwrap_or(u64::MAX)
    }
}

/// One integrity problem a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: the table.
    pub table: &'static str,
    /// Which entry (its key, readable).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A storage engine holding contactdb databases.
pub trait Backend: Send + Sync {
    /// A read transaction: one consistent view of the last committed state.
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, Failure>;

    /// Begins the write transaction of workspace `ws`. With [`Wait::No`] it fails
    /// at once with [`Failure::Busy`] while another writer holds the workspace.
    fn begin_write(&self, ws: WorkspaceId, wait: Wait) -> Result<Box<dyn WriteTxn + '_>, Failure>;

    /// Creates a workspace (its slug and UUID must be free).
    fn create_workspace(
        &self,
        slug: &str,
        uuid: [u8; 16],
        now_us: i64,
    ) -> Result<WorkspaceInfo, Failure>;

    /// Whether the handle was opened read-only (every write is then refused).
    fn is_read_only(&self) -> bool;

    /// Stores a new queued job of `ws` for `request_json` (`total` records).
    fn submit_job(
        &self,
        ws: WorkspaceId,
        id: [u8; 16],
        request_json: String,
        total: u64,
        now_us: i64,
    ) -> Result<JobRecord, Failure>;

    /// Takes job `id` of `ws` (or, without an id, the oldest one) to run it, if it
    /// is queued or running without a live runner: the job as stored, in the state
    /// it had (a backend whose runners take leases records `runner`'s lease until
    /// `now_us + lease_us` and returns the record with its lease). `None` when there
    /// is no such job.
    fn claim_job(
        &self,
        ws: WorkspaceId,
        id: Option<&[u8; 16]>,
        runner: &str,
        lease_us: i64,
        now_us: i64,
    ) -> Result<Option<JobRecord>, Failure>;

    /// Sets consumer `name`'s acknowledged sequence number in `ws`, creating the
    /// consumer; a cursor never moves back. Returns the cursor after the call.
    fn ack(&self, ws: WorkspaceId, name: &str, seq: u64) -> Result<u64, Failure>;

    /// Removes consumer `name` of `ws`; returns whether it existed.
    fn drop_consumer(&self, ws: WorkspaceId, name: &str) -> Result<bool, Failure>;

    /// Checks every invariant the backend keeps; an empty list means consistent.
    fn check(&self) -> Result<Vec<Problem>, Failure>;

    /// The size of the database file in bytes; `None` when the data is not one
    /// file of this machine.
    fn file_size(&self) -> Result<Option<u64>, Failure>;

    /// What the backend is, for messages: a path or `host:port/dbname`.
    fn describe(&self) -> String;

    /// Downcasting, for what only one engine does (a file backup).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// One consistent view of a database.
pub trait ReadTxn {
    /// Every workspace.
    fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, Failure>;
    /// The workspace named `slug_or_uuid` (slug first, then UUID text).
    fn workspace(&self, slug_or_uuid: &str) -> Result<Option<WorkspaceInfo>, Failure>;
    /// The custom columns of `ws`.
    fn columns(&self, ws: WorkspaceId) -> Result<Vec<CustomColumn>, Failure>;
    /// The contacts of `ws`.
    fn contacts(&self, ws: WorkspaceId) -> Result<Box<dyn ContactReads + Send + Sync>, Failure>;
    /// The lookups to plan `input` against the contacts of `ws` (a dry run).
    fn plan_lookup(
        &self,
        ws: WorkspaceId,
        input: &PlanInput<'_>,
    ) -> Result<PlanLookup<'static>, Failure>;
    /// Events of `ws` with `seq > after`, oldest first, at most `limit`.
    fn events(&self, ws: WorkspaceId, after: u64, limit: usize) -> Result<Vec<Event>, Failure>;
    /// The highest sequence number `ws` gave out (0: none).
    fn last_seq(&self, ws: WorkspaceId) -> Result<u64, Failure>;
    /// Every consumer of `ws` and its cursor.
    fn consumers(&self, ws: WorkspaceId) -> Result<Vec<(String, u64)>, Failure>;
    /// Consumer `name`'s cursor (0 for one never seen).
    fn consumer(&self, ws: WorkspaceId, name: &str) -> Result<u64, Failure>;
    /// Job `id` of `ws`.
    fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, Failure>;
    /// The jobs of `ws` in submission order (only queued and running ones when
    /// `unfinished_only`). A record's `report_json` may be left empty where the
    /// store keeps a long report apart from it: [`ReadTxn::job`] reads it.
    fn jobs(&self, ws: WorkspaceId, unfinished_only: bool) -> Result<Vec<JobRecord>, Failure>;
    /// Job `number`'s entries of `kind`, in key order.
    fn job_data(
        &self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
    ) -> Result<Vec<JobDataEntry>, Failure>;
    /// Campaign `name` of `ws`.
    fn campaign(&self, ws: WorkspaceId, name: &str) -> Result<Option<CampaignInfo>, Failure>;
    /// The campaigns of `ws`, by name.
    fn campaigns(&self, ws: WorkspaceId) -> Result<Vec<CampaignInfo>, Failure>;
    /// Members of campaign `number` in pick order after `(priority, joined)`, at
    /// most `limit`.
    fn members(
        &self,
        ws: WorkspaceId,
        number: u32,
        after: Option<(u32, u64)>,
        limit: usize,
    ) -> Result<Vec<Member>, Failure>;
    /// The key whose token hashes to `hash`, in any workspace.
    fn api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, Failure>;
    /// The keys of `ws`.
    fn api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKey>, Failure>;
}

/// The write transaction of one workspace.
pub trait WriteTxn {
    /// The workspace's custom columns as this transaction sees them.
    fn columns(&mut self) -> Result<Vec<CustomColumn>, Failure>;
    /// The lookups to plan `input` against the contacts as this transaction sees
    /// them, its earlier writes included (requests applied one after another in
    /// one transaction are planned through it).
    fn plan_lookup(&mut self, input: &PlanInput<'_>) -> Result<PlanLookup<'_>, Failure>;
    /// A lookup of the contacts as this transaction starts from (a read begun
    /// now, before it writes), that does not borrow the transaction: several
    /// requests of one transaction are planned through it while the transaction
    /// writes; `records` is about how many records each request planned through it
    /// holds. `None` (the default): the backend gives none.
    fn lookup_ahead(&mut self, records: u64) -> Result<Option<PlanLookup<'static>>, Failure> {
        let _ = records;
        Ok(None)
    }
    /// Writes a plan's contacts; returns the internal id of each, in order.
    fn apply(&mut self, writes: &[ContactWrite]) -> Result<Vec<u64>, Failure>;
    /// The internal id of the contact whose key is `key`.
    fn contact_id(&mut self, key: &str) -> Result<Option<u64>, Failure>;
    /// The record of applied request id `request_id`.
    fn request(&mut self, request_id: &str) -> Result<Option<StoredRequest>, Failure>;
    /// Records an applied request id.
    fn put_request(&mut self, request_id: &str, req: &StoredRequest) -> Result<(), Failure>;
    /// Forgets request ids applied before `applied_before_us`.
    fn prune_requests(&mut self, applied_before_us: i64) -> Result<(), Failure>;
    /// Declares (or changes) a custom column.
    fn declare_column(&mut self, spec: &ColumnSpec) -> Result<CustomColumn, Failure>;
    /// Appends events to the feed, numbered after the last one.
    fn append_events(
        &mut self,
        events: &[NewEvent<'_>],
        at_us: i64,
        trigger: Option<&str>,
        job: Option<&str>,
    ) -> Result<(), Failure>;
    /// Removes up to `max` of the oldest events every consumer has read, older
    /// than `before_us`.
    fn trim_feed(&mut self, before_us: i64, max: usize) -> Result<(), Failure>;
    /// Campaign `name`.
    fn campaign(&mut self, name: &str) -> Result<Option<CampaignInfo>, Failure>;
    /// Creates campaign `name` (refused with [`Failure::Invalid`] when it exists).
    fn create_campaign(
        &mut self,
        name: &str,
        required: &[String],
        now_us: i64,
    ) -> Result<CampaignInfo, Failure>;
    /// Drops campaign `name` and its members; returns whether it existed.
    fn drop_campaign(&mut self, name: &str) -> Result<bool, Failure>;
    /// Makes each `(contact id, priority)` a member of campaign `number`; returns,
    /// for each, whether it joined now (`false`: it was a member already).
    fn join_campaign(&mut self, number: u32, joiners: &[(u64, u32)]) -> Result<Vec<bool>, Failure>;
    /// Moves each `(contact id, priority)` to its new priority in every campaign.
    fn set_member_priorities(&mut self, moves: &[(u64, u32)]) -> Result<(), Failure>;
    /// Stores a new API key.
    fn create_api_key(
        &mut self,
        hash: &[u8; 32],
        id: [u8; 16],
        role: KeyRole,
        now_us: i64,
    ) -> Result<ApiKey, Failure>;
    /// Revokes key `id`; returns whether it was live.
    fn revoke_api_key(&mut self, id: &[u8; 16]) -> Result<bool, Failure>;
    /// Job `id`, as this transaction sees it (locked for it where the backend
    /// locks rows).
    fn job(&mut self, id: &[u8; 16]) -> Result<Option<JobRecord>, Failure>;
    /// Stores a job's state, progress, report, error and lease.
    fn put_job(&mut self, job: &JobRecord) -> Result<(), Failure>;
    /// Puts one `job_data` entry of job `number`.
    fn put_job_data(
        &mut self,
        number: u64,
        kind: JobDataKind,
        rest: &[u8],
        value: &[u8],
    ) -> Result<(), Failure>;
    /// Job `number`'s entries of `kind`, as this transaction sees them.
    fn job_data(&mut self, number: u64, kind: JobDataKind) -> Result<Vec<JobDataEntry>, Failure>;
    /// Deletes every `job_data` entry of job `number`.
    fn clear_job_data(&mut self, number: u64) -> Result<(), Failure>;
    /// Commits every change made through this transaction.
    fn commit(self: Box<Self>) -> Result<(), Failure>;
}

/// A [`Lookup`] whose errors become [`Failure`]s: how a backend hands its own
/// lookup to the merge as a [`PlanLookup`].
#[derive(Debug)]
pub struct FailureLookup<L>(pub L);

impl<L> Lookup for FailureLookup<L>
where
    L: Lookup,
    L::Error: Into<Failure>,
{
    type Error = Failure;

    fn by_identifier(&self, id: &str) -> Result<Option<contactdb_merge::Stored>, Failure> {
        self.0.by_identifier(id).map_err(Into::into)
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Failure> {
        self.0.keys_by_email(email).map_err(Into::into)
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Failure> {
        self.0.keys_by_phone(gsm).map_err(Into::into)
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<contactdb_merge::Stored>, Failure> {
        self.0.contacts_by_email(email).map_err(Into::into)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<contactdb_merge::Stored>, Failure> {
        self.0.contacts_by_phone(gsm).map_err(Into::into)
    }
}
