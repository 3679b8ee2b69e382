//! Planning a request: parallel normalization and snapshot lookups (phase 1), and
//! one sequential resolution pass over an in-request overlay (phase 2) that
//! follows phase 1 chunk by chunk and builds the report as it goes.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use ahash::{AHashMap, AHashSet};

use contactdb_policy::record::{NameCache, normalize_record_with};
use contactdb_policy::report::RequestErrorInfo;
use contactdb_policy::rules::merge_fields;
use contactdb_policy::{
    BulkRequest, Catalog, Contact, ErrorCode, FieldId, MatchedBy, Mode, NormalizedRecord,
    OnDuplicate, OnInvalid, Outcome, Prepared, RecordError, RecordResult, Report, Status, Summary,
    Value, Warning, WarningCode,
};

use crate::identity;
pub use crate::identity::LeftOut;
use crate::{ContactWrite, Lookup, Plan, Reached, Stored};

/// Plans `req` (already checked by [`contactdb_policy::request::prepare`]) against
/// `lookup`, on the current rayon pool. `now_us` stamps created/updated contacts.
pub fn plan<L: Lookup>(
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    now_us: i64,
) -> Result<Plan, L::Error> {
    plan_with_pool(None, req, prepared, catalog, lookup, now_us)
}

/// As [`plan`], running phase 1 on `pool` when given. The result never depends on
/// the pool's size.
///
/// Phase 1 and the first resolution pass overlap: the records are cut into chunks
/// of [`CHUNK_RECORDS_DEFAULT`], which up to `threads - 1` helper tasks on the pool
/// normalize and look up in order while the calling thread resolves the chunks before
/// them; whenever the next chunk is not ready, the calling thread takes an unclaimed
/// chunk itself rather than wait. So the sequential pass never waits on the parallel
/// one while work is left, and `threads` threads (the caller among them) share the
/// request.
pub fn plan_with_pool<L: Lookup>(
    pool: Option<&rayon::ThreadPool>,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    now_us: i64,
) -> Result<Plan, L::Error> {
    plan_chunked(
        pool,
        CHUNK_RECORDS_DEFAULT,
        req,
        prepared,
        catalog,
        lookup,
        now_us,
    )
}

/// Records per unit of phase-1 work: small enough that the last chunk a helper is
/// still on costs the calling thread little waiting, large enough that handing one
/// over (one channel message) is noise.
pub const CHUNK_RECORDS_DEFAULT: usize = 64;

/// As [`plan_with_pool`], handing phase 1 over in chunks of `chunk_records` records
/// (at least 1). The result never depends on it; tests use small chunks to put
/// chunk boundaries between records that interact.
pub fn plan_chunked<L: Lookup>(
    pool: Option<&rayon::ThreadPool>,
    chunk_records: usize,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    now_us: i64,
) -> Result<Plan, L::Error> {
    plan_part(
        pool,
        chunk_records,
        req,
        prepared,
        catalog,
        lookup,
        now_us,
        &Part::default(),
    )
}

/// Where a part of a larger request stands in it: for a request applied in parts
/// that commit one after the other (a job), each part planned against the state
/// the parts before it committed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Part<'a> {
    /// The index, in the whole request, of this part's first record: the report
    /// numbers records from it.
    pub first_index: u32,
    /// Which of this part's records the duplicate policy leaves out, as
    /// [`left_out`] decided it once for the whole request; `None` decides it
    /// within this part (a whole request).
    pub left_out: Option<&'a [Option<LeftOut>]>,
    /// For each contact (by internal id) that an applied record of an earlier part
    /// reached, the first such record's index.
    pub reached_before: Option<&'a AHashMap<u64, u32>>,
}

impl Part<'_> {
    fn reached_before(&self, c: &Stored) -> Option<u32> {
        self.reached_before?.get(&c.id?).copied()
    }
}

/// Which records of `req` its duplicate policy leaves out (all `None` under
/// `merge`), decided from `lookup` as the request's start: what [`plan`] decides
/// for a whole request, for a caller that plans it in parts ([`Part::left_out`]).
pub fn left_out<L: Lookup>(
    pool: Option<&rayon::ThreadPool>,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
) -> Result<Vec<Option<LeftOut>>, L::Error> {
    if prepared.on_duplicate == OnDuplicate::Merge {
        return Ok(vec![None; req.records.len()]);
    }
    let phase1 = Phase1 {
        records: &req.records,
        first_index: 0,
        prepared,
        catalog,
        lookup,
        chunk: CHUNK_RECORDS_DEFAULT,
        next: AtomicUsize::new(0),
    };
    let chunks = phase1.run(pool, true, |_| Ok(()))?;
    Ok(identity::left_out(
        prepared.on_duplicate,
        chunks.iter().flatten().map(|p| identity::SnapshotMatch {
            rec: &p.rec,
            by_key: p.by_key.as_ref(),
            by_email: p.by_email.as_deref(),
            by_phone: p.by_phone.as_deref(),
        }),
    ))
}

/// As [`plan_chunked`], for one part of a larger request (see [`Part`]).
#[allow(clippy::too_many_arguments)]
pub fn plan_part<L: Lookup>(
    pool: Option<&rayon::ThreadPool>,
    chunk_records: usize,
    req: &BulkRequest,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    now_us: i64,
    part: &Part<'_>,
) -> Result<Plan, L::Error> {
    let ctx = Ctx {
        prepared,
        catalog,
        lookup,
        now_us,
        part: *part,
    };
    let phase1 = Phase1 {
        records: &req.records,
        first_index: part.first_index,
        prepared,
        catalog,
        lookup,
        chunk: chunk_records.max(1),
        next: AtomicUsize::new(0),
    };
    let n = req.records.len();
    let mut overlay = Overlay::for_records(n);
    let mut report = ReportBuilder::new(n);
    if let Some(decided) = part.left_out {
        // Decided for the whole request: one pass, skipping the left-out records.
        let mut skips = decided.iter().copied();
        phase1.run(pool, false, |chunk| {
            chunk.iter_mut().try_for_each(|p| {
                let r = ctx.step(&mut overlay, p, skips.next().flatten())?;
                report.add(p, r);
                Ok(())
            })
        })?;
        return Ok(report.finish(req, prepared, overlay));
    }
    if prepared.on_duplicate == OnDuplicate::Merge {
        // The only pass: each record goes into the report as soon as it is
        // resolved, and each chunk is dropped once resolved, so that the calling
        // thread does this work while the helpers still prepare chunks.
        phase1.run(pool, false, |chunk| {
            chunk.iter_mut().try_for_each(|p| {
                let r = ctx.step(&mut overlay, p, None)?;
                report.add(p, r);
                Ok(())
            })
        })?;
        return Ok(report.finish(req, prepared, overlay));
    }
    // `first`, `last`, `reject`: which records are occurrences of one contact is
    // decided from the snapshot alone, over the whole request, before any record is
    // applied; then the kept records are applied as under `merge`.
    let mut chunks = phase1.run(pool, true, |_| Ok(()))?;
    let left_out = identity::left_out(
        prepared.on_duplicate,
        chunks.iter().flatten().map(|p| identity::SnapshotMatch {
            rec: &p.rec,
            by_key: p.by_key.as_ref(),
            by_email: p.by_email.as_deref(),
            by_phone: p.by_phone.as_deref(),
        }),
    );
    for (p, skip) in chunks.iter_mut().flatten().zip(left_out) {
        let r = ctx.step(&mut overlay, p, skip)?;
        report.add(p, r);
    }
    Ok(report.finish(req, prepared, overlay))
}

fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// A record with what phase 1 learned about it from the snapshot.
struct Prefetched {
    rec: NormalizedRecord,
    /// Snapshot contact whose key or alias is the record's key.
    by_key: Option<Stored>,
    /// Snapshot contacts with the record's email, when `match_on` has email.
    by_email: Option<Vec<Stored>>,
    /// Snapshot contacts with the record's gsm, when `match_on` has phone.
    by_phone: Option<Vec<Stored>>,
}

/// Phase 1 for record `i`: normalization, validation and the snapshot lookups.
fn prefetch_one<L: Lookup>(
    i: usize,
    raw: &serde_json::Value,
    prepared: &Prepared,
    catalog: &Catalog,
    lookup: &L,
    names: &mut NameCache,
) -> Result<Prefetched, L::Error> {
    let rec = normalize_record_with(index_u32(i), raw, catalog, prepared, names);
    let mut p = Prefetched {
        rec,
        by_key: None,
        by_email: None,
        by_phone: None,
    };
    if p.rec.is_invalid() {
        return Ok(p);
    }
    if let Some(key) = &p.rec.key {
        p.by_key = lookup.by_identifier(key)?;
    }
    // Records found by key never match by email/phone, unless an earlier record
    // renames the key away; phase 2 looks those up itself.
    if p.by_key.is_none() {
        if prepared.match_on.email
            && let Some(e) = p.rec.email()
        {
            p.by_email = Some(lookup.contacts_by_email(e)?);
        }
        if prepared.match_on.phone
            && let Some(g) = p.rec.gsm()
        {
            p.by_phone = Some(lookup.contacts_by_phone(g)?);
        }
    }
    Ok(p)
}

/// Phase 1 of one request, shared by the calling thread and its helpers.
struct Phase1<'a, L> {
    records: &'a [serde_json::Value],
    /// The index of `records[0]` in the whole request.
    first_index: u32,
    prepared: &'a Prepared,
    catalog: &'a Catalog,
    lookup: &'a L,
    /// Records per chunk.
    chunk: usize,
    /// The next chunk nobody has claimed; helpers and the calling thread take
    /// chunks in this order.
    next: AtomicUsize,
}

/// A chunk as phase 1 hands it over: its number and its records.
type Chunk<E> = (usize, Result<Vec<Prefetched>, E>);

impl<L: Lookup> Phase1<'_, L> {
    /// Runs phase 1 over every record and hands each chunk, in input order, to
    /// `consume` on the calling thread (see [`plan_with_pool`]). Returns the chunks
    /// in order when `keep`, else drops each once consumed (and returns none). The
    /// first error, from a lookup or from `consume`, ends the run.
    fn run(
        &self,
        pool: Option<&rayon::ThreadPool>,
        keep: bool,
        consume: impl FnMut(&mut [Prefetched]) -> Result<(), L::Error>,
    ) -> Result<Vec<Vec<Prefetched>>, L::Error> {
        let threads = pool.map_or_else(
            rayon::current_num_threads,
            rayon::ThreadPool::current_num_threads,
        );
        let helpers = threads
            .saturating_sub(1)
            .min(self.chunks().saturating_sub(1));
        match pool {
            Some(p) => p.in_place_scope(|scope| self.drive(scope, helpers, keep, consume)),
            None => rayon::in_place_scope(|scope| self.drive(scope, helpers, keep, consume)),
        }
    }

    fn chunks(&self) -> usize {
        self.records.len().div_ceil(self.chunk)
    }

    fn claim(&self) -> Option<usize> {
        Some(self.next.fetch_add(1, Ordering::Relaxed)).filter(|c| *c < self.chunks())
    }

    /// Phase 1 for chunk `c`, on a thread whose name cache is `names`.
    fn compute(&self, c: usize, names: &mut NameCache) -> Result<Vec<Prefetched>, L::Error> {
        let start = c.saturating_mul(self.chunk);
        let end = self.records.len().min(start.saturating_add(self.chunk));
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        for (i, raw) in self.records.iter().enumerate().take(end).skip(start) {
            out.push(prefetch_one(
                i.saturating_add(self.first_index as usize),
                raw,
                self.prepared,
                self.catalog,
                self.lookup,
                names,
            )?);
        }
        Ok(out)
    }

    /// The calling thread's side: starts `helpers` tasks in `scope`, then consumes
    /// the chunks in order, computing unclaimed ones itself whenever the next one is
    /// not ready.
    fn drive<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        helpers: usize,
        keep: bool,
        mut consume: impl FnMut(&mut [Prefetched]) -> Result<(), L::Error>,
    ) -> Result<Vec<Vec<Prefetched>>, L::Error> {
        let (tx, rx) = mpsc::channel::<Chunk<L::Error>>();
        for _ in 0..helpers {
            let tx = tx.clone();
            // A helper stops when the chunks run out or the calling thread has
            // returned (its receiver is gone).
            scope.spawn(move |_| {
                let mut names = NameCache::default();
                while let Some(c) = self.claim() {
                    if tx.send((c, self.compute(c, &mut names))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let chunks = self.chunks();
        let mut ready: Vec<Option<Result<Vec<Prefetched>, L::Error>>> =
            (0..chunks).map(|_| None).collect();
        let put = |ready: &mut [Option<_>], (c, r): Chunk<L::Error>| {
            if let Some(slot) = ready.get_mut(c) {
                *slot = Some(r);
            }
        };
        let mut names = NameCache::default();
        let mut out = Vec::with_capacity(chunks);
        for k in 0..chunks {
            let mut chunk = loop {
                while let Ok(m) = rx.try_recv() {
                    put(&mut ready, m);
                }
                if let Some(r) = ready.get_mut(k).and_then(Option::take) {
                    break r?;
                }
                // Chunk k is not here: work on the next unclaimed chunk (k itself
                // when no helper took it) rather than wait.
                if let Some(c) = self.claim() {
                    let r = self.compute(c, &mut names);
                    if c == k {
                        break r?;
                    }
                    put(&mut ready, (c, r));
                    continue;
                }
                // Every chunk is claimed and a helper is still on chunk k.
                match rx.recv() {
                    Ok(m) => put(&mut ready, m),
                    // Every helper is gone without sending chunk k: one panicked (the
                    // scope re-raises that panic); compute it here meanwhile.
                    Err(_) => break self.compute(k, &mut names)?,
                }
            };
            consume(&mut chunk)?;
            if keep {
                out.push(chunk);
            }
        }
        Ok(out)
    }
}

/// A contact the request has reached: its committed state and its current state.
struct Entity {
    before: Option<Stored>,
    /// The state after the request's changes; `None` while it equals `before`
    /// (so reaching a contact without changing it copies nothing).
    after: Option<Contact>,
    /// First applied record that reached it.
    reached_by: Option<u32>,
    /// Whether any applied record changed it (so it must be written).
    changed: bool,
    /// Order of first change, for a stable write order.
    changed_seq: usize,
}

impl Entity {
    fn current(&self) -> Option<&Contact> {
        self.after
            .as_ref()
            .or(self.before.as_ref().map(|b| &b.contact))
    }
}

/// A contact as a lookup finds it: already in the overlay, or untouched in the snapshot.
enum Found {
    Entity(usize),
    Snapshot(Stored),
}

/// A record's snapshot lookups from phase 1, handed to phase 2 once.
struct SnapshotHits {
    by_key: Option<Stored>,
    by_email: Option<Vec<Stored>>,
    by_phone: Option<Vec<Stored>>,
}

/// What the match step found for a record.
enum Match {
    /// No contact: an insert (or `not_found` in update mode).
    None,
    /// One contact, and how it was found.
    One(Found, MatchedBy),
    /// Two or more contacts by email/phone; the record has failed.
    Ambiguous,
}

/// The overlay: everything the request changed so far.
#[derive(Default)]
struct Overlay {
    entities: Vec<Entity>,
    /// Snapshot contacts the request reached, by their committed key (see
    /// [`Overlay::snap_entity`]).
    snap: ValueIndex,
    /// Identifiers (keys and aliases) whose resolution changed: `None` = resolves
    /// to nothing any more.
    ident: AHashMap<String, Option<usize>>,
    /// Entities whose email was set in this request, by that email (may be stale:
    /// always re-check the entity's current email).
    email: ValueIndex,
    /// Likewise for gsm.
    phone: ValueIndex,
    changes: usize,
}

/// Entities by a 64-bit hash of a string: an email or gsm they were given in this
/// request, or the committed key of a snapshot contact. It holds candidates only:
/// callers re-check each entity's current value (or committed key), so a hash
/// collision costs one comparison, never a wrong match. Keying by the hash spares
/// copying every string into the map.
#[derive(Default)]
struct ValueIndex {
    hasher: ahash::RandomState,
    /// Test hook: every value hashes to 0, so every lookup meets every entity.
    #[cfg(test)]
    collide: bool,
    /// The first entity given each value hash (nearly always the only one).
    first: AHashMap<u64, usize>,
    /// Further entities under the same hash.
    more: AHashMap<u64, Vec<usize>>,
}

impl ValueIndex {
    fn with_capacity(n: usize) -> Self {
        ValueIndex {
            first: AHashMap::with_capacity(n),
            ..ValueIndex::default()
        }
    }

    fn hash(&self, value: &str) -> u64 {
        #[cfg(test)]
        if self.collide {
            return 0;
        }
        self.hasher.hash_one(value)
    }

    fn add(&mut self, value: &str, e: usize) {
        let h = self.hash(value);
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(e);
            }
            std::collections::hash_map::Entry::Occupied(o) if *o.get() != e => {
                let more = self.more.entry(h).or_default();
                if !more.contains(&e) {
                    more.push(e);
                }
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
    }

    /// Every entity added under `value`'s hash, first added first.
    fn candidates(&self, value: &str) -> impl Iterator<Item = usize> + '_ {
        let h = self.hash(value);
        self.first
            .get(&h)
            .copied()
            .into_iter()
            .chain(self.more.get(&h).into_iter().flatten().copied())
    }
}

impl Overlay {
    /// The entity of the snapshot contact whose committed key is `key`, if the
    /// request has reached it.
    fn snap_entity(&self, key: &str) -> Option<usize> {
        self.snap.candidates(key).find(|&e| {
            self.entities
                .get(e)
                .and_then(|x| x.before.as_ref())
                .is_some_and(|b| b.contact.key == key)
        })
    }
}

/// A set of entity ids: an inline list while it is short (nearly always: a value
/// matches one or two contacts), a hash set past that, so that neither the common
/// case allocates or seeds a hasher nor a value shared by thousands of contacts
/// costs a quadratic scan.
#[derive(Default)]
struct Seen {
    few: [usize; Seen::FEW],
    len: usize,
    many: Option<AHashSet<usize>>,
}

impl Seen {
    const FEW: usize = 8;

    /// Adds `e`; returns whether it was new.
    fn insert(&mut self, e: usize) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(e);
        }
        let few = self.few.get(..self.len).unwrap_or_default();
        if few.contains(&e) {
            return false;
        }
        if let Some(slot) = self.few.get_mut(self.len) {
            *slot = e;
            self.len += 1;
        } else {
            let mut many: AHashSet<usize> = self.few.iter().copied().collect();
            many.insert(e);
            self.many = Some(many);
        }
        true
    }
}

/// Per-record result of a pass.
#[derive(Default)]
struct RecordOutcome {
    outcome: Option<Outcome>,
    matched_by: Option<MatchedBy>,
    contact_key: Option<String>,
    duplicate_of: Option<u32>,
    errors: Vec<RecordError>,
    /// Whether the record's own (normalization) warnings go to the report, before
    /// `warnings`; they are moved out of the record at the end, not copied.
    own_warnings: bool,
    warnings: Vec<Warning>,
    /// The entity the record reached, when applied.
    reached: Option<usize>,
}

impl RecordOutcome {
    /// Marks the record failed with one more error, naming the earlier occurrence of
    /// its contact when there is one.
    fn fail(
        &mut self,
        rec: &NormalizedRecord,
        code: ErrorCode,
        column: Option<Cow<'static, str>>,
        msg: String,
    ) {
        self.outcome = Some(Outcome::Failed);
        self.errors.push(RecordError {
            index: rec.index,
            key: rec.key.clone(),
            column,
            code,
            message: msg,
            candidates: Vec::new(),
            duplicate_of: self.duplicate_of,
        });
    }
}

impl Overlay {
    /// An empty overlay sized for a request that reaches a different contact with
    /// each record (the usual case), so that no map rehashes as it grows.
    fn for_records(records: usize) -> Self {
        Overlay {
            entities: Vec::with_capacity(records),
            snap: ValueIndex::with_capacity(records),
            ident: AHashMap::with_capacity(records),
            email: ValueIndex::with_capacity(records),
            phone: ValueIndex::with_capacity(records),
            changes: 0,
        }
    }
}

struct Ctx<'a, L> {
    prepared: &'a Prepared,
    catalog: &'a Catalog,
    lookup: &'a L,
    now_us: i64,
    part: Part<'a>,
}

impl<L: Lookup> Ctx<'_, L> {
    /// Resolves the next record of the pass against `ov`, unless the duplicate
    /// policy leaves it out (`skip`): then it reaches nothing and changes nothing.
    fn step(
        &self,
        ov: &mut Overlay,
        p: &mut Prefetched,
        skip: Option<LeftOut>,
    ) -> Result<RecordOutcome, L::Error> {
        match skip {
            None => self.resolve(p, ov),
            Some(LeftOut::Duplicate(j)) => Ok(RecordOutcome {
                outcome: Some(Outcome::Duplicate),
                duplicate_of: Some(j),
                ..RecordOutcome::default()
            }),
            Some(LeftOut::Rejected(j)) => {
                let mut out = RecordOutcome {
                    duplicate_of: Some(j),
                    ..RecordOutcome::default()
                };
                out.fail(
                    &p.rec,
                    ErrorCode::DuplicateInBatch,
                    None,
                    format!("record {j} of this request is the same contact"),
                );
                Ok(out)
            }
        }
    }
}

impl<L: Lookup> Ctx<'_, L> {
    /// Where `id` (a key or alias) resolves now.
    fn find_ident(
        &self,
        ov: &Overlay,
        id: &str,
        prefetched: Option<Option<Stored>>,
    ) -> Result<Option<Found>, L::Error> {
        if let Some(hit) = ov.ident.get(id) {
            return Ok(hit.map(Found::Entity));
        }
        let snap = match prefetched {
            Some(c) => c,
            None => self.lookup.by_identifier(id)?,
        };
        Ok(snap.map(|c| match ov.snap_entity(&c.contact.key) {
            Some(e) => Found::Entity(e),
            None => Found::Snapshot(c),
        }))
    }

    /// Every contact whose current email (`phone=false`) or gsm (`phone=true`) is `value`.
    fn find_by_value(
        &self,
        ov: &Overlay,
        value: &str,
        phone: bool,
        prefetched: Option<Vec<Stored>>,
    ) -> Result<Vec<Found>, L::Error> {
        // Whether entity `e` still has `value` now (the overlay index may be stale).
        let still = |e: usize| {
            ov.entities
                .get(e)
                .and_then(Entity::current)
                .is_some_and(|c| if phone { c.gsm() } else { c.email() } == Some(value))
        };
        let snap = match prefetched {
            Some(v) => v,
            None if phone => self.lookup.contacts_by_phone(value)?,
            None => self.lookup.contacts_by_email(value)?,
        };
        let mut out = Vec::new();
        let mut seen = Seen::default();
        for c in snap {
            match ov.snap_entity(&c.contact.key) {
                Some(e) => {
                    if still(e) && seen.insert(e) {
                        out.push(Found::Entity(e));
                    }
                }
                None => out.push(Found::Snapshot(c)),
            }
        }
        let index = if phone { &ov.phone } else { &ov.email };
        for e in index.candidates(value) {
            if still(e) && seen.insert(e) {
                out.push(Found::Entity(e));
            }
        }
        Ok(out)
    }

    fn key_of<'o>(&self, ov: &'o Overlay, f: &'o Found) -> &'o str {
        match f {
            Found::Entity(e) => ov
                .entities
                .get(*e)
                .and_then(Entity::current)
                .map_or("", |c| c.key.as_str()),
            Found::Snapshot(c) => c.contact.key.as_str(),
        }
    }

    /// Applies (or fails) one record against the overlay: find the contact it
    /// reaches, check the mode, then insert or update.
    fn resolve(&self, p: &mut Prefetched, ov: &mut Overlay) -> Result<RecordOutcome, L::Error> {
        let prefetched = SnapshotHits {
            by_key: std::mem::take(&mut p.by_key),
            by_email: std::mem::take(&mut p.by_email),
            by_phone: std::mem::take(&mut p.by_phone),
        };
        let rec = &p.rec;
        let mut out = RecordOutcome::default();
        let Some(key) = rec.key.as_deref().filter(|_| !rec.is_invalid()) else {
            out.outcome = Some(Outcome::Failed);
            out.errors = rec.errors.clone();
            return Ok(out);
        };
        let matched = match self.find_match(rec, key, ov, prefetched, &mut out)? {
            Match::Ambiguous => return Ok(out),
            Match::None => None,
            Match::One(found, by) => Some((found, by)),
        };
        if let Some((found, by)) = &matched {
            self.note_match(ov, found, *by, key, &mut out);
        }
        if self.refused_by_mode(ov, matched.as_ref(), rec, key, &mut out) {
            return Ok(out);
        }
        let Some((found, by)) = matched else {
            return Ok(self.insert(rec, key, ov, out));
        };
        let e = self.materialize(ov, found);
        self.update(rec, key, e, by, ov, out)
    }

    /// The contact a record reaches: by its key or an alias first,
    /// authoritative when found; else by its matched-on email and phone, where two
    /// or more distinct contacts fail the record with `ambiguous_match`.
    fn find_match(
        &self,
        rec: &NormalizedRecord,
        key: &str,
        ov: &Overlay,
        prefetched: SnapshotHits,
        out: &mut RecordOutcome,
    ) -> Result<Match, L::Error> {
        if let Some(f) = self.find_ident(ov, key, Some(prefetched.by_key))? {
            let by = if self.key_of(ov, &f) == key {
                MatchedBy::Key
            } else {
                MatchedBy::Alias
            };
            return Ok(Match::One(f, by));
        }
        let mut cands: Vec<(Found, MatchedBy)> = Vec::new();
        if self.prepared.match_on.email
            && let Some(e) = rec.email()
        {
            for f in self.find_by_value(ov, e, false, prefetched.by_email)? {
                cands.push((f, MatchedBy::Email));
            }
        }
        if self.prepared.match_on.phone
            && let Some(g) = rec.gsm()
        {
            for f in self.find_by_value(ov, g, true, prefetched.by_phone)? {
                let k = self.key_of(ov, &f).to_owned();
                if !cands.iter().any(|(c, _)| self.key_of(ov, c) == k) {
                    cands.push((f, MatchedBy::Phone));
                }
            }
        }
        if cands.len() > 1 {
            let mut keys: Vec<String> = cands
                .iter()
                .map(|(f, _)| self.key_of(ov, f).to_owned())
                .collect();
            keys.sort();
            out.fail(
                rec,
                ErrorCode::AmbiguousMatch,
                None,
                format!("matches {} contacts: {}", keys.len(), keys.join(", ")),
            );
            if let Some(err) = out.errors.last_mut() {
                err.candidates = keys;
            }
            return Ok(Match::Ambiguous);
        }
        Ok(cands.pop().map_or(Match::None, |(f, by)| Match::One(f, by)))
    }

    /// Reports how the record matched, the contact's key when it differs from the
    /// record's, and an earlier record of the request that reached the same contact.
    fn note_match(
        &self,
        ov: &Overlay,
        found: &Found,
        by: MatchedBy,
        key: &str,
        out: &mut RecordOutcome,
    ) {
        out.matched_by = Some(by);
        let ck = self.key_of(ov, found);
        if ck != key {
            out.contact_key = Some(ck.to_owned());
        }
        out.duplicate_of = match found {
            Found::Entity(e) => ov.entities.get(*e).and_then(|x| x.reached_by),
            Found::Snapshot(c) => self.part.reached_before(c),
        };
    }

    /// An insert that found a contact, or an update that found none, fails
    /// the record; returns whether it did.
    fn refused_by_mode(
        &self,
        ov: &Overlay,
        matched: Option<&(Found, MatchedBy)>,
        rec: &NormalizedRecord,
        key: &str,
        out: &mut RecordOutcome,
    ) -> bool {
        match (matched, self.prepared.mode) {
            (Some((f, _)), Mode::Insert) => {
                let ck = self.key_of(ov, f).to_owned();
                let msg = format!("contact {ck:?} already exists");
                out.fail(rec, ErrorCode::AlreadyExists, None, msg);
                true
            }
            (None, Mode::Update) => {
                let msg = format!("no contact {key:?}");
                out.fail(rec, ErrorCode::NotFound, None, msg);
                true
            }
            _ => false,
        }
    }

    /// The overlay entity of a found contact, created for a snapshot contact the
    /// request has not touched yet (so later checks compare entity ids).
    fn materialize(&self, ov: &mut Overlay, found: Found) -> usize {
        match found {
            Found::Entity(e) => e,
            Found::Snapshot(c) => {
                let e = ov.entities.len();
                ov.snap.add(&c.contact.key, e);
                let reached_by = self.part.reached_before(&c);
                ov.entities.push(Entity {
                    before: Some(c),
                    after: None,
                    reached_by,
                    changed: false,
                    changed_seq: 0,
                });
                e
            }
        }
    }

    /// Updates entity `e` with the record (alias, rekey, field merge,
    /// campaign columns), or finds it unchanged.
    fn update(
        &self,
        rec: &NormalizedRecord,
        key: &str,
        e: usize,
        by: MatchedBy,
        ov: &mut Overlay,
        mut out: RecordOutcome,
    ) -> Result<RecordOutcome, L::Error> {
        let Some(current) = ov.entities.get(e).and_then(Entity::current) else {
            return Ok(out);
        };
        let new_key = rec.new_key.as_deref().filter(|nk| *nk != current.key);
        if let Some(nk) = new_key
            && self.rekey_conflict(rec, nk, e, ov, &mut out)?
        {
            return Ok(out);
        }
        let fields = match merge_fields(Some(&current.fields), rec, self.catalog) {
            Ok(f) => f,
            Err(missing) => {
                for m in missing {
                    let msg = format!("required column {} cannot be cleared", m.column);
                    out.fail(rec, ErrorCode::RequiredMissing, Some(m.column), msg);
                }
                return Ok(out);
            }
        };
        if self.lacks_campaign_columns(rec, &fields, &mut out) {
            return Ok(out);
        }
        // R9: a key found by email/phone becomes an alias.
        let add_alias = matches!(by, MatchedBy::Email | MatchedBy::Phone) && key != current.key;
        let unchanged = fields == current.fields && !add_alias && new_key.is_none();
        let next = (!unchanged).then(|| Contact {
            key: current.key.clone(),
            fields,
            aliases: current.aliases.clone(),
            version: current.version,
            created_at_us: current.created_at_us,
            updated_at_us: current.updated_at_us,
        });
        out.reached = Some(e);
        out.own_warnings = true;
        match next {
            Some(next) => self.write_update(rec, key, e, next, add_alias, new_key, ov, &mut out),
            None => out.outcome = Some(Outcome::Unchanged),
        }
        if let Some(ent) = ov.entities.get_mut(e) {
            if ent.reached_by.is_none() {
                ent.reached_by = Some(rec.index);
            }
            out.contact_key = ent
                .current()
                .filter(|c| c.key != key)
                .map(|c| c.key.clone());
        }
        if let Some(j) = out.duplicate_of {
            out.warnings.push(Warning {
                index: rec.index,
                key: Some(key.to_owned()),
                column: None,
                code: WarningCode::DuplicateInBatch,
                message: format!("record {j} of this request reached the same contact").into(),
                duplicate_of: Some(j),
            });
        }
        Ok(out)
    }

    /// Fails the record when its new key is held by another contact or alias;
    /// returns whether it did.
    fn rekey_conflict(
        &self,
        rec: &NormalizedRecord,
        new_key: &str,
        e: usize,
        ov: &Overlay,
        out: &mut RecordOutcome,
    ) -> Result<bool, L::Error> {
        let other = match self.find_ident(ov, new_key, None)? {
            None => return Ok(false),
            Some(Found::Entity(h)) if h == e => return Ok(false),
            Some(f) => self.key_of(ov, &f).to_owned(),
        };
        out.fail(
            rec,
            ErrorCode::KeyConflict,
            Some(Cow::Borrowed("new_contact_key")),
            format!("key {new_key:?} is held by contact {other:?}"),
        );
        Ok(true)
    }

    /// Records the changed contact `next` as entity `e`'s new state: the alias the
    /// record's key becomes, the rename, the version and time, the overlay indexes.
    #[allow(clippy::too_many_arguments)] // one step of `update`, named for reading
    fn write_update(
        &self,
        rec: &NormalizedRecord,
        key: &str,
        e: usize,
        mut next: Contact,
        add_alias: bool,
        new_key: Option<&str>,
        ov: &mut Overlay,
        out: &mut RecordOutcome,
    ) {
        if add_alias {
            next.aliases.push(key.to_owned());
            ov.ident.insert(key.to_owned(), Some(e));
            out.warnings.push(Warning {
                index: rec.index,
                key: Some(key.to_owned()),
                column: Some(Cow::Borrowed("contact_key")),
                code: WarningCode::AliasAdded,
                message: format!("{key:?} is now an alias of contact {:?}", next.key).into(),
                duplicate_of: None,
            });
        }
        if let Some(nk) = new_key {
            next.aliases.retain(|a| a != nk);
            ov.ident.insert(next.key.clone(), None);
            ov.ident.insert(nk.to_owned(), Some(e));
            next.key = nk.to_owned();
        }
        next.version = next.version.saturating_add(1);
        next.updated_at_us = self.now_us;
        out.outcome = Some(Outcome::Updated);
        self.record_values(ov, e, &next);
        ov.changes += 1;
        let seq = ov.changes;
        if let Some(ent) = ov.entities.get_mut(e) {
            if !ent.changed {
                ent.changed = true;
                ent.changed_seq = seq;
            }
            ent.after = Some(next);
        }
    }

    /// Fails `out` once per column of the request's campaign that `fields` lack;
    /// returns whether any is missing.
    fn lacks_campaign_columns(
        &self,
        rec: &NormalizedRecord,
        fields: &contactdb_policy::Fields,
        out: &mut RecordOutcome,
    ) -> bool {
        let mut lacking = false;
        for &id in &self.prepared.campaign_required {
            if fields.get(id).is_none() {
                let name = self
                    .catalog
                    .by_id(id)
                    .map_or_else(|| format!("#{}", id.0), |c| c.name.clone());
                let msg = format!("the campaign requires a value for {name}");
                out.fail(
                    rec,
                    ErrorCode::CampaignColumnMissing,
                    Some(Cow::Owned(name)),
                    msg,
                );
                lacking = true;
            }
        }
        lacking
    }

    /// Remembers a contact's new email/gsm in the overlay indexes.
    fn record_values(&self, ov: &mut Overlay, e: usize, next: &Contact) {
        if let Some(em) = next.email() {
            ov.email.add(em, e);
        }
        if let Some(g) = next.gsm() {
            ov.phone.add(g, e);
        }
    }

    /// An unmatched record in insert or upsert mode: a new contact.
    fn insert(
        &self,
        rec: &NormalizedRecord,
        key: &str,
        ov: &mut Overlay,
        mut out: RecordOutcome,
    ) -> RecordOutcome {
        let fields = match merge_fields(None, rec, self.catalog) {
            Ok(f) => f,
            Err(missing) => {
                for m in missing {
                    let msg = format!("required column {} has no value", m.column);
                    out.fail(rec, ErrorCode::RequiredMissing, Some(m.column), msg);
                }
                return out;
            }
        };
        if self.lacks_campaign_columns(rec, &fields, &mut out) {
            return out;
        }
        let contact = Contact {
            key: key.to_owned(),
            fields,
            aliases: Vec::new(),
            version: 1,
            created_at_us: self.now_us,
            updated_at_us: self.now_us,
        };
        let e = ov.entities.len();
        ov.changes += 1;
        self.record_values(ov, e, &contact);
        ov.ident.insert(key.to_owned(), Some(e));
        ov.entities.push(Entity {
            before: None,
            after: Some(contact),
            reached_by: Some(rec.index),
            changed: true,
            changed_seq: ov.changes,
        });
        out.outcome = Some(Outcome::Inserted);
        out.reached = Some(e);
        out.own_warnings = true;
        out
    }
}

/// The report of the final pass, built record by record as the pass resolves them.
struct ReportBuilder {
    summary: Summary,
    results: Vec<RecordResult>,
    errors: Vec<RecordError>,
    warnings: Vec<Warning>,
    applied_any: bool,
}

impl ReportBuilder {
    fn new(records: usize) -> Self {
        ReportBuilder {
            summary: Summary::default(),
            results: Vec::with_capacity(records),
            errors: Vec::new(),
            // One warning per record is a guess (a CRM export has a few normalized
            // values in most records); the list grows past it by doubling.
            warnings: Vec::with_capacity(records),
            applied_any: false,
        }
    }

    /// Adds the next record's result; takes its key and warnings out of `p`.
    fn add(&mut self, p: &mut Prefetched, r: RecordOutcome) {
        let s = &mut self.summary;
        s.total += 1;
        if p.rec.is_invalid() {
            s.invalid += 1;
        }
        match r.outcome {
            Some(Outcome::Failed) => s.failed += 1,
            Some(Outcome::Inserted) => s.inserted += 1,
            Some(Outcome::Updated) => s.updated += 1,
            Some(Outcome::Unchanged) => s.unchanged += 1,
            _ => {}
        }
        self.applied_any |= r.outcome.is_some_and(Outcome::is_applied);
        self.errors.extend(r.errors);
        if r.own_warnings {
            self.warnings.append(&mut p.rec.warnings);
        }
        self.warnings.extend(r.warnings);
        self.results.push(RecordResult {
            index: p.rec.index,
            key: p.rec.key.take(),
            outcome: r.outcome.unwrap_or(Outcome::Failed),
            matched_by: r.matched_by,
            contact_key: r.contact_key,
            duplicate_of: r.duplicate_of,
        });
    }

    /// The plan: the status, and the writes of every changed contact of `overlay`
    /// in order of first change. A rejected request reports its applicable records
    /// as `not_applied`, without warnings, and writes nothing.
    fn finish(mut self, req: &BulkRequest, prepared: &Prepared, overlay: Overlay) -> Plan {
        let summary = &mut self.summary;
        summary.valid = summary.total - summary.invalid;
        let status = if summary.failed == 0 {
            Status::Applied
        } else if prepared.on_invalid == OnInvalid::Abort || !self.applied_any {
            Status::Rejected
        } else {
            Status::Partial
        };
        let reached = if prepared.list_reached && status != Status::Rejected {
            reached(&overlay.entities)
        } else {
            Vec::new()
        };
        let planned = writes(overlay.entities);
        let (writes, rejected_writes) = if status == Status::Rejected {
            for r in &mut self.results {
                if r.outcome.is_applied() {
                    r.outcome = Outcome::NotApplied;
                }
            }
            summary.inserted = 0;
            summary.updated = 0;
            summary.unchanged = 0;
            self.warnings = Vec::new();
            (Vec::new(), planned)
        } else {
            summary.batches = 1;
            (planned, Vec::new())
        };
        Plan {
            report: Report {
                status,
                summary: self.summary,
                results: self.results,
                errors: self.errors,
                warnings: self.warnings,
                request_id: req.request_id.clone(),
                replayed: false,
                request_error: None::<RequestErrorInfo>,
            },
            writes,
            rejected_writes,
            reached,
        }
    }
}

/// The contacts applied records reached, in order of first reach.
fn reached(entities: &[Entity]) -> Vec<Reached> {
    let mut out: Vec<(u32, Reached)> = entities
        .iter()
        .filter_map(|e| {
            let first = e.reached_by?;
            let c = e.current()?;
            Some((
                first,
                Reached {
                    first,
                    stored_id: e.before.as_ref().and_then(|b| b.id),
                    key: c.key.clone(),
                    priority: match c.fields.get(FieldId::PRIORITY) {
                        Some(Value::Int(p)) => Some(*p),
                        _ => None,
                    },
                    version: c.version,
                },
            ))
        })
        .collect();
    out.sort_by_key(|(first, _)| *first);
    out.into_iter().map(|(_, r)| r).collect()
}

/// The writes of the changed entities, in order of first change. Entities are in
/// order of first reach, which is nearly always that order already (a contact
/// reached unchanged and changed by a later record is the exception): then each
/// contact moves once, straight into its write.
fn writes(entities: Vec<Entity>) -> Vec<ContactWrite> {
    let write = |e: Entity| {
        e.after.map(|after| ContactWrite {
            before: e.before,
            after,
        })
    };
    let in_order = entities
        .iter()
        .filter(|e| e.changed)
        .map(|e| e.changed_seq)
        .is_sorted();
    if in_order {
        return entities
            .into_iter()
            .filter(|e| e.changed)
            .filter_map(write)
            .collect();
    }
    let mut changed: Vec<Entity> = entities.into_iter().filter(|e| e.changed).collect();
    changed.sort_by_key(|e| e.changed_seq);
    changed.into_iter().filter_map(write).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use contactdb_policy::Fields;

    fn snapshot_entity(key: &str) -> Entity {
        Entity {
            before: Some(Stored::without_id(Contact {
                key: key.to_owned(),
                fields: Fields::new(),
                aliases: Vec::new(),
                version: 1,
                created_at_us: 0,
                updated_at_us: 0,
            })),
            after: None,
            reached_by: None,
            changed: false,
            changed_seq: 0,
        }
    }

    #[test]
    fn seen_answers_like_a_set_before_and_after_it_grows() {
        let mut seen = Seen::default();
        let mut set = AHashSet::new();
        for e in (0..100).chain(0..100).map(|i| (i * 37) % 50) {
            assert_eq!(seen.insert(e), set.insert(e), "{e}");
        }
        assert!(seen.many.is_some());
    }

    // The overlay indexes hold hash candidates; with every value colliding, each
    // lookup must still find exactly its own entity (R6: no wrong match).
    #[test]
    fn colliding_hashes_never_match_the_wrong_entity() {
        let mut ov = Overlay::default();
        ov.snap.collide = true;
        for (e, key) in ["a", "b", "c"].into_iter().enumerate() {
            ov.entities.push(snapshot_entity(key));
            ov.snap.add(key, e);
        }
        ov.snap.add("a", 0);
        assert_eq!(ov.snap.candidates("zzz").collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(ov.snap_entity("a"), Some(0));
        assert_eq!(ov.snap_entity("b"), Some(1));
        assert_eq!(ov.snap_entity("c"), Some(2));
        assert_eq!(ov.snap_entity("d"), None);
    }
}
