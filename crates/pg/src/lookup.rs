//! Set-based reads for planning a request: every contact the request's values
//! can name, fetched in three queries into a [`Prefetched`] that answers the
//! merge from memory.

use contactdb_backend::{Indexed, LookupValues, Prefetched, WorkspaceId, distinct_sorted, names};
use postgres::Client;

use crate::rows::{self, CONTACT_COLUMNS};
use crate::{Error, WorkspaceSql};

/// Of `values` (distinct), those PostgreSQL text can hold: no stored contact has
/// another, so it names nothing and is not queried.
fn storable<'v>(values: &[&'v str]) -> Vec<&'v str> {
    values
        .iter()
        .copied()
        .filter(|v| crate::read::storable(v))
        .collect()
}

// Each lookup is one index probe per value, forced by a subquery that is not
// flattened into a join (`OFFSET 0`): `= ANY` of thousands of values, or a join,
// is planned as a scan of every entry of the workspace once the request's values
// are a sizeable share of it (one index descent per value looks dearer), and the
// scan grows with the workspace. The values go sorted, so that neighbouring
// probes share pages.

/// The identifiers among `$2` (text[]) in workspace `$1`, with their contact ids.
const NAMED_SQL: &str = "SELECT u.ident, i.contact_id FROM unnest($2::text[]) AS u(ident)
     CROSS JOIN LATERAL (SELECT contact_id FROM identifiers
                         WHERE workspace_id = $1 AND ident = u.ident OFFSET 0) AS i";

/// The contacts (`CONTACT_COLUMNS`) of workspace `$1` with the ids `$2` (bigint[]).
fn by_id_sql() -> String {
    format!(
        "SELECT {CONTACT_COLUMNS} FROM unnest($2::bigint[]) AS u(id)
         CROSS JOIN LATERAL (SELECT * FROM contacts
                             WHERE workspace_id = $1 AND contact_id = u.id OFFSET 0) AS c"
    )
}

/// The contacts of workspace `$1` whose `column` (email or gsm) is one of `$2`
/// (text[]): the value, then `CONTACT_COLUMNS`.
fn by_value_sql(column: &str) -> String {
    format!(
        "SELECT u.v, {CONTACT_COLUMNS} FROM unnest($2::text[]) AS u(v)
         CROSS JOIN LATERAL (SELECT * FROM contacts
                             WHERE workspace_id = $1 AND {column} = u.v OFFSET 0) AS c"
    )
}

/// Fetches, in `client`'s current transaction, every contact of `ws` that
/// `values` name.
pub(crate) fn fetch(
    client: &mut Client,
    ws: WorkspaceId,
    values: &LookupValues,
) -> Result<Prefetched, Error> {
    let mut out = Prefetched::default();
    fetch_identifiers(&mut out, client, ws, &values.identifiers)?;
    let (emails, phones) = values.emails_and_phones(|k| out.names_contact(k));
    fetch_by_value(&mut out, client, ws, &emails, Indexed::Email)?;
    fetch_by_value(&mut out, client, ws, &phones, Indexed::Phone)?;
    Ok(out)
}

/// Fetches the contacts `identifiers` name and records, for each identifier,
/// its contact or that it names none.
fn fetch_identifiers(
    out: &mut Prefetched,
    client: &mut Client,
    ws: WorkspaceId,
    identifiers: &[String],
) -> Result<(), Error> {
    let all = distinct_sorted(identifiers);
    for i in &all {
        out.name((*i).to_owned(), None);
    }
    let idents = storable(&all);
    if idents.is_empty() {
        return Ok(());
    }
    let w = ws.sql();
    let named = client.query(NAMED_SQL, &[&w, &idents])?;
    let mut ids: Vec<i64> = Vec::with_capacity(named.len());
    let mut pairs: Vec<(String, i64)> = Vec::with_capacity(named.len());
    for row in &named {
        let id: i64 = row.try_get(1)?;
        ids.push(id);
        pairs.push((row.try_get(0)?, id));
    }
    ids.sort_unstable();
    ids.dedup();
    if !ids.is_empty() {
        for row in &client.query(&by_id_sql(), &[&w, &ids])? {
            let (id, c) = rows::contact_with_id(row, 0)?;
            out.add_contact(id, c);
        }
    }
    for (ident, id) in pairs {
        let id = rows::unsigned("identifiers", id)?;
        match out.contact(id) {
            None => {
                return Err(Error::damaged(
                    "identifiers",
                    format!("{ident:?} points to missing contact id {id}"),
                ));
            }
            Some(c) if !names(c, &ident) => {
                return Err(Error::damaged(
                    "identifiers",
                    format!(
                        "{ident:?} points to contact {:?} (id {id}), which neither has it as key nor as alias",
                        c.key
                    ),
                ));
            }
            Some(_) => out.name(ident, Some(id)),
        }
    }
    Ok(())
}

/// Fetches the contacts whose `field` is one of `values`, and records each
/// value's contacts.
fn fetch_by_value(
    out: &mut Prefetched,
    client: &mut Client,
    ws: WorkspaceId,
    values: &[&str],
    field: Indexed,
) -> Result<(), Error> {
    let all = distinct_sorted(values);
    for v in &all {
        out.found(field, (*v).to_owned(), Vec::new());
    }
    let list = storable(&all);
    if list.is_empty() {
        return Ok(());
    }
    let column = match field {
        Indexed::Email => "email",
        Indexed::Phone => "gsm",
    };
    let mut found: ahash::AHashMap<String, Vec<u64>> = ahash::AHashMap::new();
    for row in &client.query(&by_value_sql(column), &[&ws.sql(), &list])? {
        let value: String = row.try_get(0)?;
        let (id, c) = rows::contact_with_id(row, 1)?;
        found.entry(value).or_default().push(id);
        out.add_contact(id, c);
    }
    for (value, ids) in found {
        out.found(field, value, ids);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use contactdb_merge::Lookup;
    use postgres::types::ToSql;
    use postgres::{Config, NoTls};

    /// The plan of `sql` run with `params`, as text.
    fn plan(c: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
        let rows = c
            .query(&format!("EXPLAIN (COSTS OFF) {sql}"), params)
            .expect("explain");
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A plan that probes an index once per value: no scan of a whole table or
    /// of a workspace's index range.
    fn assert_probes(plan: &str) {
        assert!(
            !plan.contains("Seq Scan") && !plan.contains("Bitmap") && plan.contains("Index"),
            "not one index probe per value:\n{plan}"
        );
    }

    // A request whose values are a large share of the workspace still costs one
    // index probe per value, never a scan of the workspace.
    #[test]
    fn lookups_probe_the_index_once_per_value() {
        let url = match std::env::var("CONTACTDB_TEST_PG_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                eprintln!("skipping: CONTACTDB_TEST_PG_URL not set");
                return;
            }
        };
        let mut admin = Client::connect(&url, NoTls).expect("connect to the test cluster");
        let db = format!("contactdb_test_lookup_plan_{}", std::process::id());
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
            .expect("drop a leftover database");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .expect("create the test database");
        let mut config: Config = url.parse().expect("url");
        config.dbname(&db);
        {
            let mut c = config.connect(NoTls).expect("connect to the test database");
            crate::migrate::migrate(&mut c).expect("migrate");
            c.batch_execute(
                "INSERT INTO contacts (workspace_id, contact_id, key, fields, version,
                                       created_at_us, updated_at_us, email, gsm)
                 SELECT 1, g, 'key-' || g, '\\x010000', 1, 0, 0,
                        'mail' || g || '@example.com', '+44' || g
                 FROM generate_series(1, 20000) AS g;
                 INSERT INTO identifiers (workspace_id, ident, contact_id)
                 SELECT 1, 'key-' || g, g FROM generate_series(1, 20000) AS g;
                 ANALYZE contacts; ANALYZE identifiers;",
            )
            .expect("fill the workspace");
            let w = WorkspaceId(1).sql();
            let keys: Vec<String> = (1..=8000).map(|i| format!("key-{}", i * 2)).collect();
            let ids: Vec<i64> = (1..=8000).map(|i| i * 2).collect();
            let mails: Vec<String> = (1..=8000)
                .map(|i| format!("mail{}@example.com", i * 2))
                .collect();
            let phones: Vec<String> = (1..=8000).map(|i| format!("+44{}", i * 2)).collect();
            assert_probes(&plan(&mut c, NAMED_SQL, &[&w, &keys]));
            assert_probes(&plan(&mut c, &by_id_sql(), &[&w, &ids]));
            assert_probes(&plan(&mut c, &by_value_sql("email"), &[&w, &mails]));
            assert_probes(&plan(&mut c, &by_value_sql("gsm"), &[&w, &phones]));
            // And the probes find what the values name.
            let values = LookupValues {
                identifiers: keys.iter().take(3).cloned().collect(),
                emails: mails.iter().take(2).cloned().collect(),
                phones: vec!["+44none".to_owned()],
                if_unnamed: Vec::new(),
            };
            c.batch_execute("BEGIN").expect("begin");
            let found = fetch(&mut c, WorkspaceId(1), &values).expect("lookup");
            c.batch_execute("ROLLBACK").expect("rollback");
            assert_eq!(found.len(), 3);
            assert_eq!(
                found.by_identifier("key-4").ok().flatten().map(|s| s.id),
                Some(Some(4))
            );
            assert_eq!(
                found.keys_by_email("mail2@example.com").ok(),
                Some(vec!["key-2".to_owned()])
            );
            assert_eq!(found.keys_by_phone("+44none").ok(), Some(Vec::new()));
        }
        admin
            .batch_execute(&format!("DROP DATABASE {db}"))
            .expect("drop the test database");
    }
}
