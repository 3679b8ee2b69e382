//! The report of a bulk request: one result per input record, in input order,
//! every error and every warning.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Stable per-record error codes, in order of precedence: a record that fails
/// validation is not matched, so at most one matching-stage code appears per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No `contact_key`, or an empty one.
    MissingKey,
    /// A key with control characters.
    InvalidKey,
    /// A value longer than its column allows.
    TooLong,
    /// Not a valid email.
    InvalidEmail,
    /// Not a phone number that normalizes to E.164.
    InvalidPhone,
    /// Not a real `YYYY-MM-DD` date.
    InvalidDate,
    /// Not `A` or `P`.
    InvalidEnum,
    /// A value of the wrong JSON type for its column.
    InvalidType,
    /// `priority` not an integer ≥ 0.
    InvalidPriority,
    /// `metadata` (or a json column) over 64 KiB serialized.
    MetadataTooLarge,
    /// A required column without a value on insert, or cleared on update.
    RequiredMissing,
    /// `update` of a contact that does not exist.
    NotFound,
    /// `insert` of a contact that exists.
    AlreadyExists,
    /// `new_contact_key` held by another contact or alias.
    KeyConflict,
    /// Email/phone matched two or more contacts.
    AmbiguousMatch,
    /// A later occurrence of a contact under `on_duplicate=reject`.
    DuplicateInBatch,
    /// The contact would join the request's campaign without a value for one of
    /// the campaign's required columns.
    CampaignColumnMissing,
}

impl ErrorCode {
    /// The stable snake_case text of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingKey => "missing_key",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::TooLong => "too_long",
            ErrorCode::InvalidEmail => "invalid_email",
            ErrorCode::InvalidPhone => "invalid_phone",
            ErrorCode::InvalidDate => "invalid_date",
            ErrorCode::InvalidEnum => "invalid_enum",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::InvalidPriority => "invalid_priority",
            ErrorCode::MetadataTooLarge => "metadata_too_large",
            ErrorCode::RequiredMissing => "required_missing",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::KeyConflict => "key_conflict",
            ErrorCode::AmbiguousMatch => "ambiguous_match",
            ErrorCode::DuplicateInBatch => "duplicate_in_batch",
            ErrorCode::CampaignColumnMissing => "campaign_column_missing",
        }
    }

    /// Whether the code comes from validating the record on its own (as opposed to
    /// matching it against the database). Records with such errors count as `invalid`.
    pub fn is_validation(self) -> bool {
        !matches!(
            self,
            ErrorCode::NotFound
                | ErrorCode::AlreadyExists
                | ErrorCode::KeyConflict
                | ErrorCode::AmbiguousMatch
                | ErrorCode::DuplicateInBatch
                | ErrorCode::CampaignColumnMissing
                | ErrorCode::RequiredMissing
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Warning codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningCode {
    /// The record reached a contact an earlier record of the request reached.
    DuplicateInBatch,
    /// A value was reformatted (phone), lowercased (email) or trimmed.
    ValueNormalized,
    /// The record's key became an alias of the matched contact.
    AliasAdded,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new contact was created.
    Inserted,
    /// An existing contact changed.
    Updated,
    /// Matched, and nothing would change.
    Unchanged,
    /// The record failed; see `errors`.
    Failed,
    /// Left out by `on_duplicate=first|last`.
    Duplicate,
    /// Valid, but the request was rejected under `on_invalid=abort`.
    NotApplied,
}

impl Outcome {
    /// Whether the record was applied (inserted, updated or unchanged): what a
    /// rejected request reports as `not_applied` instead.
    pub fn is_applied(self) -> bool {
        matches!(
            self,
            Outcome::Inserted | Outcome::Updated | Outcome::Unchanged
        )
    }
}

/// How a record found its contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// By `contact_key`.
    Key,
    /// By a key that is an alias of the contact.
    Alias,
    /// By normalized email.
    Email,
    /// By normalized phone.
    Phone,
}

/// One record's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    /// Position in the request's `records`, from 0.
    pub index: u32,
    /// The record's normalized key, when it had a valid one.
    pub key: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// How the record found its contact, when it matched one.
    pub matched_by: Option<MatchedBy>,
    /// The key of the contact the record reached, when it differs from `key`
    /// (matched by email, phone or alias; or renamed by `new_contact_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_key: Option<String>,
    /// The earlier record that reached the same contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
}

/// One problem with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// Position of the record.
    pub index: u32,
    /// The record's key, when it had a valid one.
    pub key: Option<String>,
    /// The column at fault, when one is (borrowed for a predefined column, see
    /// [`crate::ColumnDef::label`]).
    pub column: Option<Cow<'static, str>>,
    /// Stable code.
    pub code: ErrorCode,
    /// What was wrong, naming the value.
    pub message: String,
    /// For `ambiguous_match`: the keys of the contacts matched, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// For in-batch duplicates: the index of the earlier occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
}

/// A remark on a record that was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Position of the record.
    pub index: u32,
    /// The record's key.
    pub key: Option<String>,
    /// The column concerned, when one is (borrowed for a predefined column, see
    /// [`crate::ColumnDef::label`]).
    pub column: Option<Cow<'static, str>>,
    /// Stable code.
    pub code: WarningCode,
    /// Human-readable remark. Fixed text for `value_normalized` (it depends only on
    /// the column's kind), so the commonest warning allocates nothing for it.
    pub message: Cow<'static, str>,
    /// For `duplicate_in_batch`: the index of the earlier occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
}

/// Overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every record succeeded.
    Applied,
    /// Some records applied, some failed (`on_invalid=skip`).
    Partial,
    /// Nothing applied.
    Rejected,
}

/// Counts. `total = inserted + updated + unchanged + failed + duplicate + not_applied`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Records in the request.
    pub total: u64,
    /// Records without a validation error of their own.
    pub valid: u64,
    /// Records with at least one validation error of their own.
    pub invalid: u64,
    /// Contacts created.
    pub inserted: u64,
    /// Contacts changed.
    pub updated: u64,
    /// Records that matched and changed nothing.
    pub unchanged: u64,
    /// Records with outcome `failed` (invalid ones and those failing to match).
    pub failed: u64,
    /// Write transactions committed for the request (0 when rejected).
    pub batches: u64,
}

impl Summary {
    /// Adds the counts of another part of the same request (a job's chunk, an
    /// import's batch).
    pub fn add(&mut self, s: &Summary) {
        self.total += s.total;
        self.valid += s.valid;
        self.invalid += s.invalid;
        self.inserted += s.inserted;
        self.updated += s.updated;
        self.unchanged += s.unchanged;
        self.failed += s.failed;
        self.batches += s.batches;
    }
}

/// The report of one bulk request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Overall status.
    pub status: Status,
    /// Counts.
    pub summary: Summary,
    /// One per record, in input order.
    pub results: Vec<RecordResult>,
    /// Every problem, in input order.
    pub errors: Vec<RecordError>,
    /// Every remark on applied records, in input order.
    pub warnings: Vec<Warning>,
    /// The request's `request_id`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Whether this is the stored report of an earlier application.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// For a request rejected as a whole: its code and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_error: Option<RequestErrorInfo>,
}

/// A request-level error as it appears in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestErrorInfo {
    /// Stable code (see `RequestError::code`).
    pub code: String,
    /// What was wrong.
    pub message: String,
}

impl Report {
    /// The report of a request rejected as a whole before any record was looked at.
    pub fn rejected_request(total: usize, code: &str, message: String) -> Report {
        Report {
            status: Status::Rejected,
            summary: Summary {
                total: total as u64,
                ..Summary::default()
            },
            results: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            request_id: None,
            replayed: false,
            request_error: Some(RequestErrorInfo {
                code: code.to_owned(),
                message,
            }),
        }
    }
}
