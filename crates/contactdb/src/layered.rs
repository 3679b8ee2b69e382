//! A lookup that layers the planned writes of earlier batches over a read
//! snapshot, so batch N of [`crate::Workspace::bulk_dry_run`] sees batches 1..N
//! exactly as if they were written (a dry run has no write transaction to plan
//! through: it may run on a read-only handle and beside a writer).

use ahash::{AHashMap, AHashSet};
use contactdb_merge::{ContactWrite, Lookup, Stored};

/// Changes made by earlier batches, tracked exactly for every identifier, email and
/// phone they touched. Memory grows with the number of contacts changed.
#[derive(Default)]
pub(crate) struct Carry {
    /// Current key → current contact, for every contact an earlier batch wrote.
    /// Boxed: the map's table then holds a pointer per contact, not the contact
    /// (about 180 bytes, in a table that doubles as it grows).
    by_key: AHashMap<String, Box<Stored>>,
    /// Identifier → what it names now.
    ident: AHashMap<String, Names>,
    email: ValueDelta,
    phone: ValueDelta,
}

/// What an identifier an earlier batch touched names now.
enum Names {
    /// Nothing any more.
    Nothing,
    /// The contact whose key it is.
    Itself,
    /// The contact with this key (it is an alias of it).
    Key(String),
}

/// (value, key) pairs removed from and added to a base index.
#[derive(Default)]
struct ValueDelta {
    removed: AHashMap<String, Keys>,
    added: AHashMap<String, Keys>,
}

/// The keys paired with one value: most values have one, which then takes no set.
enum Keys {
    One(String),
    Many(AHashSet<String>),
}

impl Keys {
    fn contains(&self, key: &str) -> bool {
        match self {
            Keys::One(k) => k == key,
            Keys::Many(set) => set.contains(key),
        }
    }

    fn insert(&mut self, key: &str) {
        match self {
            Keys::One(k) if k == key => {}
            Keys::One(k) => {
                let set = [std::mem::take(k), key.to_owned()].into_iter().collect();
                *self = Keys::Many(set);
            }
            Keys::Many(set) => {
                set.insert(key.to_owned());
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &String> {
        let (one, many) = match self {
            Keys::One(k) => (Some(k), None),
            Keys::Many(set) => (None, Some(set.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// Takes `key` out of `map[value]` (and the entry, once it has no key left);
/// whether it was there.
fn take(map: &mut AHashMap<String, Keys>, value: &str, key: &str) -> bool {
    let (was, emptied) = match map.get_mut(value) {
        None => return false,
        Some(Keys::One(k)) => (k == key, k == key),
        Some(Keys::Many(set)) => (set.remove(key), set.is_empty()),
    };
    if emptied {
        map.remove(value);
    }
    was
}

/// Puts `key` into `map[value]`.
fn put(map: &mut AHashMap<String, Keys>, value: &str, key: &str) {
    match map.get_mut(value) {
        Some(keys) => keys.insert(key),
        None => {
            map.insert(value.to_owned(), Keys::One(key.to_owned()));
        }
    }
}

impl ValueDelta {
    fn remove(&mut self, value: &str, key: &str) {
        if !take(&mut self.added, value, key) {
            put(&mut self.removed, value, key);
        }
    }

    fn add(&mut self, value: &str, key: &str) {
        if !take(&mut self.removed, value, key) {
            put(&mut self.added, value, key);
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
                self.ident.insert(b.key.clone(), Names::Nothing);
                for a in &b.aliases {
                    self.ident.insert(a.clone(), Names::Nothing);
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
            self.ident.insert(a.key.clone(), Names::Itself);
            for al in &a.aliases {
                self.ident.insert(al.clone(), Names::Key(a.key.clone()));
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
                Box::new(Stored {
                    id,
                    contact: a.clone(),
                }),
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
        let key = match self.carry.ident.get(id) {
            Some(Names::Nothing) => return Ok(None),
            Some(Names::Itself) => id,
            Some(Names::Key(key)) => key.as_str(),
            None => return self.base.by_identifier(id),
        };
        match self.carry.by_key.get(key) {
            Some(c) => Ok(Some(Stored::clone(c))),
            None => self.base.by_identifier(key),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ValueDelta;

    // Adds and removals of (value, key) pairs over a base index, in a long
    // pseudo-random sequence (a pair is removed only while it is there and added
    // only while it is not, as writes do): the delta over the base answers as the
    // plain set of pairs does, for values with no, one and many keys.
    #[test]
    fn a_value_delta_answers_as_the_plain_set_of_pairs() {
        let values = ["a@x.io", "b@x.io", "c@x.io"];
        let keys = ["k1", "k2", "k3", "k4", "k5"];
        let base: BTreeSet<(usize, usize)> = [(0, 0), (0, 1), (1, 2)].into();
        let mut model = base.clone();
        let mut delta = ValueDelta::default();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..2_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let pair = ((state % 3) as usize, ((state >> 8) % 5) as usize);
            let (value, key) = (values[pair.0], keys[pair.1]);
            if model.remove(&pair) {
                delta.remove(value, key);
            } else {
                model.insert(pair);
                delta.add(value, key);
            }
            for (v, value) in values.iter().enumerate() {
                let in_base: Vec<String> = base
                    .iter()
                    .filter(|p| p.0 == v)
                    .map(|p| keys[p.1].to_owned())
                    .collect();
                let want: Vec<String> = model
                    .iter()
                    .filter(|p| p.0 == v)
                    .map(|p| keys[p.1].to_owned())
                    .collect();
                assert_eq!(delta.apply(value, in_base), want, "step {step}, {value}");
            }
        }
    }
}
