//! Quick start: open a database, upsert a few hundred messy contacts in one bulk
//! request, print the report summary and a few per-record problems.
//!
//! Run with `cargo run --release --example quickstart [PATH]` (default
//! `quickstart.redb` in the current directory). Running it twice shows the second
//! pass as `unchanged`.

use contactdb::{BulkRequest, Database, MatchOn, Mode, OnInvalid, Outcome};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart.redb".to_owned());
    let db = Database::open(&path)?;
    let ws = db.workspace("default")?;

    let mut records = Vec::new();
    for i in 0..300u32 {
        let mut r = serde_json::Map::new();
        let base = json!({
            "identifier": format!("crm-{i:04}"),
            "first_name": format!("  Person{i} "),
            "Email": format!("Person{}@Example.COM", i % 280),
            "phoneNumber": format!("0090 555 {:03} {:04}", i % 1000, i),
            "status": if i % 7 == 0 { "p" } else { "A" },
        });
        if let serde_json::Value::Object(m) = base {
            r.extend(m);
        }
        if i % 50 == 3 {
            r.insert("Email".into(), json!("not-an-email"));
        }
        if i % 60 == 5 {
            r.insert("birthday".into(), json!("1990-02-30"));
        }
        records.push(serde_json::Value::Object(r));
    }
    let mut req = BulkRequest::new(Mode::Upsert, records);
    req.match_on = MatchOn::ALL;
    req.on_invalid = OnInvalid::Skip;

    let report = ws.bulk(&req)?;
    let s = &report.summary;
    println!(
        "status={:?} total={} inserted={} updated={} unchanged={} failed={}",
        report.status, s.total, s.inserted, s.updated, s.unchanged, s.failed
    );
    for e in report.errors.iter().take(5) {
        println!(
            "  record {} ({}): {} {}: {}",
            e.index,
            e.key.as_deref().unwrap_or("-"),
            e.column.as_deref().unwrap_or("-"),
            e.code,
            e.message
        );
    }
    let aliased = report
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Updated && r.contact_key.is_some())
        .count();
    println!("  {aliased} records matched an earlier contact by email or phone");
    if let Some(c) = ws.get("crm-0001")? {
        println!("{}", serde_json::to_string(&c)?);
    }
    println!(
        "contacts: {}; integrity problems: {}",
        ws.count()?,
        db.check()?.len()
    );
    Ok(())
}
