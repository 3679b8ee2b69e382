//! R10, R11: insert/update/upsert modes, and renaming contacts with
//! `new_contact_key` (old key stops resolving, key_conflict).

mod common;

use common::*;
use contactdb::{MatchedBy, Mode, Outcome, Status};
use serde_json::json;

// R10: insert creates new contacts; a matched record is already_exists.
#[test]
fn insert_mode() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "name": "Ann"})])?;
    let rep = ws.bulk(&skip(
        Mode::Insert,
        vec![
            json!({"contact_key": "b", "name": "Bob"}),
            json!({"contact_key": "a", "name": "Changed"}),
        ],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted, Outcome::Failed]);
    assert_eq!(rep.status, Status::Partial);
    let e = &rep.errors[0];
    assert_eq!(
        (e.index, e.code.as_str(), e.key.as_deref()),
        (1, "already_exists", Some("a"))
    );
    assert_eq!(rep.results[1].matched_by, Some(MatchedBy::Key));
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("Ann"));
    assert_eq!(a.version, 1);
    assert_eq!(col(&must_get(&ws, "b")?, "name"), json!("Bob"));
    assert_eq!(must_get(&ws, "b")?.version, 1);
    assert_clean(&db)?;
    Ok(())
}

// R10: update changes existing contacts; an unmatched record is not_found.
#[test]
fn update_mode() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "name": "Ann"})])?;
    let rep = ws.bulk(&skip(
        Mode::Update,
        vec![
            json!({"contact_key": "a", "name": "Anna"}),
            json!({"contact_key": "ghost", "name": "Boo"}),
        ],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated, Outcome::Failed]);
    let e = &rep.errors[0];
    assert_eq!(
        (e.index, e.code.as_str(), e.key.as_deref()),
        (1, "not_found", Some("ghost"))
    );
    assert_eq!(rep.results[1].matched_by, None);
    assert!(ws.get("ghost")?.is_none());
    assert_eq!(col(&must_get(&ws, "a")?, "name"), json!("Anna"));
    assert_eq!(ws.count()?, 1);
    Ok(())
}

// R10: upsert inserts unmatched records and updates matched ones.
#[test]
fn upsert_mode() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "name": "Ann"})])?;
    let rep = upsert(
        &ws,
        vec![
            json!({"contact_key": "a", "surname": "Lee"}),
            json!({"contact_key": "b", "name": "Bob"}),
        ],
    )?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated, Outcome::Inserted]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Key));
    assert_eq!(rep.results[1].matched_by, None);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("Ann"));
    assert_eq!(col(&a, "surname"), json!("Lee"));
    assert_eq!(a.version, 2);
    assert_eq!(ws.count()?, 2);
    Ok(())
}

// R11: new_contact_key renames; the old key stops resolving (no alias is left).
#[test]
fn rekey_renames() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(
        &ws,
        vec![json!({"contact_key": "old", "name": "Ann", "email": "ann@x.com"})],
    )?;
    let before = must_get(&ws, "old")?;
    let rep = ws.bulk(&req(
        Mode::Update,
        vec![json!({"contact_key": "old", "new_contact_key": "new"})],
    ))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), vec![Outcome::Updated]);
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
    let found: Vec<String> = ws
        .find_by_email("ann@x.com")?
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(found, vec!["new".to_owned()]);
    // The old key is free again: it can be inserted as a new contact.
    let rep = ws.bulk(&req(Mode::Insert, vec![json!({"contact_key": "old"})]))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted]);
    assert_eq!(ws.count()?, 2);
    assert_clean(&db)?;
    Ok(())
}

// R11: a new key held by another contact or by another contact's alias is
// key_conflict; nothing changes.
#[test]
fn rekey_conflicts() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(
        &ws,
        vec![
            json!({"contact_key": "a", "email": "a@x.com"}),
            json!({"contact_key": "b"}),
        ],
    )?;
    // give `a` the alias `a-alias`
    ws.bulk(&match_all(
        Mode::Update,
        vec![json!({"contact_key": "a-alias", "email": "a@x.com"})],
    ))?;
    assert_eq!(must_get(&ws, "a")?.aliases, vec!["a-alias".to_owned()]);
    let before = versions(&ws)?;
    let rep = ws.bulk(&skip(
        Mode::Update,
        vec![
            json!({"contact_key": "b", "new_contact_key": "a", "name": "x"}),
            json!({"contact_key": "b", "new_contact_key": "a-alias"}),
        ],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Failed, Outcome::Failed]);
    let codes: Vec<&str> = errors(&rep).into_iter().map(|e| e.2).collect();
    assert_eq!(codes, vec!["key_conflict", "key_conflict"]);
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(versions(&ws)?, before);
    assert!(col(&must_get(&ws, "b")?, "name").is_null());
    assert_clean(&db)?;
    Ok(())
}

// Semantics: new key = own key is no change; new key = own alias promotes it;
// an empty new_contact_key asks for no rename.
#[test]
fn rekey_to_self_and_own_alias() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "email": "a@x.com"})])?;
    ws.bulk(&match_all(
        Mode::Update,
        vec![json!({"contact_key": "al", "email": "a@x.com"})],
    ))?;
    assert_eq!(must_get(&ws, "a")?.version, 2);

    let rep = ws.bulk(&req(
        Mode::Update,
        vec![
            json!({"contact_key": "a", "new_contact_key": "a"}),
            json!({"contact_key": "a", "new_contact_key": ""}),
            json!({"contact_key": "a", "new_contact_key": null}),
        ],
    ))?;
    assert_eq!(
        outcomes(&rep),
        vec![Outcome::Unchanged, Outcome::Unchanged, Outcome::Unchanged]
    );
    assert_eq!(must_get(&ws, "a")?.version, 2);

    let rep = ws.bulk(&req(
        Mode::Update,
        vec![json!({"contact_key": "a", "new_contact_key": "al"})],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated], "{:?}", rep.errors);
    let c = must_get(&ws, "al")?;
    assert_eq!(c.key, "al");
    assert!(c.aliases.is_empty(), "{:?}", c.aliases);
    assert_eq!(c.version, 3);
    assert!(ws.get("a")?.is_none());
    assert_clean(&db)?;
    Ok(())
}

// R11, R6: later records of the request see the rename; a rename through an alias
// renames the contact; a swap via a temporary key works in one request.
#[test]
fn rekey_seen_by_later_records() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(
        &ws,
        vec![
            json!({"contact_key": "x", "name": "X"}),
            json!({"contact_key": "y", "name": "Y"}),
        ],
    )?;
    let rep = ws.bulk(&skip(
        Mode::Update,
        vec![
            json!({"contact_key": "x", "new_contact_key": "tmp"}),
            json!({"contact_key": "y", "new_contact_key": "x"}),
            json!({"contact_key": "tmp", "new_contact_key": "y"}),
            json!({"contact_key": "x", "surname": "was Y"}),
            json!({"contact_key": "tmp", "name": "gone"}),
        ],
    ))?;
    assert_eq!(
        outcomes(&rep),
        vec![
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Failed
        ]
    );
    assert_eq!(errors(&rep), vec![(4, None, "not_found")]);
    let x = must_get(&ws, "x")?;
    let y = must_get(&ws, "y")?;
    assert_eq!(col(&x, "name"), json!("Y"));
    assert_eq!(col(&x, "surname"), json!("was Y"));
    assert_eq!(col(&y, "name"), json!("X"));
    assert_eq!(x.version, 3);
    assert_eq!(y.version, 3);
    assert!(ws.get("tmp")?.is_none());
    assert_eq!(ws.count()?, 2);
    assert_clean(&db)?;
    Ok(())
}

// R11: rename with an email match: the contact found by email is renamed.
#[test]
fn rekey_after_email_match() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "email": "a@x.com"})])?;
    let rep = ws.bulk(&match_all(
        Mode::Update,
        vec![json!({"contact_key": "crm", "email": "a@x.com", "new_contact_key": "b"})],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated], "{:?}", rep.errors);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("b"));
    assert!(ws.get("a")?.is_none());
    let b = must_get(&ws, "b")?;
    assert_eq!(b.aliases, vec!["crm".to_owned()]);
    // One applied record: one version step, however much it changed.
    assert_eq!(b.version, 2);
    assert_eq!(must_get(&ws, "crm")?.key, "b");
    Ok(())
}

// R11, R9: renaming through an alias renames the contact; the alias stays an alias.
#[test]
fn rekey_through_alias() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    seed(&ws, vec![json!({"contact_key": "a", "email": "a@x.com"})])?;
    ws.bulk(&match_all(
        Mode::Update,
        vec![json!({"contact_key": "al", "email": "a@x.com"})],
    ))?;
    let rep = ws.bulk(&req(
        Mode::Update,
        vec![json!({"contact_key": "al", "new_contact_key": "z"})],
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated], "{:?}", rep.errors);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Alias));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("z"));
    let z = must_get(&ws, "z")?;
    assert_eq!(z.aliases, vec!["al".to_owned()]);
    assert_eq!(must_get(&ws, "al")?.key, "z");
    assert!(ws.get("a")?.is_none());
    assert_eq!(z.version, 3);
    assert_clean(&db)?;
    Ok(())
}
