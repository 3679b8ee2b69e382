//! contactdb-bench-compare: contactdb against SQLite upserts and against the floors
//! of the storage underneath, on the same deterministic workload, in one run.
//!
//! Every row runs in a child process of this binary (a hidden `--row NAME`), so each
//! row's peak RSS is its own (VmHWM of the child, read by the child at its end).

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
    Contactdb,
    SqliteRowid,
    SqliteWithoutRowid,
    /// The store's physical layout written directly (the floor).
    RedbFloor,
    /// Plain redb tables keyed by contact key (format 1's layout).
    RedbNaive,
    MemFloor,
    /// The scaling table's child (its row is `--scaling-row`).
    Scaling,
}

impl RowName {
    fn label(self) -> &'static str {
        match self {
            RowName::Contactdb => "contactdb",
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
            RowName::Contactdb => "contactdb",
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
    RowName::Contactdb,
    RowName::SqliteRowid,
    RowName::SqliteWithoutRowid,
    RowName::RedbFloor,
    RowName::RedbNaive,
    RowName::MemFloor,
];

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
    /// Frozen index entries moved into the base per entry a request writes
    /// (contactdb and the redb floor; 0 moves a full mid table into the base in one
    /// request).
    #[arg(long, default_value_t = contactdb_store::tiered::DRAIN_PER_WRITE)]
    drain_per_write: u64,
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

    // Child-process arguments (internal).
    #[arg(long, value_enum, hide = true)]
    row: Option<RowName>,
    #[arg(long, value_enum, hide = true, default_value_t = Order::Shuffled)]
    child_order: Order,
    #[arg(long, value_enum, hide = true, default_value_t = Phase::Both)]
    phase: Phase,
    #[arg(long, value_enum, hide = true, default_value_t = RowName::Contactdb)]
    scaling_row: RowName,
}

/// Every row (contactdb, SQLite's Rust side, the floors) runs with the same
/// allocator; see docs/performance.md for glibc malloc vs mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    rows::set_row_options(rows::RowOptions {
        drain_per_write: args.drain_per_write,
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

/// Bytes this process has passed to `write`-family calls so far (`wchar` of
/// /proc/self/io: every thread's `pwrite`s of pages, WAL and checkpoint writes
/// alike); `None` where the kernel does not report it.
fn written_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = s.lines().find(|l| l.starts_with("wchar:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `written_bytes` at the end of the last reported phase (at the child's start
/// before the first).
static WRITTEN_MARK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Prints one phase's result line for the parent. The bytes written are those since
/// the last phase reported: the phase's open, writes and close (and its untimed
/// checks and record generation, which write nothing).
fn report_phase(name: &str, out: PhaseOut, dir: Option<&Path>) {
    use std::sync::atomic::Ordering;
    let written = written_bytes().map_or(-1, |now| {
        let before = WRITTEN_MARK.swap(now, Ordering::Relaxed);
        i64::try_from(now.saturating_sub(before)).unwrap_or(-1)
    });
    println!(
        "RESULT {name} {} {} {} {} {} {written}",
        out.elapsed.as_secs_f64(),
        out.records,
        dir.map_or(-1, |d| i64::try_from(dir_size(d)).unwrap_or(-1)),
        out.median_request.as_secs_f64(),
        out.slowest_request.as_secs_f64(),
    );
}

/// One phase of a storage row (everything but the in-memory floor): open, every
/// batch of `items`, close.
fn storage_phase(
    row: RowName,
    dir: &Path,
    cache: usize,
    batch: usize,
    items: &[workload::Item],
) -> Result<PhaseOut> {
    match row {
        RowName::Contactdb => contactdb_row::phase(dir, cache, batch, items),
        RowName::SqliteRowid => sqlite_row::phase(dir, cache, batch, items, false),
        RowName::SqliteWithoutRowid => sqlite_row::phase(dir, cache, batch, items, true),
        RowName::RedbFloor => redb_row::phase(dir, cache, batch, items),
        RowName::RedbNaive => redb_naive::phase(dir, cache, batch, items),
        RowName::MemFloor | RowName::Scaling => bail!("{}: not a storage row", row.label()),
    }
}

fn child(args: &Args, row: RowName) -> Result<()> {
    let dir = args.dir.clone().context("--dir is required with --row")?;
    std::fs::create_dir_all(&dir)?;
    WRITTEN_MARK.store(
        written_bytes().unwrap_or(0),
        std::sync::atomic::Ordering::Relaxed,
    );
    let cache = cache_bytes(args);
    let n = args.records;
    let order = args.child_order;
    if row == RowName::Scaling {
        scaling_child(args, &dir)?;
    } else {
        let load = matches!(args.phase, Phase::Load | Phase::Both);
        let upsert = matches!(args.phase, Phase::Upsert | Phase::Both);
        let storage = |items: &[workload::Item]| storage_phase(row, &dir, cache, args.batch, items);
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
            }
            if upsert {
                let out = storage(&upsert_items(n, n, n, 1, order))?;
                report_phase("upsert", out, Some(&dir));
            }
        }
    }
    println!("RSS {}", peak_rss_kib().map_or(-1, |k| k as i64));
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
        next_new += count - (count / 2).min(base);
        (batch, items)
    });
    let row = args.scaling_row;
    if row != RowName::Contactdb {
        // The peers open and close their file for the load and for each measurement
        // (they keep nothing in memory between transactions but their page cache).
        let load = storage_phase(row, dir, cache, 10_000, &load_items(base, Order::Shuffled))?;
        report_phase("load", load, Some(dir));
        for (batch, items) in measurements {
            let out = storage_phase(row, dir, cache, batch, &items)?;
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
        let load = contactdb_row::requests(&db, 10_000, &load_items(base, Order::Shuffled), clock)?;
        report_phase("load", load, Some(dir));
    }
    for (batch, items) in measurements {
        let out = contactdb_row::requests(&db, batch, &items, rows::Clock::default())?;
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
    /// Bytes the child passed to `write`-family calls during the phase.
    written: Option<u64>,
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
}

#[derive(Debug, Default, Clone)]
struct RowResult {
    phases: Vec<PhaseResult>,
    rss_kib: Option<u64>,
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

fn run_child(
    args: &Args,
    base: &Path,
    row: RowName,
    order: Order,
    records: u64,
    scaling_row: RowName,
) -> Result<RowResult> {
    let dir = base.join(format!(
        "{}-{}-{}-{records}",
        row.arg(),
        scaling_row.arg(),
        order.name()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--row")
        .arg(row.arg())
        .arg("--child-order")
        .arg(order.name())
        .arg("--records")
        .arg(records.to_string())
        .arg("--batch")
        .arg(args.batch.to_string())
        .arg("--cache-mib")
        .arg(args.cache_mib.to_string())
        .arg("--drain-per-write")
        .arg(args.drain_per_write.to_string())
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
        .arg("--dir")
        .arg(&dir)
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "row {} ({}) failed: {}\n{}",
            row.label(),
            order.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut r = RowResult::default();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [
                "RESULT",
                name,
                secs,
                records,
                bytes,
                median,
                slowest,
                written,
            ] => {
                let secs: f64 = secs.parse()?;
                let bytes: i64 = bytes.parse()?;
                let written: i64 = written.parse()?;
                r.phases.push(PhaseResult {
                    name: (*name).to_owned(),
                    out: PhaseOut {
                        elapsed: Duration::from_secs_f64(secs),
                        records: records.parse()?,
                        median_request: Duration::from_secs_f64(median.parse()?),
                        slowest_request: Duration::from_secs_f64(slowest.parse()?),
                    },
                    file_bytes: u64::try_from(bytes).ok(),
                    written: u64::try_from(written).ok(),
                });
            }
            ["RSS", kib] => r.rss_kib = kib.parse::<i64>().ok().and_then(|k| u64::try_from(k).ok()),
            _ => {}
        }
    }
    ensure!(
        !r.phases.is_empty(),
        "row {} printed no result",
        row.label()
    );
    Ok(r)
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

fn compare(args: &Args, base: &Path) -> Result<()> {
    let n = args.records;
    let rows: Vec<RowName> = if args.rows.is_empty() {
        ALL_ROWS.to_vec()
    } else {
        args.rows
            .iter()
            .copied()
            .filter(|r| *r != RowName::Scaling)
            .collect()
    };
    // Input size: the records as a JSON array, as an export would ship them (the same
    // for both orders).
    let load_bytes = workload::json_bytes(&load_items(n, Order::Sorted));
    let upsert_bytes = workload::json_bytes(&upsert_items(n, n, n, 1, Order::Sorted));
    let orders: &[Order] = match args.order {
        OrderArg::Shuffled => &[Order::Shuffled],
        OrderArg::Sorted => &[Order::Sorted],
        OrderArg::Both => &[Order::Shuffled, Order::Sorted],
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "notes: contactdb receives raw JSON records (mixed-case emails, formatted phones) and \
         normalizes + validates them (mode=upsert, match_on=[key,email,phone], on_invalid=skip, \
         {threads} merge threads); SQLite and the floors receive the same values pre-normalized \
         by the generator (untimed). Generation of records is never timed; each phase's time is \
         open + every batch + close. Upsert pass: {} updates of existing contacts (email, name, \
         phone changed) + {} new contacts. contactdb and redb_floor fsync every commit (redb \
         default durability); SQLite runs WAL with synchronous=NORMAL (no fsync per commit, \
         fsync at checkpoints), temp_store=MEMORY, the same cache budget, and its close \
         (final checkpoint) is timed. ratio = contactdb records/s ÷ peer records/s (>1 = \
         contactdb faster).",
        n / 2,
        n - n / 2
    );
    for &order in orders {
        println!();
        println!(
            "workload: N={n} {}, batch={}, cache={}MiB, input {:.0} MB JSON (load {:.0} MB + upsert {:.0} MB)",
            order.name(),
            args.batch,
            args.cache_mib,
            (load_bytes + upsert_bytes) as f64 / 1e6,
            load_bytes as f64 / 1e6,
            upsert_bytes as f64 / 1e6,
        );
        println!(
            "{:<18} {:<7} {:>11} {:>8} {:>9} {:>13} {:>9} {:>13}",
            "row",
            "phase",
            "records/s",
            "MB/s",
            "secs",
            "peak_rss_MiB",
            "file_MiB",
            "written_KiB/r"
        );
        let mut results: Vec<(RowName, RowResult)> = Vec::new();
        for &row in &rows {
            let r = run_child(args, base, row, order, n, RowName::Contactdb)?;
            for p in &r.phases {
                let (phase, out) = (&p.name, &p.out);
                let input = if phase == "load" {
                    load_bytes
                } else {
                    upsert_bytes
                };
                let secs = out.elapsed.as_secs_f64().max(1e-9);
                println!(
                    "{:<18} {:<7} {:>11.0} {:>8.1} {:>9.2} {:>13} {:>9} {:>13}",
                    row.label(),
                    phase,
                    out.records as f64 / secs,
                    input as f64 / 1e6 / secs,
                    out.elapsed.as_secs_f64(),
                    r.rss_kib
                        .map_or_else(|| "-".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0)),
                    p.file_bytes
                        .map_or_else(|| "-".to_owned(), |b| format!("{:.1}", mib(b))),
                    p.written_column(),
                );
            }
            let _ = std::io::stdout().flush();
            results.push((row, r));
        }
        let get = |name: RowName| results.iter().find(|(r, _)| *r == name).map(|(_, r)| r);
        let Some(cdb) = get(RowName::Contactdb) else {
            continue;
        };
        let ratio = |peer: &RowResult| {
            let f = |phase| match (cdb.rate(phase), peer.rate(phase)) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => "-".to_owned(),
            };
            format!("load={} upsert={}", f("load"), f("upsert"))
        };
        // SQLite: the faster configuration (load + upsert time).
        let sqlite = [RowName::SqliteRowid, RowName::SqliteWithoutRowid]
            .into_iter()
            .filter_map(|r| get(r).map(|res| (r, res)))
            .min_by(|a, b| a.1.total_secs().total_cmp(&b.1.total_secs()));
        if let Some((name, _)) = sqlite {
            println!(
                "# {}: sqlite = {} (the faster SQLite configuration, by load + upsert time); \
                 ratio = contactdb records/s / peer records/s",
                order.name(),
                name.label()
            );
        }
        if let Some((_, peer)) = sqlite {
            println!("ratio_vs_sqlite {}", ratio(peer));
        }
        if let Some(peer) = get(RowName::RedbFloor) {
            println!("ratio_vs_redb_floor {}", ratio(peer));
        }
        if let Some(peer) = get(RowName::MemFloor) {
            println!("ratio_vs_mem_floor {}", ratio(peer));
        }
    }
    Ok(())
}

fn scaling(args: &Args, base: &Path) -> Result<()> {
    let mut bases = vec![100_000u64, 1_000_000];
    if args.huge {
        bases.push(10_000_000);
    }
    if !args.scaling_bases.is_empty() {
        bases.clone_from(&args.scaling_bases);
    }
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
    println!(
        "scaling: upsert cost per record (shuffled; {} records per measurement, half updates \
         of existing contacts, half new; contactdb: match_on=[key,email,phone], one database \
         open for the load and every measurement; peers: opened and closed per measurement; \
         cache={}MiB; drain_per_write={}; floor_skip={:?}; written = bytes passed to write calls, per record)",
        args.scaling_records, args.cache_mib, args.drain_per_write, args.floor_skip
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
    // (row, batch, base, µs per record, KiB written per record), for the ratios.
    let mut cells: Vec<(RowName, String, u64, f64, Option<f64>)> = Vec::new();
    for &b in &bases {
        for &row in &rows {
            let r = run_child(args, base, RowName::Scaling, Order::Shuffled, b, row)?;
            for p in &r.phases {
                let Some(batch) = p.name.strip_prefix("batch") else {
                    continue;
                };
                let out = &p.out;
                let secs = out.elapsed.as_secs_f64();
                let us = secs * 1e6 / out.records.max(1) as f64;
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
                cells.push((row, batch.to_owned(), b, us, p.written_kib_per_record()));
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
    // Each row's cost at the largest base over its cost at the smallest, per batch.
    let (Some(&small), Some(&large)) = (bases.iter().min(), bases.iter().max()) else {
        return Ok(());
    };
    if small == large {
        return Ok(());
    }
    for &row in &rows {
        for batch in &args.scaling_batches {
            let cell = |b: u64| {
                cells
                    .iter()
                    .find(|c| c.0 == row && c.1 == batch.to_string() && c.2 == b)
            };
            if let (Some(s), Some(l)) = (cell(small), cell(large)) {
                let written = match (s.4, l.4) {
                    (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a),
                    _ => "-".to_owned(),
                };
                println!(
                    "scaling_ratio row={} batch={batch} {large}/{small}: us_per_record={:.2} \
                     written_per_record={written}",
                    row.arg(),
                    l.3 / s.3.max(1e-9),
                );
            }
        }
    }
    Ok(())
}
