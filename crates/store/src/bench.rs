//! The store's physical layout, for a benchmark floor that writes it directly
//! (`benches/compare`'s redb floor: the store's writes without validation or
//! matching). Only with the `bench` feature; not a stable interface.
//!
//! Tables and key encodings are those of `docs/format.md`; [`write`] and
//! [`compact`] are the store's own tiered-table writes, so the floor pays exactly
//! what the store pays for them.

pub use crate::keys::{
    CONTACTS, EMAIL_INDEX, IDENTIFIERS, PHONE_INDEX, contact_key, index_key, ws_key,
};
pub use crate::tiered::{Tiered, compact, write};
