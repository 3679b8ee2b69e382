//! Command-line arguments (clap derive): global options and one struct per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Most records in one batch: the engine's ceiling on one request.
pub const BATCH_SIZE_MAX: u64 = 1_000_000;

/// The most records --commit-records takes.
pub const COMMIT_RECORDS_MAX: u64 = 100_000_000;

/// --commit-records when not given and no input is standard input: at least this
/// many records.
pub const COMMIT_RECORDS_DEFAULT: u64 = 200_000;

/// --commit-records when not given and no input is standard input: at least this
/// many records per MiB of --cache-mib. A larger cache holds the larger
/// transaction's changed pages, so the pages are written fewer times; the open
/// transaction holds about 100 bytes per record until it commits (the hashes of
/// what it changed, the batches' line numbers), about 400 more when --report
/// keeps every record's result and warnings.
pub const COMMIT_RECORDS_PER_CACHE_MIB: u64 = 4_000;

/// The command line of `contactdb`.
#[derive(Debug, Parser)]
#[command(
    name = "contactdb",
    version,
    about = "contactdb: load CSV/JSON contact exports into a local master-contact database, see what happened to every row, and read contacts back",
    after_help = "Exit codes: 0 all applied; 3 partially applied; 1 nothing applied or any error; 2 usage error.\nMachine output (JSON, exports) goes to stdout; messages and errors go to stderr.",
    max_term_width = 100
)]
pub struct Cli {
    /// Database: a file (created on first write), or a PostgreSQL database
    /// `postgres://user@host:port/dbname` (its tables are created on first use).
    #[arg(
        long,
        global = true,
        value_name = "PATH|URL",
        default_value = "contacts.redb"
    )]
    pub db: PathBuf,

    /// Workspace slug or UUID.
    #[arg(long, global = true, value_name = "SLUG", default_value = "default")]
    pub workspace: String,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load CSV, JSON Lines or JSON files into the workspace, batch by batch.
    Import(ImportArgs),
    /// Apply one bulk request (JSON, see docs/cli.md) and print its report as JSON.
    Upsert(UpsertArgs),
    /// Print one contact, found by key or alias, as JSON.
    Get(GetArgs),
    /// Print the contacts with an email or phone, as JSON Lines.
    Find(FindArgs),
    /// Write every contact of the workspace as CSV or JSON Lines.
    Export(ExportArgs),
    /// List or declare custom columns.
    #[command(subcommand)]
    Columns(ColumnsCommand),
    /// List or create workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Print contact counts per workspace and the file size, as JSON (only the
    /// workspace named by --workspace, when it is given).
    Stats,
    /// Repair the file in place (back it up first), then check every table; exit
    /// 1 if a problem is left.
    Repair,
    /// Write a consistent copy of the database to a new file while writers go on.
    Backup(BackupArgs),
    /// Make the file as small as its content allows: every table rewritten densely,
    /// then the free pages given back (after large imports, more than half the
    /// file); needs the file to itself. Prints the size before and after as JSON.
    Compact,
    /// Check the file's pages and every table without changing it; print each
    /// problem as JSON and exit 1 if there is any.
    Check,
    /// Generate realistic, messy contacts (deterministic from the seed).
    Gen(GenArgs),
    /// Create, list and drop campaigns; list their members in pick order.
    #[command(subcommand)]
    Campaign(crate::around::CampaignCommand),
    /// Submit bulk requests as background jobs, run them, follow them.
    #[command(subcommand)]
    Job(crate::around::JobCommand),
    /// Read the change feed; keep named consumers' positions.
    #[command(subcommand)]
    Feed(crate::around::FeedCommand),
    /// Answer a body of one of the hosted APIs (customer-import, bulk-add,
    /// bulk-upsert) on this file; prints its response as JSON.
    Api(crate::api::ApiArgs),
    /// Serve the hosted APIs over HTTP, with API keys; runs submitted jobs.
    Serve(crate::serve::ServeArgs),
    /// Create, list and revoke the workspace's API keys.
    #[command(subcommand)]
    Key(crate::serve::KeyCommand),
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One JSON array of objects.
    Json,
}

/// Output formats of `export` and `gen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutFormatArg {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl OutFormatArg {
    /// `given`, else the format the output file's extension names (`.json` writes
    /// JSON Lines), else `default`.
    pub fn resolve(
        given: Option<OutFormatArg>,
        out: Option<&std::path::Path>,
        default: OutFormatArg,
    ) -> OutFormatArg {
        given.unwrap_or_else(
            || match out.and_then(crate::input::Format::from_extension) {
                Some(crate::input::Format::Csv) => OutFormatArg::Csv,
                Some(crate::input::Format::Jsonl | crate::input::Format::Json) => {
                    OutFormatArg::Jsonl
                }
                None => default,
            },
        )
    }
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Only new contacts.
    Insert,
    /// Only existing contacts.
    Update,
    /// Insert new, update existing.
    Upsert,
}

/// One `--match` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchArg {
    /// contact_key or alias (always on).
    Key,
    /// Normalized email.
    Email,
    /// Normalized phone.
    Phone,
}

/// `--on-invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnInvalidArg {
    /// Write nothing if any record fails.
    Abort,
    /// Apply the valid records, report the failed ones.
    Skip,
}

/// `--on-duplicate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnDuplicateArg {
    /// Apply every occurrence in order.
    Merge,
    /// Apply only the first occurrence.
    First,
    /// Apply only the last occurrence.
    Last,
    /// Fail every occurrence after the first.
    Reject,
}

/// `--phone-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhoneCheckArg {
    /// The E.164 shape: `+` and 7 to 15 digits, the first not 0.
    Format,
    /// The shape, and a number valid for its region.
    Valid,
}

/// `--empty-values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmptyValuesArg {
    /// Empty cells clear the stored value.
    Clear,
    /// Empty cells leave the stored value unchanged.
    Ignore,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input files; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Input format (default: from the extension — .csv, .tsv, .jsonl, .ndjson,
    /// .json — else from the first character of the content).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// CSV field separator: `,` `;` `|` or `tab` (also `\t`). Default: `tab` for
    /// a .tsv file, else the one of `, ; tab |` that splits the header most.
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,

    /// CSV quote character.
    #[arg(long, value_name = "CHAR", default_value = "\"", value_parser = parse_quote)]
    pub quote: u8,

    /// Text encoding of the inputs, by WHATWG label: utf-8, windows-1252 (also
    /// latin1, iso-8859-1), utf-16le, utf-16be, ... Default: utf-8; a byte-order
    /// mark overrides it.
    #[arg(long, value_name = "NAME", value_parser = parse_encoding)]
    pub encoding: Option<&'static encoding_rs::Encoding>,

    /// Read input column SRC (any case) as column DEST (a column name or alias of
    /// the workspace); repeatable. Applies to CSV headers and JSON field names.
    #[arg(long = "map", value_name = "SRC=DEST", value_parser = parse_mapping)]
    pub map: Vec<(String, String)>,

    /// Leave out input columns the workspace does not know (listed once on
    /// stderr) instead of stopping with an error.
    #[arg(long)]
    pub ignore_unknown: bool,

    /// Validate and match every record against the database and report as a real
    /// import would (report, rejects file, exit code), but leave the file unchanged.
    #[arg(long)]
    pub dry_run: bool,

    /// What to do with matched and unmatched records.
    #[arg(long, value_enum, default_value = "upsert")]
    pub mode: ModeArg,

    /// How records find existing contacts (comma-separated; key is always on).
    #[arg(
        long = "match",
        value_enum,
        value_delimiter = ',',
        default_value = "key"
    )]
    pub match_on: Vec<MatchArg>,

    /// `abort`: nothing is written if any record fails. `skip`: failed records are
    /// left out.
    #[arg(long, value_enum, default_value = "skip")]
    pub on_invalid: OnInvalidArg,

    /// What a second record for the same contact does, within a batch (within the
    /// whole input with --on-invalid abort).
    #[arg(long, value_enum, default_value = "merge")]
    pub on_duplicate: OnDuplicateArg,

    /// What empty cells and nulls mean.
    #[arg(long, value_enum, default_value = "clear")]
    pub empty_values: EmptyValuesArg,

    /// Make every imported contact a member of this campaign (it must exist).
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,

    /// Read phone numbers without `+` or `00` as national numbers of this region
    /// (ISO 3166 code, e.g. TR, GB, US). Default: such numbers are refused.
    #[arg(long, value_name = "CC")]
    pub default_region: Option<String>,

    /// How phone numbers are checked: `format` (E.164 shape) or `valid` (also a
    /// number that exists for its region, by libphonenumber's metadata).
    #[arg(long, value_enum, default_value = "format")]
    pub phone_check: PhoneCheckArg,

    /// Read date columns with this strftime format, e.g. `%d/%m/%Y`. Default:
    /// ISO `YYYY-MM-DD`. Dates are stored as `YYYY-MM-DD` either way.
    #[arg(long, value_name = "FMT")]
    pub date_format: Option<String>,

    /// Records per batch: validated, matched and reported together.
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=BATCH_SIZE_MAX))]
    pub batch_size: u64,

    /// With --on-invalid skip: commit after whole batches of at least this many
    /// records (a crash keeps the batches committed before it, each whole). Fewer
    /// commits write faster; 1 commits every batch on its own. Default: 4,000 per
    /// MiB of --cache-mib, at least 200,000; 1 when reading standard input (a pipe
    /// may deliver slowly).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=COMMIT_RECORDS_MAX))]
    pub commit_records: Option<u64>,

    /// Page cache of the database, MiB; peak memory grows with it: an import also
    /// holds up to about as much in writes it sorts before writing, and up to
    /// twice as much in the reports of a transaction waiting for its commit. A
    /// larger cache helps imports into files of millions of contacts (see
    /// docs/cli.md).
    #[arg(long, value_name = "MIB", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub cache_mib: u64,

    /// Write every failed record here (CSV, JSONL or JSON by extension), with its
    /// line, column, error code and message, ready to fix and import again.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,

    /// Write the full JSON report here (`-` = standard output).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Never show a progress bar (it is shown only when stderr is a terminal and
    /// the import takes more than a second).
    #[arg(long)]
    pub no_progress: bool,

    /// No progress bar and no notes; failures and the final summary line are
    /// still printed.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Largest record accepted, in bytes (a CSV record, a JSON Lines line or an
    /// element of a JSON array); a larger one stops the import.
    #[arg(long, value_name = "BYTES", default_value_t = crate::input::RECORD_BYTES_MAX_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_record_bytes: u64,
}

/// `upsert`.
#[derive(Debug, Args)]
pub struct UpsertArgs {
    /// The bulk request as JSON; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,

    /// Most records in the request; a request with more is refused
    /// (`too_many_records`) without reading the rest.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=BATCH_SIZE_MAX))]
    pub max_records: u64,

    /// Largest record (or other request field) accepted, in bytes; a larger one
    /// refuses the request (`record_too_large`).
    #[arg(long, value_name = "BYTES", default_value_t = crate::input::RECORD_BYTES_MAX_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_record_bytes: u64,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The copy's path; it must not exist (a backup never overwrites a file).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// contact_key or alias.
    pub key: String,
}

/// `find`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct FindArgs {
    /// Email (normalized first: trimmed, lower-cased).
    #[arg(long)]
    pub email: Option<String>,
    /// Phone (normalized to E.164 first).
    #[arg(long)]
    pub phone: Option<String>,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format (default: from --out's extension, else jsonl).
    #[arg(long, value_enum)]
    pub format: Option<OutFormatArg>,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `columns ...`.
#[derive(Debug, Subcommand)]
pub enum ColumnsCommand {
    /// Print every column (predefined and custom) as JSON Lines.
    List,
    /// Declare a custom column, or change an existing one's flags.
    Add(ColumnAddArgs),
}

/// Custom column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColumnTypeArg {
    /// Text of at most --max-len characters.
    String,
    /// 64-bit signed integer.
    Integer,
    /// Decimal number.
    Decimal,
    /// true/false.
    Boolean,
    /// YYYY-MM-DD.
    Date,
    /// Any JSON value.
    Json,
}

/// Default `--max-len` of a string column.
pub const STRING_MAX_LEN_DEFAULT: u32 = 255;

/// `columns add`.
#[derive(Debug, Args)]
pub struct ColumnAddArgs {
    /// Column name, `[a-z][a-z0-9_]{0,62}`.
    pub name: String,
    /// Value type.
    #[arg(long = "type", value_enum)]
    pub ty: ColumnTypeArg,
    /// Most characters (string columns only; default 255).
    #[arg(long)]
    pub max_len: Option<u32>,
    /// Allow imports and bulk requests to write the column.
    #[arg(long)]
    pub import_enabled: bool,
    /// Every insert must give the column a value.
    #[arg(long)]
    pub required: bool,
}

/// `workspace ...`.
#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Print every workspace as JSON Lines.
    List,
    /// Create a workspace.
    Create(WorkspaceCreateArgs),
}

/// `workspace create`.
#[derive(Debug, Args)]
pub struct WorkspaceCreateArgs {
    /// `[a-z0-9][a-z0-9-]{0,62}`.
    pub slug: String,
}

/// `gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of rows.
    #[arg(long)]
    pub count: u64,
    /// Seed: the same seed always gives the same rows.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format (default: from --out's extension, else csv).
    #[arg(long, value_enum)]
    pub format: Option<OutFormatArg>,
    /// Leave out the custom columns (loyalty_tier, lifetime_value), so the output
    /// imports into a fresh database without `columns add`.
    #[arg(long)]
    pub no_custom: bool,
}

/// `--delimiter`: `,` `;` `|` `tab` `\t` or another single ASCII punctuation
/// character.
fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "TAB" | "\\t" | "\t" => Ok(b'\t'),
        _ => match s.as_bytes() {
            [b] if b.is_ascii_punctuation() && *b != b'"' => Ok(*b),
            _ => Err(format!(
                "{s:?} is not a delimiter: use one of , ; | tab (or another single punctuation character)"
            )),
        },
    }
}

/// `--quote`: one ASCII punctuation character.
fn parse_quote(s: &str) -> Result<u8, String> {
    match s.as_bytes() {
        [b] if b.is_ascii_punctuation() => Ok(*b),
        _ => Err(format!(
            "{s:?} is not a quote character: give one character such as \" or '"
        )),
    }
}

/// `--encoding`: a WHATWG label.
fn parse_encoding(s: &str) -> Result<&'static encoding_rs::Encoding, String> {
    match encoding_rs::Encoding::for_label(s.trim().as_bytes()) {
        // "replacement" decodes nothing; x-user-defined is not a text encoding.
        Some(e) if e != encoding_rs::REPLACEMENT && e != encoding_rs::X_USER_DEFINED => Ok(e),
        _ => Err(format!(
            "unknown encoding {s:?}: give a WHATWG label such as utf-8, windows-1252, latin1, utf-16le, utf-16be"
        )),
    }
}

/// `--map SRC=DEST`.
fn parse_mapping(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((src, dest)) if !src.trim().is_empty() && !dest.trim().is_empty() => {
            Ok((src.trim().to_owned(), dest.trim().to_owned()))
        }
        _ => Err(format!(
            "{s:?} is not a mapping: write SRC=DEST, e.g. \"Record ID=contact_key\""
        )),
    }
}
