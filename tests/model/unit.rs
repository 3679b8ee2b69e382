//! The model checked against hand-computed expectations for the tricky cases.

use super::*;
use serde_json::json;

fn req(mode: Mode, records: Json) -> BulkRequest {
    let Json::Array(records) = records else {
        panic!("records must be an array")
    };
    BulkRequest::new(mode, records)
}

fn ok(m: &mut Model, r: &BulkRequest) -> Report {
    m.bulk(r).expect("no request-level error")
}

fn get(m: &Model, key: &str) -> ModelContact {
    m.contacts()
        .into_iter()
        .find(|c| c.key == key)
        .unwrap_or_else(|| panic!("no contact {key}"))
}

/// (outcome, matched_by, contact_key, duplicate_of) per record.
type Res = (
    Outcome,
    Option<MatchedBy>,
    Option<&'static str>,
    Option<u32>,
);

type Row = (Outcome, Option<MatchedBy>, Option<String>, Option<u32>);

fn results(r: &Report) -> Vec<Row> {
    r.results
        .iter()
        .map(|x| {
            (
                x.outcome,
                x.matched_by,
                x.contact_key.clone(),
                x.duplicate_of,
            )
        })
        .collect()
}

fn expect(r: &Report, want: &[Res]) {
    let want: Vec<_> = want
        .iter()
        .map(|(o, m, k, d)| (*o, *m, k.map(str::to_owned), *d))
        .collect();
    assert_eq!(results(r), want, "{r:#?}");
}

/// (index, column, code, duplicate_of) per error.
fn errors(r: &Report) -> Vec<(u32, Option<&str>, ErrorCode, Option<u32>)> {
    r.errors
        .iter()
        .map(|e| (e.index, e.column.as_deref(), e.code, e.duplicate_of))
        .collect()
}

/// (index, column, code, duplicate_of) per warning.
fn warnings(r: &Report) -> Vec<(u32, Option<&str>, WarningCode, Option<u32>)> {
    r.warnings
        .iter()
        .map(|w| (w.index, w.column.as_deref(), w.code, w.duplicate_of))
        .collect()
}

fn seeded(records: Json) -> Model {
    let mut m = Model::new();
    let r = ok(&mut m, &req(Mode::Insert, records));
    assert_eq!(r.status, Status::Applied, "{r:#?}");
    m
}

use ErrorCode as E;
use MatchedBy as By;
use Outcome as O;
use WarningCode as W;

#[test]
fn column_names() {
    assert_eq!(snake_case("phoneNumber").as_deref(), Some("phone_number"));
    assert_eq!(snake_case("PhoneNumber").as_deref(), Some("phone_number"));
    assert_eq!(snake_case("phone number").as_deref(), Some("phone_number"));
    assert_eq!(snake_case(" EMAIL ").as_deref(), Some("email"));
    assert_eq!(snake_case("First Name").as_deref(), Some("first_name"));
    assert_eq!(
        snake_case("e-mail_permit").as_deref(),
        Some("e_mail_permit")
    );
    assert_eq!(snake_case("gsm2Status").as_deref(), Some("gsm2_status"));
    assert_eq!(snake_case("naïve"), None);
}

#[test]
fn value_options() {
    let tr = ValueOpts {
        region: Some("TR".parse().unwrap()),
        ..ValueOpts::default()
    };
    let valid = ValueOpts {
        phone_valid: true,
        ..ValueOpts::default()
    };
    let none = ValueOpts::default();
    for (input, opts, want) in [
        ("0532 123 45 67", &tr, Some("+905321234567")),
        ("0532 123 45 67", &none, None),
        ("+44 (0)20 7946 0958", &none, Some("+442079460958")),
        ("+44 20 (0)7946 0958", &none, Some("+4420079460958")),
        ("tel:+1-201-555-0123", &none, Some("+12015550123")),
        ("tel:+1-201-555-0123;ext=1", &none, None),
        ("+15551234567", &none, Some("+15551234567")),
        ("+15551234567", &valid, None),
        ("+12015550123", &valid, Some("+12015550123")),
    ] {
        assert_eq!(phone_text(input, opts).as_deref(), want, "{input}");
    }
    assert_eq!(
        norm_email(&json!("A@Bücher.de")),
        Norm::Set(json!("a@xn--bcher-kva.de"), true)
    );
    assert_eq!(norm_email(&json!("a@x.com\n")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!("a..b@x.com")), Norm::Bad(E::InvalidEmail));
    assert!(!text_control("a\r\nb\tc\n"));
    assert!(text_control("a\rb"));
    for (f, ok) in [
        ("%d/%m/%Y", true),
        ("%Y-%j", true),
        ("%-d.%-m.%y", true),
        ("%d/%m", false),
        ("%Q/%m/%Y", false),
        ("", false),
    ] {
        assert_eq!(date_format_ok(f), ok, "{f}");
    }
    let dmy = ValueOpts {
        date_format: Some("%d/%m/%Y".into()),
        ..ValueOpts::default()
    };
    assert_eq!(
        norm_date(&json!("31/12/1990"), &dmy),
        Norm::Set(json!("1990-12-31"), true)
    );
    assert_eq!(
        norm_date(&json!("31/02/1990"), &dmy),
        Norm::Bad(E::InvalidDate)
    );
}

#[test]
fn normalization() {
    assert_eq!(
        norm_phone(&json!("0090555-000-0001"), &ValueOpts::default()),
        Norm::Set(json!("+905550000001"), true)
    );
    assert_eq!(
        norm_phone(&json!("(0090) 555.000.0002"), &ValueOpts::default()),
        Norm::Set(json!("+905550000002"), true)
    );
    assert_eq!(
        norm_phone(&json!("+905550000001"), &ValueOpts::default()),
        Norm::Set(json!("+905550000001"), false)
    );
    assert_eq!(
        norm_phone(&json!("+0123456789"), &ValueOpts::default()),
        Norm::Bad(E::InvalidPhone)
    );
    assert_eq!(
        norm_phone(&json!("+123456"), &ValueOpts::default()),
        Norm::Bad(E::InvalidPhone)
    );
    assert_eq!(
        norm_phone(&json!("555/123 4567"), &ValueOpts::default()),
        Norm::Bad(E::InvalidPhone)
    );
    assert_eq!(
        norm_phone(&json!(905550000001_u64), &ValueOpts::default()),
        Norm::Bad(E::InvalidPhone)
    );
    assert_eq!(
        norm_phone(&json!(true), &ValueOpts::default()),
        Norm::Bad(E::InvalidType)
    );
    assert_eq!(norm_phone(&json!("  "), &ValueOpts::default()), Norm::Empty);
    assert_eq!(
        norm_email(&json!(" A@X.Com")),
        Norm::Set(json!("a@x.com"), true)
    );
    assert_eq!(norm_email(&json!("a@x")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!("a@-x.com")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!("a b@x.com")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!("a@@x.com")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!("@x.com")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!("a@x..com")), Norm::Bad(E::InvalidEmail));
    assert_eq!(norm_email(&json!(3)), Norm::Bad(E::InvalidType));
    assert_eq!(norm_status(&json!(" p ")), Norm::Set(json!("P"), true));
    assert_eq!(norm_status(&json!("X")), Norm::Bad(E::InvalidEnum));
    assert_eq!(norm_status(&json!(1)), Norm::Bad(E::InvalidEnum));
    assert_eq!(norm_bool(&json!("YES")), Norm::Set(json!(true), false));
    assert_eq!(norm_bool(&json!(0)), Norm::Set(json!(false), false));
    assert_eq!(norm_bool(&json!(2)), Norm::Bad(E::InvalidType));
    assert_eq!(norm_bool(&json!("maybe")), Norm::Bad(E::InvalidType));
    assert_eq!(
        norm_date(&json!("2024-02-29"), &ValueOpts::default()),
        Norm::Set(json!("2024-02-29"), false)
    );
    assert_eq!(
        norm_date(&json!("2023-02-29"), &ValueOpts::default()),
        Norm::Bad(E::InvalidDate)
    );
    assert_eq!(
        norm_date(&json!("1900-02-29"), &ValueOpts::default()),
        Norm::Bad(E::InvalidDate)
    );
    assert_eq!(
        norm_date(&json!("0000-01-01"), &ValueOpts::default()),
        Norm::Bad(E::InvalidDate)
    );
    assert_eq!(
        norm_date(&json!("1990-1-1"), &ValueOpts::default()),
        Norm::Bad(E::InvalidDate)
    );
    assert_eq!(
        norm_date(&json!(" 2000-02-29"), &ValueOpts::default()),
        Norm::Set(json!("2000-02-29"), true)
    );
    assert_eq!(
        norm_date(&json!(19900101), &ValueOpts::default()),
        Norm::Bad(E::InvalidType)
    );
    assert_eq!(norm_priority(&json!("007")), Norm::Set(json!(7), false));
    assert_eq!(norm_priority(&json!(-1)), Norm::Bad(E::InvalidPriority));
    assert_eq!(norm_priority(&json!(1.5)), Norm::Bad(E::InvalidPriority));
    assert_eq!(norm_priority(&json!("x")), Norm::Bad(E::InvalidPriority));
    assert_eq!(norm_integer(&json!("-3")), Norm::Set(json!(-3), false));
    assert_eq!(norm_integer(&json!("+3")), Norm::Set(json!(3), false));
    assert_eq!(norm_integer(&json!(2.5)), Norm::Bad(E::InvalidType));
    assert_eq!(norm_key(&json!(7)), Norm::Set(json!("7"), false));
    assert_eq!(norm_key(&json!(" k ")), Norm::Set(json!("k"), true));
    assert_eq!(norm_key(&json!("k\u{1}")), Norm::Bad(E::InvalidKey));
    assert_eq!(norm_key(&json!("x".repeat(256))), Norm::Bad(E::TooLong));
    assert_eq!(norm_key(&json!(true)), Norm::Bad(E::InvalidType));
    assert_eq!(
        norm_text(&json!("a\tb"), 100),
        Norm::Set(json!("a\tb"), false)
    );
    assert_eq!(norm_text(&json!("a\u{7}b"), 100), Norm::Bad(E::InvalidType));
    assert_eq!(
        norm_text(&json!("é".repeat(100)), 100),
        Norm::Set(json!("é".repeat(100)), false)
    );
    assert_eq!(
        norm_text(&json!("é".repeat(101)), 100),
        Norm::Bad(E::TooLong)
    );
    assert_eq!(norm_json(&json!("")), Norm::Empty);
    assert_eq!(norm_json(&json!({"b":1})), Norm::Set(json!({"b":1}), false));
}

#[test]
fn request_level_errors() {
    let mut m = Model::with_records_max(3);
    m.declare_column(&ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true));
    m.declare_column(&ColumnSpec::new("secret", ColumnType::Integer));
    let code = |m: &mut Model, r: Json| {
        let r: BulkRequest = serde_json::from_value(r).expect("parses");
        m.bulk(&r).err()
    };
    let c = |s: &str| Some(s.to_owned());
    assert_eq!(
        code(&mut m, json!({"mode":"upsert","records":[]})),
        c("no_records")
    );
    assert_eq!(
        code(&mut m, json!({"mode":"upsert","records":[{},{},{},{}]})),
        c("too_many_records")
    );
    assert_eq!(
        code(&mut m, json!({"mode":"upsert","records":[{"nope":1}]})),
        c("unknown_column")
    );
    assert_eq!(
        code(&mut m, json!({"mode":"upsert","records":[{"secret":1}]})),
        c("column_not_import_enabled")
    );
    assert_eq!(
        code(&mut m, json!({"mode":"upsert","records":[{"createdAt":1}]})),
        c("read_only_column")
    );
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"upsert","columns":["gsm","phoneNumber"],"records":[{}]})
        ),
        c("column_listed_twice")
    );
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"upsert","columns":["email"],"records":[{"gsm":"1"}]})
        ),
        c("column_not_in_list")
    );
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"upsert","records":[{"identifier":"a","contact_key":"a"}]})
        ),
        c("record_column_twice")
    );
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"upsert","records":[{"contact_key":"a","newContactKey":"b"}]})
        ),
        c("new_key_not_allowed")
    );
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"insert","columns":["new_contact_key"],"records":[{"contact_key":"a"}]})
        ),
        c("new_key_not_allowed")
    );
    assert_eq!(
        code(&mut m, json!({"mode":"upsert","records":[[1]]})),
        c("record_not_object")
    );
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"upsert","request_id":"","records":[{}]})
        ),
        c("invalid_request_id")
    );
    // A listed column and contact_key implied.
    assert_eq!(
        code(
            &mut m,
            json!({"mode":"upsert","columns":["Tier"],"records":[{"identifier":"a","tier":"4"}]})
        ),
        None
    );
    assert_eq!(get(&m, "a").columns["tier"], json!(4));
    assert!(m.requests.is_empty());
}

// R8/R9: alias creation by email match, then the alias finds the contact by key.
#[test]
fn alias_by_email() {
    let mut m = seeded(json!([{"contact_key":"k1","email":"a@x.com"}]));
    let mut r = req(
        Mode::Upsert,
        json!([{"contact_key":"k2","email":"A@x.com"}]),
    );
    r.match_on = match_on(true, false);
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Applied);
    expect(&rep, &[(O::Updated, Some(By::Email), Some("k1"), None)]);
    assert_eq!(
        warnings(&rep),
        vec![
            (0, Some("email"), W::ValueNormalized, None),
            (0, Some("contact_key"), W::AliasAdded, None),
        ]
    );
    let c = get(&m, "k1");
    assert_eq!(c.aliases, vec!["k2".to_owned()]);
    assert_eq!(c.version, 2);
    assert_eq!(m.contacts().len(), 1);

    // By alias, match_on=[key]; unchanged values.
    let rep = ok(
        &mut m,
        &req(
            Mode::Update,
            json!([{"contact_key":"k2","email":"a@x.com"}]),
        ),
    );
    expect(&rep, &[(O::Unchanged, Some(By::Alias), Some("k1"), None)]);
    assert_eq!(get(&m, "k1").version, 2);

    // Insert mode: matched by email is already_exists, no alias.
    let mut r = req(
        Mode::Insert,
        json!([{"contact_key":"k3","email":"a@x.com"}]),
    );
    r.match_on = match_on(true, true);
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Rejected);
    expect(&rep, &[(O::Failed, Some(By::Email), Some("k1"), None)]);
    assert_eq!(errors(&rep), vec![(0, None, E::AlreadyExists, None)]);
    assert_eq!(get(&m, "k1").aliases, vec!["k2".to_owned()]);
}

// R8: ambiguous match lists the candidates sorted; email and phone are united.
#[test]
fn ambiguous_match() {
    let mut m = seeded(json!([
        {"contact_key":"k2","gsm":"+905550000001"},
        {"contact_key":"k1","email":"a@x.com"},
    ]));
    let mut r = req(
        Mode::Upsert,
        json!([{"contact_key":"k3","email":"a@x.com","gsm":"+90 555 000 0001"}]),
    );
    r.match_on = MatchOn::ALL;
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Rejected);
    expect(&rep, &[(O::Failed, None, None, None)]);
    assert_eq!(rep.errors.len(), 1);
    assert_eq!(rep.errors[0].code, E::AmbiguousMatch);
    assert_eq!(rep.errors[0].column, None);
    assert_eq!(rep.errors[0].key.as_deref(), Some("k3"));
    assert_eq!(
        rep.errors[0].candidates,
        vec!["k1".to_owned(), "k2".to_owned()]
    );
    assert_eq!(
        rep.summary,
        Summary {
            total: 1,
            valid: 1,
            invalid: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            failed: 1,
            batches: 0
        }
    );
    // Only phone matching: one candidate, matched by phone.
    r.match_on = match_on(false, true);
    let rep = ok(&mut m, &r);
    expect(&rep, &[(O::Updated, Some(By::Phone), Some("k2"), None)]);
    let c = get(&m, "k2");
    assert_eq!(c.aliases, vec!["k3".to_owned()]);
    assert_eq!(c.columns["email"], json!("a@x.com"));
    assert_eq!(c.columns["email_status"], json!("A"));
    // A key match is authoritative whatever the email says.
    let mut r = req(
        Mode::Upsert,
        json!([{"contact_key":"k1","gsm":"+905550000001"}]),
    );
    r.match_on = MatchOn::ALL;
    let rep = ok(&mut m, &r);
    expect(&rep, &[(O::Updated, Some(By::Key), None, None)]);
}

fn dup_request(policy: OnDuplicate, on_invalid: OnInvalid) -> BulkRequest {
    let mut r = req(
        Mode::Upsert,
        json!([
            {"contact_key":"k1","name":"A"},
            {"contact_key":"k2","name":"X"},
            {"contact_key":"k1","name":"B"},
        ]),
    );
    r.on_duplicate = policy;
    r.on_invalid = on_invalid;
    r
}

// R6a under each policy.
#[test]
fn in_batch_duplicates() {
    // merge
    let mut m = Model::new();
    let rep = ok(&mut m, &dup_request(OnDuplicate::Merge, OnInvalid::Abort));
    assert_eq!(rep.status, Status::Applied);
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Inserted, None, None, None),
            (O::Updated, Some(By::Key), None, Some(0)),
        ],
    );
    assert_eq!(
        warnings(&rep),
        vec![(2, None, W::DuplicateInBatch, Some(0))]
    );
    assert_eq!(get(&m, "k1").columns["name"], json!("B"));
    assert_eq!(get(&m, "k1").version, 2);

    // first
    let mut m = Model::new();
    let rep = ok(&mut m, &dup_request(OnDuplicate::First, OnInvalid::Abort));
    assert_eq!(rep.status, Status::Applied);
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Inserted, None, None, None),
            (O::Duplicate, None, None, Some(0)),
        ],
    );
    assert!(rep.warnings.is_empty());
    assert_eq!(get(&m, "k1").columns["name"], json!("A"));
    assert_eq!(get(&m, "k1").version, 1);

    // last
    let mut m = Model::new();
    let rep = ok(&mut m, &dup_request(OnDuplicate::Last, OnInvalid::Abort));
    assert_eq!(rep.status, Status::Applied);
    expect(
        &rep,
        &[
            (O::Duplicate, None, None, Some(2)),
            (O::Inserted, None, None, None),
            (O::Inserted, None, None, None),
        ],
    );
    assert_eq!(get(&m, "k1").columns["name"], json!("B"));
    assert_eq!(get(&m, "k1").version, 1);
    assert_eq!(rep.summary.inserted, 2);

    // reject + abort
    let mut m = Model::new();
    let rep = ok(&mut m, &dup_request(OnDuplicate::Reject, OnInvalid::Abort));
    assert_eq!(rep.status, Status::Rejected);
    expect(
        &rep,
        &[
            (O::NotApplied, None, None, None),
            (O::NotApplied, None, None, None),
            (O::Failed, None, None, Some(0)),
        ],
    );
    assert_eq!(errors(&rep), vec![(2, None, E::DuplicateInBatch, Some(0))]);
    assert!(m.contacts().is_empty());
    assert_eq!(rep.summary.batches, 0);
    assert_eq!(rep.summary.valid, 3);
    assert_eq!(rep.summary.failed, 1);

    // reject + skip
    let mut m = Model::new();
    let rep = ok(&mut m, &dup_request(OnDuplicate::Reject, OnInvalid::Skip));
    assert_eq!(rep.status, Status::Partial);
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Inserted, None, None, None),
            (O::Failed, None, None, Some(0)),
        ],
    );
    assert_eq!(get(&m, "k1").columns["name"], json!("A"));
    assert_eq!(rep.summary.batches, 1);
}

// R6a last: pass 2 matches as if the left-out records were not there.
#[test]
fn last_with_email_duplicate() {
    let mut m = Model::new();
    let mut r = req(
        Mode::Upsert,
        json!([
            {"contact_key":"k1","email":"a@x.com","name":"A"},
            {"contact_key":"k2","email":"a@x.com","name":"B"},
        ]),
    );
    r.match_on = match_on(true, false);
    r.on_duplicate = OnDuplicate::Last;
    let rep = ok(&mut m, &r);
    expect(
        &rep,
        &[
            (O::Duplicate, None, None, Some(1)),
            (O::Inserted, None, None, None),
        ],
    );
    let c = get(&m, "k2");
    assert_eq!(c.columns["name"], json!("B"));
    assert!(c.aliases.is_empty());
    assert_eq!(m.contacts().len(), 1);
}

// R11: A→T, B→A, T→B in one update request.
#[test]
fn rekey_chain() {
    let mut m = seeded(json!([
        {"contact_key":"A","name":"a"},
        {"contact_key":"B","name":"b"},
    ]));
    let rep = ok(
        &mut m,
        &req(
            Mode::Update,
            json!([
                {"contact_key":"A","new_contact_key":"T"},
                {"contact_key":"B","new_contact_key":"A"},
                {"contact_key":"T","new_contact_key":"B"},
            ]),
        ),
    );
    assert_eq!(rep.status, Status::Applied);
    expect(
        &rep,
        &[
            (O::Updated, Some(By::Key), Some("T"), None),
            (O::Updated, Some(By::Key), Some("A"), None),
            (O::Updated, Some(By::Key), Some("B"), Some(0)),
        ],
    );
    assert_eq!(
        warnings(&rep),
        vec![(2, None, W::DuplicateInBatch, Some(0))]
    );
    let a = get(&m, "A");
    let b = get(&m, "B");
    assert_eq!(a.columns["name"], json!("b"));
    assert_eq!(a.version, 2);
    assert!(a.aliases.is_empty());
    assert_eq!(b.columns["name"], json!("a"));
    assert_eq!(b.version, 3);
    assert_eq!(m.contacts().len(), 2);

    // key_conflict: the new key is held by another contact.
    let rep = ok(
        &mut m,
        &req(
            Mode::Update,
            json!([{"contact_key":"A","new_contact_key":"B"}]),
        ),
    );
    assert_eq!(
        errors(&rep),
        vec![(0, Some("new_contact_key"), E::KeyConflict, None)]
    );
    expect(&rep, &[(O::Failed, Some(By::Key), None, None)]);
    // The old key stops resolving.
    let rep = ok(
        &mut m,
        &req(Mode::Update, json!([{"contact_key":"T","name":"z"}])),
    );
    assert_eq!(errors(&rep), vec![(0, None, E::NotFound, None)]);
    // Renaming to one's own key is no change.
    let rep = ok(
        &mut m,
        &req(
            Mode::Update,
            json!([{"contact_key":"A","new_contact_key":"A"}]),
        ),
    );
    expect(&rep, &[(O::Unchanged, Some(By::Key), None, None)]);
    // Renaming to one's own alias promotes it; the old key is dropped.
    let mut r = req(Mode::Upsert, json!([{"contact_key":"Z","email":"q@x.com"}]));
    r.match_on = match_on(true, false);
    ok(
        &mut m,
        &req(Mode::Update, json!([{"contact_key":"A","email":"q@x.com"}])),
    );
    ok(&mut m, &r);
    assert_eq!(get(&m, "A").aliases, vec!["Z".to_owned()]);
    let rep = ok(
        &mut m,
        &req(
            Mode::Update,
            json!([{"contact_key":"A","new_contact_key":"Z"}]),
        ),
    );
    expect(&rep, &[(O::Updated, Some(By::Key), Some("Z"), None)]);
    let z = get(&m, "Z");
    assert!(z.aliases.is_empty());
    assert!(m.contacts().iter().all(|c| c.key != "A"));
}

// R6: insert then update of the same key in one request.
#[test]
fn insert_then_update() {
    let mut m = Model::new();
    let rep = ok(
        &mut m,
        &req(
            Mode::Upsert,
            json!([
                {"contact_key":"k1","name":"A"},
                {"contact_key":"k1","email":"b@x.com"},
            ]),
        ),
    );
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Updated, Some(By::Key), None, Some(0)),
        ],
    );
    let c = get(&m, "k1");
    assert_eq!(c.version, 2);
    assert_eq!(
        c.columns,
        BTreeMap::from([
            ("name".to_owned(), json!("A")),
            ("email".to_owned(), json!("b@x.com")),
            ("email_status".to_owned(), json!("A")),
            ("status".to_owned(), json!("A")),
            ("priority".to_owned(), json!(5)),
        ])
    );
    // Insert mode: the second insert of one key fails, naming the first.
    let mut m = Model::new();
    let mut r = req(
        Mode::Insert,
        json!([{"contact_key":"k1"}, {"contact_key":" k1"}]),
    );
    r.on_invalid = OnInvalid::Skip;
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Partial);
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Failed, Some(By::Key), None, Some(0)),
        ],
    );
    assert_eq!(errors(&rep), vec![(1, None, E::AlreadyExists, Some(0))]);
    assert!(rep.warnings.is_empty());
    // Update mode: an unknown key is not_found even if a later record inserts... no:
    // update never inserts.
    let rep = ok(&mut m, &req(Mode::Update, json!([{"contact_key":"k9"}])));
    assert_eq!(errors(&rep), vec![(0, None, E::NotFound, None)]);
}

// R14: abort vs skip; validation errors are all reported, ordered by column.
#[test]
fn abort_vs_skip() {
    let records = json!([
        {"contact_key":"k1","name":"A"},
        {"contact_key":"k2","priority":-1,"email":"bad","status":"X"},
        {"name":"nokey"},
    ]);
    let mut m = Model::new();
    let rep = ok(&mut m, &req(Mode::Upsert, records.clone()));
    assert_eq!(rep.status, Status::Rejected);
    expect(
        &rep,
        &[
            (O::NotApplied, None, None, None),
            (O::Failed, None, None, None),
            (O::Failed, None, None, None),
        ],
    );
    assert_eq!(
        errors(&rep),
        vec![
            (1, Some("email"), E::InvalidEmail, None),
            (1, Some("status"), E::InvalidEnum, None),
            (1, Some("priority"), E::InvalidPriority, None),
            (2, Some("contact_key"), E::MissingKey, None),
        ]
    );
    assert_eq!(rep.errors[0].key.as_deref(), Some("k2"));
    assert_eq!(rep.errors[3].key, None);
    assert_eq!(rep.results[2].key, None);
    assert_eq!(
        rep.summary,
        Summary {
            total: 3,
            valid: 1,
            invalid: 2,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            failed: 2,
            batches: 0
        }
    );
    assert!(m.contacts().is_empty());

    let mut r = req(Mode::Upsert, records);
    r.on_invalid = OnInvalid::Skip;
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(rep.results[0].outcome, O::Inserted);
    assert_eq!(rep.summary.inserted, 1);
    assert_eq!(rep.summary.batches, 1);
    assert_eq!(m.contacts().len(), 1);

    // Skip where every record fails: rejected.
    let mut r = req(Mode::Update, json!([{"contact_key":"zz"}]));
    r.on_invalid = OnInvalid::Skip;
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(rep.summary.batches, 0);
}

// R13.
#[test]
fn unchanged() {
    let mut m = seeded(json!([{"contact_key":"k1","name":"A","email":"a@x.com"}]));
    let rep = ok(
        &mut m,
        &req(
            Mode::Upsert,
            json!([{"contact_key":"k1","name":" A ","email":"A@X.COM","status":"a","priority":"5"}]),
        ),
    );
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(rep.summary.batches, 1);
    assert_eq!(rep.summary.unchanged, 1);
    expect(&rep, &[(O::Unchanged, Some(By::Key), None, None)]);
    assert_eq!(
        warnings(&rep),
        vec![
            (0, Some("name"), W::ValueNormalized, None),
            (0, Some("email"), W::ValueNormalized, None),
            (0, Some("status"), W::ValueNormalized, None),
        ]
    );
    assert_eq!(get(&m, "k1").version, 1);
    // Change and change back within one request: two writes.
    let rep = ok(
        &mut m,
        &req(
            Mode::Update,
            json!([{"contact_key":"k1","name":"B"},{"contact_key":"k1","name":"A"}]),
        ),
    );
    assert_eq!(rep.summary.updated, 2);
    assert_eq!(get(&m, "k1").version, 3);
}

// R12 and the defaults.
#[test]
fn status_rules() {
    let mut m = seeded(json!([
        {"contact_key":"k1","email":"a@x.com"},
        {"contact_key":"k2","gsm":"+905550000001","gsm_status":"P","status":"p"},
        {"contact_key":"k3","email_status":"P"},
    ]));
    let cols = |m: &Model, k: &str| get(m, k).columns;
    assert_eq!(cols(&m, "k1")["status"], json!("A"));
    assert_eq!(cols(&m, "k1")["email_status"], json!("A"));
    assert_eq!(cols(&m, "k1")["priority"], json!(5));
    assert!(!cols(&m, "k1").contains_key("gsm_status"));
    assert_eq!(cols(&m, "k2")["gsm_status"], json!("P"));
    assert_eq!(cols(&m, "k2")["status"], json!("P"));
    assert_eq!(cols(&m, "k3")["email_status"], json!("P"));
    assert!(!cols(&m, "k3").contains_key("email"));

    let upd = |m: &mut Model, rec: Json| {
        let rep = ok(m, &req(Mode::Update, json!([rec])));
        assert_eq!(rep.status, Status::Applied, "{rep:#?}");
        rep.results[0].outcome
    };
    assert_eq!(
        upd(&mut m, json!({"contact_key":"k1","email_status":"P"})),
        O::Updated
    );
    assert_eq!(cols(&m, "k1")["email_status"], json!("P"));
    // Same email: no status change.
    assert_eq!(
        upd(&mut m, json!({"contact_key":"k1","email":"A@x.com"})),
        O::Unchanged
    );
    assert_eq!(cols(&m, "k1")["email_status"], json!("P"));
    // New email: email_status becomes A.
    assert_eq!(
        upd(&mut m, json!({"contact_key":"k1","email":"b@x.com"})),
        O::Updated
    );
    assert_eq!(cols(&m, "k1")["email_status"], json!("A"));
    // New email with an explicit status: it wins.
    assert_eq!(
        upd(
            &mut m,
            json!({"contact_key":"k1","email":"c@x.com","email_status":"p"})
        ),
        O::Updated
    );
    assert_eq!(cols(&m, "k1")["email_status"], json!("P"));
    // Clearing the email leaves the status.
    assert_eq!(
        upd(&mut m, json!({"contact_key":"k1","email":null})),
        O::Updated
    );
    assert!(!cols(&m, "k1").contains_key("email"));
    assert_eq!(cols(&m, "k1")["email_status"], json!("P"));
    // Phone too.
    assert_eq!(
        upd(
            &mut m,
            json!({"contact_key":"k2","gsm":"0090 555 000 0002"})
        ),
        O::Updated
    );
    assert_eq!(cols(&m, "k2")["gsm_status"], json!("A"));
    assert_eq!(cols(&m, "k2")["gsm"], json!("+905550000002"));
    // Clearing status / priority restores the default.
    assert_eq!(
        upd(&mut m, json!({"contact_key":"k2","status":"","priority":9})),
        O::Updated
    );
    assert_eq!(cols(&m, "k2")["status"], json!("A"));
    assert_eq!(cols(&m, "k2")["priority"], json!(9));
    assert_eq!(
        upd(&mut m, json!({"contact_key":"k2","priority":null})),
        O::Updated
    );
    assert_eq!(cols(&m, "k2")["priority"], json!(5));
    assert_eq!(
        upd(
            &mut m,
            json!({"contact_key":"k2","status":null,"priority":""})
        ),
        O::Unchanged
    );
}

// R7: empty_values=ignore.
#[test]
fn empty_values_ignore() {
    let mut m =
        seeded(json!([{"contact_key":"k1","name":"A","email":"a@x.com","metadata":{"x":1}}]));
    let mut r = req(
        Mode::Upsert,
        json!([{"contact_key":"k1","name":null,"email":"  ","metadata":"","gsm":null}]),
    );
    r.empty_values = EmptyValues::Ignore;
    let rep = ok(&mut m, &r);
    expect(&rep, &[(O::Unchanged, Some(By::Key), None, None)]);
    assert!(rep.warnings.is_empty());
    assert_eq!(get(&m, "k1").columns["name"], json!("A"));
    // A key cannot be ignored.
    let mut r = req(Mode::Upsert, json!([{"contact_key":"","name":"B"}]));
    r.empty_values = EmptyValues::Ignore;
    let rep = ok(&mut m, &r);
    assert_eq!(
        errors(&rep),
        vec![(0, Some("contact_key"), E::MissingKey, None)]
    );
    // The same with clear.
    let rep = ok(
        &mut m,
        &req(
            Mode::Upsert,
            json!([{"contact_key":"k1","name":null,"email":"  ","metadata":""}]),
        ),
    );
    expect(&rep, &[(O::Updated, Some(By::Key), None, None)]);
    let c = get(&m, "k1");
    assert_eq!(
        c.columns,
        BTreeMap::from([
            ("email_status".to_owned(), json!("A")),
            ("status".to_owned(), json!("A")),
            ("priority".to_owned(), json!(5)),
        ])
    );
}

// Match by email ignores a record that clears its email; matching sees earlier records.
#[test]
fn matching_sees_earlier_records() {
    let mut m = Model::new();
    let mut r = req(
        Mode::Upsert,
        json!([
            {"contact_key":"k1","email":"a@x.com"},
            {"contact_key":"k2","email":"a@x.com"},
            {"contact_key":"k3","email":null},
            {"contact_key":"k2","name":"via alias"},
        ]),
    );
    r.match_on = match_on(true, false);
    let rep = ok(&mut m, &r);
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Updated, Some(By::Email), Some("k1"), Some(0)),
            (O::Inserted, None, None, None),
            (O::Updated, Some(By::Alias), Some("k1"), Some(0)),
        ],
    );
    assert_eq!(
        warnings(&rep),
        vec![
            (1, Some("contact_key"), W::AliasAdded, None),
            (1, None, W::DuplicateInBatch, Some(0)),
            (3, None, W::DuplicateInBatch, Some(0)),
        ]
    );
    assert_eq!(get(&m, "k1").version, 3);
}

// R21: replay and reuse.
#[test]
fn request_ids() {
    let mut m = Model::new();
    let mut r = req(Mode::Upsert, json!([{"contact_key":"k1","name":"A"}]));
    r.request_id = Some("r1".into());
    let first = ok(&mut m, &r);
    assert_eq!(first.request_id.as_deref(), Some("r1"));
    assert!(!first.replayed);
    let again = ok(&mut m, &r);
    assert!(again.replayed);
    assert_eq!(
        Report {
            replayed: false,
            ..again
        },
        first
    );
    assert_eq!(get(&m, "k1").version, 1);
    let mut other = r.clone();
    other.records = vec![json!({"contact_key":"k1","name":"B"})];
    assert_eq!(m.bulk(&other).err().as_deref(), Some("request_id_reused"));
    // A rejected request does not store its id.
    let mut bad = req(Mode::Update, json!([{"contact_key":"nope"}]));
    bad.request_id = Some("r2".into());
    assert_eq!(ok(&mut m, &bad).status, Status::Rejected);
    let mut good = req(Mode::Upsert, json!([{"contact_key":"k2"}]));
    good.request_id = Some("r2".into());
    assert_eq!(ok(&mut m, &good).status, Status::Applied);
}

// R3: custom columns, required.
#[test]
fn custom_columns() {
    let mut m = Model::new();
    m.declare_column(&ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true));
    m.declare_column(
        &ColumnSpec::new("code", ColumnType::String { max_len: 3 })
            .import_enabled(true)
            .required(true),
    );
    let mut r = req(
        Mode::Upsert,
        json!([
            {"contact_key":"k1","tier":"7","code":" ab "},
            {"contact_key":"k2","tier":1},
            {"contact_key":"k3","tier":"x","code":"abcd","email":"bad"},
        ]),
    );
    r.on_invalid = OnInvalid::Skip;
    let rep = ok(&mut m, &r);
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(
        errors(&rep),
        vec![
            (1, Some("code"), E::RequiredMissing, None),
            (2, Some("email"), E::InvalidEmail, None),
            (2, Some("tier"), E::InvalidType, None),
            (2, Some("code"), E::TooLong, None),
        ]
    );
    assert_eq!(rep.summary.invalid, 1);
    assert_eq!(rep.summary.failed, 2);
    assert_eq!(
        warnings(&rep),
        vec![(0, Some("code"), W::ValueNormalized, None)]
    );
    let c = get(&m, "k1");
    assert_eq!(c.columns["tier"], json!(7));
    assert_eq!(c.columns["code"], json!("ab"));
    // Update without the required column is fine; clearing it is not.
    let rep = ok(
        &mut m,
        &req(Mode::Update, json!([{"contact_key":"k1","tier":null}])),
    );
    assert_eq!(rep.status, Status::Applied);
    let rep = ok(
        &mut m,
        &req(Mode::Update, json!([{"contact_key":"k1","code":""}])),
    );
    assert_eq!(
        errors(&rep),
        vec![(0, Some("code"), E::RequiredMissing, None)]
    );
    expect(&rep, &[(O::Failed, Some(By::Key), None, None)]);
}

// R6a: in insert mode the second insert of one key is already_exists (naming the
// first) under merge; under first, last and reject the two records are occurrences
// of one contact (same key, no contact at the request's start), so one is left out.
#[test]
fn insert_mode_duplicates_follow_the_policy() {
    for policy in [
        OnDuplicate::Merge,
        OnDuplicate::First,
        OnDuplicate::Last,
        OnDuplicate::Reject,
    ] {
        let mut m = Model::new();
        let mut r = req(
            Mode::Insert,
            json!([{"contact_key":"k1"},{"contact_key":"k1"}]),
        );
        r.on_duplicate = policy;
        r.on_invalid = OnInvalid::Skip;
        let rep = ok(&mut m, &r);
        match policy {
            OnDuplicate::First => {
                assert_eq!(rep.status, Status::Applied);
                expect(
                    &rep,
                    &[
                        (O::Inserted, None, None, None),
                        (O::Duplicate, None, None, Some(0)),
                    ],
                );
                assert!(errors(&rep).is_empty());
            }
            OnDuplicate::Last => {
                assert_eq!(rep.status, Status::Applied);
                expect(
                    &rep,
                    &[
                        (O::Duplicate, None, None, Some(1)),
                        (O::Inserted, None, None, None),
                    ],
                );
                assert!(errors(&rep).is_empty());
            }
            OnDuplicate::Reject => {
                assert_eq!(rep.status, Status::Partial);
                expect(
                    &rep,
                    &[
                        (O::Inserted, None, None, None),
                        (O::Failed, None, None, Some(0)),
                    ],
                );
                assert_eq!(errors(&rep), vec![(1, None, E::DuplicateInBatch, Some(0))]);
            }
            OnDuplicate::Merge => {
                assert_eq!(rep.status, Status::Partial, "{policy:?}");
                expect(
                    &rep,
                    &[
                        (O::Inserted, None, None, None),
                        (O::Failed, Some(By::Key), None, Some(0)),
                    ],
                );
                assert_eq!(errors(&rep), vec![(1, None, E::AlreadyExists, Some(0))]);
            }
        }
    }
}

// R12 (open point): a record clearing email_status while changing the email keeps
// it cleared on update; on insert the default still applies.
#[test]
fn cleared_status_with_new_email() {
    let mut m = seeded(json!([{"contact_key":"k1","email":"a@x.com","email_status":"P"}]));
    ok(
        &mut m,
        &req(
            Mode::Update,
            json!([{"contact_key":"k1","email":"b@x.com","email_status":null}]),
        ),
    );
    assert!(!get(&m, "k1").columns.contains_key("email_status"));
    ok(
        &mut m,
        &req(
            Mode::Insert,
            json!([{"contact_key":"k2","email":"b@x.com","email_status":""}]),
        ),
    );
    assert_eq!(get(&m, "k2").columns["email_status"], json!("A"));
    // Under ignore the null is absent, so the rule applies.
    let mut r = req(
        Mode::Update,
        json!([{"contact_key":"k1","email":"c@x.com","email_status":null}]),
    );
    r.empty_values = EmptyValues::Ignore;
    ok(&mut m, &r);
    assert_eq!(get(&m, "k1").columns["email_status"], json!("A"));
}

fn json_req(m: &mut Model, r: Json) -> Result<Report, String> {
    m.bulk_json(&r)
}

// R6a last, identity from the request's start: record 0 reaches s by key, record 1
// reaches s by email (e1 is s's email at the start), record 2 reaches s by key; one
// group, the last kept. y is never an alias of s and e2 is never written.
#[test]
fn r06a_last_decides_identity_from_the_start() {
    let mut m = seeded(json!([{"contact_key":"s","email":"e1@x.com"}]));
    let rep = json_req(
        &mut m,
        json!({"mode":"upsert","match_on":["key","email"],"on_duplicate":"last","records":[
            {"contact_key":"s","email":"e2@x.com"},
            {"contact_key":"y","email":"e1@x.com"},
            {"contact_key":"s","name":"n"},
        ]}),
    )
    .expect("no request-level error");
    assert_eq!(rep.status, Status::Applied);
    expect(
        &rep,
        &[
            (O::Duplicate, None, None, Some(2)),
            (O::Duplicate, None, None, Some(2)),
            (O::Updated, Some(By::Key), None, None),
        ],
    );
    assert!(rep.warnings.is_empty());
    assert_eq!(
        (rep.summary.valid, rep.summary.updated, rep.summary.failed),
        (3, 1, 0)
    );
    let s = get(&m, "s");
    assert_eq!(s.columns["email"], json!("e1@x.com"));
    assert_eq!(s.columns["name"], json!("n"));
    assert!(s.aliases.is_empty());
    assert_eq!(s.version, 2);
    assert_eq!(m.contacts().len(), 1);
}

// R6a last with a rename: record 0 reaches a, record 1 reaches nothing at the start
// (labels key b): two groups, both kept; record 1 then finds the renamed contact,
// which record 0 reached, so it carries merge's duplicate_in_batch remark.
#[test]
fn r06a_last_keeps_a_rename_and_the_record_of_the_new_key() {
    let mut m = seeded(json!([{"contact_key":"a"}]));
    let rep = json_req(
        &mut m,
        json!({"mode":"update","on_duplicate":"last","on_invalid":"skip","records":[
            {"contact_key":"a","new_contact_key":"b"},
            {"contact_key":"b","name":"X"},
        ]}),
    )
    .expect("no request-level error");
    assert_eq!(rep.status, Status::Applied);
    expect(
        &rep,
        &[
            (O::Updated, Some(By::Key), Some("b"), None),
            (O::Updated, Some(By::Key), None, Some(0)),
        ],
    );
    assert_eq!(
        warnings(&rep),
        vec![(1, None, W::DuplicateInBatch, Some(0))]
    );
    let b = get(&m, "b");
    assert_eq!(b.columns["name"], json!("X"));
    assert_eq!(b.version, 3);
    assert_eq!(m.contacts().len(), 1);
}

// R6a: labels chain transitively (k1~k2 by email a, k2~k3 by key), an ambiguous
// record at the start reaches none and is labelled by its own values, and records
// with validation errors take no part.
#[test]
fn r06a_groups_are_transitive() {
    let mut m = seeded(json!([
        {"contact_key":"p","email":"p@x.com"},
        {"contact_key":"q","gsm":"+905550000001"},
    ]));
    let rep = json_req(
        &mut m,
        json!({"mode":"upsert","match_on":["email","phone"],"on_duplicate":"first",
            "on_invalid":"skip","records":[
            {"contact_key":"k1","email":"a@x.com"},
            {"contact_key":"k2","email":"a@x.com","gsm":"+905550000009"},
            {"contact_key":"k3","email":"bad"},
            {"contact_key":"k2","name":"n"},
            {"contact_key":"z","email":"p@x.com","gsm":"+905550000001"},
            {"contact_key":"z","name":"z"},
            {"contact_key":"w","gsm":"+905550000009"},
        ]}),
    )
    .expect("no request-level error");
    expect(
        &rep,
        &[
            (O::Inserted, None, None, None),
            (O::Duplicate, None, None, Some(0)),
            (O::Failed, None, None, None),
            (O::Duplicate, None, None, Some(0)),
            (O::Failed, None, None, None),
            (O::Duplicate, None, None, Some(4)),
            (O::Duplicate, None, None, Some(0)),
        ],
    );
    assert_eq!(rep.status, Status::Partial);
    assert_eq!(
        errors(&rep),
        vec![
            (2, Some("email"), E::InvalidEmail, None),
            (4, None, E::AmbiguousMatch, None),
        ]
    );
    assert_eq!(
        (rep.summary.valid, rep.summary.invalid, rep.summary.failed),
        (6, 1, 2)
    );
}

// R6a reject: left-out records fail with one duplicate_in_batch error naming the
// kept one (so abort rejects the request); the first occurrence of a contact by
// alias and by key are one group.
#[test]
fn r06a_reject_by_alias_and_key() {
    let mut m = seeded(json!([{"contact_key":"k1","email":"a@x.com"}]));
    let mut r = req(
        Mode::Upsert,
        json!([{"contact_key":"al","email":"a@x.com"}]),
    );
    r.match_on = match_on(true, false);
    ok(&mut m, &r);
    assert_eq!(get(&m, "k1").aliases, vec!["al".to_owned()]);
    for (on_invalid, status) in [("abort", Status::Rejected), ("skip", Status::Partial)] {
        let mut m = m.clone();
        let rep = json_req(
            &mut m,
            json!({"mode":"update","on_duplicate":"reject","on_invalid":on_invalid,"records":[
                {"contact_key":"al","name":"A"},
                {"contact_key":"k1","name":"B"},
            ]}),
        )
        .expect("no request-level error");
        assert_eq!(rep.status, status);
        let first = if status == Status::Rejected {
            O::NotApplied
        } else {
            O::Updated
        };
        expect(
            &rep,
            &[
                (first, Some(By::Alias), Some("k1"), None),
                (O::Failed, None, None, Some(0)),
            ],
        );
        assert_eq!(errors(&rep), vec![(1, None, E::DuplicateInBatch, Some(0))]);
        assert_eq!(rep.summary.failed, 1);
        assert_eq!(rep.summary.valid, 2);
    }
}

// R5: the order of the request-level checks.
#[test]
fn r05_check_order() {
    let mut m = Model::with_records_max(3);
    m.declare_column(&ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true));
    m.declare_column(&ColumnSpec::new("secret", ColumnType::Integer));
    let mut code = |r: Json| json_req(&mut m, r).err();
    let c = |s: &str| Some(s.to_owned());
    // The count before the request_id form.
    assert_eq!(
        code(json!({"mode":"upsert","request_id":"","records":[]})),
        c("no_records")
    );
    // An unknown name in a record before a disabled one in `columns`.
    assert_eq!(
        code(json!({"mode":"upsert","columns":["secret"],"records":[{"bogus":1}]})),
        c("unknown_column")
    );
    // Read-only in the same scan as unknown: the first found.
    assert_eq!(
        code(json!({"mode":"upsert","records":[{"version":1},{"bogus":1}]})),
        c("read_only_column")
    );
    // Disabled before a column listed twice.
    assert_eq!(
        code(json!({"mode":"upsert","columns":["gsm","phoneNumber"],"records":[{"secret":1}]})),
        c("column_not_import_enabled")
    );
    // Listed twice before a record carrying a column twice.
    assert_eq!(
        code(
            json!({"mode":"upsert","columns":["contact_key","identifier"],
            "records":[{"gsm":"1","phone_number":"2"}]})
        ),
        c("column_listed_twice")
    );
    // A record with a column twice before new_contact_key outside update.
    assert_eq!(
        code(
            json!({"mode":"upsert","records":[{"new_contact_key":"x"},{"gsm":"1","phoneNumber":"2"}]})
        ),
        c("record_column_twice")
    );
    // new_contact_key outside update before a column not in the list.
    assert_eq!(
        code(
            json!({"mode":"insert","columns":["name"],"records":[{"email":"a@x.com"},{"new_contact_key":""}]})
        ),
        c("new_key_not_allowed")
    );
    // Not in the list before a record that is not an object.
    assert_eq!(
        code(json!({"mode":"upsert","columns":["name"],"records":[[1],{"email":"a@x.com"}]})),
        c("column_not_in_list")
    );
    // Non-objects are skipped by the other checks.
    assert_eq!(
        code(json!({"mode":"upsert","records":[7,{"contact_key":"a"}]})),
        c("record_not_object")
    );
}

// null means absent: request options and a record's new_contact_key.
#[test]
fn null_means_absent() {
    let mut m = Model::new();
    let rep = json_req(
        &mut m,
        json!({"mode":"upsert","match_on":null,"on_invalid":null,"on_duplicate":null,
            "empty_values":null,"request_id":null,"columns":null,
            "records":[{"contact_key":"a","new_contact_key":null,"name":"A"}]}),
    )
    .expect("null options and a null new_contact_key are accepted");
    assert_eq!(rep.status, Status::Applied);
    assert_eq!(rep.request_id, None);
    expect(&rep, &[(O::Inserted, None, None, None)]);
    // Not a column in use: not outside `columns`, not twice.
    let rep = json_req(
        &mut m,
        json!({"mode":"insert","columns":["name"],
            "records":[{"contact_key":"b","new_contact_key":null,"newContactKey":null}]}),
    )
    .expect("accepted");
    assert_eq!(rep.status, Status::Applied);
    // In update mode: no rename.
    let rep = json_req(
        &mut m,
        json!({"mode":"update","records":[{"contact_key":"a","new_contact_key":null}]}),
    )
    .expect("accepted");
    expect(&rep, &[(O::Unchanged, Some(By::Key), None, None)]);
    // An empty string is a value: refused outside update.
    assert_eq!(
        json_req(
            &mut m,
            json!({"mode":"upsert","records":[{"contact_key":"a","new_contact_key":""}]})
        )
        .err()
        .as_deref(),
        Some("new_key_not_allowed")
    );
}

// R21: the same body however its defaults are spelled; replay before the checks.
#[test]
fn r21_same_body_and_replay_first() {
    let mut m = Model::new();
    m.declare_column(&ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true));
    let first = json_req(
        &mut m,
        json!({"mode":"upsert","request_id":"r1","records":[{"tier":1,"contact_key":"a"}]}),
    )
    .expect("applies");
    assert_eq!(first.status, Status::Applied);
    let same = json!({"records":[{"contact_key":"a","tier":1}],"request_id":"r1",
        "mode":"upsert","match_on":["key"],"on_invalid":null,"on_duplicate":"merge",
        "empty_values":"clear","columns":null});
    let again = json_req(&mut m, same.clone()).expect("replays");
    assert!(again.replayed);
    assert_eq!(
        Report {
            replayed: false,
            ..again
        },
        first
    );
    // The column's flag switched off: still a replay.
    m.declare_column(&ColumnSpec::new("tier", ColumnType::Integer).import_enabled(false));
    assert!(json_req(&mut m, same).expect("replays").replayed);
    // A different body.
    assert_eq!(
        json_req(
            &mut m,
            json!({"mode":"upsert","request_id":"r1","match_on":["email"],
                "records":[{"contact_key":"a","tier":1}]})
        )
        .err()
        .as_deref(),
        Some("request_id_reused")
    );
    assert_eq!(
        canonical_body(
            &parse_request(&json!({"mode":"insert","match_on":["phone","email","key"],
            "columns":["b","a"],"records":[{"z":"\"\u{1}","a":[{"y":1,"x":null}]}, 3]}))
            .expect("parses")
        ),
        r#"{"columns":["b","a"],"empty_values":"clear","match_on":["email","key","phone"],"mode":"insert","on_duplicate":"merge","on_invalid":"abort","records":[{"a":[{"x":null,"y":1}],"z":"\"\u0001"},3]}"#
    );
}

// R6a rule 6: kept records of two groups meet through the request's own changes
// (record 0 gives c the email record 1 matches by); record 1 then applies as under
// merge: an alias, and the duplicate_in_batch remark naming record 0.
#[test]
fn r06a_kept_records_meet_through_the_requests_own_changes() {
    let mut m = seeded(json!([{"contact_key":"c","email":"old@x.com"}]));
    let rep = json_req(
        &mut m,
        json!({"mode":"upsert","match_on":["email"],"on_duplicate":"last","records":[
            {"contact_key":"c","email":"e@x.com"},
            {"contact_key":"y","email":"e@x.com","name":"Y"},
        ]}),
    )
    .expect("no request-level error");
    expect(
        &rep,
        &[
            (O::Updated, Some(By::Key), None, None),
            (O::Updated, Some(By::Email), Some("c"), Some(0)),
        ],
    );
    assert_eq!(
        warnings(&rep),
        vec![
            (1, Some("contact_key"), W::AliasAdded, None),
            (1, None, W::DuplicateInBatch, Some(0)),
        ]
    );
    let c = get(&m, "c");
    assert_eq!(c.aliases, vec!["y".to_owned()]);
    assert_eq!(c.columns["name"], json!("Y"));
    assert_eq!(c.version, 3);
}

/// (kind, key, version, detail) per event.
fn feed(es: &[ModelEvent]) -> Vec<(&'static str, String, u64, Option<String>)> {
    es.iter()
        .map(|e| (e.kind, e.key.clone(), e.version, e.detail.clone()))
        .collect()
}

fn ev(
    kind: &'static str,
    key: &str,
    version: u64,
    detail: Option<&str>,
) -> (&'static str, String, u64, Option<String>) {
    (kind, key.to_owned(), version, detail.map(str::to_owned))
}

// R16: a campaign's members in pick order (priority, then joining); a contact
// joins once and keeps its place; a rekey keeps the membership; a priority change
// moves it; a missing campaign is a request-level error after the others.
#[test]
fn r16_members_in_pick_order() {
    let mut m = Model::new();
    m.create_campaign("c", &[]).expect("created");
    json_req(
        &mut m,
        json!({"mode":"upsert","campaign":"c","records":[
            {"contact_key":"a","priority":7},{"contact_key":"b"},{"contact_key":"c","priority":0},
            {"contact_key":"a"}]}),
    )
    .expect("applies");
    let order = |m: &Model| m.members("c").expect("campaign");
    assert_eq!(
        order(&m),
        vec![("c".into(), 0), ("b".into(), 5), ("a".into(), 7)]
    );
    json_req(
        &mut m,
        json!({"mode":"update","campaign":"c","records":[
            {"contact_key":"a","new_contact_key":"z","priority":5},{"contact_key":"c","priority":9}]}),
    )
    .expect("applies");
    assert_eq!(
        order(&m),
        vec![("z".into(), 5), ("b".into(), 5), ("c".into(), 9)]
    );
    assert_eq!(
        json_req(
            &mut m,
            json!({"mode":"upsert","campaign":"nope","records":[{"contact_key":"x","bogus":1}]})
        )
        .err()
        .as_deref(),
        Some("unknown_column")
    );
    assert_eq!(
        json_req(
            &mut m,
            json!({"mode":"upsert","campaign":"nope","records":[{"contact_key":"x"}]})
        )
        .err()
        .as_deref(),
        Some("no_such_campaign")
    );
}

// R16: a record whose contact would join without a required column's value fails
// with one campaign_column_missing per column; under abort nobody joins.
#[test]
fn r16_required_columns() {
    let mut m = Model::new();
    m.create_campaign("calls", &["phoneNumber"])
        .expect("created");
    let rep = json_req(
        &mut m,
        json!({"mode":"upsert","campaign":"calls","on_invalid":"skip","records":[
            {"contact_key":"a","gsm":"+905550000001"},{"contact_key":"b"}]}),
    )
    .expect("no request-level error");
    assert_eq!(
        errors(&rep),
        vec![(1, Some("gsm"), E::CampaignColumnMissing, None)]
    );
    assert_eq!(m.members("calls").expect("campaign"), vec![("a".into(), 5)]);
    let rep = json_req(
        &mut m,
        json!({"mode":"update","campaign":"calls","records":[{"contact_key":"a","gsm":null}]}),
    )
    .expect("no request-level error");
    assert_eq!(rep.status, Status::Rejected);
    assert_eq!(
        errors(&rep),
        vec![(0, Some("gsm"), E::CampaignColumnMissing, None)]
    );
}

// R18: per written contact insert, or rekey / alias / update; joins last; key and
// version after the request; the trigger on each; nothing for unchanged records,
// rejected requests or replays.
#[test]
fn r18_events_of_a_request() {
    let mut m = Model::new();
    m.create_campaign("c", &[]).expect("created");
    json_req(
        &mut m,
        json!({"mode":"upsert","match_on":["email"],"records":[
            {"contact_key":"a","email":"a@x.com"},{"contact_key":"n","email":"a@x.com"},
            {"contact_key":"b"}]}),
    )
    .expect("applies");
    assert_eq!(
        feed(m.events()),
        vec![ev("insert", "a", 2, None), ev("insert", "b", 1, None)]
    );
    let trigger = json!({"workflow":"welcome"});
    json_req(
        &mut m,
        json!({"mode":"update","match_on":["email"],"campaign":"c","trigger":trigger,
            "request_id":"r1","records":[
            {"contact_key":"b","name":"B"},
            {"contact_key":"a","new_contact_key":"t"},
            {"contact_key":"t","new_contact_key":"u","email":"e@x.com"},
            {"contact_key":"m","email":"e@x.com"},
            {"contact_key":"b","name":null},
            {"contact_key":"b"}]}),
    )
    .expect("applies");
    let new = &m.events()[2..];
    assert_eq!(
        feed(new),
        vec![
            ev("update", "b", 3, None),
            ev("rekey", "u", 5, Some("a")),
            ev("alias", "u", 5, Some("m")),
            ev("update", "u", 5, None),
            ev("join", "b", 3, Some("c")),
            ev("join", "u", 5, Some("c")),
        ]
    );
    assert!(new.iter().all(|e| e.trigger == Some(trigger.clone())));
    // A replay, an unchanged record and a rejected request append nothing.
    let n = m.events().len();
    json_req(
        &mut m,
        json!({"mode":"update","match_on":["email"],"campaign":"c","trigger":trigger,
            "request_id":"r1","records":[
            {"contact_key":"b","name":"B"},
            {"contact_key":"a","new_contact_key":"t"},
            {"contact_key":"t","new_contact_key":"u","email":"e@x.com"},
            {"contact_key":"m","email":"e@x.com"},
            {"contact_key":"b","name":null},
            {"contact_key":"b"}]}),
    )
    .expect("replays");
    json_req(
        &mut m,
        json!({"mode":"update","records":[{"contact_key":"b"}]}),
    )
    .expect("applies");
    json_req(
        &mut m,
        json!({"mode":"update","records":[{"contact_key":"b","name":"Q"},{"contact_key":"zz"}]}),
    )
    .expect("rejected");
    assert_eq!(m.events().len(), n);
    for (t, code) in [
        (
            json!({"call":{"a":1},"workflow":true}),
            "conflicting_trigger",
        ),
        (json!({}), "invalid_trigger"),
        (json!({"workflow":false}), "invalid_trigger"),
        (json!({"call":"now"}), "invalid_trigger"),
    ] {
        assert_eq!(
            json_req(
                &mut m,
                json!({"mode":"upsert","trigger":t,"records":[{"contact_key":"b"}]})
            )
            .err()
            .as_deref(),
            Some(code)
        );
    }
}

// R17: a job fails with a request-level problem's code; otherwise its report is
// the one request's, and under skip each chunk commits its own events (a contact
// written by two chunks has an event in each, with the key and version after it).
#[test]
fn r17_job_chunks() {
    let mut m = Model::with_records_max(2);
    let body = json!({"mode":"upsert","on_invalid":"skip","records":[
        {"contact_key":"a"},{"contact_key":"b","bogus":1}]});
    assert!(matches!(m.job_json(&body, 2), Ok(ModelJob::Failed(code)) if code == "unknown_column"));
    let body = json!({"mode":"upsert","on_invalid":"skip","records":[
        {"contact_key":"a"},{"contact_key":"b"},{"contact_key":"a","name":"A"}]});
    let mut direct = Model::new();
    let want = json_req(&mut direct, body.clone()).expect("applies");
    let Ok(ModelJob::Succeeded(rep, chunks)) = m.job_json(&body, 2) else {
        panic!("the job runs")
    };
    assert_eq!(*rep, want);
    assert_eq!(
        chunks.iter().map(|c| feed(c)).collect::<Vec<_>>(),
        vec![
            vec![ev("insert", "a", 1, None), ev("insert", "b", 1, None)],
            vec![ev("update", "a", 2, None)],
        ]
    );
    assert_eq!(m.contacts(), direct.contacts());
    assert_eq!(feed(direct.events()).len(), 2);
}

// R18 + R9 + R11: a contact renamed, then given its former key back as an alias by
// a later record (matched by email): both the rekey and the alias are reported.
#[test]
fn r18_former_key_back_as_an_alias() {
    let mut m = seeded(json!([{"contact_key":"a","email":"a@x.com"}]));
    json_req(
        &mut m,
        json!({"mode":"update","match_on":["key","email"],"records":[
            {"contact_key":"a","new_contact_key":"b"},{"contact_key":"a","email":"a@x.com"}]}),
    )
    .expect("applies");
    assert_eq!(get(&m, "b").aliases, vec!["a".to_owned()]);
    assert_eq!(
        feed(&m.events()[1..]),
        vec![
            ev("rekey", "b", 3, Some("a")),
            ev("alias", "b", 3, Some("a"))
        ]
    );
}
