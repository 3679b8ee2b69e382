//! `Builder::compact_file`: the free pages copy-on-write leaves behind are given
//! back, and nothing else changes — the contacts, the indexes, the feed, and the
//! file's ability to take more writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use contactdb::{Database, OpenError};
use serde_json::{Value, json};

fn person(i: u64, round: u64) -> Value {
    json!({
        "contact_key": format!("c-{i:06}"),
        "name": format!("Name{round}"),
        "email": format!("p{i}.r{round}@example.com"),
        "gsm": format!("+4470{:08}", i * 7 + round),
    })
}

/// Everything a reader sees of the default workspace: every contact, and the
/// feed's events.
fn content(db: &Database) -> Res<(Vec<String>, Vec<String>)> {
    let ws = db.workspace("default")?;
    let contacts = ws
        .contacts()?
        .into_iter()
        .map(|c| serde_json::to_string(&c))
        .collect::<Result<Vec<_>, _>>()?;
    let events = ws
        .feed(0, 1_000_000)?
        .into_iter()
        .map(|e| format!("{e:?}"))
        .collect();
    Ok((contacts, events))
}

#[test]
fn compaction_gives_free_pages_back_and_changes_nothing_else() -> TestResult {
    let (_dir, path) = temp_path()?;
    // Small index buffers: the tiered tables merge into their bases, whose old
    // pages are then free.
    let db = Database::builder().index_buffer_min(64).open(&path)?;
    let ws = db.workspace("default")?;
    for round in 0..3 {
        for chunk in (0..4_000u64).collect::<Vec<_>>().chunks(500) {
            seed(
                &ws,
                chunk.iter().map(|&i| person(i, round)).collect::<Vec<_>>(),
            )?;
        }
    }
    let before = content(&db)?;
    assert_eq!(before.0.len(), 4_000);
    drop(ws);
    drop(db);

    let (size_before, size_after) = Database::builder().compact_file(&path)?;
    assert_eq!(size_after, std::fs::metadata(&path)?.len());
    assert!(
        size_after < size_before,
        "the file did not shrink: {size_before} -> {size_after} bytes"
    );

    let db = Database::builder().index_buffer_min(64).open(&path)?;
    assert_clean(&db)?;
    assert_eq!(content(&db)?, before);
    let ws = db.workspace("default")?;
    assert_eq!(by_email(&ws, "p17.r2@example.com")?, ["c-000017"]);
    assert!(by_email(&ws, "p17.r1@example.com")?.is_empty());
    // The compacted file takes more writes.
    seed(&ws, (0..600u64).map(|i| person(i, 9)).collect::<Vec<_>>())?;
    seed(&ws, person(9_999, 0))?;
    assert_eq!(ws.count()?, 4_001);
    assert_eq!(by_email(&ws, "p5.r9@example.com")?, ["c-000005"]);
    assert_clean(&db)?;
    drop(ws);
    drop(db);

    // Compacting again finds little or nothing to move, and keeps the content.
    let reopened = Database::open_read_only(&path)?;
    let again = content(&reopened)?;
    drop(reopened);
    let (b, a) = Database::builder().compact_file(&path)?;
    assert!(a <= b);
    let db = Database::open_read_only(&path)?;
    assert_eq!(content(&db)?, again);
    assert!(Database::builder().check_file(&path)?.is_empty());
    Ok(())
}

#[test]
fn compaction_needs_the_file_to_itself() -> TestResult {
    let (_dir, path) = temp_path()?;
    let db = Database::open(&path)?;
    seed(&db.workspace("default")?, person(1, 0))?;
    let size = std::fs::metadata(&path)?.len();
    match Database::builder().compact_file(&path) {
        Err(OpenError::AlreadyOpen { .. }) => {}
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&path)?.len(), size);
    assert_eq!(db.workspace("default")?.count()?, 1);
    Ok(())
}

#[test]
fn compaction_of_a_missing_file_creates_none() -> TestResult {
    let (_dir, path) = temp_path()?;
    match Database::builder().compact_file(&path) {
        Err(OpenError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!path.exists());
    Ok(())
}
