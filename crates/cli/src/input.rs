//! Import inputs: CSV with a header row, JSON Lines and JSON arrays, each parsed in
//! its own reader thread and handed over in small chunks through a bounded channel,
//! so memory stays bounded by the batch size whatever the file size.
//!
//! Every column name is checked against the workspace's catalog here, before any
//! record reaches the engine: a CSV header is checked when the file is opened (so a
//! bad header stops the import before anything is written), a JSON record when it is
//! read.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::Context as _;
use contactdb::{ColumnSpec, ColumnType, Mode};
use contactdb_policy::column::{Catalog, CustomColumn, FieldId, Kind, ResolveError};
use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Records per chunk sent from a reader thread.
const CHUNK: usize = 512;

/// Default of `--max-record-bytes`: 1 MiB.
pub const RECORD_BYTES_MAX_DEFAULT: u64 = 1 << 20;

/// The per-record byte limit of every input this process reads (a CSV record, a
/// JSON Lines line, one value of a JSON array). Set once from the command line.
static RECORD_BYTES_MAX: AtomicU64 = AtomicU64::new(RECORD_BYTES_MAX_DEFAULT);

/// Sets the per-record byte limit of the inputs this process opens.
pub fn set_record_bytes_max(n: u64) {
    RECORD_BYTES_MAX.store(n.max(1), Ordering::Relaxed);
}

/// The per-record byte limit (see [`set_record_bytes_max`]).
pub fn record_bytes_max() -> u64 {
    RECORD_BYTES_MAX.load(Ordering::Relaxed)
}

/// The error text of a record over the limit.
pub fn record_too_large(limit: u64) -> String {
    format!(
        "a record is larger than the limit of {} bytes (--max-record-bytes sets it)",
        crate::util::count(limit)
    )
}

/// Bytes handed to a parser through a [`Bounded`] reader, and where the current
/// record started; shared with the parser's loop, which moves `start` on after
/// every record.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    consumed: Arc<AtomicU64>,
    start: Arc<AtomicU64>,
    tripped: Arc<std::sync::atomic::AtomicBool>,
}

impl Marks {
    /// A new record starts at `offset` (bytes handed out so far, or a parser's own
    /// position when it buffers).
    pub fn record_starts_at(&self, offset: u64) {
        self.start.store(offset, Ordering::Relaxed);
    }

    /// A new record starts at the next byte handed out.
    pub fn record_starts_here(&self) {
        self.record_starts_at(self.consumed.load(Ordering::Relaxed));
    }

    /// Whether the reader refused to hand out more bytes of one record.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }
}

/// A reader that refuses (with an I/O error) to hand out more than `limit + slack`
/// bytes past the current record's start: a hostile input (no line break, an
/// endless quoted field or string) fails after a bounded read instead of growing a
/// parser's buffer without end. `slack` covers a parser's own read-ahead buffer.
pub struct Bounded<R> {
    inner: R,
    marks: Marks,
    limit: u64,
    slack: u64,
}

impl<R> Bounded<R> {
    /// Wraps `inner`; `marks` is shared with the parser's loop.
    pub fn new(inner: R, marks: Marks, limit: u64, slack: u64) -> Self {
        Bounded {
            inner,
            marks,
            limit,
            slack,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let consumed = self.marks.consumed.load(Ordering::Relaxed);
        let start = self.marks.start.load(Ordering::Relaxed);
        let end = start
            .saturating_add(self.limit)
            .saturating_add(self.slack)
            .saturating_add(1);
        let allowed = end.saturating_sub(consumed);
        if allowed == 0 {
            self.marks.tripped.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other(record_too_large(self.limit)));
        }
        let take = usize::try_from(allowed)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(buf.get_mut(..take).unwrap_or_default())?;
        self.marks.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The csv reader's own buffer, which a [`Bounded`] reader under it allows for.
const CSV_BUFFER: usize = 64 * 1024;

/// Columns a rejects file adds to each record; `import` drops them.
pub const ANNOTATIONS: [&str; 5] = ["_file", "_line", "_code", "_column", "_message"];

/// An input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array of objects.
    Json,
}

impl Format {
    /// The format a file name's extension names, if any.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Where in an input something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// The input as a whole.
    None,
    /// A line (CSV record start, JSON Lines line).
    Line(u64),
    /// A line and column of the text.
    LineCol(u64, u64),
    /// An element of a JSON array, from 1.
    Record(u64),
}

/// A problem with the input itself (not with a record's values): malformed CSV or
/// JSON, invalid UTF-8, an unknown column. It stops the import.
#[derive(Debug, Clone)]
pub struct InputError {
    /// The input's display name.
    pub file: String,
    /// Where.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.loc {
            Loc::None => write!(f, "{}: {}", self.file, self.message),
            Loc::Line(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            Loc::LineCol(l, c) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message),
            Loc::Record(n) => write!(f, "{}: record {}: {}", self.file, n, self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// A record as read, kept for the rejects file.
#[derive(Debug, Clone)]
pub enum Raw {
    /// The CSV cells, as written.
    Csv(csv::StringRecord),
    /// The JSON object (without dropped system and annotation fields).
    Json(Map<String, Value>),
}

/// What a reader keeps of each record for the rejects file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// The CSV cells as written (a CSV rejects file).
    Cells,
    /// The record as sent to the engine (a JSON rejects file).
    Record,
}

/// One record read from an input.
#[derive(Debug)]
pub struct Rec {
    /// CSV: line of the record (header = 1); JSON Lines: line; JSON: element index + 1.
    pub line: u64,
    /// The record as sent to the engine.
    pub record: Map<String, Value>,
    /// The record as read, when a rejects file is written.
    pub raw: Option<Raw>,
}

/// What a reader thread sends.
#[derive(Debug)]
pub enum Msg {
    /// Some records, in input order.
    Recs(Vec<Rec>),
    /// A remark for the user (stderr).
    Note(String),
    /// The input is malformed here; nothing more comes.
    Error(InputError),
    /// The input ended after this many records.
    End(u64),
}

/// How a column name of an input is handled.
#[derive(Debug, Clone)]
enum Class {
    /// Sent to the engine; `json`: a CSV cell is parsed as JSON when it parses.
    Keep { id: FieldId, json: bool },
    /// A read-only system field (`aliases`, `version`, ...): dropped.
    System,
    /// A rejects-file annotation (`_line`, ...): dropped.
    Annotation,
    /// Refused, with the reason.
    Bad(String),
}

/// The workspace's columns, as the inputs are checked against them.
#[derive(Debug)]
pub struct Schema {
    catalog: Catalog,
    specs: Vec<ColumnSpec>,
    mode: Mode,
}

impl Schema {
    /// The schema of a workspace with these custom columns, for a request of `mode`.
    pub fn new(custom: Vec<ColumnSpec>, mode: Mode) -> Schema {
        let defs: Vec<CustomColumn> = custom
            .iter()
            .enumerate()
            .map(|(i, spec)| CustomColumn {
                id: FieldId(
                    FieldId::CUSTOM_FIRST.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)),
                ),
                spec: spec.clone(),
            })
            .collect();
        Schema {
            catalog: Catalog::new(&defs),
            specs: custom,
            mode,
        }
    }

    fn classify(&self, raw: &str) -> Class {
        let trimmed = raw.trim();
        if ANNOTATIONS.contains(&trimmed) {
            return Class::Annotation;
        }
        match self.catalog.resolve(raw) {
            Ok(col) => {
                if !col.import_enabled {
                    let ty = self
                        .specs
                        .iter()
                        .find(|s| s.name == col.name)
                        .map_or_else(|| "TYPE".to_owned(), |s| type_args(s.ty));
                    return Class::Bad(format!(
                        "column {raw:?} is not import-enabled (enable it with: contactdb columns add {} {ty} --import-enabled)",
                        col.name
                    ));
                }
                if col.id == FieldId::NEW_CONTACT_KEY && self.mode != Mode::Update {
                    return Class::Bad(format!(
                        "column {raw:?} (new_contact_key) renames contacts and is only allowed with --mode update"
                    ));
                }
                Class::Keep {
                    id: col.id,
                    json: col.kind == Kind::Json,
                }
            }
            Err(ResolveError::ReadOnly) => Class::System,
            Err(ResolveError::Unknown) => {
                let hint = match contactdb_policy::column::canonical_name(raw) {
                    Some(n)
                        if ColumnSpec::new(n.clone(), ColumnType::Json)
                            .validate()
                            .is_ok() =>
                    {
                        format!(
                            " (custom columns must be declared first: contactdb columns add {n} --type TYPE --import-enabled)"
                        )
                    }
                    _ => String::new(),
                };
                Class::Bad(format!("unknown column {raw:?}{hint}"))
            }
        }
    }

    fn column_name(&self, id: FieldId) -> String {
        self.catalog
            .by_id(id)
            .map_or_else(|| format!("#{}", id.0), |c| c.name.clone())
    }
}

/// `--type ... [--max-len N]` for a hint.
pub fn type_args(ty: ColumnType) -> String {
    match ty {
        ColumnType::String { max_len } => format!("--type string --max-len {max_len}"),
        other => format!("--type {other}"),
    }
}

/// Counts bytes read through it, for the progress bar.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type Start = Box<dyn FnOnce(SyncSender<Msg>) + Send>;

/// One opened input. Its reader thread starts on the first [`Input::recv`].
pub struct Input {
    /// Display name (`<stdin>` for `-`).
    pub name: String,
    /// Its format.
    pub format: Format,
    /// The CSV header row, as written.
    pub header: Option<csv::StringRecord>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Bytes read so far.
    pub bytes: Arc<AtomicU64>,
    /// Remarks found while opening (dropped columns).
    pub notes: Vec<String>,
    start: Option<Start>,
    capacity: usize,
    rx: Option<Receiver<Msg>>,
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// The next message of the reader thread (starting it if needed).
    pub fn recv(&mut self) -> Msg {
        if let Some(start) = self.start.take() {
            let (tx, rx) = sync_channel(self.capacity);
            let spawned = std::thread::Builder::new()
                .name("contactdb-reader".to_owned())
                .spawn(move || start(tx));
            if let Err(e) = spawned {
                return Msg::Error(self.error(Loc::None, format!("cannot start a reader: {e}")));
            }
            self.rx = Some(rx);
        }
        match self.rx.as_ref().map(Receiver::recv) {
            Some(Ok(m)) => m,
            _ => Msg::Error(self.error(Loc::None, "the reader stopped unexpectedly".to_owned())),
        }
    }

    fn error(&self, loc: Loc, message: String) -> InputError {
        InputError {
            file: self.name.clone(),
            loc,
            message,
        }
    }
}

/// Opens an input (`-` = standard input), detects its format, and for CSV reads and
/// checks the header row. Fails on anything that makes the input unusable.
pub fn open(
    path: &Path,
    format: Option<Format>,
    schema: &Arc<Schema>,
    keep_raw: Option<RawKind>,
    batch_size: usize,
) -> anyhow::Result<Input> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let (reader, size): (Box<dyn Read + Send>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read {name}"))?;
        if meta.is_dir() {
            anyhow::bail!("{name} is a directory, not a file");
        }
        (Box::new(file), Some(meta.len()))
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let mut reader = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: reader,
            count: Arc::clone(&bytes),
        },
    );
    let format = match format.or_else(|| {
        if stdin {
            None
        } else {
            Format::from_extension(path)
        }
    }) {
        Some(f) => f,
        None => sniff(&mut reader).with_context(|| format!("cannot read {name}"))?,
    };
    let mut input = Input {
        name: name.clone(),
        format,
        header: None,
        size,
        bytes,
        notes: Vec::new(),
        start: None,
        capacity: (batch_size / CHUNK).clamp(2, 64),
        rx: None,
    };
    let schema = Arc::clone(schema);
    let limit = record_bytes_max();
    match format {
        Format::Csv => {
            let marks = Marks::default();
            let bounded = Bounded::new(reader, marks.clone(), limit, CSV_BUFFER as u64);
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .buffer_capacity(CSV_BUFFER)
                .from_reader(Box::new(bounded) as Box<dyn Read + Send>);
            let header = match csv_header(&mut rdr, &name) {
                Err(_) if marks.tripped() => {
                    return Err(InputError {
                        file: name,
                        loc: Loc::Line(1),
                        message: record_too_large(limit),
                    }
                    .into());
                }
                other => other?,
            };
            marks.record_starts_at(rdr.position().byte());
            let plan = header_plan(&header, &schema, &name, &mut input.notes)?;
            input.header = Some(header.clone());
            input.start = Some(Box::new(move |tx| {
                read_csv(
                    rdr,
                    &marks,
                    header,
                    plan,
                    keep_raw,
                    Sink::new(tx, name, schema, keep_raw),
                );
            }));
        }
        Format::Jsonl => {
            input.start = Some(Box::new(move |tx| {
                read_jsonl(reader, limit, Sink::new(tx, name, schema, keep_raw));
            }));
        }
        Format::Json => {
            input.start = Some(Box::new(move |tx| {
                let marks = Marks::default();
                let bounded = Bounded::new(reader, marks.clone(), limit, 0);
                read_json(bounded, &marks, Sink::new(tx, name, schema, keep_raw));
            }));
        }
    }
    Ok(input)
}

/// Guesses the format from the first non-blank byte: `[` JSON, `{` JSON Lines,
/// anything else CSV.
fn sniff(reader: &mut impl BufRead) -> std::io::Result<Format> {
    let buf = reader.fill_buf()?;
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    Ok(
        match buf.iter().copied().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => Format::Json,
            Some(b'{') => Format::Jsonl,
            _ => Format::Csv,
        },
    )
}

fn csv_error(name: &str, e: &csv::Error, header: Option<&csv::StringRecord>) -> InputError {
    let (loc, message) = match e.kind() {
        csv::ErrorKind::Utf8 { pos, err } => {
            let col = header.and_then(|h| h.get(err.field())).map_or_else(
                || format!("field {}", err.field() + 1),
                |c| format!("column {c:?}"),
            );
            (
                pos.as_ref().map_or(Loc::None, |p| Loc::Line(p.line())),
                format!("invalid UTF-8 in {col} (the file must be UTF-8 encoded)"),
            )
        }
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => (
            pos.as_ref().map_or(Loc::None, |p| Loc::Line(p.line())),
            format!(
                "malformed CSV: the record has {len} field(s) but the header has {expected_len} (an unbalanced quote or a stray delimiter?)"
            ),
        ),
        csv::ErrorKind::Io(io) => (Loc::None, format!("read error: {io}")),
        _ => (Loc::None, format!("malformed CSV: {e}")),
    };
    InputError {
        file: name.to_owned(),
        loc,
        message,
    }
}

fn csv_header<R: Read>(rdr: &mut csv::Reader<R>, name: &str) -> anyhow::Result<csv::StringRecord> {
    let header = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let mut err = csv_error(name, &e, None);
            if matches!(err.loc, Loc::None) && matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                err.loc = Loc::Line(1);
            }
            return Err(err.into());
        }
    };
    if header.is_empty()
        || (header.len() == 1 && header.get(0).is_some_and(|h| h.trim().is_empty()))
    {
        return Err(InputError {
            file: name.to_owned(),
            loc: Loc::None,
            message: "empty file: a CSV input needs a header row naming its columns".to_owned(),
        }
        .into());
    }
    Ok(header)
}

/// Where each CSV column goes: `Some((name, json))` or dropped.
type Plan = Vec<Option<(String, bool)>>;

fn header_plan(
    header: &csv::StringRecord,
    schema: &Schema,
    name: &str,
    notes: &mut Vec<String>,
) -> anyhow::Result<Plan> {
    let err = |message: String| -> anyhow::Error {
        InputError {
            file: name.to_owned(),
            loc: Loc::Line(1),
            message,
        }
        .into()
    };
    let mut plan = Vec::with_capacity(header.len());
    let mut seen: Vec<(FieldId, &str)> = Vec::new();
    let mut system = Vec::new();
    let mut annotations = Vec::new();
    let mut first_bad: Option<String> = None;
    for (i, h) in header.iter().enumerate() {
        if h.trim().is_empty() {
            return Err(err(format!(
                "column {} of the header row has no name",
                i + 1
            )));
        }
        match schema.classify(h) {
            Class::Keep { id, json } => {
                if let Some((_, other)) = seen.iter().find(|(s, _)| *s == id) {
                    return Err(err(format!(
                        "the header names column {:?} twice ({other:?} and {h:?})",
                        schema.column_name(id)
                    )));
                }
                seen.push((id, h));
                plan.push(Some((h.to_owned(), json)));
            }
            Class::System => {
                system.push(h.to_owned());
                plan.push(None);
            }
            Class::Annotation => {
                annotations.push(h.to_owned());
                plan.push(None);
            }
            Class::Bad(m) => {
                if first_bad.is_none() {
                    first_bad = Some(m);
                }
                plan.push(None);
            }
        }
    }
    let has_key = seen.iter().any(|(id, _)| *id == FieldId::CONTACT_KEY);
    if let Some(m) = first_bad {
        let hint = if has_key {
            ""
        } else {
            "; is the header row missing?"
        };
        return Err(err(format!("{m}{hint}")));
    }
    if !has_key {
        return Err(err(
            "the header row has no contact_key (or identifier) column; is the header row missing?"
                .to_owned(),
        ));
    }
    if !system.is_empty() {
        notes.push(system_note(name, &system));
    }
    if !annotations.is_empty() {
        notes.push(annotation_note(name, &annotations));
    }
    Ok(plan)
}

fn system_note(name: &str, cols: &[String]) -> String {
    format!(
        "{name}: ignoring the system column(s) {}: the engine maintains them (aliases and versions are not restored by import)",
        cols.join(", ")
    )
}

fn annotation_note(name: &str, cols: &[String]) -> String {
    format!(
        "{name}: ignoring the rejects-file column(s) {}",
        cols.join(", ")
    )
}

/// The sending end of a reader thread: batches records into chunks, checks JSON
/// records' columns, reports the first error.
struct Sink {
    tx: SyncSender<Msg>,
    chunk: Vec<Rec>,
    name: String,
    schema: Arc<Schema>,
    keep_raw: Option<RawKind>,
    cache: HashMap<String, Class>,
    noted_system: bool,
    noted_annotations: bool,
    count: u64,
    /// The receiver is gone or an error was sent: stop reading.
    stopped: bool,
}

impl Sink {
    fn new(
        tx: SyncSender<Msg>,
        name: String,
        schema: Arc<Schema>,
        keep_raw: Option<RawKind>,
    ) -> Sink {
        Sink {
            tx,
            chunk: Vec::with_capacity(CHUNK),
            name,
            schema,
            keep_raw,
            cache: HashMap::new(),
            noted_system: false,
            noted_annotations: false,
            count: 0,
            stopped: false,
        }
    }

    fn send(&mut self, m: Msg) {
        if self.tx.send(m).is_err() {
            self.stopped = true;
        }
    }

    fn flush(&mut self) {
        if !self.chunk.is_empty() {
            let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
            self.send(Msg::Recs(chunk));
        }
    }

    /// Queues a record. Returns false when reading should stop.
    fn push(&mut self, rec: Rec) -> bool {
        self.count += 1;
        self.chunk.push(rec);
        if self.chunk.len() >= CHUNK {
            self.flush();
        }
        !self.stopped
    }

    fn fail(&mut self, loc: Loc, message: String) {
        self.flush();
        let e = InputError {
            file: self.name.clone(),
            loc,
            message,
        };
        self.send(Msg::Error(e));
        self.stopped = true;
    }

    fn end(&mut self) {
        self.flush();
        if !self.stopped {
            let n = self.count;
            self.send(Msg::End(n));
        }
    }

    /// Checks a JSON record's columns, drops system and annotation fields, and queues
    /// it. Returns false when reading should stop.
    fn json_record(&mut self, value: Value, line: u64, loc: Loc) -> bool {
        let Value::Object(mut map) = value else {
            let kind = json_kind(&value);
            self.fail(loc, format!("a record must be a JSON object, found {kind}"));
            return false;
        };
        let mut seen: Vec<(FieldId, &str)> = Vec::with_capacity(map.len());
        let mut drop: Vec<(String, bool)> = Vec::new();
        let mut problem: Option<String> = None;
        for k in map.keys() {
            if !self.cache.contains_key(k) {
                let c = self.schema.classify(k);
                self.cache.insert(k.clone(), c);
            }
            match self.cache.get(k) {
                Some(Class::Keep { id, .. }) => {
                    if let Some((_, other)) = seen.iter().find(|(s, _)| s == id) {
                        problem = Some(format!(
                            "the record gives column {:?} twice ({other:?} and {k:?})",
                            self.schema.column_name(*id)
                        ));
                        break;
                    }
                    seen.push((*id, k));
                }
                Some(Class::System) => drop.push((k.clone(), true)),
                Some(Class::Annotation) => drop.push((k.clone(), false)),
                Some(Class::Bad(m)) => {
                    problem = Some(m.clone());
                    break;
                }
                None => {}
            }
        }
        if let Some(m) = problem {
            self.fail(loc, m);
            return false;
        }
        let mut system = Vec::new();
        let mut annotations = Vec::new();
        for (k, is_system) in drop {
            map.remove(&k);
            if is_system {
                system.push(k);
            } else {
                annotations.push(k);
            }
        }
        if !system.is_empty() && !self.noted_system {
            self.noted_system = true;
            let note = system_note(&self.name, &system);
            self.send(Msg::Note(note));
        }
        if !annotations.is_empty() && !self.noted_annotations {
            self.noted_annotations = true;
            let note = annotation_note(&self.name, &annotations);
            self.send(Msg::Note(note));
        }
        let raw = self.keep_raw.map(|_| Raw::Json(map.clone()));
        self.push(Rec {
            line,
            record: map,
            raw,
        })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_csv(
    mut rdr: csv::Reader<Box<dyn Read + Send>>,
    marks: &Marks,
    header: csv::StringRecord,
    plan: Plan,
    keep_raw: Option<RawKind>,
    mut sink: Sink,
) {
    // One record of look-ahead: an unclosed quote swallows the rest of the input into
    // one field, so the last record is checked for a line break inside a field.
    let mut pending: Option<csv::StringRecord> = None;
    loop {
        let mut rec = csv::StringRecord::new();
        match rdr.read_record(&mut rec) {
            Ok(true) => {
                // Exact here; the bounded reader under the csv reader stops an
                // endless record within the csv reader's buffer of the limit.
                let end = rdr.position().byte();
                let start = rec.position().map_or(end, csv::Position::byte);
                if end.saturating_sub(start) > record_bytes_max() {
                    if let Some(p) = pending.take()
                        && !csv_push(p, &plan, keep_raw, &mut sink)
                    {
                        return;
                    }
                    let line = rec.position().map_or(0, csv::Position::line);
                    sink.fail(Loc::Line(line), record_too_large(record_bytes_max()));
                    return;
                }
                marks.record_starts_at(end);
            }
            Ok(false) => break,
            Err(e) => {
                if let Some(p) = pending.take()
                    && !csv_push(p, &plan, keep_raw, &mut sink)
                {
                    return;
                }
                if marks.tripped() {
                    let line = rdr.position().line();
                    sink.fail(Loc::Line(line), record_too_large(record_bytes_max()));
                    return;
                }
                let err = csv_error(&sink.name, &e, Some(&header));
                sink.fail(err.loc, err.message);
                return;
            }
        }
        if let Some(p) = pending.replace(rec)
            && !csv_push(p, &plan, keep_raw, &mut sink)
        {
            return;
        }
    }
    if let Some(last) = pending {
        if last.iter().any(|f| f.contains(['\n', '\r'])) {
            let line = last.position().map_or(0, csv::Position::line);
            sink.fail(
                Loc::Line(line),
                "malformed CSV: a quoted field that starts on this line runs to the end of the file (an unbalanced quote?)".to_owned(),
            );
            return;
        }
        if !csv_push(last, &plan, keep_raw, &mut sink) {
            return;
        }
    }
    sink.end();
}

/// Converts a CSV record and queues it. Returns false when reading should stop.
fn csv_push(
    rec: csv::StringRecord,
    plan: &Plan,
    keep_raw: Option<RawKind>,
    sink: &mut Sink,
) -> bool {
    let line = rec.position().map_or(0, csv::Position::line);
    let mut record = Map::new();
    for (cell, slot) in rec.iter().zip(plan) {
        if let Some((name, json)) = slot {
            let value = if *json {
                serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_owned()))
            } else {
                Value::String(cell.to_owned())
            };
            record.insert(name.clone(), value);
        }
    }
    let raw = match keep_raw {
        None => None,
        Some(RawKind::Cells) => Some(Raw::Csv(rec)),
        Some(RawKind::Record) => Some(Raw::Json(record.clone())),
    };
    sink.push(Rec { line, record, raw })
}

fn read_jsonl(mut reader: impl BufRead, limit: u64, mut sink: Sink) {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        // At most `limit` bytes plus the line break: a longer line is refused
        // without reading the rest of it.
        match (&mut reader)
            .take(limit.saturating_add(1))
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                sink.fail(Loc::None, format!("read error: {e}"));
                return;
            }
        }
        line += 1;
        if buf.len() as u64 > limit && buf.last() != Some(&b'\n') {
            sink.fail(Loc::Line(line), record_too_large(limit));
            return;
        }
        let bytes = if line == 1 {
            buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf)
        } else {
            &buf
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                sink.fail(
                    Loc::LineCol(line, e.valid_up_to() as u64 + 1),
                    "invalid UTF-8 (the file must be UTF-8 encoded)".to_owned(),
                );
                return;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                sink.fail(
                    Loc::LineCol(line, e.column() as u64),
                    format!("invalid JSON: {}", strip_position(&e)),
                );
                return;
            }
        };
        if !sink.json_record(value, line, Loc::Line(line)) {
            return;
        }
    }
    sink.end();
}

/// serde_json's message without its " at line L column C" suffix.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s.get(..i).unwrap_or(&s).to_owned(),
        None => s,
    }
}

/// Marker of a visitor stopped by the sink (which already reported why).
const STOPPED: &str = "\u{0}stopped";

struct ArrayVisitor<'a> {
    sink: &'a mut Sink,
    marks: &'a Marks,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0u64;
        self.marks.record_starts_here();
        while let Some(v) = seq.next_element::<Value>()? {
            n += 1;
            self.marks.record_starts_here();
            if !self.sink.json_record(v, n, Loc::Record(n)) {
                return Err(A::Error::custom(STOPPED));
            }
        }
        Ok(())
    }
}

fn read_json<R: BufRead>(reader: Bounded<R>, marks: &Marks, mut sink: Sink) {
    let mut reader = reader;
    if let Ok(buf) = reader.inner.fill_buf()
        && buf.starts_with(b"\xEF\xBB\xBF")
    {
        reader.inner.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    let res = de
        .deserialize_seq(ArrayVisitor {
            sink: &mut sink,
            marks,
        })
        .and_then(|()| de.end());
    match res {
        Ok(()) => sink.end(),
        Err(_) if sink.stopped => {}
        Err(_) if marks.tripped() => {
            let record = sink.count.saturating_add(1);
            sink.fail(Loc::Record(record), record_too_large(record_bytes_max()));
        }
        Err(e) => {
            let msg = strip_position(&e);
            if e.is_eof() && sink.count == 0 && msg == "EOF while parsing a value" {
                sink.fail(
                    Loc::None,
                    "empty file: expected a JSON array of records".to_owned(),
                );
                return;
            }
            let msg = if e.is_io() {
                format!("read error: {msg}")
            } else {
                format!("invalid JSON: {msg}")
            };
            sink.fail(Loc::LineCol(e.line() as u64, e.column() as u64), msg);
        }
    }
}
