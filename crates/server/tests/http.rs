//! The HTTP server on a loopback port, driven with plain HTTP/1.1: every endpoint
//! with the hosted APIs' bodies, and the status codes of keys, roles, workspaces,
//! malformed and oversized bodies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use contactdb::{Database, Role};
use serde_json::{Value, json};

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn start(db: Database, max_body: usize) -> Server {
    start_with(db, max_body, None)
}

fn start_with(db: Database, max_body: usize, rate_per_minute: Option<u32>) -> Server {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let config = contactdb_server::Config {
                max_body,
                job_poll: Duration::from_millis(100),
                webhook: None,
                rate_per_minute,
            };
            contactdb_server::serve(db, listener, config, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    Server {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// One request; returns (status, headers text, JSON body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(rest.trim()).unwrap_or(Value::Null);
    (status, head.to_owned(), body)
}

fn post(addr: SocketAddr, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {key}");
    let (s, _, b) = http(
        addr,
        "POST",
        path,
        &[("Authorization", &auth)],
        body.to_string().as_bytes(),
    );
    (s, b)
}

#[test]
fn endpoints_and_status_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("c.redb")).unwrap();
    let ws = db.workspace("default").unwrap();
    let (_, write) = ws.create_key(Role::Write).unwrap();
    let (_, read) = ws.create_key(Role::Read).unwrap();
    let (revoked_info, revoked) = ws.create_key(Role::Manage).unwrap();
    assert!(ws.revoke_key(&revoked_info.id).unwrap());
    let acme = db
        .workspace(&db.create_workspace("acme").unwrap().slug)
        .unwrap();
    let (_, acme_key) = acme.create_key(Role::Write).unwrap();
    ws.create_campaign("spring", &[]).unwrap();
    let server = start(db.clone(), 64 * 1024);
    let a = server.addr;

    assert_eq!(http(a, "GET", "/healthz", &[], b"").0, 200);

    // bulk-upsert: 200, then 207, then 400; 401 / 403 / 400 / 413.
    let upsert = json!({"columns": ["contact_key", "email"], "insertIfNotExists": true,
                        "contactDatas": [["c-1", "a@x.com"], ["c-2", "b@x.com"]]});
    let (s, b) = post(a, "/api/v1/contacts/bulk-upsert", &write, &upsert);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["summary"]["inserted"], 2);
    let partial = json!({"columns": ["contact_key", "email"], "forceUpdate": false,
                         "contactDatas": [["c-1", "new@x.com"], ["nobody", "n@x.com"]]});
    assert_eq!(
        post(a, "/api/v1/contacts/bulk-upsert", &write, &partial).0,
        207
    );
    let none = json!({"columns": ["contact_key"], "contactDatas": [["nobody"]]});
    assert_eq!(
        post(a, "/api/v1/contacts/bulk-upsert", &write, &none).0,
        400
    );
    let (s, _, b) = http(
        a,
        "POST",
        "/api/v1/contacts/bulk-upsert",
        &[],
        upsert.to_string().as_bytes(),
    );
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    assert_eq!(
        post(a, "/api/v1/contacts/bulk-upsert", "cdb_nope", &upsert).0,
        401
    );
    assert_eq!(
        post(a, "/api/v1/contacts/bulk-upsert", &revoked, &upsert).0,
        401
    );
    let (s, b) = post(a, "/api/v1/contacts/bulk-upsert", &read, &upsert);
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (403, json!("forbidden_role"))
    );
    let (s, _, b) = http(
        a,
        "POST",
        "/api/v1/contacts/bulk-upsert",
        &[("x-api-key", &write), ("x-workspace-slug", "acme")],
        upsert.to_string().as_bytes(),
    );
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (403, json!("forbidden_workspace"))
    );
    let (s, _, b) = http(
        a,
        "POST",
        "/api/v1/contacts/bulk-upsert",
        &[("x-api-key", &write)],
        b"{not json",
    );
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (400, json!("malformed_body"))
    );
    let big = vec![b' '; 100 * 1024];
    assert_eq!(
        http(
            a,
            "POST",
            "/api/v1/contacts/bulk-upsert",
            &[("x-api-key", &write)],
            &big
        )
        .0,
        413
    );
    // A key acts in its own workspace: acme's key sees none of default's contacts.
    let update = json!({"columns": ["contact_key", "name"], "contactDatas": [["c-1", "x"]]});
    assert_eq!(
        post(a, "/api/v1/contacts/bulk-upsert", &acme_key, &update).0,
        400
    );

    // bulk-add: 201 / 207 / 400.
    let add =
        |records: Value| json!({"campaignId": "spring", "useWorkflow": true, "records": records});
    let (s, b) = post(
        a,
        "/api/v1/customers/add/bulk",
        &write,
        &add(json!([{"loan_id": "L1", "phone_number": "+905551112233"}])),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["message"], "Added 1 of 1 records");
    let (s, _) = post(
        a,
        "/api/v1/customers/add/bulk",
        &write,
        &add(json!([{"loan_id": "L2"}, {"loan_id": "L1"}])),
    );
    assert_eq!(s, 207);
    let (s, b) = post(
        a,
        "/api/v1/customers/add/bulk",
        &write,
        &json!({"campaignId": "nope", "records": [{"loan_id": "L9"}]}),
    );
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (400, json!("no_such_campaign"))
    );
    assert_eq!(ws.members("spring").unwrap().len(), 2);

    // customer-import: 202 with a job id; the server's worker runs the job.
    let (s, b) = post(
        a,
        "/api/v1/customers/import",
        &write,
        &json!({"customers": [{"identifier": "cu-1", "email": "cu@x.com"}, {"identifier": "cu-2"}]}),
    );
    assert_eq!(s, 202, "{b}");
    let id = b["jobId"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/jobs/{id}");
    let started = Instant::now();
    let job = loop {
        let (s, _, j) = http(a, "GET", &path, &[("x-api-key", &read)], b"");
        assert_eq!(s, 200, "{j}");
        if j["state"] == "succeeded" {
            break j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the job did not run: {j}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(job["report"]["summary"]["inserted"], 2);
    assert_eq!(
        http(
            a,
            "GET",
            "/api/v1/jobs/00000000-0000-4000-8000-000000000000",
            &[("x-api-key", &read)],
            b""
        )
        .0,
        404
    );
    // A job id of another workspace is not found from this one.
    assert_eq!(
        http(a, "GET", &path, &[("x-api-key", &acme_key)], b"").0,
        404
    );
    drop(server);
    assert!(ws.get("cu-2").unwrap().is_some());
    assert!(db.check().unwrap().is_empty());
}

// A key over its rate gets 429 with Retry-After; another key is not affected.
#[test]
fn per_key_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("c.redb")).unwrap();
    let ws = db.workspace("default").unwrap();
    let (_, one) = ws.create_key(Role::Write).unwrap();
    let (_, two) = ws.create_key(Role::Write).unwrap();
    let server = start_with(db, 64 * 1024, Some(2));
    let a = server.addr;
    let body =
        json!({"columns": ["contact_key"], "insertIfNotExists": true, "contactDatas": [["k"]]});
    assert_eq!(post(a, "/api/v1/contacts/bulk-upsert", &one, &body).0, 200);
    assert_eq!(post(a, "/api/v1/contacts/bulk-upsert", &one, &body).0, 200);
    let auth = format!("Bearer {one}");
    let (s, head, b) = http(
        a,
        "POST",
        "/api/v1/contacts/bulk-upsert",
        &[("Authorization", &auth)],
        body.to_string().as_bytes(),
    );
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (429, json!("rate_limited"))
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 30"),
        "{head}"
    );
    assert_eq!(post(a, "/api/v1/contacts/bulk-upsert", &two, &body).0, 200);
}

#[path = "../../pg/tests/common/mod.rs"]
mod pgdb;

// The server on a PostgreSQL database: requests are served, and when the server
// stops, the last handle (the server's own) closes the connections off the
// runtime's threads (closing a blocking client on them panicked).
#[test]
fn serves_a_postgres_database_and_stops_cleanly() {
    let Some(pg) = pgdb::TestDb::new("serve") else {
        return;
    };
    let db = Database::open(&pg.url).unwrap();
    let (_, write) = db
        .workspace("default")
        .unwrap()
        .create_key(Role::Write)
        .unwrap();
    let server = start(db, 64 * 1024);
    let upsert = json!({"columns": ["contact_key", "email"], "insertIfNotExists": true,
                        "contactDatas": [["c-1", "a@x.com"], ["c-2", "b@x.com"]]});
    let (s, b) = post(server.addr, "/api/v1/contacts/bulk-upsert", &write, &upsert);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["summary"]["inserted"], 2);
    drop(server); // joins the server's thread: a panic there fails the test
    let db = Database::open(&pg.url).unwrap();
    assert_eq!(db.workspace("default").unwrap().count().unwrap(), 2);
}
