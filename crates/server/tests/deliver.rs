//! Webhook delivery of triggered change events: signed, retried, at least once,
//! the consumer's position moved only after a 2xx, and durable across a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contactdb::{BulkRequest, Database, Mode, Trigger};
use contactdb_server::deliver::{Webhook, drain, hmac_sha256};
use serde_json::{Value, json};

/// What the receiver got: (signature header, body) per accepted POST.
type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A loopback receiver answering `status` (changeable) and keeping what it got.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    got: Got,
}

fn receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(500));
    let got: Got = Arc::new(Mutex::new(Vec::new()));
    let (s, g) = (Arc::clone(&status), Arc::clone(&got));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut sig) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if let Some(v) = lower.strip_prefix("x-contactdb-signature:") {
                    sig = v.trim().to_owned();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let code = s.load(Ordering::SeqCst);
            if code == 200 {
                g.lock().unwrap().push((sig, body));
            }
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Receiver { url, status, got }
}

#[test]
fn triggered_events_reach_the_webhook_once_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let rx = receiver();
    let hook = Webhook {
        url: rx.url.clone(),
        secret: b"s3cret".to_vec(),
        consumer: "webhook".into(),
        timeout: Duration::from_secs(5),
    };
    {
        let db = Database::open(&path).unwrap();
        let ws = db.workspace("default").unwrap();
        // 1,200 triggered inserts (three chunks), and an untriggered request between.
        for (i, trigger) in [true, false, true].into_iter().enumerate() {
            let records: Vec<Value> = (0..600)
                .map(|n| json!({"contact_key": format!("r{i}-{n}")}))
                .collect();
            let mut req = BulkRequest::new(Mode::Upsert, records);
            if trigger {
                req.trigger = Some(Trigger {
                    call: Some(json!({"agentId": "a"})),
                    workflow: None,
                });
            }
            ws.bulk(&req).unwrap();
        }
        // The receiver fails: the pass gives up after its attempts, nothing acked.
        let err = drain(&ws, &hook, 2, &|| false).unwrap_err();
        assert!(err.contains("500"), "{err}");
        assert_eq!(ws.consumers().unwrap()[0].acked, 0);
    }
    // After a restart, with the receiver back: everything, in order, signed.
    rx.status.store(200, Ordering::SeqCst);
    let db = Database::open(&path).unwrap();
    let ws = db.workspace("default").unwrap();
    let done = drain(&ws, &hook, 3, &|| false).unwrap();
    assert_eq!(done.events, 1200);
    let got = rx.got.lock().unwrap().clone();
    let mut keys = Vec::new();
    for (sig, body) in &got {
        let want: String = hmac_sha256(b"s3cret", body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, &format!("sha256={want}"));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert!(v["events"].as_array().unwrap().len() <= 500);
        for e in v["events"].as_array().unwrap() {
            assert_eq!(e["trigger"]["call"]["agentId"], "a");
            keys.push(e["key"].as_str().unwrap().to_owned());
        }
    }
    let mut want: Vec<String> = (0..600).map(|n| format!("r0-{n}")).collect();
    want.extend((0..600).map(|n| format!("r2-{n}")));
    assert_eq!(keys, want);
    assert_eq!(ws.consumers().unwrap()[0].acked, 1800);
    // Nothing new: nothing sent again.
    assert_eq!(drain(&ws, &hook, 3, &|| false).unwrap().posts, 0);
}
