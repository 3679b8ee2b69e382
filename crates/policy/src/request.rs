//! The bulk request and its request-level checks.

use ahash::AHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::column::{Catalog, FieldId, ResolveError};
use crate::limits::{Limits, REQUEST_ID_BYTES_MAX};
use crate::normalize::{DateFormat, ValueOptions};
use crate::phone::{PhoneCheck, PhoneOptions, Region};

/// What a request does with matched and unmatched records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Only new contacts; a matched record is `already_exists`.
    Insert,
    /// Only existing contacts; an unmatched record is `not_found`.
    Update,
    /// Insert unmatched, update matched.
    Upsert,
}

/// One way of matching a record to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKey {
    /// By `contact_key` or alias; always on.
    Key,
    /// By normalized email.
    Email,
    /// By normalized phone.
    Phone,
}

/// The set of match keys; `key` is always in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MatchOn {
    /// Match by email too.
    pub email: bool,
    /// Match by phone too.
    pub phone: bool,
}

impl MatchOn {
    /// `[key]`.
    pub const KEY: MatchOn = MatchOn {
        email: false,
        phone: false,
    };
    /// `[key, email, phone]`.
    pub const ALL: MatchOn = MatchOn {
        email: true,
        phone: true,
    };
}

impl Serialize for MatchOn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = vec![MatchKey::Key];
        if self.email {
            v.push(MatchKey::Email);
        }
        if self.phone {
            v.push(MatchKey::Phone);
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for MatchOn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let keys = Vec::<MatchKey>::deserialize(d)?;
        Ok(MatchOn {
            email: keys.contains(&MatchKey::Email),
            phone: keys.contains(&MatchKey::Phone),
        })
    }
}

/// What a failing record does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Any failure rejects the whole request. Default.
    #[default]
    Abort,
    /// Failing records are reported and left out; the rest apply.
    Skip,
}

/// What a second record reaching the same contact does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// Apply in order, each patching the last. Default.
    #[default]
    Merge,
    /// Apply only the first occurrence.
    First,
    /// Apply only the last occurrence.
    Last,
    /// Fail later occurrences with `duplicate_in_batch`.
    Reject,
}

/// What `null` and empty strings mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyValues {
    /// They clear the stored value. Default.
    #[default]
    Clear,
    /// They leave the stored value unchanged.
    Ignore,
}

/// A bulk request, with the JSON field names of SPEC.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// insert | update | upsert.
    pub mode: Mode,
    /// Default `[key]`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_on: MatchOn,
    /// Default `abort`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub on_invalid: OnInvalid,
    /// Default `merge`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub on_duplicate: OnDuplicate,
    /// Default `clear`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub empty_values: EmptyValues,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The columns this request writes; `contact_key` is implied. When absent, the
    /// columns are those the records carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The campaign every applied record's contact joins (it must exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// What the request's changes should set off, recorded on its change events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// How phone numbers are checked: `format` (E.164's shape, default) or
    /// `valid` (also valid for their region by libphonenumber's metadata).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "PhoneCheck::is_format"
    )]
    pub phone_check: PhoneCheck,
    /// The region (ISO 3166-1 alpha-2, e.g. `"TR"`) whose national numbers a
    /// phone without `+` or `00` is read as; without it such a number is invalid.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "upper_case"
    )]
    pub default_region: Option<String>,
    /// The strftime format (e.g. `"%d/%m/%Y"`) date columns are read with; ISO
    /// `YYYY-MM-DD` when absent. Dates are stored as `YYYY-MM-DD` either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
    /// The records: JSON objects of column → value.
    #[serde(alias = "contactDatas")]
    pub records: Vec<Json>,
}

/// Writes a region code in upper case, so that `"tr"` and `"TR"` make one request
/// body.
fn upper_case<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(|r| r.to_ascii_uppercase()).serialize(s)
}

/// What a request's changes set off downstream: calls by a dialer, or a workflow
/// (never both). Recorded on every change event of the request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Start calls: the dialer's call configuration (an object, e.g. `agentId`,
    /// `dispositionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Json>,
    /// Start a workflow: `true`, or the workflow's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Json>,
}

impl Trigger {
    /// Checks the trigger's shape: exactly one of `call` (an object) and
    /// `workflow` (`true` or a non-empty name).
    pub fn check(&self) -> Result<(), RequestError> {
        match (&self.call, &self.workflow) {
            (Some(_), Some(_)) => Err(RequestError::ConflictingTrigger),
            (None, None) => Err(RequestError::InvalidTrigger {
                reason: "a trigger needs `call` or `workflow`".to_owned(),
            }),
            (Some(Json::Object(_)), None) => Ok(()),
            (Some(_), None) => Err(RequestError::InvalidTrigger {
                reason: "`call` must be an object (the call configuration)".to_owned(),
            }),
            (None, Some(Json::Bool(true))) => Ok(()),
            (None, Some(Json::String(name))) if !name.trim().is_empty() => Ok(()),
            (None, Some(_)) => Err(RequestError::InvalidTrigger {
                reason: "`workflow` must be true or a workflow name".to_owned(),
            }),
        }
    }
}

impl BulkRequest {
    /// A request of `mode` with default options and these records.
    pub fn new(mode: Mode, records: Vec<Json>) -> Self {
        BulkRequest {
            mode,
            match_on: MatchOn::KEY,
            on_invalid: OnInvalid::Abort,
            on_duplicate: OnDuplicate::Merge,
            empty_values: EmptyValues::Clear,
            request_id: None,
            columns: None,
            campaign: None,
            trigger: None,
            phone_check: PhoneCheck::Format,
            default_region: None,
            date_format: None,
            records,
        }
    }
}

/// Reads an optional field whose JSON `null` means "absent": its default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A request rejected as a whole: nothing was read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// `records` is empty.
    #[error("the request has no records")]
    NoRecords,
    /// More records than the limit.
    #[error("the request has {count} records, at most {max} allowed")]
    TooManyRecords {
        /// Records given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A column name that is not in the catalog.
    #[error("unknown column {name:?}")]
    UnknownColumn {
        /// As written.
        name: String,
    },
    /// A custom column that is not import-enabled.
    #[error("column {name:?} is not import-enabled")]
    ColumnNotImportEnabled {
        /// Canonical name.
        name: String,
    },
    /// A system field (`aliases`, `version`, `created_at`, `updated_at`).
    #[error("column {name:?} is read-only")]
    ReadOnlyColumn {
        /// As written.
        name: String,
    },
    /// The same column twice in `columns` (possibly through an alias).
    #[error("column {name:?} is listed twice")]
    ColumnListedTwice {
        /// Canonical name.
        name: String,
    },
    /// `new_contact_key` outside `mode=update`.
    #[error("new_contact_key is only allowed with mode=update, not {mode:?}")]
    NewKeyNotAllowed {
        /// The request's mode.
        mode: Mode,
    },
    /// A record carries a column that is not in `columns`.
    #[error("record {index} carries column {name:?}, which is not in columns")]
    ColumnNotInList {
        /// The record.
        index: usize,
        /// As written.
        name: String,
    },
    /// A record names one column twice (e.g. `identifier` and `contact_key`).
    #[error("record {index} gives column {name:?} twice")]
    RecordColumnTwice {
        /// The record.
        index: usize,
        /// Canonical name.
        name: String,
    },
    /// A record that is not a JSON object.
    #[error("record {index} is not an object")]
    RecordNotObject {
        /// The record.
        index: usize,
    },
    /// A `request_id` that is empty, too long or has control characters.
    #[error("request_id must be 1..={REQUEST_ID_BYTES_MAX} bytes without control characters")]
    InvalidRequestId,
    /// A `request_id` already applied with a different body.
    #[error("request_id {request_id:?} was already used with a different request body")]
    RequestIdReused {
        /// The id.
        request_id: String,
    },
    /// A trigger with both `call` and `workflow`.
    #[error("a request triggers either calls or a workflow, not both")]
    ConflictingTrigger,
    /// A trigger of the wrong shape.
    #[error("invalid trigger: {reason}")]
    InvalidTrigger {
        /// What is wrong.
        reason: String,
    },
    /// A `default_region` that is not an ISO 3166-1 alpha-2 code of a region with
    /// a known numbering plan.
    #[error(
        "default_region {region:?} is not a known region: give an ISO 3166-1 alpha-2 code such \
         as \"GB\" or \"TR\""
    )]
    InvalidDefaultRegion {
        /// As given.
        region: String,
    },
    /// A `date_format` that cannot read dates.
    #[error("date_format {format:?} cannot read dates: {reason}")]
    InvalidDateFormat {
        /// As given.
        format: String,
        /// What is wrong.
        reason: String,
    },
    /// The request names a campaign that does not exist.
    #[error("no campaign {name:?}")]
    NoSuchCampaign {
        /// The name as given.
        name: String,
    },
}

impl RequestError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::NoRecords => "no_records",
            RequestError::TooManyRecords { .. } => "too_many_records",
            RequestError::UnknownColumn { .. } => "unknown_column",
            RequestError::ColumnNotImportEnabled { .. } => "column_not_import_enabled",
            RequestError::ReadOnlyColumn { .. } => "read_only_column",
            RequestError::ColumnListedTwice { .. } => "column_listed_twice",
            RequestError::NewKeyNotAllowed { .. } => "new_key_not_allowed",
            RequestError::ColumnNotInList { .. } => "column_not_in_list",
            RequestError::RecordColumnTwice { .. } => "record_column_twice",
            RequestError::RecordNotObject { .. } => "record_not_object",
            RequestError::InvalidRequestId => "invalid_request_id",
            RequestError::RequestIdReused { .. } => "request_id_reused",
            RequestError::ConflictingTrigger => "conflicting_trigger",
            RequestError::InvalidTrigger { .. } => "invalid_trigger",
            RequestError::NoSuchCampaign { .. } => "no_such_campaign",
            RequestError::InvalidDefaultRegion { .. } => "invalid_default_region",
            RequestError::InvalidDateFormat { .. } => "invalid_date_format",
        }
    }
}

/// A request that passed the request-level checks, with every column name it uses
/// resolved once (so per-record work is a hash lookup per field).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The mode.
    pub mode: Mode,
    /// Match options.
    pub match_on: MatchOn,
    /// Failure policy.
    pub on_invalid: OnInvalid,
    /// Duplicate policy.
    pub on_duplicate: OnDuplicate,
    /// Empty-value policy.
    pub empty_values: EmptyValues,
    /// How values are read (`phone_check`, `default_region`, `date_format`).
    pub values: ValueOptions,
    /// Raw column name (as the records write it) → column id.
    pub names: AHashMap<String, FieldId>,
    /// The columns of the request's campaign that every contact joining it must
    /// have a value for (set by the caller that resolved the campaign).
    pub campaign_required: Vec<FieldId>,
    /// Whether the plan lists the contacts the request reached (to make them
    /// members of its campaign).
    pub list_reached: bool,
}

/// Checks a request before anything is read or written and resolves its
/// column names. One error names the request's problem; when it has several, the
/// first in this order: the record count and `request_id`, then `default_region`
/// and `date_format`; an unknown or read-only
/// column; a column that is not import-enabled; a column given twice (in `columns`,
/// then in a record); `new_contact_key` outside `update`; a record's column missing
/// from `columns`; a record that is not an object; a trigger of the wrong shape (or
/// both kinds). Within one kind, `columns` comes before the records and records come
/// in input order. Whether the campaign exists is the caller's check, after these.
pub fn prepare(
    req: &BulkRequest,
    catalog: &Catalog,
    limits: &Limits,
) -> Result<Prepared, RequestError> {
    check_count_and_id(req, limits)?;
    let values = value_options(req)?;
    let mut scan = NameScan {
        catalog,
        mode: req.mode,
        names: AHashMap::new(),
        checks: Checks::default(),
    };
    let listed = match &req.columns {
        Some(cols) => Some(scan.listed_columns(cols)?),
        None => None,
    };
    scan.records(&req.records, listed.as_deref())?;
    if let Some(t) = &req.trigger
        && let Err(e) = t.check()
    {
        scan.checks.note(Rank::Trigger, || e);
    }
    if let Some(e) = scan.checks.first() {
        return Err(e);
    }
    Ok(Prepared {
        mode: req.mode,
        match_on: req.match_on,
        on_invalid: req.on_invalid,
        on_duplicate: req.on_duplicate,
        empty_values: req.empty_values,
        values,
        names: scan.names,
        campaign_required: Vec::new(),
        list_reached: false,
    })
}

/// The checks that outrank every other: at least one record and at most
/// `records_max`, then a `request_id` of 1..=[`REQUEST_ID_BYTES_MAX`] bytes without
/// control characters.
fn check_count_and_id(req: &BulkRequest, limits: &Limits) -> Result<(), RequestError> {
    if req.records.is_empty() {
        return Err(RequestError::NoRecords);
    }
    if req.records.len() > limits.records_max {
        return Err(RequestError::TooManyRecords {
            count: req.records.len(),
            max: limits.records_max,
        });
    }
    if let Some(id) = &req.request_id
        && (id.is_empty() || id.len() > REQUEST_ID_BYTES_MAX || id.chars().any(char::is_control))
    {
        return Err(RequestError::InvalidRequestId);
    }
    Ok(())
}

/// The scan of a request's column names (in `columns`, then in every record): each
/// distinct name resolved once, and the first problem of each [`Rank`].
struct NameScan<'c> {
    catalog: &'c Catalog,
    mode: Mode,
    /// Raw name → column id, for every import-enabled name met so far.
    names: AHashMap<String, FieldId>,
    checks: Checks,
}

impl NameScan<'_> {
    /// Resolves `raw` once; an unknown or read-only name ends the checks at once
    /// (nothing outranks it), a name that is not import-enabled is remembered and
    /// gives `None`.
    fn resolve(&mut self, raw: &str) -> Result<Option<FieldId>, RequestError> {
        if let Some(id) = self.names.get(raw) {
            return Ok(Some(*id));
        }
        match self.catalog.resolve(raw) {
            Ok(col) if col.import_enabled => {
                self.names.insert(raw.to_owned(), col.id);
                Ok(Some(col.id))
            }
            Ok(col) => {
                self.checks.note(Rank::NotImportEnabled, || {
                    RequestError::ColumnNotImportEnabled {
                        name: col.name.clone(),
                    }
                });
                Ok(None)
            }
            Err(ResolveError::ReadOnly) => Err(RequestError::ReadOnlyColumn {
                name: raw.to_owned(),
            }),
            Err(ResolveError::Unknown) => Err(RequestError::UnknownColumn {
                name: raw.to_owned(),
            }),
        }
    }

    /// Notes `new_contact_key` outside `update` mode.
    #[inline]
    fn check_new_key(&mut self, id: FieldId) {
        if id == FieldId::NEW_CONTACT_KEY && self.mode != Mode::Update {
            let mode = self.mode;
            self.checks
                .note(Rank::NewKey, || RequestError::NewKeyNotAllowed { mode });
        }
    }

    /// The ids of the request's `columns` list, `contact_key` (implied) first.
    fn listed_columns(&mut self, cols: &[String]) -> Result<Vec<FieldId>, RequestError> {
        let mut ids = vec![FieldId::CONTACT_KEY];
        let mut key_named = false;
        for raw in cols {
            let Some(id) = self.resolve(raw)? else {
                continue;
            };
            let twice = if id == FieldId::CONTACT_KEY {
                // contact_key is implied; naming it is harmless, naming it twice is not.
                std::mem::replace(&mut key_named, true)
            } else if ids.contains(&id) {
                true
            } else {
                ids.push(id);
                false
            };
            if twice {
                let catalog = self.catalog;
                self.checks
                    .note(Rank::Twice, || RequestError::ColumnListedTwice {
                        name: column_name(catalog, id),
                    });
            }
            self.check_new_key(id);
        }
        Ok(ids)
    }

    /// Checks every record's column names, in input order, against `listed` (the
    /// request's `columns`, when it gives them).
    fn records(
        &mut self,
        records: &[Json],
        listed: Option<&[FieldId]>,
    ) -> Result<(), RequestError> {
        // The columns of the record being checked, reused from record to record.
        let mut seen: Vec<FieldId> = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let Json::Object(obj) = record else {
                self.checks
                    .note(Rank::NotObject, || RequestError::RecordNotObject { index });
                continue;
            };
            seen.clear();
            self.record(index, obj, listed, &mut seen)?;
        }
        Ok(())
    }

    /// Checks the column names of the record at `index`; `seen` comes empty and
    /// leaves with the record's column ids.
    fn record(
        &mut self,
        index: usize,
        obj: &serde_json::Map<String, Json>,
        listed: Option<&[FieldId]>,
        seen: &mut Vec<FieldId>,
    ) -> Result<(), RequestError> {
        debug_assert!(seen.is_empty());
        for (raw, value) in obj {
            let Some(id) = self.resolve(raw)? else {
                continue;
            };
            // A null new_contact_key is an absent one, in every mode: no check
            // counts it.
            if id == FieldId::NEW_CONTACT_KEY && value.is_null() {
                continue;
            }
            self.check_new_key(id);
            if let Some(ids) = listed
                && !ids.contains(&id)
            {
                self.checks
                    .note(Rank::NotInList, || RequestError::ColumnNotInList {
                        index,
                        name: raw.clone(),
                    });
            }
            if seen.contains(&id) {
                let catalog = self.catalog;
                self.checks
                    .note(Rank::Twice, || RequestError::RecordColumnTwice {
                        index,
                        name: column_name(catalog, id),
                    });
            }
            seen.push(id);
        }
        Ok(())
    }
}

/// The request's value options, checked: a region code with a known numbering
/// plan, a date format that reads dates.
fn value_options(req: &BulkRequest) -> Result<ValueOptions, RequestError> {
    let region = match &req.default_region {
        None => None,
        Some(code) => {
            Some(
                Region::parse(code).ok_or_else(|| RequestError::InvalidDefaultRegion {
                    region: code.clone(),
                })?,
            )
        }
    };
    let date_format =
        match &req.date_format {
            None => None,
            Some(format) => Some(DateFormat::parse(format).map_err(|reason| {
                RequestError::InvalidDateFormat {
                    format: format.clone(),
                    reason,
                }
            })?),
        };
    Ok(ValueOptions {
        phone: PhoneOptions {
            check: req.phone_check,
            region,
        },
        date_format,
    })
}

/// The kinds of request-level problem found in one scan, in the order the first
/// one found of the highest-ranked kind is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    NotImportEnabled,
    Twice,
    NewKey,
    NotInList,
    NotObject,
    Trigger,
}

/// The first problem of each [`Rank`] met so far.
#[derive(Default)]
struct Checks {
    found: Vec<(Rank, RequestError)>,
}

impl Checks {
    fn note(&mut self, rank: Rank, error: impl FnOnce() -> RequestError) {
        if !self.found.iter().any(|(r, _)| *r == rank) {
            self.found.push((rank, error()));
        }
    }

    fn first(self) -> Option<RequestError> {
        self.found
            .into_iter()
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, e)| e)
    }
}

fn column_name(catalog: &Catalog, id: FieldId) -> String {
    catalog
        .by_id(id)
        .map_or_else(|| format!("#{}", id.0), |c| c.name.clone())
}

#[cfg(test)]
mod tests;
