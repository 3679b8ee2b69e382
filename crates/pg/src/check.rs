//! [`PgStore::check`]: the invariants the PostgreSQL store keeps beyond its
//! constraints, checked with one query each in one read-only snapshot.

use contactdb_backend::Problem;

use crate::{Error, PgStore};

/// Most problems one invariant reports.
const PER_INVARIANT: i64 = 100;

/// Each invariant: the table it concerns, what a row of the query means, and the
/// query (it returns `workspace_id` and a readable key of each offending row).
const INVARIANTS: [(&str, &str, &str); 11] = [
    (
        "workspaces",
        "the workspace has no counters row",
        "SELECT w.workspace_id, w.slug FROM workspaces w
         LEFT JOIN counters c USING (workspace_id) WHERE c.workspace_id IS NULL",
    ),
    (
        "identifiers",
        "names a contact id that does not exist",
        "SELECT i.workspace_id, i.ident FROM identifiers i
         LEFT JOIN contacts c USING (workspace_id, contact_id) WHERE c.contact_id IS NULL",
    ),
    (
        "identifiers",
        "is neither the key nor an alias of the contact it names",
        "SELECT i.workspace_id, i.ident FROM identifiers i
         JOIN contacts c USING (workspace_id, contact_id)
         WHERE c.key <> i.ident AND NOT (i.ident = ANY (c.aliases))",
    ),
    (
        "contacts",
        "its key or an alias does not resolve to it",
        "SELECT c.workspace_id, x.ident FROM contacts c
         CROSS JOIN LATERAL unnest(array_append(c.aliases, c.key)) AS x(ident)
         LEFT JOIN identifiers i
           ON i.workspace_id = c.workspace_id AND i.ident = x.ident AND i.contact_id = c.contact_id
         WHERE i.ident IS NULL",
    ),
    (
        "counters",
        "the contact count differs from the contacts stored",
        "SELECT k.workspace_id, k.contacts::text || ' counted, ' || count(c.contact_id)::text || ' stored'
         FROM counters k LEFT JOIN contacts c USING (workspace_id)
         GROUP BY k.workspace_id, k.contacts HAVING k.contacts <> count(c.contact_id)",
    ),
    (
        "counters",
        "the next contact id is not above every contact id",
        "SELECT k.workspace_id, k.next_contact_id::text FROM counters k
         JOIN contacts c USING (workspace_id)
         GROUP BY k.workspace_id, k.next_contact_id HAVING max(c.contact_id) >= k.next_contact_id",
    ),
    (
        "feed",
        "holds a sequence number the workspace has not given out",
        "SELECT f.workspace_id, f.seq::text FROM feed f JOIN counters k USING (workspace_id)
         WHERE f.seq > k.feed_seq OR f.seq < 1",
    ),
    (
        "campaign_members",
        "names a contact or campaign that does not exist",
        "SELECT m.workspace_id, m.campaign::text || '/' || m.contact_id::text FROM campaign_members m
         LEFT JOIN contacts c USING (workspace_id, contact_id)
         LEFT JOIN campaigns p ON p.workspace_id = m.workspace_id AND p.number = m.campaign
         WHERE c.contact_id IS NULL OR p.number IS NULL",
    ),
    (
        "api_keys",
        "the key's token hash does not name it",
        "SELECT k.workspace_id, k.id::text FROM api_keys k
         LEFT JOIN api_key_hashes h ON h.token_hash = k.token_hash
         WHERE h.workspace_id IS DISTINCT FROM k.workspace_id OR h.id IS DISTINCT FROM k.id",
    ),
    (
        "api_key_hashes",
        "names a key that does not exist",
        "SELECT h.workspace_id, h.id::text FROM api_key_hashes h
         LEFT JOIN api_keys k ON k.workspace_id = h.workspace_id AND k.id = h.id
         WHERE k.id IS NULL",
    ),
    (
        "campaigns",
        "the member count differs from the members stored",
        "SELECT p.workspace_id, p.name FROM campaigns p
         LEFT JOIN campaign_members m ON m.workspace_id = p.workspace_id AND m.campaign = p.number
         GROUP BY p.workspace_id, p.name, p.members HAVING p.members <> count(m.contact_id)",
    ),
];

impl PgStore {
    /// Checks the invariants the schema's constraints do not hold (identifiers and
    /// contacts name each other, counters match what is stored, feed sequence
    /// numbers were given out, campaign members exist, every API key and its token
    /// hash name each other), in one read-only snapshot;
    /// an empty list means consistent. At most 100 problems per invariant.
    pub fn check(&self) -> Result<Vec<Problem>, Error> {
        let mut c = self.raw_client()?;
        let mut tx = c
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()?;
        let mut out = Vec::new();
        for (table, message, sql) in INVARIANTS {
            let rows = tx.query(
                &format!("SELECT * FROM ({sql}) AS bad LIMIT {PER_INVARIANT}"),
                &[],
            )?;
            for r in rows {
                let ws: i64 = r.try_get(0)?;
                let key: String = r.try_get(1)?;
                out.push(Problem {
                    table,
                    key: format!("workspace {ws}: {key}"),
                    message: message.to_owned(),
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }
}
