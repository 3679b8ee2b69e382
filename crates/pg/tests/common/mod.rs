//! A database of its own for each test, in the cluster `CONTACTDB_TEST_PG_URL`
//! names (tests skip, saying why, when it is not set).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use contactdb_pg::{PgOptions, PgStore};
use postgres::{Client, NoTls};

pub const URL_VAR: &str = "CONTACTDB_TEST_PG_URL";

/// The cluster's URL, or `None` after printing why the test skips.
pub fn cluster_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipping: {URL_VAR} not set");
            None
        }
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database created for one test and dropped when it ends.
pub struct TestDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// A new empty database, or `None` (skip) without a cluster.
    pub fn new(tag: &str) -> Option<TestDb> {
        let admin_url = cluster_url()?;
        let name = format!(
            "contactdb_test_{tag}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = Client::connect(&admin_url, NoTls).expect("connect to the test cluster");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop a leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let url = with_dbname(&admin_url, &name);
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    pub fn store(&self) -> PgStore {
        PgStore::connect(&self.url, &PgOptions::default()).expect("connect")
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).expect("connect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.admin_url, NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A deterministic PRNG (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}
