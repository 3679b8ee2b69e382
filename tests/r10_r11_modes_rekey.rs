//! R10, R11: insert/update/upsert modes, and renaming contacts with
//! `new_contact_key` (old key stops resolving, key_conflict).

mod common;

use common::*;
use contactdb::Outcome::{Failed, Inserted, Unchanged, Updated};
use contactdb::{BulkRequest, MatchedBy, Mode, Outcome, Status};
use serde_json::json;

/// A request on a workspace holding `{a, name: Ann}`, and what it must leave.
struct ModeCase {
    name: &'static str,
    request: fn() -> BulkRequest,
    status: Status,
    outcomes: &'static [Outcome],
    matched: &'static [Option<MatchedBy>],
    /// (index, code, key)
    errors: &'static [(u32, &'static str, &'static str)],
    /// (key, column, stored text)
    stored: &'static [(&'static str, &'static str, &'static str)],
    versions: &'static [(&'static str, u64)],
    absent: &'static [&'static str],
    count: u64,
}

const KEY: Option<MatchedBy> = Some(MatchedBy::Key);

const MODES: &[ModeCase] = &[
    // R10: insert creates new contacts; a matched record is already_exists.
    ModeCase {
        name: "insert mode",
        request: || {
            let recs = json!([{"contact_key": "b", "name": "Bob"}, {"contact_key": "a", "name": "Changed"}]);
            skip(Mode::Insert, recs)
        },
        status: Status::Partial,
        outcomes: &[Inserted, Failed],
        matched: &[None, KEY],
        errors: &[(1, "already_exists", "a")],
        stored: &[("a", "name", "Ann"), ("b", "name", "Bob")],
        versions: &[("a", 1), ("b", 1)],
        absent: &[],
        count: 2,
    },
    // R10: update changes existing contacts; an unmatched record is not_found.
    ModeCase {
        name: "update mode",
        request: || {
            let recs = json!([{"contact_key": "a", "name": "Anna"}, {"contact_key": "ghost", "name": "Boo"}]);
            skip(Mode::Update, recs)
        },
        status: Status::Partial,
        outcomes: &[Updated, Failed],
        matched: &[KEY, None],
        errors: &[(1, "not_found", "ghost")],
        stored: &[("a", "name", "Anna")],
        versions: &[("a", 2)],
        absent: &["ghost"],
        count: 1,
    },
    // R10: upsert inserts unmatched records and updates matched ones.
    ModeCase {
        name: "upsert mode",
        request: || {
            let recs = json!([{"contact_key": "a", "surname": "Lee"}, {"contact_key": "b", "name": "Bob"}]);
            req(Mode::Upsert, recs)
        },
        status: Status::Applied,
        outcomes: &[Updated, Inserted],
        matched: &[KEY, None],
        errors: &[],
        stored: &[
            ("a", "name", "Ann"),
            ("a", "surname", "Lee"),
            ("b", "name", "Bob"),
        ],
        versions: &[("a", 2), ("b", 1)],
        absent: &[],
        count: 2,
    },
];

// R10: each mode on one matched and one unmatched record.
#[test]
fn each_mode_on_a_matched_and_an_unmatched_record() -> TestResult {
    for case in MODES {
        let name = case.name;
        let (_dir, db, ws) = seeded(json!({"contact_key": "a", "name": "Ann"}))?;
        let rep = ws.bulk(&(case.request)())?;
        assert_eq!(rep.status, case.status, "{name}");
        assert_eq!(outcomes(&rep), case.outcomes, "{name}");
        assert_eq!(matched(&rep), case.matched, "{name}");
        let errs: Vec<_> = rep
            .errors
            .iter()
            .map(|e| (e.index, e.code.as_str(), e.key.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(errs, case.errors, "{name}");
        for (key, column, text) in case.stored {
            assert_eq!(
                col(&must_get(&ws, key)?, column),
                json!(text),
                "{name}: {key}.{column}"
            );
        }
        for (key, version) in case.versions {
            assert_eq!(must_get(&ws, key)?.version, *version, "{name}: {key}");
        }
        for key in case.absent {
            assert!(ws.get(key)?.is_none(), "{name}: {key}");
        }
        assert_eq!(ws.count()?, case.count, "{name}");
        assert_clean(&db)?;
    }
    Ok(())
}

// R11: new_contact_key renames; the old key stops resolving (no alias is left).
#[test]
fn rekey_renames() -> TestResult {
    let (_dir, db, ws) =
        seeded(json!({"contact_key": "old", "name": "Ann", "email": "ann@x.com"}))?;
    let before = must_get(&ws, "old")?;
    let rep = bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "old", "new_contact_key": "new"}),
    )?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(rep.results[0].key.as_deref(), Some("old"));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("new"));
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Key));
    assert!(ws.get("old")?.is_none(), "the old key must stop resolving");
    let c = must_get(&ws, "new")?;
    assert_eq!(c.key, "new");
    assert!(c.aliases.is_empty());
    assert_eq!(c.version, 2);
    assert_eq!(c.created_at, before.created_at);
    assert_eq!(col(&c, "name"), json!("Ann"));
    assert!(!c.columns.contains_key("new_contact_key"));
    assert_eq!(ws.count()?, 1);
    // The indexes follow the contact.
    assert_eq!(by_email(&ws, "ann@x.com")?, ["new"]);
    // The old key is free again: it can be inserted as a new contact.
    let rep = bulk(&ws, Mode::Insert, json!({"contact_key": "old"}))?;
    assert_eq!(outcomes(&rep), [Inserted]);
    assert_eq!(ws.count()?, 2);
    assert_clean(&db)
}

// R11: a new key held by another contact or by another contact's alias is
// key_conflict; nothing changes.
#[test]
fn rekey_conflicts() -> TestResult {
    let (_dir, db, ws) =
        seeded(json!([{"contact_key": "a", "email": "a@x.com"}, {"contact_key": "b"}]))?;
    add_alias(&ws, "a-alias", "a@x.com")?;
    assert_eq!(must_get(&ws, "a")?.aliases, ["a-alias"]);
    let before = versions(&ws)?;
    let recs = json!([
        {"contact_key": "b", "new_contact_key": "a", "name": "x"},
        {"contact_key": "b", "new_contact_key": "a-alias"},
    ]);
    let rep = ws.bulk(&skip(Mode::Update, recs))?;
    assert_eq!(outcomes(&rep), [Failed, Failed]);
    assert_eq!(codes(&rep), ["key_conflict", "key_conflict"]);
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(versions(&ws)?, before);
    assert!(col(&must_get(&ws, "b")?, "name").is_null());
    assert_clean(&db)
}

// Semantics: new key = own key is no change; new key = own alias promotes it;
// an empty new_contact_key asks for no rename.
#[test]
fn rekey_to_self_and_own_alias() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a", "email": "a@x.com"}))?;
    add_alias(&ws, "al", "a@x.com")?;
    assert_eq!(must_get(&ws, "a")?.version, 2);

    let no_rename = json!([
        {"contact_key": "a", "new_contact_key": "a"},
        {"contact_key": "a", "new_contact_key": ""},
        {"contact_key": "a", "new_contact_key": null},
    ]);
    let rep = bulk(&ws, Mode::Update, no_rename)?;
    assert_eq!(outcomes(&rep), [Unchanged, Unchanged, Unchanged]);
    assert_eq!(must_get(&ws, "a")?.version, 2);

    let rep = bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "a", "new_contact_key": "al"}),
    )?;
    assert_eq!(outcomes(&rep), [Updated], "{:?}", rep.errors);
    let c = must_get(&ws, "al")?;
    assert_eq!(c.key, "al");
    assert!(c.aliases.is_empty(), "{:?}", c.aliases);
    assert_eq!(c.version, 3);
    assert!(ws.get("a")?.is_none());
    assert_clean(&db)
}

// R11, R6: later records of the request see the rename; a swap via a temporary key
// works in one request.
#[test]
fn rekey_seen_by_later_records() -> TestResult {
    let (_dir, db, ws) =
        seeded(json!([{"contact_key": "x", "name": "X"}, {"contact_key": "y", "name": "Y"}]))?;
    let recs = json!([
        {"contact_key": "x", "new_contact_key": "tmp"},
        {"contact_key": "y", "new_contact_key": "x"},
        {"contact_key": "tmp", "new_contact_key": "y"},
        {"contact_key": "x", "surname": "was Y"},
        {"contact_key": "tmp", "name": "gone"},
    ]);
    let rep = ws.bulk(&skip(Mode::Update, recs))?;
    assert_eq!(outcomes(&rep), [Updated, Updated, Updated, Updated, Failed]);
    assert_eq!(errors(&rep), [(4, None, "not_found")]);
    let x = must_get(&ws, "x")?;
    let y = must_get(&ws, "y")?;
    assert_eq!(col(&x, "name"), json!("Y"));
    assert_eq!(col(&x, "surname"), json!("was Y"));
    assert_eq!(col(&y, "name"), json!("X"));
    assert_eq!(x.version, 3);
    assert_eq!(y.version, 3);
    assert!(ws.get("tmp")?.is_none());
    assert_eq!(ws.count()?, 2);
    assert_clean(&db)
}

// R11: rename with an email match: the contact found by email is renamed.
#[test]
fn rekey_after_email_match() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "email": "a@x.com"}))?;
    let record = json!({"contact_key": "crm", "email": "a@x.com", "new_contact_key": "b"});
    let rep = ws.bulk(&match_all(Mode::Update, record))?;
    assert_eq!(outcomes(&rep), [Updated], "{:?}", rep.errors);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("b"));
    assert!(ws.get("a")?.is_none());
    let b = must_get(&ws, "b")?;
    assert_eq!(b.aliases, ["crm"]);
    // One applied record: one version step, however much it changed.
    assert_eq!(b.version, 2);
    assert_eq!(must_get(&ws, "crm")?.key, "b");
    Ok(())
}

// R11, R9: renaming through an alias renames the contact; the alias stays an alias.
#[test]
fn rekey_through_alias() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a", "email": "a@x.com"}))?;
    add_alias(&ws, "al", "a@x.com")?;
    let rep = bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "al", "new_contact_key": "z"}),
    )?;
    assert_eq!(outcomes(&rep), [Updated], "{:?}", rep.errors);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Alias));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("z"));
    let z = must_get(&ws, "z")?;
    assert_eq!(z.aliases, ["al"]);
    assert_eq!(must_get(&ws, "al")?.key, "z");
    assert!(ws.get("a")?.is_none());
    assert_eq!(z.version, 3);
    assert_clean(&db)
}
