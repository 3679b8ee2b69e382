//! [`PgContacts`]: one workspace's contact reads from one `REPEATABLE READ`
//! transaction, as the backend's [`ContactReads`].

use std::ops::ControlFlow;

use contactdb_backend::{ContactReads, Failure, WorkspaceId};
use contactdb_policy::Contact;

use crate::PgRead;

/// The contacts of one workspace, read from one point in time (a [`PgRead`]).
#[derive(Debug)]
pub struct PgContacts {
    read: PgRead,
    ws: WorkspaceId,
}

impl PgContacts {
    /// The contacts of `ws` as `read` sees them.
    pub fn new(read: PgRead, ws: WorkspaceId) -> Self {
        PgContacts { read, ws }
    }
}

impl ContactReads for PgContacts {
    fn resolve(&self, key_or_alias: &str) -> Result<Option<Contact>, Failure> {
        Ok(self.read.resolve(self.ws, key_or_alias)?)
    }

    fn contacts_by_email(&self, email: &str) -> Result<Vec<Contact>, Failure> {
        Ok(self.read.contacts_by_email(self.ws, email)?)
    }

    fn contacts_by_phone(&self, gsm: &str) -> Result<Vec<Contact>, Failure> {
        Ok(self.read.contacts_by_phone(self.ws, gsm)?)
    }

    fn for_each(&self, f: &mut dyn FnMut(Contact) -> ControlFlow<()>) -> Result<(), Failure> {
        Ok(self.read.for_each_contact(self.ws, f)?)
    }

    fn count(&self) -> Result<u64, Failure> {
        Ok(self.read.count(self.ws)?)
    }

    fn by_internal_id(&self, id: u64) -> Result<Option<Contact>, Failure> {
        Ok(self.read.by_internal_id(self.ws, id)?)
    }
}
