//! Background jobs: a request stored durably when it is submitted, its state,
//! progress and report, all changed in the transactions that apply its records.

use crate::guard::guarded;
use redb::ReadableTable;
use std::sync::Arc;

use contactdb_backend::{JobDataEntry, JobDataKind, JobRecord, JobState, WorkspaceId};

use crate::codec::{self, StoredJob};
use crate::keys::{self, ws_bytes, ws_seq};
use crate::{ReadView, StoreError, WriteView};

/// The state a stored code stands for.
fn state_of(c: u8) -> Result<JobState, StoreError> {
    JobState::from_code(c)
        .ok_or_else(|| StoreError::corrupt("jobs", format!("unknown job state {c}")))
}

/// The most bytes of a job's request or report JSON one `job_data` entry holds
/// (the text is stored in pieces, `rest` their number): a piece with its leaf's
/// header fits a 64 KiB page, and no write beside it copies more than that of it.
/// A report no longer than one piece stays in the job's record.
const PIECE_BYTES: usize = 63 * 1024;

/// The `job_data` kind of the pieces of a job's report (kinds 1–4 are
/// [`JobDataKind`]'s, a running job's working data, cleared when it ends; these stay).
pub(crate) const REPORT_PIECES: u8 = 5;

/// `ws ‖ number ‖ kind`: where the entries of one kind of job `number` begin.
fn kind_prefix(ws: WorkspaceId, number: u64, kind: u8) -> Vec<u8> {
    let mut k = ws_seq(ws.0, number).to_vec();
    k.push(kind);
    k
}

/// Job `r` with its report text: from the pieces in `data` when its record holds
/// none (a report longer than [`PIECE_BYTES`]).
fn with_report(
    data: Option<&impl ReadableTable<&'static [u8], &'static [u8]>>,
    ws: WorkspaceId,
    mut r: JobRecord,
) -> Result<JobRecord, StoreError> {
    let Some(data) = data.filter(|_| r.report_json.is_empty()) else {
        return Ok(r);
    };
    let range = keys::prefix_range(&kind_prefix(ws, r.number, REPORT_PIECES));
    let mut text = Vec::new();
    for entry in data.range::<&[u8]>(keys::as_slices(&range))? {
        text.extend_from_slice(entry?.1.value());
    }
    r.report_json = String::from_utf8(text)
        .map_err(|_| StoreError::corrupt("job_data", "a job's report pieces are not UTF-8"))?;
    Ok(r)
}

fn data_key(ws: WorkspaceId, number: u64, kind: JobDataKind, rest: &[u8]) -> Vec<u8> {
    let mut k = kind_prefix(ws, number, kind.code());
    k.extend_from_slice(rest);
    k
}

/// Writes `text` into `t` in pieces of [`PIECE_BYTES`], at `prefix ‖ piece number`.
fn insert_pieces(
    t: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    prefix: &[u8],
    text: &str,
) -> Result<(), StoreError> {
    for (n, piece) in (0u32..).zip(text.as_bytes().chunks(PIECE_BYTES)) {
        let mut key = prefix.to_vec();
        key.extend_from_slice(&n.to_be_bytes());
        t.insert(key.as_slice(), piece)?;
    }
    Ok(())
}

fn record(number: u64, j: StoredJob) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        number,
        id: j.id,
        state: state_of(j.state)?,
        processed: j.processed,
        total: j.total,
        submitted_at_us: j.submitted_at_us,
        updated_at_us: j.updated_at_us,
        report_json: j.report_json,
        error: j.error,
        lease_owner: None,
        lease_until_us: None,
    })
}

/// The stored form of `r`, with its report text when that is kept in the record.
fn stored(r: &JobRecord, report_inline: bool) -> StoredJob {
    StoredJob {
        id: r.id,
        state: r.state.code(),
        processed: r.processed,
        total: r.total,
        submitted_at_us: r.submitted_at_us,
        updated_at_us: r.updated_at_us,
        report_json: if report_inline {
            r.report_json.clone()
        } else {
            String::new()
        },
        error: r.error.clone(),
    }
}

fn id_key(id: &[u8; 16]) -> &[u8] {
    id.as_slice()
}

fn find(
    ids: &impl ReadableTable<&'static [u8], &'static [u8]>,
    jobs: &impl ReadableTable<&'static [u8], &'static [u8]>,
    data: Option<&impl ReadableTable<&'static [u8], &'static [u8]>>,
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
    let r = record(number, codec::decode_job(v.value())?)?;
    Ok(Some(with_report(data, ws, r)?))
}

/// The jobs of `ws` in `jobs`, each without a report kept in pieces.
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
            let data = self.open_optional(keys::JOB_DATA)?;
            find(&ids, &jobs, data.as_ref(), ws, id)
        })
    }

    /// Every job of `ws` in submission order (only the unfinished ones when
    /// `unfinished_only`), without the reports kept in pieces (a report longer
    /// than 63 KiB: [`ReadView::job`] reads it).
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
            data(&t, ws, number, kind)
        })
    }
}

/// Every entry of `t` (a `job_data` table) of job `number` of this kind.
fn data(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: WorkspaceId,
    number: u64,
    kind: JobDataKind,
) -> Result<Vec<JobDataEntry>, StoreError> {
    let prefix = data_key(ws, number, kind, &[]);
    let range = keys::prefix_range(&prefix);
    let mut out = Vec::new();
    for entry in t.range::<&[u8]>(keys::as_slices(&range))? {
        let (k, v) = entry?;
        let rest = k.value().get(prefix.len()..).unwrap_or_default().to_vec();
        out.push((rest, v.value().to_vec()));
    }
    Ok(out)
}

impl WriteView {
    /// Every `job_data` entry of job `number` of this kind, as this transaction
    /// sees them.
    pub fn job_data(
        &self,
        ws: WorkspaceId,
        number: u64,
        kind: JobDataKind,
    ) -> Result<Vec<JobDataEntry>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            data(&self.txn.open_table(keys::JOB_DATA)?, ws, number, kind)
        })
    }

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
            // Kinds 1 to 4, in one pass (a job keeps an entry per contact it
            // reached); the report's pieces stay.
            let range = (
                std::ops::Bound::Included(kind_prefix(ws, number, 0)),
                std::ops::Bound::Excluded(kind_prefix(ws, number, REPORT_PIECES)),
            );
            t.retain_in::<&[u8], _>(keys::as_slices(&range), |_, _| false)?;
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
                lease_owner: None,
                lease_until_us: None,
            };
            let k = ws_seq(ws.0, number);
            let mut ids = self.txn.open_table(keys::JOB_IDS)?;
            if ids.get(id_key(&id))?.is_some() {
                return Err(StoreError::corrupt("job_ids", "job id already taken"));
            }
            ids.insert(id_key(&id), k.as_slice())?;
            drop(ids);
            self.txn.open_table(keys::JOBS)?.insert(
                k.as_slice(),
                codec::encode_job(&stored(&r, true))?.as_slice(),
            )?;
            // In pieces: a value larger than a page is copied whole whenever its
            // leaf is written, and every chunk's report lands beside the request.
            let mut t = self.txn.open_table(keys::JOB_DATA)?;
            let prefix = data_key(ws, number, JobDataKind::Request, &[]);
            insert_pieces(&mut t, &prefix, &request_json)?;
            Ok(r)
        })
    }

    /// The job of `ws` with this id, as this transaction sees it.
    pub fn job(&self, ws: WorkspaceId, id: &[u8; 16]) -> Result<Option<JobRecord>, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let ids = self.txn.open_table(keys::JOB_IDS)?;
            let jobs = self.txn.open_table(keys::JOBS)?;
            let data = self.txn.open_table(keys::JOB_DATA)?;
            find(&ids, &jobs, Some(&data), ws, id)
        })
    }

    /// Replaces job `r.number` of `ws` with `r`. A report longer than
    /// 63 KiB goes to `job_data` in pieces, the record keeping none.
    pub fn put_job(&mut self, ws: WorkspaceId, r: &JobRecord) -> Result<(), StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let inline = r.report_json.len() <= PIECE_BYTES;
            {
                let mut data = self.txn.open_table(keys::JOB_DATA)?;
                let pieces = kind_prefix(ws, r.number, REPORT_PIECES);
                let range = keys::prefix_range(&pieces);
                data.retain_in::<&[u8], _>(keys::as_slices(&range), |_, _| false)?;
                if !inline {
                    insert_pieces(&mut data, &pieces, &r.report_json)?;
                }
            }
            self.txn.open_table(keys::JOBS)?.insert(
                ws_seq(ws.0, r.number).as_slice(),
                codec::encode_job(&stored(r, inline))?.as_slice(),
            )?;
            Ok(())
        })
    }
}
