//! An in-memory [`Lookup`] over a list of contacts: for tests and merge-only
//! benchmarks, where storage must not be measured.

use std::convert::Infallible;

use ahash::AHashMap;
use contactdb_policy::Contact;

use crate::{Lookup, Stored};

/// Contacts held in hash maps, indexed like the store indexes them.
#[derive(Debug, Default, Clone)]
pub struct MemLookup {
    by_key: AHashMap<String, Contact>,
    alias: AHashMap<String, String>,
    email: AHashMap<String, Vec<String>>,
    phone: AHashMap<String, Vec<String>>,
}

impl MemLookup {
    /// Indexes these contacts. Later contacts with the same key replace earlier ones'
    /// primary entry (callers give distinct keys).
    pub fn new(contacts: impl IntoIterator<Item = Contact>) -> Self {
        let mut m = MemLookup::default();
        for c in contacts {
            for a in &c.aliases {
                m.alias.insert(a.clone(), c.key.clone());
            }
            if let Some(e) = c.email() {
                m.email.entry(e.to_owned()).or_default().push(c.key.clone());
            }
            if let Some(g) = c.gsm() {
                m.phone.entry(g.to_owned()).or_default().push(c.key.clone());
            }
            m.by_key.insert(c.key.clone(), c);
        }
        for v in m.email.values_mut().chain(m.phone.values_mut()) {
            v.sort();
        }
        m
    }

    /// Number of contacts.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are no contacts.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

impl Lookup for MemLookup {
    type Error = Infallible;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, Infallible> {
        let key = self.alias.get(id).map_or(id, String::as_str);
        Ok(self.by_key.get(key).cloned().map(Stored::without_id))
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Infallible> {
        Ok(self.email.get(email).cloned().unwrap_or_default())
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Infallible> {
        Ok(self.phone.get(gsm).cloned().unwrap_or_default())
    }
}
