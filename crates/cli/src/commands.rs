//! The small commands: `upsert`, `get`, `find`, `export`, `columns`, `workspace`,
//! `stats`, `check`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use contactdb::column::{Catalog, Kind};
use contactdb::{ColumnSpec, ColumnType, Database, Report, Status, Workspace};
use serde_json::{Value, json};

use crate::cli::{
    BackupArgs, ColumnAddArgs, ColumnTypeArg, ColumnsCommand, ExportArgs, FindArgs, GetArgs,
    OutFormatArg, STRING_MAX_LEN_DEFAULT, UpsertArgs, WorkspaceCommand,
};
use crate::input::type_args;
use crate::request::{Refusal, read_request};
use crate::util::{UsageError, count, create_output, eprint_line};

/// Opens (or creates) the database for a command that writes.
pub fn open_for_write(path: &Path) -> anyhow::Result<Database> {
    Database::open(path).with_context(|| crate::util::shown(path))
}

/// Opens an existing database read-only for a command that only reads: never
/// creates, upgrades or otherwise writes the file, and runs beside a writer process.
pub fn open_existing(path: &Path) -> anyhow::Result<Database> {
    match Database::open_read_only(path) {
        Ok(db) => Ok(db),
        Err(contactdb::OpenError::NotFound { .. }) => bail!(
            "no database at {} (it is created by the first write, for example `contactdb import FILE`; use --db PATH for another file)",
            crate::util::shown(path)
        ),
        Err(e) => Err(anyhow::Error::new(e).context(crate::util::shown(path))),
    }
}

/// The workspace named by `--workspace`, with a hint when it does not exist.
pub fn open_workspace(db: &Database, name: &str) -> anyhow::Result<Workspace> {
    match db.workspace(name) {
        Ok(ws) => Ok(ws),
        Err(contactdb::WorkspaceError::NotFound { .. }) => Err(anyhow!(
            "no workspace {name:?} (create it with: contactdb workspace create {name})"
        )),
        Err(e) => Err(e.into()),
    }
}

fn print_json_line(out: &mut dyn Write, v: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn print_pretty(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = create_output(None)?;
    serde_json::to_writer_pretty(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// `upsert --request FILE|-`.
pub fn upsert(db_path: &Path, workspace: &str, args: &UpsertArgs) -> anyhow::Result<ExitCode> {
    let max_records = usize::try_from(args.max_records).unwrap_or(usize::MAX);
    let read = if args.request.as_os_str() == "-" {
        read_request(std::io::stdin().lock(), max_records, args.max_record_bytes)
    } else {
        let file = std::fs::File::open(&args.request)
            .with_context(|| format!("cannot read {}", args.request.display()))?;
        read_request(file, max_records, args.max_record_bytes)
    };
    let report = match read {
        Err(Refusal::TooManyRecords { max }) => Report::rejected_request(
            max.saturating_add(1),
            "too_many_records",
            format!(
                "the request has more than {} records, at most {} allowed (--max-records); reading stopped at record {}",
                count(max as u64),
                count(max as u64),
                count(max as u64 + 1)
            ),
        ),
        Err(Refusal::RecordTooLarge { message, records }) => Report::rejected_request(
            records.saturating_add(1),
            "record_too_large",
            format!("record {}: {message}", records.saturating_add(1)),
        ),
        Err(Refusal::Malformed { message, records }) => {
            Report::rejected_request(records, "malformed_request", message)
        }
        Ok(req) => {
            let total = req.records.len();
            let db = Database::builder()
                .records_max(max_records)
                .open(db_path)
                .with_context(|| crate::util::shown(db_path))?;
            let mut report = match db.workspace(workspace) {
                Err(contactdb::WorkspaceError::NotFound { name }) => Report::rejected_request(
                    total,
                    "no_such_workspace",
                    format!("no workspace {name:?}"),
                ),
                Err(e) => return Err(e.into()),
                Ok(ws) => match ws.bulk(&req) {
                    Ok(r) => r,
                    Err(contactdb::BulkError::Request(e)) => {
                        Report::rejected_request(total, e.code(), e.to_string())
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            if report.request_id.is_none() {
                report.request_id.clone_from(&req.request_id);
            }
            report
        }
    };
    print_pretty(&report)?;
    let s = &report.summary;
    match (&report.status, &report.request_error) {
        (Status::Rejected, Some(e)) => {
            eprint_line(&format!(
                "error: request rejected: {}: {}",
                e.code, e.message
            ));
        }
        (Status::Rejected, None) => eprint_line(&format!(
            "error: request rejected: {} of {} records failed; nothing was written",
            count(s.failed),
            count(s.total)
        )),
        (Status::Partial, _) => eprint_line(&format!(
            "partially applied: {} inserted, {} updated, {} unchanged, {} failed",
            count(s.inserted),
            count(s.updated),
            count(s.unchanged),
            count(s.failed)
        )),
        (Status::Applied, _) => {}
    }
    Ok(status_code(report.status))
}

/// The exit code of a status: applied 0, partial 3, rejected 1.
pub fn status_code(s: Status) -> ExitCode {
    ExitCode::from(match s {
        Status::Applied => 0,
        Status::Partial => 3,
        Status::Rejected => 1,
    })
}

/// `get KEY`.
pub fn get(db_path: &Path, workspace: &str, args: &GetArgs) -> anyhow::Result<ExitCode> {
    let db = open_existing(db_path)?;
    let ws = open_workspace(&db, workspace)?;
    match ws.get(&args.key)? {
        Some(c) => {
            print_pretty(&c)?;
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "no contact with key or alias {:?} in workspace {workspace:?}",
            args.key
        ),
    }
}

/// `find --email E | --phone P`.
pub fn find(db_path: &Path, workspace: &str, args: &FindArgs) -> anyhow::Result<ExitCode> {
    let db = open_existing(db_path)?;
    let ws = open_workspace(&db, workspace)?;
    let found = match (&args.email, &args.phone) {
        (Some(e), _) => ws.find_by_email(e),
        (None, Some(p)) => ws.find_by_phone(p),
        (None, None) => return Err(UsageError("give --email or --phone".to_owned()).into()),
    };
    let found = match found {
        Ok(f) => f,
        Err(contactdb::Error::InvalidArgument(m)) => bail!("{m}"),
        Err(e) => return Err(e.into()),
    };
    let mut out = create_output(None)?;
    for c in &found {
        print_json_line(&mut out, c)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Export column order: `contact_key`, predefined columns in catalog order, custom
/// columns in declaration order, then the system fields. `bool` = JSON-typed.
fn export_columns(custom: &[ColumnSpec]) -> Vec<(String, bool)> {
    let mut cols: Vec<(String, bool)> = vec![("contact_key".to_owned(), false)];
    for c in Catalog::new(&[]).columns() {
        if c.name != "contact_key" && c.name != "new_contact_key" {
            cols.push((c.name.clone(), c.kind == Kind::Json));
        }
    }
    for s in custom {
        cols.push((s.name.clone(), s.ty == ColumnType::Json));
    }
    cols
}

/// A value as a CSV cell: JSON-typed columns as JSON text, others as plain text.
fn cell(v: Option<&Value>, json: bool) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(v) if json => v.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// `export [--format csv|jsonl] [--out FILE]`.
pub fn export(db_path: &Path, workspace: &str, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let format = OutFormatArg::resolve(args.format, args.out.as_deref(), OutFormatArg::Jsonl);
    let db = open_existing(db_path)?;
    let ws = open_workspace(&db, workspace)?;
    let out = create_output(args.out.as_deref())?;
    let mut failure: Option<anyhow::Error> = None;
    let mut n = 0u64;
    match format {
        OutFormatArg::Jsonl => {
            let mut out = out;
            ws.for_each_contact(|c| match print_json_line(&mut out, &c) {
                Ok(()) => {
                    n += 1;
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            })?;
            if failure.is_none() {
                out.flush()?;
            }
        }
        OutFormatArg::Csv => {
            let cols = export_columns(&ws.columns()?);
            let mut w = csv::Writer::from_writer(out);
            let mut header: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
            header.extend(["aliases", "version", "created_at", "updated_at"]);
            w.write_record(&header)?;
            let mut row: Vec<String> = Vec::with_capacity(header.len());
            ws.for_each_contact(|c| {
                row.clear();
                row.push(c.key.clone());
                for (name, json) in cols.iter().skip(1) {
                    row.push(cell(c.columns.get(name), *json));
                }
                row.push(if c.aliases.is_empty() {
                    String::new()
                } else {
                    json!(c.aliases).to_string()
                });
                row.push(c.version.to_string());
                row.push(c.created_at.to_string());
                row.push(c.updated_at.to_string());
                match w.write_record(&row) {
                    Ok(()) => {
                        n += 1;
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        failure = Some(e.into());
                        ControlFlow::Break(())
                    }
                }
            })?;
            if failure.is_none() {
                w.flush()?;
            }
        }
    }
    if let Some(e) = failure {
        return Err(e.context("cannot write the export"));
    }
    if let Some(p) = &args.out {
        eprint_line(&format!(
            "exported {} contacts to {}",
            count(n),
            p.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_type(k: Kind) -> Value {
    match k {
        Kind::Key => json!({"type": "key"}),
        Kind::Text { chars_max } => json!({"type": "string", "max_len": chars_max}),
        Kind::Email => json!({"type": "email"}),
        Kind::Phone => json!({"type": "phone"}),
        Kind::Status => json!({"type": "enum", "values": ["A", "P"]}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Date => json!({"type": "date"}),
        Kind::Priority => json!({"type": "integer", "min": 0}),
        Kind::Integer => json!({"type": "integer"}),
        Kind::Decimal => json!({"type": "decimal"}),
        Kind::Json => json!({"type": "json"}),
    }
}

/// `columns list|add`.
pub fn columns(db_path: &Path, workspace: &str, cmd: &ColumnsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ColumnsCommand::List => {
            let db = open_existing(db_path)?;
            let ws = open_workspace(&db, workspace)?;
            let mut out = create_output(None)?;
            for c in Catalog::new(&[]).columns() {
                let mut v = json!({"name": c.name});
                if let (Value::Object(m), Value::Object(t)) = (&mut v, kind_type(c.kind)) {
                    m.extend(t);
                    m.insert("predefined".to_owned(), Value::Bool(true));
                    m.insert("import_enabled".to_owned(), Value::Bool(c.import_enabled));
                    m.insert("required".to_owned(), Value::Bool(c.required));
                }
                print_json_line(&mut out, &v)?;
            }
            for s in ws.columns()? {
                let mut v = serde_json::to_value(&s)?;
                if let Value::Object(m) = &mut v {
                    m.insert("predefined".to_owned(), Value::Bool(false));
                }
                print_json_line(&mut out, &v)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        ColumnsCommand::Add(a) => columns_add(db_path, workspace, a),
    }
}

fn columns_add(db_path: &Path, workspace: &str, a: &ColumnAddArgs) -> anyhow::Result<ExitCode> {
    if a.max_len.is_some() && a.ty != ColumnTypeArg::String {
        return Err(UsageError("--max-len is only for --type string".to_owned()).into());
    }
    let ty = match a.ty {
        ColumnTypeArg::String => ColumnType::String {
            max_len: a.max_len.unwrap_or(STRING_MAX_LEN_DEFAULT),
        },
        ColumnTypeArg::Integer => ColumnType::Integer,
        ColumnTypeArg::Decimal => ColumnType::Decimal,
        ColumnTypeArg::Boolean => ColumnType::Boolean,
        ColumnTypeArg::Date => ColumnType::Date,
        ColumnTypeArg::Json => ColumnType::Json,
    };
    let spec = ColumnSpec::new(a.name.clone(), ty)
        .import_enabled(a.import_enabled)
        .required(a.required);
    if let Err(m) = spec.validate() {
        bail!("{m}");
    }
    let db = open_for_write(db_path)?;
    let ws = open_workspace(&db, workspace)?;
    ws.declare_column(spec.clone())?;
    eprint_line(&format!(
        "declared column {} ({}{}{}) in workspace {workspace:?}",
        spec.name,
        type_args(spec.ty),
        if spec.import_enabled {
            ", import-enabled"
        } else {
            ", not import-enabled"
        },
        if spec.required { ", required" } else { "" }
    ));
    Ok(ExitCode::SUCCESS)
}

/// `workspace list|create`.
pub fn workspace(db_path: &Path, cmd: &WorkspaceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WorkspaceCommand::List => {
            let db = open_existing(db_path)?;
            let mut out = create_output(None)?;
            for w in db.workspaces()? {
                print_json_line(&mut out, &w)?;
            }
            out.flush()?;
        }
        WorkspaceCommand::Create(a) => {
            let db = open_for_write(db_path)?;
            let info = db.create_workspace(&a.slug)?;
            print_pretty(&info)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `stats`.
/// `stats`: every workspace, or only `only` (given with `--workspace`).
pub fn stats(db_path: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let db = open_existing(db_path)?;
    let mut workspaces = Vec::new();
    let mut total = 0u64;
    let chosen = match only {
        Some(name) => Some(open_workspace(&db, name)?.info().uuid.clone()),
        None => None,
    };
    for w in db.workspaces()? {
        if chosen.as_ref().is_some_and(|id| *id != w.uuid) {
            continue;
        }
        let ws = db.workspace(&w.slug)?;
        let n = ws.count()?;
        total += n;
        workspaces.push(json!({
            "slug": w.slug,
            "uuid": w.uuid,
            "contacts": n,
            "custom_columns": ws.columns()?.len(),
        }));
    }
    print_pretty(&json!({
        "database": crate::util::shown(db_path),
        "file_size_bytes": if contactdb::is_postgres_url(db_path) { None } else { Some(db.file_size()?) },
        "contacts": total,
        "workspaces": workspaces,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// `repair`: redb's integrity check in place, then the engine's invariants.
pub fn repair(db_path: &Path) -> anyhow::Result<ExitCode> {
    let (clean, problems) = match Database::builder().repair_file(db_path) {
        Ok(r) => r,
        Err(contactdb::OpenError::NotFound { .. }) => bail!(
            "no database at {} (use --db PATH for another file)",
            crate::util::shown(db_path)
        ),
        Err(e) => return Err(anyhow::Error::new(e).context(crate::util::shown(db_path))),
    };
    let list: Vec<Value> = problems
        .iter()
        .map(|p| json!({"table": p.table, "key": p.key, "message": p.message}))
        .collect();
    print_pretty(&json!({"repaired": !clean, "ok": problems.is_empty(), "problems": list}))?;
    if !clean {
        eprint_line(&format!(
            "redb repaired {} (its page checksums or allocator state did not match)",
            crate::util::shown(db_path)
        ));
    }
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprint_line(&format!(
            "error: {} problem(s) remain in {}; restore from a backup",
            count(problems.len() as u64),
            crate::util::shown(db_path)
        ));
        Ok(ExitCode::from(1))
    }
}

/// `compact`: the file's free pages given back, in place.
pub fn compact(db_path: &Path) -> anyhow::Result<ExitCode> {
    let (before, after) = match Database::builder().compact_file(db_path) {
        Ok(r) => r,
        Err(contactdb::OpenError::NotFound { .. }) => bail!(
            "no database at {} (use --db PATH for another file)",
            crate::util::shown(db_path)
        ),
        Err(e) => return Err(anyhow::Error::new(e).context(crate::util::shown(db_path))),
    };
    print_pretty(&json!({"bytes_before": before, "bytes_after": after}))?;
    Ok(ExitCode::SUCCESS)
}

/// `backup DEST`.
pub fn backup(db_path: &Path, args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let db = open_existing(db_path)?;
    let s = db
        .backup(&args.dest)
        .with_context(|| format!("cannot back up {}", crate::util::shown(db_path)))?;
    eprint_line(&format!(
        "backed up {} to {}: {} entries, {} bytes",
        crate::util::shown(db_path),
        args.dest.display(),
        count(s.entries),
        count(s.bytes)
    ));
    Ok(ExitCode::SUCCESS)
}

/// `check`: redb's integrity check on a copy of the file, then the engine's
/// invariants on that copy; the original is only read.
pub fn check(db_path: &Path) -> anyhow::Result<ExitCode> {
    let problems = match Database::builder().check_file(db_path) {
        Ok(p) => p,
        Err(contactdb::OpenError::NotFound { .. }) => bail!(
            "no database at {} (use --db PATH for another file)",
            crate::util::shown(db_path)
        ),
        Err(e) => return Err(anyhow::Error::new(e).context(crate::util::shown(db_path))),
    };
    let list: Vec<Value> = problems
        .iter()
        .map(|p| json!({"table": p.table, "key": p.key, "message": p.message}))
        .collect();
    print_pretty(&json!({"ok": problems.is_empty(), "problems": list}))?;
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprint_line(&format!(
            "error: check found {} problem(s) in {}",
            count(problems.len() as u64),
            crate::util::shown(db_path)
        ));
        Ok(ExitCode::from(1))
    }
}
