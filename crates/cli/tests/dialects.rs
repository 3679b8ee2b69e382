//! The importer reads the files people have: CSV dialects (delimiters, quoting,
//! line ends, byte-order marks), encodings, header mapping, unknown columns, rows
//! with the wrong number of fields, and dry runs. The fixtures are in
//! tests/fixtures/dialects/, one per kind of export.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use common::{Env, Out, rows, strip};
use serde_json::{Value, json};

/// Every contact of the workspace without its system fields, by key.
fn contacts(env: &Env) -> Vec<Value> {
    let mut v: Vec<Value> = env.contacts().iter().map(strip).collect();
    v.sort_by(|a, b| a["contact_key"].as_str().cmp(&b["contact_key"].as_str()));
    v
}

/// The keys of every contact, in order.
fn keys(env: &Env) -> Vec<String> {
    contacts(env)
        .iter()
        .map(|c| c["contact_key"].as_str().unwrap().to_owned())
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/dialects")
        .join(name)
}

/// A contact as exported: the defaults (`status` A, `priority` 5, the statuses of
/// a set email and phone) and the given fields.
fn contact(fields: Value) -> Value {
    let mut c = json!({"status": "A", "priority": 5});
    let m = c.as_object_mut().unwrap();
    for (k, v) in fields.as_object().unwrap() {
        m.insert(k.clone(), v.clone());
    }
    if m.contains_key("email") {
        m.insert("email_status".to_owned(), json!("A"));
    }
    if m.contains_key("gsm") {
        m.insert("gsm_status".to_owned(), json!("A"));
    }
    c
}

/// One kind of export: how it is imported and what it must give.
struct Case {
    fixture: &'static str,
    /// Commands run before the import (column declarations).
    setup: Vec<Vec<&'static str>>,
    flags: Vec<&'static str>,
    code: i32,
    /// The line of every record, in order, as the report gives it.
    lines: Vec<u64>,
    contacts: Vec<Value>,
    /// The report's errors: (line, code, column).
    errors: Vec<(u64, &'static str, &'static str)>,
}

fn cases() -> Vec<Case> {
    let salesforce = vec![
        contact(
            json!({"contact_key": "003A000001", "name": "Ava", "surname": "Martin",
            "email": "ava.martin@example.com", "gsm": "+33123456789",
            "mailing_street": "12 Rue de Rivoli", "birthday": "1988-05-17"}),
        ),
        contact(
            json!({"contact_key": "003A000003", "name": "Mia", "surname": "Schulz",
            "email": "mia.schulz@example.de", "mailing_street": "Unter den Linden 1",
            "birthday": "1975-01-01"}),
        ),
        contact(
            json!({"contact_key": "003A000005", "name": "Sofia", "surname": "Costa",
            "email": "sofia.costa@example.pt", "gsm": "+351912345678",
            "birthday": "1999-12-31"}),
        ),
        // Quoted multi-line addresses: text columns keep their line breaks.
        contact(json!({"contact_key": "003A000002", "name": "Liam",
            "surname": "Garcia", "email": "liam.garcia@example.com", "gsm": "+34912345678",
            "mailing_street": "Calle Mayor 5\r\nPiso 3\r\nPuerta B", "birthday": "1992-09-09"})),
        contact(json!({"contact_key": "003A000004", "name": "Lucas",
            "surname": "Rossi", "gsm": "+390612345678", "mailing_street": "Via Roma 10\nScala A",
            "birthday": "2000-10-10"})),
    ];
    vec![
        Case {
            fixture: "excel-semicolon-bom-crlf.csv",
            setup: vec![],
            flags: vec![],
            code: 0,
            lines: vec![2, 3, 4, 5],
            contacts: vec![
                contact(
                    json!({"contact_key": "ex-1", "name": "Zoë", "surname": "Ångström",
                    "email": "zoe.angstrom@example.se", "gsm": "+46701234567",
                    "birthday": "1990-12-31", "email_permit": true}),
                ),
                contact(
                    json!({"contact_key": "ex-2", "name": "Jean-Luc", "surname": "Dupont; fils",
                    "email": "jl.dupont@example.fr", "gsm": "+33612345678",
                    "birthday": "1985-07-14", "email_permit": false}),
                ),
                contact(
                    json!({"contact_key": "ex-3", "name": "Øystein", "surname": "Nåvik",
                    "gsm": "+4791234567"}),
                ),
                contact(
                    json!({"contact_key": "ex-4", "name": "Ana \"Anita\"", "surname": "García",
                    "email": "ana.garcia@example.es", "birthday": "2001-02-28",
                    "email_permit": true}),
                ),
            ],
            errors: vec![],
        },
        Case {
            fixture: "google-sheets.csv",
            setup: vec![],
            flags: vec![],
            code: 0,
            lines: vec![2, 3, 4],
            contacts: vec![
                contact(
                    json!({"contact_key": "gs-1", "name": "Maria", "surname": "Rossi",
                    "email": "maria.rossi@example.it", "gsm": "+393331234567",
                    "birthday": "1979-03-01"}),
                ),
                contact(
                    json!({"contact_key": "gs-2", "name": "John", "surname": "Smith, Jr.",
                    "email": "john.smith@example.com", "gsm": "+14155550134", "status": "P"}),
                ),
                contact(
                    json!({"contact_key": "gs-3", "name": "Li", "surname": "Wei",
                    "email": "li.wei@example.cn", "gsm": "+8613812345678",
                    "birthday": "1995-11-30"}),
                ),
            ],
            errors: vec![],
        },
        Case {
            fixture: "hubspot-export.csv",
            setup: vec![],
            flags: vec!["--map", "Record ID=contact_key", "--ignore-unknown"],
            code: 0,
            lines: vec![2, 3, 4],
            contacts: vec![
                contact(
                    json!({"contact_key": "101", "name": "Olivia", "surname": "Brown",
                    "email": "olivia.brown@example.com", "gsm": "+447700900123"}),
                ),
                contact(
                    json!({"contact_key": "102", "name": "Noah", "surname": "Wilson",
                    "email": "noah.wilson@example.com"}),
                ),
                contact(
                    json!({"contact_key": "103", "name": "Emma", "surname": "Taylor",
                    "gsm": "+61412345678"}),
                ),
            ],
            errors: vec![],
        },
        Case {
            fixture: "salesforce-report.csv",
            setup: vec![vec![
                "columns",
                "add",
                "mailing_street",
                "--type",
                "string",
                "--max-len",
                "200",
                "--import-enabled",
            ]],
            // `Mailing Street` names the custom column as it is.
            flags: vec![
                "--map",
                "contact id=contact_key",
                "--map",
                "MOBILE=gsm",
                "--map",
                "Birthdate=birthday",
            ],
            code: 0,
            // Records 2 and 4 span three and two physical lines.
            lines: vec![2, 3, 6, 7, 9],
            contacts: salesforce,
            errors: vec![],
        },
        Case {
            fixture: "excel-national-numbers.csv",
            setup: vec![],
            flags: vec![
                "--default-region",
                "TR",
                "--date-format",
                "%d.%m.%Y",
                "--phone-check",
                "valid",
            ],
            code: 3,
            lines: vec![2, 3, 4, 5, 6],
            contacts: vec![
                contact(
                    json!({"contact_key": "tr-1", "name": "Ayşe", "surname": "Kaya",
                    "gsm": "+905321234567", "birthday": "1990-12-31"}),
                ),
                contact(
                    json!({"contact_key": "tr-2", "name": "Mehmet", "surname": "Öz",
                    "gsm": "+902121234567", "birthday": "1985-02-01"}),
                ),
                // An international number keeps its own country.
                contact(
                    json!({"contact_key": "tr-3", "name": "Hans", "surname": "Müller",
                    "gsm": "+4930901820"}),
                ),
            ],
            // A mobile number 3 digits short, and a 31st of February.
            errors: vec![(5, "invalid_phone", "gsm"), (6, "invalid_date", "birthday")],
        },
        Case {
            fixture: "contacts.tsv",
            setup: vec![],
            flags: vec![],
            code: 0,
            lines: vec![2, 3, 4],
            contacts: vec![
                contact(
                    json!({"contact_key": "tsv-1", "name": "Aiko", "surname": "Tanaka",
                    "email": "aiko.tanaka@example.jp", "gsm": "+819012345678",
                    "birthday": "1993-04-01"}),
                ),
                contact(
                    json!({"contact_key": "tsv-2", "name": "Omar", "surname": "Hassan, MD",
                    "email": "omar.hassan@example.eg", "birthday": "1980-08-08"}),
                ),
                contact(
                    json!({"contact_key": "tsv-3", "name": "Ela", "surname": "Yılmaz",
                    "gsm": "+905551234567"}),
                ),
            ],
            errors: vec![],
        },
        Case {
            fixture: "windows-1252.csv",
            setup: vec![],
            flags: vec!["--encoding", "windows-1252"],
            code: 0,
            lines: vec![2, 3, 4, 5],
            contacts: vec![
                contact(
                    json!({"contact_key": "w-1", "name": "Jürgen", "surname": "Müller",
                    "email": "juergen.mueller@example.de", "gsm": "+4915112345678",
                    "birthday": "1970-06-15"}),
                ),
                contact(
                    json!({"contact_key": "w-2", "name": "José", "surname": "Núñez",
                    "email": "jose.nunez@example.es", "birthday": "1982-10-12"}),
                ),
                contact(
                    json!({"contact_key": "w-3", "name": "Anna", "surname": "Straße",
                    "email": "anna.strasse@example.at", "gsm": "+436641234567"}),
                ),
                contact(
                    json!({"contact_key": "w-4", "name": "François", "surname": "Lefèvre",
                    "gsm": "+33612345679", "birthday": "1965-02-28"}),
                ),
            ],
            errors: vec![],
        },
    ]
}

#[test]
fn every_fixture_imports_field_by_field() {
    for case in cases() {
        let env = Env::new();
        for cmd in &case.setup {
            env.ok(cmd);
        }
        let path = fixture(case.fixture);
        let mut args = vec!["import", path.to_str().unwrap(), "--report", "report.json"];
        args.extend(&case.flags);
        let o = env.run(&args);
        assert_eq!(o.code, case.code, "{}: {o:?}", case.fixture);
        let report: Value = serde_json::from_str(&env.read("report.json")).unwrap();
        let lines: Vec<u64> = rows(&report, "results", |r| r["line"].as_u64().unwrap());
        assert_eq!(lines, case.lines, "{}: record lines", case.fixture);
        let mut want = case.contacts.clone();
        want.sort_by(|a, b| a["contact_key"].as_str().cmp(&b["contact_key"].as_str()));
        assert_eq!(contacts(&env), want, "{}", case.fixture);
        let errors: Vec<(u64, String, String)> = rows(&report, "errors", |e| {
            (
                e["line"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_owned(),
                e["column"].as_str().unwrap_or_default().to_owned(),
            )
        });
        let want: Vec<(u64, String, String)> = case
            .errors
            .iter()
            .map(|(l, c, col)| (*l, (*c).to_owned(), (*col).to_owned()))
            .collect();
        assert_eq!(errors, want, "{}: errors", case.fixture);
    }
}

#[test]
fn exports_need_their_flags() {
    // HubSpot without --map: the unknown header names the column and both flags.
    let env = Env::new();
    let hubspot = fixture("hubspot-export.csv");
    let o = env.expect(&["import", hubspot.to_str().unwrap()], 1);
    let last = o.stderr.lines().last().unwrap();
    assert!(
        last.contains(":1: unknown column \"Record ID\"")
            && last.contains("--map \"Record ID=COLUMN\"")
            && last.contains("--ignore-unknown"),
        "{last}"
    );
    // With --map only, the next unknown column stops it.
    let o = env.expect(
        &[
            "import",
            hubspot.to_str().unwrap(),
            "--map",
            "record id=contact_key",
        ],
        1,
    );
    assert!(
        o.stderr.contains("unknown column \"Lifecycle Stage\""),
        "{}",
        o.stderr
    );
    assert!(keys(&env).is_empty());

    // Windows-1252 without --encoding: the line and the flag to use.
    let cp = fixture("windows-1252.csv");
    let o = env.expect(&["import", cp.to_str().unwrap()], 1);
    let last = o.stderr.lines().last().unwrap();
    assert!(
        last.contains("windows-1252.csv:2: invalid UTF-8 in column \"name\"")
            && last.contains("--encoding windows-1252"),
        "{last}"
    );
    // latin1 is windows-1252 (WHATWG labels).
    env.expect(&["import", cp.to_str().unwrap(), "--encoding", "latin1"], 0);
    assert_eq!(
        env.ok(&["get", "w-1"]).json()["surname"],
        "Müller",
        "latin1 decodes as windows-1252"
    );
    let o = env.expect(
        &["import", cp.to_str().unwrap(), "--encoding", "klingon"],
        2,
    );
    assert!(o.stderr.contains("unknown encoding"), "{}", o.stderr);
}

/// The physical line of every record in the report, and the stderr line of the
/// first failure.
fn report_lines(env: &Env, name: &str, bytes: &[u8]) -> (Vec<u64>, Out) {
    env.write(name, bytes);
    let o = env.run(&["import", name, "--report", "r.json"]);
    let report: Value = serde_json::from_str(&env.read("r.json")).unwrap();
    let lines = rows(&report, "results", |r| r["line"].as_u64().unwrap());
    (lines, o)
}

#[test]
fn line_numbers_are_physical_lines_for_lf_crlf_and_mixed_files() {
    // Line 4 is blank; k3's metadata cell spans lines 5 and 6.
    let body = |nl: &str, nl2: &str| -> Vec<u8> {
        format!(
            "contact_key,email,metadata{nl}k1,a@x.com,{nl}k2,bad,{nl2}{nl}k3,c@x.com,\"{{\"\"a\"\":{nl}1}}\"{nl2}k4,worse,{nl}"
        )
        .into_bytes()
    };
    for (name, nl, nl2) in [
        ("lf.csv", "\n", "\n"),
        ("crlf.csv", "\r\n", "\r\n"),
        ("mixed.csv", "\r\n", "\n"),
    ] {
        let env = Env::new();
        let (lines, o) = report_lines(&env, name, &body(nl, nl2));
        assert_eq!(lines, [2, 3, 5, 7], "{name}: {o:?}");
        assert_eq!(o.code, 3, "{name}: {o:?}");
        assert_eq!(
            env.ok(&["get", "k3"]).json()["metadata"],
            json!({"a": 1}),
            "{name}"
        );
        // Without --report, the failures on stderr name the same lines.
        let o = env.run(&["import", name]);
        assert_eq!(o.code, 3, "{name}: {o:?}");
        for line in [3, 7] {
            assert!(
                o.stderr
                    .contains(&format!("failed: {name}:{line}: invalid_email")),
                "{name}: {}",
                o.stderr
            );
        }
    }
    // An input error names the physical line too: invalid UTF-8 after a CRLF
    // file's multi-line field, on the line of the bad byte.
    let env = Env::new();
    env.write(
        "bad.csv",
        b"contact_key,name\r\nk1,\"two\r\nlines\"\r\nk2,B\xffb\r\n",
    );
    env.says(
        &["import", "bad.csv"],
        1,
        "bad.csv:4: invalid UTF-8 in column \"name\"",
    );
}

#[test]
fn a_quoted_multiline_field_in_the_last_row_reaches_the_end_of_the_file() {
    // metadata is a JSON column: its line breaks are JSON whitespace, valid today.
    for (name, tail) in [
        ("final-lf.csv", "\n"),
        ("no-final-lf.csv", ""),
        ("final-crlf.csv", "\r\n"),
    ] {
        let env = Env::new();
        let text = format!(
            "contact_key,metadata\nk1,\"{{\"\"a\"\": 1}}\"\nk2,\"{{\"\"note\"\": \"\"x\"\",\n\"\"n\"\": 2}}\"{tail}"
        );
        let (lines, o) = report_lines(&env, name, text.as_bytes());
        assert_eq!(o.code, 0, "{name}: {o:?}");
        assert_eq!(lines, [2, 3], "{name}");
        assert_eq!(
            env.ok(&["get", "k2"]).json()["metadata"],
            json!({"note": "x", "n": 2}),
            "{name}"
        );
    }
    // An unclosed quote still runs to the end of the file: an input error, on the
    // line where the field starts.
    let env = Env::new();
    env.write(
        "open.csv",
        "contact_key,name\r\nk1,Ann\r\nk2,\"Bob\r\nk3,Cem\r\n",
    );
    env.says(&["import", "open.csv"], 1, "open.csv:3: malformed CSV: a quoted field that starts on this line runs to the end of the file");
    assert!(keys(&env).is_empty());
}

const RAGGED: &str =
    "contact_key,name,email\nk1,Ann,a@x.com\nk2,Bob,b@x.com,extra\nk3,Cem\nk4,Dan,d@x.com\n";

#[test]
fn rows_with_the_wrong_field_count_fail_on_their_own_under_skip() {
    let env = Env::new();
    env.write("in.csv", RAGGED);
    let o = env.expect(
        &[
            "import",
            "in.csv",
            "--rejects",
            "rejects.csv",
            "--report",
            "report.json",
        ],
        3,
    );
    assert!(
        o.stderr
            .contains("2 inserted, 0 updated, 0 unchanged, 2 failed (2 wrong_field_count)"),
        "{}",
        o.stderr
    );
    assert_eq!(keys(&env), ["k1", "k4"]);
    let report: Value = serde_json::from_str(&env.read("report.json")).unwrap();
    assert_eq!(report["status"], "partial");
    assert_eq!(report["summary"]["total"], 4);
    assert_eq!(report["summary"]["invalid"], 2);
    assert_eq!(report["summary"]["failed"], 2);
    let outcomes: Vec<(u64, u64, &str)> = rows(&report, "results", |r| {
        (
            r["index"].as_u64().unwrap(),
            r["line"].as_u64().unwrap(),
            r["outcome"].as_str().unwrap(),
        )
    });
    assert_eq!(
        outcomes,
        [
            (0, 2, "inserted"),
            (1, 3, "failed"),
            (2, 4, "failed"),
            (3, 5, "inserted")
        ]
    );
    let errors: Vec<(u64, &str, &str)> = rows(&report, "errors", |e| {
        (
            e["line"].as_u64().unwrap(),
            e["code"].as_str().unwrap(),
            e["message"].as_str().unwrap(),
        )
    });
    assert_eq!(
        errors,
        [
            (3, "wrong_field_count", "expected 3 fields, found 4"),
            (4, "wrong_field_count", "expected 3 fields, found 2")
        ]
    );
    assert_eq!(
        env.read("rejects.csv"),
        "_line,_code,_column,_message,contact_key,name,email\n\
         3,wrong_field_count,-,\"expected 3 fields, found 4\",k2,Bob,b@x.com,extra\n\
         4,wrong_field_count,-,\"expected 3 fields, found 2\",k3,Cem\n"
    );
    // Batches of one: a batch holding only a refused row is reported too.
    let env = Env::new();
    env.write("in.csv", RAGGED);
    let o = env.says(
        &["import", "in.csv", "--batch-size", "1"],
        3,
        "failed: in.csv:3: wrong_field_count: expected 3 fields, found 4",
    );
    assert!(
        o.stderr
            .contains("failed: in.csv:4: wrong_field_count: expected 3 fields, found 2"),
        "{}",
        o.stderr
    );
    assert_eq!(keys(&env), ["k1", "k4"]);
}

#[test]
fn rows_with_the_wrong_field_count_reject_an_abort_import() {
    for batch in ["1", "10000"] {
        for dup in ["merge", "first"] {
            let env = Env::new();
            env.write("in.csv", RAGGED);
            let o = env.run(&[
                "import",
                "in.csv",
                "--on-invalid",
                "abort",
                "--batch-size",
                batch,
                "--on-duplicate",
                dup,
                "--report",
                "report.json",
            ]);
            assert_eq!(o.code, 1, "{batch} {dup}: {o:?}");
            assert!(
                o.stderr.contains("nothing was written: 2 of 4 records failed (2 wrong_field_count) with --on-invalid abort"),
                "{batch} {dup}: {}",
                o.stderr
            );
            assert!(!env.exists() || keys(&env).is_empty(), "{batch} {dup}");
            let report: Value = serde_json::from_str(&env.read("report.json")).unwrap();
            assert_eq!(report["status"], "rejected");
            let outcomes: Vec<&str> = rows(&report, "results", |r| r["outcome"].as_str().unwrap());
            assert_eq!(outcomes, ["not_applied", "failed", "failed", "not_applied"]);
        }
    }
}

#[test]
fn the_delimiter_is_detected_from_the_header_or_given() {
    let env = Env::new();
    // `;` outnumbers the comma inside a name.
    env.write("semi.csv", "contact_key;name\ns1;\"Lee, Ann\"\n");
    env.ok(&["import", "semi.csv"]);
    assert_eq!(env.ok(&["get", "s1"]).json()["name"], "Lee, Ann");
    // Tab, in a file without the .tsv extension.
    env.write("tabs.txt", "contact_key\tname\nt1\tTab, Tom\n");
    env.ok(&["import", "tabs.txt", "--format", "csv"]);
    assert_eq!(env.ok(&["get", "t1"]).json()["name"], "Tab, Tom");
    // Pipes.
    env.write("pipes.csv", "contact_key|name\np1|Pia\n");
    env.ok(&["import", "pipes.csv"]);
    assert_eq!(env.ok(&["get", "p1"]).json()["name"], "Pia");
    // Delimiters inside quotes do not count: the comma wins.
    env.write("quoted.csv", "\"contact_key;x;y\",name\n\"q1\",Quinn\n");
    let o = env.run(&["import", "quoted.csv"]);
    assert!(
        o.stderr.contains("unknown column \"contact_key;x;y\""),
        "{}",
        o.stderr
    );
    // A tie goes to the comma.
    env.write("tie.csv", "contact_key,name;nick\nk,x\n");
    let o = env.run(&["import", "tie.csv"]);
    assert!(
        o.stderr.contains("unknown column \"name;nick\""),
        "{}",
        o.stderr
    );
    // Given: it wins over detection, and `tab` / `\t` name the tab.
    env.write("given.csv", "contact_key;name,x\ng1;Gil,y\n");
    let o = env.run(&[
        "import",
        "given.csv",
        "--delimiter",
        ";",
        "--map",
        "name,x=name",
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(env.ok(&["get", "g1"]).json()["name"], "Gil,y");
    for tab in ["tab", "\\t"] {
        env.write("t.dat", "contact_key\tname\nd1\tDee\n");
        env.ok(&["import", "t.dat", "--format", "csv", "--delimiter", tab]);
    }
    // .tsv means tab even when the header has commas.
    env.write("commas.tsv", "contact_key\tname,nick\nc1\tCy\n");
    let o = env.run(&["import", "commas.tsv"]);
    assert!(
        o.stderr.contains("unknown column \"name,nick\""),
        "{}",
        o.stderr
    );
    // --quote.
    env.write("single.csv", "contact_key,name\n'q2','Lee, Ann'\n");
    env.ok(&["import", "single.csv", "--quote", "'"]);
    assert_eq!(env.ok(&["get", "q2"]).json()["name"], "Lee, Ann");
    env.expect(&["import", "semi.csv", "--delimiter", "ab"], 2);
}

#[test]
fn byte_order_marks_pick_the_encoding() {
    let env = Env::new();
    let text = "contact_key,name\r\nu1,Zoë\r\nu2,Øle\r\n";
    // UTF-16 LE and BE with their marks, without --encoding.
    let mut le = vec![0xFF, 0xFE];
    le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    env.write("le.csv", &le);
    env.expect(&["import", "le.csv", "--report", "r.json"], 0);
    let mut be = vec![0xFE, 0xFF];
    be.extend(
        "contact_key,name\nu3,Ünal\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes),
    );
    env.write("be.csv", &be);
    env.ok(&["import", "be.csv"]);
    // UTF-8 mark with a JSON Lines file, and --encoding utf-16le without a mark.
    env.write(
        "bom.jsonl",
        "\u{feff}{\"contact_key\":\"u4\",\"name\":\"Ïda\"}\n",
    );
    env.ok(&["import", "bom.jsonl"]);
    let no_bom: Vec<u8> = "contact_key,name\nu5,Åse\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    env.write("nobom.csv", &no_bom);
    env.ok(&["import", "nobom.csv", "--encoding", "utf-16le"]);
    let names: Vec<(String, String)> = env
        .contacts()
        .iter()
        .map(|c| {
            (
                c["contact_key"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("u1", "Zoë"),
            ("u2", "Øle"),
            ("u3", "Ünal"),
            ("u4", "Ïda"),
            ("u5", "Åse")
        ]
        .map(|(k, n)| (k.to_owned(), n.to_owned()))
    );
    // Line numbers count the decoded lines.
    let report: Value = serde_json::from_str(&env.read("r.json")).unwrap();
    assert_eq!(report["results"][1]["line"], 3);
}

#[test]
fn map_renames_csv_headers_and_json_fields() {
    let env = Env::new();
    env.write("in.csv", "ID,Given,E-Mail Address\nm1,Mo,MO@X.COM\n");
    env.expect(
        &[
            "import",
            "in.csv",
            "--map",
            "id=contact_key",
            "--map",
            "GIVEN=first_name",
            "--map",
            "e-mail address=email",
        ],
        0,
    );
    let c = strip(&env.ok(&["get", "m1"]).json());
    assert_eq!(
        c,
        contact(json!({"contact_key": "m1", "name": "Mo", "email": "mo@x.com"}))
    );
    env.write(
        "in.jsonl",
        "{\"Record ID\":\"m2\",\"Mobile\":\"+4915112345678\"}\n",
    );
    env.expect(
        &[
            "import",
            "in.jsonl",
            "--map",
            "record id=contact_key",
            "--map",
            "mobile=gsm",
        ],
        0,
    );
    let c = strip(&env.ok(&["get", "m2"]).json());
    assert_eq!(
        c,
        contact(json!({"contact_key": "m2", "gsm": "+4915112345678"}))
    );
    // A mapping onto a column given as well names the column twice.
    env.write("twice.csv", "contact_key,ID\nk,k\n");
    env.says(
        &["import", "twice.csv", "--map", "ID=contact_key"],
        1,
        "names column \"contact_key\" twice",
    );
    // DEST must be a column of the workspace: a usage error.
    for bad in ["ID=shoe_size", "ID=version", "nonsense"] {
        let o = env.run(&["import", "in.csv", "--map", bad]);
        assert_eq!(o.code, 2, "{bad}: {o:?}");
    }
}

#[test]
fn ignore_unknown_drops_and_lists_unknown_columns_once() {
    let env = Env::new();
    env.write(
        "in.csv",
        "contact_key,Favourite Colour,name,Shoe Size\ni1,red,Ida,38\ni2,blue,Ian,44\n",
    );
    let o = env.expect(&["import", "in.csv"], 1);
    assert!(
        o.stderr.contains("unknown column \"Favourite Colour\"")
            && o.stderr.contains("--map")
            && o.stderr.contains("--ignore-unknown"),
        "{}",
        o.stderr
    );
    let o = env.expect(&["import", "in.csv", "--ignore-unknown"], 0);
    assert_eq!(
        o.stderr
            .matches("ignored columns: Favourite Colour, Shoe Size")
            .count(),
        1,
        "{}",
        o.stderr
    );
    assert_eq!(
        contacts(&env),
        [
            contact(json!({"contact_key": "i1", "name": "Ida"})),
            contact(json!({"contact_key": "i2", "name": "Ian"}))
        ]
    );
    // JSON Lines: every unknown field seen, listed once at the end.
    env.write(
        "in.jsonl",
        "{\"contact_key\":\"j1\",\"colour\":\"red\"}\n{\"contact_key\":\"j2\",\"colour\":\"blue\",\"size\":4}\n",
    );
    let o = env.expect(&["import", "in.jsonl"], 1);
    assert!(
        o.stderr.contains("unknown column \"colour\"") && o.stderr.contains("--ignore-unknown"),
        "{}",
        o.stderr
    );
    let o = env.expect(&["import", "in.jsonl", "--ignore-unknown"], 0);
    assert_eq!(
        o.stderr.matches("ignored columns: colour, size").count(),
        1,
        "{}",
        o.stderr
    );
    assert_eq!(
        o.stderr.matches("ignored columns").count(),
        1,
        "{}",
        o.stderr
    );
    // --quiet leaves the note out.
    let o = env.expect(&["import", "in.jsonl", "--ignore-unknown", "--quiet"], 0);
    assert!(!o.stderr.contains("ignored columns"), "{}", o.stderr);
}

#[test]
fn a_dry_run_reports_as_a_real_run_and_leaves_the_file_unchanged() {
    let input = "contact_key,email,name\nd1,d1@x.com,Dee\nd2,not-an-email,Dan\nd3,d3@x.com\nd0,new@x.com,Zed\n";
    for mode in [
        &["--on-invalid", "skip"][..],
        &["--on-invalid", "abort"][..],
    ] {
        // The file's bytes are compared: a database file.
        let env = Env::with_file();
        env.write("seed.csv", "contact_key,email,name\nd0,d0@x.com,Zero\n");
        env.ok(&["import", "seed.csv"]);
        env.write("in.csv", input);
        let before = file_hash(&env.db());
        let mut args = vec![
            "import",
            "in.csv",
            "--batch-size",
            "2",
            "--match",
            "key,email",
            "--report",
            "dry.json",
            "--rejects",
            "dry-rejects.csv",
            "--dry-run",
        ];
        args.extend(mode);
        let dry = env.run(&args);
        assert_eq!(file_hash(&env.db()), before, "{mode:?}: the file changed");
        let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("dry-run"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert!(
            dry.stderr.contains("nothing was written"),
            "{mode:?}: {}",
            dry.stderr
        );
        args.retain(|a| *a != "--dry-run");
        for a in &mut args {
            *a = match *a {
                "dry.json" => "real.json",
                "dry-rejects.csv" => "real-rejects.csv",
                other => other,
            };
        }
        let real = env.run(&args);
        assert_eq!(dry.code, real.code, "{mode:?}: {dry:?} {real:?}");
        assert_eq!(
            env.read("dry.json"),
            env.read("real.json"),
            "{mode:?}: reports differ"
        );
        assert_eq!(
            env.read("dry-rejects.csv"),
            env.read("real-rejects.csv"),
            "{mode:?}"
        );
        let report: Value = serde_json::from_str(&env.read("real.json")).unwrap();
        assert!(
            report["summary"]["failed"].as_u64().unwrap() >= 1,
            "{mode:?}"
        );
    }
    // Matched against the database: the seeded contact is updated, not inserted.
    let env = Env::new();
    env.write("seed.csv", "contact_key,name\nd0,Zero\n");
    env.ok(&["import", "seed.csv"]);
    env.write("in.csv", "contact_key,name\nd0,Zed\nd9,Nine\n");
    env.says(
        &["import", "in.csv", "--dry-run"],
        0,
        "dry run: checked 2 records from in.csv: 1 inserted, 1 updated",
    );
    assert_eq!(keys(&env), ["d0"]);
    // Without a database file: none is created.
    let env = Env::with_file();
    env.write("in.csv", "contact_key,name\nn1,New\n");
    env.expect(&["import", "in.csv", "--dry-run"], 0);
    assert!(!env.db().exists());
}

/// The file's size and a hash of its bytes.
fn file_hash(path: &Path) -> (usize, u64) {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    (bytes.len(), h.finish())
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let env = Env::new();
    let mut s = String::from("contact_key\n");
    for i in 0..20_000 {
        s.push_str(&format!("k{i}\n"));
    }
    env.write("in.csv", &s);
    let o = env.expect(&["import", "in.csv", "--batch-size", "100"], 0);
    assert!(
        !o.stderr.contains('\r') && !o.stderr.contains("ETA"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
}

#[test]
fn standard_input_is_read_with_the_same_dialects() {
    let env = Env::new();
    let inputs: [(&[&str], &[u8]); 2] = [
        (
            &["import", "-", "--delimiter", ";"],
            b"\xef\xbb\xbfcontact_key;name\r\ns1;Sam\r\n",
        ),
        (
            &["import", "-", "--encoding", "windows-1252"],
            b"contact_key,name\ns2,Ren\xe9\n",
        ),
    ];
    for (args, input) in inputs {
        env.ok_in(args, Some(input));
    }
    assert_eq!(env.ok(&["get", "s2"]).json()["name"], "René");
    assert_eq!(env.ok(&["get", "s1"]).json()["name"], "Sam");
}
