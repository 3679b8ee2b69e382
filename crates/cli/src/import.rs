//! `import`: streams CSV / JSON Lines / JSON inputs into a workspace in batches.
//!
//! `--on-invalid skip`: each batch is one `Workspace::bulk` call (one transaction).
//! `--on-invalid abort`: every batch goes through one `Workspace::bulk_atomic` call,
//! one write transaction committed only if no record anywhere failed; the outcome is
//! that of one request holding every record, whatever the batch size (with
//! `--on-duplicate first|last|reject` the input is planned as one batch).
//! Every batch's report is folded into a running tally, the rejects file and the
//! JSON report as it arrives, so memory is bounded by the batch size.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use contactdb::{
    BulkRequest, Database, EmptyValues, MatchOn, Mode, OnDuplicate, OnInvalid, Outcome, PhoneCheck,
    RecordError, Report, Status, Summary, Workspace,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use crate::cli::{
    EmptyValuesArg, ImportArgs, MatchArg, ModeArg, OnDuplicateArg, OnInvalidArg, PhoneCheckArg,
};
use crate::input::{
    self, Dialect, Format, Headers, Input, Invalid, Msg, Raw, RawKind, Rec, Schema,
};
use crate::util::{UsageError, count, create_output, eprint_line, rate, secs};

/// How many failed records the summary shows when neither --rejects nor --report
/// is given.
const EXAMPLES_MAX: usize = 5;

/// The request options of the import, without records.
fn template(args: &ImportArgs) -> BulkRequest {
    let mut req = BulkRequest::new(
        match args.mode {
            ModeArg::Insert => Mode::Insert,
            ModeArg::Update => Mode::Update,
            ModeArg::Upsert => Mode::Upsert,
        },
        Vec::new(),
    );
    req.match_on = MatchOn {
        email: args.match_on.contains(&MatchArg::Email),
        phone: args.match_on.contains(&MatchArg::Phone),
    };
    req.on_invalid = match args.on_invalid {
        OnInvalidArg::Abort => OnInvalid::Abort,
        OnInvalidArg::Skip => OnInvalid::Skip,
    };
    req.on_duplicate = match args.on_duplicate {
        OnDuplicateArg::Merge => OnDuplicate::Merge,
        OnDuplicateArg::First => OnDuplicate::First,
        OnDuplicateArg::Last => OnDuplicate::Last,
        OnDuplicateArg::Reject => OnDuplicate::Reject,
    };
    req.empty_values = match args.empty_values {
        EmptyValuesArg::Clear => EmptyValues::Clear,
        EmptyValuesArg::Ignore => EmptyValues::Ignore,
    };
    req.campaign.clone_from(&args.campaign);
    req.default_region.clone_from(&args.default_region);
    req.date_format.clone_from(&args.date_format);
    req.phone_check = match args.phone_check {
        PhoneCheckArg::Format => PhoneCheck::Format,
        PhoneCheckArg::Valid => PhoneCheck::Valid,
    };
    req
}

/// How long an import runs before its progress bar appears.
const PROGRESS_DELAY: Duration = Duration::from_secs(1);

/// Progress bar (when stderr is a terminal, after the first second) and notes that
/// do not garble it.
struct Ui {
    pb: Option<ProgressBar>,
    shown: Cell<bool>,
    quiet: bool,
    start: Instant,
}

impl Ui {
    fn new(enabled: bool, quiet: bool, total: Option<u64>) -> Ui {
        // Drawn into a hidden target until the import has run for PROGRESS_DELAY:
        // a short import never flashes a bar.
        let pb = enabled.then(|| {
            let pb = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
            let template = if total.is_some() {
                "{spinner} {elapsed_precise} [{wide_bar}] {percent:>3}%  {msg}  ETA {eta}"
            } else {
                "{spinner} {elapsed_precise}  {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb
        });
        Ui {
            pb,
            shown: Cell::new(false),
            quiet,
            start: Instant::now(),
        }
    }

    /// Shows the bar once the import has run for PROGRESS_DELAY.
    fn show_when_due(&self, pb: &ProgressBar) {
        if !self.shown.get() && self.start.elapsed() >= PROGRESS_DELAY {
            self.shown.set(true);
            pb.set_draw_target(ProgressDrawTarget::stderr());
            pb.enable_steady_tick(Duration::from_millis(200));
        }
    }

    fn note(&self, msg: &str) {
        if self.quiet {
            return;
        }
        let line = format!("note: {msg}");
        match &self.pb {
            Some(pb) => pb.suspend(|| eprint_line(&line)),
            None => eprint_line(&line),
        }
    }

    /// Bytes of input read so far (the bar and the ETA).
    fn read(&self, bytes: u64) {
        if let Some(pb) = &self.pb {
            pb.set_position(bytes);
            self.show_when_due(pb);
        }
    }

    /// Records processed so far (the message).
    fn done(&self, records: u64) {
        if let Some(pb) = &self.pb {
            self.show_when_due(pb);
            let elapsed = self.start.elapsed().as_secs_f64();
            pb.set_message(format!(
                "{} records, {} records/s",
                count(records),
                rate(records, elapsed)
            ));
        }
    }

    fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
    }
}

/// One batch's bookkeeping: which input lines its records came from.
struct Batch {
    file: usize,
    /// Global index (over the whole import) of the batch's first record.
    first_index: u64,
    /// The line of each record sent to the engine.
    lines: Vec<u64>,
    raws: Vec<Option<Raw>>,
    /// The batch's records that failed before the engine, in input order.
    refused: Vec<Refused>,
}

/// A record that failed before it reached the engine.
struct Refused {
    /// How many of the batch's engine records come before it.
    before: u32,
    line: u64,
    invalid: Invalid,
    raw: Option<Raw>,
}

impl Batch {
    /// Index over the whole import of the batch's engine record `i`.
    fn global(&self, i: u32) -> u64 {
        let refused_before = self.refused.partition_point(|r| r.before <= i);
        self.first_index + u64::from(i) + refused_before as u64
    }

    /// Index over the whole import of the batch's `k`-th refused record.
    fn refused_global(&self, k: usize) -> u64 {
        let before = self.refused.get(k).map_or(0, |r| u64::from(r.before));
        self.first_index + before + k as u64
    }

    /// The line of the batch's last record.
    fn last_line(&self) -> u64 {
        let engine = self.lines.last().copied().unwrap_or(0);
        let refused = self.refused.last().map_or(0, |r| r.line);
        engine.max(refused)
    }
}

/// Pulls records from the inputs, one batch at a time; a batch never spans two
/// inputs.
struct Producer<'a> {
    inputs: Vec<Input>,
    cur: usize,
    carry: VecDeque<Rec>,
    batch_size: usize,
    next_index: u64,
    template: BulkRequest,
    ui: &'a Ui,
}

impl Producer<'_> {
    fn bytes(&self) -> u64 {
        self.inputs
            .iter()
            .map(|i| i.bytes.load(Ordering::Relaxed))
            .sum()
    }

    fn next_batch(&mut self) -> Option<anyhow::Result<(BulkRequest, Batch)>> {
        let mut records = Vec::new();
        let mut batch = Batch {
            file: self.cur,
            first_index: self.next_index,
            lines: Vec::new(),
            raws: Vec::new(),
            refused: Vec::new(),
        };
        loop {
            while records.len() + batch.refused.len() < self.batch_size {
                let Some(rec) = self.carry.pop_front() else {
                    break;
                };
                if let Some(invalid) = rec.invalid {
                    batch.refused.push(Refused {
                        before: u32::try_from(records.len()).unwrap_or(u32::MAX),
                        line: rec.line,
                        invalid,
                        raw: rec.raw,
                    });
                    continue;
                }
                records.push(Value::Object(rec.record));
                batch.lines.push(rec.line);
                batch.raws.push(rec.raw);
            }
            if records.len() + batch.refused.len() >= self.batch_size {
                break;
            }
            let input = self.inputs.get_mut(self.cur)?;
            match input.recv() {
                Msg::Recs(v) => {
                    self.carry.extend(v);
                    self.ui.read(self.bytes());
                }
                Msg::Note(n) => self.ui.note(&n),
                Msg::Error(e) => return Some(Err(e.into())),
                Msg::End(n) => {
                    if n == 0 {
                        return Some(Err(input::InputError {
                            file: input.name.clone(),
                            loc: input::Loc::None,
                            message: "no records in the input".to_owned(),
                        }
                        .into()));
                    }
                    self.cur += 1;
                    if !records.is_empty() || !batch.refused.is_empty() {
                        break;
                    }
                    batch.file = self.cur;
                    if self.cur >= self.inputs.len() {
                        return None;
                    }
                }
            }
        }
        self.next_index += (records.len() + batch.refused.len()) as u64;
        let mut req = self.template.clone();
        req.records = records;
        Some(Ok((req, batch)))
    }
}

/// Where failed records go.
enum RejectsOut {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Jsonl(Box<dyn Write>),
    Json(Box<dyn Write>, bool),
}

struct Rejects {
    out: RejectsOut,
    multi: bool,
    names: Vec<String>,
    written: u64,
}

/// A rejected JSON record with its annotation fields.
fn annotate(
    map: &Map<String, Value>,
    file: Option<String>,
    line: u64,
    codes: String,
    columns: String,
    messages: String,
) -> Value {
    let mut obj = map.clone();
    if let Some(f) = file {
        obj.insert("_file".to_owned(), Value::String(f));
    }
    obj.insert("_line".to_owned(), Value::from(line));
    obj.insert("_code".to_owned(), Value::String(codes));
    obj.insert("_column".to_owned(), Value::String(columns));
    obj.insert("_message".to_owned(), Value::String(messages));
    Value::Object(obj)
}

impl Rejects {
    fn write(&mut self, batch: &Batch, pos: usize, errs: &[&RecordError]) -> anyhow::Result<()> {
        let line = batch.lines.get(pos).copied().unwrap_or(0);
        let join = |f: &dyn Fn(&RecordError) -> String| -> String {
            errs.iter().map(|e| f(e)).collect::<Vec<_>>().join("; ")
        };
        let codes = join(&|e| e.code.as_str().to_owned());
        let columns = join(&|e| e.column.as_deref().unwrap_or("-").to_owned());
        let messages = join(&|e| e.message.clone());
        let raw = batch.raws.get(pos).and_then(Option::as_ref);
        self.write_row(batch.file, line, raw, codes, columns, messages)
    }

    fn write_refused(&mut self, batch: &Batch, r: &Refused) -> anyhow::Result<()> {
        self.write_row(
            batch.file,
            r.line,
            r.raw.as_ref(),
            r.invalid.code.to_owned(),
            "-".to_owned(),
            r.invalid.message.clone(),
        )
    }

    fn write_row(
        &mut self,
        file: usize,
        line: u64,
        raw: Option<&Raw>,
        codes: String,
        columns: String,
        messages: String,
    ) -> anyhow::Result<()> {
        let file = self.names.get(file).cloned().unwrap_or_default();
        match (&mut self.out, raw) {
            (RejectsOut::Csv(w), Some(Raw::Csv(cells))) => {
                let mut row: Vec<String> = Vec::with_capacity(cells.len() + 5);
                if self.multi {
                    row.push(file);
                }
                row.push(line.to_string());
                row.push(codes);
                row.push(columns);
                row.push(messages);
                row.extend(cells.iter().map(str::to_owned));
                w.write_record(&row)?;
            }
            (RejectsOut::Jsonl(w), Some(Raw::Json(map))) => {
                let obj = annotate(
                    map,
                    self.multi.then_some(file),
                    line,
                    codes,
                    columns,
                    messages,
                );
                serde_json::to_writer(&mut *w, &obj)?;
                writeln!(w)?;
            }
            (RejectsOut::Json(w, first), Some(Raw::Json(map))) => {
                let obj = annotate(
                    map,
                    self.multi.then_some(file),
                    line,
                    codes,
                    columns,
                    messages,
                );
                w.write_all(if *first { b"\n  " } else { b",\n  " })?;
                *first = false;
                serde_json::to_writer(&mut *w, &obj)?;
            }
            _ => return Err(anyhow!("internal: a rejected record was not kept")),
        }
        self.written += 1;
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self.out {
            RejectsOut::Csv(mut w) => w.flush()?,
            RejectsOut::Jsonl(mut w) => w.flush()?,
            RejectsOut::Json(mut w, first) => {
                if first {
                    writeln!(w, "[]")?;
                } else {
                    writeln!(w, "\n]")?;
                }
                w.flush()?;
            }
        }
        Ok(())
    }
}

/// The JSON report, spooled to temporary files section by section and assembled at
/// the end (status and summary first), so memory stays bounded.
struct ReportOut {
    dest: PathBuf,
    names: Vec<String>,
    results: Spool,
    errors: Spool,
    warnings: Spool,
}

struct Spool {
    w: BufWriter<File>,
    n: u64,
}

impl Spool {
    fn new() -> anyhow::Result<Spool> {
        let f = tempfile::tempfile().context("cannot create a temporary file for the report")?;
        Ok(Spool {
            w: BufWriter::new(f),
            n: 0,
        })
    }

    fn add(
        &mut self,
        entry: &impl serde::Serialize,
        index: u64,
        line: u64,
        file: &str,
    ) -> anyhow::Result<()> {
        let mut v = serde_json::to_value(entry)?;
        if let Value::Object(m) = &mut v {
            m.insert("index".to_owned(), Value::from(index));
            m.insert("line".to_owned(), Value::from(line));
            m.insert("file".to_owned(), Value::String(file.to_owned()));
        }
        serde_json::to_writer(&mut self.w, &v)?;
        self.w.write_all(b"\n")?;
        self.n += 1;
        Ok(())
    }

    /// Copies the spooled entries as the body of a JSON array; `fix` may rewrite
    /// each entry.
    fn copy_into(
        self,
        out: &mut dyn Write,
        fix: Option<&dyn Fn(&mut Value)>,
    ) -> anyhow::Result<()> {
        let mut f = self.w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        let mut first = true;
        for line in BufReader::new(f).lines() {
            let line = line?;
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            first = false;
            match fix {
                Some(fix) => {
                    let mut v: Value = serde_json::from_str(&line)?;
                    fix(&mut v);
                    serde_json::to_writer(&mut *out, &v)?;
                }
                None => out.write_all(line.as_bytes())?,
            }
        }
        if !first {
            out.write_all(b"\n  ")?;
        }
        Ok(())
    }
}

impl ReportOut {
    /// Adds a batch's entries in input order: the engine's, and those of the
    /// records refused before it.
    fn add(&mut self, batch: &Batch, report: Option<&Report>) -> anyhow::Result<()> {
        let file = self.names.get(batch.file).cloned().unwrap_or_default();
        let line = |i: u32| batch.lines.get(i as usize).copied().unwrap_or(0);
        let results = report.map_or(&[][..], |r| &r.results[..]);
        let errors = report.map_or(&[][..], |r| &r.errors[..]);
        let warnings = report.map_or(&[][..], |r| &r.warnings[..]);
        let refused_result =
            serde_json::json!({"key": null, "outcome": "failed", "matched_by": null});
        let mut k = 0;
        for r in results {
            while let Some(x) = batch.refused.get(k)
                && x.before <= r.index
            {
                self.results
                    .add(&refused_result, batch.refused_global(k), x.line, &file)?;
                k += 1;
            }
            self.results
                .add(r, batch.global(r.index), line(r.index), &file)?;
        }
        for (k, x) in batch.refused.iter().enumerate().skip(k) {
            self.results
                .add(&refused_result, batch.refused_global(k), x.line, &file)?;
        }
        let refused_error = |x: &Refused| serde_json::json!({"key": null, "column": null, "code": x.invalid.code, "message": x.invalid.message});
        let mut k = 0;
        for e in errors {
            while let Some(x) = batch.refused.get(k)
                && x.before <= e.index
            {
                self.errors
                    .add(&refused_error(x), batch.refused_global(k), x.line, &file)?;
                k += 1;
            }
            self.errors
                .add(e, batch.global(e.index), line(e.index), &file)?;
        }
        for (k, x) in batch.refused.iter().enumerate().skip(k) {
            self.errors
                .add(&refused_error(x), batch.refused_global(k), x.line, &file)?;
        }
        for w in warnings {
            self.warnings
                .add(w, batch.global(w.index), line(w.index), &file)?;
        }
        Ok(())
    }

    fn finish(
        self,
        status: Status,
        summary: &Summary,
        written: bool,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let mut out = create_output(Some(&self.dest))?;
        write!(
            out,
            "{{\n  \"status\": {},\n  \"summary\": {},\n  \"inputs\": {},",
            serde_json::to_string(&status)?,
            serde_json::to_string(summary)?,
            serde_json::to_string(&self.names)?
        )?;
        if let Some(e) = error {
            write!(out, "\n  \"error\": {},", serde_json::to_string(&e)?)?;
        }
        // Under abort, planned outcomes of a rejected import were never written.
        let unapply = |v: &mut Value| {
            if let Some(o) = v.get_mut("outcome")
                && matches!(o.as_str(), Some("inserted" | "updated" | "unchanged"))
            {
                *o = Value::String("not_applied".to_owned());
            }
        };
        write!(out, "\n  \"results\": [")?;
        self.results
            .copy_into(&mut out, if written { None } else { Some(&unapply) })?;
        write!(out, "],\n  \"errors\": [")?;
        self.errors.copy_into(&mut out, None)?;
        write!(out, "],\n  \"warnings\": [")?;
        if written {
            self.warnings.copy_into(&mut out, None)?;
        }
        writeln!(out, "]\n}}")?;
        out.flush()?;
        Ok(())
    }
}

/// Everything learnt from the batch reports so far.
struct Tally {
    names: Vec<String>,
    summary: Summary,
    duplicates: u64,
    codes: BTreeMap<&'static str, u64>,
    examples: Vec<String>,
    more_failures: u64,
    keep_examples: bool,
    rejects: Option<Rejects>,
    report: Option<ReportOut>,
    /// Batches whose status was not `rejected` (skip mode: committed).
    committed_batches: u64,
    committed_records: u64,
    /// (file, last line) of the last committed batch.
    committed_to: Option<(usize, u64)>,
    /// Records that failed before the engine.
    refused: u64,
}

impl Tally {
    fn new(
        names: Vec<String>,
        keep_examples: bool,
        rejects: Option<Rejects>,
        report: Option<ReportOut>,
    ) -> Tally {
        Tally {
            names,
            summary: Summary::default(),
            duplicates: 0,
            codes: BTreeMap::new(),
            examples: Vec::new(),
            more_failures: 0,
            keep_examples,
            rejects,
            report,
            committed_batches: 0,
            committed_records: 0,
            committed_to: None,
            refused: 0,
        }
    }

    /// Forgets the planned outcomes of an import that wrote nothing.
    fn forget_planned(&mut self) {
        self.summary.inserted = 0;
        self.summary.updated = 0;
        self.summary.unchanged = 0;
        self.summary.batches = 0;
    }

    /// Adds a batch: the engine's report of its records (none when every record
    /// was refused before the engine), and its refused records.
    fn add(&mut self, batch: &Batch, report: Option<&Report>) -> anyhow::Result<()> {
        if let Some(report) = report {
            self.summary.add(&report.summary);
            self.duplicates += report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Duplicate)
                .count() as u64;
        }
        let n = batch.refused.len() as u64;
        self.summary.total += n;
        self.summary.invalid += n;
        self.summary.failed += n;
        self.refused += n;
        let errors = report.map_or(&[][..], |r| &r.errors[..]);
        // Group errors by record (they come in input order), with the refused
        // records in their place.
        let mut k = 0;
        let mut i = 0;
        while let Some(first) = errors.get(i) {
            while let Some(x) = batch.refused.get(k)
                && x.before <= first.index
            {
                self.refuse(batch, x)?;
                k += 1;
            }
            let mut errs = vec![first];
            i += 1;
            while let Some(e) = errors.get(i)
                && e.index == first.index
            {
                errs.push(e);
                i += 1;
            }
            for e in &errs {
                *self.codes.entry(e.code.as_str()).or_default() += 1;
            }
            let pos = first.index as usize;
            if self.keep_examples {
                if self.examples.len() < EXAMPLES_MAX {
                    let file = self.names.get(batch.file).map_or("", String::as_str);
                    let line = batch.lines.get(pos).copied().unwrap_or(0);
                    let what = errs
                        .iter()
                        .map(|e| match &e.column {
                            Some(c) => format!("{} ({c}): {}", e.code, e.message),
                            None => format!("{}: {}", e.code, e.message),
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    self.examples.push(format!("{file}:{line}: {what}"));
                } else {
                    self.more_failures += 1;
                }
            }
            if let Some(r) = &mut self.rejects {
                r.write(batch, pos, &errs)?;
            }
        }
        for x in batch.refused.iter().skip(k) {
            self.refuse(batch, x)?;
        }
        if let Some(r) = &mut self.report {
            r.add(batch, report)?;
        }
        Ok(())
    }

    /// Counts, shows and writes out a record refused before the engine.
    fn refuse(&mut self, batch: &Batch, x: &Refused) -> anyhow::Result<()> {
        *self.codes.entry(x.invalid.code).or_default() += 1;
        if self.keep_examples {
            if self.examples.len() < EXAMPLES_MAX {
                let file = self.names.get(batch.file).map_or("", String::as_str);
                self.examples.push(format!(
                    "{file}:{}: {}: {}",
                    x.line, x.invalid.code, x.invalid.message
                ));
            } else {
                self.more_failures += 1;
            }
        }
        if let Some(r) = &mut self.rejects {
            r.write_refused(batch, x)?;
        }
        Ok(())
    }

    fn committed(&mut self, batch: &Batch, records: u64) {
        self.committed_batches += 1;
        self.committed_records += records;
        self.committed_to = Some((batch.file, batch.last_line()));
    }

    /// The status of an `--on-invalid skip` import so far.
    fn skip_status(&self, stopped: bool) -> Status {
        if stopped {
            if self.committed_batches > 0 {
                Status::Partial
            } else {
                Status::Rejected
            }
        } else if self.summary.failed == 0 {
            Status::Applied
        } else if self.committed_batches > 0 {
            Status::Partial
        } else {
            Status::Rejected
        }
    }

    fn reasons(&self) -> String {
        let mut v: Vec<(&&str, &u64)> = self.codes.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(c, n)| format!("{} {c}", count(**n)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn counts(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "{} inserted, {} updated, {} unchanged, {} failed",
            count(s.inserted),
            count(s.updated),
            count(s.unchanged),
            count(s.failed)
        );
        if s.failed > 0 {
            out.push_str(&format!(" ({})", self.reasons()));
        }
        if self.duplicates > 0 {
            out.push_str(&format!(
                ", {} duplicate (left out)",
                count(self.duplicates)
            ));
        }
        out
    }
}

/// Runs `import`.
pub fn run(db_path: &Path, workspace: &str, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    check_outputs(args)?;
    let batch_size = batch_size(args);
    // Declared before the database, so the database in it closes first.
    let scratch = if args.dry_run && !contactdb::is_postgres_url(db_path) && !db_path.exists() {
        Some(empty_scratch(db_path)?)
    } else {
        None
    };
    let db = open_database(db_path, scratch.as_ref(), args, batch_size)?;
    let ws = crate::commands::open_workspace(&db, workspace)?;
    let template = template(args);
    let schema = Schema::new(ws.columns()?, template.mode)
        .with_headers(Headers {
            map: args.map.clone(),
            ignore_unknown: args.ignore_unknown,
        })
        .map_err(UsageError)?;
    let schema = Arc::new(schema);
    let (inputs, rejects_format) = open_inputs(args, &schema, batch_size)?;
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let rejects = match (&args.rejects, rejects_format) {
        (Some(path), Some(format)) => Some(open_rejects(path, format, &inputs, &names)?),
        _ => None,
    };
    let report = open_report(args, &names)?;
    let ui = start_ui(args, &inputs);
    let keep_examples = args.rejects.is_none() && args.report.is_none();
    let mut tally = Tally::new(names.clone(), keep_examples, rejects, report);
    let mut producer = Producer {
        inputs,
        cur: 0,
        carry: VecDeque::new(),
        batch_size,
        next_index: 0,
        template,
        ui: &ui,
    };
    let abort = args.on_invalid == OnInvalidArg::Abort;
    let (status, fatal) = through_engine(
        &ws,
        &mut producer,
        &mut tally,
        args,
        &names,
        commit_records(args),
    );
    let elapsed = ui.elapsed();
    drop(producer);
    drop(ui);

    // Nothing was written by a rejected abort import: its planned outcomes never
    // happened.
    let written = !(abort && status == Status::Rejected);
    if !written {
        tally.forget_planned();
    }
    let rejects_note = finish_outputs(&mut tally, args, status, written, fatal.as_ref())?;
    print_failures(&tally);
    let ending = Ending {
        what: names.join(", "),
        abort,
        dry_run: args.dry_run,
        status,
        stopped: fatal.is_some(),
        elapsed,
        rejects_note,
    };
    eprint_line(&ending.line(&tally));
    if let Some(e) = fatal {
        return Err(e);
    }
    Ok(ExitCode::from(match status {
        Status::Applied => 0,
        Status::Partial => 3,
        Status::Rejected => 1,
    }))
}

/// Refuses two outputs on standard output, and standard input read twice.
fn check_outputs(args: &ImportArgs) -> anyhow::Result<()> {
    let is_dash = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.as_os_str() == "-");
    if is_dash(&args.rejects) && is_dash(&args.report) {
        return Err(
            UsageError("--rejects and --report cannot both be standard output".to_owned()).into(),
        );
    }
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err(UsageError("standard input (-) can be read only once".to_owned()).into());
    }
    Ok(())
}

/// The records after which whole batches commit under skip: as given; else one
/// batch per commit when standard input is read (records may arrive slowly, and
/// each batch should be durable as it is applied), else [`default_commit_records`].
fn commit_records(args: &ImportArgs) -> usize {
    let stdin = args.files.iter().any(|f| f.as_os_str() == "-");
    let n = match args.commit_records {
        Some(n) => n,
        None if stdin => 1,
        None => default_commit_records(args.cache_mib),
    };
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// [`crate::cli::COMMIT_RECORDS_PER_CACHE_MIB`] records per MiB of cache, at least
/// [`crate::cli::COMMIT_RECORDS_DEFAULT`], at most
/// [`crate::cli::COMMIT_RECORDS_MAX`].
fn default_commit_records(cache_mib: u64) -> u64 {
    cache_mib
        .saturating_mul(crate::cli::COMMIT_RECORDS_PER_CACHE_MIB)
        .clamp(
            crate::cli::COMMIT_RECORDS_DEFAULT,
            crate::cli::COMMIT_RECORDS_MAX,
        )
}

/// The records per batch.
fn batch_size(args: &ImportArgs) -> usize {
    // Under abort the input is one request. Batches keep that for merge (each is
    // planned over the ones before it), but which records are occurrences of one
    // contact under first/last/reject depends on the whole input: plan it at once.
    let whole_input =
        args.on_invalid == OnInvalidArg::Abort && args.on_duplicate != OnDuplicateArg::Merge;
    if whole_input {
        usize::MAX
    } else {
        usize::try_from(args.batch_size).unwrap_or(usize::MAX)
    }
}

/// Opens the database the import writes to, or plans against.
///
/// A dry run never opens the file for writing (an open for writing alone changes
/// its bytes): it reads the database from one read-only snapshot, or plans against
/// a fresh database in `scratch` when the file does not exist yet.
fn open_database(
    db_path: &Path,
    scratch: Option<&tempfile::TempDir>,
    args: &ImportArgs,
    batch_size: usize,
) -> anyhow::Result<Database> {
    debug_assert!(
        scratch.is_none() || args.dry_run,
        "a scratch database is a dry run's"
    );
    let cache_bytes = usize::try_from(args.cache_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
    let open_path = scratch.map_or_else(|| db_path.to_path_buf(), |d| d.path().join(DRY_RUN_FILE));
    let builder = Database::builder()
        .records_max(batch_size)
        .cache_size_bytes(cache_bytes);
    if args.dry_run && scratch.is_none() {
        builder.open_read_only(&open_path)
    } else {
        builder.open(&open_path)
    }
    .with_context(|| crate::util::shown(db_path))
}

/// Opens every input; returns them with the format of the rejects file (when
/// --rejects is given).
fn open_inputs(
    args: &ImportArgs,
    schema: &Arc<Schema>,
    batch_size: usize,
) -> anyhow::Result<(Vec<Input>, Option<Format>)> {
    let dialect = Dialect {
        delimiter: args.delimiter,
        quote: args.quote,
        encoding: args.encoding,
    };
    let given_format = args.format.map(|f| match f {
        crate::cli::FormatArg::Csv => Format::Csv,
        crate::cli::FormatArg::Jsonl => Format::Jsonl,
        crate::cli::FormatArg::Json => Format::Json,
    });
    let rejects_format = rejects_format(args, given_format);
    let keep_raw = rejects_format.map(|f| match f {
        Format::Csv => RawKind::Cells,
        Format::Jsonl | Format::Json => RawKind::Record,
    });
    let mut inputs = Vec::with_capacity(args.files.len());
    for f in &args.files {
        inputs.push(input::open(
            f,
            given_format,
            dialect,
            schema,
            keep_raw,
            batch_size,
        )?);
    }
    Ok((inputs, rejects_format))
}

/// The format of the rejects file: the extension of --rejects; else CSV when
/// every input is CSV by --format or extension; else JSON Lines.
fn rejects_format(args: &ImportArgs, given_format: Option<Format>) -> Option<Format> {
    args.rejects.as_deref().map(|p| {
        Format::from_extension(p).unwrap_or_else(|| {
            let all_csv = args
                .files
                .iter()
                .all(|f| given_format.or_else(|| Format::from_extension(f)) == Some(Format::Csv));
            if all_csv { Format::Csv } else { Format::Jsonl }
        })
    })
}

/// The JSON report's spools, when --report is given.
fn open_report(args: &ImportArgs, names: &[String]) -> anyhow::Result<Option<ReportOut>> {
    let Some(dest) = &args.report else {
        return Ok(None);
    };
    Ok(Some(ReportOut {
        dest: dest.clone(),
        names: names.to_vec(),
        results: Spool::new()?,
        errors: Spool::new()?,
        warnings: Spool::new()?,
    }))
}

/// The progress bar (when stderr is a terminal, without --quiet or
/// --no-progress), after the notes the inputs made when opened.
fn start_ui(args: &ImportArgs, inputs: &[Input]) -> Ui {
    let total_bytes: Option<u64> = inputs.iter().map(|i| i.size).sum();
    let progress =
        !args.no_progress && !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let ui = Ui::new(progress, args.quiet, total_bytes);
    for i in inputs {
        for n in &i.notes {
            ui.note(n);
        }
    }
    ui
}

/// What an abort or dry-run import shares between the batches it hands the engine
/// and the reports the engine hands back.
struct Feed<'p, 'u> {
    producer: &'p mut Producer<'u>,
    tally: &'p mut Tally,
    /// The batches handed to the engine whose report has not come back yet.
    pending: VecDeque<Batch>,
    /// Whether the refused records already stopped the transaction.
    refusal_sent: bool,
    abort: bool,
}

impl Feed<'_, '_> {
    /// The next request for the engine. A batch whose every record was refused
    /// before the engine is tallied here; under abort, refused records end the
    /// input with an error, so that nothing is committed.
    fn next_request(&mut self) -> Option<anyhow::Result<BulkRequest>> {
        loop {
            match self.producer.next_batch() {
                None => {
                    // Records refused before the engine fail an abort import
                    // like any invalid record: nothing is committed.
                    if self.abort && self.tally.refused > 0 && !self.refusal_sent {
                        self.refusal_sent = true;
                        return Some(Err(anyhow::Error::new(RefusedRecords)));
                    }
                    return None;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok((req, batch))) => {
                    if req.records.is_empty() {
                        if let Err(e) = self.tally.add(&batch, None) {
                            return Some(Err(e));
                        }
                        self.producer.ui.done(self.tally.summary.total);
                        continue;
                    }
                    self.pending.push_back(batch);
                    return Some(Ok(req));
                }
            }
        }
    }

    /// Tallies the report of the oldest pending batch.
    fn on_report(&mut self, report: &Report) -> anyhow::Result<()> {
        let batch = self
            .pending
            .pop_front()
            .ok_or_else(|| anyhow!("internal: a report without its batch"))?;
        self.tally.add(&batch, Some(report))?;
        if report.status != Status::Rejected {
            self.tally.committed(&batch, report.summary.total);
        }
        self.producer.ui.done(self.tally.summary.total);
        Ok(())
    }
}

/// Drops the parts of a report that only a report file reads (the warnings,
/// and the results but those of duplicates, which the tally counts), so that
/// the reports waiting for their transaction's commit take little memory.
fn keep_for_tally(r: &mut Report) {
    r.results.retain(|x| x.outcome == Outcome::Duplicate);
    r.warnings = Vec::new();
}

/// Hands the batches to the engine and tallies their reports. Under abort every
/// batch is in one transaction, committed when no record failed; a dry run plans
/// them the same way and writes nothing; under skip each batch is one request,
/// committed in transactions of whole batches of at least `commit_records`
/// records. Returns the status and the error that stopped the import, if any.
fn through_engine(
    ws: &Workspace,
    producer: &mut Producer<'_>,
    tally: &mut Tally,
    args: &ImportArgs,
    names: &[String],
    commit_records: usize,
) -> (Status, Option<anyhow::Error>) {
    let abort = args.on_invalid == OnInvalidArg::Abort;
    let feed = RefCell::new(Feed {
        producer,
        tally,
        pending: VecDeque::new(),
        refusal_sent: false,
        abort,
    });
    let batches = std::iter::from_fn(|| feed.borrow_mut().next_request());
    let on_report = |report: &Report| feed.borrow_mut().on_report(report);
    let result = if args.dry_run {
        ws.bulk_dry_run(batches, on_report)
    } else if abort {
        ws.bulk_atomic(batches, on_report)
    } else {
        // Skip's status comes from the tally below.
        let full = args.report.is_some();
        let trim = |r: &mut Report| {
            if !full {
                keep_for_tally(r);
            }
        };
        ws.bulk_each_trimmed(batches, commit_records, trim, on_report)
            .map(|_| Status::Applied)
    };
    let Feed { tally, pending, .. } = feed.into_inner();
    match result {
        Ok(status) if abort => (status, None),
        Ok(_) => (tally.skip_status(false), None),
        Err(e) if e.is::<RefusedRecords>() => (Status::Rejected, None),
        Err(e) => {
            // As a real skip import reports a batch the engine refused.
            let fatal = match (abort, pending.front()) {
                (false, Some(batch)) => batch_refused(names, batch, e),
                _ => e,
            };
            if abort {
                (Status::Rejected, Some(fatal))
            } else {
                (tally.skip_status(true), Some(fatal))
            }
        }
    }
}

/// Closes the rejects file and writes the report; returns what the summary line
/// says of the rejects file.
fn finish_outputs(
    tally: &mut Tally,
    args: &ImportArgs,
    status: Status,
    written: bool,
    fatal: Option<&anyhow::Error>,
) -> anyhow::Result<String> {
    let mut rejects_note = String::new();
    if let Some(r) = tally.rejects.take() {
        if r.written > 0
            && let Some(p) = &args.rejects
        {
            rejects_note = format!(
                "; {} failed records written to {}",
                count(r.written),
                p.display()
            );
        }
        r.finish().context("cannot write the rejects file")?;
    }
    if let Some(r) = tally.report.take() {
        r.finish(
            status,
            &tally.summary,
            written,
            fatal.map(crate::util::one_line),
        )
        .context("cannot write the report")?;
    }
    Ok(rejects_note)
}

/// Shows the failed records kept as examples, and how many more there are.
fn print_failures(tally: &Tally) {
    for e in &tally.examples {
        eprint_line(&format!("failed: {e}"));
    }
    if tally.more_failures > 0 {
        eprint_line(&format!(
            "... and {} more failed records (--rejects FILE writes every one, ready to fix and import again)",
            count(tally.more_failures)
        ));
    }
}

/// How an import ended, for its summary line.
struct Ending {
    /// The inputs' names.
    what: String,
    abort: bool,
    dry_run: bool,
    status: Status,
    /// An error stopped the import.
    stopped: bool,
    /// Seconds the import ran.
    elapsed: f64,
    /// What is said of the rejects file ("" or "; N failed records written to F").
    rejects_note: String,
}

impl Ending {
    /// The summary line.
    fn line(&self, tally: &Tally) -> String {
        let Ending {
            what,
            abort,
            status,
            rejects_note,
            ..
        } = self;
        let summary = &tally.summary;
        let timing = format!(
            "{}, {} records/s",
            secs(self.elapsed),
            rate(summary.total, self.elapsed)
        );
        let line = match (self.stopped, self.abort) {
            (true, true) => format!("import of {what} stopped: nothing was written"),
            (true, false) if tally.committed_batches == 0 => {
                format!("import of {what} stopped: nothing was written")
            }
            (true, false) => format!(
                "import of {what} stopped: {}{} ({timing}){rejects_note}",
                tally.counts(),
                committed_upto(tally)
            ),
            (false, true) if *status == Status::Rejected => format!(
                "import of {what}: nothing was written: {} of {} records failed ({}) with --on-invalid abort; fix them and import the whole input again{rejects_note} ({timing})",
                count(summary.failed),
                count(summary.total),
                tally.reasons()
            ),
            (false, _) => format!(
                "imported {} records from {what}: {} in {timing}{rejects_note}",
                count(summary.total),
                tally.counts()
            ),
        };
        match (self.dry_run, self.stopped) {
            (false, _) => line,
            (true, false) if !(*abort && *status == Status::Rejected) => format!(
                "dry run: checked {} records from {what}: {} in {timing}{rejects_note}; nothing was written",
                count(summary.total),
                tally.counts()
            ),
            (true, _) => format!("dry run (nothing was written): {line}"),
        }
    }
}

/// What a skip import stopped by an error committed before it.
fn committed_upto(tally: &Tally) -> String {
    match tally.committed_to {
        Some((f, l)) => format!(
            "; {} records in {} earlier batch(es) were committed, through {}:{l}; nothing after that was written",
            count(tally.committed_records),
            count(tally.committed_batches),
            tally.names.get(f).map_or("", String::as_str)
        ),
        None => "; nothing was written".to_owned(),
    }
}

/// The name of the empty database a dry run without a database plans against.
const DRY_RUN_FILE: &str = "dry-run.redb";

/// A temporary directory for the empty database a dry run plans against when there
/// is no database yet: next to where the file would be when possible, else in the
/// system's temporary directory.
fn empty_scratch(db_path: &Path) -> anyhow::Result<tempfile::TempDir> {
    let beside = db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    tempfile::Builder::new()
        .prefix(".contactdb-dry-run-")
        .tempdir_in(&beside)
        .or_else(|_| tempfile::tempdir())
        .context("cannot create a temporary directory for the dry run")
}

/// The marker error that stops an abort import's transaction because records were
/// refused before the engine (they are reported like any failed record).
#[derive(Debug)]
struct RefusedRecords;

impl std::fmt::Display for RefusedRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("records failed before validation")
    }
}

impl std::error::Error for RefusedRecords {}

/// The error of a batch the engine refused as a whole (a request-level error), or
/// `e` itself.
fn batch_refused(names: &[String], batch: &Batch, e: anyhow::Error) -> anyhow::Error {
    let e = match e.downcast::<contactdb::BulkError>() {
        Ok(b) => anyhow::Error::from(contactdb::Error::from(b)),
        Err(e) => e,
    };
    match e.downcast::<contactdb::Error>() {
        Ok(contactdb::Error::Request(r)) => {
            let file = names.get(batch.file).map_or("", String::as_str);
            let first = batch.lines.first().copied().unwrap_or(0);
            let last = batch.last_line();
            anyhow!("{file}: the batch of lines {first}-{last} was rejected as a whole: {r}")
        }
        Ok(other) => other.into(),
        Err(e) => e,
    }
}

/// Creates the rejects file. A CSV rejects file needs every input to be CSV with the
/// same header; its header is the annotation columns then the input's header.
fn open_rejects(
    path: &Path,
    format: Format,
    inputs: &[Input],
    names: &[String],
) -> anyhow::Result<Rejects> {
    let all_csv_same = inputs.iter().all(|i| i.format == Format::Csv)
        && inputs
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.header == b.header));
    if format == Format::Csv && !all_csv_same {
        return Err(UsageError(
            "a CSV rejects file needs CSV inputs that all have the same header; use a .jsonl rejects file".to_owned(),
        )
        .into());
    }
    let multi = names.len() > 1;
    let w = create_output(Some(path))?;
    let out = match format {
        Format::Csv => {
            // Flexible: a row with the wrong number of fields is written as read.
            let mut w = csv::WriterBuilder::new().flexible(true).from_writer(w);
            let mut header: Vec<String> = Vec::new();
            if multi {
                header.push("_file".to_owned());
            }
            header.extend(["_line", "_code", "_column", "_message"].map(str::to_owned));
            if let Some(h) = inputs.first().and_then(|i| i.header.as_ref()) {
                header.extend(h.iter().map(str::to_owned));
            }
            w.write_record(&header)
                .with_context(|| format!("cannot write {}", path.display()))?;
            RejectsOut::Csv(Box::new(w))
        }
        Format::Jsonl => RejectsOut::Jsonl(w),
        Format::Json => {
            let mut w = w;
            write!(w, "[")?;
            RejectsOut::Json(w, true)
        }
    };
    Ok(Rejects {
        out,
        multi,
        names: names.to_vec(),
        written: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::default_commit_records;
    use crate::cli::{COMMIT_RECORDS_DEFAULT, COMMIT_RECORDS_MAX};

    #[test]
    fn default_commit_records_grow_with_the_cache_past_the_floor() {
        assert_eq!(default_commit_records(1), COMMIT_RECORDS_DEFAULT);
        assert_eq!(default_commit_records(32), COMMIT_RECORDS_DEFAULT);
        assert_eq!(default_commit_records(50), COMMIT_RECORDS_DEFAULT);
        assert_eq!(default_commit_records(64), 256_000);
        assert_eq!(default_commit_records(256), 1_024_000);
        assert_eq!(default_commit_records(1024), 4_096_000);
        assert_eq!(default_commit_records(1_048_576), COMMIT_RECORDS_MAX);
        assert_eq!(default_commit_records(u64::MAX), COMMIT_RECORDS_MAX);
    }
}
