//! The tables around the contacts: campaigns and memberships, the feed, jobs; and
//! `check` finding each kind of broken membership.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use contactdb_backend::{EventKind, NewEvent, Wait};
use contactdb_store::Store;
use redb::ReadableTable;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn problems(store: &Store) -> Vec<String> {
    store
        .check()
        .unwrap()
        .into_iter()
        .map(|p| p.to_string())
        .collect()
}

// A membership without its pick entry, and a pick entry whose priority is not the
// contact's, are both reported; so is a member count that disagrees.
#[test]
fn check_finds_broken_memberships() -> TestResult {
    let (_dir, path, store) = temp_store();
    let ws = default_ws(&store);
    apply(
        &store,
        ws,
        &[
            insert(&contact("a", None, None)),
            insert(&contact("b", None, None)),
        ],
    )?;
    {
        let mut w = store.begin_write(Wait::Block)?;
        let c = w.create_campaign(ws, "c", &[], 1)?;
        let a = w.contact_id(ws, "a")?.unwrap();
        let b = w.contact_id(ws, "b")?.unwrap();
        assert!(w.join_campaign(ws, c.number, a, 5)?);
        assert!(!w.join_campaign(ws, c.number, a, 5)?);
        assert!(w.join_campaign(ws, c.number, b, 5)?);
        w.append_events(
            ws,
            &[NewEvent {
                kind: EventKind::Join,
                key: "a",
                version: 1,
                detail: Some("c"),
            }],
            1,
            None,
            None,
        )?;
        w.commit()?;
    }
    assert_eq!(problems(&store), Vec::<String>::new());
    drop(store);
    // Break it below the store: drop one pick entry, and give b a stale priority.
    {
        let db = redb::Database::open(&path)?;
        let tx = db.begin_write()?;
        {
            let def: redb::TableDefinition<&[u8], &[u8]> =
                redb::TableDefinition::new("campaign_pick");
            let mut pick = tx.open_table(def)?;
            let first = pick.iter()?.next().unwrap()?.0.value().to_vec();
            pick.remove(first.as_slice())?;
            let mdef: redb::TableDefinition<&[u8], &[u8]> =
                redb::TableDefinition::new("memberships");
            let mut m = tx.open_table(mdef)?;
            let last = m.iter()?.next_back().unwrap()?;
            let (k, mut v) = (last.0.value().to_vec(), last.1.value().to_vec());
            drop(last);
            v[3] = 9;
            m.insert(k.as_slice(), v.as_slice())?;
        }
        tx.commit()?;
    }
    let store = Store::open(&path, &opts())?;
    let found = problems(&store);
    assert!(
        found
            .iter()
            .any(|p| p.contains("no pick entry names this contact")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("but the contact's is 5")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("members and next join")),
        "{found:?}"
    );
    Ok(())
}
