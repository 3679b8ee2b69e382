//! The on-disk format is a contract (docs/format.md): a database file written by an
//! earlier build of the same format version must keep opening and reading the same.
//! `tests/fixtures/format6.redb` was written by `recipe` below (format version 6);
//! `format6_fixture_still_reads` opens a copy and checks what it holds, so an
//! accidental change to a key encoding, a stored struct or a table type fails here.
//!
//! The recipe uses a tiny index-buffer threshold, so the file holds identifiers and
//! index entries in the base, mid and delta tables, and tombstones in mid and delta
//! tables. Files of other format versions are refused, unchanged: the committed
//! `tests/fixtures/format5.redb`, written by builds of format 5, is one.
//! Regenerate (only with a deliberate format change, and a new file name):
//! `CONTACTDB_WRITE_FIXTURE=1 cargo test --test format_fixture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use common::*;
use contactdb::{ColumnSpec, ColumnType, Database, Mode, Outcome, Status};
use serde_json::{Value, json};

fn fixture(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/format{version}.redb"))
}

/// Writes the fixture's content into a new database at `path`.
fn recipe(path: &Path) -> TestResult {
    let db = Database::builder().index_buffer_min(2).open(path)?;
    let ws = db.workspace("default")?;
    db.create_workspace("acme")?;
    ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    ws.declare_column(
        ColumnSpec::new("note", ColumnType::String { max_len: 20 }).import_enabled(true),
    )?;
    seed(
        &ws,
        vec![
            json!({"contact_key": "full", "name": "Ann", "email": "Ann@X.com",
                   "gsm": "+90 555 123 45 67", "birthday": "1990-01-02", "priority": 2,
                   "email_permit": true, "metadata": {"b": [1, 2], "a": "x"},
                   "tier": 3, "note": "vip"}),
            json!({"contact_key": "old-key", "email": "bob@x.com", "gsm": "+441234567890"}),
        ],
    )?;
    // An alias (found by email under another key), a rekey, and an email change
    // (a tombstone for the old index entry).
    let rep = ws.bulk(&match_all(
        Mode::Update,
        vec![json!({"contact_key": "crm-1", "email": "ann@x.com"})],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    let rep = ws.bulk(&req(
        Mode::Update,
        vec![
            json!({"contact_key": "old-key", "new_contact_key": "new-key",
                    "email": "robert@x.com"}),
        ],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
    // Enough contacts, in several requests, for base/delta merges to happen.
    for batch in 0..4 {
        let recs: Vec<Value> = (0..15)
            .map(|i| {
                let n = batch * 15 + i;
                json!({"contact_key": format!("k{n:02}"), "email": format!("u{n}@y.org")})
            })
            .collect();
        assert_eq!(ws.bulk(&req(Mode::Insert, recs))?.status, Status::Applied);
    }
    // Emails changed away and back: their old index entries are in the base, so
    // the tombstones that hid them reach the mid tables when the deltas merge there.
    for suffix in ["-b", ""] {
        let recs: Vec<Value> = (4..10)
            .map(|n| json!({"contact_key": format!("k{n:02}"), "email": format!("u{n}{suffix}@y.org")}))
            .collect();
        assert_eq!(ws.bulk(&req(Mode::Update, recs))?.status, Status::Applied);
    }
    let mut with_id = req(
        Mode::Upsert,
        vec![json!({"contact_key": "k00", "name": "Zed"})],
    );
    with_id.request_id = Some("fixture-1".into());
    assert_eq!(ws.bulk(&with_id)?.status, Status::Applied);
    let acme = db.workspace("acme")?;
    seed(
        &acme,
        vec![json!({"contact_key": "full", "gsm": "+905550000001"})],
    )?;
    // Last, a few changes too small to trigger a merge: they stay in the deltas
    // (a tombstone for k01's old email and for the key k03).
    let rep = ws.bulk(&req(
        Mode::Update,
        vec![
            json!({"contact_key": "k01", "email": "u1-new@y.org"}),
            json!({"contact_key": "k02", "gsm": "+15550000002"}),
            json!({"contact_key": "k03", "new_contact_key": "k03b"}),
        ],
    ))?;
    assert_eq!(rep.status, Status::Applied);
    // A campaign with members in pick order, a consumer's position in
    // the change feed, and a job that ran.
    ws.create_campaign("vip", &["gsm"])?;
    let mut join = req(
        Mode::Update,
        vec![
            json!({"contact_key": "k02"}),
            json!({"contact_key": "full"}),
        ],
    );
    join.campaign = Some("vip".into());
    assert_eq!(ws.bulk(&join)?.status, Status::Applied);
    ws.ack("dialer", 3)?;
    let id = ws.submit(&req(Mode::Upsert, vec![json!({"contact_key": "by-job"})]))?;
    assert_eq!(ws.run_job(&id)?.state, contactdb::JobState::Succeeded);
    assert_clean(&db)?;
    Ok(())
}

/// What the fixture holds beyond the contacts.
fn expect_around(db: &Database) -> TestResult {
    let ws = db.workspace("default")?;
    let members: Vec<(String, u32)> = ws
        .members("vip")?
        .into_iter()
        .map(|m| (m.contact_key, m.priority))
        .collect();
    assert_eq!(members, [("full".to_owned(), 2), ("k02".to_owned(), 5)]);
    assert_eq!(ws.consumers()?[0].acked, 3);
    let feed = ws.feed(0, 10_000)?;
    assert_eq!(feed.len() as u64, ws.last_seq()?);
    assert_eq!(feed.last().map(|e| e.key.as_str()), Some("by-job"));
    let jobs = ws.jobs()?;
    assert_eq!(jobs.len(), 1);
    let job = ws.job(&jobs[0].id)?.unwrap();
    assert_eq!(job.report.map(|r| r.summary.inserted), Some(1));
    Ok(())
}

/// What the fixture holds (no timestamps: they are those of its creation).
fn expect(db: &Database) -> TestResult {
    assert_clean(db)?;
    let slugs: Vec<String> = db.workspaces()?.into_iter().map(|w| w.slug).collect();
    assert_eq!(slugs, vec!["acme", "default"]);
    let ws = db.workspace("default")?;
    let jobs = u64::from(ws.get("by-job")?.is_some());
    assert_eq!(ws.count()?, 62 + jobs);
    let cols: Vec<String> = ws.columns()?.into_iter().map(|c| c.name).collect();
    assert_eq!(cols, vec!["tier", "note"]);

    let full = must_get(&ws, "full")?;
    assert_eq!(full.aliases, vec!["crm-1".to_owned()]);
    assert_eq!(full.version, 2);
    let v = serde_json::to_value(&full)?;
    assert_eq!(v["email"], json!("ann@x.com"));
    assert_eq!(v["gsm"], json!("+905551234567"));
    assert_eq!(v["birthday"], json!("1990-01-02"));
    assert_eq!(v["priority"], json!(2));
    assert_eq!(v["email_permit"], json!(true));
    assert_eq!(v["metadata"], json!({"a": "x", "b": [1, 2]}));
    assert_eq!(v["tier"], json!(3));
    assert_eq!(v["note"], json!("vip"));
    assert_eq!(ws.get("crm-1")?.map(|c| c.key), Some("full".to_owned()));

    assert!(ws.get("old-key")?.is_none());
    let moved = must_get(&ws, "new-key")?;
    assert_eq!(
        serde_json::to_value(&moved)?["email"],
        json!("robert@x.com")
    );
    assert!(ws.find_by_email("bob@x.com")?.is_empty());
    let by_email: Vec<String> = ws
        .find_by_email("robert@x.com")?
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(by_email, vec!["new-key"]);
    let by_phone: Vec<String> = ws
        .find_by_phone("+441234567890")?
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(by_phone, vec!["new-key"]);
    assert!(ws.find_by_email("u1@y.org")?.is_empty());
    assert_eq!(
        ws.find_by_email("u1-new@y.org")?
            .into_iter()
            .map(|c| c.key)
            .collect::<Vec<_>>(),
        vec!["k01"]
    );
    assert_eq!(
        ws.find_by_phone("+15550000002")?
            .into_iter()
            .map(|c| c.key)
            .collect::<Vec<_>>(),
        vec!["k02"]
    );
    assert!(ws.get("k03")?.is_none());
    assert_eq!(
        serde_json::to_value(must_get(&ws, "k03b")?)?["email"],
        json!("u3@y.org")
    );
    for n in [0, 29, 59] {
        let found: Vec<String> = ws
            .find_by_email(&format!("u{n}@y.org"))?
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(found, vec![format!("k{n:02}")]);
    }
    assert_eq!(
        serde_json::to_value(must_get(&ws, "k00")?)?["name"],
        json!("Zed")
    );

    // Insertion order: full, new-key (kept its place through the rekey), k00..k59.
    let mut order = Vec::new();
    ws.for_each_contact(|c| {
        order.push(c.key);
        ControlFlow::Continue(())
    })?;
    let mut want = vec!["full".to_owned(), "new-key".to_owned()];
    want.extend((0..60).map(|n| {
        if n == 3 {
            "k03b".to_owned()
        } else {
            format!("k{n:02}")
        }
    }));
    want.extend(ws.get("by-job")?.map(|c| c.key));
    assert_eq!(order, want);

    // The stored request id replays.
    let mut again = req(
        Mode::Upsert,
        vec![json!({"contact_key": "k00", "name": "Zed"})],
    );
    again.request_id = Some("fixture-1".into());
    assert!(ws.bulk(&again)?.replayed);

    let acme = db.workspace("acme")?;
    assert_eq!(acme.count()?, 1);
    assert_eq!(
        serde_json::to_value(must_get(&acme, "full")?)?["gsm"],
        json!("+905550000001")
    );
    Ok(())
}

/// `meta` as docs/format.md defines it: name → bytes.
const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

/// The file's `meta.format_version`.
fn format_version(path: &Path) -> Result<u32, Box<dyn std::error::Error>> {
    use redb::ReadableDatabase;
    let db = redb::Database::open(path)?;
    let r = db.begin_read()?;
    let meta = r.open_table(META)?;
    let v = meta.get("format_version")?.ok_or("no format_version")?;
    Ok(u32::from_be_bytes(v.value().try_into()?))
}

/// Entries of the base, mid and delta tables of the tiered table `name`, and
/// tombstones of its mid and delta tables; `V` is its value type (docs/format.md,
/// "Tiered tables": the base maps to `V`, the other levels to `Option<V>`).
fn tiered_states<V: redb::Value + 'static>(
    r: &redb::ReadTransaction,
    name: &str,
) -> Result<[u64; 5], Box<dyn std::error::Error>> {
    use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
    let base = r.open_table(TableDefinition::<&[u8], V>::new(name))?;
    let level = |suffix: &str| {
        let name = format!("{name}_{suffix}");
        let table = r.open_table(TableDefinition::<&[u8], Option<V>>::new(&name))?;
        let mut tombstones = 0;
        for e in table.iter()? {
            if e?.1.value().is_none() {
                tombstones += 1;
            }
        }
        Ok::<_, Box<dyn std::error::Error>>((table.len()?, tombstones))
    };
    let (mid, mid_tombstones) = level("mid")?;
    let (delta, delta_tombstones) = level("delta")?;
    Ok([base.len()?, mid, delta, mid_tombstones, delta_tombstones])
}

/// The file has entries in the base and delta tables of every tiered table, in the
/// mid tables of the two large ones, and tombstones in mid and delta tables, so
/// reading it exercises the whole overlay.
fn physical_states(path: &Path) -> TestResult {
    use redb::ReadableDatabase;
    let db = redb::Database::open(path)?;
    let r = db.begin_read()?;
    let mut tombstones = [0u64; 2];
    for (name, [base, mid, delta, mt, dt]) in [
        ("identifiers", tiered_states::<u64>(&r, "identifiers")?),
        ("email_index", tiered_states::<()>(&r, "email_index")?),
        ("phone_index", tiered_states::<()>(&r, "phone_index")?),
    ] {
        eprintln!("{name}: base {base}, mid {mid}, delta {delta}, tombstones {mt} + {dt}");
        // The phone index holds only a few entries: its levels stay two.
        assert!(
            base > 0 && delta > 0 && (mid > 0 || name == "phone_index"),
            "{name}: base {base}, mid {mid}, delta {delta}"
        );
        for (sum, n) in tombstones.iter_mut().zip([mt, dt]) {
            *sum += n;
        }
    }
    assert!(
        tombstones.iter().all(|n| *n > 0),
        "tombstones (mid, delta): {tombstones:?}"
    );
    Ok(())
}

/// A copy of the fixture of `version` (with its directory): opening a redb file
/// writes to it, and the committed fixtures must stay as they are.
fn copy_fixture(version: u32) -> Result<(tempfile::TempDir, PathBuf), Box<dyn std::error::Error>> {
    let src = fixture(version);
    assert!(
        src.exists(),
        "{} is missing; see this file's header",
        src.display()
    );
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join(format!("format{version}.redb"));
    std::fs::copy(&src, &copy)?;
    Ok((dir, copy))
}

/// Opens a fixture copy. The fixture's stored request id was applied when the
/// fixture was written; a retention of a century keeps it replayable however old
/// the fixture gets (with the default 7 days, this test began failing a week after
/// it was made).
fn open_fixture(path: &Path) -> Result<Database, contactdb::OpenError> {
    Database::builder()
        .request_id_retention_days(36_500)
        .open(path)
}

// The committed fixture still opens and reads the same, and again after a
// writable open closed it.
#[test]
fn format6_fixture_still_reads() -> TestResult {
    let (_dir, copy) = copy_fixture(6)?;
    assert_eq!(format_version(&copy)?, 6);
    physical_states(&copy)?;
    let db = open_fixture(&copy)?;
    expect(&db)?;
    expect_around(&db)?;
    drop(db);
    let db = open_fixture(&copy)?;
    expect(&db)?;
    expect_around(&db)
}

// A read-only open reads the fixture through every level of its index tables, and
// writes nothing.
#[test]
fn format6_fixture_reads_read_only() -> TestResult {
    let (_dir, copy) = copy_fixture(6)?;
    let bytes = std::fs::read(&copy)?;
    {
        let db = Database::builder()
            .request_id_retention_days(36_500)
            .open_read_only(&copy)?;
        assert_clean(&db)?;
        let ws = db.workspace("default")?;
        let mut emails = Vec::new();
        ws.for_each_contact(|c| {
            let email = serde_json::to_value(&c)
                .ok()
                .and_then(|v| v["email"].as_str().map(str::to_owned));
            emails.extend(email.map(|e| (c.key, e)));
            ControlFlow::Continue(())
        })?;
        assert!(emails.len() > 60, "{} emails", emails.len());
        for (key, email) in emails {
            let found: Vec<String> = ws
                .find_by_email(&email)?
                .into_iter()
                .map(|c| c.key)
                .collect();
            assert_eq!(found, vec![key], "{email}");
        }
        assert!(ws.find_by_email("bob@x.com")?.is_empty());
        assert!(ws.find_by_email("u1@y.org")?.is_empty());
        assert_eq!(ws.count()?, 63);
    }
    assert!(std::fs::read(&copy)? == bytes, "the file was written");
    Ok(())
}

// A file of another format version is refused, by writable and read-only opens
// alike, with the way over in the message, and left byte for byte as it was: the
// committed file of format 5 (whose index tables had a fourth, "frozen" level),
// and the format-6 fixture marked as format 4.
#[test]
fn another_format_version_is_refused_and_left_unchanged() -> TestResult {
    let (_dir5, five) = copy_fixture(5)?;
    assert_eq!(format_version(&five)?, 5);
    let (_dir, four) = copy_fixture(6)?;
    {
        let db = redb::Database::open(&four)?;
        let w = db.begin_write()?;
        w.open_table(META)?
            .insert("format_version", 4u32.to_be_bytes().as_slice())?;
        w.commit()?;
    }
    assert_eq!(format_version(&four)?, 4);
    for (copy, found) in [(five, 5), (four, 4)] {
        refused(&copy, found)?;
    }
    Ok(())
}

/// Checks that the file at `copy`, of format `found`, is refused and left as it was.
fn refused(copy: &Path, found: u32) -> TestResult {
    let bytes = std::fs::read(copy)?;
    let want = format!(
        "this file is format {found}; contactdb {} reads format 6 only: export it with the \
         contactdb version that wrote it (`contactdb export`) and import the export into a \
         new file",
        env!("CARGO_PKG_VERSION")
    );
    for read_only in [false, true] {
        let opened = if read_only {
            Database::builder().open_read_only(copy)
        } else {
            Database::open(copy)
        };
        let Err(e) = opened else {
            panic!("a format-{found} file opened (read_only {read_only})");
        };
        assert_eq!(e.to_string(), want, "read_only {read_only}");
        assert!(
            std::fs::read(copy)? == bytes,
            "the file was written (read_only {read_only})"
        );
    }
    Ok(())
}

// The recipe produces what `expect` checks (so the fixture can be regenerated), and
// writes the fixture when asked to.
#[test]
fn recipe_gives_the_expected_content() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("fresh.redb");
    recipe(&path)?;
    let db = Database::open(&path)?;
    expect(&db)?;
    expect_around(&db)?;
    drop(db);
    physical_states(&path)?;
    assert_eq!(format_version(&path)?, 6);
    if std::env::var_os("CONTACTDB_WRITE_FIXTURE").is_some() {
        let dst = fixture(6);
        std::fs::create_dir_all(dst.parent().unwrap())?;
        std::fs::copy(&path, &dst)?;
    }
    Ok(())
}
