//! [`Workspace::bulk_each`]: a sequence of bulk requests written in transactions of
//! many whole requests each, with bounded memory.
//!
//! Committing every request on its own costs a commit (and a wait for the disk)
//! per request and rewrites the pages a request changed each time; one transaction
//! for a whole import would need every earlier request's changes in memory to plan
//! the later ones. Here the requests of one transaction (a *group*) are all planned
//! against the database as the group began: a read begun inside the group's write
//! transaction, before it wrote. A request's plan is what it would be after the
//! requests before it in the group when those changed nothing the plan looked at:
//! - every question the plan asked the lookup (a key or alias, an email, a phone)
//!   and the key of every contact it got back is remembered as a hash;
//! - every key, alias, email and phone the group's writes had before or have after
//!   is hashed the same way;
//! - a lookup's answer changes only when a contact holding the asked value, or a
//!   contact it returned, changes; so when none of the plan's hashes is among the
//!   group's, the plan stands.
//!
//! Otherwise the group commits, a new one begins, and the request is planned again
//! against the state after it. The group also commits once it holds
//! `group_records` records, once what it holds until its commit (its requests'
//! reports and the hashes of what it touched) takes about twice the database's page
//! cache size in memory, and at the end. Requests naming a campaign or carrying
//! a `request_id` are applied on their own, as [`Workspace::bulk`] applies them.

use std::borrow::Cow;
use std::sync::Mutex;

use ahash::AHashSet;
use contactdb_backend::{Failure, Origin, PlanLookup, Wait, WriteTxn, apply_plan, trigger_json};
use contactdb_merge::{ContactWrite, Lookup, Plan, Stored};
use contactdb_policy::request::prepare;
use contactdb_policy::{
    BulkRequest, Catalog, Contact, RecordError, RecordResult, Report, Status, Warning,
};

use crate::database::{Inner, now_us};
use crate::error::Error;
use crate::workspace::{Workspace, run_plan};

/// What a value is, for its hash: the same text as a key and as an email are
/// different values.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    Identifier = 1,
    Email = 2,
    Phone = 3,
}

/// The hasher of [`hash`]. Fixed seeds: the hashes are only compared within
/// one call of `bulk_each`, and a collision costs a commit, never a wrong plan.
const VALUE_HASHER: ahash::RandomState = ahash::RandomState::with_seeds(
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
);

fn hash(kind: Kind, value: &str) -> u64 {
    VALUE_HASHER.hash_one((kind as u8, value))
}

/// A lookup that remembers (as hashes) every value it was asked for and the key
/// of every contact it answered with.
struct Recording<'a> {
    inner: &'a PlanLookup<'static>,
    seen: Mutex<Vec<u64>>,
}

impl Recording<'_> {
    fn note(&self, kind: Kind, asked: &str, keys: impl Iterator<Item = u64>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(hash(kind, asked));
        seen.extend(keys);
    }

    fn note_found(&self, kind: Kind, asked: &str, found: &[Stored]) {
        let keys = found.iter().map(|s| hash(Kind::Identifier, &s.contact.key));
        self.note(kind, asked, keys);
    }

    fn note_keys(&self, kind: Kind, asked: &str, keys: &[String]) {
        self.note(kind, asked, keys.iter().map(|k| hash(Kind::Identifier, k)));
    }
}

impl Lookup for Recording<'_> {
    type Error = Failure;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, Failure> {
        let found = self.inner.by_identifier(id)?;
        self.note_found(Kind::Identifier, id, found.as_slice());
        Ok(found)
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Failure> {
        let keys = self.inner.keys_by_email(email)?;
        self.note_keys(Kind::Email, email, &keys);
        Ok(keys)
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Failure> {
        let keys = self.inner.keys_by_phone(gsm)?;
        self.note_keys(Kind::Phone, gsm, &keys);
        Ok(keys)
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<Stored>, Failure> {
        let found = self.inner.contacts_by_email(email)?;
        self.note_found(Kind::Email, email, &found);
        Ok(found)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Stored>, Failure> {
        let found = self.inner.contacts_by_phone(gsm)?;
        self.note_found(Kind::Phone, gsm, &found);
        Ok(found)
    }
}

/// Adds the hashes of every key, alias, email and phone the writes had before or
/// have after.
fn touch(set: &mut AHashSet<u64>, writes: &[ContactWrite]) {
    let mut add = |c: &Contact| {
        set.insert(hash(Kind::Identifier, &c.key));
        for a in &c.aliases {
            set.insert(hash(Kind::Identifier, a));
        }
        if let Some(e) = c.email() {
            set.insert(hash(Kind::Email, e));
        }
        if let Some(g) = c.gsm() {
            set.insert(hash(Kind::Phone, g));
        }
    };
    for w in writes {
        if let Some(b) = &w.before {
            add(&b.contact);
        }
        add(&w.after);
    }
}

/// About the bytes `r` holds on the heap: its lists and their texts.
fn held_bytes(r: &Report) -> usize {
    let text = |t: &Option<String>| t.as_ref().map_or(0, String::capacity);
    let results: usize = r
        .results
        .iter()
        .map(|x| text(&x.key) + text(&x.contact_key))
        .sum();
    let owned = |c: &Cow<'static, str>| match c {
        Cow::Owned(t) => t.capacity(),
        Cow::Borrowed(_) => 0,
    };
    let warnings: usize = r
        .warnings
        .iter()
        .map(|w| text(&w.key) + w.column.as_ref().map_or(0, owned) + owned(&w.message))
        .sum();
    let errors: usize = r
        .errors
        .iter()
        .map(|e| {
            text(&e.key)
                + e.message.capacity()
                + e.candidates.iter().map(String::capacity).sum::<usize>()
        })
        .sum();
    r.results.capacity() * size_of::<RecordResult>()
        + r.warnings.capacity() * size_of::<Warning>()
        + r.errors.capacity() * size_of::<RecordError>()
        + results
        + warnings
        + errors
}

/// About the bytes a set of hashes takes (a bucket: the hash and a control byte).
fn set_bytes(set: &AHashSet<u64>) -> usize {
    set.capacity() * (size_of::<u64>() + 1)
}

/// The open transaction of a group and what its requests left.
struct Group<'a> {
    write: Box<dyn WriteTxn + 'a>,
    catalog: Catalog,
    /// The contacts as the group began.
    lookup: PlanLookup<'static>,
    touched: AHashSet<u64>,
    records: usize,
    /// Reports of the group's requests, handed out once it commits.
    reports: Vec<Report>,
    /// About the bytes `reports` hold.
    held: usize,
}

/// What [`Workspace::bulk_each`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EachSummary {
    /// Requests applied (their reports handed out).
    pub requests: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Requests planned again because a request before them in their group
    /// changed something their first plan looked at.
    pub replanned: u64,
}

impl Workspace {
    /// Applies `batches` in order, each as one request, with the reports and the
    /// final state that [`Workspace::bulk`] called on each in turn would give, and
    /// hands each report to `on_report`. Faster than that loop: the requests are
    /// written in transactions of whole requests, up to `group_records` records
    /// each (a request is never split; `0` or `1`: one request per transaction),
    /// so a crash keeps a prefix of the requests, each all or nothing. Reports are
    /// handed out once their transaction has committed; a transaction also commits
    /// once the reports it holds (with a record of the values it changed) take
    /// about twice the database's page cache size
    /// ([`Builder::cache_size_bytes`](crate::Builder::cache_size_bytes)), so memory
    /// stays bounded by the cache, not by `group_records`. Requests naming a
    /// campaign or carrying a `request_id` are applied on their own.
    ///
    /// Stops at the first error (of `batches`, of `on_report`, or of a request: a
    /// request-level problem as [`Error::Request`]) and returns it. The requests
    /// before an error of `batches` or a request-level problem are committed
    /// first; after a storage failure, the requests whose reports were handed out
    /// stay applied and the others are not.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// // Three batches of 100 upserts; each batch after the first repeats 99 keys.
    /// let batches = (0..3).map(|b| {
    ///     let records = (b..b + 100).map(|i| Record::new(format!("k{i}")).into()).collect();
    ///     Ok::<_, contactdb::Error>(BulkRequest::new(Mode::Upsert, records))
    /// });
    /// let mut inserted = Vec::new();
    /// let summary = ws.bulk_each(batches, 100_000, |r| {
    ///     inserted.push(r.summary.inserted);
    ///     Ok(())
    /// })?;
    /// assert_eq!(inserted, [100, 1, 1]);
    /// assert_eq!(summary.requests, 3);
    /// assert_eq!(ws.count()?, 102);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bulk_each<E: From<Error>>(
        &self,
        batches: impl Iterator<Item = Result<BulkRequest, E>>,
        group_records: usize,
        on_report: impl FnMut(&Report) -> Result<(), E>,
    ) -> Result<EachSummary, E> {
        self.bulk_each_trimmed(batches, group_records, |_| {}, on_report)
    }

    /// [`Workspace::bulk_each`], with `trim` called on each report as soon as its
    /// request is applied, before the report waits for its transaction's commit;
    /// `on_report` gets the report as `trim` left it. What `trim` removes takes no
    /// memory while the transaction is open, so when `on_report` reads only part
    /// of each report (say the summary and the errors), dropping the rest lets a
    /// transaction hold many more records in the same memory (a result is about
    /// 64 bytes and a warning about 88, plus their keys).
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let batches = (0..3).map(|b| {
    ///     let records = (b * 100..b * 100 + 100).map(|i| Record::new(format!("k{i}")).into()).collect();
    ///     Ok::<_, contactdb::Error>(BulkRequest::new(Mode::Upsert, records))
    /// });
    /// let mut inserted = 0;
    /// ws.bulk_each_trimmed(batches, 100_000, |r| r.results = Vec::new(), |r| {
    ///     assert!(r.results.is_empty());
    ///     inserted += r.summary.inserted;
    ///     Ok(())
    /// })?;
    /// assert_eq!(inserted, 300);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bulk_each_trimmed<E: From<Error>>(
        &self,
        batches: impl Iterator<Item = Result<BulkRequest, E>>,
        group_records: usize,
        mut trim: impl FnMut(&mut Report),
        mut on_report: impl FnMut(&Report) -> Result<(), E>,
    ) -> Result<EachSummary, E> {
        let inner = &self.db().inner;
        let mut summary = EachSummary::default();
        let mut group: Option<Group<'_>> = None;
        let hand_out = |group: Option<Group<'_>>,
                        summary: &mut EachSummary,
                        on_report: &mut dyn FnMut(&Report) -> Result<(), E>|
         -> Result<(), E> {
            let Some(mut g) = group else { return Ok(()) };
            g.write
                .prune_requests(now_us().saturating_sub(inner.retention_us))
                .map_err(Error::from)?;
            g.write.commit().map_err(Error::from)?;
            summary.commits += 1;
            for r in &g.reports {
                summary.requests += 1;
                on_report(r)?;
            }
            Ok(())
        };
        for req in batches {
            let req = match req {
                Ok(r) => r,
                Err(e) => {
                    // Bad input ends the sequence; what came before it stays.
                    hand_out(group.take(), &mut summary, &mut on_report)?;
                    return Err(e);
                }
            };
            let groupable = req.campaign.is_none() && req.request_id.is_none() && group_records > 1;
            if groupable && group.is_none() {
                group = self.begin_group(&req, inner)?;
            }
            let Some(g) = group.as_mut().filter(|_| groupable) else {
                // On its own: it names a campaign or carries a request id, or the
                // backend cannot plan a group.
                hand_out(group.take(), &mut summary, &mut on_report)?;
                let mut report = self.bulk_with(&req, Wait::Block)?;
                summary.commits += u64::from(report.status != Status::Rejected && !report.replayed);
                summary.requests += 1;
                trim(&mut report);
                on_report(&report)?;
                continue;
            };
            let planned = match plan_in(inner, &req, &g.catalog, &g.lookup) {
                Ok(p) => p,
                Err(e @ Error::Request(_)) => {
                    hand_out(group.take(), &mut summary, &mut on_report)?;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            let planned = if planned.seen.iter().any(|h| g.touched.contains(h)) {
                // An earlier request of the group changed what this plan read:
                // commit the group and plan again after it (against its columns
                // too: another writer may have changed them meanwhile).
                hand_out(group.take(), &mut summary, &mut on_report)?;
                summary.replanned += 1;
                group = self.begin_group(&req, inner)?;
                let Some(g) = group.as_ref() else {
                    return Err(Error::internal("a group could not begin again").into());
                };
                plan_in(inner, &req, &g.catalog, &g.lookup)?
            } else {
                planned
            };
            let Some(g) = group.as_mut() else {
                return Err(Error::internal("no group").into());
            };
            let Planned {
                plan, now_us: now, ..
            } = planned;
            if plan.report.status != Status::Rejected {
                let trigger = trigger_json(&req).map_err(Error::from)?;
                apply_plan(
                    &mut *g.write,
                    &plan,
                    &Origin {
                        campaign: None,
                        trigger: trigger.as_deref(),
                        job: None,
                        now_us: now,
                        trim_before_us: now.saturating_sub(inner.feed_retention_us),
                    },
                )
                .map_err(Error::from)?;
                touch(&mut g.touched, &plan.writes);
            }
            g.records += req.records.len();
            // Held until the group commits: without the slack its lists grew with.
            let mut report = plan.report;
            trim(&mut report);
            report.results.shrink_to_fit();
            report.errors.shrink_to_fit();
            report.warnings.shrink_to_fit();
            g.held += held_bytes(&report);
            g.reports.push(report);
            if g.records >= group_records || g.held + set_bytes(&g.touched) >= inner.group_bytes_max
            {
                hand_out(group.take(), &mut summary, &mut on_report)?;
            }
        }
        hand_out(group.take(), &mut summary, &mut on_report)?;
        Ok(summary)
    }

    /// Begins a group's transaction, with a lookup of the state it starts from;
    /// `None` when the backend gives no such lookup.
    fn begin_group<'a>(
        &'a self,
        req: &BulkRequest,
        inner: &'a Inner,
    ) -> Result<Option<Group<'a>>, Error> {
        let mut write = inner.writer()?.begin_write(self.id(), Wait::Block)?;
        let catalog = Catalog::new(&write.columns()?);
        let records = u64::try_from(req.records.len()).unwrap_or(u64::MAX);
        let lookup = write.lookup_ahead(records)?;
        Ok(lookup.map(|lookup| Group {
            write,
            catalog,
            lookup,
            touched: AHashSet::new(),
            records: 0,
            reports: Vec::new(),
            held: 0,
        }))
    }
}

/// A request's plan, made through a recording lookup.
struct Planned {
    plan: Plan,
    /// What it looked at (sorted hashes).
    seen: Vec<u64>,
    /// Its clock.
    now_us: i64,
}

/// Prepares and plans `req` through `lookup` (a group's starting state) with the
/// group's `catalog`, remembering what the plan looked at.
fn plan_in(
    inner: &Inner,
    req: &BulkRequest,
    catalog: &Catalog,
    lookup: &PlanLookup<'static>,
) -> Result<Planned, Error> {
    let prepared = prepare(req, catalog, &inner.limits).map_err(Error::Request)?;
    let now = now_us();
    let recording = Recording {
        inner: lookup,
        seen: Mutex::default(),
    };
    let plan = run_plan(inner, req, &prepared, catalog, &recording, now)?;
    let mut seen = recording
        .seen
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    seen.sort_unstable();
    seen.dedup();
    Ok(Planned {
        plan,
        seen,
        now_us: now,
    })
}
