//! Versioned schema migrations: `migrations/NNNN_name.sql`, embedded, applied in
//! order, each in its own transaction together with its row in
//! `schema_migrations`, under an advisory lock so that processes connecting at
//! once migrate one after the other.

use postgres::Client;

use crate::Error;

/// Every migration: `(version, name, sql)`, in order.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "campaigns_keys",
        include_str!("../migrations/0002_campaigns_keys.sql"),
    ),
    (
        3,
        "api_key_hashes",
        include_str!("../migrations/0003_api_key_hashes.sql"),
    ),
];

/// The advisory lock key serializing migrations (any value outside the writer
/// locks' namespace).
const MIGRATION_LOCK: i64 = 0x6364_625f_6d69_6772; // "cdb_migr"

/// The newest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies every migration the database lacks; returns how many ran.
pub(crate) fn migrate(client: &mut Client) -> Result<usize, Error> {
    let mut ran = 0;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let found: Option<i32> = tx
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .try_get(0)?;
    let found = found.unwrap_or(0);
    if found > latest_version() {
        return Err(Error::SchemaTooNew {
            found,
            known: latest_version(),
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )?;
        ran += 1;
    }
    tx.commit()?;
    Ok(ran)
}

/// The schema version of the database (0 before the first migration).
pub(crate) fn current_version(client: &mut Client) -> Result<i32, Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .try_get(0)?;
    Ok(v.unwrap_or(0))
}
