//! R19: `Database::open_read_only` never creates or writes the file, follows the
//! commits of a writer handle open beside it, and refuses writes.

mod common;

use common::*;
use contactdb::{ColumnSpec, ColumnType, Database};
use serde_json::json;

#[test]
fn missing_file_is_no_database_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.redb");
    assert_eq!(error_kind(&Database::open_read_only(&path)), "no_database");
    assert!(!path.exists());
}

#[test]
fn reader_beside_writer_sees_commits_and_cannot_write() {
    let (_dir, path) = temp_path().unwrap();
    let (db, ws) = open_default(&path).unwrap();
    seed(&ws, json!({"contact_key": "a", "name": "A"})).unwrap();

    let ro = Database::open_read_only(&path).unwrap();
    assert!(ro.is_read_only());
    assert!(!db.is_read_only());
    let rws = ro.workspace("default").unwrap();
    assert_eq!(rws.count().unwrap(), 1);

    seed(&ws, json!({"contact_key": "b", "name": "B"})).unwrap();
    assert_eq!(rws.count().unwrap(), 2);
    assert_eq!(rws.get("b").unwrap().unwrap().columns["name"], "B");

    // Writes through the read-only handle are refused.
    assert_eq!(
        error_kind(&upsert(&rws, json!({"contact_key": "c"}))),
        "read_only"
    );
    let column = ColumnSpec::new("x", ColumnType::Integer);
    assert_eq!(error_kind(&rws.declare_column(column)), "read_only");
    assert_eq!(error_kind(&ro.create_workspace("w")), "read_only");
    assert!(ro.check().unwrap().is_empty());

    // A second writer is refused; the reader is not in its way.
    assert_eq!(error_kind(&Database::open(&path)), "already_open");
    drop(rws);
    drop(ws);
    drop(db);
    let before = std::fs::read(&path).unwrap();
    let ro2 = Database::open_read_only(&path).unwrap();
    assert_eq!(ro2.workspace("default").unwrap().count().unwrap(), 2);
    drop(ro2);
    drop(ro);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
