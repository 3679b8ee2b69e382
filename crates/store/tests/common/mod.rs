//! Helpers shared by the store's integration tests.
// Test helpers: a failure here is a test failure, so unwrap is what we want.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use contactdb_backend::{Wait, WorkspaceId};
use contactdb_merge::{ContactWrite, Stored};
use contactdb_policy::{Contact, FieldId, Fields, Value};
use contactdb_store::{Store, StoreError, StoreOptions};

/// A store in a fresh temporary directory (kept alive by the returned guard).
pub fn temp_store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.contactdb");
    let store = Store::open(&path, &opts()).unwrap();
    (dir, path, store)
}

/// Small cache options for tests; a tiny delta threshold, so that applies keep
/// merging tiered deltas into mid and base tables, and tiny filter slack, so that
/// base filters keep being rebuilt.
pub fn opts() -> StoreOptions {
    StoreOptions {
        cache_size_bytes: 4 * 1024 * 1024,
        min_delta: 2,
        filter_slack_min: 3,
    }
}

/// A contact with optional email and gsm.
pub fn contact(key: &str, email: Option<&str>, gsm: Option<&str>) -> Contact {
    let mut fields = Fields::new();
    if let Some(e) = email {
        fields.set(FieldId::EMAIL, Value::Str(e.into()));
    }
    if let Some(g) = gsm {
        fields.set(FieldId::GSM, Value::Str(g.into()));
    }
    fields.set(FieldId::STATUS, Value::Str("A".into()));
    Contact {
        key: key.into(),
        fields,
        aliases: Vec::new(),
        version: 1,
        created_at_us: 1_000,
        updated_at_us: 1_000,
    }
}

/// The write inserting `c`.
pub fn insert(c: &Contact) -> ContactWrite {
    ContactWrite {
        before: None,
        after: c.clone(),
    }
}

/// The write changing `before` into `after`.
pub fn update(before: &Contact, after: &Contact) -> ContactWrite {
    ContactWrite {
        before: Some(Stored::without_id(before.clone())),
        after: after.clone(),
    }
}

/// Applies `writes` to `ws` in one committed transaction.
pub fn apply(store: &Store, ws: WorkspaceId, writes: &[ContactWrite]) -> Result<(), StoreError> {
    let mut w = store.begin_write(Wait::Block)?;
    w.apply(ws, writes)?;
    w.commit()
}

/// The id of the `default` workspace.
pub fn default_ws(store: &Store) -> WorkspaceId {
    store
        .read()
        .unwrap()
        .workspace("default")
        .unwrap()
        .unwrap()
        .id
}

/// Asserts that `check()` finds nothing.
pub fn assert_clean(store: &Store) {
    let problems = store.check().unwrap();
    assert!(problems.is_empty(), "integrity problems: {problems:#?}");
}
