//! Fuzz target: a small valid database file, damaged by the input (bytes flipped or
//! set, 4 KiB pages zeroed, the file truncated). Opening it read-only, reading a
//! contact, reading every contact and checking it never panic (a panic inside redb
//! on a malformed page is contained by the store and is an error), and when `check`
//! finds nothing, every read equals the undamaged file's.
#![no_main]

use std::sync::OnceLock;

use contactdb::{BulkRequest, Database, Mode};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

struct Original {
    bytes: Vec<u8>,
    contacts: Vec<String>,
    key: String,
    got: String,
}

fn all(db: &Database) -> Result<Vec<String>, contactdb::Error> {
    let ws = db.workspace("default")?;
    let mut v = Vec::new();
    ws.for_each_contact(|c| {
        v.push(serde_json::to_string(&c).unwrap_or_default());
        std::ops::ControlFlow::Continue(())
    })?;
    Ok(v)
}

fn original() -> &'static Original {
    static O: OnceLock<Original> = OnceLock::new();
    O.get_or_init(|| {
        // libFuzzer's panic hook aborts on every panic, also on one the store
        // catches and turns into an error: abort only on the others.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !contactdb::panic_is_contained() {
                fuzzer_hook(info);
            }
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("o.redb");
        {
            let db = Database::open(&path).expect("open");
            let ws = db.workspace("default").expect("default");
            let records = (0..300)
                .map(|i| {
                    json!({
                        "contact_key": format!("c{i:04}"),
                        "email": format!("u{i}@example.com"),
                        "gsm": format!("+1555{i:07}"),
                        "name": format!("Name {i}"),
                        "metadata": {"i": i},
                    })
                })
                .collect();
            ws.bulk(&BulkRequest::new(Mode::Upsert, records))
                .expect("bulk");
        }
        let db = Database::open_read_only(&path).expect("reopen");
        let contacts = all(&db).expect("read");
        let key = "c0123".to_owned();
        let got =
            serde_json::to_string(&db.workspace("default").expect("ws").get(&key).expect("get"))
                .expect("json");
        drop(db);
        Original {
            bytes: std::fs::read(&path).expect("read file"),
            contacts,
            key,
            got,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let o = original();
    let mut bytes = o.bytes.clone();
    for m in data.chunks_exact(5) {
        let [kind, a, b, c, v] = [m[0], m[1], m[2], m[3], m[4]];
        if bytes.is_empty() {
            break;
        }
        let at = u32::from_le_bytes([a, b, c, 0]) as usize % bytes.len();
        match kind % 8 {
            0..=3 => bytes[at] ^= v.max(1),
            4 => bytes[at] = v,
            5 => {
                let page = at / 4096 * 4096;
                let end = (page + 4096).min(bytes.len());
                bytes[page..end].fill(0);
            }
            6 if kind > 200 => bytes.truncate(at),
            _ => {
                // Flips in the header, where redb keeps its two commit slots.
                let h = at % 512;
                bytes[h] ^= v.max(1);
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.redb");
    std::fs::write(&path, &bytes).expect("write");

    let read = Database::open_read_only(&path).map(|db| {
        let got = db
            .workspace("default")
            .map_err(contactdb::Error::from)
            .and_then(|ws| ws.get(&o.key))
            .map(|c| serde_json::to_string(&c).unwrap_or_default());
        (got, all(&db))
    });
    let check = Database::builder().check_file(&path);
    assert_eq!(
        std::fs::read(&path).expect("reread"),
        bytes,
        "a read changed the file"
    );
    if let Ok(problems) = check
        && problems.is_empty()
    {
        match read {
            Ok((got, contacts)) => {
                assert_eq!(got.ok().as_ref(), Some(&o.got), "check passed, get differs");
                assert_eq!(
                    contacts.ok().as_ref(),
                    Some(&o.contacts),
                    "check passed, contacts differ"
                );
            }
            // A file whose last writer did not close it (a flipped header flag):
            // the read-only open refuses it until a writer recovers it.
            Err(e) => assert!(
                e.to_string().contains("not closed cleanly"),
                "check passed, open failed: {e}"
            ),
        }
    }
});
