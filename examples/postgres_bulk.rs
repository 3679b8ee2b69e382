//! Bulk load and upsert through contactdb on PostgreSQL (`Database::open` of a
//! `postgres://` URL, `Workspace::bulk`: validation, matching, the merge, reports,
//! the change feed) against plain PostgreSQL (`COPY` into a staging table +
//! `INSERT … SELECT … ON CONFLICT DO UPDATE` of the same, pre-normalized records),
//! in the same run and database.
//!
//! ```text
//! cargo run --release --example postgres_bulk -- \
//!     --records 1000000 --url postgres://postgres@127.0.0.1:5432/postgres [--batch 10000] [--csv FILE]
//! ```
//!
//! The load inserts `records` contacts; the upsert sends `records` more: half of
//! them existing contacts with a changed name, email and phone, half new ones.
//! Both sides commit one transaction per batch. Records are built outside the
//! timed sections; the contactdb side's timing includes normalization, the merge,
//! the feed events and the writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::time::Instant;

use contactdb::{BulkRequest, Database, Mode};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};
use serde_json::{Map, Value as Json};

fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const FIRST: &[&str] = &[
    "Ann", "Bob", "Carla", "David", "Elif", "Frank", "Gizem", "Hakan",
];
const LAST: &[&str] = &[
    "Smith", "Yilmaz", "Garcia", "Kaya", "Muller", "Demir", "Rossi",
];

/// Contact `i` at generation `g`: raw JSON (as an export sends it) and the same
/// values normalized (as the plain side stores them).
struct Person {
    key: String,
    name: &'static str,
    surname: &'static str,
    raw_email: String,
    email: String,
    raw_gsm: String,
    gsm: String,
    status: &'static str,
    priority: i64,
}

fn person(i: u64, g: u64) -> Person {
    let h = mix64(i);
    let token = mix64((g << 40) ^ i ^ 0x0045_4D41_494C);
    let name = FIRST[((h >> 4).wrapping_add(g) % FIRST.len() as u64) as usize];
    let surname = LAST[((h >> 8) % LAST.len() as u64) as usize];
    let raw_email = format!("{name}.{surname}.{token:016x}@Example.COM");
    let digits = format!("{:011}", mix64((g << 34) ^ i ^ 0x47534D) % 100_000_000_000);
    Person {
        key: format!("cust-{:016x}", mix64(i ^ 0x4B4559)),
        name,
        surname,
        email: raw_email.to_lowercase(),
        raw_email,
        raw_gsm: format!("+44 {} {} {}", &digits[0..3], &digits[3..7], &digits[7..11]),
        gsm: format!("+44{digits}"),
        status: if h & 1 == 0 { "A" } else { "P" },
        priority: ((h >> 48) % 10) as i64,
    }
}

fn raw_json(p: &Person) -> Json {
    let mut m = Map::new();
    m.insert("contact_key".into(), Json::String(p.key.clone()));
    m.insert("name".into(), Json::String(p.name.to_owned()));
    m.insert("surname".into(), Json::String(p.surname.to_owned()));
    m.insert("email".into(), Json::String(p.raw_email.clone()));
    m.insert("gsm".into(), Json::String(p.raw_gsm.clone()));
    m.insert("status".into(), Json::String(p.status.to_lowercase()));
    m.insert("priority".into(), Json::from(p.priority));
    Json::Object(m)
}

/// `(i, g)` of each record of a phase.
fn phase_items(n: u64, upsert: bool) -> Vec<(u64, u64)> {
    if !upsert {
        return (0..n).map(|i| (i, 0)).collect();
    }
    let half = n / 2;
    let mut v: Vec<(u64, u64)> = (0..half)
        .map(|k| (mix64(k ^ 0x5550) % n, 1))
        .chain((n..n + (n - half)).map(|i| (i, 0)))
        .collect();
    v.sort_by_key(|(i, g)| mix64(i ^ (g << 50) ^ 0x0A));
    v.dedup_by_key(|x| x.0);
    v
}

struct Args {
    records: u64,
    batch: usize,
    url: String,
    csv: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        records: 200_000,
        batch: 10_000,
        url: std::env::var("CONTACTDB_TEST_PG_URL").unwrap_or_default(),
        csv: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => a.records = v.parse().expect("--records N"),
            "--batch" => a.batch = v.parse().expect("--batch N"),
            "--url" => a.url = v,
            "--csv" => a.csv = Some(v),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        !a.url.is_empty(),
        "give --url postgres://… (or set CONTACTDB_TEST_PG_URL)"
    );
    a
}

const PLAIN_SCHEMA: &str = "
    DROP TABLE IF EXISTS plain_contacts;
    CREATE TABLE plain_contacts (
        workspace_id bigint NOT NULL, key text NOT NULL, name text, surname text,
        email text, gsm text, status text, priority bigint, version bigint NOT NULL,
        updated_at_us bigint NOT NULL, PRIMARY KEY (workspace_id, key));
    CREATE INDEX plain_email ON plain_contacts (workspace_id, email);
    CREATE INDEX plain_gsm ON plain_contacts (workspace_id, gsm);
    CREATE TEMP TABLE plain_in (key text, name text, surname text, email text, gsm text,
        status text, priority bigint) ON COMMIT DELETE ROWS;";

fn plain_batch(c: &mut Client, people: &[Person]) -> f64 {
    let t = Instant::now();
    let mut tx = c.transaction().unwrap();
    {
        let sink = tx
            .copy_in("COPY plain_in FROM STDIN (FORMAT binary)")
            .unwrap();
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
            ],
        );
        for p in people {
            w.write(&[
                &p.key,
                &p.name,
                &p.surname,
                &p.email,
                &p.gsm,
                &p.status,
                &p.priority,
            ])
            .unwrap();
        }
        w.finish().unwrap();
    }
    tx.execute(
        "INSERT INTO plain_contacts
         SELECT 1, key, name, surname, email, gsm, status, priority, 1, $1 FROM plain_in
         ON CONFLICT (workspace_id, key) DO UPDATE SET
             name = EXCLUDED.name, surname = EXCLUDED.surname, email = EXCLUDED.email,
             gsm = EXCLUDED.gsm, status = EXCLUDED.status, priority = EXCLUDED.priority,
             version = plain_contacts.version + 1, updated_at_us = EXCLUDED.updated_at_us",
        &[&now_us()],
    )
    .unwrap();
    tx.commit().unwrap();
    t.elapsed().as_secs_f64()
}

/// Microseconds since the Unix epoch.
fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

fn main() {
    let a = args();
    let db = Database::builder()
        .records_max(a.batch.max(1))
        .open(&a.url)
        .expect("connect");
    let slug = format!("bench-{}", now_us());
    let ws = db
        .workspace(&db.create_workspace(&slug).expect("workspace").slug)
        .expect("workspace");
    let mut plain = Client::connect(&a.url, NoTls).expect("connect");
    plain.batch_execute(PLAIN_SCHEMA).unwrap();
    let mut rows = Vec::new();
    for (phase, upsert) in [("load", false), ("upsert", true)] {
        let items = phase_items(a.records, upsert);
        let (mut t_engine, mut t_plain) = (0.0f64, 0.0f64);
        for chunk in items.chunks(a.batch) {
            let people: Vec<Person> = chunk.iter().map(|&(i, g)| person(i, g)).collect();
            let req = BulkRequest::new(Mode::Upsert, people.iter().map(raw_json).collect());
            let t = Instant::now();
            let report = ws.bulk(&req).expect("bulk");
            t_engine += t.elapsed().as_secs_f64();
            assert_eq!(report.summary.failed, 0, "{:?}", report.errors.first());
            t_plain += plain_batch(&mut plain, &people);
        }
        let n = items.len() as f64;
        println!(
            "{phase:6} {:>9} records: contactdb-pg {t_engine:7.2} s ({:>7.0}/s), plain PostgreSQL {t_plain:7.2} s ({:>7.0}/s), ratio {:.2}",
            items.len(),
            n / t_engine,
            n / t_plain,
            t_engine / t_plain
        );
        rows.push((phase, items.len(), t_engine, t_plain));
    }
    let counted = ws.count().unwrap();
    let plain_rows: i64 = plain
        .query_one("SELECT count(*) FROM plain_contacts", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        counted, plain_rows as u64,
        "both sides hold the same contacts"
    );
    if let Some(path) = a.csv {
        let new = !std::path::Path::new(&path).exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        if new {
            writeln!(
                f,
                "contacts_loaded,batch,phase,records,row,secs,records_per_s,ratio_to_plain"
            )
            .unwrap();
        }
        for (phase, n, e, p) in rows {
            for (row, s) in [("contactdb-pg", e), ("plain-postgres", p)] {
                writeln!(
                    f,
                    "{},{},{phase},{n},{row},{s:.2},{:.0},{:.2}",
                    a.records,
                    a.batch,
                    n as f64 / s,
                    s / p
                )
                .unwrap();
            }
        }
    }
    plain.batch_execute("DROP TABLE plain_contacts").unwrap();
}
