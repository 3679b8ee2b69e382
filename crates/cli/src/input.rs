//! Import inputs: CSV with a header row, JSON Lines and JSON arrays, each parsed in
//! its own reader thread and handed over in small chunks through a bounded channel,
//! so memory stays bounded by the batch size whatever the file size.
//!
//! Every column name is checked against the workspace's catalog here, before any
//! record reaches the engine: a CSV header is checked when the file is opened (so a
//! bad header stops the import before anything is written), a JSON record when it is
//! read.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use contactdb::column::{Catalog, CustomColumn, FieldId, Kind, ResolveError};
use contactdb::{ColumnSpec, ColumnType, Mode};
use encoding_rs::Encoding;
use encoding_rs_io::DecodeReaderBytesBuilder;
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
            "csv" | "tsv" => Some(Format::Csv),
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
    /// CSV: physical line where the record starts (header = 1); JSON Lines: line;
    /// JSON: element index + 1.
    pub line: u64,
    /// The record as sent to the engine.
    pub record: Map<String, Value>,
    /// The record as read, when a rejects file is written.
    pub raw: Option<Raw>,
    /// Why the record cannot be sent to the engine at all (a CSV row with the wrong
    /// number of fields): a failed record of its own.
    pub invalid: Option<Invalid>,
}

/// A record that fails before it reaches the engine.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// Its error code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The code of a CSV row with more or fewer fields than the header.
pub const WRONG_FIELD_COUNT: &str = "wrong_field_count";

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
    /// Sent to the engine (under `rename`, when `--map` renames it); `json`: a CSV
    /// cell is parsed as JSON when it parses.
    Keep {
        id: FieldId,
        json: bool,
        rename: Option<String>,
    },
    /// A read-only system field (`aliases`, `version`, ...): dropped.
    System,
    /// A rejects-file annotation (`_line`, ...): dropped.
    Annotation,
    /// Unknown, dropped under `--ignore-unknown`.
    Ignored,
    /// Refused, with the reason.
    Bad(String),
}

/// How input column names are read: `--map` and `--ignore-unknown`.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    /// (SRC, DEST): input column SRC (any case) is read as DEST.
    pub map: Vec<(String, String)>,
    /// Drop unknown columns instead of refusing the input.
    pub ignore_unknown: bool,
}

/// The workspace's columns, as the inputs are checked against them.
#[derive(Debug)]
pub struct Schema {
    catalog: Catalog,
    specs: Vec<ColumnSpec>,
    mode: Mode,
    headers: Headers,
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
            headers: Headers::default(),
        }
    }

    /// The same schema, reading input column names through `headers`. Fails when a
    /// mapping's DEST is not a column the inputs may write.
    pub fn with_headers(mut self, headers: Headers) -> Result<Schema, String> {
        for (src, dest) in &headers.map {
            match self.classify_name(dest) {
                Class::Keep { .. } => {}
                Class::Bad(m) => return Err(format!("--map {src}={dest}: {m}")),
                Class::System => {
                    return Err(format!(
                        "--map {src}={dest}: {dest:?} is a system column the engine maintains"
                    ));
                }
                Class::Annotation | Class::Ignored => {
                    return Err(format!(
                        "--map {src}={dest}: {dest:?} is not a column of the workspace (contactdb columns list shows them)"
                    ));
                }
            }
        }
        self.headers = headers;
        Ok(self)
    }

    /// How an input column name is handled, `--map` and `--ignore-unknown` applied.
    fn classify(&self, raw: &str) -> Class {
        let trimmed = raw.trim();
        let mapped = self.headers.map.iter().find(|(src, _)| {
            src.eq_ignore_ascii_case(trimmed) || src.to_lowercase() == trimmed.to_lowercase()
        });
        if let Some((_, dest)) = mapped {
            return match self.classify_name(dest) {
                Class::Keep { id, json, .. } => Class::Keep {
                    id,
                    json,
                    rename: Some(dest.clone()),
                },
                other => other,
            };
        }
        match self.classify_name(raw) {
            Class::Ignored if !self.headers.ignore_unknown => Class::Bad(format!(
                "unknown column {raw:?}{}; map it to a column with --map {:?} or leave unknown columns out with --ignore-unknown",
                custom_hint(raw),
                format!("{trimmed}=COLUMN")
            )),
            other => other,
        }
    }

    /// How a column name is handled, without `--map`; `Ignored` is an unknown one.
    fn classify_name(&self, raw: &str) -> Class {
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
                    rename: None,
                }
            }
            Err(ResolveError::ReadOnly) => Class::System,
            Err(ResolveError::Unknown) => Class::Ignored,
        }
    }

    fn column_name(&self, id: FieldId) -> String {
        self.catalog
            .by_id(id)
            .map_or_else(|| format!("#{}", id.0), |c| c.name.clone())
    }
}

/// How an unknown column could be declared, when its name can be a custom column's.
fn custom_hint(raw: &str) -> String {
    match contactdb::column::canonical_name(raw) {
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

/// How the text of an input is read: `--delimiter`, `--quote`, `--encoding`.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// CSV field separator; `None`: `\t` for a .tsv file, else detected from the
    /// header line.
    pub delimiter: Option<u8>,
    /// CSV quote character.
    pub quote: u8,
    /// Text encoding; `None`: UTF-8. A byte-order mark overrides it.
    pub encoding: Option<&'static Encoding>,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: None,
            quote: b'"',
            encoding: None,
        }
    }
}

/// The candidates of delimiter detection, the default first.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Opens an input (`-` = standard input), detects its format, and for CSV reads and
/// checks the header row. Fails on anything that makes the input unusable.
pub fn open(
    path: &Path,
    format: Option<Format>,
    dialect: Dialect,
    schema: &Arc<Schema>,
    keep_raw: Option<RawKind>,
    batch_size: usize,
) -> anyhow::Result<Input> {
    let stdin = path.as_os_str() == "-";
    let (name, reader, size) = source(path, stdin)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let reader = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: reader,
            count: Arc::clone(&bytes),
        },
    );
    let mut reader =
        decode(reader, dialect.encoding).with_context(|| format!("cannot read {name}"))?;
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
            let tsv = !stdin
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
            let dialect = Dialect {
                delimiter: dialect.delimiter.or(tsv.then_some(b'\t')),
                ..dialect
            };
            start_csv(&mut input, reader, dialect, limit, schema, keep_raw)?;
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

/// The display name, bytes and size (when known) of an input.
fn source(path: &Path, stdin: bool) -> anyhow::Result<(String, Box<dyn Read + Send>, Option<u64>)> {
    if stdin {
        return Ok(("<stdin>".to_owned(), Box::new(std::io::stdin()), None));
    }
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {name}"))?;
    if meta.is_dir() {
        anyhow::bail!("{name} is a directory, not a file");
    }
    Ok((name, Box::new(file), Some(meta.len())))
}

/// Reads and checks the header row of a CSV input, and readies its reader thread.
/// `dialect.delimiter` `None`: detected from the header line.
fn start_csv(
    input: &mut Input,
    mut reader: Box<dyn BufRead + Send>,
    dialect: Dialect,
    limit: u64,
    schema: Arc<Schema>,
    keep_raw: Option<RawKind>,
) -> anyhow::Result<()> {
    let name = input.name.clone();
    // The header line is read first, to pick the delimiter, then read again by the
    // csv reader.
    let head = header_line(&mut reader, dialect.quote, limit)
        .with_context(|| format!("cannot read {name}"))?;
    let delimiter = dialect
        .delimiter
        .unwrap_or_else(|| detect_delimiter(&head, dialect.quote));
    if delimiter == dialect.quote {
        return Err(crate::util::UsageError(
            "the delimiter and the quote character must differ".to_owned(),
        )
        .into());
    }
    let marks = Marks::default();
    let lines = Lines::default();
    let source = std::io::Cursor::new(head).chain(reader);
    let mut rdr = csv_reader(source, &marks, &lines, limit, delimiter, dialect.quote);
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
        let reader = CsvReader {
            rdr,
            marks,
            lines,
            width: header.len(),
            header,
            plan,
            keep_raw,
        };
        reader.run(Sink::new(tx, name, schema, keep_raw));
    }));
    Ok(())
}

/// The csv reader of an input's text, through a [`Bounded`] reader (`marks`) and a
/// [`Tracked`] one (`lines`).
fn csv_reader(
    text: impl Read + Send + 'static,
    marks: &Marks,
    lines: &Lines,
    limit: u64,
    delimiter: u8,
    quote: u8,
) -> csv::Reader<Box<dyn Read + Send>> {
    let bounded = Bounded::new(text, marks.clone(), limit, CSV_BUFFER as u64);
    let tracked = Tracked {
        inner: bounded,
        lines: lines.clone(),
        quote,
    };
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .quote(quote)
        .buffer_capacity(CSV_BUFFER)
        .from_reader(Box::new(tracked) as Box<dyn Read + Send>)
}

/// The text of an input as UTF-8: a UTF-8 byte-order mark is skipped; a UTF-16 one,
/// or an `encoding` other than UTF-8, decodes the bytes as they are read. UTF-8
/// input is passed through unchanged (and checked by the parsers).
fn decode(
    mut reader: BufReader<Counting<Box<dyn Read + Send>>>,
    encoding: Option<&'static Encoding>,
) -> std::io::Result<Box<dyn BufRead + Send>> {
    let head = reader.fill_buf()?;
    let utf8_bom = head.starts_with(b"\xEF\xBB\xBF");
    let utf16_bom = head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF");
    let other = encoding.filter(|e| *e != encoding_rs::UTF_8);
    if utf16_bom || (other.is_some() && !utf8_bom) {
        // A byte-order mark overrides the given encoding (as WHATWG decoding does).
        let decoder = DecodeReaderBytesBuilder::new()
            .encoding(if utf16_bom { None } else { other })
            .strip_bom(true)
            .build(reader);
        return Ok(Box::new(BufReader::with_capacity(64 * 1024, decoder)));
    }
    if utf8_bom {
        reader.consume(3);
    }
    Ok(Box::new(reader))
}

/// The first line of a CSV input (through its line break, or the end of the input),
/// continued while a quoted field is open; at most `limit + 1` bytes.
fn header_line(reader: &mut dyn BufRead, quote: u8, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let room = limit.saturating_add(1).saturating_sub(head.len() as u64);
        if room == 0 {
            break;
        }
        let n = reader.take(room).read_until(b'\n', &mut head)?;
        let quotes = head.iter().filter(|&&b| b == quote).count();
        if n == 0 || quotes % 2 == 0 {
            break;
        }
    }
    Ok(head)
}

/// The delimiter among `, ; \t |` that splits the header line into the most
/// fields outside quotes; a comma on a tie.
fn detect_delimiter(head: &[u8], quote: u8) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in head {
        if b == quote {
            quoted = !quoted;
        } else if !quoted {
            if b == b'\n' || b == b'\r' {
                break;
            }
            if let Some(i) = DELIMITERS.iter().position(|d| *d == b)
                && let Some(c) = counts.get_mut(i)
            {
                *c += 1;
            }
        }
    }
    let mut best = (b',', 0usize);
    for (d, n) in DELIMITERS.iter().zip(counts) {
        if n > best.1 {
            best = (*d, n);
        }
    }
    best.0
}

/// Where the line breaks of a CSV input are, as the csv reader reads it: turns the
/// reader's byte positions into physical line numbers (whatever the line ends:
/// LF, CRLF or mixed, and line breaks inside quoted fields), and counts the quote
/// characters (an odd count at the end means an unclosed quote).
#[derive(Debug, Clone, Default)]
struct Lines(Arc<Mutex<LineIndex>>);

#[derive(Debug, Default)]
struct LineIndex {
    /// Offsets of the line feeds not yet counted into `before`.
    pending: VecDeque<u64>,
    /// Line feeds before the last queried offset.
    before: u64,
    /// The offset of the last line feed counted into `before`.
    last: Option<u64>,
    /// Bytes seen.
    read: u64,
    /// Quote characters seen.
    quotes: u64,
}

impl Lines {
    fn lock(&self) -> std::sync::MutexGuard<'_, LineIndex> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Line feeds before byte `offset`, and whether byte `offset - 1` is one.
    /// Offsets must not decrease from one call to the next.
    fn before(&self, offset: u64) -> (u64, bool) {
        let mut ix = self.lock();
        debug_assert!(
            ix.last.is_none_or(|l| l < offset),
            "line offsets queried out of order"
        );
        while let Some(&o) = ix.pending.front() {
            if o >= offset {
                break;
            }
            ix.pending.pop_front();
            ix.before += 1;
            ix.last = Some(o);
        }
        let ends_with_lf = offset > 0 && ix.last == Some(offset - 1);
        (ix.before, ends_with_lf)
    }

    /// Whether an odd number of quote characters was read.
    fn odd_quotes(&self) -> bool {
        self.lock().quotes % 2 == 1
    }
}

/// A reader that records line feeds and quote characters into [`Lines`].
struct Tracked<R> {
    inner: R,
    lines: Lines,
    quote: u8,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = buf.get(..n).unwrap_or_default();
        let quote = self.quote;
        let mut ix = self.lines.lock();
        let base = ix.read;
        ix.pending
            .extend(memchr::memchr_iter(b'\n', got).map(|i| base + i as u64));
        ix.quotes += memchr::memchr_iter(quote, got).count() as u64;
        ix.read += n as u64;
        Ok(n)
    }
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
                format!("invalid UTF-8 in {col}: {NOT_UTF8_HINT}"),
            )
        }
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

/// Where each column of a CSV header goes, with notes on the columns dropped.
/// Fails on a column without a name, a column named twice, a refused column, and
/// a header without the contact key.
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
    let cols = classify_header(header, schema, &err)?;
    let has_key = cols.kept.iter().any(|(id, _)| *id == FieldId::CONTACT_KEY);
    if let Some(m) = cols.first_bad {
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
    if !cols.system.is_empty() {
        notes.push(system_note(name, &cols.system));
    }
    if !cols.annotations.is_empty() {
        notes.push(annotation_note(name, &cols.annotations));
    }
    if !cols.ignored.is_empty() {
        notes.push(ignored_note(name, &cols.ignored));
    }
    Ok(cols.plan)
}

/// The columns of a CSV header, classified.
struct HeaderColumns<'h> {
    plan: Plan,
    /// The columns kept, by field.
    kept: Vec<(FieldId, &'h str)>,
    system: Vec<String>,
    annotations: Vec<String>,
    ignored: Vec<String>,
    /// Why the first refused column is refused.
    first_bad: Option<String>,
}

/// Classifies every column of a CSV header. Fails (through `err`) at once on a
/// column without a name (unless unknown columns are ignored) and on a column
/// named twice; a refused column is kept in `first_bad`.
fn classify_header<'h>(
    header: &'h csv::StringRecord,
    schema: &Schema,
    err: &dyn Fn(String) -> anyhow::Error,
) -> anyhow::Result<HeaderColumns<'h>> {
    let mut cols = HeaderColumns {
        plan: Vec::with_capacity(header.len()),
        kept: Vec::new(),
        system: Vec::new(),
        annotations: Vec::new(),
        ignored: Vec::new(),
        first_bad: None,
    };
    for (i, h) in header.iter().enumerate() {
        if h.trim().is_empty() {
            if schema.headers.ignore_unknown {
                cols.ignored
                    .push(format!("(column {} without a name)", i + 1));
                cols.plan.push(None);
                continue;
            }
            return Err(err(format!(
                "column {} of the header row has no name",
                i + 1
            )));
        }
        let slot = match schema.classify(h) {
            Class::Keep { id, json, rename } => {
                if let Some((_, other)) = cols.kept.iter().find(|(s, _)| *s == id) {
                    return Err(err(format!(
                        "the header names column {:?} twice ({other:?} and {h:?})",
                        schema.column_name(id)
                    )));
                }
                cols.kept.push((id, h));
                Some((rename.unwrap_or_else(|| h.to_owned()), json))
            }
            Class::System => {
                cols.system.push(h.to_owned());
                None
            }
            Class::Annotation => {
                cols.annotations.push(h.to_owned());
                None
            }
            Class::Ignored => {
                cols.ignored.push(h.to_owned());
                None
            }
            Class::Bad(m) => {
                cols.first_bad.get_or_insert(m);
                None
            }
        };
        cols.plan.push(slot);
    }
    debug_assert_eq!(cols.plan.len(), header.len(), "one plan slot per column");
    Ok(cols)
}

fn ignored_note(name: &str, cols: &[String]) -> String {
    format!("{name}: ignored columns: {}", cols.join(", "))
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
    /// Unknown JSON fields left out under `--ignore-unknown`, in order first seen.
    ignored: Vec<String>,
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
            ignored: Vec::new(),
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
        if !self.ignored.is_empty() && !self.stopped {
            let note = ignored_note(&self.name, &self.ignored);
            self.send(Msg::Note(note));
        }
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
        let edits = match self.check_fields(&map) {
            Ok(edits) => edits,
            Err(m) => {
                self.fail(loc, m);
                return false;
            }
        };
        self.edit_fields(&mut map, edits);
        let raw = self.keep_raw.map(|_| Raw::Json(map.clone()));
        self.push(Rec {
            line,
            record: map,
            raw,
            invalid: None,
        })
    }

    /// Classifies a JSON record's field names (once per name, then from the cache):
    /// the fields to leave out and to rename, or why the record stops the input.
    fn check_fields(&mut self, map: &Map<String, Value>) -> Result<FieldEdits, String> {
        let mut seen: Vec<(FieldId, &str)> = Vec::with_capacity(map.len());
        let mut edits = FieldEdits {
            drop: Vec::new(),
            renames: Vec::new(),
        };
        for k in map.keys() {
            if !self.cache.contains_key(k) {
                let c = self.schema.classify(k);
                self.cache.insert(k.clone(), c);
            }
            match self.cache.get(k) {
                Some(Class::Keep { id, rename, .. }) => {
                    if let Some((_, other)) = seen.iter().find(|(s, _)| s == id) {
                        return Err(format!(
                            "the record gives column {:?} twice ({other:?} and {k:?})",
                            self.schema.column_name(*id)
                        ));
                    }
                    seen.push((*id, k));
                    if let Some(dest) = rename
                        && dest != k
                    {
                        edits.renames.push((k.clone(), dest.clone()));
                    }
                }
                Some(Class::System) => edits.drop.push((k.clone(), Dropped::System)),
                Some(Class::Annotation) => edits.drop.push((k.clone(), Dropped::Annotation)),
                Some(Class::Ignored) => edits.drop.push((k.clone(), Dropped::Unknown)),
                Some(Class::Bad(m)) => return Err(m.clone()),
                None => {}
            }
        }
        Ok(edits)
    }

    /// Leaves out and renames a JSON record's fields as `edits` says; notes the
    /// first system and annotation fields left out, and remembers unknown ones.
    fn edit_fields(&mut self, map: &mut Map<String, Value>, edits: FieldEdits) {
        let mut system = Vec::new();
        let mut annotations = Vec::new();
        for (k, why) in edits.drop {
            map.remove(&k);
            match why {
                Dropped::System => system.push(k),
                Dropped::Annotation => annotations.push(k),
                Dropped::Unknown => {
                    if !self.ignored.contains(&k) {
                        self.ignored.push(k);
                    }
                }
            }
        }
        for (from, to) in edits.renames {
            if let Some(v) = map.remove(&from) {
                map.insert(to, v);
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
    }
}

/// What a JSON record's field names ask for.
struct FieldEdits {
    /// Fields left out, and why.
    drop: Vec<(String, Dropped)>,
    /// (from, to): fields `--map` renames.
    renames: Vec<(String, String)>,
}

/// Why a JSON field is left out.
#[derive(Debug, Clone, Copy)]
enum Dropped {
    System,
    Annotation,
    Unknown,
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

/// A CSV input's reader thread, from the first record on.
struct CsvReader {
    rdr: csv::Reader<Box<dyn Read + Send>>,
    marks: Marks,
    lines: Lines,
    header: csv::StringRecord,
    width: usize,
    plan: Plan,
    keep_raw: Option<RawKind>,
}

/// A CSV record read, not yet sent: one record of look-ahead, since an unclosed
/// quote swallows the rest of the input into the last record.
struct Pending {
    rec: csv::StringRecord,
    line: u64,
    multiline: bool,
}

impl CsvReader {
    /// Reads every record and queues it, one record behind (see [`Pending`]); ends
    /// with the end of the input or the first error.
    fn run(mut self, mut sink: Sink) {
        let mut pending: Option<Pending> = None;
        let mut brec = csv::ByteRecord::new();
        loop {
            match self.rdr.read_byte_record(&mut brec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let (loc, message) = self.read_error(&e, &brec, &sink.name);
                    self.fail_after(pending.take(), &mut sink, loc, message);
                    return;
                }
            }
            let next = match self.take_record(&mut brec) {
                Ok(next) => next,
                Err((loc, message)) => {
                    self.fail_after(pending.take(), &mut sink, loc, message);
                    return;
                }
            };
            if let Some(p) = pending.replace(next)
                && !self.push(p, &mut sink)
            {
                return;
            }
        }
        if let Some(last) = pending {
            if let Some((loc, message)) = self.unclosed_quote(&last) {
                sink.fail(loc, message);
                return;
            }
            if !self.push(last, &mut sink) {
                return;
            }
        }
        sink.end();
    }

    /// Where and why reading failed (`brec`: the record being read).
    fn read_error(&self, e: &csv::Error, brec: &csv::ByteRecord, name: &str) -> (Loc, String) {
        // The line of the record that failed: past the line feed of a CRLF that
        // ended the record before it.
        let (before, _) = self.lines.before(brec_start(brec).saturating_add(1));
        if self.marks.tripped() {
            return (Loc::Line(before + 1), record_too_large(record_bytes_max()));
        }
        let err = csv_error(name, e, Some(&self.header));
        (err.loc, err.message)
    }

    /// The record just read, with its first line; where and why it stops the input
    /// when it is over the size limit or not UTF-8. Leaves `brec` empty.
    fn take_record(&mut self, brec: &mut csv::ByteRecord) -> Result<Pending, (Loc, String)> {
        // The record's content ends before its line break (consumed with it, or
        // left for the next record); its first line is its last line less the line
        // breaks inside its quoted fields.
        let end = self.rdr.position().byte();
        let breaks = memchr::memchr_iter(b'\n', brec.as_slice()).count() as u64;
        let (before, lf) = self.lines.before(end);
        let line = (before + 1).saturating_sub(breaks + u64::from(lf));
        let start = brec_start(brec);
        if end.saturating_sub(start) > record_bytes_max() {
            return Err((Loc::Line(line), record_too_large(record_bytes_max())));
        }
        self.marks.record_starts_at(end);
        match csv::StringRecord::from_byte_record(std::mem::take(brec)) {
            Ok(rec) => Ok(Pending {
                rec,
                line,
                multiline: breaks > 0,
            }),
            Err(e) => Err(utf8_error(e, line, &self.header)),
        }
    }

    /// Queues the record read before the failing one, then reports the failure
    /// (unless the queue stopped reading first).
    fn fail_after(&self, pending: Option<Pending>, sink: &mut Sink, loc: Loc, message: String) {
        if let Some(p) = pending
            && !self.push(p, sink)
        {
            return;
        }
        sink.fail(loc, message);
    }

    /// Where the last record starts and why it stops the input, when a quoted
    /// field in it runs to the end of the input.
    fn unclosed_quote(&self, last: &Pending) -> Option<(Loc, String)> {
        if !(last.multiline && self.lines.odd_quotes()) {
            return None;
        }
        // The quoted field runs to the end: no line break ended the record, so its
        // first line is the number of line breaks before it, plus 1.
        let (before, _) = self.lines.before(self.rdr.position().byte());
        let breaks = last
            .rec
            .iter()
            .map(|f| memchr::memchr_iter(b'\n', f.as_bytes()).count() as u64)
            .sum::<u64>();
        Some((
            Loc::Line((before + 1).saturating_sub(breaks)),
            "malformed CSV: a quoted field that starts on this line runs to the end of the file (an unbalanced quote?)".to_owned(),
        ))
    }

    /// Converts a CSV record and queues it. Returns false when reading should stop.
    fn push(&self, p: Pending, sink: &mut Sink) -> bool {
        let Pending { rec, line, .. } = p;
        let mut record = Map::new();
        for (cell, slot) in rec.iter().zip(&self.plan) {
            if let Some((name, json)) = slot {
                let value = if *json {
                    serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_owned()))
                } else {
                    Value::String(cell.to_owned())
                };
                record.insert(name.clone(), value);
            }
        }
        let invalid = (rec.len() != self.width).then(|| Invalid {
            code: WRONG_FIELD_COUNT,
            message: format!("expected {} fields, found {}", self.width, rec.len()),
        });
        let raw = match self.keep_raw {
            None => None,
            Some(RawKind::Cells) => Some(Raw::Csv(rec)),
            Some(RawKind::Record) => Some(Raw::Json(record.clone())),
        };
        sink.push(Rec {
            line,
            record,
            raw,
            invalid,
        })
    }
}

/// Where a record read starts (its position), or 0.
fn brec_start(rec: &csv::ByteRecord) -> u64 {
    rec.position().map_or(0, csv::Position::byte)
}

/// The error of a CSV record that is not UTF-8, on the physical line of the bad byte.
fn utf8_error(e: csv::FromUtf8Error, line: u64, header: &csv::StringRecord) -> (Loc, String) {
    let field = e.utf8_error().field();
    let valid = e.utf8_error().valid_up_to();
    let rec = e.into_byte_record();
    let mut breaks = 0u64;
    for (i, f) in rec.iter().enumerate().take(field + 1) {
        let f = if i == field {
            f.get(..valid).unwrap_or(f)
        } else {
            f
        };
        breaks += memchr::memchr_iter(b'\n', f).count() as u64;
    }
    let col = header.get(field).map_or_else(
        || format!("field {}", field + 1),
        |c| format!("column {c:?}"),
    );
    (
        Loc::Line(line + breaks),
        format!("invalid UTF-8 in {col}: {NOT_UTF8_HINT}"),
    )
}

/// What an input that is not UTF-8 is told.
pub const NOT_UTF8_HINT: &str = "the file is not UTF-8; give its encoding, e.g. --encoding windows-1252 (Excel on Windows) or --encoding utf-16le";

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
                    format!("invalid UTF-8: {NOT_UTF8_HINT}"),
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
