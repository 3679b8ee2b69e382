//! Integration tests of the `contactdb` binary: every command, exit codes, stdout
//! JSON, rejects re-import, export→import round trips, stdin, malformed input.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod common;

use common::{BIN, Env, strip};

const MESSY_CSV: &str = "\
Identifier,First Name,Last Name,EMAIL,Phone Number,Birthday,Status,Email Permit
c-1,Ann,Lee,  Ann.Lee@Example.COM ,0090 555 123 45 67,1990-04-01,a,yes
c-2,Bob,Stone,bob@example,+44 20 7946 0958,1985-02-30,A,no
c-3,Cem,Kaya,cem@example.com,555-CALL-NOW,,P,1
c-4,Dana,Ray,dana@example.com,+1 (415) 555-0134,2001-12-31,,
,No,Key,nokey@example.com,,,,
c-1,Ann,Lee-Smith,ann.lee@example.com,,,,
";

#[test]
fn import_messy_csv_partial_with_reasons() {
    let env = Env::new();
    env.write("in.csv", MESSY_CSV);
    let o = env.expect(&["import", "in.csv"], 3);
    assert!(o.stdout.is_empty());
    // The one-line summary names counts and reasons.
    let summary = o.stderr.lines().last().unwrap();
    assert!(summary.contains("6 records"), "{summary}");
    assert!(summary.contains("2 inserted"), "{summary}");
    assert!(summary.contains("1 updated"), "{summary}");
    assert!(summary.contains("3 failed"), "{summary}");
    for code in [
        "invalid_email",
        "invalid_date",
        "invalid_phone",
        "missing_key",
    ] {
        assert!(summary.contains(code), "{summary}");
    }
    assert!(summary.contains("records/s"), "{summary}");
    // Examples of failures name file and line.
    assert!(o.stderr.contains("in.csv:3: "), "{}", o.stderr);
    assert!(o.stderr.contains("in.csv:6: missing_key"), "{}", o.stderr);

    let c1 = env.ok(&["get", "c-1"]).json();
    assert_eq!(c1["email"], "ann.lee@example.com");
    assert_eq!(c1["surname"], "Lee-Smith");
    // Blank cells of the second c-1 row cleared the values of the first (R7); a
    // cleared status falls back to its default.
    assert!(c1.get("gsm").is_none(), "{c1}");
    assert!(c1.get("email_permit").is_none(), "{c1}");
    assert_eq!(c1["status"], "A");
    assert_eq!(c1["version"], 2);
    let c4 = env.ok(&["get", "c-4"]).json();
    assert_eq!(c4["gsm"], "+14155550134");
    assert_eq!(c4["gsm_status"], "A");
    assert_eq!(env.count(), 2);
}

#[test]
fn import_clean_file_exit_0_then_unchanged() {
    let env = Env::new();
    env.write(
        "in.csv",
        "contact_key,email,gsm\nk1,a@x.com,+905551112233\nk2,b@x.com,\n",
    );
    env.says(&["import", "in.csv"], 0, "2 inserted");
    env.says(&["import", "in.csv"], 0, "2 unchanged");
    assert!(env.exists());
}

#[test]
fn import_cache_size_is_an_option_with_a_range() {
    let env = Env::new();
    env.write("in.csv", "contact_key,email\nk1,a@x.com\nk2,b@x.com\n");
    env.says(&["import", "in.csv", "--cache-mib", "1"], 0, "2 inserted");
    env.says(&["import", "in.csv", "--cache-mib", "0"], 2, "cache-mib");
}

#[test]
fn import_where_every_record_fails_exits_1_and_writes_nothing() {
    let env = Env::new();
    env.write(
        "in.jsonl",
        "{\"contact_key\":\"k1\",\"email\":\"nope\"}\n{\"contact_key\":\"k2\",\"priority\":\"high\"}\n",
    );
    let o = env.says(&["import", "in.jsonl"], 1, "2 failed");
    assert!(
        o.stderr.contains("in.jsonl:2: invalid_priority"),
        "{}",
        o.stderr
    );
    assert_eq!(env.count(), 0);
}

#[test]
fn rejects_csv_can_be_fixed_and_imported_again() {
    let env = Env::new();
    env.write("in.csv", MESSY_CSV);
    env.expect(&["import", "in.csv", "--rejects", "rejects.csv"], 3);
    let rejects = env.read("rejects.csv");
    let mut rdr = csv::Reader::from_reader(rejects.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(
        &header[..5],
        &["_line", "_code", "_column", "_message", "Identifier"]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][0], "3");
    assert_eq!(&rows[0][1], "invalid_email; invalid_date");
    assert_eq!(&rows[0][2], "email; birthday");
    assert!(rows[0][3].contains("bob@example"), "{:?}", &rows[0]);
    assert_eq!(&rows[1][0], "4");
    assert_eq!(&rows[1][1], "invalid_phone");
    assert_eq!(&rows[2][0], "6");
    assert_eq!(&rows[2][1], "missing_key");
    // The rejected rows keep their cells as written.
    assert_eq!(&rows[0][4], "c-2");
    assert_eq!(&rows[0][9], "1985-02-30");

    // Fix them and import the rejects file itself.
    let fixed = rejects
        .replace("bob@example,", "bob@example.com,")
        .replace("1985-02-30", "1985-02-28")
        .replace("555-CALL-NOW", "+90 555 000 11 22")
        .replace(",No,Key,", "c-5,No,Key,");
    env.write("fixed.csv", fixed);
    let o = env.says(
        &["import", "fixed.csv", "--rejects", "rejects2.csv"],
        0,
        "ignoring the rejects-file column(s)",
    );
    assert!(o.stderr.contains("3 inserted"), "{}", o.stderr);
    assert_eq!(env.count(), 5);
    assert_eq!(env.ok(&["get", "c-2"]).json()["birthday"], "1985-02-28");
    // An import without failures writes a rejects file with only the header.
    assert_eq!(env.read("rejects2.csv").lines().count(), 1);
}

#[test]
fn rejects_jsonl_from_json_input_reimports() {
    let env = Env::new();
    env.write(
        "in.json",
        r#"[{"contact_key":"k1","email":"A@B.COM","metadata":{"tags":["x"]}},
            {"contact_key":"k2","email":"broken@","metadata":{"n":1}},
            {"contact_key":"k3","gsm":"12"}]"#,
    );
    env.expect(&["import", "in.json", "--rejects", "rej.jsonl"], 3);
    let rej: Vec<Value> = env
        .read("rej.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rej.len(), 2);
    // JSON arrays: the record's position in the array, from 1.
    assert_eq!(rej[0]["_line"], 2);
    assert_eq!(rej[0]["_code"], "invalid_email");
    assert_eq!(rej[0]["_column"], "email");
    assert_eq!(rej[0]["metadata"], json!({"n": 1}));
    assert_eq!(rej[1]["_line"], 3);
    assert_eq!(rej[1]["_code"], "invalid_phone");
    let fixed = env
        .read("rej.jsonl")
        .replace("broken@", "fixed@example.com")
        .replace("\"12\"", "\"+905550001122\"");
    env.write("fixed.jsonl", fixed);
    env.expect(&["import", "fixed.jsonl"], 0);
    assert_eq!(env.count(), 3);
    assert_eq!(env.ok(&["get", "k2"]).json()["metadata"], json!({"n": 1}));
}

#[test]
fn abort_writes_nothing_when_any_batch_fails() {
    let env = Env::new();
    let mut csv = String::from("contact_key,email\n");
    for i in 0..9 {
        csv.push_str(&format!("k{i},u{i}@example.com\n"));
    }
    csv.push_str("k9,not-an-email\n");
    env.write("in.csv", &csv);
    let o = env.expect(
        &[
            "import",
            "in.csv",
            "--on-invalid",
            "abort",
            "--batch-size",
            "3",
            "--rejects",
            "rej.csv",
            "--report",
            "rep.json",
        ],
        1,
    );
    assert!(o.stderr.contains("nothing was written"), "{}", o.stderr);
    assert!(o.stderr.contains("1 invalid_email"), "{}", o.stderr);
    assert_eq!(env.count(), 0);
    let rej = env.read("rej.csv");
    assert!(rej.contains("11,invalid_email,email,"), "{rej}");
    let rep: Value = serde_json::from_str(&env.read("rep.json")).unwrap();
    assert_eq!(rep["status"], "rejected");
    assert_eq!(rep["summary"]["total"], 10);
    assert_eq!(rep["summary"]["inserted"], 0);
    assert_eq!(rep["results"][0]["outcome"], "not_applied");
    assert_eq!(rep["errors"][0]["line"], 11);
    assert_eq!(rep["errors"][0]["index"], 9);

    // Fixed, the same import applies every batch.
    env.write("in.csv", csv.replace("not-an-email", "u9@example.com"));
    let o = env.expect(
        &[
            "import",
            "in.csv",
            "--on-invalid",
            "abort",
            "--batch-size",
            "3",
        ],
        0,
    );
    assert!(o.stderr.contains("10 inserted"), "{}", o.stderr);
    assert_eq!(env.count(), 10);
}

/// JSON Lines of `n` valid records (keys k0, k1, ...), then `tail`.
fn keys_then(n: usize, tail: &str) -> String {
    let mut s: String = (0..n)
        .map(|i| format!("{{\"contact_key\":\"k{i}\"}}\n"))
        .collect();
    s.push_str(tail);
    s
}

#[test]
fn abort_stops_on_malformed_input_after_valid_batches() {
    let env = Env::new();
    env.write("in.jsonl", keys_then(6, "{\"contact_key\": \n"));
    let o = env.expect(
        &[
            "import",
            "in.jsonl",
            "--on-invalid",
            "abort",
            "--batch-size",
            "2",
        ],
        1,
    );
    assert!(o.stderr.contains("in.jsonl:7"), "{}", o.stderr);
    assert!(o.stderr.contains("nothing was written"), "{}", o.stderr);
    assert_eq!(env.count(), 0);
}

#[test]
fn skip_stops_on_malformed_input_keeping_earlier_batches() {
    let env = Env::new();
    env.write(
        "in.jsonl",
        keys_then(5, "{\"contact_key\":\"k5\",}\n{\"contact_key\":\"k6\"}\n"),
    );
    let o = env.expect(&["import", "in.jsonl", "--batch-size", "2"], 1);
    let last = o.stderr.lines().last().unwrap();
    assert!(last.starts_with("error: in.jsonl:6:"), "{last}");
    assert!(last.contains("invalid JSON"), "{last}");
    assert!(
        o.stderr
            .contains("4 records in 2 earlier batch(es) were committed, through in.jsonl:4"),
        "{}",
        o.stderr
    );
    assert_eq!(env.count(), 4);
}

fn custom_columns(env: &Env) {
    env.ok(&[
        "columns",
        "add",
        "loyalty_tier",
        "--type",
        "string",
        "--max-len",
        "16",
        "--import-enabled",
    ]);
    env.ok(&[
        "columns",
        "add",
        "lifetime_value",
        "--type",
        "decimal",
        "--import-enabled",
    ]);
    env.ok(&[
        "columns",
        "add",
        "prefs",
        "--type",
        "json",
        "--import-enabled",
    ]);
}

const RICH_JSONL: &str = r#"{"contact_key":"r1","name":"Zoë","email":"Zoe@Example.com","gsm":"0044 7911 123456","email_permit":true,"priority":0,"metadata":{"source":"web","tags":["a","b"]},"loyalty_tier":"GOLD","lifetime_value":"1234.50","prefs":"plain text"}
{"contact_key":"r2","name":"Ömer, \"Jr.\"","birthday":"1999-09-09","metadata":"just a string","prefs":{"lang":"tr"},"lifetime_value":0.5}
{"contact_key":"r3","email":"zoe@example.com","gsm_status":"p","prefs":123,"metadata":[1,2]}
{"contact_key":"r4","surname":"Tab\there","metadata":"{\"looks\":\"like json\"}"}
"#;

#[test]
fn export_import_round_trip_csv_and_jsonl() {
    let env = Env::new();
    custom_columns(&env);
    env.write("in.jsonl", RICH_JSONL);
    env.ok(&["import", "in.jsonl", "--match", "key,email"]);
    let before = env.contacts();
    assert_eq!(before.len(), 3, "r3 matched r1 by email");
    assert_eq!(before[0]["aliases"], json!(["r3"]));

    for format in ["csv", "jsonl"] {
        let out = format!("export.{format}");
        env.expect(&["export", "--format", format, "--out", &out], 0);
        let other = Env::new();
        custom_columns(&other);
        let o = other.run(&["import", &env.path(&out).to_string_lossy()]);
        assert_eq!(o.code, 0, "{format}: {o:?}");
        assert!(
            o.stderr.contains("ignoring the system column(s)"),
            "{}",
            o.stderr
        );
        let after = other.contacts();
        assert_eq!(
            before.iter().map(strip).collect::<Vec<_>>(),
            after.iter().map(strip).collect::<Vec<_>>(),
            "{format}"
        );
    }
    // The CSV export: contact_key first, system fields last.
    let csv = env.read("export.csv");
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("contact_key,name,"), "{header}");
    assert!(
        header.ends_with("loyalty_tier,lifetime_value,prefs,aliases,version,created_at,updated_at"),
        "{header}"
    );
    // Export to stdout defaults to JSON Lines.
    let o = env.ok(&["export"]);
    assert_eq!(o.json_lines().len(), 3);
}

#[test]
fn stdin_inputs_csv_jsonl_json() {
    let env = Env::new();
    let inputs: [(&[&str], &[u8]); 3] = [
        (&["import", "-"], b"contact_key,email\ns1,S1@X.COM\n"),
        (&["import", "-"], b"{\"contact_key\":\"s2\"}\n\n"),
        (
            &["import", "-", "--format", "json"],
            b" [ {\"contact_key\":\"s3\"} ] ",
        ),
    ];
    for (args, input) in inputs {
        env.ok_in(args, Some(input));
    }
    let o = env.run_in(
        &["import", "--format", "jsonl", "-"],
        Some(b"{\"contact_key\":\"s4\",\"email\":\"bad\"}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("<stdin>:1: invalid_email"),
        "{}",
        o.stderr
    );
    assert_eq!(env.count(), 3);
    assert_eq!(env.ok(&["get", "s1"]).json()["email"], "s1@x.com");
}

#[test]
fn malformed_inputs_give_one_clear_error_and_change_nothing() {
    let env = Env::new();
    env.write("seed.csv", "contact_key,name\nk0,Zero\n");
    env.ok(&["import", "seed.csv"]);
    let before = env.contacts();

    let cases: &[(&str, &[u8], &str)] = &[
        (
            "quote.csv",
            b"contact_key,name\nk1,\"Ann\nk2,Bob\n",
            "quote.csv:2: malformed CSV: a quoted field",
        ),
        (
            "utf8.csv",
            b"contact_key,name\nk1,Ann\nk2,B\xffb\n",
            "utf8.csv:3: invalid UTF-8 in column \"name\"",
        ),
        (
            "utf8.jsonl",
            b"{\"contact_key\":\"k1\"}\n{\"contact_key\":\"k\xc3\x28\"}\n",
            "utf8.jsonl:2:18: invalid UTF-8",
        ),
        (
            "noheader.csv",
            b"k1,ann@example.com\nk2,bob@example.com\n",
            "noheader.csv:1: unknown column \"k1\"",
        ),
        (
            "nokey.csv",
            b"name,email\nAnn,ann@example.com\n",
            "nokey.csv:1: the header row has no contact_key",
        ),
        ("empty.csv", b"", "empty.csv: empty file"),
        ("empty.jsonl", b"\n\n", "empty.jsonl: no records"),
        ("empty.json", b"  \n", "empty.json: empty file"),
        (
            "headeronly.csv",
            b"contact_key,name\n",
            "headeronly.csv: no records",
        ),
        (
            "syntax.jsonl",
            b"{\"contact_key\":\"k1\"}\n{\"contact_key\" \"k2\"}\n",
            "syntax.jsonl:2:16: invalid JSON: expected `:`",
        ),
        (
            "scalar.jsonl",
            b"{\"contact_key\":\"k1\"}\n[1,2]\n",
            "scalar.jsonl:2: a record must be a JSON object, found an array",
        ),
        (
            "object.json",
            b"{\"contact_key\":\"k1\"}",
            "object.json:1:1: invalid JSON: invalid type: map, expected a JSON array of records",
        ),
        (
            "element.json",
            b"[{\"contact_key\":\"k1\"}, \"k2\"]",
            "element.json: record 2: a record must be a JSON object, found a string",
        ),
        (
            "truncated.json",
            b"[{\"contact_key\":\"k1\"}, {\"contact_key\":",
            "truncated.json:1:38: invalid JSON: EOF while parsing a value",
        ),
        (
            "unknown.jsonl",
            b"{\"contact_key\":\"k1\",\"shoe_size\":42}\n",
            "unknown.jsonl:1: unknown column \"shoe_size\" (custom columns must be declared first",
        ),
        (
            "twice.csv",
            b"identifier,Contact Key\nk1,k1\n",
            "twice.csv:1: the header names column \"contact_key\" twice",
        ),
        (
            "rename.csv",
            b"contact_key,new_contact_key\nk1,k2\n",
            "only allowed with --mode update",
        ),
    ];
    for (name, bytes, expected) in cases {
        env.write(name, bytes);
        let o = env.run(&["import", name]);
        assert_eq!(o.code, 1, "{name}: {o:?}");
        assert!(o.stdout.is_empty(), "{name}: {o:?}");
        let last = o.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(expected),
            "{name}: expected {expected:?} in the last line of:\n{}",
            o.stderr
        );
    }
    // Wrong value types are per-record failures: reported, nothing written.
    env.write(
        "types.jsonl",
        "{\"contact_key\":\"k1\",\"email\":42}\n{\"contact_key\":[1],\"priority\":true}\n{\"contact_key\":\"k3\",\"birthday\":19900101}\n",
    );
    env.says(
        &["import", "types.jsonl", "--on-invalid", "abort"],
        1,
        "invalid_type",
    );
    // Nothing above changed a contact (versions and timestamps included).
    assert_eq!(env.contacts(), before);
    assert_eq!(env.ok(&["check"]).json()["ok"], true);
}

#[test]
fn upsert_request_prints_the_report() {
    let env = Env::new();
    let req = json!({
        "mode": "upsert",
        "match_on": ["key", "email"],
        "on_invalid": "skip",
        "records": [
            {"contact_key": "u1", "email": "U1@Example.com"},
            {"identifier": "u2", "phoneNumber": "0090 555 111 22 33"}
        ]
    });
    env.write("req.json", req.to_string());
    let o = env.expect(&["upsert", "--request", "req.json"], 0);
    let r = o.json();
    assert_eq!(r["status"], "applied");
    assert_eq!(r["summary"]["inserted"], 2);
    assert_eq!(r["results"][1]["key"], "u2");

    // Partial, from stdin; u9 matches u1 by email and becomes its alias.
    let req = json!({
        "mode": "upsert", "match_on": ["key", "email"], "on_invalid": "skip",
        "records": [{"contact_key": "u9", "email": "u1@example.com"}, {"contact_key": "u3", "email": "x"}]
    });
    let o = env.run_in(
        &["upsert", "--request", "-"],
        Some(req.to_string().as_bytes()),
    );
    assert_eq!(o.code, 3, "{o:?}");
    let r = o.json();
    assert_eq!(r["status"], "partial");
    assert_eq!(r["results"][0]["matched_by"], "email");
    assert_eq!(r["errors"][0]["code"], "invalid_email");

    // Rejected as a whole: the report says why, on stdout.
    let req = json!({"mode": "upsert", "records": [{"contact_key": "u4", "shoe_size": 44}]});
    env.write("bad.json", req.to_string());
    let o = env.expect(&["upsert", "--request", "bad.json"], 1);
    let r = o.json();
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["request_error"]["code"], "unknown_column");
    assert_eq!(r["summary"]["total"], 1);
    assert!(o.stderr.contains("unknown_column"), "{}", o.stderr);

    // Rejected under abort by a failing record.
    let req = json!({"mode": "insert", "records": [{"contact_key": "u5"}, {"contact_key": "u1"}]});
    let o = env.run_in(
        &["upsert", "--request", "-"],
        Some(req.to_string().as_bytes()),
    );
    assert_eq!(o.code, 1, "{o:?}");
    let r = o.json();
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["errors"][0]["code"], "already_exists");
    assert_eq!(r["results"][0]["outcome"], "not_applied");

    // Malformed JSON and unknown fields are rejected requests too.
    for body in [
        "{\"mode\": \"upsert\", \"records\": [",
        "{\"mode\":\"merge\",\"records\":[{}]}",
        "{\"mode\":\"upsert\",\"records\":[],\"extra\":1}",
    ] {
        let o = env.run_in(&["upsert", "--request", "-"], Some(body.as_bytes()));
        assert_eq!(o.code, 1, "{body}: {o:?}");
        let r = o.json();
        assert_eq!(r["status"], "rejected");
        assert_eq!(r["request_error"]["code"], "malformed_request");
    }
    // A missing workspace is a rejected request.
    env.write(
        "ok.json",
        json!({"mode":"upsert","records":[{"contact_key":"w"}]}).to_string(),
    );
    let o = env.expect(
        &["--workspace", "nope", "upsert", "--request", "ok.json"],
        1,
    );
    assert_eq!(o.json()["request_error"]["code"], "no_such_workspace");
    // A missing request file is an error.
    let o = env.expect(&["upsert", "--request", "missing.json"], 1);
    assert!(
        o.stderr.starts_with("error: cannot read missing.json"),
        "{}",
        o.stderr
    );
    // u1 (alias u9) and u2.
    assert_eq!(env.count(), 2);
}

#[test]
fn get_and_find() {
    let env = Env::new();
    env.write(
        "in.csv",
        "contact_key,email,gsm\nk1,a@b.com,+90 555 123 45 67\nk2,a@b.com,\nk3,c@d.com,0090 555 123 45 67\n",
    );
    env.ok(&["import", "in.csv"]);
    // An alias resolves (added by an email match).
    env.write("alias.csv", "contact_key,email\nzz,c@d.com\n");
    env.ok(&["import", "alias.csv", "--match", "key,email"]);
    let c = env.ok(&["get", "zz"]).json();
    assert_eq!(c["contact_key"], "k3");
    assert_eq!(c["aliases"], json!(["zz"]));

    let o = env.run(&["get", "nobody"]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.is_empty());
    assert_eq!(
        o.stderr.trim(),
        "error: no contact with key or alias \"nobody\" in workspace \"default\""
    );
    env.says(
        &["--workspace", "nope", "get", "k1"],
        1,
        "no workspace \"nope\"",
    );

    let found = env.ok(&["find", "--email", " A@B.COM "]).json_lines();
    let keys: Vec<&str> = found
        .iter()
        .map(|c| c["contact_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k1", "k2"]);
    let found = env
        .ok(&["find", "--phone", "+90 (555) 123-45-67"])
        .json_lines();
    let keys: Vec<&str> = found
        .iter()
        .map(|c| c["contact_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k1", "k3"]);
    let o = env.ok(&["find", "--email", "none@x.com"]);
    assert!(o.stdout.is_empty());
    env.expect(&["find", "--phone", "call me"], 1);
    env.expect(&["find"], 2);
}

#[test]
fn columns_and_custom_column_imports() {
    let env = Env::new();
    env.write("in.csv", "contact_key,Loyalty Tier\nk1,gold\n");
    // An undeclared custom column stops the import before anything is written.
    env.says(&["import", "in.csv"], 1, "in.csv:1: unknown column \"Loyalty Tier\" (custom columns must be declared first: contactdb columns add loyalty_tier --type TYPE --import-enabled)");
    env.ok(&[
        "columns",
        "add",
        "loyalty_tier",
        "--type",
        "string",
        "--max-len",
        "8",
    ]);
    env.says(&["import", "in.csv"], 1, "is not import-enabled (enable it with: contactdb columns add loyalty_tier --type string --max-len 8 --import-enabled)");
    env.ok(&[
        "columns",
        "add",
        "loyalty_tier",
        "--type",
        "string",
        "--max-len",
        "8",
        "--import-enabled",
    ]);
    env.ok(&["import", "in.csv"]);
    assert_eq!(env.ok(&["get", "k1"]).json()["loyalty_tier"], "gold");

    let cols = env.ok(&["columns", "list"]).json_lines();
    assert_eq!(cols[0]["name"], "contact_key");
    assert_eq!(cols[0]["predefined"], true);
    let tier = cols.iter().find(|c| c["name"] == "loyalty_tier").unwrap();
    assert_eq!(
        *tier,
        json!({"name":"loyalty_tier","type":"string","max_len":8,"import_enabled":true,"required":false,"predefined":false})
    );
    // Usage errors: exit 2.
    env.expect(
        &["columns", "add", "n", "--type", "integer", "--max-len", "3"],
        2,
    );
    env.expect(&["columns", "add", "n", "--type", "float"], 2);
    // Invalid names and reserved names: exit 1 with a message.
    env.says(
        &["columns", "add", "Bad-Name", "--type", "integer"],
        1,
        "must match",
    );
    env.expect(&["columns", "add", "email", "--type", "integer"], 1);
    // Required columns are enforced on insert.
    env.ok(&[
        "columns",
        "add",
        "region",
        "--type",
        "string",
        "--import-enabled",
        "--required",
    ]);
    env.write("req.csv", "contact_key,region\nk2,\nk3,EU\n");
    env.says(&["import", "req.csv"], 3, "required_missing");
}

#[test]
fn workspaces_are_separate() {
    let env = Env::new();
    let o = env.ok(&["workspace", "create", "acme"]);
    assert_eq!(o.json()["slug"], "acme");
    env.says(&["workspace", "create", "acme"], 1, "already exists");
    let o = env.run(&["workspace", "create", "Bad Slug"]);
    assert_eq!(o.code, 1);
    let list = env.ok(&["workspace", "list"]).json_lines();
    let slugs: Vec<&str> = list.iter().map(|w| w["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "default"]);

    env.write("in.csv", "contact_key\nonly-acme\n");
    env.ok(&["--workspace", "acme", "import", "in.csv"]);
    env.ok(&["--workspace", "acme", "get", "only-acme"]);
    assert_eq!(env.run(&["get", "only-acme"]).code, 1);
    env.says(
        &["--workspace", "ghost", "import", "in.csv"],
        1,
        "create it with: contactdb workspace create ghost",
    );
    let stats = env.ok(&["stats"]).json();
    assert_eq!(stats["contacts"], 1);
    assert_eq!(stats["workspaces"][0]["slug"], "acme");
    assert_eq!(stats["workspaces"][0]["contacts"], 1);
    if !common::on_postgres() {
        assert!(stats["file_size_bytes"].as_u64().unwrap() > 0);
    }
}

#[test]
fn stats_and_check() {
    let env = Env::new();
    env.write("in.csv", "contact_key,email\nk1,a@b.com\n");
    env.ok(&["import", "in.csv"]);
    let o = env.ok(&["check"]);
    assert_eq!(o.json(), json!({"ok": true, "problems": []}));
    assert_eq!(env.count(), 1);
    // Not a database: a clear error, exit 1.
    let junk = env.write("junk.redb", b"this is not a database");
    let o = Command::new(BIN)
        .args(["--db", junk.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("junk.redb: cannot open database"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn read_commands_never_create_the_database() {
    let env = Env::with_file();
    for args in [
        &["get", "k"][..],
        &["find", "--email", "a@b.com"],
        &["export"],
        &["stats"],
        &["check"],
        &["columns", "list"],
        &["workspace", "list"],
    ] {
        let o = env.run(args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.starts_with("error: no database at"),
            "{}",
            o.stderr
        );
    }
    assert!(!env.db().exists());
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        &[][..],
        &["import"],
        &["import", "x.csv", "--mode", "replace"],
        &["import", "x.csv", "--match", "key,fax"],
        &["import", "x.csv", "--batch-size", "0"],
        &["import", "x.csv", "--batch-size", "1000001"],
        &["gen"],
        &["frobnicate"],
    ] {
        let o = env.run(args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
    }
    env.expect(&["import", "-", "-"], 2);
    let o = env.expect(&["import", "missing.csv"], 1);
    assert!(
        o.stderr.starts_with("error: cannot open missing.csv"),
        "{}",
        o.stderr
    );
    assert_eq!(env.ok(&["--help"]).code, 0);
}

#[test]
fn gen_is_deterministic_messy_and_importable() {
    let env = Env::new();
    let a = env.ok(&["gen", "--count", "400", "--seed", "9"]).stdout;
    let b = env.ok(&["gen", "--count", "400", "--seed", "9"]).stdout;
    let c = env.ok(&["gen", "--count", "400", "--seed", "10"]).stdout;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.lines().count(), 401);
    assert!(a.contains(",00"), "00-prefixed phones");
    assert!(
        a.lines()
            .next()
            .unwrap()
            .ends_with("loyalty_tier,lifetime_value")
    );
    env.write("gen.csv", &a);

    let o = env.run(&["gen", "--count", "3", "--out", "x.csv"]);
    assert!(
        o.stderr.contains("contactdb columns add loyalty_tier"),
        "{}",
        o.stderr
    );
    // Without the custom columns declared, the import stops at the header.
    env.expect(&["import", "gen.csv"], 1);
    custom_columns(&env);
    env.expect(&["import", "gen.csv", "--report", "rep.json"], 3);
    let rep: Value = serde_json::from_str(&env.read("rep.json")).unwrap();
    let s = &rep["summary"];
    assert_eq!(s["total"], 400);
    assert!(s["failed"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        s["updated"].as_u64().unwrap() >= 1,
        "in-file duplicates: {s}"
    );
    assert_eq!(rep["results"][0]["line"], 2);
    assert_eq!(rep["results"].as_array().unwrap().len(), 400);

    // JSON Lines output imports too, without custom columns into a fresh database.
    let fresh = Env::new();
    let jsonl = fresh
        .ok(&[
            "gen",
            "--count",
            "200",
            "--seed",
            "3",
            "--no-custom",
            "--format",
            "jsonl",
        ])
        .stdout;
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert!(first.get("loyalty_tier").is_none());
    let o = fresh.run_in(&["import", "-"], Some(jsonl.as_bytes()));
    assert!(o.code == 0 || o.code == 3, "{o:?}");
    assert!(fresh.count() > 150);
}

// Without --report the import holds only what its summary reads of each report
// until the commit: the duplicates it counts are still counted.
#[test]
fn duplicates_are_counted_without_a_report() {
    let env = Env::new();
    env.write(
        "dups.csv",
        "contact_key,name\nd1,First\nd1,Second\nd2,Other\nd2,Again\n",
    );
    let o = env.expect(&["import", "dups.csv", "--on-duplicate", "first"], 0);
    assert!(o.stderr.contains("2 duplicate (left out)"), "{}", o.stderr);
    assert!(o.stderr.contains("2 inserted"), "{}", o.stderr);
    assert_eq!(env.ok(&["get", "d2"]).json()["name"], "Other");
}

#[test]
fn report_and_options_pass_through() {
    let env = Env::new();
    env.write(
        "dups.csv",
        "contact_key,name\nd1,First\nd1,Second\nd2,Other\n",
    );
    let o = env.expect(
        &[
            "import",
            "dups.csv",
            "--on-duplicate",
            "first",
            "--report",
            "-",
        ],
        0,
    );
    let rep = o.json();
    assert_eq!(rep["status"], "applied");
    assert_eq!(rep["results"][1]["outcome"], "duplicate");
    assert_eq!(rep["results"][1]["line"], 3);
    assert!(o.stderr.contains("1 duplicate (left out)"), "{}", o.stderr);
    assert_eq!(env.ok(&["get", "d1"]).json()["name"], "First");

    // --empty-values ignore keeps stored values for blank cells.
    env.write("blank.csv", "contact_key,name\nd1,\n");
    env.ok(&["import", "blank.csv", "--empty-values", "ignore"]);
    assert_eq!(env.ok(&["get", "d1"]).json()["name"], "First");
    env.ok(&["import", "blank.csv"]);
    assert!(env.ok(&["get", "d1"]).json().get("name").is_none());

    // --mode insert / update.
    let o = env.expect(
        &[
            "import",
            "dups.csv",
            "--mode",
            "insert",
            "--on-duplicate",
            "first",
        ],
        1,
    );
    assert!(o.stderr.contains("already_exists"), "{}", o.stderr);
    env.write(
        "upd.csv",
        "contact_key,new_contact_key\nd2,d2-renamed\nd404,x\n",
    );
    env.says(&["import", "upd.csv", "--mode", "update"], 3, "not_found");
    env.ok(&["get", "d2-renamed"]);
}

#[test]
fn several_inputs_in_one_import() {
    let env = Env::new();
    env.write("a.csv", "contact_key,email\na1,a1@x.com\na2,bad\n");
    env.write(
        "b.jsonl",
        "{\"contact_key\":\"b1\"}\n{\"contact_key\":\"b2\",\"gsm\":\"1\"}\n",
    );
    env.says(
        &["import", "a.csv", "b.jsonl", "--rejects", "rej.jsonl"],
        3,
        "imported 4 records from a.csv, b.jsonl",
    );
    let rej: Vec<Value> = env
        .read("rej.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rej.len(), 2);
    assert_eq!(rej[0]["_file"], "a.csv");
    assert_eq!(rej[0]["_line"], 3);
    assert_eq!(rej[1]["_file"], "b.jsonl");
    assert_eq!(rej[1]["_line"], 2);
    // A CSV rejects file needs CSV inputs with one header.
    env.expect(&["import", "a.csv", "b.jsonl", "--rejects", "rej.csv"], 2);
}

fn examples_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/contacts.csv")
}

#[test]
fn example_contacts_csv_imports_into_a_fresh_database() {
    let env = Env::new();
    let o = env.expect(&["import", examples_csv().to_str().unwrap()], 3);
    let summary = o.stderr.lines().last().unwrap();
    assert!(summary.starts_with("imported "), "{summary}");
    assert!(summary.contains("failed ("), "{summary}");
    assert!(summary.contains("invalid_email"), "{summary}");
    assert!(env.count() > 250);
    assert_eq!(env.ok(&["check"]).json()["ok"], true);
}

// `stats --workspace` was ignored: every workspace was printed.
#[test]
fn stats_of_one_workspace() {
    let env = Env::new();
    env.write("two.csv", "contact_key\na\nb\n");
    env.write("one.csv", "contact_key\nc\n");
    env.ok(&["import", "two.csv"]);
    env.ok(&["workspace", "create", "acme"]);
    env.ok(&["--workspace", "acme", "import", "one.csv"]);
    let all = env.ok(&["stats"]).json();
    assert_eq!(all["contacts"], 3);
    assert_eq!(all["workspaces"].as_array().unwrap().len(), 2);
    for args in [
        &["--workspace", "acme", "stats"][..],
        &["stats", "--workspace", "acme"][..],
    ] {
        let one = env.ok(args).json();
        assert_eq!(one["contacts"], 1, "{args:?}");
        let list = one["workspaces"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{args:?}");
        assert_eq!(list[0]["slug"], "acme");
        assert_eq!(list[0]["contacts"], 1);
    }
    let uuid = all["workspaces"][1]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        env.ok(&["stats", "--workspace", &uuid]).json()["contacts"],
        2
    );
    env.says(
        &["stats", "--workspace", "ghost"],
        1,
        "no workspace \"ghost\"",
    );
}

#[test]
fn compact_shrinks_the_file_and_keeps_its_contacts() {
    let env = Env::with_file();
    let mut csv = String::from("contact_key,email\n");
    for i in 0..3000 {
        csv.push_str(&format!("k{i},e{i}@x.com\n"));
    }
    env.write("in.csv", &csv);
    env.ok(&["import", "in.csv", "--batch-size", "100"]);
    let before = env.contacts();
    let sizes = env.ok(&["compact"]).json();
    let (b, a) = (
        sizes["bytes_before"].as_u64().unwrap(),
        sizes["bytes_after"].as_u64().unwrap(),
    );
    assert!(a < b, "{sizes}");
    assert_eq!(std::fs::metadata(env.db()).unwrap().len(), a);
    assert_eq!(env.contacts(), before);
    env.ok(&["check"]);
    // Nothing to compact without a database, and none is created.
    let empty = Env::with_file();
    empty.says(&["compact"], 1, "no database at");
    assert!(!empty.db().exists());
}

// R6, R14: committing whole batches together (--commit-records) changes no outcome:
// the report, the contents and the feed equal those of a commit per batch, also when
// later batches match contacts that earlier batches of the same commit changed.
#[test]
fn commit_records_changes_no_outcome() {
    let mut csv = String::from("contact_key,email,name\n");
    for i in 0..40 {
        // Keys and emails repeat across batches of 3: many batches must be planned
        // again after a commit.
        let _ = writeln!(csv, "k{},e{}@x.com,n{i}", i % 11, i % 7);
    }
    let outs: Vec<(String, Vec<Value>, Vec<Value>)> = ["1", "1000"]
        .iter()
        .map(|n| {
            let env = Env::new();
            env.write("in.csv", &csv);
            env.expect(
                &[
                    "import",
                    "in.csv",
                    "--match",
                    "key,email",
                    "--batch-size",
                    "3",
                    "--commit-records",
                    n,
                    "--report",
                    "report.json",
                ],
                0,
            );
            // Timestamps differ between runs: compare everything else.
            let without_times = |out: String| -> Vec<Value> {
                out.lines()
                    .map(|l| {
                        let mut v: Value = serde_json::from_str(l).unwrap();
                        for f in ["at", "created_at", "updated_at"] {
                            v.as_object_mut().unwrap().remove(f);
                        }
                        v
                    })
                    .collect()
            };
            let export = without_times(env.expect(&["export"], 0).stdout);
            let feed = without_times(env.expect(&["feed", "read"], 0).stdout);
            (env.read("report.json"), export, feed)
        })
        .collect();
    assert_eq!(outs[0].0, outs[1].0, "reports differ");
    assert_eq!(outs[0].1, outs[1].1, "contents differ");
    assert_eq!(outs[0].2, outs[1].2, "feeds differ");
    assert_eq!(outs[0].2.len(), 40 + 4, "every record changed its contact");
}
