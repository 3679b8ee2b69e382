//! The rows of the comparison: contactdb, SQLite, the redb floor and the in-memory
//! floor. Each phase opens its storage, writes every batch, and closes it; the time
//! counted is open + writes + close, and never the generation of the records (which
//! happens between batches, with the clock stopped).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ahash::AHashMap;
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::workload::{Item, Norm, person};

/// The outcome of one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseOut {
    pub elapsed: Duration,
    pub records: u64,
    /// The median and the slowest request (the contactdb row only; zero elsewhere).
    pub median_request: Duration,
    pub slowest_request: Duration,
    /// What the phase wrote, when the row measured it around its own timed work (the
    /// bulk rows); otherwise the child's counters since the previous phase.
    pub io: Option<crate::bulk::Io>,
    /// The phase's peak resident set, KiB, when the row measured it (the external
    /// processes); otherwise the child's VmHWM at the phase's end.
    pub peak_rss_kib: Option<u64>,
}

/// A stopwatch that only runs inside [`Clock::time`].
#[derive(Default)]
pub struct Clock(Duration);

impl Clock {
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.0 += t.elapsed();
        out
    }

    pub fn elapsed(&self) -> Duration {
        self.0
    }

    pub fn add(&mut self, d: Duration) {
        self.0 += d;
    }
}

/// What the redb floor leaves out (`--floor-skip`): only to measure what the parts of
/// its work cost (docs/performance.md, "What the 10M cost is made of"); the
/// comparison and the ratios never use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloorSkip {
    /// The whole floor.
    None,
    /// Updated contacts' rows are read (for their index diff) but not written back.
    ContactRewrites,
    /// No email and phone index writes at all (identifiers and rows stay).
    EmailPhoneIndexes,
}

/// The row options that reach code deep in the rows (`--floor-skip`): set once
/// per process, before any row runs.
#[derive(Debug, Clone, Copy)]
pub struct RowOptions {
    /// What the redb floor leaves out.
    pub floor_skip: FloorSkip,
}

static ROW_OPTIONS: std::sync::OnceLock<RowOptions> = std::sync::OnceLock::new();

/// Sets this process's row options (the first call wins).
pub fn set_row_options(opts: RowOptions) {
    let _ = ROW_OPTIONS.set(opts);
}

fn row_options() -> RowOptions {
    ROW_OPTIONS.get().copied().unwrap_or(RowOptions {
        floor_skip: FloorSkip::None,
    })
}

fn floor_skip() -> FloorSkip {
    row_options().floor_skip
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn norms(chunk: &[Item]) -> Vec<Norm> {
    chunk.iter().map(|it| person(it.i, it.g).norm).collect()
}

// ---------------------------------------------------------------------------------
// contactdb

pub mod contactdb_row {
    use super::*;
    use contactdb::{BulkRequest, Database, MatchOn, Mode, OnInvalid, Status};

    pub const FILE: &str = "contactdb.redb";

    /// Opens (or creates) the row's database in `dir`.
    pub fn open(dir: &Path, cache: usize, batch: usize) -> Result<Database> {
        Ok(Database::builder()
            .cache_size_bytes(cache)
            .records_max(batch.max(10_000))
            .open(dir.join(FILE))?)
    }

    /// Runs `items` as upsert requests of `batch` records (mode upsert, match_on
    /// key+email+phone, on_invalid skip, full validation) and checks every report.
    /// The time includes opening and closing the database.
    pub fn phase(
        dir: &Path,
        cache: usize,
        batch: usize,
        commit_records: usize,
        items: &[Item],
    ) -> Result<PhaseOut> {
        let mut clock = Clock::default();
        let db = clock.time(|| open(dir, cache, batch))?;
        let out = requests(&db, batch, commit_records, items, clock)?;
        let mut clock = Clock::default();
        clock.time(|| drop(db));
        Ok(PhaseOut {
            elapsed: out.elapsed + clock.elapsed(),
            ..out
        })
    }

    /// Runs `items` against an open database (see [`phase`]); the time counts the
    /// requests, and whatever `clock` already holds.
    pub fn requests(
        db: &Database,
        batch: usize,
        commit_records: usize,
        items: &[Item],
        mut clock: Clock,
    ) -> Result<PhaseOut> {
        let ws = clock.time(|| db.workspace("default"))?;
        let before = ws.count()?;
        // Diagnostics: each request's time on stderr.
        let trace = std::env::var_os("CONTACTDB_BENCH_TRACE").is_some();
        let mut times = Vec::with_capacity(items.len().div_ceil(batch.max(1)));
        let request = |chunk: &[Item]| {
            let records = chunk
                .iter()
                .map(|it| person(it.i, it.g).raw_json())
                .collect();
            let mut req = BulkRequest::new(Mode::Upsert, records);
            req.match_on = MatchOn::ALL;
            req.on_invalid = OnInvalid::Skip;
            req
        };
        let check = |chunk: &[Item], report: &contactdb::Report| -> Result<()> {
            let updates = chunk.iter().filter(|it| it.exists).count() as u64;
            let inserts = chunk.len() as u64 - updates;
            let s = &report.summary;
            ensure!(
                report.status == Status::Applied
                    && s.failed == 0
                    && s.inserted == inserts
                    && s.updated == updates,
                "contactdb: unexpected report: status {:?}, summary {:?} (expected {inserts} \
                 inserted, {updates} updated); first error: {:?}",
                report.status,
                report.summary,
                report.errors.first()
            );
            Ok(())
        };
        if commit_records > 1 {
            // One bulk_each call; building the requests (inside its iterator) is
            // not timed.
            let building = std::cell::Cell::new(Duration::ZERO);
            let reqs = items.chunks(batch).map(|chunk| {
                let t = Instant::now();
                let req = request(chunk);
                building.set(building.get() + t.elapsed());
                Ok::<_, anyhow::Error>(req)
            });
            let mut chunks = items.chunks(batch);
            let started = Instant::now();
            ws.bulk_each(reqs, commit_records, |report| {
                check(chunks.next().context("a report too many")?, report)
            })?;
            clock.add(started.elapsed().saturating_sub(building.get()));
        } else {
            for chunk in items.chunks(batch) {
                let req = request(chunk);
                let started = Instant::now();
                let report = clock.time(|| ws.bulk(&req))?;
                let took = started.elapsed();
                if trace {
                    eprintln!("request {} ms", took.as_secs_f64() * 1e3);
                }
                times.push(took);
                check(chunk, &report)?;
                drop(req);
            }
        }
        // Untimed checks: the count, and a sample read back against the normalized values.
        let inserted = items.iter().filter(|it| !it.exists).count() as u64;
        ensure!(ws.count()? == before + inserted, "contactdb: wrong count");
        for it in items.iter().step_by((items.len() / 100).max(1)) {
            let want = person(it.i, it.g).norm;
            let c = ws
                .get(&want.key)?
                .with_context(|| format!("contactdb: {} missing", want.key))?;
            ensure!(
                c.columns.get("email").and_then(|v| v.as_str()) == Some(want.email.as_str())
                    && c.columns.get("gsm").and_then(|v| v.as_str()) == Some(want.gsm.as_str())
                    && c.columns.get("name").and_then(|v| v.as_str()) == Some(want.name.as_str()),
                "contactdb: {} reads back wrong: {:?}",
                want.key,
                c.columns
            );
        }
        clock.time(|| drop(ws));
        times.sort_unstable();
        Ok(PhaseOut {
            elapsed: clock.elapsed(),
            records: items.len() as u64,
            median_request: times.get(times.len() / 2).copied().unwrap_or_default(),
            slowest_request: times.last().copied().unwrap_or_default(),
            ..PhaseOut::default()
        })
    }
}

// ---------------------------------------------------------------------------------
// SQLite

pub mod sqlite_row {
    use super::*;
    use rusqlite::{Connection, params};

    pub const FILE: &str = "sqlite.db";

    const UPSERT: &str = "INSERT INTO contacts (contact_key, name, surname, email, gsm, status, \
        email_status, gsm_status, priority, birthday, version, created_at, updated_at) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'A', 'A', ?7, ?8, 1, ?9, ?9) \
        ON CONFLICT(contact_key) DO UPDATE SET name = excluded.name, \
        surname = excluded.surname, email = excluded.email, gsm = excluded.gsm, \
        status = excluded.status, \
        email_status = CASE WHEN excluded.email IS NOT contacts.email THEN 'A' ELSE contacts.email_status END, \
        gsm_status = CASE WHEN excluded.gsm IS NOT contacts.gsm THEN 'A' ELSE contacts.gsm_status END, \
        priority = excluded.priority, birthday = excluded.birthday, \
        version = contacts.version + 1, updated_at = excluded.updated_at";

    fn open(dir: &Path, cache: usize, without_rowid: bool) -> Result<Connection> {
        let conn = Connection::open(dir.join(FILE))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "sqlite: journal_mode {mode}"
        );
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Negative = KiB: the same page-cache budget as contactdb and the redb floor.
        conn.pragma_update(None, "cache_size", -i64::try_from(cache / 1024)?)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // mmap_size stays 0: with 4 GiB of mmap the rowid table was ~10% slower here.
        let suffix = if without_rowid { " WITHOUT ROWID" } else { "" };
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS contacts (
                contact_key TEXT NOT NULL PRIMARY KEY,
                name TEXT, surname TEXT, email TEXT, gsm TEXT,
                status TEXT, email_status TEXT, gsm_status TEXT,
                priority INTEGER, birthday TEXT,
                version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
            ){suffix};
            CREATE INDEX IF NOT EXISTS contacts_email ON contacts (email);
            CREATE INDEX IF NOT EXISTS contacts_gsm ON contacts (gsm);"
        ))?;
        Ok(conn)
    }

    /// One prepared `INSERT … ON CONFLICT DO UPDATE` per record, one transaction per
    /// batch.
    pub fn phase(
        dir: &Path,
        cache: usize,
        batch: usize,
        items: &[Item],
        without_rowid: bool,
    ) -> Result<PhaseOut> {
        let mut clock = Clock::default();
        let mut conn = clock.time(|| open(dir, cache, without_rowid))?;
        let count = |c: &Connection| -> Result<u64> {
            let n: i64 = c.query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?;
            Ok(u64::try_from(n)?)
        };
        let before = count(&conn)?;
        for chunk in items.chunks(batch) {
            let recs = norms(chunk);
            let now = now_us();
            clock.time(|| -> Result<()> {
                let tx = conn.transaction()?;
                {
                    let mut st = tx.prepare_cached(UPSERT)?;
                    for r in &recs {
                        let changed = st.execute(params![
                            r.key, r.name, r.surname, r.email, r.gsm, r.status, r.priority,
                            r.birthday, now
                        ])?;
                        if changed != 1 {
                            bail!("sqlite: {changed} rows changed by one upsert");
                        }
                    }
                }
                tx.commit()?;
                Ok(())
            })?;
        }
        let inserted = items.iter().filter(|it| !it.exists).count() as u64;
        ensure!(count(&conn)? == before + inserted, "sqlite: wrong count");
        for it in items.iter().step_by((items.len() / 100).max(1)) {
            let want = person(it.i, it.g).norm;
            let (email, gsm): (String, String) = conn.query_row(
                "SELECT email, gsm FROM contacts WHERE contact_key = ?1",
                [&want.key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            ensure!(
                email == want.email && gsm == want.gsm,
                "sqlite: {} wrong",
                want.key
            );
        }
        // Closing checkpoints the WAL into the database file: counted.
        clock.time(|| conn.close().map_err(|(_, e)| e))?;
        Ok(PhaseOut {
            elapsed: clock.elapsed(),
            records: items.len() as u64,
            ..PhaseOut::default()
        })
    }
}

// ---------------------------------------------------------------------------------
// redb floor

/// A stored row of the floors: the same columns contactdb stores, postcard-encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloorRow {
    pub name: String,
    pub surname: String,
    pub email: String,
    pub gsm: String,
    pub status: String,
    pub email_status: String,
    pub gsm_status: String,
    pub priority: i64,
    pub birthday: String,
    pub version: u64,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

impl FloorRow {
    pub fn new(r: Norm, now: i64) -> (String, FloorRow) {
        (
            r.key,
            FloorRow {
                name: r.name,
                surname: r.surname,
                email: r.email,
                gsm: r.gsm,
                status: r.status.to_owned(),
                email_status: "A".to_owned(),
                gsm_status: "A".to_owned(),
                priority: r.priority,
                birthday: r.birthday,
                version: 1,
                created_at_us: now,
                updated_at_us: now,
            },
        )
    }

    /// Applies an update onto the stored row (what the engine's merge would produce).
    pub fn apply(&mut self, new: FloorRow, now: i64) {
        if new.email != self.email {
            self.email_status = "A".to_owned();
        }
        if new.gsm != self.gsm {
            self.gsm_status = "A".to_owned();
        }
        self.name = new.name;
        self.surname = new.surname;
        self.email = new.email;
        self.gsm = new.gsm;
        self.status = new.status;
        self.priority = new.priority;
        self.birthday = new.birthday;
        self.version += 1;
        self.updated_at_us = now;
    }
}

fn index_key(value: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 1 + key.len());
    k.extend_from_slice(value.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Inserted and updated counts of a phase.
#[derive(Default)]
struct Tally {
    inserted: u64,
    updated: u64,
}

/// The frame both redb rows share: opens `file` (timed), runs `write_batch` on each
/// batch inside one timed write transaction and commits it, checks the inserted and
/// updated counts against the workload, runs `verify` on the result (untimed), and
/// closes the database (timed).
fn redb_phase(
    label: &str,
    path: &Path,
    cache: usize,
    batch: usize,
    items: &[Item],
    mut write_batch: impl FnMut(&redb::WriteTransaction, Vec<Norm>, i64, &mut Tally) -> Result<()>,
    verify: impl FnOnce(&redb::Database) -> Result<()>,
) -> Result<PhaseOut> {
    let mut clock = Clock::default();
    let db = clock.time(|| redb::Database::builder().set_cache_size(cache).create(path))?;
    let mut tally = Tally::default();
    for chunk in items.chunks(batch) {
        let recs = norms(chunk);
        let now = now_us();
        clock.time(|| -> Result<()> {
            let txn = db.begin_write()?;
            write_batch(&txn, recs, now, &mut tally)?;
            txn.commit()?;
            Ok(())
        })?;
    }
    let want_inserted = items.iter().filter(|it| !it.exists).count() as u64;
    ensure!(
        tally.inserted == want_inserted && tally.updated == items.len() as u64 - want_inserted,
        "{label}: {} inserted, {} updated",
        tally.inserted,
        tally.updated
    );
    verify(&db)?;
    clock.time(|| drop(db));
    Ok(PhaseOut {
        elapsed: clock.elapsed(),
        records: items.len() as u64,
        ..PhaseOut::default()
    })
}

/// Plain redb tables keyed by the contact key, with `email\0key` / `gsm\0key`
/// index entries: format version 1's layout, kept to show what the tiered layout
/// gains. Not the floor any more (the store no longer writes this layout).
pub mod redb_naive {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

    pub const FILE: &str = "naive.redb";
    const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
    const EMAIL: TableDefinition<&[u8], ()> = TableDefinition::new("email_index");
    const PHONE: TableDefinition<&[u8], ()> = TableDefinition::new("phone_index");

    /// The minimal correct writes of an upsert: read the old row (to find its old
    /// index entries), remove the index entries that change, write the row and the new
    /// index entries. Each table's writes are sorted by key, as the store sorts them.
    /// No validation, no email/phone matching.
    pub fn phase(dir: &Path, cache: usize, batch: usize, items: &[Item]) -> Result<PhaseOut> {
        redb_phase(
            "redb naive",
            &dir.join(FILE),
            cache,
            batch,
            items,
            write_batch,
            |db| {
                let r = db.begin_read()?;
                let n = r.open_table(CONTACTS)?.len()?;
                ensure!(
                    r.open_table(EMAIL)?.len()? == n && r.open_table(PHONE)?.len()? == n,
                    "redb naive: index sizes differ from the table"
                );
                Ok(())
            },
        )
    }

    fn write_batch(
        txn: &redb::WriteTransaction,
        recs: Vec<Norm>,
        now: i64,
        tally: &mut Tally,
    ) -> Result<()> {
        let mut contacts = txn.open_table(CONTACTS)?;
        let mut email = txn.open_table(EMAIL)?;
        let mut phone = txn.open_table(PHONE)?;
        let mut rows: Vec<(String, Vec<u8>)> = Vec::with_capacity(recs.len());
        let mut email_rm = Vec::new();
        let mut email_put = Vec::with_capacity(recs.len());
        let mut phone_rm = Vec::new();
        let mut phone_put = Vec::with_capacity(recs.len());
        for r in recs {
            let (key, new) = FloorRow::new(r, now);
            let old: Option<FloorRow> = match contacts.get(key.as_str())? {
                Some(v) => Some(postcard::from_bytes(v.value())?),
                None => None,
            };
            let row = match old {
                Some(mut old) => {
                    tally.updated += 1;
                    if old.email != new.email {
                        email_rm.push(index_key(&old.email, &key));
                        email_put.push(index_key(&new.email, &key));
                    }
                    if old.gsm != new.gsm {
                        phone_rm.push(index_key(&old.gsm, &key));
                        phone_put.push(index_key(&new.gsm, &key));
                    }
                    old.apply(new, now);
                    old
                }
                None => {
                    tally.inserted += 1;
                    email_put.push(index_key(&new.email, &key));
                    phone_put.push(index_key(&new.gsm, &key));
                    new
                }
            };
            rows.push((key, postcard::to_allocvec(&row)?));
        }
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in &rows {
            contacts.insert(k.as_str(), v.as_slice())?;
        }
        for (rm, put, t) in [
            (&mut email_rm, &mut email_put, &mut email),
            (&mut phone_rm, &mut phone_put, &mut phone),
        ] {
            rm.sort_unstable();
            put.sort_unstable();
            for k in rm.iter() {
                t.remove(k.as_slice())?;
            }
            for k in put.iter() {
                t.insert(k.as_slice(), ())?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// redb floor: the store's physical layout (format 2) written directly, without
// validation or matching

/// The same writes the store makes for an upsert batch: contacts by internal id
/// (new ids appended), tiered `identifiers` (key → id) and tiered hashed email/phone
/// indexes — the store's own table definitions, key encodings and `tiered` module,
/// with the same delta threshold. It reads the old row to find its old index
/// entries, as the store's apply does. The workspace record is replaced by a
/// `next_id` counter in a table of its own.
pub mod redb_row {
    use super::*;
    use contactdb_store::bench::{self, CONTACTS, EMAIL_INDEX, IDENTIFIERS, PHONE_INDEX, Tiered};
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

    pub const FILE: &str = "floor.redb";
    const WS: u32 = 1;
    const NEXT_ID: TableDefinition<&str, u64> = TableDefinition::new("floor_next_id");
    const MIN_DELTA: u64 = contactdb_store::DEFAULT_MIN_DELTA;

    pub fn phase(dir: &Path, cache: usize, batch: usize, items: &[Item]) -> Result<PhaseOut> {
        redb_phase(
            "redb floor",
            &dir.join(FILE),
            cache,
            batch,
            items,
            write_batch,
            |db| {
                let r = db.begin_read()?;
                let n = r.open_table(CONTACTS)?.len()?;
                let logical = |t: &Tiered<()>| -> Result<u64> {
                    let mut n = 0u64;
                    for e in t.open_read(&r)?.iter()? {
                        e?;
                        n += 1;
                    }
                    Ok(n)
                };
                // With parts of the work skipped the indexes do not follow the rows.
                ensure!(
                    floor_skip() != FloorSkip::None
                        || logical(&EMAIL_INDEX)? == n && logical(&PHONE_INDEX)? == n,
                    "redb floor: index sizes differ from the table"
                );
                Ok(())
            },
        )
    }

    /// One batch of the floor, as the store's apply writes it: look up each key's
    /// id, gather every table's writes, then write each table in key order.
    fn write_batch(
        txn: &redb::WriteTransaction,
        recs: Vec<Norm>,
        now: i64,
        tally: &mut Tally,
    ) -> Result<()> {
        {
            let mut meta = txn.open_table(NEXT_ID)?;
            let mut next_id = meta.get("next_id")?.map_or(1, |v| v.value());
            let mut contacts = txn.open_table(CONTACTS)?;
            let mut idents = IDENTIFIERS.open_write(txn)?;
            let mut w = BatchWrites::with_capacity(recs.len());
            for r in recs {
                let (key, new) = FloorRow::new(r, now);
                let ident = bench::ws_key(WS, key.as_bytes());
                let row = match idents.get(&ident, None)? {
                    Some(id) => {
                        tally.updated += 1;
                        w.update(id, stored_row(&contacts, id)?, new, now)
                    }
                    None => {
                        tally.inserted += 1;
                        let id = next_id;
                        next_id += 1;
                        Some(w.insert(ident, id, new))
                    }
                };
                if let Some((id, row)) = row {
                    w.rows.push((
                        bench::contact_key(WS, id),
                        postcard::to_allocvec(&(key, row))?,
                    ));
                }
            }
            w.rows.sort_unstable_by_key(|r| r.0);
            for (k, v) in &w.rows {
                contacts.insert(k.as_slice(), v.as_slice())?;
            }
            w.ident_put.sort_unstable();
            bench::write(&mut idents, &[], &w.ident_put, None)?;
            w.email.write(txn, &EMAIL_INDEX)?;
            w.phone.write(txn, &PHONE_INDEX)?;
            meta.insert("next_id", next_id)?;
        }
        bench::compact(txn, &IDENTIFIERS, MIN_DELTA)?;
        bench::compact(txn, &EMAIL_INDEX, MIN_DELTA)?;
        bench::compact(txn, &PHONE_INDEX, MIN_DELTA)?;
        Ok(())
    }

    /// The stored row of contact `id` (an id the identifiers table gave).
    fn stored_row(contacts: &redb::Table<'_, &[u8], &[u8]>, id: u64) -> Result<FloorRow> {
        match contacts.get(bench::contact_key(WS, id).as_slice())? {
            Some(v) => Ok(postcard::from_bytes::<(String, FloorRow)>(v.value())?.1),
            None => bail!("redb floor: missing row {id}"),
        }
    }

    /// The writes of one batch, gathered before any is made.
    struct BatchWrites {
        /// `contacts` entries: contact key → (key, row).
        rows: Vec<([u8; 12], Vec<u8>)>,
        /// New `identifiers` entries: key → id.
        ident_put: Vec<(Vec<u8>, u64)>,
        email: IndexWrites,
        phone: IndexWrites,
    }

    impl BatchWrites {
        fn with_capacity(n: usize) -> BatchWrites {
            BatchWrites {
                rows: Vec::with_capacity(n),
                ident_put: Vec::new(),
                email: IndexWrites::default(),
                phone: IndexWrites::default(),
            }
        }

        /// An update of contact `id`: the index entries of a changed email or phone
        /// move, and the merged row is returned for writing (`None` when
        /// `--floor-skip contact-rewrites` leaves it out).
        fn update(
            &mut self,
            id: u64,
            mut old: FloorRow,
            new: FloorRow,
            now: i64,
        ) -> Option<(u64, FloorRow)> {
            self.email.replace(&old.email, &new.email, id);
            self.phone.replace(&old.gsm, &new.gsm, id);
            old.apply(new, now);
            if floor_skip() == FloorSkip::ContactRewrites {
                return None;
            }
            Some((id, old))
        }

        /// A new contact under the new id `id`: its identifier and index entries;
        /// the row is returned for writing.
        fn insert(&mut self, ident: Vec<u8>, id: u64, new: FloorRow) -> (u64, FloorRow) {
            self.ident_put.push((ident, id));
            self.email.put.push((index_key_of(&new.email, id), ()));
            self.phone.put.push((index_key_of(&new.gsm, id), ()));
            (id, new)
        }
    }

    /// One hashed index's removals and insertions of a batch.
    #[derive(Default)]
    struct IndexWrites {
        rm: Vec<Vec<u8>>,
        put: Vec<(Vec<u8>, ())>,
    }

    impl IndexWrites {
        /// Moves contact `id`'s entry from `old` to `new` when the value changed.
        fn replace(&mut self, old: &str, new: &str, id: u64) {
            if old != new {
                self.rm.push(index_key_of(old, id));
                self.put.push((index_key_of(new, id), ()));
            }
        }

        /// Writes the entries into `table` in key order (nothing with
        /// `--floor-skip email-phone-indexes`).
        fn write(mut self, txn: &redb::WriteTransaction, table: &Tiered<()>) -> Result<()> {
            if floor_skip() == FloorSkip::EmailPhoneIndexes {
                self.rm.clear();
                self.put.clear();
            }
            self.rm.sort_unstable();
            self.put.sort_unstable();
            let mut t = table.open_write(txn)?;
            bench::write(&mut t, &self.rm, &self.put, None)?;
            Ok(())
        }
    }

    /// The index entry of `value` for contact `id`.
    fn index_key_of(value: &str, id: u64) -> Vec<u8> {
        bench::index_key(WS, value, id).to_vec()
    }
}

// ---------------------------------------------------------------------------------
// in-memory floor

pub mod mem_row {
    use super::*;

    /// The same upsert logic on hash maps: the row by key, and email → key and
    /// gsm → key maps kept in step. No storage, no validation, no matching.
    #[derive(Default)]
    pub struct MemFloor {
        rows: AHashMap<String, FloorRow>,
        email: AHashMap<String, String>,
        phone: AHashMap<String, String>,
    }

    impl MemFloor {
        pub fn phase(&mut self, batch: usize, items: &[Item]) -> Result<PhaseOut> {
            let mut clock = Clock::default();
            let (mut inserted, mut updated) = (0u64, 0u64);
            for chunk in items.chunks(batch) {
                let recs = norms(chunk);
                let now = now_us();
                clock.time(|| {
                    for r in recs {
                        let (key, new) = FloorRow::new(r, now);
                        match self.rows.get_mut(&key) {
                            Some(old) => {
                                updated += 1;
                                if old.email != new.email {
                                    self.email.remove(&old.email);
                                    self.email.insert(new.email.clone(), key.clone());
                                }
                                if old.gsm != new.gsm {
                                    self.phone.remove(&old.gsm);
                                    self.phone.insert(new.gsm.clone(), key.clone());
                                }
                                old.apply(new, now);
                            }
                            None => {
                                inserted += 1;
                                self.email.insert(new.email.clone(), key.clone());
                                self.phone.insert(new.gsm.clone(), key.clone());
                                self.rows.insert(key, new);
                            }
                        }
                    }
                });
            }
            let want_inserted = items.iter().filter(|it| !it.exists).count() as u64;
            ensure!(
                inserted == want_inserted
                    && updated == items.len() as u64 - want_inserted
                    && self.email.len() == self.rows.len()
                    && self.phone.len() == self.rows.len(),
                "mem floor: {inserted} inserted, {updated} updated"
            );
            Ok(PhaseOut {
                elapsed: clock.elapsed(),
                records: items.len() as u64,
                ..PhaseOut::default()
            })
        }
    }
}
