//! `api`: the three seed APIs' bodies in, their responses out, on the local file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use contactdb::Workspace;
use contactdb_api::bulk_add::BulkAdd;
use contactdb_api::bulk_upsert::BulkUpsert;
use contactdb_api::customer_import::{CustomerImport, JobHandle};
use contactdb_api::{ApiError, HttpStatus};
use serde::de::DeserializeOwned;

use crate::commands::{open_for_write, open_workspace};
use crate::util::create_output;

/// Which API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiName {
    /// Queue an import job of customers; prints `{"jobId"}` (run it with `job run`).
    CustomerImport,
    /// Add customers to an existing campaign, optionally triggering calls or a workflow.
    BulkAdd,
    /// Update (or insert) contacts from `columns` and `contactDatas`.
    BulkUpsert,
}

/// `api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API whose body this is.
    #[arg(value_enum)]
    pub name: ApiName,
    /// The request body as JSON (default: standard input).
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "malformed_body",
            format!("the body is not valid for this API: {e}"),
        )
    })
}

/// Exit code of an HTTP status: 0 for 2xx but 207, 3 for 207, 1 otherwise.
fn exit(status: HttpStatus) -> ExitCode {
    match status.0 {
        207 => ExitCode::from(3),
        200..=299 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn refused(e: impl Into<contactdb::Error>) -> anyhow::Result<ApiError> {
    match e.into() {
        contactdb::Error::Request(r) => Ok(ApiError::bad_request(r.code(), r.to_string())),
        contactdb::Error::Busy => Ok(ApiError {
            status: HttpStatus(429),
            code: "busy".to_owned(),
            message: "another write is in progress; retry later".to_owned(),
        }),
        other => Err(other.into()),
    }
}

/// Declares the custom columns a bulk-add body needs that the workspace lacks.
fn declare(ws: &Workspace, body: &BulkAdd) -> anyhow::Result<()> {
    let have: Vec<String> = ws.columns()?.into_iter().map(|c| c.name).collect();
    for spec in body.columns_needed() {
        if !have.contains(&spec.name) {
            ws.declare_column(spec)?;
        }
    }
    Ok(())
}

/// Runs `api`.
pub fn run(db_path: &Path, workspace: &str, args: &ApiArgs) -> anyhow::Result<ExitCode> {
    let mut bytes = Vec::new();
    match &args.body {
        Some(p) => {
            bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read the body from standard input")?;
        }
    }
    let (status, response) = match answer(db_path, workspace, args.name, &bytes)? {
        Ok(x) => x,
        Err(e) => (e.status, e.body()),
    };
    let mut out = create_output(None)?;
    serde_json::to_writer_pretty(&mut out, &response)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(exit(status))
}

type Answer = Result<(HttpStatus, serde_json::Value), ApiError>;

fn answer(db_path: &Path, workspace: &str, name: ApiName, bytes: &[u8]) -> anyhow::Result<Answer> {
    let db = open_for_write(db_path)?;
    let ws = open_workspace(&db, workspace)?;
    Ok(match name {
        ApiName::CustomerImport => {
            let req = match parse::<CustomerImport>(bytes).and_then(|b| b.to_request()) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            let id = ws.submit(&req)?;
            Ok((
                HttpStatus(202),
                serde_json::to_value(JobHandle { job_id: id })?,
            ))
        }
        ApiName::BulkAdd => {
            let body = match parse::<BulkAdd>(bytes) {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            let req = match body.to_request() {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            declare(&ws, &body)?;
            match ws.bulk(&req) {
                Ok(report) => {
                    let (status, response) = body.respond(&report);
                    Ok((status, serde_json::to_value(response)?))
                }
                Err(e) => Err(refused(e)?),
            }
        }
        ApiName::BulkUpsert => {
            let req = match parse::<BulkUpsert>(bytes).and_then(|b| b.to_request()) {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            // Parallel calls are refused, not queued: a write in progress is busy.
            match ws.try_bulk(&req) {
                Ok(report) => {
                    let (status, response) = BulkUpsert::respond(&report);
                    Ok((status, serde_json::to_value(response)?))
                }
                Err(e) => Err(refused(e)?),
            }
        }
    })
}
