//! Lookups fetched ahead: every contact a request's values can name, read in one
//! pass and answered from memory. A backend that reads in sets (PostgreSQL, in a
//! few queries) or that reads through its own write transaction (redb, after the
//! transaction wrote) builds one per request and hands it to the merge, which
//! then plans in parallel.

use ahash::{AHashMap, AHashSet};
use contactdb_merge::{Lookup, Stored};
use contactdb_policy::record::normalize_record;
use contactdb_policy::{BulkRequest, Catalog, Contact, Prepared};
use rayon::prelude::*;

use crate::Failure;

/// The values a request may look up: keys and aliases (one namespace), emails
/// and phones, normalized as the merge sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupValues {
    /// Keys and `new_contact_key`s.
    pub identifiers: Vec<String>,
    /// Normalized emails (only when the request matches on email), whatever the
    /// identifiers name.
    pub emails: Vec<String>,
    /// Normalized gsm numbers (only when the request matches on phone), likewise.
    pub phones: Vec<String>,
    /// The records whose email and phone the merge asks about only when their
    /// key names no contact: a record found by its key (or as an alias) is matched
    /// by nothing else, unless a record before it renames that key away, so in a
    /// request that renames no key these wait for the identifiers' answer (see
    /// [`LookupValues::emails_and_phones`]).
    pub if_unnamed: Vec<IfUnnamed>,
}

/// A record's email and phone, to look up only when its key names no contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfUnnamed {
    /// The record's key.
    pub key: String,
    /// Its normalized email, when the request matches on email.
    pub email: Option<String>,
    /// Its normalized gsm number, when the request matches on phone.
    pub gsm: Option<String>,
}

impl LookupValues {
    /// Every value the merge of `req` may ask about: the key and new key of each
    /// valid record, and its email and phone when the request matches on them —
    /// in [`LookupValues::if_unnamed`] when the record has a key and no record of
    /// the request has a new key. Normalizes the records (in parallel) to find them.
    ///
    /// ```
    /// use contactdb_backend::LookupValues;
    /// use contactdb_policy::request::prepare;
    /// use contactdb_policy::request::MatchOn;
    /// use contactdb_policy::{BulkRequest, Catalog, Limits, Mode};
    /// use serde_json::json;
    /// let mut req = BulkRequest::new(Mode::Update, vec![
    ///     json!({"contact_key": "k1", "email": " Ann@Example.com"}),
    ///     json!({"contact_key": "k2", "new_contact_key": "k3"}),
    /// ]);
    /// req.match_on = MatchOn { email: true, phone: false };
    /// let catalog = Catalog::new(&[]);
    /// let prepared = prepare(&req, &catalog, &Limits::default()).unwrap();
    /// let v = LookupValues::of_request(&req, &prepared, &catalog);
    /// assert_eq!(v.identifiers, ["k1", "k2", "k3"]);
    /// // A record renames its key: every email is looked up.
    /// assert_eq!(v.emails, ["ann@example.com"]);
    /// assert!(v.phones.is_empty() && v.if_unnamed.is_empty());
    ///
    /// req.records.pop();
    /// let v = LookupValues::of_request(&req, &prepared, &catalog);
    /// assert!(v.emails.is_empty());
    /// assert_eq!(v.if_unnamed[0].email.as_deref(), Some("ann@example.com"));
    /// // When k1 names a contact, its email need not be looked up.
    /// assert_eq!(v.emails_and_phones(|k| k == "k1"), (vec![], vec![]));
    /// assert_eq!(v.emails_and_phones(|_| false).0, ["ann@example.com"]);
    /// ```
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
        let renames = per_record
            .iter()
            .any(|[_, new_key, _, _]| new_key.is_some());
        let mut v = LookupValues::default();
        for [key, new_key, email, gsm] in per_record {
            match key {
                Some(key) if !renames && (email.is_some() || gsm.is_some()) => {
                    v.identifiers.push(key.clone());
                    v.if_unnamed.push(IfUnnamed { key, email, gsm });
                }
                key => {
                    v.identifiers.extend(key);
                    v.emails.extend(email);
                    v.phones.extend(gsm);
                }
            }
            v.identifiers.extend(new_key);
        }
        v
    }

    /// The emails and phones to look up, once `named` tells whether an
    /// identifier names a contact: [`LookupValues::emails`] and
    /// [`LookupValues::phones`], and those of [`LookupValues::if_unnamed`] whose
    /// key names none.
    pub fn emails_and_phones(&self, named: impl Fn(&str) -> bool) -> (Vec<&str>, Vec<&str>) {
        let mut emails: Vec<&str> = self.emails.iter().map(String::as_str).collect();
        let mut phones: Vec<&str> = self.phones.iter().map(String::as_str).collect();
        for r in self.if_unnamed.iter().filter(|r| !named(&r.key)) {
            emails.extend(r.email.as_deref());
            phones.extend(r.gsm.as_deref());
        }
        (emails, phones)
    }
}

/// `values` once each, sorted (probes in key order share pages).
///
/// ```
/// let v = ["b".to_owned(), "a".to_owned(), "b".to_owned()];
/// assert_eq!(contactdb_backend::distinct_sorted(&v), ["a", "b"]);
/// ```
pub fn distinct_sorted<S: AsRef<str>>(values: &[S]) -> Vec<&str> {
    let mut set: AHashSet<&str> = AHashSet::with_capacity(values.len());
    let mut out: Vec<&str> = values
        .iter()
        .map(AsRef::as_ref)
        .filter(|v| set.insert(v))
        .collect();
    out.sort_unstable();
    out
}

/// Whether `ident` is `c`'s key or one of its aliases: what an identifier entry
/// pointing to `c` must satisfy.
pub fn names(c: &Contact, ident: &str) -> bool {
    c.key == ident || c.aliases.iter().any(|a| a == ident)
}

/// An indexed field of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    /// The normalized email.
    Email,
    /// The normalized gsm number.
    Phone,
}

impl Indexed {
    /// The field's value in `c`.
    pub fn of(self, c: &Contact) -> Option<&str> {
        match self {
            Indexed::Email => c.email(),
            Indexed::Phone => c.gsm(),
        }
    }
}

/// The contacts a set of values names, as one transaction saw them: a [`Lookup`]
/// for the merge. It answers only for the values it was built for (a
/// [`Failure::Io`] otherwise, and a failed assertion in debug builds).
///
/// ```
/// use contactdb_backend::{Indexed, Prefetched};
/// use contactdb_merge::Lookup;
/// use contactdb_policy::{Contact, Fields};
/// let k1 = Contact {
///     key: "k1".to_owned(),
///     fields: Fields::new(),
///     aliases: vec![],
///     version: 1,
///     created_at_us: 0,
///     updated_at_us: 0,
/// };
/// let mut p = Prefetched::default();
/// p.add_contact(7, k1);
/// p.name("k1".to_owned(), Some(7));
/// p.name("k9".to_owned(), None);
/// p.found(Indexed::Email, "ann@example.com".to_owned(), vec![]);
/// assert_eq!(p.by_identifier("k1").unwrap().map(|s| s.id), Some(Some(7)));
/// assert!(p.by_identifier("k9").unwrap().is_none());
/// assert!(p.keys_by_email("ann@example.com").unwrap().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Prefetched {
    contacts: AHashMap<u64, Contact>,
    /// Every identifier asked, with the contact it names (if any).
    idents: AHashMap<String, Option<u64>>,
    /// Every email asked, with its contacts sorted by key.
    emails: AHashMap<String, Vec<u64>>,
    /// Every phone asked, likewise.
    phones: AHashMap<String, Vec<u64>>,
}

impl Prefetched {
    /// Keeps contact `id` (the first one given for an id stays).
    pub fn add_contact(&mut self, id: u64, c: Contact) {
        self.contacts.entry(id).or_insert(c);
    }

    /// The contact with internal id `id`, if fetched.
    pub fn contact(&self, id: u64) -> Option<&Contact> {
        self.contacts.get(&id)
    }

    /// Records that identifier `ident` names contact `id` (or none).
    pub fn name(&mut self, ident: String, id: Option<u64>) {
        self.idents.insert(ident, id);
    }

    /// Whether identifier `ident` was recorded as naming a contact.
    pub fn names_contact(&self, ident: &str) -> bool {
        matches!(self.idents.get(ident), Some(Some(_)))
    }

    /// Records that `value` of field `field` is held by the contacts `ids` (added
    /// before); they are kept sorted by key. A value given twice keeps the union.
    pub fn found(&mut self, field: Indexed, value: String, mut ids: Vec<u64>) {
        let contacts = &self.contacts;
        let map = match field {
            Indexed::Email => &mut self.emails,
            Indexed::Phone => &mut self.phones,
        };
        let list = map.entry(value).or_default();
        list.append(&mut ids);
        let key = |id: &u64| contacts.get(id).map(|c| c.key.as_str());
        list.sort_by(|a, b| key(a).cmp(&key(b)));
        list.dedup();
    }

    /// Number of distinct contacts fetched.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    /// Whether no contact was fetched.
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    fn stored(&self, id: u64) -> Option<Stored> {
        self.contacts.get(&id).map(|c| Stored {
            id: Some(id),
            contact: c.clone(),
        })
    }

    fn by_value(
        &self,
        map: &AHashMap<String, Vec<u64>>,
        what: &'static str,
        value: &str,
    ) -> Result<Vec<Stored>, Failure> {
        match map.get(value) {
            Some(ids) => Ok(ids.iter().filter_map(|id| self.stored(*id)).collect()),
            None => Err(not_prefetched(what, value)),
        }
    }
}

fn not_prefetched(what: &'static str, value: &str) -> Failure {
    debug_assert!(false, "the lookup was not built for {what} {value:?}");
    Failure::Io {
        detail: format!("internal error: the lookup was not built for {what} {value:?}"),
    }
}

impl Lookup for Prefetched {
    type Error = Failure;

    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, Failure> {
        match self.idents.get(id) {
            Some(Some(cid)) => Ok(self.stored(*cid)),
            Some(None) => Ok(None),
            None => Err(not_prefetched("identifier", id)),
        }
    }

    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Failure> {
        let found = self.contacts_by_email(email)?;
        Ok(found.into_iter().map(|s| s.contact.key).collect())
    }

    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Failure> {
        let found = self.contacts_by_phone(gsm)?;
        Ok(found.into_iter().map(|s| s.contact.key).collect())
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<Stored>, Failure> {
        self.by_value(&self.emails, "email", email)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Stored>, Failure> {
        self.by_value(&self.phones, "phone", gsm)
    }
}
