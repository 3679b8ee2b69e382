//! Fuzz target: the engine against the reference model of `tests/model` (R6–R15):
//! requests as JSON, options absent, `null` or given (the engine reads them as
//! `BulkRequest`, the model with its own reader).
//! Bytes drive a short sequence of bulk requests over small pools of keys, emails
//! and phones; after every request the reports (messages blanked) and the contents
//! must be equal, and `check()` clean.
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

use contactdb::{BulkRequest, Database, Mode};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value as Json, json};

/// Reads bytes as small choices; zeros once exhausted.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        usize::from(b) % n
    }
}

const KEYS: [&str; 6] = ["k0", "k1", "k2", "k3", "k4", " k5 "];
const EMAILS: [&str; 5] = ["a@x.com", " A@X.com", "b@x.com", "bad@", "c@y.org"];
const PHONES: [&str; 4] = [
    "+90 555 000 0001",
    "0090555-000-0001",
    "+1 415 555 0100",
    "12",
];
const NAMES: [&str; 3] = ["Ann", " Bob ", "x"];
const STATUSES: [&str; 3] = ["a", "P", "X"];

fn value(b: &mut Bytes, pool: &[&str]) -> Option<Json> {
    match b.pick(pool.len() + 3) {
        0 => None,
        1 => Some(Json::Null),
        2 => Some(json!("")),
        i => pool.get(i - 3).map(|s| json!(s)),
    }
}

fn request(b: &mut Bytes) -> Json {
    let mode = [Mode::Insert, Mode::Update, Mode::Upsert][b.pick(3)];
    let mut records = Vec::new();
    for _ in 0..=b.pick(6) {
        let mut r = Map::new();
        if let Some(k) = value(b, &KEYS) {
            r.insert("contact_key".into(), k);
        }
        for (name, pool) in [
            ("email", &EMAILS[..]),
            ("gsm", &PHONES[..]),
            ("name", &NAMES[..]),
            ("status", &STATUSES[..]),
        ] {
            if let Some(v) = value(b, pool) {
                r.insert(name.into(), v);
            }
        }
        if mode == Mode::Update
            && b.pick(4) == 0
            && let Some(k) = value(b, &KEYS)
        {
            r.insert("new_contact_key".into(), k);
        }
        records.push(Json::Object(r));
    }
    // Each option: absent, null (both the default, R4) or a value.
    let mut top = Map::new();
    top.insert("mode".into(), json!(mode));
    let mut option = |b: &mut Bytes, name: &str, values: &[Json]| match b.pick(values.len() + 2) {
        0 => {}
        1 => {
            top.insert(name.into(), Json::Null);
        }
        i => {
            if let Some(v) = values.get(i - 2) {
                top.insert(name.into(), v.clone());
            }
        }
    };
    option(
        b,
        "match_on",
        &[
            json!(["key"]),
            json!(["key", "email", "phone"]),
            json!(["email"]),
        ],
    );
    option(b, "on_invalid", &[json!("abort"), json!("skip")]);
    option(
        b,
        "on_duplicate",
        &[
            json!("merge"),
            json!("first"),
            json!("last"),
            json!("reject"),
        ],
    );
    option(b, "empty_values", &[json!("clear"), json!("ignore")]);
    top.insert("records".into(), Json::Array(records));
    Json::Object(top)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let dir = tempfile::Builder::new()
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .expect("tempdir");
    let db = Database::builder()
        .cache_size_bytes(4 << 20)
        .index_buffer_min(1)
        .lookup_filter_slack_min(1)
        .open(dir.path().join("f.redb"))
        .expect("open");
    let ws = db.workspace("default").expect("workspace");
    let mut m = model::Model::new();
    for _ in 0..=b.pick(4) {
        let req = request(&mut b);
        let parsed: BulkRequest = serde_json::from_value(req.clone()).expect("the engine reads it");
        let engine = ws.bulk(&parsed);
        let expected = m.bulk_json(&req);
        match (engine, expected) {
            (Ok(mut got), Ok(mut want)) => {
                model::normalize_report(&mut got);
                model::normalize_report(&mut want);
                assert_eq!(got, want, "report differs for {req}");
            }
            (Err(contactdb::BulkError::Request(e)), Err(code)) => assert_eq!(e.code(), code),
            (got, want) => panic!("engine {got:?} vs model {want:?} for {req}"),
        }
        let got: Vec<_> = ws
            .contacts()
            .expect("contacts")
            .into_iter()
            .map(|c| (c.key, c.columns, c.aliases, c.version))
            .collect();
        let want: Vec<_> = m
            .contacts()
            .into_iter()
            .map(|c| (c.key, c.columns, c.aliases, c.version))
            .collect();
        assert_eq!(got, want, "contents differ after {req}");
    }
    assert!(db.check().expect("check").is_empty());
});
