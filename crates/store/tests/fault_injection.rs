//! R14 under failing storage: a commit of a few thousand records over a redb
//! storage backend that fails the N-th read, write, sync or set_len (for every N
//! the commit and the close that follows perform), and under a power-loss model
//! (what was synced survives, plus an arbitrary subset of the later writes, each
//! possibly torn at 512-byte sectors). After each: no panic, the file reopens,
//! `check` is clean, and the contacts are exactly those before the commit or
//! exactly those after it.
//!
//! Compaction runs under the same failures and must change no content.
//!
//! `sample` runs a stride of every sweep in `cargo test`; `sweep` (ignored) runs
//! every N and many more power-loss images:
//! `cargo test -p contactdb-store --test fault_injection -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{contact, insert, opts, update};
use contactdb_backend::Wait;
use contactdb_merge::ContactWrite;
use contactdb_policy::Contact;
use contactdb_store::{Store, StoreError, StoreOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Sync,
    SetLen,
}

const OPS: [Op; 4] = [Op::Read, Op::Write, Op::Sync, Op::SetLen];

/// A write-side operation, logged while recording.
#[derive(Debug, Clone)]
enum Logged {
    Write(u64, Vec<u8>),
    SetLen(u64),
    Sync,
}

#[derive(Debug, Default)]
struct State {
    bytes: Vec<u8>,
    /// Counting, failing and logging happen only while armed.
    armed: bool,
    fail: Option<(Op, u64)>,
    seen: [u64; 4],
    fired: bool,
    log: Vec<Logged>,
}

/// An in-memory storage backend that can fail one operation and log writes.
#[derive(Debug, Clone, Default)]
struct Faulty(Arc<Mutex<State>>);

impl Faulty {
    fn with_bytes(bytes: Vec<u8>) -> Faulty {
        Faulty(Arc::new(Mutex::new(State {
            bytes,
            ..State::default()
        })))
    }

    fn arm(&self, fail: Option<(Op, u64)>) {
        let mut s = self.0.lock().unwrap();
        s.armed = true;
        s.fail = fail;
        s.seen = [0; 4];
        s.fired = false;
        s.log.clear();
    }

    fn disarm(&self) -> (bool, [u64; 4], Vec<Logged>) {
        let mut s = self.0.lock().unwrap();
        s.armed = false;
        (s.fired, s.seen, std::mem::take(&mut s.log))
    }

    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().bytes.clone()
    }

    /// Counts `op`; an error if it is the one to fail.
    fn step(s: &mut State, op: Op) -> std::io::Result<()> {
        if !s.armed {
            return Ok(());
        }
        let i = OPS.iter().position(|o| *o == op).unwrap();
        s.seen[i] += 1;
        if s.fail == Some((op, s.seen[i])) {
            s.fired = true;
            return Err(std::io::Error::other(format!("injected {op:?} failure")));
        }
        Ok(())
    }
}

fn apply_write(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[offset as usize..end].copy_from_slice(data);
}

impl redb::StorageBackend for Faulty {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.0.lock().unwrap().bytes.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let mut s = self.0.lock().unwrap();
        Faulty::step(&mut s, Op::Read)?;
        let end = offset as usize + out.len();
        if end > s.bytes.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end",
            ));
        }
        out.copy_from_slice(&s.bytes[offset as usize..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut s = self.0.lock().unwrap();
        Faulty::step(&mut s, Op::SetLen)?;
        s.bytes.resize(len as usize, 0);
        if s.armed {
            s.log.push(Logged::SetLen(len));
        }
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let mut s = self.0.lock().unwrap();
        Faulty::step(&mut s, Op::Sync)?;
        if s.armed {
            s.log.push(Logged::Sync);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut s = self.0.lock().unwrap();
        Faulty::step(&mut s, Op::Write)?;
        apply_write(&mut s.bytes, offset, data);
        if s.armed {
            s.log.push(Logged::Write(offset, data.to_vec()));
        }
        Ok(())
    }
}

const NAME: &str = "in-memory";

/// A page cache far smaller than the file, so that the commit reads pages from
/// the backend too.
fn open(b: &Faulty) -> Result<Store, StoreError> {
    let o = StoreOptions {
        cache_size_bytes: 96 * 1024,
        ..opts()
    };
    Store::open_with_backend(b.clone(), Path::new(NAME), &o)
}

/// Every contact of `default`, sorted by key.
fn contacts(store: &Store) -> Vec<Contact> {
    let r = store.read().unwrap();
    let ws = r.workspace("default").unwrap().unwrap().id;
    let v = r.contacts(ws).unwrap();
    let mut all: Vec<Contact> = v.iter().unwrap().map(Result::unwrap).collect();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

/// The database before the commit, the commit, and the contacts after it.
struct Setup {
    image: Vec<u8>,
    before: Vec<Contact>,
    after: Vec<Contact>,
    writes: Vec<ContactWrite>,
    /// The database after the commit.
    after_image: Vec<u8>,
}

/// What runs over the armed backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// The commit of `Setup::writes` into `Setup::image`.
    Commit,
    /// `Store::compact` of `Setup::after_image`, which must change no content.
    Compact,
}

impl Action {
    fn image(self, setup: &Setup) -> &[u8] {
        match self {
            Action::Commit => &setup.image,
            Action::Compact => &setup.after_image,
        }
    }
}

fn setup() -> Setup {
    let b = Faulty::default();
    let base: Vec<Contact> = (0..1000)
        .map(|i| {
            contact(
                &format!("base-{i:05}"),
                Some(&format!("b{i}@example.com")),
                Some(&format!("+1555{i:07}")),
            )
        })
        .collect();
    {
        let store = open(&b).unwrap();
        let ws = common::default_ws(&store);
        common::apply(&store, ws, &base.iter().map(insert).collect::<Vec<_>>()).unwrap();
    }
    let image = b.bytes();
    let mut writes: Vec<ContactWrite> = (0..2000)
        .map(|i| {
            insert(&contact(
                &format!("new-{i:05}"),
                Some(&format!("n{i}@example.com")),
                Some(&format!("+1666{i:07}")),
            ))
        })
        .collect();
    for old in base.iter().step_by(4) {
        let mut new = old.clone();
        new.fields.set(
            contactdb_policy::FieldId::EMAIL,
            contactdb_policy::Value::Str(format!("changed-{}", old.key).into()),
        );
        new.version += 1;
        writes.push(update(old, &new));
    }
    let b2 = Faulty::with_bytes(image.clone());
    let store = open(&b2).unwrap();
    let before = contacts(&store);
    common::apply(&store, common::default_ws(&store), &writes).unwrap();
    let after = contacts(&store);
    assert_ne!(before, after);
    drop(store);
    Setup {
        image,
        before,
        after,
        writes,
        after_image: b2.bytes(),
    }
}

/// Opens `bytes`, checks it and says which state it holds.
fn verify(setup: &Setup, bytes: Vec<u8>, what: &str) -> &'static str {
    let b = Faulty::with_bytes(bytes);
    let store = open(&b).unwrap_or_else(|e| panic!("{what}: cannot reopen: {e}"));
    let problems = store.check().unwrap();
    assert!(problems.is_empty(), "{what}: {problems:#?}");
    let now = contacts(&store);
    if now == setup.before {
        "before"
    } else if now == setup.after {
        "after"
    } else {
        panic!(
            "{what}: {} contacts, neither the state before ({}) nor after ({})",
            now.len(),
            setup.before.len(),
            setup.after.len()
        )
    }
}

/// Opens the action's image, arms the backend, runs the action, closes; returns
/// whether the action succeeded and what the backend saw.
fn run_once(
    setup: &Setup,
    action: Action,
    fail: Option<(Op, u64)>,
) -> (Faulty, bool, bool, [u64; 4], Vec<Logged>) {
    let b = Faulty::with_bytes(action.image(setup).to_vec());
    let mut store = open(&b).unwrap();
    let ws = common::default_ws(&store);
    b.arm(fail);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let r = match action {
            Action::Commit => store.begin_write(Wait::Block).and_then(|mut w| {
                w.apply(ws, &setup.writes)?;
                w.commit()
            }),
            Action::Compact => store.compact(),
        };
        drop(store);
        r
    }));
    let (fired, seen, log) = b.disarm();
    let ok = match result {
        Ok(r) => r.is_ok(),
        Err(_) => panic!("{fail:?}: {action:?} panicked"),
    };
    (b, ok, fired, seen, log)
}

#[derive(Debug, Default)]
struct Counts {
    runs: u64,
    commit_failed: u64,
    reopened_before: u64,
    reopened_after: u64,
}

impl Counts {
    fn add(&mut self, state: &str, ok: bool) {
        self.runs += 1;
        if !ok {
            self.commit_failed += 1;
        }
        match state {
            "before" => self.reopened_before += 1,
            _ => self.reopened_after += 1,
        }
    }
}

/// Fails each op kind at N = 1, 1 + stride, …, past the last it occurs.
fn io_faults(setup: &Setup, action: Action, stride: u64) -> Vec<(Op, u64, Counts)> {
    let (_, ok, _, seen, _) = run_once(setup, action, None);
    assert!(ok);
    let mut out = Vec::new();
    for (i, op) in OPS.iter().enumerate() {
        let mut c = Counts::default();
        let mut n = 1;
        while n <= seen[i] {
            let (b, ok, fired, _, _) = run_once(setup, action, Some((*op, n)));
            assert!(fired || ok, "{op:?} #{n}");
            let state = verify(setup, b.bytes(), &format!("{action:?}: {op:?} #{n} failed"));
            if action == Action::Compact {
                assert_eq!(state, "after", "{action:?}: {op:?} #{n}");
            }
            if ok && fired {
                // A failure redb absorbed (a read it retried, a close step):
                // the commit stands.
                assert_eq!(state, "after", "{op:?} #{n}");
            }
            c.add(state, ok);
            n += if n <= 3 { 1 } else { stride };
        }
        out.push((*op, seen[i], c));
    }
    out
}

/// splitmix64.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The file after a power loss just after log entry `cut`: everything up to the
/// last sync before it, then each later write dropped, kept, or torn at 512-byte
/// sectors, by `rng`.
fn crash_image(base: &[u8], log: &[Logged], cut: usize, rng: &mut u64) -> Vec<u8> {
    let synced = log[..cut]
        .iter()
        .rposition(|l| matches!(l, Logged::Sync))
        .map_or(0, |i| i + 1);
    let mut bytes = base.to_vec();
    for l in &log[..synced] {
        match l {
            Logged::Write(o, d) => apply_write(&mut bytes, *o, d),
            Logged::SetLen(n) => bytes.resize(*n as usize, 0),
            Logged::Sync => {}
        }
    }
    for l in &log[synced..cut] {
        match l {
            Logged::SetLen(n) => bytes.resize(*n as usize, 0),
            Logged::Sync => {}
            Logged::Write(o, d) => match next(rng) % 3 {
                0 => {}
                1 => apply_write(&mut bytes, *o, d),
                _ => {
                    for (k, sector) in d.chunks(512).enumerate() {
                        if next(rng).is_multiple_of(2) {
                            apply_write(&mut bytes, o + (k * 512) as u64, sector);
                        }
                    }
                }
            },
        }
    }
    bytes
}

fn power_loss(
    setup: &Setup,
    action: Action,
    images_per_cut: u64,
    cut_stride: usize,
    seed: u64,
) -> Counts {
    let (_, ok, _, _, log) = run_once(setup, action, None);
    assert!(ok);
    let mut rng = seed;
    let mut c = Counts::default();
    // Every `cut_stride`-th point, and the points around each sync (where the
    // commit becomes durable), and the very end.
    let mut cuts: Vec<usize> = (0..=log.len()).step_by(cut_stride).collect();
    for (i, l) in log.iter().enumerate() {
        if matches!(l, Logged::Sync) {
            cuts.extend([i, i + 1, (i + 2).min(log.len())]);
        }
    }
    cuts.push(log.len());
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        for k in 0..images_per_cut {
            let image = crash_image(action.image(setup), &log, cut, &mut rng);
            let what = format!("{action:?}: power loss after op {cut} (image {k})");
            let state = verify(setup, image, &what);
            if action == Action::Compact {
                assert_eq!(state, "after", "{what}");
            }
            c.add(state, true);
        }
    }
    println!(
        "power loss: {} write-side ops logged ({} syncs)",
        log.len(),
        log.iter().filter(|l| matches!(l, Logged::Sync)).count()
    );
    c
}

fn report(faults: &[(Op, u64, Counts)], power: &Counts) {
    for (op, seen, c) in faults {
        println!("{op:?}: {seen} in the commit and close; {c:?}");
    }
    println!("power loss: {power:?}");
}

#[test]
fn sample() {
    let setup = setup();
    let faults = io_faults(&setup, Action::Commit, 101);
    let power = power_loss(&setup, Action::Commit, 2, 29, 7);
    report(&faults, &power);
    // Every kind of operation was failed at least once (the commit reads, writes,
    // syncs and grows the file), and both outcomes occurred.
    assert!(faults.iter().all(|(_, _, c)| c.runs > 0), "{faults:?}");
    assert!(
        power.reopened_before > 0 && power.reopened_after > 0,
        "{power:?}"
    );
}

#[test]
#[ignore = "every N and many power-loss images; minutes"]
fn sweep() {
    let setup = setup();
    let faults = io_faults(&setup, Action::Commit, 1);
    let power = power_loss(&setup, Action::Commit, 8, 1, 11);
    report(&faults, &power);
}

/// Compaction (the dense rebuild of every table, then redb's compaction) under
/// the same failures: whatever step fails, and wherever the power goes, the file
/// reopens clean with exactly the content it had.
#[test]
fn compaction_under_faults_changes_no_content() {
    let setup = setup();
    let faults = io_faults(&setup, Action::Compact, 499);
    let power = power_loss(&setup, Action::Compact, 1, 211, 13);
    report(&faults, &power);
    assert!(faults.iter().all(|(_, _, c)| c.runs > 0), "{faults:?}");
    assert!(power.runs > 0, "{power:?}");
}
