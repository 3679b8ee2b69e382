//! The PostgreSQL store as a [`Backend`]: one writer per workspace, jobs shared
//! by every process under leases.

use contactdb_backend::{
    ApiKey, Backend, CampaignInfo, ContactReads, Event, Failure, JobDataEntry, JobDataKind,
    JobRecord, KeyRole, Member, NewEvent, PlanInput, PlanLookup, Problem, ReadTxn, StoredRequest,
    Wait, WorkspaceId, WorkspaceInfo, WriteTxn,
};
use contactdb_merge::ContactWrite;
use contactdb_policy::{ColumnSpec, CustomColumn};

use crate::job::{self, JOB_COLUMNS};
use crate::rows::signed;
use crate::{Error, PgContacts, PgRead, PgStore, PgWrite, WorkspaceSql};
use contactdb_backend::LookupValues;

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Busy => Failure::Busy,
            Error::Damaged { .. } | Error::SchemaTooNew { .. } => Failure::Damaged {
                detail: e.to_string(),
            },
            Error::InvalidSlug { slug } => Failure::InvalidSlug { slug },
            Error::WorkspaceExists { slug } => Failure::WorkspaceExists { slug },
            Error::LeaseLost => Failure::LeaseLost,
            Error::Unsupported(what) => Failure::Unsupported {
                backend: "PostgreSQL",
                what,
            },
            Error::ColumnInvalid { .. }
            | Error::ColumnInUse { .. }
            | Error::TooManyColumns
            | Error::CampaignExists { .. }
            | Error::KeyExists
            | Error::NotFound(_) => Failure::Invalid {
                message: e.to_string(),
            },
            other => Failure::Io {
                detail: other.to_string(),
            },
        }
    }
}

impl Backend for PgStore {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, Failure> {
        Ok(Box::new(PgReadTxn {
            store: self,
            read: PgStore::read(self)?,
        }))
    }

    fn begin_write(&self, ws: WorkspaceId, wait: Wait) -> Result<Box<dyn WriteTxn + '_>, Failure> {
        Ok(Box::new(PgStore::begin_write(self, ws, wait)?))
    }

    fn create_workspace(
        &self,
        slug: &str,
        uuid: [u8; 16],
        now_us: i64,
    ) -> Result<WorkspaceInfo, Failure> {
        Ok(PgStore::create_workspace(self, slug, uuid, now_us)?)
    }

    fn is_read_only(&self) -> bool {
        false
    }

    fn submit_job(
        &self,
        ws: WorkspaceId,
        id: [u8; 16],
        request_json: String,
        total: u64,
        now_us: i64,
    ) -> Result<JobRecord, Failure> {
        Ok(PgStore::submit_job(
            self,
            ws,
            id,
            &request_json,
            total,
            now_us,
        )?)
    }

    /// With `FOR UPDATE SKIP LOCKED`: runners of several processes share the
    /// queue; the claim (state running, `runner`'s lease) commits before this
    /// returns.
    fn claim_job(
        &self,
        ws: WorkspaceId,
        id: Option<&[u8; 16]>,
        runner: &str,
        lease_us: i64,
        now_us: i64,
    ) -> Result<Option<JobRecord>, Failure> {
        let mut c = self.raw_client()?;
        Ok(job::claim(&mut c, ws, id, runner, lease_us, now_us)?)
    }

    fn ack(&self, ws: WorkspaceId, name: &str, seq: u64) -> Result<u64, Failure> {
        Ok(PgStore::ack(self, ws, name, seq)?)
    }

    fn drop_consumer(&self, ws: WorkspaceId, name: &str) -> Result<bool, Failure> {
        Ok(PgStore::drop_consumer(self, ws, name)?)
    }

    fn check(&self) -> Result<Vec<Problem>, Failure> {
        Ok(PgStore::check(self)?)
    }

    fn file_size(&self) -> Result<Option<u64>, Failure> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("postgres://{}", self.target())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A read transaction with the store beside it, for the contact reads (which
/// take a snapshot of their own).
struct PgReadTxn<'a> {
    store: &'a PgStore,
    read: PgRead,
}

impl ReadTxn for PgReadTxn<'_> {
    fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, Failure> {
        Ok(self.read.workspaces()?)
    }

    fn workspace(&self, slug_or_uuid: &str) -> Result<Option<WorkspaceInfo>, Failure> {
        Ok(self.read.workspace(slug_or_uuid)?)
    }

    fn columns(&self, ws: WorkspaceId) -> Result<Vec<CustomColumn>, Failure> {
        Ok(self.read.columns(ws)?)
    }

    fn contacts(&self, ws: WorkspaceId) -> Result<Box<dyn ContactReads + Send + Sync>, Failure> {
        Ok(Box::new(PgContacts::new(PgStore::read(self.store)?, ws)))
    }

    fn plan_lookup(
        &self,
        ws: WorkspaceId,
        input: &PlanInput<'_>,
    ) -> Result<PlanLookup<'static>, Failure> {
        let values = LookupValues::of_request(input.req, input.prepared, input.catalog);
        Ok(PlanLookup::new(self.read.lookup_for(ws, &values)?))
    }

    fn events(&self, ws: WorkspaceId, after: u64, limit: usize) -> Result<Vec<Event>, Failure> {
        Ok(self.read.events(ws, after, limit)?)
    }

    fn last_seq(&self, ws: WorkspaceId) -> Result<u64, Failure> {
        Ok(self.read.last_seq(ws)?)
    }

    fn consumers(&self, ws: WorkspaceId) -> Result<Vec<(String, u64)>, Failure> {
        Ok(self.read.consumers(ws)?)
    }

    fn consumer(&self, ws: WorkspaceId, name: &str) -> Result<u64, Failure> {
        Ok(self.read.consumer(ws, name)?)
    }

    fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, Failure> {
        Ok(self.read.job(ws, id)?)
    }

    fn jobs(&self, ws: WorkspaceId, unfinished_only: bool) -> Result<Vec<JobRecord>, Failure> {
        Ok(self.read.jobs(ws, unfinished_only)?)
    }

    fn job_data(
        &self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
    ) -> Result<Vec<JobDataEntry>, Failure> {
        Ok(self.read.job_data(ws, number, kind)?)
    }

    fn campaign(&self, ws: WorkspaceId, name: &str) -> Result<Option<CampaignInfo>, Failure> {
        Ok(self.read.campaign(ws, name)?)
    }

    fn campaigns(&self, ws: WorkspaceId) -> Result<Vec<CampaignInfo>, Failure> {
        Ok(self.read.campaigns(ws)?)
    }

    fn members(
        &self,
        ws: WorkspaceId,
        number: u32,
        after: Option<(u32, u64)>,
        limit: usize,
    ) -> Result<Vec<Member>, Failure> {
        Ok(self.read.members(ws, number, after, limit)?)
    }

    fn api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, Failure> {
        Ok(self.read.api_key(hash)?)
    }

    fn api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKey>, Failure> {
        Ok(self.read.api_keys(ws)?)
    }
}

impl PgWrite {
    /// Job `id` of this workspace, its row locked for this transaction.
    pub fn job_for_update(&mut self, id: &[u8; 16]) -> Result<Option<JobRecord>, Error> {
        let w = self.workspace().sql();
        let row = self.client()?.query_opt(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
            ),
            &[&w, &uuid::Uuid::from_bytes(*id)],
        )?;
        row.as_ref().map(job::record).transpose()
    }

    /// Stores a job's state, progress, report, error and lease (the row of its
    /// number).
    pub fn put_job(&mut self, j: &JobRecord) -> Result<(), Error> {
        let w = self.workspace().sql();
        let n = self.client()?.execute(
            "UPDATE jobs SET state = $3, processed = $4, updated_at_us = $5, report_json = $6,
                             error = $7, lease_owner = $8, lease_until_us = $9
             WHERE workspace_id = $1 AND number = $2",
            &[
                &w,
                &signed(j.number)?,
                &i16::from(j.state.code()),
                &signed(j.processed)?,
                &j.updated_at_us,
                &j.report_json,
                &j.error,
                &j.lease_owner,
                &j.lease_until_us,
            ],
        )?;
        if n == 1 {
            Ok(())
        } else {
            Err(Error::NotFound(format!("job {}", j.number)))
        }
    }

    /// Deletes every `job_data` entry of job `number`.
    pub fn clear_job_data(&mut self, number: u64) -> Result<(), Error> {
        let w = self.workspace().sql();
        self.client()?.execute(
            "DELETE FROM job_data WHERE workspace_id = $1 AND number = $2",
            &[&w, &signed(number)?],
        )?;
        Ok(())
    }
}

impl WriteTxn for PgWrite {
    fn columns(&mut self) -> Result<Vec<CustomColumn>, Failure> {
        Ok(PgWrite::columns(self)?)
    }

    /// Every contact the request names, read through this transaction (so with
    /// its earlier writes) in a few queries.
    fn plan_lookup(&mut self, input: &PlanInput<'_>) -> Result<PlanLookup<'_>, Failure> {
        let values = LookupValues::of_request(input.req, input.prepared, input.catalog);
        Ok(PlanLookup::new(self.lookup_for(&values)?))
    }

    fn apply(&mut self, writes: &[ContactWrite]) -> Result<Vec<u64>, Failure> {
        Ok(PgWrite::apply(self, writes)?)
    }

    fn contact_id(&mut self, key: &str) -> Result<Option<u64>, Failure> {
        Ok(PgWrite::contact_id(self, key)?)
    }

    fn request(&mut self, request_id: &str) -> Result<Option<StoredRequest>, Failure> {
        Ok(self.get_request(request_id)?)
    }

    fn put_request(&mut self, request_id: &str, req: &StoredRequest) -> Result<(), Failure> {
        Ok(PgWrite::put_request(self, request_id, req)?)
    }

    fn prune_requests(&mut self, applied_before_us: i64) -> Result<(), Failure> {
        PgWrite::prune_requests(self, applied_before_us)?;
        Ok(())
    }

    fn declare_column(&mut self, spec: &ColumnSpec) -> Result<CustomColumn, Failure> {
        Ok(PgWrite::declare_column(self, spec)?)
    }

    fn append_events(
        &mut self,
        events: &[NewEvent<'_>],
        at_us: i64,
        trigger: Option<&str>,
        job: Option<&str>,
    ) -> Result<(), Failure> {
        PgWrite::append_events(self, events, at_us, trigger, job)?;
        Ok(())
    }

    fn trim_feed(&mut self, before_us: i64, max: usize) -> Result<(), Failure> {
        PgWrite::trim_feed(self, before_us, max)?;
        Ok(())
    }

    fn campaign(&mut self, name: &str) -> Result<Option<CampaignInfo>, Failure> {
        Ok(PgWrite::campaign(self, name)?)
    }

    fn create_campaign(
        &mut self,
        name: &str,
        required: &[String],
        now_us: i64,
    ) -> Result<CampaignInfo, Failure> {
        Ok(PgWrite::create_campaign(self, name, required, now_us)?)
    }

    fn drop_campaign(&mut self, name: &str) -> Result<bool, Failure> {
        Ok(PgWrite::drop_campaign(self, name)?)
    }

    fn join_campaign(&mut self, number: u32, joiners: &[(u64, u32)]) -> Result<Vec<bool>, Failure> {
        Ok(self.join_campaign_many(number, joiners)?)
    }

    fn set_member_priorities(&mut self, moves: &[(u64, u32)]) -> Result<(), Failure> {
        Ok(PgWrite::set_member_priorities(self, moves)?)
    }

    fn create_api_key(
        &mut self,
        hash: &[u8; 32],
        id: [u8; 16],
        role: KeyRole,
        now_us: i64,
    ) -> Result<ApiKey, Failure> {
        Ok(PgWrite::create_api_key(self, hash, id, role, now_us)?)
    }

    fn revoke_api_key(&mut self, id: &[u8; 16]) -> Result<bool, Failure> {
        Ok(PgWrite::revoke_api_key(self, id)?)
    }

    fn job(&mut self, id: &[u8; 16]) -> Result<Option<JobRecord>, Failure> {
        Ok(self.job_for_update(id)?)
    }

    fn put_job(&mut self, job: &JobRecord) -> Result<(), Failure> {
        Ok(PgWrite::put_job(self, job)?)
    }

    fn put_job_data(
        &mut self,
        number: u64,
        kind: JobDataKind,
        rest: &[u8],
        value: &[u8],
    ) -> Result<(), Failure> {
        Ok(PgWrite::put_job_data(self, number, kind, rest, value)?)
    }

    fn job_data(&mut self, number: u64, kind: JobDataKind) -> Result<Vec<JobDataEntry>, Failure> {
        Ok(PgWrite::job_data(self, number, kind)?)
    }

    fn clear_job_data(&mut self, number: u64) -> Result<(), Failure> {
        Ok(PgWrite::clear_job_data(self, number)?)
    }

    fn commit(self: Box<Self>) -> Result<(), Failure> {
        Ok(PgWrite::commit(*self)?)
    }
}
