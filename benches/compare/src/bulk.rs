//! The bulk rows: what a user does with a CSV file in hand. SQLite's bulk path
//! (staging import + one `INSERT … SELECT … ON CONFLICT DO UPDATE`), run in process
//! (`sqlite-bulk`, the reference row) and by the real `sqlite3` shell
//! (`sqlite3-shell`); the `contactdb import` command on the same CSV
//! (`contactdb-cli`); and plain redb tables written in one transaction
//! (`redb-floor-txn`).
//!
//! The CSV files are written by the parent before any row runs (untimed); each CSV
//! row's phase reads its file inside the timed region.

use std::io::{BufWriter, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::rows::{Clock, FloorRow, PhaseOut, now_us};
use crate::workload::{Item, Norm, Order, person};

/// The CSV header of every input file (the workload's columns).
pub const HEADER: [&str; 8] = [
    "contact_key",
    "name",
    "surname",
    "email",
    "gsm",
    "status",
    "priority",
    "birthday",
];

/// Which values a CSV file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// As the export sends them: mixed-case emails, formatted phones, lower-case
    /// statuses (what contactdb normalizes).
    Raw,
    /// The same, with the phones pre-normalized to E.164 (SQLite has no phone
    /// normalization; emails and statuses stay raw and are normalized in SQL).
    Sqlite,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Raw => "raw",
            Flavor::Sqlite => "sqlite",
        }
    }
}

/// The input file of one phase.
pub fn input_path(dir: &Path, n: u64, order: Order, phase: &str, flavor: Flavor) -> PathBuf {
    dir.join(format!(
        "input-{}-{n}-{phase}-{}.csv",
        order.name(),
        flavor.name()
    ))
}

/// Writes one CSV file of `items` and returns its size in bytes.
pub fn write_csv(path: &Path, items: &[Item], flavor: Flavor) -> Result<u64> {
    let file = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
    w.write_record(HEADER)?;
    for it in items {
        let p = person(it.i, it.g);
        let n = &p.norm;
        let gsm = match flavor {
            Flavor::Raw => p.raw_gsm.as_str(),
            Flavor::Sqlite => n.gsm.as_str(),
        };
        w.write_record([
            n.key.as_str(),
            n.name.as_str(),
            n.surname.as_str(),
            p.raw_email.as_str(),
            gsm,
            p.raw_status,
            n.priority.to_string().as_str(),
            n.birthday.as_str(),
        ])?;
    }
    w.flush()?;
    drop(w);
    Ok(std::fs::metadata(path)?.len())
}

// ---------------------------------------------------------------------------------
// I/O accounting and external processes

/// Write counters of this process (`/proc/self/io`); they include every child the
/// process has reaped, so a wrapper's counters around a child's run are the child's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Io {
    /// Bytes passed to `write`-family calls (`wchar`).
    pub wchar: u64,
    /// Bytes the process caused to be sent to storage (`write_bytes`: page-cache
    /// pages it dirtied, counted when dirtied).
    pub write_bytes: u64,
}

impl Io {
    /// The counters now; `None` where the kernel does not report them.
    pub fn now() -> Option<Io> {
        let s = std::fs::read_to_string("/proc/self/io").ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = s.lines().find(|l| l.starts_with(name))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        Some(Io {
            wchar: field("wchar:")?,
            write_bytes: field("write_bytes:")?,
        })
    }

    /// What was written between `before` and `self`.
    pub fn since(self, before: Io) -> Io {
        Io {
            wchar: self.wchar.saturating_sub(before.wchar),
            write_bytes: self.write_bytes.saturating_sub(before.write_bytes),
        }
    }
}

/// The I/O between two optional readings.
fn io_between(before: Option<Io>, after: Option<Io>) -> Option<Io> {
    Some(after?.since(before?))
}

const TIME: &str = "/usr/bin/time";

/// An external process's run.
struct Run {
    elapsed: Duration,
    stdout: String,
    stderr: String,
    /// Peak resident set, KiB (`/usr/bin/time -f %M`, i.e. wait4's `ru_maxrss`).
    rss_kib: Option<u64>,
    io: Option<Io>,
}

/// The program on PATH named `name`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `program args` with `stdin` as its standard input (null when `None`), timed
/// from spawn to exit, under `/usr/bin/time` when it exists (for the peak RSS). The
/// process is killed after `timeout`. A non-zero exit is an error carrying stderr.
fn run_external(
    program: &Path,
    args: &[&std::ffi::OsStr],
    stdin: Option<&Path>,
    scratch: &Path,
    timeout: Duration,
) -> Result<Run> {
    let time_out = scratch.join("time.txt");
    let mut cmd = if Path::new(TIME).is_file() {
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&time_out).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).with_context(|| format!("{}", p.display()))?),
        None => Stdio::null(),
    });
    // Output goes to files (no pipe to drain while waiting).
    let out_path = scratch.join("stdout.txt");
    let err_path = scratch.join("stderr.txt");
    cmd.stdout(std::fs::File::create(&out_path)?);
    cmd.stderr(std::fs::File::create(&err_path)?);
    let io_before = Io::now();
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not finish within {} s",
                program.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let io = io_between(io_before, Io::now());
    let read = |p: &Path| -> Result<String> {
        let mut s = String::new();
        std::fs::File::open(p)?.read_to_string(&mut s)?;
        Ok(s)
    };
    let stdout = read(&out_path)?;
    let stderr = read(&err_path)?;
    if !status.success() {
        bail!("{} failed ({status}): {}", program.display(), stderr.trim());
    }
    let rss_kib = std::fs::read_to_string(&time_out)
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse().ok());
    Ok(Run {
        elapsed,
        stdout,
        stderr,
        rss_kib,
        io,
    })
}

fn scratch_dir(dir: &Path) -> Result<PathBuf> {
    // A subdirectory: the file size of a phase counts the files directly in `dir`.
    let s = dir.join("scratch");
    std::fs::create_dir_all(&s)?;
    Ok(s)
}

// ---------------------------------------------------------------------------------
// SQLite: the statements of both SQLite bulk rows

pub const SQLITE_FILE: &str = "sqlite-bulk.db";

/// Connection settings and schema (every statement idempotent: each phase runs them).
pub fn sqlite_setup(cache_kib: u64) -> String {
    format!(
        "PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
PRAGMA cache_size=-{cache_kib};
CREATE TABLE IF NOT EXISTS master_contact(
  contact_key TEXT PRIMARY KEY,
  name TEXT, surname TEXT, email TEXT, gsm TEXT,
  status TEXT DEFAULT 'A', priority INTEGER, birthday TEXT,
  version INTEGER DEFAULT 1
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS master_contact_email ON master_contact(email);
CREATE INDEX IF NOT EXISTS master_contact_gsm ON master_contact(gsm);
CREATE TEMP TABLE staging(
  contact_key TEXT, name TEXT, surname TEXT, email TEXT, gsm TEXT,
  status TEXT, priority TEXT, birthday TEXT
);
"
    )
}

/// One row of the staging table (what the shell's `.import` runs per CSV row).
pub const SQLITE_STAGE: &str = "INSERT INTO staging VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The staged rows into the table: normalized in SQL where SQL can (trim, lower,
/// upper), inserted or updated by key, `version` + 1 only when a value changed.
pub const SQLITE_MERGE: &str =
    "INSERT INTO master_contact(contact_key, name, surname, email, gsm, status, priority, birthday)
  SELECT trim(contact_key), trim(name), trim(surname), lower(trim(email)), trim(gsm),
         upper(trim(status)), CAST(priority AS INTEGER), trim(birthday)
  FROM staging WHERE true
  ON CONFLICT(contact_key) DO UPDATE SET
    name = excluded.name, surname = excluded.surname, email = excluded.email,
    gsm = excluded.gsm, status = excluded.status, priority = excluded.priority,
    birthday = excluded.birthday, version = version + 1
  WHERE (name, surname, email, gsm, status, priority, birthday)
    IS NOT (excluded.name, excluded.surname, excluded.email, excluded.gsm,
            excluded.status, excluded.priority, excluded.birthday)";

pub const SQLITE_DROP: &str = "DROP TABLE staging";

/// The script the `sqlite3` shell runs for one phase.
pub fn shell_script(cache_kib: u64, csv: &Path) -> Result<String> {
    let path = csv
        .to_str()
        .context("the CSV path is not UTF-8")?
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    Ok(format!(
        ".bail on\n{}.import --csv --skip 1 \"{path}\" staging\n{SQLITE_MERGE};\nSELECT 'changes', changes();\n{SQLITE_DROP};\n",
        sqlite_setup(cache_kib)
    ))
}

/// Untimed checks of a SQLite bulk phase: the rows changed by the merge, the count,
/// and a sample read back (values normalized, versions counted).
fn sqlite_check(label: &str, db: &Path, items: &[Item], before: u64, changes: u64) -> Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    ensure!(
        changes == items.len() as u64,
        "{label}: the merge changed {changes} rows, expected {}",
        items.len()
    );
    let n: i64 = conn.query_row("SELECT count(*) FROM master_contact", [], |r| r.get(0))?;
    let inserted = items.iter().filter(|it| !it.exists).count() as u64;
    ensure!(
        u64::try_from(n)? == before + inserted,
        "{label}: {n} rows, expected {}",
        before + inserted
    );
    let mut st = conn.prepare(
        "SELECT email, gsm, name, status, version FROM master_contact WHERE contact_key = ?1",
    )?;
    for it in items.iter().step_by((items.len() / 100).max(1)) {
        let want = person(it.i, it.g).norm;
        let got: (String, String, String, String, i64) = st
            .query_row([&want.key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .with_context(|| format!("{label}: {} missing", want.key))?;
        ensure!(
            got.0 == want.email
                && got.1 == want.gsm
                && got.2 == want.name
                && got.3 == want.status
                && u64::try_from(got.4).ok() == Some(1 + it.g),
            "{label}: {} reads back wrong: {got:?}",
            want.key
        );
    }
    Ok(())
}

fn sqlite_count(db: &Path) -> Result<u64> {
    if !db.exists() {
        return Ok(0);
    }
    let conn = rusqlite::Connection::open(db)?;
    let n: i64 = conn
        .query_row("SELECT count(*) FROM master_contact", [], |r| r.get(0))
        .unwrap_or(0);
    Ok(u64::try_from(n)?)
}

pub mod sqlite_bulk {
    use super::*;
    use rusqlite::Connection;

    /// Open, settings and schema, the staging import (the CSV parsed with the `csv`
    /// crate, one prepared INSERT per row, one transaction), the merge, the drop of
    /// the staging table, close (the final checkpoint): all timed.
    pub fn phase(dir: &Path, cache: usize, csv_path: &Path, items: &[Item]) -> Result<PhaseOut> {
        let db = dir.join(SQLITE_FILE);
        let before = sqlite_count(&db)?;
        let cache_kib = u64::try_from(cache / 1024)?;
        let io_before = Io::now();
        let mut clock = Clock::default();
        let changes = clock.time(|| -> Result<u64> {
            let mut conn = Connection::open(&db)?;
            conn.execute_batch(&sqlite_setup(cache_kib))?;
            let tx = conn.transaction()?;
            {
                let mut st = tx.prepare(SQLITE_STAGE)?;
                let mut rd = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .from_path(csv_path)
                    .with_context(|| format!("{}", csv_path.display()))?;
                let mut rec = csv::StringRecord::new();
                while rd.read_record(&mut rec)? {
                    ensure!(rec.len() == HEADER.len(), "sqlite bulk: a short CSV row");
                    st.execute(rusqlite::params_from_iter(rec.iter()))?;
                }
            }
            tx.commit()?;
            let changes = conn.execute(SQLITE_MERGE, [])?;
            conn.execute(SQLITE_DROP, [])?;
            conn.close().map_err(|(_, e)| e)?;
            Ok(changes as u64)
        })?;
        let io = io_between(io_before, Io::now());
        sqlite_check("sqlite bulk", &db, items, before, changes)?;
        Ok(PhaseOut {
            elapsed: clock.elapsed(),
            records: items.len() as u64,
            io,
            ..PhaseOut::default()
        })
    }
}

pub mod sqlite3_shell {
    use super::*;

    /// The `sqlite3` shell on PATH, if any.
    pub fn program() -> Option<PathBuf> {
        on_path("sqlite3")
    }

    /// The same statements as `sqlite-bulk`, with `.import --csv` for the staging
    /// import, as a script piped to the shell; the process is timed from spawn to
    /// exit.
    pub fn phase(
        dir: &Path,
        cache: usize,
        csv_path: &Path,
        items: &[Item],
        timeout: Duration,
    ) -> Result<PhaseOut> {
        let program = program().context("sqlite3 is not on PATH")?;
        let db = dir.join(SQLITE_FILE);
        let before = sqlite_count(&db)?;
        let scratch = scratch_dir(dir)?;
        let script = scratch.join("phase.sql");
        std::fs::write(
            &script,
            shell_script(u64::try_from(cache / 1024)?, csv_path)?,
        )?;
        let run = run_external(
            &program,
            &[db.as_os_str()],
            Some(&script),
            &scratch,
            timeout,
        )?;
        let changes = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("changes|"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .with_context(|| {
                format!(
                    "sqlite3 shell: no changes line in its output: {:?} {:?}",
                    run.stdout, run.stderr
                )
            })?;
        sqlite_check("sqlite3 shell", &db, items, before, changes)?;
        Ok(PhaseOut {
            elapsed: run.elapsed,
            records: items.len() as u64,
            io: run.io,
            peak_rss_kib: run.rss_kib,
            ..PhaseOut::default()
        })
    }
}

// ---------------------------------------------------------------------------------
// contactdb import

pub mod contactdb_cli {
    use super::*;

    pub const FILE: &str = "cli.redb";

    /// The release `contactdb` binary: `given` (--contactdb-bin), else
    /// `$CONTACTDB_BIN`, else `$CARGO_TARGET_DIR/release/contactdb`, else the
    /// workspace's `target/release/contactdb`.
    pub fn program(given: Option<&Path>) -> Option<PathBuf> {
        if let Some(p) = given {
            return Some(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os("CONTACTDB_BIN") {
            return Some(PathBuf::from(p));
        }
        let mut candidates = Vec::new();
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(PathBuf::from(t).join("release/contactdb"));
        }
        candidates
            .push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/contactdb"));
        candidates.into_iter().find(|p| p.is_file())
    }

    /// How the row runs the command.
    #[derive(Debug, Clone, Copy)]
    pub struct Cli<'a> {
        /// The `contactdb` binary.
        pub program: &'a Path,
        /// `--batch-size`.
        pub batch: usize,
        /// `--match`.
        pub match_on: &'a str,
        /// The longest the command may run.
        pub timeout: Duration,
    }

    /// How to build the binary (printed when it is missing).
    pub const BUILD_HINT: &str = "cargo build --release -p contactdb-cli (at the workspace \
        root; or pass --contactdb-bin PATH / set CONTACTDB_BIN)";

    /// `contactdb import --mode upsert` of the phase's CSV (raw values) with the same
    /// cache and batch size, timed from spawn to exit; its counts are read from the
    /// summary line it prints, then the file is opened (untimed) for the count and a
    /// sample read back.
    pub fn phase(
        cli: &Cli<'_>,
        dir: &Path,
        cache: usize,
        csv_path: &Path,
        items: &[Item],
    ) -> Result<PhaseOut> {
        let Cli {
            program,
            batch,
            match_on,
            timeout,
        } = *cli;
        let db = dir.join(FILE);
        let scratch = scratch_dir(dir)?;
        let cache_mib = (cache / (1024 * 1024)).max(1).to_string();
        let batch = batch.to_string();
        let args: Vec<&std::ffi::OsStr> = vec![
            "--db".as_ref(),
            db.as_os_str(),
            "import".as_ref(),
            "--mode".as_ref(),
            "upsert".as_ref(),
            "--match".as_ref(),
            match_on.as_ref(),
            "--on-invalid".as_ref(),
            "skip".as_ref(),
            "--cache-mib".as_ref(),
            cache_mib.as_ref(),
            "--batch-size".as_ref(),
            batch.as_ref(),
            "--no-progress".as_ref(),
            csv_path.as_os_str(),
        ];
        let before = if db.exists() { count(&db)? } else { 0 };
        let run = run_external(program, &args, None, &scratch, timeout)?;
        let summary = parse_summary(&run.stderr).with_context(|| {
            format!(
                "contactdb import: no summary line in its output: {:?}",
                run.stderr
            )
        })?;
        let updates = items.iter().filter(|it| it.exists).count() as u64;
        let inserts = items.len() as u64 - updates;
        ensure!(
            summary
                == Summary {
                    total: items.len() as u64,
                    inserted: inserts,
                    updated: updates,
                    unchanged: 0,
                    failed: 0
                },
            "contactdb import: {summary:?}, expected {inserts} inserted, {updates} updated"
        );
        check(&db, items, before + inserts)?;
        Ok(PhaseOut {
            elapsed: run.elapsed,
            records: items.len() as u64,
            io: run.io,
            peak_rss_kib: run.rss_kib,
            ..PhaseOut::default()
        })
    }

    /// The counts of an import's summary line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Summary {
        pub total: u64,
        pub inserted: u64,
        pub updated: u64,
        pub unchanged: u64,
        pub failed: u64,
    }

    /// Reads `imported N records from F: A inserted, B updated, C unchanged, D failed
    /// in …` from the command's standard error.
    pub fn parse_summary(stderr: &str) -> Option<Summary> {
        let line = stderr.lines().find(|l| l.starts_with("imported "))?;
        let num = |s: &str| -> Option<u64> { s.replace(',', "").parse().ok() };
        let total = num(line.strip_prefix("imported ")?.split_whitespace().next()?)?;
        let counts = &line[line.rfind(": ")? + 2..];
        let mut s = Summary {
            total,
            ..Summary::default()
        };
        for part in counts.split(", ") {
            let mut w = part.split_whitespace();
            let (Some(n), Some(what)) = (w.next(), w.next()) else {
                continue;
            };
            let n = num(n)?;
            match what {
                "inserted" => s.inserted = n,
                "updated" => s.updated = n,
                "unchanged" => s.unchanged = n,
                "failed" => s.failed = n,
                _ => {}
            }
        }
        Some(s)
    }

    fn count(db: &Path) -> Result<u64> {
        let d = contactdb::Database::builder().open(db)?;
        Ok(d.workspace("default")?.count()?)
    }

    /// The count, and a sample read back against the normalized values.
    fn check(db: &Path, items: &[Item], want: u64) -> Result<()> {
        let d = contactdb::Database::builder().open(db)?;
        let ws = d.workspace("default")?;
        let n = ws.count()?;
        ensure!(n == want, "contactdb import: {n} contacts, expected {want}");
        for it in items.iter().step_by((items.len() / 100).max(1)) {
            let w = person(it.i, it.g).norm;
            let c = ws
                .get(&w.key)?
                .with_context(|| format!("contactdb import: {} missing", w.key))?;
            let col = |name: &str| c.columns.get(name).and_then(|v| v.as_str());
            ensure!(
                col("email") == Some(w.email.as_str())
                    && col("gsm") == Some(w.gsm.as_str())
                    && col("name") == Some(w.name.as_str())
                    && c.version == 1 + it.g,
                "contactdb import: {} reads back wrong: {:?} (version {})",
                w.key,
                c.columns,
                c.version
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// plain redb, one transaction

/// Plain redb: three flat tables (contact key → postcard-encoded row, email → key,
/// phone → key), the records pre-normalized, one write transaction for the whole
/// phase (or a commit every `commit_every` records). No validation, no matching
/// beyond the key, no change feed, no tiered indexes.
pub mod redb_floor_txn {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

    pub const FILE: &str = "floor-txn.redb";
    const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
    const EMAIL: TableDefinition<&str, &str> = TableDefinition::new("email");
    const PHONE: TableDefinition<&str, &str> = TableDefinition::new("phone");
    /// Records generated at a time (untimed, between timed writes).
    const GENERATE: usize = 10_000;

    #[derive(Default)]
    struct Tally {
        inserted: u64,
        updated: u64,
    }

    /// Open, every record in one write transaction (or one per `commit_every`
    /// records; 0 = one), commit, close: timed; the records are generated 10,000 at
    /// a time with the clock stopped.
    pub fn phase(dir: &Path, cache: usize, commit_every: u64, items: &[Item]) -> Result<PhaseOut> {
        let mut clock = Clock::default();
        let io_before = Io::now();
        let db = clock.time(|| {
            redb::Database::builder()
                .set_cache_size(cache)
                .create(dir.join(FILE))
        })?;
        let mut tally = Tally::default();
        let mut txn: Option<redb::WriteTransaction> = None;
        let mut in_txn = 0u64;
        for chunk in items.chunks(GENERATE) {
            let recs: Vec<Norm> = chunk.iter().map(|it| person(it.i, it.g).norm).collect();
            let now = now_us();
            clock.time(|| -> Result<()> {
                let mut rest = recs.as_slice();
                while !rest.is_empty() {
                    let room = if commit_every == 0 {
                        rest.len()
                    } else {
                        usize::try_from(commit_every - in_txn)?.min(rest.len())
                    };
                    let (now_part, later) = rest.split_at(room);
                    let t = match txn.take() {
                        Some(t) => t,
                        None => db.begin_write()?,
                    };
                    write(&t, now_part, now, &mut tally)?;
                    in_txn += room as u64;
                    rest = later;
                    if commit_every > 0 && in_txn == commit_every {
                        t.commit()?;
                        in_txn = 0;
                    } else {
                        txn = Some(t);
                    }
                }
                Ok(())
            })?;
        }
        if let Some(t) = txn.take() {
            clock.time(|| t.commit())?;
        }
        let want_inserted = items.iter().filter(|it| !it.exists).count() as u64;
        ensure!(
            tally.inserted == want_inserted && tally.updated == items.len() as u64 - want_inserted,
            "redb floor txn: {} inserted, {} updated",
            tally.inserted,
            tally.updated
        );
        {
            let r = db.begin_read()?;
            let n = r.open_table(CONTACTS)?.len()?;
            ensure!(
                r.open_table(EMAIL)?.len()? == n && r.open_table(PHONE)?.len()? == n,
                "redb floor txn: index sizes differ from the table"
            );
        }
        clock.time(|| drop(db));
        let io = io_between(io_before, Io::now());
        Ok(PhaseOut {
            elapsed: clock.elapsed(),
            records: items.len() as u64,
            io,
            ..PhaseOut::default()
        })
    }

    /// Upserts `recs` in arrival order: read the old row (for the index entries that
    /// change), write the row and the changed index entries.
    fn write(
        txn: &redb::WriteTransaction,
        recs: &[Norm],
        now: i64,
        tally: &mut Tally,
    ) -> Result<()> {
        let mut contacts = txn.open_table(CONTACTS)?;
        let mut email = txn.open_table(EMAIL)?;
        let mut phone = txn.open_table(PHONE)?;
        for r in recs {
            let (key, new) = FloorRow::new(r.clone(), now);
            let old: Option<FloorRow> = match contacts.get(key.as_str())? {
                Some(v) => Some(postcard::from_bytes(v.value())?),
                None => None,
            };
            let row = match old {
                Some(mut old) => {
                    tally.updated += 1;
                    if old.email != new.email {
                        email.remove(old.email.as_str())?;
                        email.insert(new.email.as_str(), key.as_str())?;
                    }
                    if old.gsm != new.gsm {
                        phone.remove(old.gsm.as_str())?;
                        phone.insert(new.gsm.as_str(), key.as_str())?;
                    }
                    old.apply(new, now);
                    old
                }
                None => {
                    tally.inserted += 1;
                    email.insert(new.email.as_str(), key.as_str())?;
                    phone.insert(new.gsm.as_str(), key.as_str())?;
                    new
                }
            };
            contacts.insert(key.as_str(), postcard::to_allocvec(&row)?.as_slice())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::contactdb_cli::{Summary, parse_summary};
    use super::*;
    use crate::workload::{load_items, upsert_items};

    /// A fresh directory under the system temporary directory.
    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "contactdb-bench-compare-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Load then upsert through the in-process SQLite bulk path: its own checks (rows
    /// changed by the merge, count, values and versions read back) must pass.
    #[test]
    fn sqlite_bulk_load_then_upsert() {
        let d = temp_dir("sqlite-bulk");
        let n = 500;
        for (phase, items) in [
            ("load", load_items(n, Order::Shuffled)),
            ("upsert", upsert_items(n, n, n, 1, Order::Shuffled)),
        ] {
            let csv = input_path(&d, n, Order::Shuffled, phase, Flavor::Sqlite);
            write_csv(&csv, &items, Flavor::Sqlite).unwrap();
            let out = sqlite_bulk::phase(&d, 1 << 20, &csv, &items).unwrap();
            assert_eq!(out.records, n);
        }
        // The same upsert again changes no row: the merge's WHERE keeps versions.
        let items = upsert_items(n, n, n, 1, Order::Shuffled);
        let csv = input_path(&d, n, Order::Shuffled, "upsert", Flavor::Sqlite);
        let err = sqlite_bulk::phase(&d, 1 << 20, &csv, &items).unwrap_err();
        assert!(
            err.to_string().contains("the merge changed 0 rows"),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The shell runs the same script (when it is installed).
    #[test]
    fn sqlite3_shell_load_then_upsert() {
        if sqlite3_shell::program().is_none() {
            return;
        }
        let d = temp_dir("sqlite3-shell");
        let n = 300;
        for (phase, items) in [
            ("load", load_items(n, Order::Sorted)),
            ("upsert", upsert_items(n, n, n, 1, Order::Sorted)),
        ] {
            let csv = input_path(&d, n, Order::Sorted, phase, Flavor::Sqlite);
            write_csv(&csv, &items, Flavor::Sqlite).unwrap();
            let out =
                sqlite3_shell::phase(&d, 1 << 20, &csv, &items, Duration::from_secs(60)).unwrap();
            assert_eq!(out.records, n);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// One transaction and a commit every 7 records reach the same counts.
    #[test]
    fn redb_floor_txn_commit_intervals() {
        for every in [0, 7, 500] {
            let d = temp_dir(&format!("floor-txn-{every}"));
            let n = 300;
            redb_floor_txn::phase(&d, 1 << 20, every, &load_items(n, Order::Shuffled)).unwrap();
            redb_floor_txn::phase(
                &d,
                1 << 20,
                every,
                &upsert_items(n, n, n, 1, Order::Shuffled),
            )
            .unwrap();
            std::fs::remove_dir_all(&d).unwrap();
        }
    }

    #[test]
    fn summary_line() {
        let s = "note: x\nimported 1,000,000 records from a.csv: 500,000 inserted, 499,999 updated, 1 unchanged, 0 failed in 3.1 s, 322,580 records/s\n";
        assert_eq!(
            parse_summary(s),
            Some(Summary {
                total: 1_000_000,
                inserted: 500_000,
                updated: 499_999,
                unchanged: 1,
                failed: 0
            })
        );
        assert_eq!(
            parse_summary("import of a.csv stopped: nothing was written"),
            None
        );
    }
}
