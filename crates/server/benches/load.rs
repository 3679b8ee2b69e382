//! Load test of `contactdb serve` (not run in CI): concurrent clients posting
//! 1,000-record bulk-upserts and 10,000-record bulk-adds to a server on loopback,
//! against the same requests applied in-process; records/s, latency percentiles,
//! 429s, and a count of every record afterwards.
//!
//! `cargo bench -p contactdb-server --bench load -- [clients=4] [requests_per_client=20]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use contactdb::{BulkRequest, Database, Role};
use contactdb_api::bulk_add::BulkAdd;
use contactdb_api::bulk_upsert::BulkUpsert;
use serde_json::{Value, json};

const UPSERT_ROWS: usize = 1_000;
const ADD_ROWS: usize = 10_000;

fn upsert_body(client: usize, n: usize) -> Value {
    let rows: Vec<Value> = (0..UPSERT_ROWS)
        .map(|i| {
            json!([
                format!("u{client}-{n}-{i}"),
                format!("u{client}.{n}.{i}@x.com"),
                "Name"
            ])
        })
        .collect();
    json!({"columns": ["contact_key", "email", "name"], "insertIfNotExists": true, "contactDatas": rows})
}

fn add_body(client: usize, n: usize) -> Value {
    let records: Vec<Value> = (0..ADD_ROWS)
        .map(|i| json!({"loan_id": format!("a{client}-{n}-{i}"), "first_name": "A", "phone_number": format!("+90555{:07}", (client * 1000 + n) * 10_000 + i), "loan_amount": 100.5}))
        .collect();
    json!({"campaignId": "load", "useWorkflow": true, "records": records})
}

fn post(addr: SocketAddr, path: &str, key: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What the clients over HTTP saw.
#[derive(Default)]
struct Tally {
    /// Latency of every accepted request.
    lat: Vec<Duration>,
    /// 429 answers (retried).
    busy: u64,
    /// Any other failure.
    errors: u64,
    /// Records in accepted requests.
    records: usize,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.lat.extend(other.lat);
        self.busy += other.busy;
        self.errors += other.errors;
        self.records += other.records;
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let clients: usize = args.first().map_or(4, |s| s.parse().unwrap());
    let per_client: usize = args.get(1).map_or(20, |s| s.parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let direct = in_process(&dir.path().join("direct.redb"), clients, per_client);

    // Over HTTP.
    let db = Database::open(dir.path().join("http.redb")).unwrap();
    let ws = db.workspace("default").unwrap();
    ws.create_campaign("load", &[]).unwrap();
    let (_, key) = ws.create_key(Role::Write).unwrap();
    let server = Server::start(db.clone());
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let key = key.clone();
            let addr = server.addr;
            std::thread::spawn(move || client(addr, &key, c, per_client))
        })
        .collect();
    let mut tally = Tally::default();
    for t in threads {
        tally.absorb(t.join().unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.stop();
    let Tally {
        mut lat,
        busy,
        errors,
        records,
    } = tally;
    lat.sort();
    let over_http = records as f64 / elapsed;
    let stored = ws.count().unwrap() as usize;
    println!(
        "clients={clients} requests/client={per_client}: in-process {direct:.0} records/s; over HTTP {over_http:.0} records/s (ratio {:.2}); p50 {:?} p99 {:?}; 429s {busy}; other errors {errors}; records sent {records}, stored {stored}",
        over_http / direct,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    );
    assert_eq!(errors, 0);
    assert_eq!(stored, records, "every record accounted for");
}

/// The same requests as the clients send, applied in-process one after the
/// other, in a database of their own; records/s.
fn in_process(path: &std::path::Path, clients: usize, per_client: usize) -> f64 {
    let db = Database::open(path).unwrap();
    let ws = db.workspace("default").unwrap();
    ws.create_campaign("load", &[]).unwrap();
    let started = Instant::now();
    let mut direct_records = 0usize;
    for c in 0..clients {
        for n in 0..per_client {
            let req: BulkRequest = serde_json::from_value::<BulkUpsert>(upsert_body(c, n))
                .unwrap()
                .to_request()
                .unwrap();
            direct_records += ws.bulk(&req).unwrap().summary.inserted as usize;
            if n % 5 == 0 {
                let add: BulkAdd = serde_json::from_value(add_body(c, n)).unwrap();
                if n == 0 && c == 0 {
                    for spec in add.columns_needed() {
                        ws.declare_column(spec).unwrap();
                    }
                }
                direct_records += ws
                    .bulk(&add.to_request().unwrap())
                    .unwrap()
                    .summary
                    .inserted as usize;
            }
        }
    }
    direct_records as f64 / started.elapsed().as_secs_f64()
}

/// `contactdb_server::serve` on a loopback port, in a thread of its own.
struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(db: Database) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let config = contactdb_server::Config::default();
                contactdb_server::serve(db, listener, config, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Server { addr, stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

/// One client: `per_client` bulk-upserts (a 429 is retried), and a bulk-add
/// after every fifth.
fn client(addr: SocketAddr, key: &str, c: usize, per_client: usize) -> Tally {
    let mut t = Tally::default();
    for n in 0..per_client {
        let body = upsert_body(c, n).to_string();
        loop {
            let start = Instant::now();
            match post(addr, "/api/v1/contacts/bulk-upsert", key, body.as_bytes()) {
                200 => {
                    t.lat.push(start.elapsed());
                    t.records += UPSERT_ROWS;
                    break;
                }
                429 => {
                    t.busy += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    t.errors += 1;
                    break;
                }
            }
        }
        if n % 5 == 0 {
            let body = add_body(c, n).to_string();
            let start = Instant::now();
            match post(addr, "/api/v1/customers/add/bulk", key, body.as_bytes()) {
                201 => {
                    t.lat.push(start.elapsed());
                    t.records += ADD_ROWS;
                }
                _ => t.errors += 1,
            }
        }
    }
    t
}
