//! The commands around the contacts: `campaign`, `job` and `feed`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use contactdb::{BulkRequest, Database, Job, JobState, Status};

use crate::commands::{open_existing, open_workspace};
use crate::util::{count, create_output, eprint_line};

/// `campaign`.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign; prints it as JSON.
    Create(CampaignCreateArgs),
    /// Print every campaign as JSON Lines.
    List,
    /// Print a campaign's members in pick order (priority, then joining) as JSON Lines.
    Members(CampaignMembersArgs),
    /// Drop a campaign and its memberships (the contacts stay).
    Drop(CampaignNameArg),
}

/// `campaign create`.
#[derive(Debug, Args)]
pub struct CampaignCreateArgs {
    /// The campaign's name, unique in the workspace.
    pub name: String,
    /// A column every member must have a value for (repeatable).
    #[arg(long = "require", value_name = "COLUMN")]
    pub require: Vec<String>,
}

/// `campaign members`.
#[derive(Debug, Args)]
pub struct CampaignMembersArgs {
    /// The campaign.
    pub name: String,
    /// Print at most this many members.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// A campaign name.
#[derive(Debug, Args)]
pub struct CampaignNameArg {
    /// The campaign.
    pub name: String,
}

/// `job`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Store a bulk request as a job and print its id (alone on the last line).
    Submit(JobSubmitArgs),
    /// Run every queued or interrupted job to its end, then exit.
    Run(JobRunArgs),
    /// Run one job to its end (or wait while another process runs it) and print its
    /// report; exit codes as for `upsert`.
    Wait(JobWaitArgs),
    /// Print a job's state and progress (and its report once it ran) as JSON.
    Status(JobIdArg),
    /// Print every job (without reports) as JSON Lines.
    List,
    /// Cancel a queued job.
    Cancel(JobIdArg),
}

/// `job submit`.
#[derive(Debug, Args)]
pub struct JobSubmitArgs {
    /// The bulk request as JSON; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
}

/// How a runner runs jobs.
#[derive(Debug, Args)]
pub struct JobRunArgs {
    /// Records applied per transaction; a crash loses at most one such chunk,
    /// which the next run applies again.
    #[arg(long, value_name = "N", default_value_t = contactdb::JOB_CHUNK_RECORDS_DEFAULT)]
    pub chunk_records: usize,
    /// With a PostgreSQL database: seconds this runner holds a job between two
    /// chunks; a runner that dies leaves its job to another one after that long.
    #[arg(long, value_name = "SECONDS", default_value_t = contactdb::JOB_LEASE_SECONDS_DEFAULT)]
    pub lease_seconds: u32,
}

/// `job wait`.
#[derive(Debug, Args)]
pub struct JobWaitArgs {
    /// The job id.
    pub id: String,
    /// How the job runs when this process runs it.
    #[command(flatten)]
    pub run: JobRunArgs,
}

/// A job id.
#[derive(Debug, Args)]
pub struct JobIdArg {
    /// The job id.
    pub id: String,
}

/// `feed`.
#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Print change events as JSON Lines, in order.
    Read(FeedReadArgs),
    /// Record that a consumer has handled every event up to SEQ.
    Ack(FeedAckArgs),
    /// Print the named consumers and their positions as JSON Lines.
    Consumers,
    /// POST the triggered events after the consumer's position to a webhook (signed,
    /// in chunks of 500, retried), moving the position after each 2xx; exits when
    /// the feed is drained.
    Deliver(FeedDeliverArgs),
}

/// `feed deliver`.
#[derive(Debug, Args)]
pub struct FeedDeliverArgs {
    /// The webhook, `http://host:port/path`.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Tries per chunk before giving up (the position stays at the last accepted).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub attempts: u32,
    /// Signing and tracking.
    #[command(flatten)]
    pub hook: crate::serve::HookArgs,
}

/// `feed read`.
#[derive(Debug, Args)]
pub struct FeedReadArgs {
    /// Print events after this sequence number (default: from the start, or from
    /// the consumer's position).
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// Print at most this many events.
    #[arg(long, value_name = "N", default_value_t = contactdb::FEED_CHUNK_DEFAULT)]
    pub limit: usize,
    /// Read from this consumer's acknowledged position.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
}

/// `feed ack`.
#[derive(Debug, Args)]
pub struct FeedAckArgs {
    /// The consumer.
    #[arg(long, value_name = "NAME")]
    pub consumer: String,
    /// The last sequence number it handled.
    pub seq: u64,
}

fn line(out: &mut dyn Write, v: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Runs `campaign`.
pub fn campaign(
    db_path: &Path,
    workspace: &str,
    cmd: &CampaignCommand,
) -> anyhow::Result<ExitCode> {
    let db = match cmd {
        CampaignCommand::Create(_) | CampaignCommand::Drop(_) => {
            crate::commands::open_for_write(db_path)?
        }
        _ => open_existing(db_path)?,
    };
    let ws = open_workspace(&db, workspace)?;
    let mut out = create_output(None)?;
    match cmd {
        CampaignCommand::Create(a) => {
            let req: Vec<&str> = a.require.iter().map(String::as_str).collect();
            let c = ws.create_campaign(&a.name, &req)?;
            line(&mut out, &c)?;
        }
        CampaignCommand::List => {
            for c in ws.campaigns()? {
                line(&mut out, &c)?;
            }
        }
        CampaignCommand::Members(a) => {
            if ws.campaign(&a.name)?.is_none() {
                bail!(
                    "no campaign {:?} (create it with: contactdb campaign create NAME)",
                    a.name
                );
            }
            let mut left = a.limit.unwrap_or(usize::MAX);
            let mut after = None;
            while left > 0 {
                let page = ws.members_page(&a.name, after, left.min(10_000))?;
                let Some(last) = page.last() else { break };
                after = Some((last.priority, last.joined));
                left = left.saturating_sub(page.len());
                for m in &page {
                    line(&mut out, m)?;
                }
            }
        }
        CampaignCommand::Drop(a) => {
            if !ws.drop_campaign(&a.name)? {
                bail!("no campaign {:?}", a.name);
            }
            eprint_line(&format!("dropped campaign {:?}", a.name));
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn read_request(path: &Path) -> anyhow::Result<BulkRequest> {
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read the request from standard input")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("the request is not a valid bulk request: {e}"))
}

fn open_runner(db_path: &Path, run: &JobRunArgs) -> Result<Database, contactdb::OpenError> {
    Database::builder()
        .job_chunk_records(run.chunk_records)
        .job_lease_seconds(run.lease_seconds)
        .open(db_path)
}

/// The status line of a job: `{id, state, processed, total, report?, error?}`.
fn print_job(out: &mut dyn Write, job: &Job) -> anyhow::Result<()> {
    line(out, job)
}

/// The exit code of a job that ended: as `upsert` for its report, 1 if it failed.
fn job_exit(job: &Job) -> ExitCode {
    match (&job.state, job.report.as_ref().map(|r| r.status)) {
        (JobState::Succeeded, Some(Status::Applied)) => ExitCode::SUCCESS,
        (JobState::Succeeded, Some(Status::Partial)) => ExitCode::from(3),
        _ => ExitCode::from(1),
    }
}

/// Runs `job`.
pub fn job(db_path: &Path, workspace: &str, cmd: &JobCommand) -> anyhow::Result<ExitCode> {
    let mut out = create_output(None)?;
    match cmd {
        JobCommand::Submit(a) => {
            let req = read_request(&a.request)?;
            let db = crate::commands::open_for_write(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            let id = ws.submit(&req)?;
            eprint_line(&format!(
                "submitted job {id} ({} records); run it with: contactdb job run",
                count(req.records.len() as u64)
            ));
            writeln!(out, "{id}")?;
        }
        JobCommand::Run(a) => run_jobs(db_path, workspace, a, &mut out)?,
        JobCommand::Wait(a) => {
            let job = wait_for_job(db_path, workspace, &a.run, &a.id)?;
            print_wait(&mut out, &job)?;
            out.flush()?;
            return Ok(job_exit(&job));
        }
        JobCommand::Status(a) => {
            let db = open_existing(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            let Some(job) = ws.job(&a.id)? else {
                bail!("no job {:?} in workspace {workspace:?}", a.id);
            };
            serde_json::to_writer_pretty(&mut out, &job)?;
            out.write_all(b"\n")?;
        }
        JobCommand::List => {
            let db = open_existing(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            for j in ws.jobs()? {
                print_job(&mut out, &j)?;
            }
        }
        JobCommand::Cancel(a) => {
            let db = crate::commands::open_for_write(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            if !ws.cancel_job(&a.id)? {
                bail!(
                    "job {} is not queued: only a queued job can be cancelled",
                    a.id
                );
            }
            eprint_line(&format!("cancelled job {}", a.id));
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs every job of the workspace that has not ended, one after the other, and
/// prints the status line of each.
fn run_jobs(
    db_path: &Path,
    workspace: &str,
    run: &JobRunArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let db = open_runner(db_path, run).with_context(|| crate::util::shown(db_path))?;
    let ws = open_workspace(&db, workspace)?;
    let pending: Vec<Job> = ws
        .jobs()?
        .into_iter()
        .filter(|j| !j.state.is_final())
        .collect();
    for j in pending {
        let done = ws.run_job(&j.id)?;
        print_job(
            out,
            &Job {
                report: None,
                ..done
            },
        )?;
    }
    Ok(())
}

/// Runs job `id` to its end and returns it. Another process holding the file runs
/// the job (or will): this waits for it to close the file, then finishes the job
/// here if it is not done. With PostgreSQL another runner may hold the job: this
/// waits until it ends, or takes it over once that runner's hold runs out.
fn wait_for_job(
    db_path: &Path,
    workspace: &str,
    run: &JobRunArgs,
    id: &str,
) -> anyhow::Result<Job> {
    let db = loop {
        match open_runner(db_path, run) {
            Ok(db) => break db,
            Err(contactdb::OpenError::AlreadyOpen { .. }) => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(anyhow::Error::from(e).context(crate::util::shown(db_path)));
            }
        }
    };
    let ws = open_workspace(&db, workspace)?;
    loop {
        let job = ws.run_job(id)?;
        if job.state.is_final() {
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What `job wait` shows of a job that ended: its report, or why it has none.
fn print_wait(out: &mut dyn Write, job: &Job) -> anyhow::Result<()> {
    match (&job.report, &job.error) {
        (Some(r), _) => {
            serde_json::to_writer_pretty(&mut *out, r)?;
            out.write_all(b"\n")?;
        }
        (None, Some(e)) => eprint_line(&format!("error: job {} failed: {e}", job.id)),
        (None, None) => eprint_line(&format!("job {} was {:?}", job.id, job.state)),
    }
    Ok(())
}

/// Runs `feed`.
pub fn feed(db_path: &Path, workspace: &str, cmd: &FeedCommand) -> anyhow::Result<ExitCode> {
    let mut out = create_output(None)?;
    match cmd {
        FeedCommand::Read(a) => {
            let db = open_existing(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            let events = match (a.after, &a.consumer) {
                (Some(after), _) => ws.feed(after, a.limit)?,
                (None, Some(c)) => ws.feed_for(c, a.limit)?,
                (None, None) => ws.feed(0, a.limit)?,
            };
            for e in &events {
                line(&mut out, e)?;
            }
        }
        FeedCommand::Ack(a) => {
            let db = crate::commands::open_for_write(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            let at = ws.ack(&a.consumer, a.seq)?;
            line(
                &mut out,
                &serde_json::json!({"consumer": a.consumer, "acked": at}),
            )?;
        }
        FeedCommand::Deliver(a) => {
            let hook = a.hook.webhook(&a.url)?;
            let db = crate::commands::open_for_write(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            match contactdb_server::deliver::drain(&ws, &hook, a.attempts.max(1), &|| false) {
                Ok(d) => eprint_line(&format!(
                    "delivered {} events in {} posts to {}",
                    count(d.events),
                    count(d.posts),
                    a.url
                )),
                Err(e) => bail!(
                    "delivery stopped: {e}; the next run resumes from the last accepted event"
                ),
            }
        }
        FeedCommand::Consumers => {
            let db = open_existing(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            for c in ws.consumers()? {
                line(&mut out, &c)?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
