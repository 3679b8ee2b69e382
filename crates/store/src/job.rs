//! Background jobs: a request stored durably when it is submitted, its state,
//! progress and report, all changed in the transactions that apply its records.

use crate::guard::guarded;
use redb::ReadableTable;
use std::sync::Arc;

use crate::codec::{self, StoredJob};
use crate::keys::{self, ws_bytes, ws_seq};
use crate::{ReadView, StoreError, WorkspaceId, WriteView};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for a runner.
    Queued,
    /// A runner has started it (or was interrupted while on it).
    Running,
    /// Ran to its end; the report says what happened to each record.
    Succeeded,
    /// Could not run (a request-level error, or storage); the error says why.
    Failed,
    /// Cancelled before it started.
    Cancelled,
}

impl JobState {
    fn code(self) -> u8 {
        match self {
            JobState::Queued => 1,
            JobState::Running => 2,
            JobState::Succeeded => 3,
            JobState::Failed => 4,
            JobState::Cancelled => 5,
        }
    }

    fn from_code(c: u8) -> Result<Self, StoreError> {
        Ok(match c {
            1 => JobState::Queued,
            2 => JobState::Running,
            3 => JobState::Succeeded,
            4 => JobState::Failed,
            5 => JobState::Cancelled,
            other => {
                return Err(StoreError::corrupt(
                    "jobs",
                    format!("unknown job state {other}"),
                ));
            }
        })
    }

    /// Whether the job has ended (succeeded, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its number in the workspace (submission order).
    pub number: u64,
    /// Its id (UUID bytes).
    pub id: [u8; 16],
    /// Its state.
    pub state: JobState,
    /// Records processed so far.
    pub processed: u64,
    /// Records in the request.
    pub total: u64,
    /// Submission time, µs since the Unix epoch.
    pub submitted_at_us: i64,
    /// Last change, µs since the Unix epoch.
    pub updated_at_us: i64,
    /// The report so far as JSON text (empty before the first chunk).
    pub report_json: String,
    /// Why a failed job failed.
    pub error: Option<String>,
}

/// What a running job keeps in `job_data` between its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobDataKind {
    /// Which records the duplicate policy leaves out (one entry, decided when the
    /// job started).
    LeftOut,
    /// The first record that reached each contact (one entry per contact id).
    Reached,
    /// The report of each committed chunk (one entry per chunk number).
    Report,
    /// The job's request as JSON text (one entry), deleted when the job ends.
    Request,
}

impl JobDataKind {
    fn code(self) -> u8 {
        match self {
            JobDataKind::LeftOut => 1,
            JobDataKind::Reached => 2,
            JobDataKind::Report => 3,
            JobDataKind::Request => 4,
        }
    }
}

/// One `job_data` entry: the rest of its key after the kind, and its value.
pub type JobDataEntry = (Vec<u8>, Vec<u8>);

fn data_key(ws: WorkspaceId, number: u64, kind: JobDataKind, rest: &[u8]) -> Vec<u8> {
    let mut k = ws_seq(ws.0, number).to_vec();
    k.push(kind.code());
    k.extend_from_slice(rest);
    k
}

fn record(number: u64, j: StoredJob) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        number,
        id: j.id,
        state: JobState::from_code(j.state)?,
        processed: j.processed,
        total: j.total,
        submitted_at_us: j.submitted_at_us,
        updated_at_us: j.updated_at_us,
        report_json: j.report_json,
        error: j.error,
    })
}

fn stored(r: &JobRecord) -> StoredJob {
    StoredJob {
        id: r.id,
        state: r.state.code(),
        processed: r.processed,
        total: r.total,
        submitted_at_us: r.submitted_at_us,
        updated_at_us: r.updated_at_us,
        report_json: r.report_json.clone(),
        error: r.error.clone(),
    }
}

fn id_key(id: &[u8; 16]) -> &[u8] {
    id.as_slice()
}

fn find(
    ids: &impl ReadableTable<&'static [u8], &'static [u8]>,
    jobs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: WorkspaceId,
    id: &[u8; 16],
) -> Result<Option<JobRecord>, StoreError> {
    let Some(k) = ids.get(id_key(id))? else {
        return Ok(None);
    };
    let k = k.value().to_vec();
    let (w, n) = keys::split_ws(&k)
        .ok_or_else(|| StoreError::corrupt("job_ids", "value is not ws ‖ number"))?;
    if w != ws.0 {
        return Ok(None);
    }
    let number = keys::u64_from(n)
        .ok_or_else(|| StoreError::corrupt("job_ids", "value is not ws ‖ number"))?;
    let v = jobs
        .get(k.as_slice())?
        .ok_or_else(|| StoreError::corrupt("job_ids", format!("names missing job {number}")))?;
    Ok(Some(record(number, codec::decode_job(v.value())?)?))
}

fn list(
    jobs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: WorkspaceId,
    unfinished_only: bool,
) -> Result<Vec<JobRecord>, StoreError> {
    let range = keys::prefix_range(&ws_bytes(ws.0));
    let mut out = Vec::new();
    for entry in jobs.range::<&[u8]>(keys::as_slices(&range))? {
        let (k, v) = entry?;
        let number = k
            .value()
            .get(4..)
            .and_then(keys::u64_from)
            .ok_or_else(|| StoreError::corrupt("jobs", "key is not ws ‖ number"))?;
        let r = record(number, codec::decode_job(v.value())?)?;
        if !unfinished_only || !r.state.is_final() {
            out.push(r);
        }
    }
    Ok(out)
}

impl ReadView {
    /// The job of `ws` with this id.
    pub fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, StoreError> {
        guarded(&self.poison, || {
            let (Some(ids), Some(jobs)) = (
                self.open_optional(keys::JOB_IDS)?,
                self.open_optional(keys::JOBS)?,
            ) else {
                return Ok(None);
            };
            find(&ids, &jobs, ws, id)
        })
    }

    /// Every job of `ws` in submission order (only the unfinished ones when
    /// `unfinished_only`).
    pub fn jobs(
        &self,
        ws: WorkspaceId,
        unfinished_only: bool,
    ) -> Result<Vec<JobRecord>, StoreError> {
        guarded(&self.poison, || {
            let Some(jobs) = self.open_optional(keys::JOBS)? else {
                return Ok(Vec::new());
            };
            list(&jobs, ws, unfinished_only)
        })
    }
}

impl ReadView {
    /// Every `job_data` entry of job `number` of this kind: `(rest of key, value)`
    /// in key order.
    pub fn job_data(
        &self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
    ) -> Result<Vec<JobDataEntry>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::JOB_DATA)? else {
                return Ok(Vec::new());
            };
            let prefix = data_key(ws, number, kind, &[]);
            let range = keys::prefix_range(&prefix);
            let mut out = Vec::new();
            for entry in t.range::<&[u8]>(keys::as_slices(&range))? {
                let (k, v) = entry?;
                let rest = k.value().get(prefix.len()..).unwrap_or_default().to_vec();
                out.push((rest, v.value().to_vec()));
            }
            Ok(out)
        })
    }
}

impl WriteView {
    /// Puts one `job_data` entry of job `number`.
    pub fn put_job_data(
        &mut self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
        rest: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.txn
                .open_table(keys::JOB_DATA)?
                .insert(data_key(ws, number, kind, rest).as_slice(), value)?;
            Ok(())
        })
    }

    /// Deletes every `job_data` entry of job `number`.
    pub fn clear_job_data(&mut self, ws: WorkspaceId, number: u64) -> Result<(), StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let mut t = self.txn.open_table(keys::JOB_DATA)?;
            let prefix = ws_seq(ws.0, number);
            let range = keys::prefix_range(&prefix);
            let mut doomed = Vec::new();
            for entry in t.range::<&[u8]>(keys::as_slices(&range))? {
                let (k, _) = entry?;
                doomed.push(k.value().to_vec());
            }
            for k in doomed {
                t.remove(k.as_slice())?;
            }
            Ok(())
        })
    }

    /// Stores a new job (queued) for the request `request_json` of `total` records
    /// (the request goes to `job_data`, so that progress updates rewrite a small
    /// record).
    pub fn submit_job(
        &mut self,
        ws: WorkspaceId,
        id: [u8; 16],
        request_json: String,
        total: u64,
        now_us: i64,
    ) -> Result<JobRecord, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.require_workspace_pub(ws)?;
            let number = self.bump_counter(ws, "job_number")?;
            let r = JobRecord {
                number,
                id,
                state: JobState::Queued,
                processed: 0,
                total,
                submitted_at_us: now_us,
                updated_at_us: now_us,
                report_json: String::new(),
                error: None,
            };
            let k = ws_seq(ws.0, number);
            let mut ids = self.txn.open_table(keys::JOB_IDS)?;
            if ids.get(id_key(&id))?.is_some() {
                return Err(StoreError::corrupt("job_ids", "job id already taken"));
            }
            ids.insert(id_key(&id), k.as_slice())?;
            drop(ids);
            self.txn
                .open_table(keys::JOBS)?
                .insert(k.as_slice(), codec::encode_job(&stored(&r))?.as_slice())?;
            self.put_job_data(
                ws,
                number,
                JobDataKind::Request,
                &[],
                request_json.as_bytes(),
            )?;
            Ok(r)
        })
    }

    /// The job of `ws` with this id, as this transaction sees it.
    pub fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let ids = self.txn.open_table(keys::JOB_IDS)?;
            let jobs = self.txn.open_table(keys::JOBS)?;
            find(&ids, &jobs, ws, id)
        })
    }

    /// The unfinished jobs of `ws` in submission order, as this transaction sees them.
    pub fn unfinished_jobs(&self, ws: WorkspaceId) -> Result<Vec<JobRecord>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let jobs = self.txn.open_table(keys::JOBS)?;
            list(&jobs, ws, true)
        })
    }

    /// Replaces job `r.number` of `ws` with `r`.
    pub fn put_job(&mut self, ws: WorkspaceId, r: &JobRecord) -> Result<(), StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.txn.open_table(keys::JOBS)?.insert(
                ws_seq(ws.0, r.number).as_slice(),
                codec::encode_job(&stored(r))?.as_slice(),
            )?;
            Ok(())
        })
    }
}
