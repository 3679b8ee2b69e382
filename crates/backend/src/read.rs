//! [`ContactReads`]: the reads of one workspace's contacts that every backend
//! answers from one point in time.

use std::ops::ControlFlow;

use contactdb_policy::Contact;

use crate::Failure;

/// Reads of one workspace's contacts from one consistent point in time: a redb read
/// transaction, or a PostgreSQL `REPEATABLE READ` transaction. Values given to it
/// are in stored form (a trimmed key, a normalized email or E.164 phone).
///
/// ```
/// use std::ops::ControlFlow;
/// use contactdb_backend::{ContactReads, Failure};
/// use contactdb_policy::Contact;
///
/// /// A workspace with no contacts.
/// struct Empty;
/// impl ContactReads for Empty {
///     fn resolve(&self, _: &str) -> Result<Option<Contact>, Failure> { Ok(None) }
///     fn contacts_by_email(&self, _: &str) -> Result<Vec<Contact>, Failure> { Ok(vec![]) }
///     fn contacts_by_phone(&self, _: &str) -> Result<Vec<Contact>, Failure> { Ok(vec![]) }
///     fn for_each(&self, _: &mut dyn FnMut(Contact) -> ControlFlow<()>) -> Result<(), Failure> {
///         Ok(())
///     }
///     fn count(&self) -> Result<u64, Failure> { Ok(0) }
///     fn by_internal_id(&self, _: u64) -> Result<Option<Contact>, Failure> { Ok(None) }
/// }
/// let reads: Box<dyn ContactReads> = Box::new(Empty);
/// assert_eq!(reads.count()?, 0);
/// assert!(reads.resolve("k1")?.is_none());
/// # Ok::<(), Failure>(())
/// ```
pub trait ContactReads {
    /// The contact whose key, or one of whose aliases, is `key_or_alias`.
    fn resolve(&self, key_or_alias: &str) -> Result<Option<Contact>, Failure>;
    /// The contacts whose email is `email`, by key.
    fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, Failure>;
    /// The contacts whose phone is `gsm`, by key.
    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Contact>, Failure>;
    /// Calls `f` with every contact, until it breaks.
    fn for_each(&self, f: &mut dyn FnMut(Contact) -> ControlFlow<()>) -> Result<(), Failure>;
    /// How many contacts the workspace holds.
    fn count(&self) -> Result<u64, Failure>;
    /// The contact with internal id `id` (as a campaign's members name them).
    fn by_internal_id(&self, id: u64) -> Result<Option<Contact>, Failure>;
}
