//! The backend's contact reads answer the same on PostgreSQL as on the redb file:
//! the same requests applied to both, then every read of `ContactReads` compared.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::ops::ControlFlow;

use common::TestDb;
use contactdb_backend::{ContactReads, WorkspaceId};
use contactdb_pg::{BulkOptions, PgContacts};
use contactdb_policy::{BulkRequest, Contact, MatchOn, Mode, OnInvalid};
use contactdb_store::{Store, StoreOptions};
use serde_json::json;

const WS: WorkspaceId = WorkspaceId(1);

fn requests() -> Vec<BulkRequest> {
    let mut first = BulkRequest::new(
        Mode::Upsert,
        vec![
            json!({"contact_key": "a", "email": "ann@example.com", "gsm": "+905551112233"}),
            json!({"contact_key": "b", "email": "ann@example.com", "name": "Bob"}),
            json!({"contact_key": "c", "gsm": "+905551112233", "email": "not-an-email"}),
            json!({"contact_key": "d", "name": "Dee"}),
        ],
    );
    first.on_invalid = OnInvalid::Skip;
    let mut second = BulkRequest::new(
        Mode::Upsert,
        vec![json!({"contact_key": "a2", "email": "ann@example.com", "name": "Ann"})],
    );
    second.match_on = MatchOn::ALL;
    second.on_invalid = OnInvalid::Skip;
    let rekey = BulkRequest::new(
        Mode::Update,
        vec![json!({"contact_key": "d", "new_contact_key": "d2", "surname": "Doe"})],
    );
    vec![first, second, rekey]
}

/// `c` without its timestamps (the two stores applied the requests at different
/// moments).
fn timeless(mut c: Contact) -> Contact {
    c.created_at_us = 0;
    c.updated_at_us = 0;
    c
}

fn timeless_all(v: Vec<Contact>) -> Vec<Contact> {
    v.into_iter().map(timeless).collect()
}

fn all(reads: &dyn ContactReads) -> Vec<Contact> {
    let mut v = Vec::new();
    reads
        .for_each(&mut |c| {
            v.push(timeless(c));
            ControlFlow::Continue(())
        })
        .unwrap();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

#[test]
fn contact_reads_agree_between_postgres_and_the_redb_file() {
    let Some(db) = TestDb::new("reads") else {
        return;
    };
    let pg = db.store();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    {
        let embedded = contactdb::Database::open(&path).unwrap();
        let ws = embedded.workspace("default").unwrap();
        for req in requests() {
            let want = ws.bulk(&req).unwrap();
            let have = pg.bulk(WS, &req, &BulkOptions::now()).unwrap();
            assert_eq!(have.results, want.results);
        }
    }
    let redb = Store::open(&path, &StoreOptions::default()).unwrap();
    let read = redb.read().unwrap();
    let id = read.workspace("default").unwrap().unwrap().id;
    let file: Box<dyn ContactReads> = Box::new(read.contacts(id).unwrap());
    let server: Box<dyn ContactReads> = Box::new(PgContacts::new(pg.read().unwrap(), WS));

    assert_eq!(server.count().unwrap(), file.count().unwrap());
    let contacts = all(file.as_ref());
    // a, b and the renamed d; c's email is invalid and a2's email matches two.
    assert_eq!(contacts.len(), 3, "{contacts:?}");
    assert_eq!(all(server.as_ref()), contacts);
    for key in ["a", "a2", "b", "c", "d", "d2", "nobody"] {
        assert_eq!(
            server.resolve(key).unwrap().map(timeless),
            file.resolve(key).unwrap().map(timeless),
            "{key}"
        );
    }
    for email in ["ann@example.com", "none@example.com"] {
        assert_eq!(
            timeless_all(server.contacts_by_email(email).unwrap()),
            timeless_all(file.contacts_by_email(email).unwrap()),
            "{email}"
        );
    }
    for gsm in ["+905551112233", "+15550000000"] {
        assert_eq!(
            timeless_all(server.contacts_by_phone(gsm).unwrap()),
            timeless_all(file.contacts_by_phone(gsm).unwrap()),
            "{gsm}"
        );
    }
    // An early break stops the walk on both.
    for reads in [file.as_ref(), server.as_ref()] {
        let mut seen = 0;
        reads
            .for_each(&mut |_| {
                seen += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(seen, 1);
    }
}
