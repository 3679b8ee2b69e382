//! Background jobs: a request stored when submitted, claimed by one runner at a
//! time under a lease, its progress committed with each chunk's writes.

use contactdb_backend::{JobDataEntry, JobDataKind, JobRecord, JobState, WorkspaceId};
use postgres::{Client, Row};

use crate::rows::{signed, unsigned};
use crate::{Error, WorkspaceSql};

/// The state a stored `jobs.state` stands for.
fn state_of(c: i16) -> Result<JobState, Error> {
    u8::try_from(c)
        .ok()
        .and_then(JobState::from_code)
        .ok_or_else(|| Error::damaged("jobs", format!("unknown job state {c}")))
}

/// The stored `job_data.kind` of `kind`.
pub(crate) fn kind_code(kind: JobDataKind) -> i16 {
    i16::from(kind.code())
}

pub(crate) const JOB_COLUMNS: &str = "number, id, state, processed, total, submitted_at_us, \
     updated_at_us, report_json, error, lease_owner, lease_until_us";

pub(crate) fn record(r: &Row) -> Result<JobRecord, Error> {
    let id: uuid::Uuid = r.try_get(1)?;
    Ok(JobRecord {
        number: unsigned("jobs", r.try_get(0)?)?,
        id: *id.as_bytes(),
        state: state_of(r.try_get(2)?)?,
        processed: unsigned("jobs", r.try_get(3)?)?,
        total: unsigned("jobs", r.try_get(4)?)?,
        submitted_at_us: r.try_get(5)?,
        updated_at_us: r.try_get(6)?,
        report_json: r.try_get(7)?,
        error: r.try_get(8)?,
        lease_owner: r.try_get(9)?,
        lease_until_us: r.try_get(10)?,
    })
}

/// The advisory lock key serializing job numbering per workspace (`"cdbj"`).
fn numbering_lock(ws: WorkspaceId) -> i64 {
    (0x6364_626a_i64 << 32) | ws.sql()
}

pub(crate) fn submit(
    c: &mut Client,
    ws: WorkspaceId,
    id: [u8; 16],
    request_json: &str,
    total: u64,
    now_us: i64,
) -> Result<JobRecord, Error> {
    let mut tx = c.transaction()?;
    let w = ws.sql();
    crate::read::require_workspace(&mut tx, ws)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&numbering_lock(ws)])?;
    let number: i64 = tx
        .query_one(
            "SELECT coalesce(max(number), 0) + 1 FROM jobs WHERE workspace_id = $1",
            &[&w],
        )?
        .try_get(0)?;
    let u = uuid::Uuid::from_bytes(id);
    let row = tx.query_one(
        &format!(
            "INSERT INTO jobs (workspace_id, number, id, state, total, submitted_at_us, updated_at_us)
             VALUES ($1, $2, $3, 1, $4, $5, $5) RETURNING {JOB_COLUMNS}"
        ),
        &[&w, &number, &u, &signed(total)?, &now_us],
    )?;
    tx.execute(
        "INSERT INTO job_data (workspace_id, number, kind, rest, value) VALUES ($1, $2, $3, '', $4)",
        &[
            &w,
            &number,
            &kind_code(JobDataKind::Request),
            &request_json.as_bytes(),
        ],
    )?;
    let r = record(&row)?;
    tx.commit()?;
    Ok(r)
}

/// Claims job `id` of `ws`, or without an id the oldest claimable one (queued,
/// or running with a lease that ran out), for `runner` until `now_us + lease_us`;
/// `FOR UPDATE SKIP LOCKED` skips a job whose row another transaction holds. The
/// claim commits before this returns.
pub(crate) fn claim(
    c: &mut Client,
    ws: WorkspaceId,
    id: Option<&[u8; 16]>,
    runner: &str,
    lease_us: i64,
    now_us: i64,
) -> Result<Option<JobRecord>, Error> {
    let mut tx = c.transaction()?;
    let w = ws.sql();
    let id = id.map(|b| uuid::Uuid::from_bytes(*b));
    let Some(row) = tx.query_opt(
        "SELECT number FROM jobs
         WHERE workspace_id = $1
           AND (state = 1 OR (state = 2 AND coalesce(lease_until_us, 0) < $2))
           AND ($3::uuid IS NULL OR id = $3)
         ORDER BY number LIMIT 1
         FOR UPDATE SKIP LOCKED",
        &[&w, &now_us, &id],
    )?
    else {
        return Ok(None);
    };
    let number: i64 = row.try_get(0)?;
    let until = now_us.saturating_add(lease_us);
    let row = tx.query_one(
        &format!(
            "UPDATE jobs SET state = 2, lease_owner = $3, lease_until_us = $4, updated_at_us = $5
             WHERE workspace_id = $1 AND number = $2 RETURNING {JOB_COLUMNS}"
        ),
        &[&w, &number, &runner, &until, &now_us],
    )?;
    let job = record(&row)?;
    tx.commit()?;
    Ok(Some(job))
}

pub(crate) fn by_id(
    c: &mut Client,
    ws: WorkspaceId,
    id: &[u8; 16],
) -> Result<Option<JobRecord>, Error> {
    let row = c.query_opt(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE workspace_id = $1 AND id = $2"),
        &[&ws.sql(), &uuid::Uuid::from_bytes(*id)],
    )?;
    row.as_ref().map(record).transpose()
}

pub(crate) fn list(
    c: &mut Client,
    ws: WorkspaceId,
    unfinished_only: bool,
) -> Result<Vec<JobRecord>, Error> {
    let rows = c.query(
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE workspace_id = $1
             AND (NOT $2 OR state IN (1, 2)) ORDER BY number"
        ),
        &[&ws.sql(), &unfinished_only],
    )?;
    rows.iter().map(record).collect()
}

pub(crate) fn data(
    c: &mut Client,
    ws: WorkspaceId,
    number: u64,
    kind: JobDataKind,
) -> Result<Vec<JobDataEntry>, Error> {
    let rows = c.query(
        "SELECT rest, value FROM job_data WHERE workspace_id = $1 AND number = $2 AND kind = $3
         ORDER BY rest",
        &[&ws.sql(), &signed(number)?, &kind_code(kind)],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
