//! contactdb over HTTP: the hosted APIs' endpoints, unchanged bodies and
//! responses, on one [`contactdb::Database`], with API keys, workspaces and limits,
//! and a worker that runs submitted jobs.
//!
//! | method and path | body | answers |
//! |---|---|---|
//! | `POST /api/v1/customers/import` | customer-import | 202 `{"jobId"}` |
//! | `POST /api/v1/customers/add/bulk` | bulk-add | 201 / 207 / 400 |
//! | `POST /api/v1/contacts/bulk-upsert` | bulk-upsert | 200 / 207 / 400; 429 while another write runs |
//! | `GET /api/v1/jobs/{jobId}` | — | `{id, state, processed, total, report?}` |
//! | `GET /healthz` | — | 200 `{"ok": true}` |
//!
//! Requests authenticate with `Authorization: Bearer TOKEN` or `x-api-key: TOKEN`
//! (401 without a live key) and act in the key's workspace; `x-workspace-slug` or
//! `x-workspace-id` naming another is 403, as is a key whose role does not allow the
//! operation (`read` for `GET`, `write` for the rest). A body over the limit is 413.

pub mod deliver;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use contactdb::{Database, Role, Workspace};
use contactdb_api::bulk_add::BulkAdd;
use contactdb_api::bulk_upsert::BulkUpsert;
use contactdb_api::customer_import::{CustomerImport, JobHandle};
use contactdb_api::{ApiError, HttpStatus};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Default most bytes of a request body: 16 MiB.
pub const MAX_BODY_DEFAULT: usize = 16 << 20;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most bytes of a request body (413 above).
    pub max_body: usize,
    /// How often the job worker looks for jobs nobody told it about (submitted by
    /// another process before this one started, or interrupted), and the webhook
    /// deliverer for new events.
    pub job_poll: Duration,
    /// Where to deliver the triggered change events, if anywhere.
    pub webhook: Option<deliver::Webhook>,
    /// Most requests per minute one key may make (a burst of that many, refilled
    /// evenly); more get 429 with `Retry-After`. `None`: no limit.
    pub rate_per_minute: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body: MAX_BODY_DEFAULT,
            job_poll: Duration::from_secs(5),
            webhook: None,
            rate_per_minute: None,
        }
    }
}

#[derive(Clone)]
struct AppState {
    db: Database,
    jobs: Arc<Notify>,
    limits: Arc<RateLimits>,
}

/// A token bucket per key: `per_minute` tokens at most, refilled evenly.
struct RateLimits {
    per_minute: Option<u32>,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, Instant)>>,
}

impl RateLimits {
    /// Takes a token for `key`; when there is none, the seconds until there is.
    fn take(&self, key: &str) -> Result<(), u64> {
        let Some(per_minute) = self.per_minute.filter(|n| *n > 0) else {
            return Ok(());
        };
        let cap = f64::from(per_minute);
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * cap / 60.0).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) * 60.0 / cap).ceil().max(1.0) as u64)
        }
    }
}

/// What one request's log line says beyond method, path and status.
#[derive(Clone, Default)]
struct LogInfo {
    workspace: Option<String>,
    records: Option<usize>,
}

/// An answer: a status and a JSON body (and the log's details).
struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
    log: LogInfo,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert("retry-after", v);
        }
        r.extensions_mut().insert(self.log);
        r
    }
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
        retry_after: None,
        log: LogInfo::default(),
    }
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
    let e = ApiError {
        status: HttpStatus(status),
        code: code.to_owned(),
        message: message.into(),
    };
    answer(status, e.body())
}

fn internal(e: impl std::fmt::Display) -> Answer {
    error(500, "internal", e.to_string())
}

/// Runs blocking engine work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Answer> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

/// The key's workspace, if the key is live, names no other workspace in the
/// headers, and its role is at least `needed`.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    needed: Role,
) -> Result<Workspace, Answer> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let token = header("authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::trim))
        .or_else(|| header("x-api-key"))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let Some(token) = token else {
        return Err(error(
            401,
            "unauthorized",
            "an API key is required (Authorization: Bearer TOKEN or x-api-key)",
        ));
    };
    let db = state.db.clone();
    let found = blocking(move || db.authenticate(&token))
        .await?
        .map_err(internal)?;
    let Some((ws, role, key_id)) = found else {
        return Err(error(401, "unauthorized", "unknown or revoked API key"));
    };
    let info = ws.info();
    let other = |name: &str, own: &str| header(name).is_some_and(|v| !v.eq_ignore_ascii_case(own));
    if other("x-workspace-slug", &info.slug) || other("x-workspace-id", &info.uuid) {
        return Err(error(
            403,
            "forbidden_workspace",
            "the key belongs to another workspace",
        ));
    }
    if role < needed {
        return Err(error(
            403,
            "forbidden_role",
            format!("the key's role does not allow this operation (needs {needed:?})"),
        ));
    }
    if let Err(wait) = state.limits.take(&key_id) {
        let mut a = error(
            429,
            "rate_limited",
            format!("this key's request rate is limited; retry in {wait} s"),
        );
        a.retry_after = Some(wait);
        return Err(a);
    }
    Ok(ws)
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "malformed_body",
            format!("the body is not valid for this API: {e}"),
        )
    })
}

fn refused(e: impl Into<contactdb::Error>) -> Answer {
    match e.into() {
        contactdb::Error::Request(r) => error(400, r.code(), r.to_string()),
        contactdb::Error::Busy => {
            let mut a = error(
                429,
                "busy",
                "another write is in progress in this workspace; retry later",
            );
            a.retry_after = Some(1);
            a
        }
        other => internal(other),
    }
}

fn with_log(mut a: Answer, ws: &Workspace, records: usize) -> Answer {
    a.log = LogInfo {
        workspace: Some(ws.info().slug.clone()),
        records: Some(records),
    };
    a
}

async fn customer_import(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let run = async {
        let ws = authorize(&state, &headers, Role::Write).await?;
        let req = parse::<CustomerImport>(&body)?
            .to_request()
            .map_err(|e| error(e.status.0, &e.code, e.message))?;
        let n = req.records.len();
        let w = ws.clone();
        let id = blocking(move || w.submit(&req)).await?.map_err(refused)?;
        state.jobs.notify_one();
        Ok(with_log(
            answer(202, json!(JobHandle { job_id: id })),
            &ws,
            n,
        ))
    };
    run.await.unwrap_or_else(|a| a)
}

async fn bulk_add(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let run = async {
        let ws = authorize(&state, &headers, Role::Write).await?;
        let add = parse::<BulkAdd>(&body)?;
        let req = add
            .to_request()
            .map_err(|e| error(e.status.0, &e.code, e.message))?;
        let n = req.records.len();
        let w = ws.clone();
        let report = blocking(move || -> Result<_, contactdb::Error> {
            let have: Vec<String> = w.columns()?.into_iter().map(|c| c.name).collect();
            for spec in add.columns_needed() {
                if !have.contains(&spec.name) {
                    w.declare_column(spec)?;
                }
            }
            let report = w.bulk(&req)?;
            Ok(add.respond(&report))
        })
        .await?
        .map_err(refused)?;
        let (status, response) = report;
        Ok(with_log(answer(status.0, json!(response)), &ws, n))
    };
    run.await.unwrap_or_else(|a| a)
}

async fn bulk_upsert(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let run = async {
        let ws = authorize(&state, &headers, Role::Write).await?;
        let req = parse::<BulkUpsert>(&body)?
            .to_request()
            .map_err(|e| error(e.status.0, &e.code, e.message))?;
        let n = req.records.len();
        let w = ws.clone();
        // Parallel calls are refused, not queued: 429 while another write runs.
        let report = blocking(move || w.try_bulk(&req)).await?.map_err(refused)?;
        let (status, response) = BulkUpsert::respond(&report);
        Ok(with_log(answer(status.0, json!(response)), &ws, n))
    };
    run.await.unwrap_or_else(|a| a)
}

async fn job(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    let run = async {
        let ws = authorize(&state, &headers, Role::Read).await?;
        let w = ws.clone();
        let found = blocking(move || w.job(&id)).await?.map_err(|e| match e {
            contactdb::Error::InvalidArgument(m) => error(404, "no_such_job", m),
            other => internal(other),
        })?;
        match found {
            Some(j) => Ok(with_log(answer(200, json!(j)), &ws, 0)),
            None => Err(error(404, "no_such_job", "no such job in this workspace")),
        }
    };
    run.await.unwrap_or_else(|a| a)
}

async fn healthz() -> Answer {
    answer(200, json!({"ok": true}))
}

/// One structured line per request: method, path, workspace, status, records,
/// duration. Never a token.
async fn log_line(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let info = response
        .extensions()
        .get::<LogInfo>()
        .cloned()
        .unwrap_or_default();
    tracing::info!(
        method = %method,
        path = %path,
        workspace = info.workspace.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        records = info.records.unwrap_or(0),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// The routes over `db` (without the job worker).
pub fn router(db: Database, config: &Config) -> Router {
    router_with(db, config, Arc::new(Notify::new()))
}

fn router_with(db: Database, config: &Config, jobs: Arc<Notify>) -> Router {
    Router::new()
        .route("/api/v1/customers/import", post(customer_import))
        .route("/api/v1/customers/add/bulk", post(bulk_add))
        .route("/api/v1/contacts/bulk-upsert", post(bulk_upsert))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(config.max_body))
        .layer(axum::middleware::from_fn(log_line))
        .with_state(AppState {
            db,
            jobs,
            limits: Arc::new(RateLimits {
                per_minute: config.rate_per_minute,
                buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        })
}

/// Runs every unfinished job of every workspace (one pass), until `stopping`.
fn run_jobs(db: &Database, stopping: &AtomicBool) {
    let Ok(workspaces) = db.workspaces() else {
        return;
    };
    let stop = || stopping.load(Ordering::Relaxed);
    for w in workspaces {
        if let Ok(ws) = db.workspace(&w.slug)
            && let Err(e) = ws.run_jobs_until(&stop)
        {
            tracing::warn!(workspace = %w.slug, error = %e, "job run failed; it will be retried");
        }
    }
}

/// Serves `db` on `listener` until `shutdown` completes: then it stops accepting,
/// finishes the requests in flight, lets a job in progress commit its chunk in
/// flight and leaves the rest of it to the next worker (here, or `contactdb job
/// run`), and returns.
pub async fn serve(
    db: Database,
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = Arc::new(Notify::new());
    // Outlives every other handle: see the end.
    let last = db.clone();
    let db_for_delivery = db.clone();
    let app = router_with(db.clone(), &config, Arc::clone(&jobs));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let poll = config.job_poll;
    let stopping = Arc::new(AtomicBool::new(false));
    let worker_stop = Arc::clone(&stopping);
    let worker = tokio::spawn(async move {
        loop {
            let d = db.clone();
            let s = Arc::clone(&worker_stop);
            // A panic in a job run is that run's; the worker goes on.
            let _ = tokio::task::spawn_blocking(move || run_jobs(&d, &s)).await;
            tokio::select! {
                () = jobs.notified() => {}
                () = tokio::time::sleep(poll) => {}
                _ = stop_rx.changed() => return,
            }
        }
    });
    let deliverer = config.webhook.clone().map(|hook| {
        let db = db_for_delivery.clone();
        let stopping = Arc::clone(&stopping);
        let poll = config.job_poll;
        std::thread::spawn(move || deliver_loop(&db, &hook, poll, &stopping))
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // A job in progress stops after its chunk in flight and resumes at the next run.
    stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = worker.await;
    if let Some(d) = deliverer {
        let _ = tokio::task::spawn_blocking(move || d.join()).await;
    }
    // The last handle closes the database (a PostgreSQL one closes its
    // connections, which blocks): on a blocking thread, not the runtime's. A
    // connection task may still hold a handle after `axum::serve` returned and
    // drop it on a runtime thread; the PostgreSQL pool then closes its
    // connections on a thread of its own.
    drop(db_for_delivery);
    let _ = tokio::task::spawn_blocking(move || drop(last)).await;
    result
}

/// Delivers every workspace's triggered events until `stopping`.
fn deliver_loop(db: &Database, hook: &deliver::Webhook, poll: Duration, stopping: &AtomicBool) {
    let stop = || stopping.load(Ordering::Relaxed);
    while !stop() {
        for w in db.workspaces().unwrap_or_default() {
            let Ok(ws) = db.workspace(&w.slug) else {
                continue;
            };
            if let Err(e) = deliver::drain(&ws, hook, 5, &stop) {
                tracing::warn!(workspace = %w.slug, error = %e, "webhook delivery paused; it resumes from the last accepted event");
            }
        }
        let started = Instant::now();
        while !stop() && started.elapsed() < poll {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
