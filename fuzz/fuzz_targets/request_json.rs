//! Fuzz target: arbitrary bytes as a bulk request (R20). Whatever the bytes, the
//! engine returns a report or an error — never a panic — and the file stays
//! consistent (`check()` is clean).
#![no_main]

use std::sync::OnceLock;

use contactdb::{BulkRequest, ColumnSpec, ColumnType, Database};
use libfuzzer_sys::fuzz_target;

struct Env {
    _dir: tempfile::TempDir,
    db: Database,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::builder()
            .cache_size_bytes(8 << 20)
            .records_max(64)
            .open(dir.path().join("fuzz.redb"))
            .expect("open");
        let ws = db.workspace("default").expect("default workspace");
        for (name, ty) in [
            ("tier", ColumnType::String { max_len: 8 }),
            ("score", ColumnType::Integer),
            ("ltv", ColumnType::Decimal),
            ("vip", ColumnType::Boolean),
            ("since", ColumnType::Date),
            ("extra", ColumnType::Json),
        ] {
            ws.declare_column(ColumnSpec::new(name, ty).import_enabled(true))
                .expect("declare");
        }
        Env { _dir: dir, db }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<BulkRequest>(data) else {
        return;
    };
    let env = env();
    let ws = env.db.workspace("default").expect("workspace");
    let _ = ws.bulk(&req);
    let problems = env.db.check().expect("check runs");
    assert!(problems.is_empty(), "index inconsistency: {problems:?}");
});
