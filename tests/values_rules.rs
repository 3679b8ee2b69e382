//! R2, R5, R7: how values of real-world imports are read, through
//! `Workspace::bulk` — phones (E.164's shape, `(0)`, `tel:`, `default_region`,
//! `phone_check: valid` against libphonenumber), emails (the dot-atom grammar,
//! international domains, compared with a reference parser), control characters
//! in text, and `date_format`. One test per rule, each running a table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use contactdb::{
    BulkRequest, ColumnSpec, ColumnType, Mode, OnInvalid, Outcome, PhoneCheck, Workspace,
};
use serde_json::{Value, json};

/// The value options of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Opts {
    valid: bool,
    region: Option<&'static str>,
    date_format: Option<&'static str>,
}

const FORMAT: Opts = Opts {
    valid: false,
    region: None,
    date_format: None,
};
const VALID: Opts = Opts {
    valid: true,
    ..FORMAT
};

fn region(code: &'static str) -> Opts {
    Opts {
        region: Some(code),
        ..FORMAT
    }
}

fn valid_in(code: &'static str) -> Opts {
    Opts {
        region: Some(code),
        ..VALID
    }
}

fn date_format(f: &'static str) -> Opts {
    Opts {
        date_format: Some(f),
        ..FORMAT
    }
}

/// The stored value, or the error code.
type Want = Result<String, &'static str>;

fn ok(s: &str) -> Want {
    Ok(s.to_owned())
}

/// One row: the column's input, the options, what comes out.
struct Row {
    input: Value,
    opts: Opts,
    want: Want,
}

fn row(input: impl Into<Value>, opts: Opts, want: Want) -> Row {
    Row {
        input: input.into(),
        opts,
        want,
    }
}

/// Runs a table on `column` of `ws`: the rows of each option set go in one
/// `on_invalid=skip` request, one record per row; then each row's stored value
/// (read back by key) or error code is compared. Every mismatch is listed.
fn run(ws: &Workspace, column: &str, rows: &[Row]) {
    let mut sets: Vec<Opts> = Vec::new();
    for r in rows {
        if !sets.contains(&r.opts) {
            sets.push(r.opts);
        }
    }
    let mut wrong = Vec::new();
    for (s, opts) in sets.iter().enumerate() {
        let picked: Vec<(usize, &Row)> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.opts == *opts)
            .collect();
        let records = picked
            .iter()
            .map(|(i, r)| json!({"contact_key": format!("{column}-{s}-{i}"), column: r.input}))
            .collect();
        let mut req = BulkRequest::new(Mode::Upsert, records);
        req.on_invalid = OnInvalid::Skip;
        if opts.valid {
            req.phone_check = PhoneCheck::Valid;
        }
        req.default_region = opts.region.map(str::to_owned);
        req.date_format = opts.date_format.map(str::to_owned);
        let rep = ws.bulk(&req).expect("request accepted");
        for (n, (i, r)) in picked.iter().enumerate() {
            let key = format!("{column}-{s}-{i}");
            let res = &rep.results[n];
            let got: Want = if res.outcome == Outcome::Failed {
                let codes: Vec<&'static str> = rep
                    .errors
                    .iter()
                    .filter(|e| e.index as usize == n)
                    .map(|e| e.code.as_str())
                    .collect();
                match codes.as_slice() {
                    [one] => Err(one),
                    _ => Err("several errors"),
                }
            } else {
                match col(&must_get(ws, &key).unwrap(), column) {
                    Value::String(s) => Ok(s),
                    other => Ok(other.to_string()),
                }
            };
            if got != r.want {
                let message = rep
                    .errors
                    .iter()
                    .find(|e| e.index as usize == n)
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                wrong.push(format!(
                    "{column}={} {:?}: got {got:?} {message}, want {:?}",
                    r.input, r.opts, r.want
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Phones
// ---------------------------------------------------------------------------

/// E.164's shape (R2): `+`, 7..=15 digits, the first not 0.
fn e164_shape(e: &str) -> bool {
    e.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// libphonenumber's own reading of the raw input (its parser, not the engine's
/// preprocessing): the E.164 form when it finds a valid number without an
/// extension.
fn reference(input: &str, region: Option<&str>) -> Option<String> {
    let region = region.map(|r| r.to_ascii_uppercase().parse().expect("a region id"));
    let n = phonenumber::parse(region, input).ok()?;
    if !phonenumber::is_valid(&n) || n.extension().is_some() {
        return None;
    }
    Some(n.format().mode(phonenumber::Mode::E164).to_string())
}

/// Inputs libphonenumber reads as valid numbers that the stored form refuses on
/// purpose, each with the reason.
const PHONE_DISAGREEMENTS: &[(&str, &str)] = &[
    // A number without + under no default region: the contract asks for +.
    // (Only rows with a region or + reach the reference anyway.)
    (
        "+1-800-FLOWERS",
        "letters (vanity numbers) are not digits; the contract's separators are the only non-digits",
    ),
    (
        "+44 20 7946 0958 x12",
        "extensions are not stored; libphonenumber keeps them aside",
    ),
    (
        "+90/532/123/45/67",
        "`/` is not one of the contract's separators",
    ),
    (
        "0090 532 123 45 67",
        "a leading 00 means + by the contract; libphonenumber, given no region, does not \
         know which international prefix is meant",
    ),
];

// R2 and semantics.md "Phones": the table, each `valid` verdict checked
// against libphonenumber.
#[test]
fn phone_table() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let bad = Err("invalid_phone");
    let rows = vec![
        // --- format mode: the contract rule, unchanged -----------------------
        row("+1234567", FORMAT, ok("+1234567")),
        row("+15551234567", FORMAT, ok("+15551234567")),
        row("+90 555 123 45 67", FORMAT, ok("+905551234567")),
        row("0044 (20) 7946-0958", FORMAT, ok("+442079460958")),
        row("+1.415.555.0100", FORMAT, ok("+14155550100")),
        row("00905551234567", FORMAT, ok("+905551234567")),
        row("+00905551234567", FORMAT, bad.clone()),
        row("+123456", FORMAT, bad.clone()),
        row("+1234567890123456", FORMAT, bad.clone()),
        row("+0123456789", FORMAT, bad.clone()),
        row("5551234567", FORMAT, bad.clone()),
        row(5551234567_u64, FORMAT, bad.clone()),
        row("+1 555 CALL NOW", FORMAT, bad.clone()),
        row("+1/555/1234567", FORMAT, bad.clone()),
        row("+1\t5551234567", FORMAT, bad.clone()),
        row("+1\n5551234567", FORMAT, bad.clone()),
        row("+44 20 7946 0958 x12", FORMAT, bad.clone()),
        row("+1-800-FLOWERS", FORMAT, bad.clone()),
        row("+90/532/123/45/67", FORMAT, bad.clone()),
        row("++905321234567", FORMAT, bad.clone()),
        row("+", FORMAT, bad.clone()),
        row("00", FORMAT, bad.clone()),
        // --- (0) after the country code: a dropped trunk prefix, every mode ----
        row("+44 (0)20 7946 0958", FORMAT, ok("+442079460958")),
        row("+44(0)20 7946 0958", FORMAT, ok("+442079460958")),
        row("+44 (0) 20 7946 0958", FORMAT, ok("+442079460958")),
        row("0044 (0)20 7946 0958", FORMAT, ok("+442079460958")),
        row("+49 (0)30 901820", FORMAT, ok("+4930901820")),
        row("+33 (0)1 42 68 53 00", FORMAT, ok("+33142685300")),
        row("+90 (0)532 123 45 67", FORMAT, ok("+905321234567")),
        row("+358 (0)9 1234567", FORMAT, ok("+35891234567")),
        row("+44 (0)20 7946 0958", VALID, ok("+442079460958")),
        row("+49 (0)30 901820", VALID, ok("+4930901820")),
        // elsewhere a (0) is a digit like any other
        row("+44 20 (0)7946 0958", FORMAT, ok("+4420079460958")),
        row("+44 20 (0)7946 0958", VALID, bad.clone()),
        row("(0)20 7946 0958", FORMAT, bad.clone()),
        // --- tel: URIs ------------------------------------------------------
        row("tel:+1-201-555-0123", FORMAT, ok("+12015550123")),
        row("TEL:+1-201-555-0123", FORMAT, ok("+12015550123")),
        row("tel:+44-20-7946-0958", VALID, ok("+442079460958")),
        row("tel:+1-201-555-0123;ext=12", FORMAT, bad.clone()),
        row("tel:+1-201-555-0123;ext=12", VALID, bad.clone()),
        row("tel:+1-201-555-0123;isub=7", FORMAT, bad.clone()),
        row(
            "tel:0532 123 45 67;phone-context=+90",
            region("TR"),
            bad.clone(),
        ),
        row("+1 201 555 0123;ext=1", FORMAT, bad.clone()),
        row("tel:", FORMAT, bad.clone()),
        row("tel:0532 123 45 67", region("TR"), ok("+905321234567")),
        // --- national numbers with a default region ---------------------------
        row("0532 123 45 67", FORMAT, bad.clone()),
        row("0532 123 45 67", region("TR"), ok("+905321234567")),
        row("0532 123 45 67", region("tr"), ok("+905321234567")),
        row("(0532) 123-45-67", region("TR"), ok("+905321234567")),
        row("5321234567", region("TR"), ok("+905321234567")),
        row(5321234567_u64, region("TR"), ok("+905321234567")),
        row("0212 555 12 34", region("TR"), ok("+902125551234")),
        row("020 7946 0958", region("GB"), ok("+442079460958")),
        row("07700 900123", region("GB"), ok("+447700900123")),
        row("(201) 555-0123", region("US"), ok("+12015550123")),
        row("201-555-0123", region("US"), ok("+12015550123")),
        row("030 901820", region("DE"), ok("+4930901820")),
        row("01 42 68 53 00", region("FR"), ok("+33142685300")),
        row("06 12 34 56 78", region("FR"), ok("+33612345678")),
        row("098765 43210", region("IN"), ok("+919876543210")),
        row("(11) 96123-4567", region("BR"), ok("+5511961234567")),
        row("03-1234-5678", region("JP"), ok("+81312345678")),
        row("090-1234-5678", region("JP"), ok("+819012345678")),
        // + and 00 numbers ignore the region
        row("+44 20 7946 0958", region("TR"), ok("+442079460958")),
        row("0044 20 7946 0958", region("TR"), ok("+442079460958")),
        // format mode checks the shape only, national numbers included
        row("0532 12", region("TR"), ok("+9053212")),
        row("0532 12", valid_in("TR"), bad.clone()),
        row("0532 abc 45 67", region("TR"), bad.clone()),
        row("0532 123 45 67", valid_in("TR"), ok("+905321234567")),
        row("020 7946 0958", valid_in("GB"), ok("+442079460958")),
        row("020 7946 095", valid_in("GB"), bad.clone()),
        row("0123 456 78 90", valid_in("TR"), bad.clone()),
        // --- valid mode: libphonenumber's metadata ----------------------------
        row("+1234567", VALID, bad.clone()),
        row("+15551234567", VALID, bad.clone()),
        row("+1 201 555 0123", VALID, ok("+12015550123")),
        row("+1 212 555 0123", VALID, ok("+12125550123")),
        row("+1 201 555 01", VALID, bad.clone()),
        row("+1 201 555 012345", VALID, bad.clone()),
        row("+44 20 7946 0958", VALID, ok("+442079460958")),
        // 07700 900xxx is the UK's range for drama, not in use
        row("+44 7700 900123", VALID, bad.clone()),
        row("+44 7400 123456", VALID, ok("+447400123456")),
        row("+44 20 7946", VALID, bad.clone()),
        row("+44 20 7946 095", VALID, bad.clone()),
        row("+44 20 7946 09581", VALID, bad.clone()),
        row("+90 532 123 45 67", VALID, ok("+905321234567")),
        row("+90 212 555 12 34", VALID, ok("+902125551234")),
        row("+90 123 456 78 90", VALID, bad.clone()),
        row("+90 532 123 45", VALID, bad.clone()),
        row("+49 30 901820", VALID, ok("+4930901820")),
        row("+49 1512 3456789", VALID, ok("+4915123456789")),
        // a national prefix after the country code: libphonenumber drops it, and
        // valid mode stores its E.164 form
        row("+49 0 30 901820", VALID, ok("+4930901820")),
        row("+49 0 30 901820", FORMAT, ok("+49030901820")),
        row("+33 1 42 68 53 00", VALID, ok("+33142685300")),
        row("+33 6 12 34 56 78", VALID, ok("+33612345678")),
        row("+33 1 42 68 53", VALID, bad.clone()),
        row("+33 1 42 68 53 00 1", VALID, bad.clone()),
        row("+91 98765 43210", VALID, ok("+919876543210")),
        row("+91 12345 67890", VALID, ok("+911234567890")),
        row("+91 02345 67890", VALID, bad.clone()),
        row("+55 11 96123 4567", VALID, ok("+5511961234567")),
        row("+55 11 6123 456", VALID, bad.clone()),
        row("+81 3 1234 5678", VALID, ok("+81312345678")),
        row("+81 90 1234 5678", VALID, ok("+819012345678")),
        row("+81 3 1234 567", VALID, bad.clone()),
        row("+999 1234 5678", VALID, bad.clone()),
        row("+999 1234 5678", FORMAT, ok("+99912345678")),
        row("+888 1234 5678", VALID, bad.clone()),
        row("+800 1234 5678", VALID, ok("+80012345678")),
        row("0090 532 123 45 67", VALID, ok("+905321234567")),
        row("+90 532 123 45 67 89 01 23", VALID, bad.clone()),
        row("+1-800-FLOWERS", VALID, bad.clone()),
        row("+44 20 7946 0958 x12", VALID, bad.clone()),
        row("+90/532/123/45/67", VALID, bad.clone()),
        row("   ", VALID, ok("null")),
    ];
    // Every `valid`-mode verdict is libphonenumber's own on the raw input, except
    // for the deliberate disagreements.
    let mut wrong = Vec::new();
    for r in rows.iter().filter(|r| r.opts.valid) {
        let Value::String(input) = &r.input else {
            continue;
        };
        if input.trim().is_empty() || PHONE_DISAGREEMENTS.iter().any(|(d, _)| d == input) {
            continue;
        }
        let want = r.want.as_ref().ok().cloned();
        let by_reference = reference(input, r.opts.region).filter(|e| e164_shape(e));
        if want != by_reference && !input.contains(";ext=") {
            wrong.push(format!(
                "{input}: table {want:?}, libphonenumber {by_reference:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(rows.len() >= 100, "{} rows", rows.len());
    run(&ws, "gsm", &rows);
    Ok(())
}

// R2 and semantics.md "Phones": libphonenumber's example number of every
// region, as given, 3 digits short and 3 digits long, in `valid` mode; and in
// national form under the region as `default_region`. The expected verdicts are
// libphonenumber's (and E.164's shape).
#[test]
fn phone_examples_of_every_region() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let db = &*phonenumber::metadata::DATABASE;
    let mut rows = Vec::new();
    let mut regions: Vec<&phonenumber::Metadata> = db.iter().filter(|m| m.id() != "001").collect();
    regions.sort_by_key(|m| m.id().to_owned());
    let expect = |e164: &str, region: Option<&str>| -> Want {
        match reference(e164, region) {
            Some(e) if e164_shape(&e) => Ok(e),
            _ => Err("invalid_phone"),
        }
    };
    for m in &regions {
        let d = m.descriptors();
        let Some(example) = d.mobile().or(d.fixed_line()).and_then(|x| x.example()) else {
            continue;
        };
        let cc = m.country_code();
        let whole = format!("+{cc}{example}");
        let short = format!("+{cc}{}", &example[..example.len().saturating_sub(3)]);
        let long = format!("+{cc}{example}000");
        for e in [&whole, &short, &long] {
            rows.push(row(e.as_str(), VALID, expect(e, None)));
        }
        // National form: the national prefix, then the example, read under the
        // region; the reference reads the same text.
        let id: &'static str = Box::leak(m.id().to_owned().into_boxed_str());
        let national = format!("{}{example}", m.national_prefix().unwrap_or(""));
        let want = expect(&national, Some(id));
        rows.push(row(national, valid_in(id), want));
    }
    assert!(rows.len() >= 400, "{} rows", rows.len());
    // The generated rows are mostly libphonenumber-valid numbers and their
    // invalid neighbours, so both verdicts are well represented.
    let valid = rows.iter().filter(|r| r.want.is_ok()).count();
    assert!(
        valid >= 150 && rows.len() - valid >= 150,
        "{valid} valid of {}",
        rows.len()
    );
    run(&ws, "gsm", &rows);
    Ok(())
}

// R5: an unknown default_region is a request-level error naming it; phone_check
// takes `format` or `valid` only; null means absent.
#[test]
fn phone_request_options() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let body = |extra: Value| {
        let mut v =
            json!({"mode": "upsert", "records": [{"contact_key": "k", "gsm": "0532 123 45 67"}]});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value::<BulkRequest>(v)
    };
    for (extra, want) in [
        (json!({"default_region": "XX"}), "invalid_default_region"),
        (json!({"default_region": "TUR"}), "invalid_default_region"),
        (json!({"default_region": ""}), "invalid_default_region"),
        (json!({"default_region": " TR"}), "invalid_default_region"),
        (
            json!({"default_region": "tr"}),
            "accepted with status Applied",
        ),
        (
            json!({"default_region": "TR", "phone_check": "valid"}),
            "accepted with status Applied",
        ),
        (
            json!({"default_region": null}),
            "accepted with status Rejected",
        ),
        (
            json!({"default_region": "TR", "phone_check": null}),
            "accepted with status Applied",
        ),
    ] {
        let got = request_code(ws.bulk(&body(extra.clone())?));
        assert_eq!(got, want, "{extra}");
    }
    let err = ws
        .bulk(&body(json!({"default_region": "XX"}))?)
        .unwrap_err();
    assert!(err.to_string().contains("\"XX\""), "{err}");
    for bad in [
        json!({"phone_check": "strict"}),
        json!({"phone_check": 1}),
        json!({"default_region": 90}),
    ] {
        assert!(body(bad.clone()).is_err(), "{bad}");
    }
    // The reason is in the message.
    let mut req = BulkRequest::new(
        Mode::Upsert,
        vec![
            json!({"contact_key": "a", "gsm": "+44 20 7946"}),
            json!({"contact_key": "b", "gsm": "+90 123 456 78 90"}),
            json!({"contact_key": "c", "gsm": "+999 1234 5678"}),
            json!({"contact_key": "d", "gsm": "0532 123 45 67"}),
            json!({"contact_key": "e", "gsm": "tel:+1-201-555-0123;ext=12"}),
        ],
    );
    req.on_invalid = OnInvalid::Skip;
    req.phone_check = PhoneCheck::Valid;
    let rep = ws.bulk(&req)?;
    let messages: Vec<&str> = rep.errors.iter().map(|e| e.message.as_str()).collect();
    for (i, part) in [
        "is too short for GB",
        "is not a valid number for TR",
        "unknown country calling code +999",
        "default_region",
        "extensions are not stored",
    ]
    .iter()
    .enumerate()
    {
        assert!(messages[i].contains(part), "{i}: {:?}", messages[i]);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Emails
// ---------------------------------------------------------------------------

/// Addresses where the reference parser (`email_address`, with a required TLD,
/// no domain literals, no display text) and the stored-form rule disagree on
/// purpose, each with the reason.
const EMAIL_DISAGREEMENTS: &[(&str, &str)] = &[
    (
        "\"john doe\"@example.com",
        "quoted local parts are not supported (the contract forbids spaces anyway)",
    ),
    ("\"ab\"@example.com", "quoted local parts are not supported"),
    (
        "\"a@b\"@example.com",
        "quoted local parts are not supported",
    ),
    (
        "a@example.123",
        "the contract's label rule plus RFC 3696: a top-level domain is never all digits",
    ),
    (
        "a@b_c.com",
        "a domain label is a-z, 0-9 and - (the contract's label rule)",
    ),
    (
        "a@-b.com",
        "a label never starts or ends with - (the contract's label rule)",
    ),
    (
        "a@b-.com",
        "a label never starts or ends with - (the contract's label rule)",
    ),
    ("a@localhost.", "a trailing dot is an empty label"),
    (
        "a@bücher.de",
        "an international domain is accepted and stored in its ASCII form",
    ),
    (
        "üser@bücher.de",
        "an international domain is accepted and stored in its ASCII form",
    ),
    (
        "a@xn--bcher-kva.de",
        "an ASCII (xn--) domain satisfies the label rule",
    ),
    ("a@EXAMPLE.COM", "upper case is lowercased before the check"),
    ("A@B.CO", "upper case is lowercased before the check"),
    (
        "a\u{a0}b@example.com",
        "no whitespace in the local part, non-ASCII (a no-break space) included (R2)",
    ),
    (
        "ä\u{85}b@example.com",
        "no control character in an address, C1 controls included",
    ),
    (
        "a@111.222.333.44444",
        "a top-level domain is never all digits (so no dotted IPv4 as a domain)",
    ),
    (
        "a@192.168.1.1",
        "a top-level domain is never all digits (so no dotted IPv4 as a domain)",
    ),
    ("a@bücher.123", "a top-level domain is never all digits"),
    (
        "a@example.c_m",
        "a domain label is a-z, 0-9 and - (the contract's label rule)",
    ),
    (
        "a@exam!ple.com",
        "a domain label is a-z, 0-9 and - (the contract's label rule)",
    ),
];

// R2 and semantics.md "Emails": the table, each row also compared with the
// reference parser.
#[test]
fn email_table() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    let bad = || Err("invalid_email");
    let long_local = format!("{}@example.com", "a".repeat(65));
    let local_64 = format!("{}@example.com", "a".repeat(64));
    let label_63 = format!("a@{}.com", "b".repeat(63));
    let label_64 = format!("a@{}.com", "b".repeat(64));
    // 3 labels of 63 octets and one of 57, with their dots and `.com`: 253
    // octets, the longest domain (and with `a@`, the longest address).
    let domain_253 = format!(
        "a@{}{}.com",
        format!("{}.", "b".repeat(63)).repeat(3),
        "b".repeat(57)
    );
    let domain_254 = format!(
        "a@{}{}.com",
        format!("{}.", "b".repeat(63)).repeat(3),
        "b".repeat(58)
    );
    let too_long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
    let rows: Vec<(String, Want)> = vec![
        // --- valid -----------------------------------------------------------
        ("a@b.co".into(), ok("a@b.co")),
        ("simple@example.com".into(), ok("simple@example.com")),
        (
            "very.common@example.com".into(),
            ok("very.common@example.com"),
        ),
        ("x@example.com".into(), ok("x@example.com")),
        (
            "long.email-address-with-hyphens@and.subdomains.example.com".into(),
            ok("long.email-address-with-hyphens@and.subdomains.example.com"),
        ),
        (
            "user.name+tag+sorting@example.com".into(),
            ok("user.name+tag+sorting@example.com"),
        ),
        (
            "user+mailbox/department=shipping@example.com".into(),
            ok("user+mailbox/department=shipping@example.com"),
        ),
        ("o'brien@example.ie".into(), ok("o'brien@example.ie")),
        (
            "!#$%&'*+-/=?^_`{|}~@example.org".into(),
            ok("!#$%&'*+-/=?^_`{|}~@example.org"),
        ),
        (
            "a!#$%&'*+/=?^_`{|}~-b@c.com".into(),
            ok("a!#$%&'*+/=?^_`{|}~-b@c.com"),
        ),
        (
            "example-indeed@strange-example.com".into(),
            ok("example-indeed@strange-example.com"),
        ),
        (
            "admin@mailserver1.example".into(),
            ok("admin@mailserver1.example"),
        ),
        ("user-@example.org".into(), ok("user-@example.org")),
        ("-user@example.org".into(), ok("-user@example.org")),
        ("_@example.org".into(), ok("_@example.org")),
        (
            "1234567890@example.com".into(),
            ok("1234567890@example.com"),
        ),
        ("a@1.com".into(), ok("a@1.com")),
        ("a@123.example.com".into(), ok("a@123.example.com")),
        ("a@b-c.d0.io".into(), ok("a@b-c.d0.io")),
        ("a@b.c0m".into(), ok("a@b.c0m")),
        ("a@a--b.com".into(), ok("a@a--b.com")),
        ("Ann.Lee@Example.COM".into(), ok("ann.lee@example.com")),
        ("  ann@example.com  ".into(), ok("ann@example.com")),
        (
            "\u{a0}ann@example.com\u{3000}".into(),
            ok("ann@example.com"),
        ),
        ("A@B.CO".into(), ok("a@b.co")),
        ("a@EXAMPLE.COM".into(), ok("a@example.com")),
        ("a.b.c.d@example.com".into(), ok("a.b.c.d@example.com")),
        (
            "a@sub.sub.sub.example.co.uk".into(),
            ok("a@sub.sub.sub.example.co.uk"),
        ),
        ("{a}@example.com".into(), ok("{a}@example.com")),
        ("a|b@example.com".into(), ok("a|b@example.com")),
        ("~@example.com".into(), ok("~@example.com")),
        (local_64.clone(), ok(&local_64)),
        (label_63.clone(), ok(&label_63)),
        (domain_253.clone(), ok(&domain_253)),
        ("a@xn--bcher-kva.de".into(), ok("a@xn--bcher-kva.de")),
        // international: non-ASCII local parts (RFC 6531), IDN domains stored as
        // punycode
        ("a@bücher.de".into(), ok("a@xn--bcher-kva.de")),
        ("a@Bücher.DE".into(), ok("a@xn--bcher-kva.de")),
        ("üser@bücher.de".into(), ok("üser@xn--bcher-kva.de")),
        ("ÜSER@example.com".into(), ok("üser@example.com")),
        ("åsa.öz@example.com".into(), ok("åsa.öz@example.com")),
        ("用户@例子.测试".into(), ok("用户@xn--fsqu00a.xn--0zwm56d")),
        (
            "δοκιμή@παράδειγμα.δοκιμή".into(),
            ok("δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp"),
        ),
        ("a@münchen.de".into(), ok("a@xn--mnchen-3ya.de")),
        ("a@straße.de".into(), ok("a@xn--strae-oqa.de")),
        ("a@ñandú.com.ar".into(), ok("a@xn--and-6ma2c.com.ar")),
        // --- invalid: structure ------------------------------------------------
        ("plainaddress".into(), bad()),
        ("@example.com".into(), bad()),
        ("a@".into(), bad()),
        ("@".into(), bad()),
        ("a@@example.com".into(), bad()),
        ("a@b@example.com".into(), bad()),
        ("Abc.example.com".into(), bad()),
        ("A@b@c@example.com".into(), bad()),
        ("email.example.com".into(), bad()),
        ("#@%^%#$@#$@#.com".into(), bad()),
        ("Joe Smith <email@example.com>".into(), bad()),
        ("email@example.com (Joe Smith)".into(), bad()),
        // dots in the local part
        (".a@example.com".into(), bad()),
        ("a.@example.com".into(), bad()),
        ("a..b@example.com".into(), bad()),
        ("john..doe@example.com".into(), bad()),
        ("...@example.com".into(), bad()),
        (".@example.com".into(), bad()),
        // quotes (not supported) and comments
        ("\"john doe\"@example.com".into(), bad()),
        ("\"ab\"@example.com".into(), bad()),
        ("\"a@b\"@example.com".into(), bad()),
        ("\"unbalanced@example.com".into(), bad()),
        ("unbalanced\"@example.com".into(), bad()),
        ("just\"not\"right@example.com".into(), bad()),
        ("this is\"not\\allowed@example.com".into(), bad()),
        ("a(comment)@example.com".into(), bad()),
        ("(comment)a@example.com".into(), bad()),
        ("a@example.com(comment)".into(), bad()),
        ("a@(comment)example.com".into(), bad()),
        // whitespace and control characters
        ("a b@example.com".into(), bad()),
        ("a\tb@example.com".into(), bad()),
        ("a@example.com\n".into(), bad()),
        ("a@example.com\r\n".into(), bad()),
        ("\na@example.com".into(), bad()),
        ("a\u{0}@example.com".into(), bad()),
        ("a\u{7}b@example.com".into(), bad()),
        ("a\u{7f}b@example.com".into(), bad()),
        ("a\u{a0}b@example.com".into(), bad()),
        ("ä\u{85}b@example.com".into(), bad()),
        ("a@exa mple.com".into(), bad()),
        ("a@example.com\tx".into(), bad()),
        // other characters outside atext
        ("a,b@example.com".into(), bad()),
        ("a;b@example.com".into(), bad()),
        ("a:b@example.com".into(), bad()),
        ("a<b@example.com".into(), bad()),
        ("a>b@example.com".into(), bad()),
        ("a[b]@example.com".into(), bad()),
        ("a\\b@example.com".into(), bad()),
        // lengths
        (long_local, bad()),
        (label_64, bad()),
        // a 254-octet domain makes a 256-character address: too long as a whole
        (domain_254, Err("too_long")),
        (too_long, Err("too_long")),
        // bad domains
        ("a@localhost".into(), bad()),
        ("a@localhost.".into(), bad()),
        ("a@.example.com".into(), bad()),
        ("a@example..com".into(), bad()),
        ("a@example.com.".into(), bad()),
        ("a@-example.com".into(), bad()),
        ("a@example-.com".into(), bad()),
        ("a@-b.com".into(), bad()),
        ("a@b-.com".into(), bad()),
        ("a@example.-com".into(), bad()),
        ("a@b_c.com".into(), bad()),
        ("a@example.123".into(), bad()),
        ("a@111.222.333.44444".into(), bad()),
        ("a@192.168.1.1".into(), bad()),
        ("a@[192.168.1.1]".into(), bad()),
        ("a@[IPv6:2001:db8::1]".into(), bad()),
        ("a@example.c_m".into(), bad()),
        ("a@exam!ple.com".into(), bad()),
        ("a@example.com:25".into(), bad()),
        ("a@example/com".into(), bad()),
        ("a@xn--.com".into(), bad()),
        ("a@bü-.de".into(), bad()),
        ("a@-bü.de".into(), bad()),
        ("a@bü..de".into(), bad()),
        ("a@bücher.123".into(), bad()),
        ("a@\u{fffd}.de".into(), bad()),
        // --- wrong types ---------------------------------------------------------
    ];
    assert!(rows.len() >= 100, "{} rows", rows.len());
    // Compared with the reference parser: agreement, or a listed disagreement.
    let options = email_address::Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    let mut wrong = Vec::new();
    for (input, want) in &rows {
        let t = input.trim_matches(|c: char| c.is_whitespace() && !c.is_control());
        let reference = email_address::EmailAddress::parse_with_options(t, options).is_ok();
        // Lengths are the contract's (255 characters in all, checked first), not
        // the grammar's.
        if *want == Err("too_long") {
            continue;
        }
        if reference != want.is_ok() && !EMAIL_DISAGREEMENTS.iter().any(|(d, _)| *d == t) {
            wrong.push(format!(
                "{input:?}: table {want:?}, email_address valid={reference}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "unlisted disagreements:\n{}",
        wrong.join("\n")
    );
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(input, want)| row(input, FORMAT, want))
        .chain([
            row(5, FORMAT, Err("invalid_type")),
            row(json!(["a@b.co"]), FORMAT, Err("invalid_type")),
        ])
        .collect();
    run(&ws, "email", &rows);
    Ok(())
}

// R8 with semantics.md "Emails": an address written with an international domain
// matches the contact stored under its ASCII form, both ways.
#[test]
fn idn_email_matches_its_ascii_form() -> TestResult {
    let (_dir, _db, ws) = seeded(json!({"contact_key": "k1", "email": "a@bücher.de"}))?;
    let rep = ws.bulk(&match_all(
        Mode::Update,
        json!({"contact_key": "other", "email": "A@XN--BCHER-KVA.DE", "name": "Ann"}),
    ))?;
    assert_eq!(outcomes(&rep), vec![Outcome::Updated], "{rep:#?}");
    assert_eq!(col(&must_get(&ws, "k1")?, "name"), json!("Ann"));
    assert_eq!(ws.find_by_email("a@BÜCHER.de")?.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

// semantics.md "Text values": text columns keep tabs and line breaks (\n,
// \r\n); every other control character is an error; identity columns (keys,
// email, gsm) refuse every control character.
#[test]
fn control_characters() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    ws.declare_column(
        ColumnSpec::new("note", ColumnType::String { max_len: 50 }).import_enabled(true),
    )?;
    let text = |input: &str, want: Want| row(input, FORMAT, want);
    let bad = || Err("invalid_type");
    let text_rows = vec![
        text("a\tb", ok("a\tb")),
        text("line 1\nline 2", ok("line 1\nline 2")),
        text("line 1\r\nline 2", ok("line 1\r\nline 2")),
        text("a\n\n\tb", ok("a\n\n\tb")),
        text("é\r\nü", ok("é\r\nü")),
        text("  a\nb\n  ", ok("a\nb")),
        text("a\rb", bad()),
        text("a\r\rb", bad()),
        text("a\n\rb", bad()),
        text("a\u{0}b", bad()),
        text("a\u{7}b", bad()),
        text("a\u{b}b", bad()),
        text("a\u{c}b", bad()),
        text("a\u{1b}[31mb", bad()),
        text("a\u{7f}b", bad()),
        text("é\u{85}b", bad()),
        text("é\u{9c}b", bad()),
        text("a\u{2028}b", ok("a\u{2028}b")),
    ];
    run(&ws, "name", &text_rows);
    run(&ws, "note", &text_rows);
    // Identity columns: no control character at all, inside the value.
    run(
        &ws,
        "contact_key",
        &[
            row("k\tx", FORMAT, Err("invalid_key")),
            row("k\nx", FORMAT, Err("invalid_key")),
            row("k\r\nx", FORMAT, Err("invalid_key")),
            row("k\u{7}x", FORMAT, Err("invalid_key")),
        ],
    );
    run(
        &ws,
        "email",
        &[
            row("a\tb@example.com", FORMAT, Err("invalid_email")),
            row("a\nb@example.com", FORMAT, Err("invalid_email")),
            row("a@exam\r\nple.com", FORMAT, Err("invalid_email")),
        ],
    );
    run(
        &ws,
        "gsm",
        &[
            row("+90 532\t123 45 67", FORMAT, Err("invalid_phone")),
            row("+90 532\n123 45 67", FORMAT, Err("invalid_phone")),
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

// semantics.md "Dates": date_format reads every date column (birthday,
// subscription_start, custom date columns); dates are stored as YYYY-MM-DD.
#[test]
fn date_formats() -> TestResult {
    let (_dir, _db, ws) = fresh_ws()?;
    ws.declare_column(ColumnSpec::new("since", ColumnType::Date).import_enabled(true))?;
    let dmy = date_format("%d/%m/%Y");
    let mdy = date_format("%m/%d/%Y");
    let bad = || Err("invalid_date");
    let rows = vec![
        row("31/12/1990", dmy, ok("1990-12-31")),
        row(" 31/12/1990 ", dmy, ok("1990-12-31")),
        row("1/2/1990", dmy, ok("1990-02-01")),
        row("29/02/2024", dmy, ok("2024-02-29")),
        row("31/02/1990", dmy, bad()),
        row("29/02/2023", dmy, bad()),
        row("12/31/1990", dmy, bad()),
        row("1990-12-31", dmy, bad()),
        row("31-12-1990", dmy, bad()),
        // %Y reads the year as written (%y is the two-digit year)
        row("31/12/90", dmy, ok("0090-12-31")),
        row("31/12/1990 extra", dmy, bad()),
        row("12/31/1990", mdy, ok("1990-12-31")),
        row("31/12/1990", mdy, bad()),
        row("02/29/2000", mdy, ok("2000-02-29")),
        row("19901231", date_format("%Y%m%d"), ok("1990-12-31")),
        row("31.12.90", date_format("%d.%m.%y"), ok("1990-12-31")),
        row("31 Dec 1990", date_format("%d %b %Y"), ok("1990-12-31")),
        row("1990-365", date_format("%Y-%j"), ok("1990-12-31")),
        row("31/12/0000", dmy, bad()),
        row(19901231, date_format("%Y%m%d"), Err("invalid_type")),
        // ISO only without a format, as before
        row("1990-12-31", FORMAT, ok("1990-12-31")),
        row("31/12/1990", FORMAT, bad()),
        row("", dmy, ok("null")),
    ];
    for column in ["birthday", "subscription_start", "since"] {
        run(&ws, column, &rows);
    }
    // The message names the format.
    let mut req = req(
        Mode::Upsert,
        json!({"contact_key": "m", "birthday": "31/02/1990"}),
    );
    req.date_format = Some("%d/%m/%Y".into());
    let rep = ws.bulk(&req)?;
    assert!(
        rep.errors[0].message.contains("%d/%m/%Y"),
        "{:?}",
        rep.errors
    );
    // A format that cannot read dates is a request-level error.
    for (format, want) in [
        ("%d/%m/%Y", "accepted with status Applied"),
        ("%Q/%m/%Y", "invalid_date_format"),
        ("%d/%m", "invalid_date_format"),
        ("%H:%M", "invalid_date_format"),
        ("", "invalid_date_format"),
        ("%", "invalid_date_format"),
    ] {
        let mut r = req.clone();
        r.records = vec![json!({"contact_key": "f", "birthday": "31/12/1990"})];
        r.date_format = Some(format.into());
        assert_eq!(request_code(ws.bulk(&r)), want, "{format:?}");
    }
    let mut r = req.clone();
    r.date_format = Some("%d/%m".into());
    let err = ws.bulk(&r).unwrap_err().to_string();
    assert!(err.contains("\"%d/%m\""), "{err}");
    Ok(())
}
