//! contactdb's bulk merge: a validated request and a read-only view of the database
//! in, a [`Plan`] out.
//!
//! Phase 1 runs in parallel (rayon): each record is normalized, validated, and its
//! key, email and phone are looked up in the committed snapshot. Phase 2 is a single
//! sequential pass over the records in input order with an in-request overlay, so the
//! result is exactly that of applying the records one at a time. The two
//! overlap: the calling thread resolves chunk after chunk while helpers prepare the
//! chunks after it (see [`plan_with_pool`]).
//!
//! Architecture invariant: storage reaches this crate only through [`Lookup`]; the
//! plan is pure data, and nothing here writes.

pub mod events;
mod identity;
mod mem;
mod plan;
mod resolve;

pub use mem::MemLookup;
pub use plan::{ContactWrite, Plan, Reached};
pub use resolve::{
    CHUNK_RECORDS_DEFAULT, LeftOut, Part, left_out, plan, plan_chunked, plan_part, plan_with_pool,
};

use contactdb_policy::Contact;

/// A committed contact as a [`Lookup`] finds it: the contact, and where storage
/// keeps it.
///
/// The id is storage's own row id of the contact (stable for its life, also
/// across a rekey). It is no part of the contact's value: the merge passes it
/// through, so that the store writing the contact back ([`ContactWrite::before`])
/// and the reached list ([`Reached::stored_id`]) need not look it up again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Storage's internal id of the contact; `None` when the lookup does not
    /// know it (an in-memory lookup, or a contact an earlier, uncommitted batch
    /// of the same transaction created).
    pub id: Option<u64>,
    /// The committed contact.
    pub contact: Contact,
}

impl Stored {
    /// A contact whose storage id is not known.
    pub fn without_id(contact: Contact) -> Self {
        Stored { id: None, contact }
    }
}

/// Read access to the committed state of one workspace, as of the start of the
/// request. Implementations must be safe to call from many threads at once.
pub trait Lookup: Sync {
    /// Failure of the underlying storage.
    type Error: Send;

    /// The contact whose key, or one of whose aliases, is `id`.
    fn by_identifier(&self, id: &str) -> Result<Option<Stored>, Self::Error>;

    /// The keys of every contact whose normalized email is `email`.
    fn keys_by_email(&self, email: &str) -> Result<Vec<String>, Self::Error>;

    /// The keys of every contact whose normalized gsm is `gsm`.
    fn keys_by_phone(&self, gsm: &str) -> Result<Vec<String>, Self::Error>;

    /// Every contact whose normalized email is `email`. The default resolves
    /// [`Lookup::keys_by_email`] one key at a time; a store that finds the contacts
    /// themselves overrides it.
    fn contacts_by_email(&self, email: &str) -> Result<Vec<Stored>, Self::Error> {
        contacts_of(self, self.keys_by_email(email)?)
    }

    /// Every contact whose normalized gsm is `gsm` (see [`Lookup::contacts_by_email`]).
    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Stored>, Self::Error> {
        contacts_of(self, self.keys_by_phone(gsm)?)
    }
}

/// The contacts of `keys`, skipping keys that resolve to nothing.
fn contacts_of<L: Lookup + ?Sized>(lookup: &L, keys: Vec<String>) -> Result<Vec<Stored>, L::Error> {
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let Some(c) = lookup.by_identifier(&k)? {
            out.push(c);
        }
    }
    Ok(out)
}
