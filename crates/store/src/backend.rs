//! The redb store as a [`Backend`]: one file, one writer for the whole file.

use contactdb_backend::{
    ApiKey, Backend, CampaignInfo, ContactReads, Event, Failure, JobDataEntry, JobDataKind,
    JobRecord, KeyRole, LookupValues, Member, NewEvent, PlanInput, PlanLookup, Problem, ReadTxn,
    StoredRequest, Wait, WorkspaceId, WorkspaceInfo, WriteTxn,
};
use contactdb_merge::ContactWrite;
use contactdb_policy::{ColumnSpec, CustomColumn};

use crate::{ReadView, Store, WriteView};

impl Backend for Store {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>, Failure> {
        Ok(Box::new(Store::read(self)?))
    }

    fn begin_write(&self, ws: WorkspaceId, wait: Wait) -> Result<Box<dyn WriteTxn + '_>, Failure> {
        let view = Store::begin_write(self, wait)?;
        Ok(Box::new(RedbWrite {
            store: self,
            view,
            ws,
        }))
    }

    fn create_workspace(
        &self,
        slug: &str,
        uuid: [u8; 16],
        now_us: i64,
    ) -> Result<WorkspaceInfo, Failure> {
        let mut w = Store::begin_write(self, Wait::Block)?;
        let info = w.create_workspace(slug, uuid, now_us)?;
        w.commit()?;
        Ok(info)
    }

    fn is_read_only(&self) -> bool {
        Store::is_read_only(self)
    }

    fn submit_job(
        &self,
        ws: WorkspaceId,
        id: [u8; 16],
        request_json: String,
        total: u64,
        now_us: i64,
    ) -> Result<JobRecord, Failure> {
        let mut w = Store::begin_write(self, Wait::Block)?;
        let job = w.submit_job(ws, id, request_json, total, now_us)?;
        w.commit()?;
        Ok(job)
    }

    /// The one writer process runs every job (another process cannot write the
    /// file): a running job here is one whose runner was interrupted. Nothing is
    /// written; the job keeps its state until its runner starts it.
    fn claim_job(
        &self,
        ws: WorkspaceId,
        id: Option<&[u8; 16]>,
        _runner: &str,
        _lease_us: i64,
        _now_us: i64,
    ) -> Result<Option<JobRecord>, Failure> {
        let r = Store::read(self)?;
        Ok(match id {
            Some(id) => r.job(ws, id)?.filter(|j| !j.state.is_final()),
            None => r.jobs(ws, true)?.into_iter().next(),
        })
    }

    fn ack(&self, ws: WorkspaceId, name: &str, seq: u64) -> Result<u64, Failure> {
        let mut w = Store::begin_write(self, Wait::Block)?;
        let at = w.ack(ws, name, seq)?;
        w.commit()?;
        Ok(at)
    }

    fn drop_consumer(&self, ws: WorkspaceId, name: &str) -> Result<bool, Failure> {
        let mut w = Store::begin_write(self, Wait::Block)?;
        let existed = w.drop_consumer(ws, name)?;
        w.commit()?;
        Ok(existed)
    }

    fn check(&self) -> Result<Vec<Problem>, Failure> {
        Ok(Store::check(self)?.into_iter().map(Problem::from).collect())
    }

    fn file_size(&self) -> Result<Option<u64>, Failure> {
        Ok(Some(Store::file_size(self)?))
    }

    fn describe(&self) -> String {
        self.path().display().to_string()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl ReadTxn for ReadView {
    fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, Failure> {
        Ok(ReadView::workspaces(self)?)
    }

    fn workspace(&self, slug_or_uuid: &str) -> Result<Option<WorkspaceInfo>, Failure> {
        Ok(ReadView::workspace(self, slug_or_uuid)?)
    }

    fn columns(&self, ws: WorkspaceId) -> Result<Vec<CustomColumn>, Failure> {
        Ok(ReadView::columns(self, ws)?)
    }

    fn contacts(&self, ws: WorkspaceId) -> Result<Box<dyn ContactReads + Send + Sync>, Failure> {
        Ok(Box::new(ReadView::contacts(self, ws)?))
    }

    fn plan_lookup(
        &self,
        ws: WorkspaceId,
        _input: &PlanInput<'_>,
    ) -> Result<PlanLookup<'static>, Failure> {
        Ok(PlanLookup::new(ReadView::contacts(self, ws)?))
    }

    fn events(&self, ws: WorkspaceId, after: u64, limit: usize) -> Result<Vec<Event>, Failure> {
        Ok(ReadView::events(self, ws, after, limit)?)
    }

    fn last_seq(&self, ws: WorkspaceId) -> Result<u64, Failure> {
        Ok(ReadView::last_seq(self, ws)?)
    }

    fn consumers(&self, ws: WorkspaceId) -> Result<Vec<(String, u64)>, Failure> {
        Ok(ReadView::consumers(self, ws)?)
    }

    fn consumer(&self, ws: WorkspaceId, name: &str) -> Result<u64, Failure> {
        Ok(ReadView::consumer(self, ws, name)?)
    }

    fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, Failure> {
        Ok(ReadView::job(self, ws, id)?)
    }

    fn jobs(&self, ws: WorkspaceId, unfinished_only: bool) -> Result<Vec<JobRecord>, Failure> {
        Ok(ReadView::jobs(self, ws, unfinished_only)?)
    }

    fn job_data(
        &self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
    ) -> Result<Vec<JobDataEntry>, Failure> {
        Ok(ReadView::job_data(self, ws, number, kind)?)
    }

    fn campaign(&self, ws: WorkspaceId, name: &str) -> Result<Option<CampaignInfo>, Failure> {
        Ok(ReadView::campaign(self, ws, name)?)
    }

    fn campaigns(&self, ws: WorkspaceId) -> Result<Vec<CampaignInfo>, Failure> {
        Ok(ReadView::campaigns(self, ws)?)
    }

    fn members(
        &self,
        ws: WorkspaceId,
        number: u32,
        after: Option<(u32, u64)>,
        limit: usize,
    ) -> Result<Vec<Member>, Failure> {
        Ok(ReadView::members(self, ws, number, after, limit)?)
    }

    fn api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>, Failure> {
        Ok(ReadView::api_key(self, hash)?)
    }

    fn api_keys(&self, ws: WorkspaceId) -> Result<Vec<ApiKey>, Failure> {
        Ok(ReadView::api_keys(self, ws)?)
    }
}

/// The file's write transaction, for the calls of one workspace.
struct RedbWrite<'a> {
    store: &'a Store,
    view: WriteView,
    ws: WorkspaceId,
}

impl WriteTxn for RedbWrite<'_> {
    /// Read from the last commit: with the writer lock held that is what this
    /// transaction started from.
    fn columns(&mut self) -> Result<Vec<CustomColumn>, Failure> {
        Ok(Store::read(self.store)?.columns(self.ws)?)
    }

    /// Before this transaction has written contacts: the committed state (a read
    /// transaction begun now, with the lookup filters, read from many threads).
    /// After: the contacts the request names, read through this transaction
    /// ([`WriteView::lookup_own`](crate::WriteView)).
    fn plan_lookup(&mut self, input: &PlanInput<'_>) -> Result<PlanLookup<'_>, Failure> {
        if self.view.applied() {
            // The committed snapshot lacks this transaction's writes: read through it.
            let values = LookupValues::of_request(input.req, input.prepared, input.catalog);
            return Ok(PlanLookup::new(self.view.lookup_own(self.ws, &values)?));
        }
        let contacts = self
            .store
            .bulk_contacts(&self.view, self.ws, input.records())?;
        Ok(PlanLookup::new(contacts))
    }

    fn lookup_ahead(&mut self, records: u64) -> Result<Option<PlanLookup<'static>>, Failure> {
        // Begun before this transaction writes (callers ask first), with the writer
        // lock held: exactly the state it starts from.
        let contacts = self.store.bulk_contacts(&self.view, self.ws, records)?;
        Ok(Some(PlanLookup::new(contacts)))
    }

    fn apply(&mut self, writes: &[ContactWrite]) -> Result<Vec<u64>, Failure> {
        Ok(self.view.apply(self.ws, writes)?)
    }

    fn contact_id(&mut self, key: &str) -> Result<Option<u64>, Failure> {
        Ok(self.view.contact_id(self.ws, key)?)
    }

    /// Read from the last commit (request ids are read before a request writes).
    fn request(&mut self, request_id: &str) -> Result<Option<StoredRequest>, Failure> {
        Ok(Store::read(self.store)?.request(self.ws, request_id)?)
    }

    fn put_request(&mut self, request_id: &str, req: &StoredRequest) -> Result<(), Failure> {
        Ok(self.view.put_request(self.ws, request_id, req)?)
    }

    fn prune_requests(&mut self, applied_before_us: i64) -> Result<(), Failure> {
        self.view.prune_requests(self.ws, applied_before_us)?;
        Ok(())
    }

    fn declare_column(&mut self, spec: &ColumnSpec) -> Result<CustomColumn, Failure> {
        Ok(self.view.declare_column(self.ws, spec)?)
    }

    fn append_events(
        &mut self,
        events: &[NewEvent<'_>],
        at_us: i64,
        trigger: Option<&str>,
        job: Option<&str>,
    ) -> Result<(), Failure> {
        self.view
            .append_events(self.ws, events, at_us, trigger, job)?;
        Ok(())
    }

    fn trim_feed(&mut self, before_us: i64, max: usize) -> Result<(), Failure> {
        self.view.trim_feed(self.ws, before_us, max)?;
        Ok(())
    }

    fn campaign(&mut self, name: &str) -> Result<Option<CampaignInfo>, Failure> {
        Ok(self.view.campaign(self.ws, name)?)
    }

    fn create_campaign(
        &mut self,
        name: &str,
        required: &[String],
        now_us: i64,
    ) -> Result<CampaignInfo, Failure> {
        Ok(self.view.create_campaign(self.ws, name, required, now_us)?)
    }

    fn drop_campaign(&mut self, name: &str) -> Result<bool, Failure> {
        Ok(self.view.drop_campaign(self.ws, name)?)
    }

    fn join_campaign(&mut self, number: u32, joiners: &[(u64, u32)]) -> Result<Vec<bool>, Failure> {
        let mut joined = Vec::with_capacity(joiners.len());
        for &(id, priority) in joiners {
            joined.push(self.view.join_campaign(self.ws, number, id, priority)?);
        }
        Ok(joined)
    }

    fn set_member_priorities(&mut self, moves: &[(u64, u32)]) -> Result<(), Failure> {
        for &(id, priority) in moves {
            self.view.set_member_priority(self.ws, id, priority)?;
        }
        Ok(())
    }

    fn create_api_key(
        &mut self,
        hash: &[u8; 32],
        id: [u8; 16],
        role: KeyRole,
        now_us: i64,
    ) -> Result<ApiKey, Failure> {
        Ok(self.view.create_api_key(self.ws, hash, id, role, now_us)?)
    }

    fn revoke_api_key(&mut self, id: &[u8; 16]) -> Result<bool, Failure> {
        Ok(self.view.revoke_api_key(self.ws, id)?)
    }

    fn job(&mut self, id: &[u8; 16]) -> Result<Option<JobRecord>, Failure> {
        Ok(self.view.job(self.ws, id)?)
    }

    fn put_job(&mut self, job: &JobRecord) -> Result<(), Failure> {
        Ok(self.view.put_job(self.ws, job)?)
    }

    fn put_job_data(
        &mut self,
        number: u64,
        kind: JobDataKind,
        rest: &[u8],
        value: &[u8],
    ) -> Result<(), Failure> {
        Ok(self.view.put_job_data(self.ws, number, kind, rest, value)?)
    }

    fn job_data(&mut self, number: u64, kind: JobDataKind) -> Result<Vec<JobDataEntry>, Failure> {
        Ok(self.view.job_data(self.ws, number, kind)?)
    }

    fn clear_job_data(&mut self, number: u64) -> Result<(), Failure> {
        Ok(self.view.clear_job_data(self.ws, number)?)
    }

    fn commit(self: Box<Self>) -> Result<(), Failure> {
        Ok(self.view.commit()?)
    }
}
