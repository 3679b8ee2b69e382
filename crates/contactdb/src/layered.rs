//! A lookup that layers the writes of earlier batches of one transaction over the
//! committed snapshot, so batch N of [`crate::Workspace::bulk_atomic`] sees batches
//! 1..N exactly as if they were committed.

use ahash::{AHashMap, AHashSet};
use contactdb_merge::{ContactWrite, Lookup, Stored};

/// Changes made by earlier batches, tracked exactly for every identifier, email and
/// phone they touched. Memory grows with the number of contacts changed.
#[derive(Default)]
pub(crate) struct Carry {
    /// Current key → current contact, for every contact an earlier batch wrote.
    by_key: AHashMap<String, Stored>,
    /// Identifier → current key (`None`: resolves to nothing any more).
    ident: AHashMap<String, Option<String>>,
    email: ValueDelta,
    phone: ValueDelta,
}

/// (value, key) pairs removed from and added to a base index.
#[derive(Default)]
struct ValueDelta {
    removed: AHashMap<String, AHashSet<String>>,
    added: AHashMap<String, AHashSet<String>>,
}

impl ValueDelta {
    fn remove(&mut self, value: &str, key: &str) {
        let was_added = self.added.get_mut(value).is_some_and(|s| s.remove(key));
        if !was_added {
            self.removed
                .entry(value.to_owned())
                .or_default()
                .insert(key.to_owned());
        }
    }

    fn add(&mut self, value: &str, key: &str) {
        let was_removed = self.removed.get_mut(value).is_some_and(|s| s.remove(key));
        if !was_removed {
            self.added
                .entry(value.to_owned())
                .or_default()
                .insert(key.to_owned());
        }
    }

    fn apply(&self, value: &str, mut base: Vec<String>) -> Vec<String> {
        if let Some(r) = self.removed.get(value) {
            base.retain(|k| !r.contains(k));
        }
        if let Some(a) = self.added.get(value) {
            base.extend(a.iter().cloned());
        }
        base.sort();
        base.dedup();
        base
    }
}

impl Carry {
    /// Records the writes of one batch. Removals first, then additions, as the
    /// store applies them (so swaps inside a batch come out right).
    pub(crate) fn absorb(&mut self, writes: &[ContactWrite]) {
        for w in writes {
            if let Some(Stored { contact: b, .. }) = &w.before {
                self.by_key.remove(&b.key);
                self.ident.insert(b.key.clone(), None);
                for a in &b.aliases {
                    self.ident.insert(a.clone(), None);
                }
                if let Some(e) = b.email() {
                    self.email.remove(e, &b.key);
                }
                if let Some(g) = b.gsm() {
                    self.phone.remove(g, &b.key);
                }
            }
        }
        for w in writes {
            let a = &w.after;
            self.ident.insert(a.key.clone(), Some(a.key.clone()));
            for al in &a.aliases {
                self.ident.insert(al.clone(), Some(a.key.clone()));
            }
            if let Some(e) = a.email() {
                self.email.add(e, &a.key);
            }
            if let Some(g) = a.gsm() {
                self.phone.add(g, &a.key);
            }
            let id = w.before.as_ref().and_then(|b| b.id);
            self.by_key.insert(
                a.key.clone(),
                Stored {
                    id,
                    contact: a.clone(),
                },
            );
        }
    }
}

/// `base` with `carry` on top.
pub(crate) struct Layered<'a, L> {
    pub(crate) base: &'a L,
    pub(crate) carry: &'a Carry,
}

impl<L: Lookup> Lookup for Layered<'_, L> {
    type Error = L::Error;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, L::Error> {
        match self.carry.ident.get(id) {
            Some(None) => Ok(None),
            Some(Some(key)) => match self.carry.by_key.get(key) {
                Some(c) => Ok(Some(c.clone())),
                None => self.base.by_identifier(key),
            },
            None => self.base.by_identifier(id),
        }
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, L::Error> {
        Ok(self
            .carry
            .email
            .apply(email, self.base.keys_by_email(email)?))
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, L::Error> {
        Ok(self.carry.phone.apply(gsm, self.base.keys_by_phone(gsm)?))
    }
}
