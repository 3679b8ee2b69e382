//! The three levels of the tiered index tables (docs/format.md, "Tiered tables")
//! seen through the public API: values that come and go again while earlier
//! versions sit in the mid table must leave every lookup right and every table
//! consistent (`Database::check` after each request).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use contactdb::{Database, Mode, Status};
use serde_json::{Value, json};

fn keys(found: Vec<contactdb::Contact>) -> Vec<String> {
    found.into_iter().map(|c| c.key).collect()
}

// An email and a key switched back and forth, with filler requests between the
// switches so that deltas merge into mid tables and full mid tables go into the
// bases.
#[test]
fn values_switched_back_and_forth_across_levels() -> TestResult {
    switch_back_and_forth(40)
}

// The same over a base of 300 contacts: mid tables then take many of these small
// requests to fill, and the switches land while values sit in delta, mid and base
// at once.
#[test]
fn values_switched_back_and_forth_across_levels_over_a_larger_base() -> TestResult {
    switch_back_and_forth(300)
}

fn switch_back_and_forth(contacts: usize) -> TestResult {
    let dir = tempfile::tempdir()?;
    let b = Database::builder().index_buffer_min(1);
    let db = b.open(dir.path().join("t.redb"))?;
    let ws = db.workspace("default")?;
    let base: Vec<Value> = (0..contacts)
        .map(|n| json!({"contact_key": format!("c{n:02}"), "email": format!("c{n}@x.org")}))
        .collect();
    assert_eq!(ws.bulk(&req(Mode::Insert, base))?.status, Status::Applied);
    let mut filler = 100;
    for round in 0..24 {
        let (email, key_from, key_to) = if round % 2 == 0 {
            ("flip@x.org", "c00", "c00-b")
        } else {
            ("c0@x.org", "c00-b", "c00")
        };
        let rep = bulk(
            &ws,
            Mode::Update,
            json!({"contact_key": key_from, "new_contact_key": key_to, "email": email}),
        )?;
        assert_eq!(rep.status, Status::Applied, "round {round}");
        assert_clean(&db)?;
        // Between switches, 1 to 3 new contacts: the deltas fill at different paces.
        let recs: Vec<Value> = (0..1 + round % 3)
            .map(|_| {
                filler += 1;
                json!({"contact_key": format!("f{filler}"), "email": format!("f{filler}@x.org")})
            })
            .collect();
        assert_eq!(ws.bulk(&req(Mode::Insert, recs))?.status, Status::Applied);
        assert_clean(&db)?;
        let (now, gone, other) = if round % 2 == 0 {
            ("c00-b", "c00", "c0@x.org")
        } else {
            ("c00", "c00-b", "flip@x.org")
        };
        assert_eq!(keys(ws.find_by_email(email)?), vec![now.to_owned()]);
        assert!(ws.find_by_email(other)?.is_empty(), "round {round}");
        assert!(ws.get(gone)?.is_none(), "round {round}");
        assert_eq!(ws.get(now)?.map(|c| c.key), Some(now.to_owned()));
    }
    Ok(())
}
