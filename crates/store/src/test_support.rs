//! Helpers shared by the store's unit tests.
#![allow(clippy::unwrap_used)]

use contactdb_policy::{Contact, FieldId, Fields, Value};

use crate::{Store, WorkspaceId};

/// A contact with an email, a phone and aliases.
pub(crate) fn contact(key: &str, email: &str, gsm: &str, aliases: &[&str]) -> Contact {
    Contact {
        key: key.into(),
        fields: Fields::from_pairs([
            (FieldId::EMAIL, Value::Str(email.into())),
            (FieldId::GSM, Value::Str(gsm.into())),
        ]),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        version: 1,
        created_at_us: 0,
        updated_at_us: 0,
    }
}

/// The id of the `default` workspace.
pub(crate) fn default_ws(store: &Store) -> WorkspaceId {
    store
        .read()
        .unwrap()
        .workspace("default")
        .unwrap()
        .unwrap()
        .id
}
