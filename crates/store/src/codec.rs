//! The on-disk encoding of every stored value: a format tag byte, then postcard.
//!
//! The stored structs here are separate from the domain types of `contactdb-policy`
//! on purpose: the domain types may change freely, these may not. Changing a stored
//! struct (a field, its order, a variant) means a new tag byte or a new
//! `FORMAT_VERSION`, and an entry in `docs/format.md`.

use contactdb_policy::{ColumnType, Contact, FieldId, Fields, Value};
use serde::{Deserialize, Serialize, Serializer};

use crate::StoreError;

/// Tag byte of a [`StoredContact`], version 1.
pub const TAG_CONTACT_V1: u8 = 0x01;
/// Tag byte of a [`StoredWorkspace`], version 1.
pub const TAG_WORKSPACE_V1: u8 = 0x02;
/// Tag byte of a [`StoredColumn`], version 1.
pub const TAG_COLUMN_V1: u8 = 0x03;
/// Tag byte of a [`StoredRequestV1`], version 1.
pub const TAG_REQUEST_V1: u8 = 0x04;
/// Tag byte of a [`StoredCampaign`], version 1.
pub const TAG_CAMPAIGN_V1: u8 = 0x05;
/// Tag byte of a [`StoredEvents`], version 1.
pub const TAG_EVENT_V1: u8 = 0x06;
/// Tag byte of a [`StoredJob`], version 1.
pub const TAG_JOB_V1: u8 = 0x07;
/// Tag byte of a [`StoredApiKey`], version 1.
pub const TAG_API_KEY_V1: u8 = 0x08;

/// One column value as stored. Postcard writes the variant index as a varint:
/// `Str` = 0, `Bool` = 1, `Int` = 2, `Decimal` = 3, `Json` = 4. Never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredValue {
    /// Text.
    Str(String),
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Decimal, canonical text.
    Decimal(String),
    /// JSON, canonical text.
    Json(String),
}

/// A contact as stored in `contacts`; the table key is its internal id.
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "the reference definition of the stored layout: encoding and decoding use borrowed twins, which tests hold to it"
    )
)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredContact {
    /// The contact key.
    pub key: String,
    /// `(field id, value)` in id order.
    pub fields: Vec<(u16, StoredValue)>,
    /// Aliases in the order they were added.
    pub aliases: Vec<String>,
    /// Version.
    pub version: u64,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// Last change time, µs since the Unix epoch.
    pub updated_at_us: i64,
}

/// What encoding a contact writes: [`StoredContact`]'s fields in its order, borrowed
/// from the domain contact instead of copied into a `StoredContact` first. Postcard
/// writes names of neither structs nor variants, so both produce the same bytes; a
/// test holds them together. Decoding always goes through [`StoredContact`].
#[derive(Serialize)]
struct StoredContactRef<'a> {
    key: &'a str,
    fields: FieldsRef<'a>,
    aliases: &'a [String],
    version: u64,
    created_at_us: i64,
    updated_at_us: i64,
}

/// A contact's fields, serialized as `StoredContact::fields` (a length-prefixed
/// sequence of `(u16, StoredValue)`).
struct FieldsRef<'a>(&'a Fields);

impl Serialize for FieldsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(id, v)| (id.0, StoredValueRef::of(v))))
    }
}

/// [`StoredValue`] borrowed, for encoding (from a domain value) and decoding (from
/// the stored bytes): the same variants in the same order.
#[derive(Serialize, Deserialize)]
enum StoredValueRef<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Decimal(&'a str),
    Json(&'a str),
}

impl<'a> StoredValueRef<'a> {
    fn of(v: &'a Value) -> Self {
        match v {
            Value::Str(s) => StoredValueRef::Str(s),
            Value::Bool(b) => StoredValueRef::Bool(*b),
            Value::Int(i) => StoredValueRef::Int(*i),
            Value::Decimal(d) => StoredValueRef::Decimal(d),
            Value::Json(j) => StoredValueRef::Json(j),
        }
    }
}

/// What decoding a contact reads: [`StoredContact`] with its strings borrowed from
/// the stored bytes, so that values short enough to be held inline are never first
/// allocated as a `String`. A test holds it to [`StoredContact`].
#[derive(Deserialize)]
struct StoredContactDe<'a> {
    key: &'a str,
    #[serde(borrow)]
    fields: Vec<(u16, StoredValueRef<'a>)>,
    #[serde(borrow)]
    aliases: Vec<&'a str>,
    version: u64,
    created_at_us: i64,
    updated_at_us: i64,
}

/// A workspace as stored in `workspaces`; its number is the table key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWorkspace {
    /// Slug.
    pub slug: String,
    /// UUID bytes.
    pub uuid: [u8; 16],
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// The id the next declared custom column gets.
    pub next_field_id: u16,
    /// Number of contacts in the workspace, kept by `apply` in the same transaction
    /// (contacts are never deleted; a rekey keeps the count).
    pub contacts: u64,
    /// The internal id the next inserted contact gets (starts at 1; never reused).
    pub next_contact_id: u64,
}

/// Column type codes of [`StoredColumn::ty`].
pub mod column_type {
    /// `string(max_len)`.
    pub const STRING: u8 = 1;
    /// `integer`.
    pub const INTEGER: u8 = 2;
    /// `decimal`.
    pub const DECIMAL: u8 = 3;
    /// `boolean`.
    pub const BOOLEAN: u8 = 4;
    /// `date`.
    pub const DATE: u8 = 5;
    /// `json`.
    pub const JSON: u8 = 6;
}

/// A custom column as stored in `columns`; workspace and name are the table key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredColumn {
    /// Stable field id.
    pub id: u16,
    /// Type code, see [`column_type`].
    pub ty: u8,
    /// `max_len` of a string column, 0 for other types.
    pub max_len: u32,
    /// Whether bulk requests may write it.
    pub import_enabled: bool,
    /// Whether inserts must give it a value.
    pub required: bool,
}

/// An applied request id as stored in `requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRequestV1 {
    /// SHA-256 of the canonical request body.
    pub body_hash: [u8; 32],
    /// When it was applied, µs since the Unix epoch.
    pub applied_at_us: i64,
    /// The report of the first application, as JSON text.
    pub report_json: String,
}

/// A campaign as stored in `campaigns`; workspace and number are the table key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCampaign {
    /// Its name, unique in the workspace.
    pub name: String,
    /// Columns every member must have a value for.
    pub required: Vec<String>,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// The join number the next member gets (order of joining).
    pub next_join: u64,
    /// Number of members.
    pub members: u64,
}

/// The change events of one write transaction in one workspace, as stored in
/// `feed`: the table key is the workspace and the first event's sequence number;
/// the events have the consecutive numbers from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvents {
    /// When, µs since the Unix epoch.
    pub at_us: i64,
    /// The request's trigger, as JSON text.
    pub trigger: Option<String>,
    /// The job that made the changes.
    pub job: Option<String>,
    /// The events, in sequence order.
    pub events: Vec<StoredEvent>,
}

/// One change event inside [`StoredEvents`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Kind code: 1 insert, 2 update, 3 rekey, 4 alias, 5 join.
    pub kind: u8,
    /// The contact's key after the change.
    pub key: String,
    /// The contact's version after the change.
    pub version: u64,
    /// The previous key (rekey), the new alias (alias) or the campaign (join).
    pub detail: Option<String>,
}

/// An API key as stored in `api_keys`; the SHA-256 of its token is the table key
/// (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredApiKey {
    /// Its id (UUID bytes), to list and revoke it by.
    pub id: [u8; 16],
    /// The workspace it belongs to.
    pub ws: u32,
    /// Role code: 1 read, 2 write, 3 manage.
    pub role: u8,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A background job as stored in `jobs`; workspace and job number are the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredJob {
    /// Its id (UUID bytes).
    pub id: [u8; 16],
    /// State code: 1 queued, 2 running, 3 succeeded, 4 failed, 5 cancelled.
    pub state: u8,
    /// Records processed so far.
    pub processed: u64,
    /// Records in the request.
    pub total: u64,
    /// Submission time, µs since the Unix epoch.
    pub submitted_at_us: i64,
    /// Last change of state or progress, µs since the Unix epoch.
    pub updated_at_us: i64,
    /// The report so far (JSON text), empty before the first chunk.
    pub report_json: String,
    /// Why a failed job failed.
    pub error: Option<String>,
}

fn encode<T: Serialize>(table: &'static str, tag: u8, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(64);
    out.push(tag);
    postcard::to_extend(value, out)
        .map_err(|e| StoreError::corrupt(table, format!("cannot encode value: {e}")))
}

fn decode<'a, T: Deserialize<'a>>(
    table: &'static str,
    tag: u8,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    let Some((&found, body)) = bytes.split_first() else {
        return Err(StoreError::corrupt(table, "empty value"));
    };
    if found != tag {
        return Err(StoreError::corrupt(
            table,
            format!("unknown format tag 0x{found:02x} (expected 0x{tag:02x})"),
        ));
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| StoreError::corrupt(table, format!("undecodable value: {e}")))?;
    if !rest.is_empty() {
        return Err(StoreError::corrupt(
            table,
            format!("{} trailing bytes after the value", rest.len()),
        ));
    }
    Ok(value)
}

fn value_from_stored(v: StoredValueRef<'_>) -> Value {
    match v {
        StoredValueRef::Str(s) => Value::Str(s.into()),
        StoredValueRef::Bool(b) => Value::Bool(b),
        StoredValueRef::Int(i) => Value::Int(i),
        StoredValueRef::Decimal(d) => Value::Decimal(d.to_owned()),
        StoredValueRef::Json(j) => Value::Json(j.to_owned()),
    }
}

/// The domain contact of a decoded one.
fn contact_from_stored(s: StoredContactDe<'_>) -> Contact {
    Contact {
        key: s.key.to_owned(),
        fields: Fields::from_sorted_pairs(
            s.fields
                .into_iter()
                .map(|(id, v)| (FieldId(id), value_from_stored(v)))
                .collect(),
        ),
        aliases: s.aliases.into_iter().map(str::to_owned).collect(),
        version: s.version,
        created_at_us: s.created_at_us,
        updated_at_us: s.updated_at_us,
    }
}

/// Encodes a contact for the `contacts` table.
pub fn encode_contact(c: &Contact) -> Result<Vec<u8>, StoreError> {
    let stored = StoredContactRef {
        key: &c.key,
        fields: FieldsRef(&c.fields),
        aliases: &c.aliases,
        version: c.version,
        created_at_us: c.created_at_us,
        updated_at_us: c.updated_at_us,
    };
    encode("contacts", TAG_CONTACT_V1, &stored)
}

/// Decodes a `contacts` value.
pub fn decode_contact(bytes: &[u8]) -> Result<Contact, StoreError> {
    let s: StoredContactDe<'_> = decode("contacts", TAG_CONTACT_V1, bytes)?;
    Ok(contact_from_stored(s))
}

/// Encodes a workspace record.
pub fn encode_workspace(w: &StoredWorkspace) -> Result<Vec<u8>, StoreError> {
    encode("workspaces", TAG_WORKSPACE_V1, w)
}

/// Decodes a workspace record.
pub fn decode_workspace(bytes: &[u8]) -> Result<StoredWorkspace, StoreError> {
    decode("workspaces", TAG_WORKSPACE_V1, bytes)
}

/// The stored form of a column type: `(type code, max_len)`.
pub fn column_type_to_stored(ty: ColumnType) -> (u8, u32) {
    match ty {
        ColumnType::String { max_len } => (column_type::STRING, max_len),
        ColumnType::Integer => (column_type::INTEGER, 0),
        ColumnType::Decimal => (column_type::DECIMAL, 0),
        ColumnType::Boolean => (column_type::BOOLEAN, 0),
        ColumnType::Date => (column_type::DATE, 0),
        ColumnType::Json => (column_type::JSON, 0),
    }
}

/// The column type of a stored `(type code, max_len)`.
pub fn column_type_from_stored(ty: u8, max_len: u32) -> Result<ColumnType, StoreError> {
    Ok(match ty {
        column_type::STRING => ColumnType::String { max_len },
        column_type::INTEGER => ColumnType::Integer,
        column_type::DECIMAL => ColumnType::Decimal,
        column_type::BOOLEAN => ColumnType::Boolean,
        column_type::DATE => ColumnType::Date,
        column_type::JSON => ColumnType::Json,
        other => {
            return Err(StoreError::corrupt(
                "columns",
                format!("unknown column type code {other}"),
            ));
        }
    })
}

/// Encodes a column record.
pub fn encode_column(c: &StoredColumn) -> Result<Vec<u8>, StoreError> {
    encode("columns", TAG_COLUMN_V1, c)
}

/// Decodes a column record.
pub fn decode_column(bytes: &[u8]) -> Result<StoredColumn, StoreError> {
    decode("columns", TAG_COLUMN_V1, bytes)
}

/// Encodes a request record.
pub fn encode_request(r: &StoredRequestV1) -> Result<Vec<u8>, StoreError> {
    encode("requests", TAG_REQUEST_V1, r)
}

/// Decodes a request record.
pub fn decode_request(bytes: &[u8]) -> Result<StoredRequestV1, StoreError> {
    decode("requests", TAG_REQUEST_V1, bytes)
}

/// Encodes a campaign record.
pub fn encode_campaign(c: &StoredCampaign) -> Result<Vec<u8>, StoreError> {
    encode("campaigns", TAG_CAMPAIGN_V1, c)
}

/// Decodes a campaign record.
pub fn decode_campaign(bytes: &[u8]) -> Result<StoredCampaign, StoreError> {
    decode("campaigns", TAG_CAMPAIGN_V1, bytes)
}

/// Encodes one transaction's feed events.
pub fn encode_events(e: &StoredEvents) -> Result<Vec<u8>, StoreError> {
    encode("feed", TAG_EVENT_V1, e)
}

/// Decodes one transaction's feed events.
pub fn decode_events(bytes: &[u8]) -> Result<StoredEvents, StoreError> {
    decode("feed", TAG_EVENT_V1, bytes)
}

/// Encodes a job record.
pub fn encode_job(j: &StoredJob) -> Result<Vec<u8>, StoreError> {
    encode("jobs", TAG_JOB_V1, j)
}

/// Decodes a job record.
pub fn decode_job(bytes: &[u8]) -> Result<StoredJob, StoreError> {
    decode("jobs", TAG_JOB_V1, bytes)
}

/// Encodes an API key record.
pub fn encode_api_key(k: &StoredApiKey) -> Result<Vec<u8>, StoreError> {
    encode("api_keys", TAG_API_KEY_V1, k)
}

/// Decodes an API key record.
pub fn decode_api_key(bytes: &[u8]) -> Result<StoredApiKey, StoreError> {
    decode("api_keys", TAG_API_KEY_V1, bytes)
}

#[cfg(test)]
mod tests;
