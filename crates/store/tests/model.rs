//! Randomized test of `WriteView::apply` against an in-memory model: batches of
//! inserts, email/phone changes, alias additions and rekeys (which produce chains
//! and swaps inside one batch) keep `check()` clean and every lookup equal to the
//! model's answer.

mod common;

use std::collections::BTreeMap;

use common::*;
use contactdb_backend::Wait;
use contactdb_merge::{ContactWrite, Stored};
use contactdb_policy::{Contact, FieldId, Value};
use contactdb_store::{ContactsView, StoreError};

/// xorshift64*: deterministic, seedable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const KEYS: usize = 14;
const EMAILS: usize = 4;
const PHONES: usize = 4;

fn key_name(i: usize) -> String {
    format!("k{i}")
}

/// The model: contacts by a stable identity (never stored).
#[derive(Clone, Default)]
struct Model {
    contacts: BTreeMap<u32, Contact>,
    next_id: u32,
}

impl Model {
    fn taken(&self, name: &str) -> bool {
        self.contacts
            .values()
            .any(|c| c.key == name || c.aliases.iter().any(|a| a == name))
    }

    fn free_name(&self, rng: &mut Rng) -> Option<String> {
        let start = rng.below(KEYS);
        (0..KEYS)
            .map(|i| key_name((start + i) % KEYS))
            .find(|n| !self.taken(n))
    }

    fn pick(&self, rng: &mut Rng) -> Option<u32> {
        if self.contacts.is_empty() {
            return None;
        }
        let i = rng.below(self.contacts.len());
        self.contacts.keys().nth(i).copied()
    }

    /// One random sequential operation; returns the identity it touched.
    fn step(&mut self, rng: &mut Rng) -> Option<u32> {
        match rng.below(6) {
            0 => {
                let key = self.free_name(rng)?;
                let email = (rng.below(3) > 0).then(|| format!("e{}@x.io", rng.below(EMAILS)));
                let gsm = (rng.below(3) > 0).then(|| format!("+10000{}", rng.below(PHONES)));
                let id = self.next_id;
                self.next_id += 1;
                self.contacts
                    .insert(id, contact(&key, email.as_deref(), gsm.as_deref()));
                Some(id)
            }
            1 => {
                let id = self.pick(rng)?;
                let c = self.contacts.get_mut(&id)?;
                match rng.below(3) {
                    0 => {
                        c.fields.remove(FieldId::EMAIL);
                    }
                    _ => c.fields.set(
                        FieldId::EMAIL,
                        Value::Str(format!("e{}@x.io", rng.below(EMAILS)).into()),
                    ),
                }
                c.version += 1;
                Some(id)
            }
            2 => {
                let id = self.pick(rng)?;
                let c = self.contacts.get_mut(&id)?;
                match rng.below(3) {
                    0 => {
                        c.fields.remove(FieldId::GSM);
                    }
                    _ => c.fields.set(
                        FieldId::GSM,
                        Value::Str(format!("+10000{}", rng.below(PHONES)).into()),
                    ),
                }
                c.version += 1;
                Some(id)
            }
            3 => {
                let id = self.pick(rng)?;
                let name = self.free_name(rng)?;
                let c = self.contacts.get_mut(&id)?;
                c.aliases.push(name);
                c.version += 1;
                Some(id)
            }
            4 => {
                // Rekey to a free name.
                let id = self.pick(rng)?;
                let name = self.free_name(rng)?;
                let c = self.contacts.get_mut(&id)?;
                c.key = name;
                c.version += 1;
                Some(id)
            }
            _ => {
                // Rekey to one of its own aliases.
                let id = self.pick(rng)?;
                let c = self.contacts.get_mut(&id)?;
                if c.aliases.is_empty() {
                    return None;
                }
                let i = rng.below(c.aliases.len());
                c.key = c.aliases.remove(i);
                c.version += 1;
                Some(id)
            }
        }
    }
}

fn verify(model: &Model, v: &ContactsView) -> Result<(), StoreError> {
    assert_eq!(v.count()?, model.contacts.len() as u64);
    let mut by_key: BTreeMap<&str, &Contact> = BTreeMap::new();
    for c in model.contacts.values() {
        by_key.insert(&c.key, c);
    }
    let mut stored: Vec<Contact> = v.iter()?.collect::<Result<_, _>>()?;
    stored.sort_by(|a, b| a.key.cmp(&b.key));
    let want: Vec<Contact> = by_key.values().map(|c| (*c).clone()).collect();
    assert_eq!(stored, want);
    for i in 0..KEYS {
        let name = key_name(i);
        let want = model
            .contacts
            .values()
            .find(|c| c.key == name || c.aliases.contains(&name));
        assert_eq!(v.resolve(&name)?.as_ref(), want, "resolve {name}");
        let want_get = model.contacts.values().find(|c| c.key == name);
        assert_eq!(v.get(&name)?.as_ref(), want_get, "get {name}");
    }
    for e in 0..EMAILS {
        let email = format!("e{e}@x.io");
        let want: Vec<String> = by_key
            .values()
            .filter(|c| c.email() == Some(email.as_str()))
            .map(|c| c.key.clone())
            .collect();
        assert_eq!(v.keys_by_email(&email)?, want, "email {email}");
    }
    for p in 0..PHONES {
        let gsm = format!("+10000{p}");
        let want: Vec<String> = by_key
            .values()
            .filter(|c| c.gsm() == Some(gsm.as_str()))
            .map(|c| c.key.clone())
            .collect();
        assert_eq!(v.keys_by_phone(&gsm)?, want, "gsm {gsm}");
    }
    Ok(())
}

#[test]
fn random_batches_match_the_model() -> Result<(), StoreError> {
    let mut chained_batches = 0;
    for seed in 1..=6u64 {
        let (_dir, _path, store) = temp_store();
        let ws = default_ws(&store);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut committed = Model::default();
        for batch in 0..40 {
            let mut work = committed.clone();
            let mut touched = Vec::new();
            for _ in 0..rng.below(12) + 1 {
                if let Some(id) = work.step(&mut rng)
                    && !touched.contains(&id)
                {
                    touched.push(id);
                }
            }
            let writes: Vec<ContactWrite> = touched
                .iter()
                .filter_map(|id| {
                    Some(ContactWrite {
                        before: committed.contacts.get(id).cloned().map(Stored::without_id),
                        after: work.contacts.get(id)?.clone(),
                    })
                })
                .collect();
            // A key freed by one write and taken by another in the same batch.
            if writes.iter().any(|a| {
                writes.iter().any(|b| {
                    b.before
                        .as_ref()
                        .is_some_and(|bb| bb.contact.key != b.after.key)
                        && b.before.as_ref().map(|b| &b.contact.key) == Some(&a.after.key)
                })
            }) {
                chained_batches += 1;
            }
            let mut w = store.begin_write(Wait::No)?;
            // The planning view (with base filters, built when due) answers as the
            // plain one; so does one taken after this transaction merged (it then
            // keeps the filters it has). Now and then the filters are dropped, so
            // that they are built again from a populated base.
            if batch % 7 == 3 {
                store.drop_filters();
            }
            verify(&committed, &store.bulk_contacts(&w, ws, 1)?)?;
            w.apply(ws, &writes)?;
            verify(&committed, &store.bulk_contacts(&w, ws, 1)?)?;
            // Every fifth batch is aborted: nothing of it may remain.
            if batch % 5 == 4 {
                drop(w);
            } else {
                w.commit()?;
                committed = work;
            }
            let problems = store.check()?;
            assert!(
                problems.is_empty(),
                "seed {seed} batch {batch}: {problems:#?}"
            );
            verify(&committed, &store.read()?.contacts(ws)?)?;
        }
        // Tiny slack (`opts`): the filters were rebuilt many times.
        assert!(
            store.filter_builds() > 5,
            "{} builds",
            store.filter_builds()
        );
    }
    assert!(
        chained_batches > 5,
        "only {chained_batches} batches chain keys"
    );
    Ok(())
}
