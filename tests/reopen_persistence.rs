//! Persistence: everything committed — contacts with every column type, aliases,
//! renames, custom columns, workspaces, indexes — is there after close and reopen,
//! and check() stays clean.

mod common;

use common::*;
use contactdb::{ColumnSpec, ColumnType, Contact, Database, Mode, Outcome, Status};
use serde_json::{Value, json};

fn all(db: &Database) -> Result<Vec<(String, Vec<Contact>)>, contactdb::Error> {
    let mut out = Vec::new();
    for w in db.workspaces()? {
        let ws = db.workspace(&w.slug)?;
        out.push((w.slug, ws.contacts()?));
    }
    Ok(out)
}

// Persistence: data, aliases, renames, custom columns, workspaces survive reopen.
#[test]
fn everything_survives_reopen() -> TestResult {
    let (_dir, path) = temp_path()?;
    let (snapshot, infos, specs) = {
        let (db, ws) = open_default(&path)?;
        db.create_workspace("acme")?;
        let acme = db.workspace("acme")?;
        ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
        ws.declare_column(ColumnSpec::new("score", ColumnType::Decimal).import_enabled(true))?;
        ws.declare_column(ColumnSpec::new("vip", ColumnType::Boolean).import_enabled(true))?;
        let every_column = json!({
            "contact_key": "full", "name": "Ann", "surname": "Lee", "gender": "f",
            "email": "ann@x.com", "email_permit": true, "gsm_permit": "no",
            "email_status": "P", "gsm_status": "a", "status": "p",
            "gsm": "+905551234567", "birthday": "1990-01-02",
            "subscription_start": "2024-02-29", "priority": 0,
            "metadata": {"tags": ["x", "y"], "n": 1.5},
            "tier": 3, "score": "12.25", "vip": true
        });
        seed(
            &ws,
            vec![
                every_column,
                json!({"contact_key": "old-key", "email": "bob@x.com"}),
            ],
        )?;
        // alias on `full`, rename of old-key
        add_alias(&ws, "crm-1", "ann@x.com")?;
        let rep = bulk(
            &ws,
            Mode::Update,
            json!({"contact_key": "old-key", "new_contact_key": "new-key"}),
        )?;
        assert_eq!(outcomes(&rep), [Outcome::Updated]);
        // acme: many contacts in one request
        let recs: Vec<Value> = (0..500)
            .map(|i| json!({"contact_key": format!("a{i:03}"), "gsm": format!("+9055500{i:05}")}))
            .collect();
        assert_eq!(bulk(&acme, Mode::Insert, recs)?.status, Status::Applied);
        assert_clean(&db)?;
        (all(&db)?, db.workspaces()?, ws.columns()?)
        // db, ws and acme are all dropped here
    };

    let (db, ws) = open_default(&path)?;
    assert_eq!(db.workspaces()?, infos);
    assert_eq!(all(&db)?, snapshot);
    assert_clean(&db)?;
    assert_eq!(ws.columns()?, specs);
    let full = must_get(&ws, "full")?;
    assert_eq!(full.aliases, vec!["crm-1".to_owned()]);
    assert_eq!(must_get(&ws, "crm-1")?.key, "full");
    assert_eq!(col(&full, "email_status"), json!("P"));
    assert_eq!(col(&full, "gsm_status"), json!("A"));
    assert_eq!(col(&full, "status"), json!("P"));
    assert_eq!(col(&full, "gsm_permit"), json!(false));
    assert_eq!(col(&full, "priority"), json!(0));
    assert_eq!(
        col(&full, "metadata"),
        json!({"n": 1.5, "tags": ["x", "y"]})
    );
    assert_eq!(col(&full, "tier"), json!(3));
    assert_eq!(col(&full, "score"), json!(12.25));
    assert_eq!(col(&full, "vip"), json!(true));
    assert_eq!(full.version, 2);
    assert!(ws.get("old-key")?.is_none());
    assert_eq!(must_get(&ws, "new-key")?.version, 2);
    // Indexes survive: find by email/phone, and matching uses them.
    assert_eq!(by_email(&ws, "BOB@x.com")?, ["new-key"]);
    let acme = db.workspace(&infos[0].uuid)?;
    assert_eq!(acme.info().slug, "acme");
    assert_eq!(acme.count()?, 500);
    let rep = acme.bulk(&match_all(
        Mode::Upsert,
        json!({"contact_key": "zz", "gsm": "0090 555 000 00 42"}),
    ))?;
    assert_eq!(rep.results[0].matched_by, Some(contactdb::MatchedBy::Phone));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("a042"));
    assert_clean(&db)
}

// Persistence: many reopen cycles with writes in between keep every committed
// record, versions and check() clean.
#[test]
fn repeated_reopen_cycles() -> TestResult {
    let (_dir, path) = temp_path()?;
    for round in 0..5u64 {
        let (db, ws) = open_default(&path)?;
        let expected = if round == 0 {
            0
        } else {
            101 + (round - 1) * 99
        };
        assert_eq!(ws.count()?, expected);
        if round > 0 {
            assert_eq!(must_get(&ws, "shared")?.version, round);
            assert_eq!(
                col(&must_get(&ws, "shared")?, "name"),
                json!(format!("r{}", round - 1))
            );
        }
        let mut recs: Vec<Value> = (0..99)
            .map(|i| json!({"contact_key": format!("r{round}-{i}")}))
            .collect();
        recs.push(json!({"contact_key": "shared", "name": format!("r{round}")}));
        if round == 0 {
            recs.push(json!({"contact_key": "r0-extra"}));
        }
        let rep = upsert(&ws, recs)?;
        assert_eq!(rep.status, Status::Applied);
        assert_clean(&db)?;
    }
    let (db, ws) = open_default(&path)?;
    assert_eq!(ws.count()?, 5 * 99 + 1 + 1);
    assert_eq!(must_get(&ws, "shared")?.version, 5);
    assert_clean(&db)
}

// Persistence: a rejected request leaves the file exactly as it was on reopen.
#[test]
fn rejected_request_leaves_no_trace_after_reopen() -> TestResult {
    let (_dir, path) = temp_path()?;
    let before = {
        let (_db, ws) = open_default(&path)?;
        seed(&ws, json!({"contact_key": "a", "name": "A"}))?;
        let rep = upsert(
            &ws,
            json!([{"contact_key": "a", "name": "B"}, {"contact_key": "x", "gsm": "1"}]),
        )?;
        assert_eq!(rep.status, Status::Rejected);
        ws.contacts()?
    };
    let (db, ws) = open_default(&path)?;
    assert_eq!(ws.contacts()?, before);
    assert_eq!(col(&must_get(&ws, "a")?, "name"), json!("A"));
    assert_clean(&db)
}

// Persistence: an empty file is initialized as a new database with `default`.
#[test]
fn empty_file_becomes_a_database() -> TestResult {
    let (_dir, path) = temp_path()?;
    std::fs::write(&path, b"")?;
    let db = Database::open(&path)?;
    let slugs: Vec<String> = db.workspaces()?.into_iter().map(|w| w.slug).collect();
    assert_eq!(slugs, vec!["default".to_owned()]);
    assert_clean(&db)
}

// R14: a new file appears complete or not at all. It is built under a temporary
// name and linked into place, so a process killed while creating it leaves no
// half-written database behind (which no later open could read), and no
// temporary file stays after a successful open.
#[test]
fn a_new_database_file_appears_complete() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("new.redb");
    let db = contactdb::Database::open(&path)?;
    assert!(db.workspace("default").is_ok());
    drop(db);
    let names: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(names, vec!["new.redb".to_owned()]);
    // A temporary file left by a creator that was killed does not stop a later
    // open, which creates the database again.
    let path2 = dir.path().join("other.redb");
    std::fs::write(dir.path().join(".other.redb.creating-1"), b"partial")?;
    let db = contactdb::Database::open(&path2)?;
    assert_eq!(db.workspace("default")?.count()?, 0);
    Ok(())
}
