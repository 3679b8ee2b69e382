//! Named limits of the contract, and the configurable ones.

/// Longest `contact_key` (and alias), in bytes, after trimming.
pub const KEY_BYTES_MAX: usize = 255;
/// Longest `name`, `surname`, `gender`, in characters.
pub const TEXT_CHARS_MAX: u32 = 100;
/// Longest `email`, in characters.
pub const EMAIL_CHARS_MAX: usize = 255;
/// Longest local part of an email, in characters.
pub const EMAIL_LOCAL_CHARS_MAX: usize = 64;
/// Fewest digits of an E.164 number after `+`.
pub const PHONE_DIGITS_MIN: usize = 7;
/// Most digits of an E.164 number after `+`.
pub const PHONE_DIGITS_MAX: usize = 15;
/// Largest `metadata` (or any json column) serialized, in bytes.
pub const METADATA_BYTES_MAX: usize = 64 * 1024;
/// Deepest nesting of arrays/objects in a json column: deeper values could not be
/// read back by serde_json (limit 128) and risk the stack.
pub const JSON_DEPTH_MAX: usize = 100;
/// Default `priority` of a contact.
pub const PRIORITY_DEFAULT: i64 = 5;
/// Default most records in one request.
pub const RECORDS_MAX_DEFAULT: usize = 10_000;
/// Hard ceiling on the configurable records limit: one request is one transaction
/// held in memory, so it is bounded.
pub const RECORDS_MAX_CEILING: usize = 1_000_000;
/// Longest custom column name, in bytes (`[a-z][a-z0-9_]{0,62}`).
pub const COLUMN_NAME_BYTES_MAX: usize = 63;
/// Longest declared `string(max_len)` of a custom column, in characters.
pub const STRING_MAX_LEN_CEILING: u32 = 65_536;
/// Longest `request_id`, in bytes.
pub const REQUEST_ID_BYTES_MAX: usize = 255;
/// Most custom columns one workspace may declare.
pub const CUSTOM_COLUMNS_MAX: usize = 1_000;

/// The configurable limits of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most records in one bulk request. Default = [`RECORDS_MAX_DEFAULT`].
    pub records_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            records_max: RECORDS_MAX_DEFAULT,
        }
    }
}
