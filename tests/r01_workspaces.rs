//! R1: workspaces — the default workspace, creation by slug, opening by slug or UUID,
//! slug rules, no implicit creation, and isolation of contacts between workspaces.

mod common;

use common::*;
use contactdb::{MatchOn, Mode, Outcome, Status};
use serde_json::json;

// R1: a new database has workspace `default`, and it is the only one.
#[test]
fn default_workspace_exists() -> TestResult {
    let (_dir, db) = fresh()?;
    let all = db.workspaces()?;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].slug, "default");
    let ws = db.workspace("default")?;
    assert_eq!(ws.info().slug, "default");
    assert_eq!(ws.info().uuid, all[0].uuid);
    assert_eq!(ws.count()?, 0);
    Ok(())
}

fn is_hyphenated_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }
        })
}

// R1: create by slug; open by slug and by UUID; both name the same workspace.
#[test]
fn create_and_open_by_slug_and_uuid() -> TestResult {
    let (_dir, db) = fresh()?;
    let info = db.create_workspace("acme-2")?;
    assert_eq!(info.slug, "acme-2");
    assert!(is_hyphenated_uuid(&info.uuid), "uuid {:?}", info.uuid);
    let default_uuid = db.workspace("default")?.info().uuid.clone();
    assert_ne!(info.uuid, default_uuid, "workspaces get distinct UUIDs");

    let by_slug = db.workspace("acme-2")?;
    let by_uuid = db.workspace(&info.uuid)?;
    assert_eq!(by_slug.info(), &info);
    assert_eq!(by_uuid.info(), &info);

    // A write through one handle is visible through the other.
    seed(&by_slug, json!({"contact_key": "k1", "name": "Ann"}))?;
    assert_eq!(col(&must_get(&by_uuid, "k1")?, "name"), json!("Ann"));

    let slugs: Vec<String> = db.workspaces()?.into_iter().map(|w| w.slug).collect();
    assert_eq!(slugs, vec!["acme-2".to_owned(), "default".to_owned()]);

    // Creating a slug twice is refused and creates nothing.
    assert_eq!(
        error_kind(&db.create_workspace("acme-2")),
        "workspace_exists"
    );
    assert_eq!(
        error_kind(&db.create_workspace("default")),
        "workspace_exists"
    );
    assert_eq!(db.workspaces()?.len(), 2);
    assert_clean(&db)?;
    Ok(())
}

// R1: slugs match [a-z0-9][a-z0-9-]{0,62}.
#[test]
fn slug_rules() -> TestResult {
    let (_dir, db) = fresh()?;
    let long_ok = "a".repeat(63);
    for good in ["a", "0", "9lives", "a-b-c", "x-", long_ok.as_str()] {
        let info = db.create_workspace(good)?;
        assert_eq!(info.slug, good);
        assert_eq!(db.workspace(good)?.info().slug, good);
    }
    let before = db.workspaces()?.len();
    let long_bad = "a".repeat(64);
    for bad in [
        "",
        "-a",
        "Acme",
        "ACME",
        "a_b",
        "a b",
        " a",
        "a.b",
        "ä",
        "a/b",
        "a\n",
        long_bad.as_str(),
    ] {
        let got = db.create_workspace(bad);
        assert_eq!(
            error_kind(&got),
            "invalid_slug",
            "slug {bad:?} should be refused, got {got:?}"
        );
    }
    assert_eq!(
        db.workspaces()?.len(),
        before,
        "no refused slug was created"
    );
    Ok(())
}

// R1: an unknown workspace is an error, never created implicitly.
#[test]
fn unknown_workspace_is_an_error() -> TestResult {
    let (_dir, db) = fresh()?;
    for name in [
        "nope",
        "Default",
        "",
        "00000000-0000-4000-8000-000000000000",
    ] {
        // The error names the workspace as given.
        let (kind, text) = failure(&db.workspace(name));
        assert_eq!(kind, "no_such_workspace", "workspace {name:?}: {text}");
        assert!(text.contains(&format!("{name:?}")), "{text}");
    }
    // Still only `default`, also after asking twice.
    assert_eq!(error_kind(&db.workspace("nope")), "no_such_workspace");
    let slugs: Vec<String> = db.workspaces()?.into_iter().map(|w| w.slug).collect();
    assert_eq!(slugs, vec!["default".to_owned()]);
    Ok(())
}

// R1: the same key in two workspaces is two contacts; reads and writes never cross.
#[test]
fn same_key_in_two_workspaces_is_two_contacts() -> TestResult {
    let (_dir, db) = fresh()?;
    db.create_workspace("acme")?;
    let a = db.workspace("default")?;
    let b = db.workspace("acme")?;

    let r = upsert(
        &a,
        json!({"contact_key": "k1", "name": "Ann", "email": "ann@x.com"}),
    )?;
    assert_eq!(outcomes(&r), vec![Outcome::Inserted]);
    assert!(
        b.get("k1")?.is_none(),
        "k1 of default must not be visible in acme"
    );
    assert_eq!(b.count()?, 0);

    // The same key in acme is a new contact, not an update of default's.
    let r = upsert(&b, json!({"contact_key": "k1", "name": "Bob"}))?;
    assert_eq!(outcomes(&r), vec![Outcome::Inserted]);
    let ca = must_get(&a, "k1")?;
    let cb = must_get(&b, "k1")?;
    assert_eq!(col(&ca, "name"), json!("Ann"));
    assert_eq!(col(&cb, "name"), json!("Bob"));
    assert_eq!(ca.version, 1);
    assert_eq!(cb.version, 1);
    assert_eq!(col(&cb, "email"), json!(null));

    // update mode in acme of a key that exists only in default: not_found.
    seed(&a, json!({"contact_key": "only-a"}))?;
    let r = bulk(
        &b,
        Mode::Update,
        json!({"contact_key": "only-a", "name": "X"}),
    )?;
    assert_eq!(r.status, Status::Rejected);
    let codes: Vec<&str> = errors(&r).into_iter().map(|e| e.2).collect();
    assert_eq!(codes, vec!["not_found"]);
    assert!(b.get("only-a")?.is_none());
    assert_eq!(a.count()?, 2);
    assert_eq!(b.count()?, 1);
    assert_clean(&db)?;
    Ok(())
}

// R1, R8: email and phone matching never crosses workspaces.
#[test]
fn email_and_phone_match_never_cross() -> TestResult {
    let (_dir, db) = fresh()?;
    let info = db.create_workspace("acme")?;
    let a = db.workspace("default")?;
    let b = db.workspace(&info.uuid)?;
    seed(
        &a,
        json!({"contact_key": "a1", "email": "ann@x.com", "gsm": "+905551234567"}),
    )?;

    let mut r = req(
        Mode::Upsert,
        vec![
            json!({"contact_key": "b1", "email": "ann@x.com"}),
            json!({"contact_key": "b2", "gsm": "+905551234567"}),
        ],
    );
    r.match_on = MatchOn::ALL;
    let rep = b.bulk(&r)?;
    assert_eq!(outcomes(&rep), vec![Outcome::Inserted, Outcome::Inserted]);
    assert_eq!(rep.results[0].matched_by, None);
    assert_eq!(rep.results[1].matched_by, None);

    // In update mode the email of another workspace matches nothing.
    let mut u = req(
        Mode::Update,
        json!({"contact_key": "zz", "email": "ann@x.com"}),
    );
    u.match_on = MatchOn::ALL;
    let c = db.workspace("acme")?;
    // acme now has b1 with ann@x.com, so use a fresh third workspace for the check.
    db.create_workspace("third")?;
    let t = db.workspace("third")?;
    let rep = t.bulk(&u)?;
    let codes: Vec<&str> = errors(&rep).into_iter().map(|e| e.2).collect();
    assert_eq!(codes, vec!["not_found"]);

    // Contacts of default are untouched: no alias was added, versions stay.
    let a1 = must_get(&a, "a1")?;
    assert_eq!(a1.version, 1);
    assert!(a1.aliases.is_empty());
    assert!(a.get("b1")?.is_none());
    assert!(a.get("b2")?.is_none());
    assert_eq!(a.find_by_email("ann@x.com")?.len(), 1);
    let in_b: Vec<String> = c
        .find_by_email("ann@x.com")?
        .into_iter()
        .map(|x| x.key)
        .collect();
    assert_eq!(in_b, vec!["b1".to_owned()]);
    assert!(t.find_by_phone("+905551234567")?.is_empty());
    assert_eq!(t.count()?, 0);
    assert_clean(&db)?;
    Ok(())
}
