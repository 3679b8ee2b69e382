//! Integration tests of the store's public API: open/reopen, format version, locking,
//! workspaces, columns, contact writes and lookups, requests, jobs.

mod common;

use common::*;
use contactdb_backend::{JobDataKind, JobState, StoredRequest, Wait, WorkspaceId};
use contactdb_policy::{ColumnSpec, ColumnType, FieldId, Value};
use contactdb_store::{FORMAT_VERSION, Store, StoreError};

type TestResult = Result<(), StoreError>;

#[test]
fn new_file_has_default_workspace_and_reopen_persists() -> TestResult {
    let (_dir, path, store) = temp_store();
    assert_clean(&store);
    let r = store.read()?;
    let ws = r.workspaces()?;
    assert_eq!(ws.len(), 1);
    let default = ws[0].clone();
    assert_eq!(default.slug, "default");
    assert_eq!(default.uuid[6] >> 4, 4, "v4 uuid");
    drop(r);

    let mut w = store.begin_write(Wait::Block)?;
    let acme = w.create_workspace("acme", [1; 16], 77)?;
    let col = w.declare_column(
        acme.id,
        &ColumnSpec::new("tier", ColumnType::String { max_len: 10 }).import_enabled(true),
    )?;
    w.apply(
        acme.id,
        &[insert(&contact("k1", Some("a@x.io"), Some("+4912345678")))],
    )?;
    w.put_request(
        acme.id,
        "req-1",
        &StoredRequest {
            body_hash: [3; 32],
            applied_at_us: 5,
            report_json: "{\"status\":\"applied\"}".into(),
        },
    )?;
    w.commit()?;
    assert!(store.file_size()? > 0);
    drop(store);

    let store = Store::open(&path, &opts())?;
    assert_clean(&store);
    let r = store.read()?;
    assert_eq!(r.workspaces()?.len(), 2);
    assert_eq!(r.workspace("default")?, Some(default));
    let acme2 = r.workspace("acme")?.unwrap();
    assert_eq!(acme2, acme);
    assert_eq!(acme2.created_at_us, 77);
    assert_eq!(r.columns(acme.id)?, vec![col]);
    let cv = r.contacts(acme.id)?;
    assert_eq!(
        cv.get("k1")?,
        Some(contact("k1", Some("a@x.io"), Some("+4912345678")))
    );
    assert_eq!(cv.count()?, 1);
    let req = r.request(acme.id, "req-1")?.unwrap();
    assert_eq!(req.body_hash, [3; 32]);
    assert_eq!(req.report_json, "{\"status\":\"applied\"}");
    assert_eq!(r.request(acme.id, "req-2")?, None);
    // The default workspace is empty and separate.
    let dws = default_ws(&store);
    assert_eq!(r.contacts(dws)?.get("k1")?, None);
    assert_eq!(r.request(dws, "req-1")?, None);
    Ok(())
}

#[test]
fn format_version_mismatch_is_an_error() -> TestResult {
    let (_dir, path, store) = temp_store();
    drop(store);
    {
        let db = redb::Database::create(&path).unwrap();
        let t = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
            let mut m = t.open_table(meta).unwrap();
            m.insert("format_version", 7u32.to_be_bytes().as_slice())
                .unwrap();
        }
        t.commit().unwrap();
    }
    match Store::open(&path, &opts()) {
        Err(StoreError::FormatVersion { found, expected }) => {
            assert_eq!(found, 7);
            assert_eq!(expected, FORMAT_VERSION);
        }
        other => panic!("expected FormatVersion, got {other:?}"),
    }
    let msg = Store::open(&path, &opts()).unwrap_err().to_string();
    assert!(
        msg.contains('7') && msg.contains(&FORMAT_VERSION.to_string()),
        "{msg}"
    );
    Ok(())
}

#[test]
fn other_redb_files_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let t = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("stuff");
            t.open_table(def).unwrap().insert(1, 2).unwrap();
        }
        t.commit().unwrap();
    }
    assert!(matches!(
        Store::open(&path, &opts()),
        Err(StoreError::NotAContactDb)
    ));
    // A `meta` table of other types is not ours either.
    let path2 = dir.path().join("other2.redb");
    {
        let db = redb::Database::create(&path2).unwrap();
        let t = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("meta");
            t.open_table(def).unwrap().insert(1, 2).unwrap();
        }
        t.commit().unwrap();
    }
    assert!(matches!(
        Store::open(&path2, &opts()),
        Err(StoreError::NotAContactDb)
    ));
    let garbage = dir.path().join("garbage");
    std::fs::write(
        &garbage,
        b"this is not a database at all, just some text\n".repeat(200),
    )
    .unwrap();
    let err = Store::open(&garbage, &opts()).unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    // The refused file is untouched.
    assert!(std::fs::read(&garbage).unwrap().starts_with(b"this is not"));
}

#[test]
fn an_empty_file_becomes_a_new_database() -> TestResult {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path, &opts())?;
    assert!(store.read()?.workspace("default")?.is_some());
    Ok(())
}

#[test]
fn a_redb_file_with_no_tables_is_initialized() -> TestResult {
    // What a crash between creating the file and the first commit leaves.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare");
    drop(redb::Database::create(&path).unwrap());
    let store = Store::open(&path, &opts())?;
    assert!(store.read()?.workspace("default")?.is_some());
    assert_clean(&store);
    Ok(())
}

#[test]
fn check_refuses_a_redb_file_with_no_tables() {
    // A writer would make it a new database; readers refuse it, and so do the
    // check (which once initialized its copy and passed) and a repair.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare");
    drop(redb::Database::create(&path).unwrap());
    let before = std::fs::read(&path).unwrap();
    let found = Store::check_file(&path, &opts());
    assert!(matches!(found, Err(StoreError::NotAContactDb)), "{found:?}");
    assert!(matches!(
        Store::open_read_only(&path, &opts()),
        Err(StoreError::NotAContactDb)
    ));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the check wrote the file"
    );
    // Nor does a repair make it a new, empty database (once, it did and passed).
    let repaired = Store::repair_file(&path, &opts());
    assert!(
        matches!(repaired, Err(StoreError::NotAContactDb)),
        "{repaired:?}"
    );
    assert!(matches!(
        Store::open_read_only(&path, &opts()),
        Err(StoreError::NotAContactDb)
    ));
}

/// Offset of the flag byte in a redb file's header, after its 9-byte magic number.
const REDB_FLAGS: usize = 9;

#[test]
fn check_reports_a_header_that_serves_readers_the_previous_commit() -> TestResult {
    // Two commits, copied while the writer still has the file open: the header's
    // second commit slot holds the first commit, its first the second.
    let (dir, path, store) = temp_store();
    let mut w = store.begin_write(Wait::Block)?;
    w.create_workspace("one", [1; 16], 1)?;
    w.commit()?;
    let mut w = store.begin_write(Wait::Block)?;
    w.create_workspace("two", [2; 16], 2)?;
    w.commit()?;
    let mut bytes = std::fs::read(&path).unwrap();
    drop(store);
    assert_ne!(
        bytes[REDB_FLAGS] & 2,
        0,
        "a live writer keeps recovery required"
    );
    // Flags no writer leaves: primary unflushed without recovery required.
    bytes[REDB_FLAGS] = (bytes[REDB_FLAGS] & !2) | 8;
    let damaged = dir.path().join("damaged.contactdb");
    std::fs::write(&damaged, &bytes).unwrap();

    // What the flags mean to redb: readers are served the commit before the last.
    {
        let reader = Store::open_read_only(&damaged, &opts())?;
        let r = reader.read()?;
        assert!(r.workspace("one")?.is_some());
        assert!(
            r.workspace("two")?.is_none(),
            "readers were served the last commit: the flag byte changed meaning"
        );
    }
    let problems = Store::check_file(&damaged, &opts())?;
    assert!(
        problems
            .iter()
            .any(|p| p.table == "(file)" && p.message.contains("not yet flushed")),
        "{problems:#?}"
    );
    assert_eq!(
        std::fs::read(&damaged).unwrap(),
        bytes,
        "the check wrote the file"
    );

    // A repair (a writer's open) takes the last commit and clears the mark, and
    // says it repaired; the check passes then.
    let (clean, left) = Store::repair_file(&damaged, &opts())?;
    assert!(!clean, "the repair cleared the mark: it repaired the file");
    assert_eq!(left, Vec::new());
    let writer = Store::open(&damaged, &opts())?;
    assert!(writer.read()?.workspace("two")?.is_some());
    drop(writer);
    assert_eq!(Store::check_file(&damaged, &opts())?, Vec::new());
    let r = Store::open_read_only(&damaged, &opts())?;
    assert!(r.read()?.workspace("two")?.is_some());
    Ok(())
}

#[test]
fn second_open_in_the_same_process_is_already_open() {
    let (_dir, path, store) = temp_store();
    match Store::open(&path, &opts()) {
        Err(StoreError::AlreadyOpen { path: p }) => assert_eq!(p, path),
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    drop(store);
    assert!(Store::open(&path, &opts()).is_ok());
}

const CHILD_ENV: &str = "CONTACTDB_STORE_TEST_OPEN_PATH";

/// Run by `second_open_in_another_process_is_already_open` in a child process;
/// does nothing in a normal test run (the variable is unset).
#[test]
fn child_open_expects_already_open() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let res = Store::open(std::path::Path::new(&path), &opts());
    assert!(
        matches!(res, Err(StoreError::AlreadyOpen { .. })),
        "expected AlreadyOpen, got {res:?}"
    );
}

#[test]
fn second_open_in_another_process_is_already_open() {
    let (_dir, path, _store) = temp_store();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_open_expects_already_open",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "child did not run: {stdout}");
}

#[test]
fn try_write_while_a_write_is_live_is_busy() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let mut w = store.begin_write(Wait::No)?;
    w.apply(ws, &[insert(&contact("a", None, None))])?;
    assert!(matches!(store.begin_write(Wait::No), Err(StoreError::Busy)));
    // Reads do not block and see the committed state only.
    assert_eq!(store.read()?.contacts(ws)?.get("a")?, None);
    w.commit()?;
    let w2 = store.begin_write(Wait::No)?;
    assert!(store.read()?.contacts(ws)?.get("a")?.is_some());
    drop(w2);
    Ok(())
}

#[test]
fn blocking_write_waits_for_the_live_one() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let store = std::sync::Arc::new(store);
    let w = store.begin_write(Wait::Block)?;
    let s2 = store.clone();
    let t = std::thread::spawn(move || -> TestResult {
        let mut w = s2.begin_write(Wait::Block)?;
        // The first write committed before this one could start.
        assert!(s2.read()?.contacts(ws)?.get("first")?.is_some());
        w.apply(ws, &[insert(&contact("second", None, None))])?;
        w.commit()
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut w = w;
    w.apply(ws, &[insert(&contact("first", None, None))])?;
    w.commit()?;
    t.join().unwrap()?;
    assert_eq!(store.read()?.contacts(ws)?.count()?, 2);
    Ok(())
}

#[test]
fn dropping_a_write_view_aborts_it() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    {
        let mut w = store.begin_write(Wait::Block)?;
        w.apply(ws, &[insert(&contact("gone", Some("g@x.io"), None))])?;
        w.create_workspace("gone-too", [9; 16], 0)?;
    }
    let r = store.read()?;
    assert_eq!(r.contacts(ws)?.get("gone")?, None);
    assert!(r.contacts(ws)?.keys_by_email("g@x.io")?.is_empty());
    assert_eq!(r.workspace("gone-too")?, None);
    assert_clean(&store);
    Ok(())
}

#[test]
fn workspaces_by_slug_and_uuid() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let uuid = [
        0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f, 0xe0,
        0xc8,
    ];
    let mut w = store.begin_write(Wait::Block)?;
    let info = w.create_workspace("shop-1", uuid, 10)?;
    for bad in ["", "-x", "Shop", "a_b", "é", &"a".repeat(64)] {
        assert!(
            matches!(
                w.create_workspace(bad, [2; 16], 0),
                Err(StoreError::InvalidSlug { .. })
            ),
            "{bad:?}"
        );
    }
    // The message states the rule.
    let err = w.create_workspace("Shop", [2; 16], 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid workspace slug \"Shop\": must match [a-z0-9][a-z0-9-]{0,62}"
    );
    assert!(matches!(
        w.create_workspace("shop-1", [2; 16], 0),
        Err(StoreError::WorkspaceExists { .. })
    ));
    assert!(matches!(
        w.create_workspace("shop-2", uuid, 0),
        Err(StoreError::WorkspaceExists { .. })
    ));
    w.commit()?;
    let r = store.read()?;
    assert_eq!(r.workspace("shop-1")?, Some(info.clone()));
    assert_eq!(
        r.workspace("67e55044-10b1-426f-9247-bb680e5fe0c8")?,
        Some(info.clone())
    );
    assert_eq!(
        r.workspace("67E5504410B1426F9247BB680E5FE0C8")?,
        Some(info.clone())
    );
    assert_eq!(r.workspace("nope")?, None);
    assert_eq!(r.workspace("00000000-0000-0000-0000-000000000000")?, None);
    let all = r.workspaces()?;
    assert_eq!(all.len(), 2);
    assert!(all[0].id < all[1].id);
    assert_eq!(r.workspace_by_id(info.id)?, Some(info.clone()));
    // A workspace id this database does not hold is refused, never an implicit
    // create (R1).
    let missing = WorkspaceId(999);
    assert_eq!(r.workspace_by_id(missing)?, None);
    assert!(matches!(
        r.contacts(missing),
        Err(StoreError::UnknownWorkspace(WorkspaceId(999)))
    ));
    assert!(matches!(
        r.columns(missing),
        Err(StoreError::UnknownWorkspace(WorkspaceId(999)))
    ));
    drop(r);
    let mut w = store.begin_write(Wait::Block)?;
    let err = w
        .apply(missing, &[insert(&contact("a", None, None))])
        .unwrap_err();
    assert_eq!(err.to_string(), "workspace id 999 is not in this database");
    assert!(matches!(
        w.declare_column(missing, &ColumnSpec::new("x", ColumnType::Integer)),
        Err(StoreError::UnknownWorkspace(WorkspaceId(999)))
    ));
    Ok(())
}

#[test]
fn slug_wins_over_uuid_text() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let text = "11111111-1111-4111-8111-111111111111";
    let mut w = store.begin_write(Wait::Block)?;
    let by_uuid = w.create_workspace("one", [0x11; 16], 0)?;
    let by_slug = w.create_workspace(text, [0x22; 16], 0)?;
    w.commit()?;
    let r = store.read()?;
    assert_eq!(r.workspace(text)?, Some(by_slug));
    assert_eq!(
        r.workspace("11111111111111111111111111111111")?,
        Some(by_uuid)
    );
    Ok(())
}

#[test]
fn declare_column_rules() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let mut w = store.begin_write(Wait::Block)?;
    let tier = w.declare_column(
        ws,
        &ColumnSpec::new("tier", ColumnType::String { max_len: 5 }),
    )?;
    assert_eq!(tier.id, FieldId(FieldId::CUSTOM_FIRST));
    let score = w.declare_column(ws, &ColumnSpec::new("score", ColumnType::Integer))?;
    assert_eq!(score.id, FieldId(FieldId::CUSTOM_FIRST + 1));
    // Same type: flags change, id stays.
    let tier2 = w.declare_column(
        ws,
        &ColumnSpec::new("tier", ColumnType::String { max_len: 5 })
            .import_enabled(true)
            .required(true),
    )?;
    assert_eq!(tier2.id, tier.id);
    assert!(tier2.spec.import_enabled && tier2.spec.required);
    // Invalid declarations.
    for bad in ["Tier", "email", "identifier", "version", "1x", ""] {
        assert!(
            matches!(
                w.declare_column(ws, &ColumnSpec::new(bad, ColumnType::Integer)),
                Err(StoreError::ColumnInvalid { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        w.declare_column(ws, &ColumnSpec::new("s", ColumnType::String { max_len: 0 })),
        Err(StoreError::ColumnInvalid { .. })
    ));
    // Type change of an unused column is allowed.
    let score2 = w.declare_column(ws, &ColumnSpec::new("score", ColumnType::Decimal))?;
    assert_eq!(score2.id, score.id);
    // A contact with a value for `tier` blocks its type change.
    let mut c = contact("k", None, None);
    c.fields.set(tier.id, Value::Str("gold".into()));
    w.apply(ws, &[insert(&c)])?;
    assert!(matches!(
        w.declare_column(ws, &ColumnSpec::new("tier", ColumnType::Integer)),
        Err(StoreError::ColumnInUse { name }) if name == "tier"
    ));
    // A string's max_len is part of its type.
    assert!(matches!(
        w.declare_column(
            ws,
            &ColumnSpec::new("tier", ColumnType::String { max_len: 9 })
        ),
        Err(StoreError::ColumnInUse { .. })
    ));
    // Columns are per workspace: ids restart in another workspace.
    let other = w.create_workspace("other", [5; 16], 0)?;
    let o = w.declare_column(other.id, &ColumnSpec::new("tier", ColumnType::Integer))?;
    assert_eq!(o.id, FieldId(FieldId::CUSTOM_FIRST));
    w.commit()?;

    let r = store.read()?;
    let cols = r.columns(ws)?;
    assert_eq!(cols.len(), 2);
    assert_eq!(cols[0].spec.name, "tier");
    assert_eq!(cols[0].spec.ty, ColumnType::String { max_len: 5 });
    assert!(cols[0].spec.required);
    assert_eq!(cols[1].spec.ty, ColumnType::Decimal);
    assert_eq!(r.columns(other.id)?.len(), 1);
    drop(r);
    assert_clean(&store);
    Ok(())
}

#[test]
fn at_most_1000_custom_columns() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let mut w = store.begin_write(Wait::Block)?;
    for i in 0..1000 {
        w.declare_column(ws, &ColumnSpec::new(format!("c{i}"), ColumnType::Boolean))?;
    }
    assert!(matches!(
        w.declare_column(ws, &ColumnSpec::new("one_more", ColumnType::Boolean)),
        Err(StoreError::TooManyColumns)
    ));
    // Redeclaring an existing one is still fine.
    w.declare_column(
        ws,
        &ColumnSpec::new("c5", ColumnType::Boolean).import_enabled(true),
    )?;
    w.commit()?;
    let cols = store.read()?.columns(ws)?;
    assert_eq!(cols.len(), 1000);
    assert_eq!(
        cols.last().unwrap().id,
        FieldId(FieldId::CUSTOM_FIRST + 999)
    );
    Ok(())
}

#[test]
fn prune_requests_removes_only_old_ones_of_that_workspace() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let req = |t: i64| StoredRequest {
        body_hash: [0; 32],
        applied_at_us: t,
        report_json: "{}".into(),
    };
    let mut w = store.begin_write(Wait::Block)?;
    let other = w.create_workspace("other", [4; 16], 0)?;
    w.put_request(ws, "a", &req(10))?;
    w.put_request(ws, "b", &req(20))?;
    w.put_request(ws, "c", &req(30))?;
    w.put_request(other.id, "a", &req(10))?;
    w.commit()?;
    let mut w = store.begin_write(Wait::Block)?;
    assert_eq!(w.prune_requests(ws, 20)?, 1);
    assert_eq!(w.prune_requests(ws, 20)?, 0);
    w.commit()?;
    let r = store.read()?;
    assert_eq!(r.request(ws, "a")?, None);
    assert!(r.request(ws, "b")?.is_some());
    assert!(r.request(ws, "c")?.is_some());
    assert!(r.request(other.id, "a")?.is_some());
    drop(r);
    assert_clean(&store);

    // An expired id applied again replaces the old entry and its expiry: pruning at
    // a time between the two keeps the new one. Negative times sort first.
    let mut w = store.begin_write(Wait::Block)?;
    w.put_request(ws, "b", &req(-5))?;
    w.put_request(ws, "b", &req(40))?;
    assert_eq!(w.prune_requests(ws, 35)?, 1, "only c (30) is expired");
    w.commit()?;
    let r = store.read()?;
    assert_eq!(r.request(ws, "b")?.map(|q| q.applied_at_us), Some(40));
    assert_eq!(r.request(ws, "c")?, None);
    drop(r);
    assert_clean(&store);
    Ok(())
}

#[test]
fn inserts_updates_and_lookups() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let a = contact("a", Some("shared@x.io"), Some("+111111111"));
    let b = contact("b", Some("shared@x.io"), None);
    let c = contact("c", None, Some("+111111111"));
    apply(&store, ws, &[insert(&a), insert(&b), insert(&c)])?;
    assert_clean(&store);
    {
        let r = store.read()?;
        let v = r.contacts(ws)?;
        assert_eq!(v.keys_by_email("shared@x.io")?, vec!["a", "b"]);
        assert_eq!(v.keys_by_phone("+111111111")?, vec!["a", "c"]);
        assert!(v.keys_by_email("shared@x.i")?.is_empty());
        assert!(v.keys_by_email("shared@x.io2")?.is_empty());
        assert_eq!(v.count()?, 3);
        let keys: Vec<String> = v.iter()?.map(|c| c.unwrap().key).collect();
        assert_eq!(keys, vec!["a", "b", "c"]);
    }
    // Update: a changes email, b clears it, c gets an email; versions rise.
    let mut a2 = a.clone();
    a2.fields.set(FieldId::EMAIL, Value::Str("new@x.io".into()));
    a2.version = 2;
    let mut b2 = b.clone();
    b2.fields.remove(FieldId::EMAIL);
    b2.fields.set(FieldId::NAME, Value::Str("Bee".into()));
    b2.version = 2;
    let mut c2 = c.clone();
    c2.fields
        .set(FieldId::EMAIL, Value::Str("shared@x.io".into()));
    c2.version = 2;
    apply(
        &store,
        ws,
        &[update(&a, &a2), update(&b, &b2), update(&c, &c2)],
    )?;
    assert_clean(&store);
    let r = store.read()?;
    let v = r.contacts(ws)?;
    assert_eq!(v.keys_by_email("shared@x.io")?, vec!["c"]);
    assert_eq!(v.keys_by_email("new@x.io")?, vec!["a"]);
    assert_eq!(v.get("a")?, Some(a2));
    assert_eq!(v.get("b")?, Some(b2.clone()));
    assert_eq!(v.resolve("b")?, Some(b2));
    assert_eq!(v.get("zzz")?, None);
    assert_eq!(v.resolve("zzz")?, None);
    Ok(())
}

#[test]
fn aliases_rekeys_and_swaps() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let a = contact("a", Some("a@x.io"), Some("+1000001"));
    let b = contact("b", Some("b@x.io"), Some("+1000002"));
    apply(&store, ws, &[insert(&a), insert(&b)])?;

    // Alias added to a (R9).
    let mut a2 = a.clone();
    a2.aliases.push("a-alias".into());
    a2.version = 2;
    apply(&store, ws, &[update(&a, &a2)])?;
    assert_clean(&store);
    {
        let r = store.read()?;
        let v = r.contacts(ws)?;
        assert_eq!(v.resolve("a-alias")?, Some(a2.clone()));
        assert_eq!(v.get("a-alias")?, None, "get is primary-key only");
    }

    // Swap keys of a and b in one call: a→b, b→a.
    let mut a3 = a2.clone();
    a3.key = "b".into();
    a3.version = 3;
    let mut b3 = b.clone();
    b3.key = "a".into();
    b3.version = 2;
    apply(&store, ws, &[update(&a2, &a3), update(&b, &b3)])?;
    assert_clean(&store);
    {
        let r = store.read()?;
        let v = r.contacts(ws)?;
        assert_eq!(v.get("b")?, Some(a3.clone()));
        assert_eq!(v.get("a")?, Some(b3.clone()));
        assert_eq!(v.resolve("a-alias")?, Some(a3.clone()));
        assert_eq!(v.keys_by_email("a@x.io")?, vec!["b"]);
        assert_eq!(v.keys_by_email("b@x.io")?, vec!["a"]);
        assert_eq!(v.keys_by_phone("+1000001")?, vec!["b"]);
        assert_eq!(v.keys_by_phone("+1000002")?, vec!["a"]);
    }

    // Chain: b→c and a→b in one call; a3 (now "b") becomes "c".
    let mut a4 = a3.clone();
    a4.key = "c".into();
    a4.version = 4;
    let mut b4 = b3.clone();
    b4.key = "b".into();
    b4.version = 3;
    apply(&store, ws, &[update(&a3, &a4), update(&b3, &b4)])?;
    assert_clean(&store);
    {
        let r = store.read()?;
        let v = r.contacts(ws)?;
        assert_eq!(v.get("a")?, None);
        assert_eq!(v.resolve("a")?, None, "the old key stops resolving (R11)");
        assert_eq!(v.get("b")?, Some(b4.clone()));
        assert_eq!(v.get("c")?, Some(a4.clone()));
        assert_eq!(v.resolve("a-alias")?, Some(a4.clone()));
        assert_eq!(v.count()?, 2);
    }

    // Rekey to its own alias: the alias becomes the key and leaves the list; the
    // freed key "c" becomes an alias of b in the same call.
    let mut a5 = a4.clone();
    a5.key = "a-alias".into();
    a5.aliases.clear();
    a5.version = 5;
    let mut b5 = b4.clone();
    b5.aliases.push("c".into());
    b5.version = 4;
    apply(&store, ws, &[update(&a4, &a5), update(&b4, &b5)])?;
    assert_clean(&store);
    {
        let r = store.read()?;
        let v = r.contacts(ws)?;
        assert_eq!(v.get("a-alias")?, Some(a5.clone()));
        assert_eq!(v.resolve("c")?, Some(b5.clone()));
        assert_eq!(v.get("c")?, None);
        assert_eq!(v.keys_by_email("a@x.io")?, vec!["a-alias"]);
    }

    // Move an alias from one contact to another in one call, and drop one.
    let mut b6 = b5.clone();
    b6.aliases.clear();
    b6.version = 5;
    let mut a6 = a5.clone();
    a6.aliases.push("c".into());
    a6.aliases.push("zed".into());
    a6.version = 6;
    apply(&store, ws, &[update(&b5, &b6), update(&a5, &a6)])?;
    assert_clean(&store);
    let r = store.read()?;
    let v = r.contacts(ws)?;
    assert_eq!(v.resolve("c")?.map(|c| c.key), Some("a-alias".into()));
    assert_eq!(v.resolve("zed")?.map(|c| c.key), Some("a-alias".into()));
    assert_eq!(v.resolve("b")?, Some(b6));
    Ok(())
}

#[test]
fn same_keys_in_two_workspaces_are_separate() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let mut w = store.begin_write(Wait::Block)?;
    let other = w.create_workspace("other", [8; 16], 0)?;
    w.apply(ws, &[insert(&contact("k", Some("e@x.io"), None))])?;
    w.apply(other.id, &[insert(&contact("k", Some("f@x.io"), None))])?;
    w.commit()?;
    assert_clean(&store);
    let r = store.read()?;
    let v1 = r.contacts(ws)?;
    let v2 = r.contacts(other.id)?;
    assert_eq!(v1.get("k")?.unwrap().email(), Some("e@x.io"));
    assert_eq!(v2.get("k")?.unwrap().email(), Some("f@x.io"));
    assert!(v1.keys_by_email("f@x.io")?.is_empty());
    assert!(v2.keys_by_email("e@x.io")?.is_empty());
    assert_eq!(v1.count()?, 1);
    assert_eq!(v2.count()?, 1);
    Ok(())
}

#[test]
fn read_after_begin_write_sees_the_write_base() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    apply(&store, ws, &[insert(&contact("x", None, None))])?;
    let mut w = store.begin_write(Wait::No)?;
    let r = store.read()?;
    let v = r.contacts(ws)?;
    // Lookups from many threads at once (the merge's parallel phase).
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    assert!(v.resolve("x").unwrap().is_some());
                }
            });
        }
    });
    let x = v.get("x")?.unwrap();
    let mut x2 = x.clone();
    x2.version = 2;
    x2.fields.set(FieldId::NAME, Value::Str("X".into()));
    w.apply(ws, &[update(&x, &x2)])?;
    w.commit()?;
    // The old snapshot still reads the old state.
    assert_eq!(v.get("x")?, Some(x));
    assert_eq!(store.read()?.contacts(ws)?.get("x")?, Some(x2));
    Ok(())
}

#[test]
fn iteration_streams_in_insertion_order() -> TestResult {
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let keys: Vec<String> = (0..500).map(|i| format!("key-{i:05}")).collect();
    let writes: Vec<_> = keys
        .iter()
        .rev()
        .map(|k| insert(&contact(k, None, None)))
        .collect();
    apply(&store, ws, &writes)?;
    let r = store.read()?;
    let v = r.contacts(ws)?;
    assert_eq!(v.count()?, 500);
    let got: Vec<String> = v
        .iter()?
        .map(|c| c.map(|c| c.key))
        .collect::<Result<_, _>>()?;
    let inserted: Vec<String> = keys.iter().rev().cloned().collect();
    assert_eq!(got, inserted);
    assert_eq!(v.iter()?.take(3).count(), 3);
    Ok(())
}

#[test]
fn problems_display() {
    let p = contactdb_store::Problem {
        table: "email_index",
        key: "1:a@x.io\\0k".into(),
        message: "points to missing contact".into(),
    };
    assert_eq!(
        p.to_string(),
        "email_index [1:a@x.io\\0k]: points to missing contact"
    );
}

#[test]
fn raw_read_of_an_open_store_is_refused_by_redb() {
    // Sanity of the locking assumption behind AlreadyOpen: redb itself refuses.
    let (_dir, path, _store) = temp_store();
    let res = redb::Database::builder().open_read_only(&path);
    assert!(matches!(res, Err(redb::DatabaseError::DatabaseAlreadyOpen)));
}

// The merge's lookup gives each contact with its internal id, which `apply` takes
// for the write back; an id that disagrees with the contact's key is refused as
// corruption (debug builds check the id against `identifiers`), and nothing is
// written.
#[test]
fn lookup_ids_round_trip_and_a_wrong_id_is_refused() -> TestResult {
    use contactdb_merge::{ContactWrite, Lookup, Stored};
    let (_dir, _path, store) = temp_store();
    let ws = default_ws(&store);
    let a = contact("a", Some("a@x.io"), None);
    let b = contact("b", None, Some("+222222222"));
    let mut w = store.begin_write(Wait::Block)?;
    let ids = w.apply(ws, &[insert(&a), insert(&b)])?;
    w.commit()?;
    let (a_id, b_id) = (ids[0], ids[1]);
    assert_ne!(a_id, b_id);
    let r = store.read()?;
    let v = r.contacts(ws)?;
    let found = v.by_identifier("a")?.expect("a is stored");
    assert_eq!(
        found,
        Stored {
            id: Some(a_id),
            contact: a.clone()
        }
    );
    let by_phone = Lookup::contacts_by_phone(&v, "+222222222")?;
    assert_eq!(
        by_phone,
        vec![Stored {
            id: Some(b_id),
            contact: b.clone()
        }]
    );

    let mut a2 = a.clone();
    a2.fields.set(FieldId::NAME, Value::Str("Ay".into()));
    a2.version = 2;
    let wrong = ContactWrite {
        before: Some(Stored {
            id: Some(b_id),
            contact: a.clone(),
        }),
        after: a2.clone(),
    };
    let mut w = store.begin_write(Wait::Block)?;
    let err = w.apply(ws, &[wrong]).expect_err("a wrong id was taken");
    assert!(
        err.to_string().contains("was read at id"),
        "unexpected error: {err}"
    );
    drop(w);
    let right = ContactWrite {
        before: Some(found),
        after: a2.clone(),
    };
    let mut w = store.begin_write(Wait::Block)?;
    assert_eq!(w.apply(ws, &[right])?, vec![a_id]);
    w.commit()?;
    assert_eq!(store.read()?.contacts(ws)?.get("a")?, Some(a2));
    assert_clean(&store);
    Ok(())
}

#[test]
fn jobs_round_trip_every_state_through_the_shared_record() -> TestResult {
    let (_dir, path, store) = temp_store();
    let ws = WorkspaceId(1);
    let request = r#"{"mode":"upsert"}"#;
    let mut w = store.begin_write(Wait::Block)?;
    let submitted = w.submit_job(ws, [7; 16], request.to_owned(), 10, 50)?;
    w.commit()?;
    assert_eq!(submitted.state, JobState::Queued);
    assert_eq!(store.read()?.job(ws, &[7; 16])?, Some(submitted.clone()));
    for state in [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ] {
        let mut j = submitted.clone();
        j.state = state;
        j.processed = 4;
        j.error = (state == JobState::Failed).then(|| "why".to_owned());
        let mut w = store.begin_write(Wait::Block)?;
        w.put_job(ws, &j)?;
        w.commit()?;
        assert_eq!(store.read()?.job(ws, &[7; 16])?, Some(j.clone()));
        let unfinished = store.read()?.jobs(ws, true)?;
        assert_eq!(unfinished.len(), usize::from(!state.is_final()));
    }
    // The redb store keeps no runner lease: one given is not stored.
    let mut leased = submitted.clone();
    leased.state = JobState::Running;
    leased.lease_owner = Some("runner".to_owned());
    leased.lease_until_us = Some(99);
    let mut w = store.begin_write(Wait::Block)?;
    w.put_job(ws, &leased)?;
    w.commit()?;
    drop(store);
    let store = Store::open(&path, &opts())?;
    let r = store.read()?;
    let back = r.job(ws, &[7; 16])?.expect("the job is stored");
    assert_eq!(
        (back.state, back.lease_owner, back.lease_until_us),
        (JobState::Running, None, None)
    );
    let data = r.job_data(ws, submitted.number, JobDataKind::Request)?;
    assert_eq!(data, vec![(vec![0; 4], request.as_bytes().to_vec())]);
    Ok(())
}

#[test]
fn a_large_job_request_is_stored_in_pieces_of_at_most_63_kib() -> TestResult {
    // A request value larger than a page would be copied whole by every write that
    // lands in its leaf (each chunk's report sorts right before it).
    let (_dir, _path, store) = temp_store();
    let ws = WorkspaceId(1);
    let request: String = (0..40_000)
        .map(|i| format!("{{\"contact_key\":\"k{i}\"}},"))
        .collect();
    assert!(request.len() > 3 * 63 * 1024, "more than three pieces");
    let mut w = store.begin_write(Wait::Block)?;
    let job = w.submit_job(ws, [9; 16], request.clone(), 40_000, 50)?;
    w.commit()?;
    assert_clean(&store);
    let pieces = store
        .read()?
        .job_data(ws, job.number, JobDataKind::Request)?;
    assert!(pieces.len() > 3, "{} pieces", pieces.len());
    for ((rest, piece), n) in pieces.iter().zip(0u32..) {
        assert_eq!(rest, &n.to_be_bytes().to_vec());
        assert!(piece.len() <= 63 * 1024, "piece {n}: {} bytes", piece.len());
    }
    let whole: Vec<u8> = pieces.into_iter().flat_map(|(_, p)| p).collect();
    assert_eq!(whole, request.as_bytes());
    // Chunk reports written beside it leave the pieces as they were.
    let mut w = store.begin_write(Wait::Block)?;
    for chunk in 0u32..20 {
        w.put_job_data(
            ws,
            job.number,
            JobDataKind::Report,
            &chunk.to_be_bytes(),
            b"{}",
        )?;
    }
    w.commit()?;
    let again = store
        .read()?
        .job_data(ws, job.number, JobDataKind::Request)?;
    let whole: Vec<u8> = again.into_iter().flat_map(|(_, p)| p).collect();
    assert_eq!(whole, request.as_bytes());
    assert_clean(&store);
    // Clearing takes every entry of the job, of every kind, and no other job's.
    let mut w = store.begin_write(Wait::Block)?;
    let other = w.submit_job(ws, [8; 16], "{}".to_owned(), 0, 60)?;
    for id in 0u64..1_000 {
        w.put_job_data(
            ws,
            job.number,
            JobDataKind::Reached,
            &id.to_be_bytes(),
            &[0; 4],
        )?;
    }
    w.clear_job_data(ws, job.number)?;
    w.commit()?;
    let r = store.read()?;
    for kind in [
        JobDataKind::LeftOut,
        JobDataKind::Reached,
        JobDataKind::Report,
        JobDataKind::Request,
    ] {
        assert_eq!(r.job_data(ws, job.number, kind)?, vec![], "{kind:?}");
    }
    assert_eq!(
        r.job_data(ws, other.number, JobDataKind::Request)?,
        vec![(vec![0; 4], b"{}".to_vec())]
    );
    Ok(())
}

#[test]
fn a_long_job_report_is_read_back_whole_and_outlives_the_jobs_working_data() -> TestResult {
    // A report longer than a piece is stored beside the job's record, in pieces.
    let (_dir, path, store) = temp_store();
    let ws = WorkspaceId(1);
    let mut w = store.begin_write(Wait::Block)?;
    let job = w.submit_job(ws, [5; 16], "{}".to_owned(), 3, 50)?;
    w.commit()?;
    let report: String = (0..20_000)
        .map(|i| format!("{{\"key\":\"k{i}\",\"status\":\"inserted\"}},"))
        .collect();
    assert!(report.len() > 4 * 63 * 1024);
    let mut done = job.clone();
    done.state = JobState::Succeeded;
    done.processed = 3;
    done.report_json = report.clone();
    let mut w = store.begin_write(Wait::Block)?;
    w.put_job(ws, &done)?;
    w.clear_job_data(ws, done.number)?;
    assert_eq!(
        w.job(ws, &[5; 16])?.map(|j| j.report_json),
        Some(report.clone())
    );
    w.commit()?;
    assert_clean(&store);
    assert_eq!(store.read()?.job(ws, &[5; 16])?, Some(done.clone()));
    // The list leaves a report kept in pieces out.
    let mut listed = done.clone();
    listed.report_json = String::new();
    assert_eq!(store.read()?.jobs(ws, false)?, vec![listed]);
    // The working data is gone, the report is not.
    assert_eq!(
        store
            .read()?
            .job_data(ws, done.number, JobDataKind::Request)?,
        vec![]
    );
    drop(store);
    let store = Store::open(&path, &opts())?;
    assert_eq!(store.read()?.job(ws, &[5; 16])?, Some(done.clone()));
    // A short report replaces the pieces.
    let mut short = done.clone();
    short.report_json = "{\"status\":\"applied\"}".to_owned();
    let mut w = store.begin_write(Wait::Block)?;
    w.put_job(ws, &short)?;
    w.commit()?;
    assert_eq!(store.read()?.job(ws, &[5; 16])?, Some(short));
    assert_clean(&store);
    Ok(())
}
