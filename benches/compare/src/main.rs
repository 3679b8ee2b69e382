//! contactdb-bench-compare: contactdb against SQLite upserts and against the floors
//! of the storage underneath, on the same deterministic workload, in one run.
//!
//! Every row runs in a child process of this binary (a hidden `--row NAME`), so each
//! row's peak RSS is its own (VmHWM of the child, read by the child at its end).

mod breakdown;
mod bulk;
mod rows;
mod workload;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};

use rows::{PhaseOut, contactdb_row, mem_row, redb_naive, redb_row, sqlite_row};
use workload::{Order, load_items, upsert_items};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OrderArg {
    Shuffled,
    Sorted,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Load,
    Upsert,
    Both,
}

/// A row of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RowName {
    /// SQLite's bulk path: staging import of the CSV, one INSERT … SELECT … ON
    /// CONFLICT DO UPDATE (the reference row).
    SqliteBulk,
    /// The same statements run by the `sqlite3` shell (`.import --csv`).
    Sqlite3Shell,
    Contactdb,
    /// `contactdb import` (the release binary) on the same CSV.
    ContactdbCli,
    SqliteRowid,
    SqliteWithoutRowid,
    /// The store's physical layout written directly (the floor).
    RedbFloor,
    /// Plain redb tables keyed by contact key (format 1's layout).
    RedbNaive,
    /// Plain redb tables (key → row, email → key, phone → key), one write
    /// transaction per phase (or per --floor-commit-every records).
    RedbFloorTxn,
    MemFloor,
    /// The scaling table's child (its row is `--scaling-row`).
    Scaling,
}

impl RowName {
    fn label(self) -> &'static str {
        match self {
            RowName::SqliteBulk => "sqlite_bulk",
            RowName::Sqlite3Shell => "sqlite3_shell",
            RowName::Contactdb => "contactdb",
            RowName::ContactdbCli => "contactdb_cli",
            RowName::RedbFloorTxn => "redb_floor_txn",
            RowName::SqliteRowid => "sqlite(rowid)",
            RowName::SqliteWithoutRowid => "sqlite(w/o rowid)",
            RowName::RedbFloor => "redb_floor",
            RowName::RedbNaive => "redb_naive",
            RowName::MemFloor => "mem_floor",
            RowName::Scaling => "scaling",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            RowName::SqliteBulk => "sqlite-bulk",
            RowName::Sqlite3Shell => "sqlite3-shell",
            RowName::Contactdb => "contactdb",
            RowName::ContactdbCli => "contactdb-cli",
            RowName::RedbFloorTxn => "redb-floor-txn",
            RowName::SqliteRowid => "sqlite-rowid",
            RowName::SqliteWithoutRowid => "sqlite-without-rowid",
            RowName::RedbFloor => "redb-floor",
            RowName::RedbNaive => "redb-naive",
            RowName::MemFloor => "mem-floor",
            RowName::Scaling => "scaling",
        }
    }
}

const ALL_ROWS: &[RowName] = &[
    RowName::SqliteBulk,
    RowName::Sqlite3Shell,
    RowName::Contactdb,
    RowName::ContactdbCli,
    RowName::SqliteRowid,
    RowName::SqliteWithoutRowid,
    RowName::RedbFloor,
    RowName::RedbFloorTxn,
    RowName::RedbNaive,
    RowName::MemFloor,
];

/// The reference row of the comparison: every row's records/s is also given as a
/// ratio to this row's.
const REFERENCE: RowName = RowName::SqliteBulk;

/// One run of the comparison: a row, and for `redb-floor-txn` its commit interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowRun {
    row: RowName,
    /// Records per write transaction of `redb-floor-txn` (0 = the whole phase).
    commit_every: u64,
}

impl RowRun {
    fn label(self) -> String {
        match (self.row, self.commit_every) {
            (RowName::RedbFloorTxn, 0) => "redb_floor_txn".to_owned(),
            (RowName::RedbFloorTxn, n) => format!("redb_floor_txn/{n}"),
            (row, _) => row.label().to_owned(),
        }
    }
}

/// contactdb against SQLite (`INSERT … ON CONFLICT DO UPDATE`) and against the redb
/// and in-memory floors, on a deterministic contact workload.
#[derive(Debug, Parser)]
#[command(name = "contactdb-bench-compare")]
struct Args {
    /// Contacts of the initial load; the upsert pass has as many records (half
    /// updates of existing contacts, half new contacts).
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Records per request / transaction.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Arrival order of the records.
    #[arg(long, value_enum, default_value_t = OrderArg::Both)]
    order: OrderArg,
    /// Page cache of every storage row (contactdb, SQLite cache_size, redb floor), MiB.
    #[arg(long, default_value_t = 64)]
    cache_mib: usize,
    /// Leave part of the redb floor's work out, to measure what it costs (only for
    /// that: the floor row then no longer does the store's writes).
    #[arg(long, value_enum, default_value_t = rows::FloorSkip::None)]
    floor_skip: rows::FloorSkip,
    /// Rows to run (default: all; with --scaling: contactdb; the scaling run takes
    /// contactdb, sqlite-rowid, sqlite-without-rowid and redb-floor).
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Vec<RowName>,
    /// Runs the scaling table instead of the comparison: per-record upsert cost with
    /// 100k and 1M contacts already in the file, batches of 1k / 10k / 100k.
    #[arg(long)]
    scaling: bool,
    /// With --scaling: also 10M contacts already in the file (slow; not for CI).
    #[arg(long)]
    huge: bool,
    /// With --scaling: upsert records measured per batch size.
    #[arg(long, default_value_t = 100_000)]
    scaling_records: u64,
    /// With --scaling: the base sizes instead of 100k and 1M (and 10M with --huge).
    #[arg(long, value_delimiter = ',')]
    scaling_bases: Vec<u64>,
    /// With --scaling: the batch sizes measured.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 10_000, 100_000])]
    scaling_batches: Vec<usize>,
    /// With --row scaling: a database already in --dir that holds --records
    /// contacts is used as the loaded base (for profiling one base size repeatedly).
    #[arg(long, hide = true)]
    reuse_base: bool,
    /// Directory for the database files (default: a new directory under the system
    /// temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write every (row, phase) result here as CSV: seconds, records/s, ratio to
    /// sqlite-bulk, peak RSS, bytes written, bytes per record, file bytes.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Longest a row may run (both phases, its child process and whatever it runs);
    /// after that it is killed and the run stops with an error.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
    /// redb-floor-txn: records per write transaction, one run per value (0 = one
    /// transaction for the whole phase).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64])]
    floor_commit_every: Vec<u64>,
    /// contactdb: commit whole requests together in transactions of at least this
    /// many records (`Workspace::bulk_each`); 0 = one transaction per request
    /// (`Workspace::bulk`).
    #[arg(long, default_value_t = 0)]
    commit_records: usize,
    /// contactdb-cli: the release `contactdb` binary (default: $CONTACTDB_BIN, else
    /// $CARGO_TARGET_DIR/release/contactdb, else the workspace's target/release).
    #[arg(long, value_name = "PATH")]
    contactdb_bin: Option<PathBuf>,
    /// contactdb-cli: the import's --match (the SQLite bulk rows match by key only).
    #[arg(long, default_value = "key")]
    cli_match: String,
    /// contactdb, contactdb-cli: after each phase, print where the file's bytes go
    /// (per table: entries, key and value bytes, pages; the rest of the file).
    #[arg(long)]
    breakdown: bool,
    /// contactdb: after each phase, compact the file (`Builder::compact_file`),
    /// reported as its own phase (`load_compact`, `upsert_compact`: its seconds and
    /// the file's size after it); the next phase starts from the compacted file.
    #[arg(long)]
    compact: bool,

    // Child-process arguments (internal).
    #[arg(long, value_enum, hide = true)]
    row: Option<RowName>,
    #[arg(long, value_enum, hide = true, default_value_t = Order::Shuffled)]
    child_order: Order,
    #[arg(long, value_enum, hide = true, default_value_t = Phase::Both)]
    phase: Phase,
    #[arg(long, value_enum, hide = true, default_value_t = RowName::Contactdb)]
    scaling_row: RowName,
    /// Where the parent wrote the CSV inputs.
    #[arg(long, hide = true)]
    input_dir: Option<PathBuf>,
}

/// Every row (contactdb, SQLite's Rust side, the floors) runs with the same
/// allocator, set up as the `contactdb` binary sets it up (without transparent huge
/// pages, purge delay 100 ms); see docs/performance.md for glibc malloc vs mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: stores a value in mimalloc's option table (15 is
        // `mi_option_purge_delay`), before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(15, 100) };
    }
    let args = Args::parse();
    rows::set_row_options(rows::RowOptions {
        floor_skip: args.floor_skip,
    });
    let res = match args.row {
        Some(row) => child(&args, row),
        None => parent(&args),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn cache_bytes(args: &Args) -> usize {
    args.cache_mib * 1024 * 1024
}

// ---------------------------------------------------------------------------------
// child side

/// This process's peak resident set (VmHWM), KiB.
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// This process's write counters at the end of the last reported phase (at the
/// child's start before the first).
static WRITTEN_MARK: std::sync::Mutex<Option<bulk::Io>> = std::sync::Mutex::new(None);

fn set_written_mark(io: Option<bulk::Io>) {
    if let Ok(mut m) = WRITTEN_MARK.lock() {
        *m = io;
    }
}

fn dir_size(dir: &Path) -> u64 {
    dir_files(dir, |m| m.len())
}

/// The disk the directory's files take (allocated blocks): less than their length
/// where a file has holes (redb extends its file before it writes the new space).
fn dir_disk_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    dir_files(dir, |m| m.blocks().saturating_mul(512))
}

/// `size` summed over the regular files directly in `dir`.
fn dir_files(dir: &Path, size: impl Fn(&std::fs::Metadata) -> u64) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| size(&m))
                .sum()
        })
        .unwrap_or(0)
}

/// Prints one phase's result line for the parent. The bytes written are the row's
/// own measurement when it made one (around its timed work), else those since the
/// last phase reported: the phase's open, writes and close (and its untimed checks
/// and record generation, which write nothing). The peak RSS is the row's own
/// measurement (an external process's), else this process's VmHWM so far.
fn report_phase(name: &str, out: PhaseOut, dir: Option<&Path>) {
    let now = bulk::Io::now();
    let before = WRITTEN_MARK.lock().ok().and_then(|m| *m);
    set_written_mark(now);
    let io = out.io.or_else(|| Some(now?.since(before?)));
    let num = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok()).unwrap_or(-1);
    println!(
        "RESULT {name} {} {} {} {} {} {} {} {} {}",
        out.elapsed.as_secs_f64(),
        out.records,
        num(dir.map(dir_size)),
        out.median_request.as_secs_f64(),
        out.slowest_request.as_secs_f64(),
        num(io.map(|io| io.wchar)),
        num(io.map(|io| io.write_bytes)),
        num(out.peak_rss_kib.or_else(peak_rss_kib)),
        num(dir.map(dir_disk_size)),
    );
}

/// One phase of a storage row (everything but the in-memory floor): open, every
/// batch of `items`, close.
fn storage_phase(
    row: RowName,
    dir: &Path,
    cache: usize,
    batch: usize,
    commit_records: usize,
    items: &[workload::Item],
) -> Result<PhaseOut> {
    match row {
        RowName::Contactdb => contactdb_row::phase(dir, cache, batch, commit_records, items),
        RowName::SqliteRowid => sqlite_row::phase(dir, cache, batch, items, false),
        RowName::SqliteWithoutRowid => sqlite_row::phase(dir, cache, batch, items, true),
        RowName::RedbFloor => redb_row::phase(dir, cache, batch, items),
        RowName::RedbNaive => redb_naive::phase(dir, cache, batch, items),
        RowName::MemFloor
        | RowName::Scaling
        | RowName::SqliteBulk
        | RowName::Sqlite3Shell
        | RowName::ContactdbCli
        | RowName::RedbFloorTxn => bail!("{}: not a storage row", row.label()),
    }
}

fn child(args: &Args, row: RowName) -> Result<()> {
    let dir = args.dir.clone().context("--dir is required with --row")?;
    std::fs::create_dir_all(&dir)?;
    set_written_mark(bulk::Io::now());
    let cache = cache_bytes(args);
    let n = args.records;
    let order = args.child_order;
    if row == RowName::Scaling {
        scaling_child(args, &dir)?;
    } else if matches!(
        row,
        RowName::SqliteBulk | RowName::Sqlite3Shell | RowName::ContactdbCli | RowName::RedbFloorTxn
    ) {
        bulk_child(args, row, &dir)?;
    } else {
        let load = matches!(args.phase, Phase::Load | Phase::Both);
        let upsert = matches!(args.phase, Phase::Upsert | Phase::Both);
        let storage = |items: &[workload::Item]| {
            storage_phase(row, &dir, cache, args.batch, args.commit_records, items)
        };
        if row == RowName::MemFloor {
            let mut m = mem_row::MemFloor::default();
            let out = m.phase(args.batch, &load_items(n, order))?;
            report_phase("load", out, None);
            let out = m.phase(args.batch, &upsert_items(n, n, n, 1, order))?;
            report_phase("upsert", out, None);
        } else {
            if load {
                let out = storage(&load_items(n, order))?;
                report_phase("load", out, Some(&dir));
                print_breakdown(args, row, &dir, "load")?;
                compact_phase(args, row, &dir, "load", n)?;
            }
            if upsert {
                let out = storage(&upsert_items(n, n, n, 1, order))?;
                report_phase("upsert", out, Some(&dir));
                print_breakdown(args, row, &dir, "upsert")?;
                compact_phase(args, row, &dir, "upsert", n)?;
            }
        }
    }
    println!("RSS {}", peak_rss_kib().map_or(-1, |k| k as i64));
    Ok(())
}

/// A bulk row's phases: each reads the CSV file the parent wrote for it (the
/// redb floor gets the records pre-normalized, as the other floors do).
fn bulk_child(args: &Args, row: RowName, dir: &Path) -> Result<()> {
    let cache = cache_bytes(args);
    let n = args.records;
    let order = args.child_order;
    let timeout = Duration::from_secs(args.timeout_secs);
    let cli = match row {
        RowName::ContactdbCli => {
            match bulk::contactdb_cli::program(args.contactdb_bin.as_deref()) {
                Some(p) => Some(p),
                None => {
                    println!(
                        "SKIP contactdb-cli: no release contactdb binary; build it with: {}",
                        bulk::contactdb_cli::BUILD_HINT
                    );
                    return Ok(());
                }
            }
        }
        RowName::Sqlite3Shell if bulk::sqlite3_shell::program().is_none() => {
            println!("SKIP sqlite3-shell: sqlite3 is not on PATH");
            return Ok(());
        }
        _ => None,
    };
    if let Some(p) = &cli {
        println!("NOTE contactdb-cli runs {}", p.display());
    }
    let input = |phase: &str, flavor| -> Result<PathBuf> {
        let d = args
            .input_dir
            .as_deref()
            .context("--input-dir is required")?;
        let p = bulk::input_path(d, n, order, phase, flavor);
        ensure!(p.is_file(), "missing input {}", p.display());
        Ok(p)
    };
    let commit_every = args.floor_commit_every.first().copied().unwrap_or(0);
    for phase in ["load", "upsert"] {
        let wanted = match args.phase {
            Phase::Both => true,
            Phase::Load => phase == "load",
            Phase::Upsert => phase == "upsert",
        };
        if !wanted {
            continue;
        }
        let items = &if phase == "load" {
            load_items(n, order)
        } else {
            upsert_items(n, n, n, 1, order)
        };
        let out = match row {
            RowName::SqliteBulk => {
                bulk::sqlite_bulk::phase(dir, cache, &input(phase, bulk::Flavor::Sqlite)?, items)?
            }
            RowName::Sqlite3Shell => bulk::sqlite3_shell::phase(
                dir,
                cache,
                &input(phase, bulk::Flavor::Sqlite)?,
                items,
                timeout,
            )?,
            RowName::ContactdbCli => bulk::contactdb_cli::phase(
                &bulk::contactdb_cli::Cli {
                    program: cli.as_deref().context("no contactdb binary")?,
                    batch: args.batch,
                    match_on: &args.cli_match,
                    timeout,
                },
                dir,
                cache,
                &input(phase, bulk::Flavor::Raw)?,
                items,
            )?,
            _ => bulk::redb_floor_txn::phase(dir, cache, commit_every, items)?,
        };
        report_phase(phase, out, Some(dir));
        print_breakdown(args, row, dir, phase)?;
    }
    Ok(())
}

/// With `--compact`, for the contactdb row: the file compacted after `phase`,
/// reported as the phase `<phase>_compact` (then broken down with `--breakdown`).
fn compact_phase(args: &Args, row: RowName, dir: &Path, phase: &str, records: u64) -> Result<()> {
    if !args.compact || row != RowName::Contactdb {
        return Ok(());
    }
    let started = std::time::Instant::now();
    contactdb::Database::builder()
        .cache_size_bytes(cache_bytes(args))
        .compact_file(dir.join(rows::contactdb_row::FILE))?;
    let out = PhaseOut {
        elapsed: started.elapsed(),
        records,
        ..PhaseOut::default()
    };
    let name = format!("{phase}_compact");
    report_phase(&name, out, Some(dir));
    print_breakdown(args, row, dir, &name)
}

/// With `--breakdown`, for the contactdb rows: where the file's bytes go after
/// `phase`, as notes (untimed; the file is read, not written).
fn print_breakdown(args: &Args, row: RowName, dir: &Path, phase: &str) -> Result<()> {
    if !args.breakdown || !matches!(row, RowName::Contactdb | RowName::ContactdbCli) {
        return Ok(());
    }
    let file = match row {
        RowName::ContactdbCli => bulk::contactdb_cli::FILE,
        _ => rows::contactdb_row::FILE,
    };
    for line in breakdown::notes(&dir.join(file), phase)? {
        println!("NOTE {line}");
    }
    Ok(())
}

/// One base size: load `--records` contacts (shuffled, 10k per request), then for
/// each batch size upsert `--scaling-records` records (half updates, half new).
fn scaling_child(args: &Args, dir: &Path) -> Result<()> {
    let cache = cache_bytes(args);
    let base = args.records;
    let batch_max = args.scaling_batches.iter().copied().max().unwrap_or(10_000);
    // Each measurement: its batch size and its records (at most `base` updates, the
    // rest new contacts numbered after every earlier one).
    let mut next_new = base;
    let measurements = (1u64..).zip(&args.scaling_batches).map(|(g, &batch)| {
        let count = args.scaling_records;
        let items = upsert_items(base, count, next_new, g, Order::Shuffled);
        // As `upsert_items` splits them: at most `base` updates, the rest new.
        let new = count - (count / 2).min(base);
        debug_assert_eq!(items.iter().filter(|it| !it.exists).count() as u64, new);
        next_new += new;
        (batch, items)
    });
    let row = args.scaling_row;
    if row != RowName::Contactdb {
        // The peers open and close their file for the load and for each measurement
        // (they keep nothing in memory between transactions but their page cache).
        let load = storage_phase(
            row,
            dir,
            cache,
            10_000,
            0,
            &load_items(base, Order::Shuffled),
        )?;
        report_phase("load", load, Some(dir));
        for (batch, items) in measurements {
            let out = storage_phase(row, dir, cache, batch, 0, &items)?;
            report_phase(&format!("batch{batch}"), out, Some(dir));
        }
        return Ok(());
    }
    // One database for the load and every measurement, as a long-running program
    // keeps it: what it builds in memory (the lookup filters) is built once, during
    // the load, instead of again for each measurement.
    let mut clock = rows::Clock::default();
    let db = clock.time(|| contactdb_row::open(dir, cache, batch_max))?;
    if !(args.reuse_base && base > 0 && db.workspace("default")?.count()? == base) {
        let load =
            contactdb_row::requests(&db, 10_000, 0, &load_items(base, Order::Shuffled), clock)?;
        report_phase("load", load, Some(dir));
    }
    for (batch, items) in measurements {
        let out = contactdb_row::requests(&db, batch, 0, &items, rows::Clock::default())?;
        report_phase(&format!("batch{batch}"), out, Some(dir));
    }
    drop(db);
    Ok(())
}

// ---------------------------------------------------------------------------------
// parent side

/// One phase as a child reported it.
#[derive(Debug, Clone)]
struct PhaseResult {
    name: String,
    out: PhaseOut,
    /// The database files' size at the phase's end.
    file_bytes: Option<u64>,
    /// The disk those files take then (allocated blocks).
    disk_bytes: Option<u64>,
    /// Bytes the row passed to `write`-family calls during the phase (`wchar`).
    written: Option<u64>,
    /// Bytes the row caused to be sent to storage during the phase (`write_bytes`).
    write_bytes: Option<u64>,
    /// Peak resident set at the phase's end (the row's process so far, or the
    /// phase's external process), KiB.
    rss_kib: Option<u64>,
}

impl PhaseResult {
    /// KiB written per record of the phase.
    fn written_kib_per_record(&self) -> Option<f64> {
        self.written
            .map(|w| w as f64 / 1024.0 / self.out.records.max(1) as f64)
    }

    /// [`Self::written_kib_per_record`] for the tables.
    fn written_column(&self) -> String {
        self.written_kib_per_record()
            .map_or_else(|| "-".to_owned(), |k| format!("{k:.2}"))
    }

    fn rate(&self) -> f64 {
        self.out.records as f64 / self.out.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Default, Clone)]
struct RowResult {
    phases: Vec<PhaseResult>,
    rss_kib: Option<u64>,
    /// Why the row did not run (a missing program), when it did not.
    skipped: Option<String>,
    /// What the row printed for the reader (the binary it ran).
    notes: Vec<String>,
    /// Why the row has no result although it ran (it ran out of time).
    killed: Option<String>,
}

impl RowResult {
    fn phase(&self, name: &str) -> Option<&PhaseOut> {
        self.phases.iter().find(|p| p.name == name).map(|p| &p.out)
    }

    fn rate(&self, name: &str) -> Option<f64> {
        self.phase(name)
            .map(|p| p.records as f64 / p.elapsed.as_secs_f64().max(1e-9))
    }

    fn total_secs(&self) -> f64 {
        self.phases
            .iter()
            .map(|p| p.out.elapsed.as_secs_f64())
            .sum()
    }
}

/// Runs `cmd` in a process group of its own, with stdout and stderr going to files
/// next to `dir`; after `timeout` the whole group (the child and anything it
/// started) is killed. Returns whether it succeeded (`None`: killed), its stdout
/// and its stderr.
fn run_bounded(
    mut cmd: Command,
    dir: &Path,
    timeout: Duration,
) -> Result<(Option<bool>, String, String)> {
    use std::os::unix::process::CommandExt as _;
    let out_path = dir.with_extension("stdout");
    let err_path = dir.with_extension("stderr");
    cmd.process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?);
    let mut child = cmd.spawn()?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if started.elapsed() > timeout {
            // The group's id is the child's pid (process_group(0)).
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Ok(match status {
        Some(s) => (Some(s.success()), stdout, format!("{s}: {stderr}")),
        None => (None, stdout, stderr),
    })
}

/// Runs one row in a child process of this binary (bounded by `--timeout-secs`)
/// and reads back what it reported.
fn run_child(
    args: &Args,
    base: &Path,
    run: RowRun,
    order: Order,
    records: u64,
    scaling_row: RowName,
) -> Result<RowResult> {
    let dir = base.join(format!(
        "{}-{}-{}-{}-{records}",
        run.row.arg(),
        run.commit_every,
        scaling_row.arg(),
        order.name()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let cmd = child_command(args, base, &dir, run, order, records, scaling_row)?;
    let res = run_bounded(cmd, &dir, Duration::from_secs(args.timeout_secs));
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, stdout, stderr) =
        res.with_context(|| format!("row {} ({})", run.label(), order.name()))?;
    match ok {
        Some(true) => {}
        Some(false) => bail!("row {} ({}) failed: {stderr}", run.label(), order.name()),
        None => {
            return Ok(RowResult {
                killed: Some(killed_message(args.timeout_secs, &stderr)),
                ..RowResult::default()
            });
        }
    }
    let mut r = parse_child_stdout(&stdout)?;
    // The rows that run an external process: its peak, not the wrapper's.
    if matches!(run.row, RowName::Sqlite3Shell | RowName::ContactdbCli) {
        r.rss_kib = r.phases.iter().filter_map(|p| p.rss_kib).max();
    }
    ensure!(
        r.skipped.is_some() || !r.phases.is_empty(),
        "row {} printed no result",
        run.label()
    );
    Ok(r)
}

/// The child's command line: this binary with `--row`, the options it needs and
/// its own database directory `dir`.
fn child_command(
    args: &Args,
    base: &Path,
    dir: &Path,
    run: RowRun,
    order: Order,
    records: u64,
    scaling_row: RowName,
) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--row")
        .arg(run.row.arg())
        .arg("--child-order")
        .arg(order.name())
        .arg("--records")
        .arg(records.to_string())
        .arg("--batch")
        .arg(args.batch.to_string())
        .arg("--cache-mib")
        .arg(args.cache_mib.to_string())
        .arg("--floor-skip")
        .arg(
            args.floor_skip
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_owned()),
        )
        .arg("--scaling-records")
        .arg(args.scaling_records.to_string())
        .arg("--scaling-row")
        .arg(scaling_row.arg())
        .arg("--scaling-batches")
        .arg(
            args.scaling_batches
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .arg("--timeout-secs")
        .arg(args.timeout_secs.to_string())
        .arg("--floor-commit-every")
        .arg(run.commit_every.to_string())
        .arg("--commit-records")
        .arg(args.commit_records.to_string())
        .arg("--cli-match")
        .arg(&args.cli_match)
        .arg("--input-dir")
        .arg(base)
        .arg("--dir")
        .arg(dir);
    if let Some(p) = &args.contactdb_bin {
        cmd.arg("--contactdb-bin").arg(p);
    }
    if args.breakdown {
        cmd.arg("--breakdown");
    }
    if args.compact {
        cmd.arg("--compact");
    }
    Ok(cmd)
}

/// Why a row killed after `timeout_secs` has no result, with the last line it
/// wrote to stderr.
fn killed_message(timeout_secs: u64, stderr: &str) -> String {
    format!(
        "killed after --timeout-secs {timeout_secs}{}",
        stderr
            .lines()
            .last()
            .map_or_else(String::new, |l| format!(" (its last message: {l})"))
    )
}

/// What a child printed: `SKIP`, `NOTE`, one `RESULT` line per phase (as
/// [`report_phase`] prints it) and `RSS`; other lines are ignored.
fn parse_child_stdout(stdout: &str) -> Result<RowResult> {
    let mut r = RowResult::default();
    for line in stdout.lines() {
        if let Some(why) = line.strip_prefix("SKIP ") {
            r.skipped = Some(why.to_owned());
            continue;
        }
        if let Some(note) = line.strip_prefix("NOTE ") {
            r.notes.push(note.to_owned());
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["RSS", kib] => r.rss_kib = kib.parse::<i64>().ok().and_then(|k| u64::try_from(k).ok()),
            f => {
                if let Some(p) = parse_result_line(f)? {
                    r.phases.push(p);
                }
            }
        }
    }
    Ok(r)
}

/// A `RESULT` line's fields (`None`: not a `RESULT` line of [`report_phase`]'s
/// shape). A count of -1 is one the child could not measure.
fn parse_result_line(f: &[&str]) -> Result<Option<PhaseResult>> {
    let [
        "RESULT",
        name,
        secs,
        records,
        bytes,
        median,
        slowest,
        written,
        write_bytes,
        rss,
        disk,
    ] = f
    else {
        return Ok(None);
    };
    let opt = |v: i64| u64::try_from(v).ok();
    let secs: f64 = secs.parse()?;
    Ok(Some(PhaseResult {
        name: (*name).to_owned(),
        out: PhaseOut {
            elapsed: Duration::from_secs_f64(secs),
            records: records.parse()?,
            median_request: Duration::from_secs_f64(median.parse()?),
            slowest_request: Duration::from_secs_f64(slowest.parse()?),
            ..PhaseOut::default()
        },
        file_bytes: opt(bytes.parse()?),
        written: opt(written.parse()?),
        write_bytes: opt(write_bytes.parse()?),
        rss_kib: opt(rss.parse()?),
        disk_bytes: opt(disk.parse()?),
    }))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn temp_base(args: &Args) -> PathBuf {
    args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("contactdb-bench-compare-{}", std::process::id()))
    })
}

fn parent(args: &Args) -> Result<()> {
    ensure!(args.records >= 2, "--records must be at least 2");
    ensure!(args.batch >= 1, "--batch must be at least 1");
    ensure!(
        args.scaling || args.floor_skip == rows::FloorSkip::None,
        "--floor-skip measures parts of the floor in a --scaling run; the comparison's \
         ratios need the whole floor"
    );
    ensure!(
        args.records < workload::INDEX_MAX / 2,
        "--records must be below {}",
        workload::INDEX_MAX / 2
    );
    self_check()?;
    let base = temp_base(args);
    std::fs::create_dir_all(&base)?;
    let res = if args.scaling {
        scaling(args, &base)
    } else {
        compare(args, &base)
    };
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    res
}

/// The generator's normalized values must be exactly what contactdb stores.
fn self_check() -> Result<()> {
    use contactdb_policy::normalize::{normalize_email, normalize_phone};
    for i in 0..2_000u64 {
        for g in 0..3 {
            let p = workload::person(i, g);
            ensure!(
                normalize_email(&p.raw_email).ok().as_deref() == Some(p.norm.email.as_str()),
                "generator: email {} normalizes differently",
                p.raw_email
            );
            ensure!(
                normalize_phone(&p.raw_gsm).ok().as_deref() == Some(p.norm.gsm.as_str()),
                "generator: phone {} normalizes differently",
                p.raw_gsm
            );
            ensure!(
                p.raw_status.to_uppercase() == p.norm.status,
                "generator: status"
            );
        }
    }
    Ok(())
}

/// The runs of the comparison: the rows asked for (all by default), the reference
/// row first, `redb-floor-txn` once per `--floor-commit-every` value.
fn runs(args: &Args) -> Vec<RowRun> {
    let mut rows: Vec<RowName> = if args.rows.is_empty() {
        ALL_ROWS.to_vec()
    } else {
        args.rows
            .iter()
            .copied()
            .filter(|r| *r != RowName::Scaling)
            .collect()
    };
    rows.dedup();
    // Stable: the reference first, the rest in the order given.
    rows.sort_by_key(|r| *r != REFERENCE);
    let mut out = Vec::new();
    for row in rows {
        if row == RowName::RedbFloorTxn {
            for &n in &args.floor_commit_every {
                out.push(RowRun {
                    row,
                    commit_every: n,
                });
            }
        } else {
            out.push(RowRun {
                row,
                commit_every: 0,
            });
        }
    }
    out
}

/// The raw-results CSV (`--csv`).
struct CsvOut {
    w: csv::Writer<std::fs::File>,
}

impl CsvOut {
    fn create(path: &Path) -> Result<CsvOut> {
        let mut w = csv::Writer::from_path(path).with_context(|| format!("{}", path.display()))?;
        w.write_record([
            "row",
            "order",
            "phase",
            "records",
            "batch",
            "cache_mib",
            "seconds",
            "records_per_s",
            "ratio_vs_sqlite_bulk",
            "peak_rss_kib",
            "written_bytes",
            "written_bytes_per_record",
            "write_bytes",
            "file_bytes",
            "file_disk_bytes",
        ])?;
        Ok(CsvOut { w })
    }

    fn row(
        &mut self,
        args: &Args,
        run: RowRun,
        order: Order,
        p: &PhaseResult,
        ratio: Option<f64>,
    ) -> Result<()> {
        let opt = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        let records = p.out.records;
        self.w.write_record([
            run.label(),
            order.name().to_owned(),
            p.name.clone(),
            records.to_string(),
            if run.row == RowName::RedbFloorTxn {
                run.commit_every.to_string()
            } else {
                args.batch.to_string()
            },
            args.cache_mib.to_string(),
            format!("{:.4}", p.out.elapsed.as_secs_f64()),
            format!("{:.0}", p.rate()),
            ratio.map_or_else(String::new, |r| format!("{r:.3}")),
            opt(p.rss_kib),
            opt(p.written),
            p.written.map_or_else(String::new, |w| {
                format!("{:.1}", w as f64 / records.max(1) as f64)
            }),
            opt(p.write_bytes),
            opt(p.file_bytes),
            opt(p.disk_bytes),
        ])?;
        self.w.flush()?;
        Ok(())
    }
}

/// Bytes of each phase's input as a JSON array, as an export would ship them (the
/// same for both orders).
#[derive(Debug, Clone, Copy)]
struct InputBytes {
    load: u64,
    upsert: u64,
}

impl InputBytes {
    fn of_workload(n: u64) -> InputBytes {
        InputBytes {
            load: workload::json_bytes(&load_items(n, Order::Sorted)),
            upsert: workload::json_bytes(&upsert_items(n, n, n, 1, Order::Sorted)),
        }
    }

    fn phase(self, phase: &str) -> u64 {
        if phase == "load" {
            self.load
        } else {
            self.upsert
        }
    }
}

fn compare(args: &Args, base: &Path) -> Result<()> {
    let n = args.records;
    let runs = runs(args);
    // Each row's x_ref needs the reference's rates: when it runs, it runs first.
    debug_assert!(runs.iter().skip(1).all(|r| r.row != REFERENCE));
    let mut csv_out = args.csv.as_deref().map(CsvOut::create).transpose()?;
    // Rows that ran out of time: the others still run; the run fails at the end.
    let mut killed: Vec<String> = Vec::new();
    let input = InputBytes::of_workload(n);
    let orders: &[Order] = match args.order {
        OrderArg::Shuffled => &[Order::Shuffled],
        OrderArg::Sorted => &[Order::Sorted],
        OrderArg::Both => &[Order::Shuffled, Order::Sorted],
    };
    print_compare_notes(args);
    let bulk_inputs = runs.iter().any(|r| {
        matches!(
            r.row,
            RowName::SqliteBulk | RowName::Sqlite3Shell | RowName::ContactdbCli
        )
    });
    for &order in orders {
        let csv_sizes = if bulk_inputs {
            write_bulk_inputs(base, n, order)?
        } else {
            Vec::new()
        };
        println!();
        print_workload(args, order, input, &csv_sizes);
        print_table_header();
        let mut results: Vec<(RowRun, RowResult)> = Vec::new();
        for &run in &runs {
            let r = run_child(args, base, run, order, n, RowName::Contactdb)?;
            if let Some(why) = &r.skipped {
                println!("{:<22} skipped: {why}", run.label());
                continue;
            }
            if let Some(why) = &r.killed {
                println!("{:<22} no result: {why}", run.label());
                killed.push(format!("{} ({})", run.label(), order.name()));
                continue;
            }
            for note in &r.notes {
                println!("# {note}");
            }
            let reference = result_of(&results, REFERENCE);
            for p in &r.phases {
                let ratio = if run.row == REFERENCE {
                    Some(1.0)
                } else {
                    reference
                        .and_then(|res| res.rate(&p.name))
                        .map(|refr| p.rate() / refr.max(1e-9))
                };
                print_phase_line(run, p, input.phase(&p.name), ratio);
                if let Some(c) = &mut csv_out {
                    c.row(args, run, order, p, ratio)?;
                }
            }
            let _ = std::io::stdout().flush();
            results.push((run, r));
        }
        print_reference_ratios(order, &results);
        print_contactdb_ratios(order, &results);
    }
    ensure!(
        killed.is_empty(),
        "rows killed after --timeout-secs {}: {}",
        args.timeout_secs,
        killed.join(", ")
    );
    Ok(())
}

/// What the comparison measures and how, printed once before the tables.
fn print_compare_notes(args: &Args) {
    let n = args.records;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "notes: contactdb receives raw JSON records (mixed-case emails, formatted phones) and \
         normalizes + validates them (mode=upsert, match_on=[key,email,phone], on_invalid=skip, \
         {threads} merge threads); SQLite and the floors receive the same values pre-normalized \
         by the generator (untimed). Generation of records is never timed; each phase's time is \
         open + every batch + close. Upsert pass: {} updates of existing contacts (email, name, \
         phone changed) + {} new contacts. contactdb and the redb rows fsync every commit (redb \
         default durability); SQLite runs WAL with synchronous=NORMAL (no fsync per commit, \
         fsync at checkpoints), the same cache budget (the per-batch rows with \
         temp_store=MEMORY), and its close \
         (final checkpoint) is timed. ratio = contactdb records/s ÷ peer records/s (>1 = \
         contactdb faster).",
        n / 2,
        n - n / 2
    );
    println!(
        "bulk rows: each phase reads a CSV file written before the run (untimed) and is timed \
         end to end: sqlite_bulk (rusqlite: csv crate -> one transaction of prepared INSERTs \
         into a TEMP staging table, then one INSERT … SELECT … ON CONFLICT DO UPDATE with \
         trim/lower/upper in SQL; emails raw, phones pre-normalized), sqlite3_shell (the same \
         statements with .import --csv, the sqlite3 process timed from spawn to exit), \
         contactdb_cli (`contactdb import --mode upsert --match {}` on the raw CSV, timed the \
         same way), redb_floor_txn (plain redb tables key -> row, email -> key, phone -> key; \
         one write transaction per phase, or per N records as redb_floor_txn/N). x_ref = \
         records/s ÷ sqlite_bulk's. written = bytes passed to write calls (wchar, /proc io of \
         the row's process and its reaped children); dirtied = write_bytes of the same (page-cache \
         pages made dirty, so a region rewritten before writeback counts once); peak RSS of the external processes from \
         /usr/bin/time (wait4's ru_maxrss).",
        args.cli_match
    );
}

/// The CSV inputs of the bulk rows (untimed; the same files for every row): their
/// sizes, load raw, load sqlite, upsert raw, upsert sqlite.
fn write_bulk_inputs(base: &Path, n: u64, order: Order) -> Result<Vec<u64>> {
    let mut csv_sizes = Vec::new();
    for (phase, items) in [
        ("load", load_items(n, order)),
        ("upsert", upsert_items(n, n, n, 1, order)),
    ] {
        for flavor in [bulk::Flavor::Raw, bulk::Flavor::Sqlite] {
            let path = bulk::input_path(base, n, order, phase, flavor);
            csv_sizes.push(bulk::write_csv(&path, &items, flavor)?);
        }
    }
    Ok(csv_sizes)
}

/// The workload line above an order's table.
fn print_workload(args: &Args, order: Order, input: InputBytes, csv_sizes: &[u64]) {
    println!(
        "workload: N={} {}, batch={}, cache={}MiB, input {:.0} MB JSON (load {:.0} MB + upsert {:.0} MB){}",
        args.records,
        order.name(),
        args.batch,
        args.cache_mib,
        (input.load + input.upsert) as f64 / 1e6,
        input.load as f64 / 1e6,
        input.upsert as f64 / 1e6,
        match csv_sizes {
            [lr, ls, ur, us] => format!(
                ", CSV load {:.0} MB + upsert {:.0} MB (raw) / {:.0} + {:.0} MB (sqlite)",
                *lr as f64 / 1e6,
                *ur as f64 / 1e6,
                *ls as f64 / 1e6,
                *us as f64 / 1e6
            ),
            _ => String::new(),
        }
    );
}

fn print_table_header() {
    println!(
        "{:<22} {:<7} {:>11} {:>8} {:>9} {:>7} {:>13} {:>9} {:>9} {:>11} {:>13} {:>11}",
        "row",
        "phase",
        "records/s",
        "MB/s",
        "secs",
        "x_ref",
        "peak_rss_MiB",
        "file_MiB",
        "disk_MiB",
        "written_MiB",
        "written_KiB/r",
        "dirtied_MiB"
    );
}

/// One (row, phase) line of the table; `input` is the phase's JSON bytes, `ratio`
/// its records/s over the reference's.
fn print_phase_line(run: RowRun, p: &PhaseResult, input: u64, ratio: Option<f64>) {
    let out = &p.out;
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{:<22} {:<7} {:>11.0} {:>8.1} {:>9.2} {:>7} {:>13} {:>9} {:>9} {:>11} {:>13} {:>11}",
        run.label(),
        p.name,
        p.rate(),
        input as f64 / 1e6 / secs,
        out.elapsed.as_secs_f64(),
        ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
        p.rss_kib
            .map_or_else(|| "-".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0)),
        p.file_bytes
            .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", mib(b))),
        p.disk_bytes
            .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", mib(b))),
        p.written
            .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", mib(b))),
        p.written_column(),
        p.write_bytes
            .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", mib(b))),
    );
}

/// The result of `row` among an order's results.
fn result_of(results: &[(RowRun, RowResult)], row: RowName) -> Option<&RowResult> {
    results.iter().find(|(r, _)| r.row == row).map(|(_, r)| r)
}

/// `load=… upsert=…`: `a`'s records/s over `b`'s, per phase.
fn ratio_line(a: &RowResult, b: &RowResult) -> String {
    let f = |phase| match (a.rate(phase), b.rate(phase)) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "-".to_owned(),
    };
    format!("load={} upsert={}", f("load"), f("upsert"))
}

/// Every other row's ratio to the reference row, when the reference ran.
fn print_reference_ratios(order: Order, results: &[(RowRun, RowResult)]) {
    let Some(reference) = result_of(results, REFERENCE) else {
        return;
    };
    println!(
        "# {}: ratio_vs_sqlite_bulk = row records/s / sqlite_bulk records/s (>1 = faster \
         than sqlite_bulk)",
        order.name()
    );
    for (run, res) in results.iter().filter(|(r, _)| r.row != REFERENCE) {
        println!(
            "ratio_vs_sqlite_bulk {} {}",
            run.label(),
            ratio_line(res, reference)
        );
    }
}

/// contactdb's ratios to the faster per-batch SQLite configuration and to the
/// floors, when contactdb ran.
fn print_contactdb_ratios(order: Order, results: &[(RowRun, RowResult)]) {
    let Some(cdb) = result_of(results, RowName::Contactdb) else {
        return;
    };
    // SQLite: the faster configuration (load + upsert time).
    let sqlite = [RowName::SqliteRowid, RowName::SqliteWithoutRowid]
        .into_iter()
        .filter_map(|r| result_of(results, r).map(|res| (r, res)))
        .min_by(|a, b| a.1.total_secs().total_cmp(&b.1.total_secs()));
    if let Some((name, peer)) = sqlite {
        println!(
            "# {}: sqlite = {} (the faster per-batch SQLite configuration, by load + upsert \
             time); ratio = contactdb records/s / peer records/s",
            order.name(),
            name.label()
        );
        println!("ratio_vs_sqlite {}", ratio_line(cdb, peer));
    }
    if let Some(peer) = result_of(results, RowName::RedbFloor) {
        println!("ratio_vs_redb_floor {}", ratio_line(cdb, peer));
    }
    if let Some(peer) = result_of(results, RowName::MemFloor) {
        println!("ratio_vs_mem_floor {}", ratio_line(cdb, peer));
    }
}

/// One measurement of the scaling table, kept for the ratios.
struct ScalingCell {
    row: RowName,
    batch: String,
    /// Contacts in the file before the measurement.
    base: u64,
    us_per_record: f64,
    written_kib_per_record: Option<f64>,
}

fn scaling(args: &Args, base: &Path) -> Result<()> {
    let mut bases = vec![100_000u64, 1_000_000];
    if args.huge {
        bases.push(10_000_000);
    }
    if !args.scaling_bases.is_empty() {
        bases.clone_from(&args.scaling_bases);
    }
    let rows = scaling_rows(args)?;
    print_scaling_header(args);
    let mut cells: Vec<ScalingCell> = Vec::new();
    for &b in &bases {
        for &row in &rows {
            let r = run_child(
                args,
                base,
                RowRun {
                    row: RowName::Scaling,
                    commit_every: 0,
                },
                Order::Shuffled,
                b,
                row,
            )?;
            if let Some(why) = &r.killed {
                bail!("scaling row {} at {b}: {why}", row.label());
            }
            for p in &r.phases {
                cells.extend(print_scaling_line(row, b, p));
            }
            if let Some(load) = r.phase("load") {
                println!(
                    "{:<14} {:>15} (initial load of {} contacts: {:.0} records/s; peak RSS {} MiB)",
                    row.label(),
                    b,
                    b,
                    load.records as f64 / load.elapsed.as_secs_f64().max(1e-9),
                    r.rss_kib.map_or(-1, |k| (k / 1024) as i64)
                );
            }
            let _ = std::io::stdout().flush();
        }
    }
    print_scaling_ratios(args, &bases, &rows, &cells);
    Ok(())
}

/// The rows of a scaling run (contactdb unless `--rows` names others); refuses
/// the rows it has no child for.
fn scaling_rows(args: &Args) -> Result<Vec<RowName>> {
    let rows: Vec<RowName> = if args.rows.is_empty() {
        vec![RowName::Contactdb]
    } else {
        args.rows.clone()
    };
    for &row in &rows {
        ensure!(
            matches!(
                row,
                RowName::Contactdb
                    | RowName::SqliteRowid
                    | RowName::SqliteWithoutRowid
                    | RowName::RedbFloor
            ),
            "--scaling runs contactdb, sqlite-rowid, sqlite-without-rowid and redb-floor, not {}",
            row.arg()
        );
    }
    Ok(rows)
}

fn print_scaling_header(args: &Args) {
    println!(
        "scaling: upsert cost per record (shuffled; {} records per measurement, half updates \
         of existing contacts, half new; contactdb: match_on=[key,email,phone], one database \
         open for the load and every measurement; peers: opened and closed per measurement; \
         cache={}MiB; floor_skip={:?}; written = bytes passed to write calls, per record)",
        args.scaling_records, args.cache_mib, args.floor_skip
    );
    println!(
        "{:<14} {:>15} {:>8} {:>9} {:>11} {:>12} {:>9} {:>10} {:>10} {:>13}",
        "row",
        "contacts_before",
        "batch",
        "records",
        "records/s",
        "us/record",
        "file_MiB",
        "median_ms",
        "slowest_ms",
        "written_KiB/r"
    );
}

/// The table line of a `batch<size>` phase of `row` over `b` contacts (`None` for
/// any other phase, the load).
fn print_scaling_line(row: RowName, b: u64, p: &PhaseResult) -> Option<ScalingCell> {
    let batch = p.name.strip_prefix("batch")?;
    let out = &p.out;
    let secs = out.elapsed.as_secs_f64();
    let us = secs * 1e6 / out.records.max(1) as f64;
    // Only the contactdb child times its requests one by one.
    let median = |d: Duration| {
        if row == RowName::Contactdb {
            format!("{:.1}", d.as_secs_f64() * 1e3)
        } else {
            "-".to_owned()
        }
    };
    println!(
        "{:<14} {:>15} {:>8} {:>9} {:>11.0} {:>12.2} {:>9} {:>10} {:>10} {:>13}",
        row.label(),
        b,
        batch,
        out.records,
        out.records as f64 / secs.max(1e-9),
        us,
        p.file_bytes
            .map_or_else(|| "-".to_owned(), |x| format!("{:.1}", mib(x))),
        median(out.median_request),
        median(out.slowest_request),
        p.written_column(),
    );
    Some(ScalingCell {
        row,
        batch: batch.to_owned(),
        base: b,
        us_per_record: us,
        written_kib_per_record: p.written_kib_per_record(),
    })
}

/// Each row's cost at the largest base over its cost at the smallest, per batch
/// (nothing with a single base).
fn print_scaling_ratios(args: &Args, bases: &[u64], rows: &[RowName], cells: &[ScalingCell]) {
    let (Some(&small), Some(&large)) = (bases.iter().min(), bases.iter().max()) else {
        return;
    };
    if small == large {
        return;
    }
    for &row in rows {
        for batch in &args.scaling_batches {
            let cell = |b: u64| {
                cells
                    .iter()
                    .find(|c| c.row == row && c.batch == batch.to_string() && c.base == b)
            };
            if let (Some(s), Some(l)) = (cell(small), cell(large)) {
                let written = match (s.written_kib_per_record, l.written_kib_per_record) {
                    (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                    _ => "-".to_owned(),
                };
                println!(
                    "scaling_ratio row={} batch={batch} {large}/{small}: us_per_record={:.2} \
                     written_per_record={written}",
                    row.arg(),
                    l.us_per_record / s.us_per_record.max(1e-9),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_stdout_is_read_back() -> Result<()> {
        let r = parse_child_stdout(
            "NOTE contactdb-cli runs /bin/contactdb\n\
             RESULT load 1.5 1000 4096 0.25 0.5 8192 -1 2048 2560\n\
             RESULT upsert 1.5 1000\n\
             something else\n\
             RSS 3072\n",
        )?;
        assert_eq!(r.notes, ["contactdb-cli runs /bin/contactdb"]);
        assert_eq!(r.skipped, None);
        assert_eq!(r.rss_kib, Some(3072));
        // The short RESULT line is not one of report_phase's: ignored.
        assert_eq!(r.phases.len(), 1);
        let p = &r.phases[0];
        assert_eq!(p.name, "load");
        assert_eq!(p.out.elapsed, Duration::from_millis(1500));
        assert_eq!(p.out.records, 1000);
        assert_eq!(p.out.median_request, Duration::from_millis(250));
        assert_eq!(p.out.slowest_request, Duration::from_millis(500));
        assert_eq!(p.file_bytes, Some(4096));
        assert_eq!(p.written, Some(8192));
        // -1: not measured.
        assert_eq!(p.write_bytes, None);
        assert_eq!(p.rss_kib, Some(2048));
        assert_eq!(p.disk_bytes, Some(2560));
        Ok(())
    }

    #[test]
    fn skipped_row_and_bad_numbers() {
        let r = parse_child_stdout("SKIP sqlite3-shell: sqlite3 is not on PATH\n");
        assert!(
            matches!(r, Ok(RowResult { skipped: Some(ref s), .. }) if s.starts_with("sqlite3-shell"))
        );
        assert!(parse_child_stdout("RESULT load x 1 1 1 1 1 1 1 1\n").is_err());
    }

    #[test]
    fn killed_message_names_the_last_line() {
        assert_eq!(
            killed_message(5, "first\nlast words\n"),
            "killed after --timeout-secs 5 (its last message: last words)"
        );
        assert_eq!(killed_message(5, ""), "killed after --timeout-secs 5");
    }
}
