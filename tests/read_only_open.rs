//! R19: `Database::open_read_only` never creates or writes the file, follows the
//! commits of a writer handle open beside it, and refuses writes.

use contactdb::{
    BulkError, BulkRequest, ColumnSpec, ColumnType, Database, Error, Mode, OpenError,
    WorkspaceError,
};
use serde_json::json;

#[test]
fn missing_file_is_no_database_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.redb");
    assert!(matches!(
        Database::open_read_only(&path),
        Err(OpenError::NotFound { .. })
    ));
    assert!(!path.exists());
}

#[test]
fn reader_beside_writer_sees_commits_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let db = Database::open(&path).unwrap();
    let ws = db.workspace("default").unwrap();
    ws.bulk(&BulkRequest::new(
        Mode::Upsert,
        vec![json!({"contact_key": "a", "name": "A"})],
    ))
    .unwrap();

    let ro = Database::open_read_only(&path).unwrap();
    assert!(ro.is_read_only());
    assert!(!db.is_read_only());
    let rws = ro.workspace("default").unwrap();
    assert_eq!(rws.count().unwrap(), 1);

    ws.bulk(&BulkRequest::new(
        Mode::Upsert,
        vec![json!({"contact_key": "b", "name": "B"})],
    ))
    .unwrap();
    assert_eq!(rws.count().unwrap(), 2);
    assert_eq!(rws.get("b").unwrap().unwrap().columns["name"], "B");

    // Writes through the read-only handle are refused.
    assert!(matches!(
        rws.bulk(&BulkRequest::new(
            Mode::Upsert,
            vec![json!({"contact_key": "c"})]
        )),
        Err(BulkError::ReadOnly)
    ));
    assert!(matches!(
        rws.declare_column(ColumnSpec::new("x", ColumnType::Integer)),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(
        ro.create_workspace("w"),
        Err(WorkspaceError::ReadOnly)
    ));
    assert!(ro.check().unwrap().is_empty());

    // A second writer is refused; the reader is not in its way.
    assert!(matches!(
        Database::open(&path),
        Err(OpenError::AlreadyOpen { .. })
    ));
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
