//! Set-based reads for planning a request: every contact the request's values
//! can name, fetched in three queries, answered from memory.

use ahash::{AHashMap, AHashSet};
use contactdb_backend::WorkspaceId;
use contactdb_merge::{Lookup, Stored};
use contactdb_policy::record::normalize_record;
use contactdb_policy::{BulkRequest, Catalog, Contact, Prepared};
use postgres::Client;
use rayon::prelude::*;

use crate::rows::{self, CONTACT_COLUMNS};
use crate::{Error, WorkspaceSql};

/// The values a request may look up: keys and aliases (one namespace), emails
/// and phones, normalized as the merge sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupValues {
    /// Keys and `new_contact_key`s.
    pub identifiers: Vec<String>,
    /// Normalized emails (only when the request matches on email).
    pub emails: Vec<String>,
    /// Normalized gsm numbers (only when the request matches on phone).
    pub phones: Vec<String>,
}

impl LookupValues {
    /// Every value the merge of `req` may ask about: the key and new key of each
    /// valid record, and its email and phone when the request matches on them
    /// (never a value PostgreSQL text cannot hold). Normalizes the records (in
    /// parallel) to find them.
    pub fn of_request(req: &BulkRequest, prepared: &Prepared, catalog: &Catalog) -> Self {
        let per_record: Vec<[Option<String>; 4]> = req
            .records
            .par_iter()
            .enumerate()
            .map(|(i, raw)| {
                let rec =
                    normalize_record(u32::try_from(i).unwrap_or(u32::MAX), raw, catalog, prepared);
                if rec.is_invalid() {
                    return [None, None, None, None];
                }
                let email = prepared
                    .match_on
                    .email
                    .then(|| rec.email().map(str::to_owned))
                    .flatten();
                let gsm = prepared
                    .match_on
                    .phone
                    .then(|| rec.gsm().map(str::to_owned))
                    .flatten();
                [rec.key, rec.new_key, email, gsm]
            })
            .collect();
        let mut v = LookupValues::default();
        for [key, new_key, email, gsm] in per_record {
            let ok = |x: Option<String>| x.filter(|s| crate::read::storable(s));
            v.identifiers.extend(ok(key));
            v.identifiers.extend(ok(new_key));
            v.emails.extend(ok(email));
            v.phones.extend(ok(gsm));
        }
        v
    }

    /// Adds `other`'s values.
    pub fn extend(&mut self, other: LookupValues) {
        self.identifiers.extend(other.identifiers);
        self.emails.extend(other.emails);
        self.phones.extend(other.phones);
    }
}

/// The committed contacts a set of values names, as one transaction saw them:
/// a [`Lookup`] for the merge. It answers only for the values it was built for
/// ([`Error::NotPrefetched`] otherwise, and a failed assertion in debug builds).
#[derive(Debug, Default)]
pub struct PgLookup {
    contacts: AHashMap<u64, Contact>,
    /// Every identifier asked, with the contact it names (if any).
    idents: AHashMap<String, Option<u64>>,
    /// Every email asked, with its contacts sorted by key.
    emails: AHashMap<String, Vec<u64>>,
    /// Every phone asked, likewise.
    phones: AHashMap<String, Vec<u64>>,
}

/// `values` once each, sorted (index probes in key order share pages).
fn dedup(values: &[String]) -> Vec<&str> {
    let mut set: AHashSet<&str> = AHashSet::with_capacity(values.len());
    let mut out: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| set.insert(v))
        .collect();
    out.sort_unstable();
    out
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

impl PgLookup {
    /// Fetches, in `client`'s current transaction, every contact of `ws` that
    /// `values` name.
    pub(crate) fn fetch(
        client: &mut Client,
        ws: WorkspaceId,
        values: &LookupValues,
    ) -> Result<PgLookup, Error> {
        let mut out = PgLookup::default();
        out.fetch_identifiers(client, ws, &values.identifiers)?;
        out.fetch_by_value(client, ws, &values.emails, false)?;
        out.fetch_by_value(client, ws, &values.phones, true)?;
        Ok(out)
    }

    /// Fetches the contacts `identifiers` name and records, for each identifier,
    /// its contact or that it names none.
    fn fetch_identifiers(
        &mut self,
        client: &mut Client,
        ws: WorkspaceId,
        identifiers: &[String],
    ) -> Result<(), Error> {
        let idents = dedup(identifiers);
        self.idents.reserve(idents.len());
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
        self.fetch_by_id(client, ws, &ids)?;
        for (ident, id) in pairs {
            let id = rows::unsigned("identifiers", id)?;
            self.check_named(&ident, id)?;
            self.idents.insert(ident, Some(id));
        }
        for i in idents {
            self.idents.entry(i.to_owned()).or_insert(None);
        }
        Ok(())
    }

    /// Fetches the contacts with internal ids `ids`.
    fn fetch_by_id(
        &mut self,
        client: &mut Client,
        ws: WorkspaceId,
        ids: &[i64],
    ) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let rows = client.query(&by_id_sql(), &[&ws.sql(), &ids])?;
        for row in &rows {
            let (id, c) = rows::contact_with_id(row, 0)?;
            self.contacts.insert(id, c);
        }
        Ok(())
    }

    /// Checks that identifier `ident`'s contact `id` was fetched and has it as
    /// key or alias.
    fn check_named(&self, ident: &str, id: u64) -> Result<(), Error> {
        let Some(c) = self.contacts.get(&id) else {
            return Err(Error::damaged(
                "identifiers",
                format!("{ident:?} points to missing contact id {id}"),
            ));
        };
        if c.key != ident && !c.aliases.iter().any(|a| a == ident) {
            return Err(Error::damaged(
                "identifiers",
                format!(
                    "{ident:?} points to contact {:?} (id {id}), which neither has it as key nor as alias",
                    c.key
                ),
            ));
        }
        Ok(())
    }

    /// Fetches the contacts whose email (`phone` false) or gsm (`phone` true) is
    /// one of `values`, and records each value's contacts sorted by key.
    fn fetch_by_value(
        &mut self,
        client: &mut Client,
        ws: WorkspaceId,
        values: &[String],
        phone: bool,
    ) -> Result<(), Error> {
        let list = dedup(values);
        if list.is_empty() {
            return Ok(());
        }
        let column = if phone { "gsm" } else { "email" };
        let rows = client.query(&by_value_sql(column), &[&ws.sql(), &list])?;
        let map = if phone {
            &mut self.phones
        } else {
            &mut self.emails
        };
        map.reserve(list.len());
        for v in list {
            map.insert(v.to_owned(), Vec::new());
        }
        for row in &rows {
            let value: String = row.try_get(0)?;
            let (id, c) = rows::contact_with_id(row, 1)?;
            map.entry(value).or_default().push(id);
            self.contacts.entry(id).or_insert(c);
        }
        let contacts = &self.contacts;
        for ids in map.values_mut() {
            ids.sort_by(|a, b| {
                let key = |id| contacts.get(id).map(|c: &Contact| c.key.as_str());
                key(a).cmp(&key(b))
            });
        }
        Ok(())
    }

    /// Number of distinct contacts fetched.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    /// Whether no contact was fetched.
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    /// The contact with internal id `id`, if fetched.
    fn stored(&self, id: u64) -> Option<Stored> {
        self.contacts.get(&id).map(|c| Stored {
            id: Some(id),
            contact: c.clone(),
        })
    }

    fn contacts_of(&self, ids: &[u64]) -> Vec<Stored> {
        ids.iter().filter_map(|id| self.stored(*id)).collect()
    }

    fn by_value(
        &self,
        map: &AHashMap<String, Vec<u64>>,
        what: &'static str,
        value: &str,
    ) -> Result<Vec<Stored>, Error> {
        match map.get(value) {
            Some(ids) => Ok(self.contacts_of(ids)),
            None => Err(not_prefetched(what, value)),
        }
    }
}

fn not_prefetched(what: &'static str, value: &str) -> Error {
    debug_assert!(false, "the lookup was not built for {what} {value:?}");
    Error::NotPrefetched {
        what,
        value: value.to_owned(),
    }
}

impl Lookup for PgLookup {
    type Error = Error;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, Error> {
        match self.idents.get(id) {
            Some(Some(cid)) => Ok(self.stored(*cid)),
            Some(None) => Ok(None),
            None => Err(not_prefetched("identifier", id)),
        }
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .contacts_by_email(email)?
            .into_iter()
            .map(|s| s.contact.key)
            .collect())
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .contacts_by_phone(gsm)?
            .into_iter()
            .map(|s| s.contact.key)
            .collect())
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<Stored>, Error> {
        self.by_value(&self.emails, "email", email)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Stored>, Error> {
        self.by_value(&self.phones, "phone", gsm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            };
            c.batch_execute("BEGIN").expect("begin");
            let found = PgLookup::fetch(&mut c, WorkspaceId(1), &values).expect("lookup");
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
