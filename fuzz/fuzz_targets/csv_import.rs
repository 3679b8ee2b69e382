//! Fuzz target: arbitrary bytes as a CSV import file. The CLI's CSV reader ends
//! every input with records, a note or one clear error — never a panic, never an
//! unbounded read (the per-record limit is set low here) — and the records it
//! yields, applied as bulk requests, leave the database consistent.
#![no_main]

use std::sync::{Arc, OnceLock};

use contactdb::{BulkRequest, ColumnSpec, ColumnType, Database, Mode, OnInvalid};
#[allow(dead_code)]
#[path = "../../crates/cli/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../../crates/cli/src/util.rs"]
mod util;

use input::{Format, Msg, RawKind, Schema};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    db: Database,
    columns: Vec<ColumnSpec>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        input::set_record_bytes_max(4096);
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::builder()
            .cache_size_bytes(8 << 20)
            .records_max(256)
            .open(dir.path().join("fuzz.redb"))
            .expect("open");
        let ws = db.workspace("default").expect("default workspace");
        for (name, ty) in [
            ("tier", ColumnType::String { max_len: 8 }),
            ("score", ColumnType::Integer),
            ("extra", ColumnType::Json),
        ] {
            ws.declare_column(ColumnSpec::new(name, ty).import_enabled(true))
                .expect("declare");
        }
        let columns = ws.columns().expect("columns");
        Env { dir, db, columns }
    })
}

fuzz_target!(|data: &[u8]| {
    let env = env();
    let path = env.dir.path().join("in.csv");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let schema = Arc::new(Schema::new(env.columns.clone(), Mode::Upsert));
    let Ok(mut inp) = input::open(
        &path,
        Some(Format::Csv),
        input::Dialect::default(),
        &schema,
        Some(RawKind::Cells),
        64,
    ) else {
        return;
    };
    let mut records: Vec<Value> = Vec::new();
    loop {
        match inp.recv() {
            Msg::Recs(recs) => records.extend(recs.into_iter().map(|r| Value::Object(r.record))),
            Msg::Note(_) => {}
            Msg::Error(_) | Msg::End(_) => break,
        }
    }
    let ws = env.db.workspace("default").expect("workspace");
    for chunk in records.chunks(256) {
        let mut req = BulkRequest::new(Mode::Upsert, chunk.to_vec());
        req.on_invalid = OnInvalid::Skip;
        match ws.bulk(&req) {
            Ok(_) | Err(contactdb::BulkError::Request(_)) => {}
            Err(e) => panic!("bulk failed: {e}"),
        }
    }
    assert!(
        env.db.check().expect("check").is_empty(),
        "inconsistent after import"
    );
});
