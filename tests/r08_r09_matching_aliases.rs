//! R8, R9: matching by key, alias, email and phone; ambiguous matches; aliases
//! created by email/phone matches and resolving by key afterwards.

mod common;

use common::*;
use contactdb::Outcome::{Failed, Inserted, Unchanged, Updated};
use contactdb::{MatchedBy, Mode, Status};
use serde_json::json;

// R8: a record matched by key updates that contact.
#[test]
fn match_by_key() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a", "name": "Ann"}))?;
    let rep = bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "a", "name": "Anna"}),
    )?;
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Key));
    assert_eq!(rep.results[0].contact_key, None);
    assert_eq!(
        read(&ws, "a", &["name", "version"])?,
        [json!("Anna"), json!(2)]
    );
    assert_clean(&db)
}

// R8, R9: a record matched by email with another key: the contact keeps its key,
// the record's key becomes an alias (warning alias_added), and the alias finds it.
#[test]
fn match_by_email_adds_alias() -> TestResult {
    let (_dir, db, ws) = seeded(json!({"contact_key": "a", "email": "ann@x.com", "name": "Ann"}))?;
    let record = json!({"contact_key": "crm-1", "email": "ANN@x.com", "surname": "Lee"});
    let rep = ws.bulk(&req(Mode::Upsert, record).matching(EMAIL))?;
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(outcomes(&rep), [Updated]);
    let res = &rep.results[0];
    assert_eq!(res.key.as_deref(), Some("crm-1"));
    assert_eq!(res.matched_by, Some(MatchedBy::Email));
    assert_eq!(res.contact_key.as_deref(), Some("a"));
    let w = warnings(&rep);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(
        w[0],
        (0, Some("email".to_owned()), "value_normalized".to_owned())
    );
    assert_eq!((w[1].0, w[1].2.as_str()), (0, "alias_added"));
    assert!(
        rep.warnings[1].message.contains("crm-1"),
        "{:?}",
        rep.warnings[1]
    );
    assert_eq!(rep.summary.updated, 1);
    assert_eq!(rep.summary.inserted, 0);

    assert_eq!(ws.count()?, 1);
    let a = must_get(&ws, "a")?;
    assert_eq!(a.key, "a");
    assert_eq!(a.aliases, ["crm-1"]);
    assert_eq!(col(&a, "name"), json!("Ann"));
    assert_eq!(col(&a, "surname"), json!("Lee"));
    assert_eq!(a.version, 2);
    // The alias resolves to the contact.
    let via_alias = must_get(&ws, "crm-1")?;
    assert_eq!(via_alias, a);

    // A later record with the alias as key matches by alias (whatever match_on is).
    let rep = bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "crm-1", "name": "Annie"}),
    )?;
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Alias));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("a"));
    assert!(warnings(&rep).is_empty(), "{:?}", rep.warnings);
    let a = must_get(&ws, "a")?;
    assert_eq!(col(&a, "name"), json!("Annie"));
    assert_eq!(a.version, 3);
    assert_eq!(a.aliases, ["crm-1"]);

    // Keys and aliases share one namespace: inserting the alias as a key fails.
    let rep = bulk(&ws, Mode::Insert, json!({"contact_key": "crm-1"}))?;
    assert_eq!(codes(&rep), ["already_exists"]);
    assert_eq!(ws.count()?, 1);
    assert_clean(&db)
}

// R9: adding an alias is a change even when no column changes.
#[test]
fn alias_alone_is_an_update() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "gsm": "+905551234567"}))?;
    let record = json!({"contact_key": "b", "phoneNumber": "0090 555 123 45 67"});
    let r = req(Mode::Update, record).matching(PHONE);
    let rep = ws.bulk(&r)?;
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Phone));
    assert_eq!(rep.results[0].contact_key.as_deref(), Some("a"));
    let a = must_get(&ws, "a")?;
    assert_eq!(a.version, 2);
    assert_eq!(a.aliases, ["b"]);
    assert!(ws.get("b")?.is_some());
    // Same record again: now matched by alias, nothing changes.
    let rep = ws.bulk(&r)?;
    assert_eq!(outcomes(&rep), [Unchanged]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Alias));
    assert_eq!(must_get(&ws, "a")?.version, 2);
    Ok(())
}

// R8: without email/phone in match_on, records match by key only.
#[test]
fn key_only_matching_by_default() -> TestResult {
    let (_dir, _db, ws) =
        seeded(json!({"contact_key": "a", "email": "ann@x.com", "gsm": "+905551234567"}))?;
    let rep = upsert(
        &ws,
        json!({"contact_key": "b", "email": "ann@x.com", "gsm": "+905551234567"}),
    )?;
    assert_eq!(outcomes(&rep), [Inserted]);
    assert_eq!(rep.results[0].matched_by, None);
    assert_eq!(ws.count()?, 2);
    assert!(must_get(&ws, "a")?.aliases.is_empty());
    let mut both = by_email(&ws, "Ann@X.com")?;
    both.sort();
    assert_eq!(both, ["a", "b"]);
    // Update mode with an unknown key and key-only matching: not_found.
    let rep = bulk(
        &ws,
        Mode::Update,
        json!({"contact_key": "c", "email": "ann@x.com"}),
    )?;
    assert_eq!(codes(&rep), ["not_found"]);
    Ok(())
}

// R8: the key is authoritative when found, whatever email and phone say.
#[test]
fn key_is_authoritative() -> TestResult {
    let (_dir, _db, ws) = seeded(json!([
        {"contact_key": "a", "email": "ann@x.com"},
        {"contact_key": "b", "email": "bob@x.com"},
    ]))?;
    let rep = ws.bulk(&match_all(
        Mode::Upsert,
        json!({"contact_key": "b", "email": "ann@x.com"}),
    ))?;
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Key));
    assert!(rep.errors.is_empty());
    assert_eq!(col(&must_get(&ws, "b")?, "email"), json!("ann@x.com"));
    let a = must_get(&ws, "a")?;
    assert!(a.aliases.is_empty());
    assert_eq!(a.version, 1);
    assert_eq!(ws.find_by_email("ann@x.com")?.len(), 2);
    assert!(ws.find_by_email("bob@x.com")?.is_empty());
    Ok(())
}

// R8: two or more distinct contacts → ambiguous_match with their keys sorted;
// nothing is merged.
#[test]
fn ambiguous_match() -> TestResult {
    let (_dir, db, ws) = seeded(json!([
        {"contact_key": "z", "email": "dup@x.com"},
        {"contact_key": "m", "email": "dup@x.com"},
        {"contact_key": "p1", "email": "p1@x.com"},
        {"contact_key": "p2", "gsm": "+905550000002"},
    ]))?;
    // With key-only matching these records are plain inserts (emails may repeat).
    let rep = upsert(
        &ws,
        json!([
            {"contact_key": "new", "email": "DUP@x.com"},
            {"contact_key": "new2", "email": "p1@x.com", "gsm": "+905550000002"},
        ]),
    )?;
    assert_eq!(rep.summary.inserted, 2);
    // With match_on=[key,email,phone] they are ambiguous.
    let recs = json!([
        {"contact_key": "q1", "email": "DUP@x.com", "name": "Q"},
        {"contact_key": "q2", "email": "p1@x.com", "gsm": "0090 555 000 00 02"},
    ]);
    let before = versions(&ws)?;
    let rep = ws.bulk(&match_all(Mode::Upsert, recs).skipping())?;
    assert_eq!(outcomes(&rep), [Failed, Failed]);
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(codes(&rep), ["ambiguous_match", "ambiguous_match"]);
    let e0 = &rep.errors[0];
    assert_eq!(e0.index, 0);
    assert_eq!(e0.key.as_deref(), Some("q1"));
    // "new" also has dup@x.com (inserted above): three candidates, sorted.
    assert_eq!(e0.candidates, ["m", "new", "z"]);
    assert_eq!(rep.errors[1].candidates, ["new2", "p1", "p2"]);
    // Ambiguity is a matching failure, not a validation error.
    assert_eq!(rep.summary.invalid, 0);
    assert_eq!(rep.summary.failed, 2);
    assert_eq!(versions(&ws)?, before);
    assert!(ws.get("q1")?.is_none());
    assert_clean(&db)
}

// R8: email and phone matching the same one contact is a match by email.
#[test]
fn email_and_phone_same_contact() -> TestResult {
    let (_dir, _db, ws) =
        seeded(json!({"contact_key": "a", "email": "ann@x.com", "gsm": "+905551234567"}))?;
    let record = json!({"contact_key": "x", "email": "ann@x.com", "gsm": "+905551234567"});
    let rep = ws.bulk(&match_all(Mode::Upsert, record))?;
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(must_get(&ws, "a")?.aliases, ["x"]);
    // Phone only (the email is new): matched by phone, email updated.
    let record = json!({"contact_key": "y", "email": "new@x.com", "gsm": "+905551234567"});
    let rep = ws.bulk(&match_all(Mode::Upsert, record))?;
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Phone));
    let a = must_get(&ws, "a")?;
    assert_eq!(a.aliases, ["x", "y"]);
    assert_eq!(col(&a, "email"), json!("new@x.com"));
    Ok(())
}

// R8: matching sees earlier records of the same request.
#[test]
fn matching_sees_earlier_records() -> TestResult {
    let (_dir, db, ws) = fresh_ws()?;
    let recs = json!([
        {"contact_key": "n1", "email": "new@x.com"},
        {"contact_key": "n2", "email": "new@x.com", "name": "Two"},
        {"contact_key": "n3", "gsm": "+905559999999"},
        // n1 gets a phone; n4 then matches it by phone
        {"contact_key": "n1", "gsm": "+905558888888"},
        {"contact_key": "n4", "gsm": "+905558888888"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs))?;
    assert_eq!(rep.status, Status::Applied, "{:?}", rep.errors);
    assert_eq!(
        outcomes(&rep),
        [Inserted, Updated, Inserted, Updated, Updated]
    );
    let (email, key, phone) = (
        Some(MatchedBy::Email),
        Some(MatchedBy::Key),
        Some(MatchedBy::Phone),
    );
    assert_eq!(matched(&rep), [None, email, None, key, phone]);
    assert_eq!(rep.results[1].contact_key.as_deref(), Some("n1"));
    assert_eq!(rep.results[4].contact_key.as_deref(), Some("n1"));
    assert_eq!(ws.count()?, 2);
    let n1 = must_get(&ws, "n1")?;
    assert_eq!(n1.aliases, ["n2", "n4"]);
    assert_eq!(col(&n1, "name"), json!("Two"));
    assert_eq!(n1.version, 4);
    assert_clean(&db)
}

// R8, R10: in insert mode an email match is already_exists and adds no alias.
#[test]
fn insert_mode_email_match_adds_no_alias() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "email": "ann@x.com"}))?;
    let rep = ws.bulk(&match_all(
        Mode::Insert,
        json!({"contact_key": "b", "email": "ann@x.com"}),
    ))?;
    assert_eq!(outcomes(&rep), [Failed]);
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Email));
    assert_eq!(codes(&rep), ["already_exists"]);
    let a = must_get(&ws, "a")?;
    assert!(a.aliases.is_empty());
    assert_eq!(a.version, 1);
    assert!(ws.get("b")?.is_none());
    Ok(())
}

// Semantics: a record that clears or omits its email does not match by email.
#[test]
fn cleared_email_does_not_match() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "email": "ann@x.com"}))?;
    let recs = json!([
        {"contact_key": "b", "email": null},
        {"contact_key": "c", "email": ""},
        {"contact_key": "d"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs))?;
    assert_eq!(outcomes(&rep), [Inserted, Inserted, Inserted]);
    assert!(must_get(&ws, "a")?.aliases.is_empty());
    assert_eq!(ws.count()?, 4);
    Ok(())
}

// R9: an alias found by key is authoritative like a key; and aliases survive
// further email changes of the contact.
#[test]
fn alias_authoritative_after_email_change() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "a", "email": "ann@x.com"}))?;
    add_alias(&ws, "alias-1", "ann@x.com")?;
    // Change the email via the alias.
    let record = json!({"contact_key": "alias-1", "email": "ann2@x.com"});
    let rep = ws.bulk(&match_all(Mode::Upsert, record))?;
    assert_eq!(rep.results[0].matched_by, Some(MatchedBy::Alias));
    assert_eq!(outcomes(&rep), [Updated]);
    assert_eq!(by_email(&ws, "ann2@x.com")?, ["a"]);
    assert!(ws.find_by_email("ann@x.com")?.is_empty());
    // An email-matched record whose key equals the contact's key adds no alias.
    let rep = ws.bulk(&match_all(
        Mode::Upsert,
        json!({"contact_key": "a", "email": "ann2@x.com"}),
    ))?;
    assert_eq!(outcomes(&rep), [Unchanged]);
    assert_eq!(must_get(&ws, "a")?.aliases, ["alias-1"]);
    Ok(())
}

// R8, R6: ambiguity and non-matches follow the earlier records of the request.
#[test]
fn in_request_changes_drive_matching() -> TestResult {
    let (_dir, db, ws) = seeded(json!([
        {"contact_key": "a", "email": "e1@x.com"},
        {"contact_key": "b", "email": "e2@x.com"},
        {"contact_key": "c", "email": "e3@x.com"},
    ]))?;
    let recs = json!([
        // b takes e1 too: e1 now names two contacts
        {"contact_key": "b", "email": "e1@x.com"},
        {"contact_key": "n1", "email": "e1@x.com"},
        // c leaves e3: nobody has it any more
        {"contact_key": "c", "email": "e4@x.com"},
        {"contact_key": "n2", "email": "e3@x.com"},
        // and e4 now finds c
        {"contact_key": "n3", "email": "e4@x.com"},
    ]);
    let rep = ws.bulk(&match_all(Mode::Upsert, recs).skipping())?;
    assert_eq!(
        outcomes(&rep),
        [Updated, Failed, Updated, Inserted, Updated]
    );
    assert_eq!(codes(&rep), ["ambiguous_match"]);
    assert_eq!(rep.errors[0].candidates, ["a", "b"]);
    assert_eq!(rep.results[4].matched_by, Some(MatchedBy::Email));
    assert_eq!(rep.results[4].contact_key.as_deref(), Some("c"));
    assert_eq!(must_get(&ws, "c")?.aliases, ["n3"]);
    assert!(ws.get("n1")?.is_none());
    assert_eq!(ws.count()?, 4);
    assert_clean(&db)
}

// R8: candidates are distinct contacts: one contact found by both email and phone
// is listed once.
#[test]
fn ambiguous_candidates_are_distinct() -> TestResult {
    let (_dir, _db, ws) = seeded(json!([
        {"contact_key": "a", "email": "e@x.com", "gsm": "+905551234567"},
        {"contact_key": "b", "gsm": "+905551234567"},
    ]))?;
    let record = json!({"contact_key": "n", "email": "e@x.com", "gsm": "+905551234567"});
    let rep = ws.bulk(&match_all(Mode::Upsert, record))?;
    assert_eq!(outcomes(&rep), [Failed]);
    assert_eq!(codes(&rep), ["ambiguous_match"]);
    assert_eq!(rep.errors[0].candidates, ["a", "b"]);
    assert!(must_get(&ws, "a")?.aliases.is_empty());
    assert!(must_get(&ws, "b")?.aliases.is_empty());
    Ok(())
}
