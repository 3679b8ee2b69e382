//! bulk-add: customers added to an existing campaign, with calls or a workflow
//! triggered for them; answers counts with 201 / 207 / 400.

use contactdb::{BulkRequest, ColumnSpec, ColumnType, Mode, OnInvalid, Report, Status, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{ApiError, HttpStatus};

/// Most records one request may hold.
pub const RECORDS_MAX: usize = 10_000;
/// Calls are started in batches of this many customers.
pub const CALL_BATCH: u64 = 500;

/// The request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkAdd {
    /// The campaign's name (it must exist).
    #[serde(rename = "campaignId")]
    pub campaign_id: String,
    /// The customers: objects with the fields of [`FIELDS`] (and any declared,
    /// import-enabled custom column).
    pub records: Vec<Value>,
    /// Start calls for the added customers (needs `callConfig`).
    #[serde(default, rename = "initiateCall")]
    pub initiate_call: bool,
    /// The call configuration (`agentId`, `dispositionId`).
    #[serde(
        default,
        rename = "callConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub call_config: Option<Value>,
    /// Start a workflow for the added customers.
    #[serde(default, rename = "useWorkflow")]
    pub use_workflow: bool,
}

/// How the document's record fields map: (field, engine column, type of the
/// custom column it becomes when it is not predefined). `loan_id` is the contact
/// key (a record without it falls back to `lead_id`).
pub const FIELDS: [(&str, &str, Option<ColumnType>); 13] = [
    ("loan_id", "contact_key", None),
    ("first_name", "name", None),
    ("last_name", "surname", None),
    ("phone_number", "gsm", None),
    ("loan_amount", "loan_amount", Some(ColumnType::Decimal)),
    ("emi_amount", "emi_amount", Some(ColumnType::Decimal)),
    ("loan_period", "loan_period", Some(ColumnType::Integer)),
    ("current_emi", "current_emi", Some(ColumnType::Decimal)),
    ("emi_due_date", "emi_due_date", Some(ColumnType::Date)),
    (
        "payment_status",
        "payment_status",
        Some(ColumnType::String { max_len: 100 }),
    ),
    (
        "language",
        "language",
        Some(ColumnType::String { max_len: 100 }),
    ),
    (
        "lead_id",
        "lead_id",
        Some(ColumnType::String { max_len: 255 }),
    ),
    ("lead_date", "lead_date", Some(ColumnType::Date)),
];

/// The response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkAddResponse {
    /// Whether every record was added.
    pub success: bool,
    /// "Added N of M records".
    pub message: String,
    /// The counts.
    pub results: BulkAddResults,
    /// When calls were asked for: how many customers they were queued for, in how
    /// many batches.
    #[serde(rename = "callResults", skip_serializing_if = "Option::is_none")]
    pub call_results: Option<Value>,
    /// When a workflow was asked for: whether it was triggered (for at least one
    /// customer).
    #[serde(rename = "workflowTriggered", skip_serializing_if = "Option::is_none")]
    pub workflow_triggered: Option<bool>,
}

/// The counts of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkAddResults {
    /// Records given.
    pub total: u64,
    /// Records without validation errors.
    pub valid: u64,
    /// Records with validation errors.
    pub invalid: u64,
    /// Records added (inserted, or found and made members).
    pub successful: u64,
    /// Records that failed.
    pub failed: u64,
    /// Batches of 500 records processed.
    #[serde(rename = "batchesProcessed")]
    pub batches_processed: u64,
    /// One entry per problem: `{index, key, field, code, message}`.
    pub errors: Vec<Value>,
}

impl BulkAdd {
    /// The custom columns its records need, with their types: the caller declares
    /// those the workspace lacks (import-enabled) before the request.
    pub fn columns_needed(&self) -> Vec<ColumnSpec> {
        FIELDS
            .iter()
            .filter_map(|(field, col, ty)| {
                let used = self.records.iter().any(|r| r.get(field).is_some());
                match (ty, used) {
                    (Some(ty), true) => Some(ColumnSpec::new(*col, *ty).import_enabled(true)),
                    _ => None,
                }
            })
            .collect()
    }

    /// The engine request: `insert` into the workspace (a customer that exists
    /// already fails `already_exists`), `skip` (partial success), membership of
    /// the campaign, and the trigger.
    pub fn to_request(&self) -> Result<BulkRequest, ApiError> {
        if self.records.is_empty() || self.records.len() > RECORDS_MAX {
            return Err(ApiError::bad_request(
                "records_count",
                format!(
                    "records must hold 1 to {RECORDS_MAX} records, not {}",
                    self.records.len()
                ),
            ));
        }
        if self.campaign_id.trim().is_empty() {
            return Err(ApiError::bad_request(
                "campaign_required",
                "campaignId is required",
            ));
        }
        let trigger = match (self.initiate_call, self.use_workflow, &self.call_config) {
            (true, true, _) => {
                return Err(ApiError::bad_request(
                    "conflicting_trigger",
                    "initiateCall and useWorkflow cannot both be true",
                ));
            }
            (true, false, None) => {
                return Err(ApiError::bad_request(
                    "call_config_required",
                    "initiateCall needs callConfig",
                ));
            }
            (true, false, Some(c)) => Some(Trigger {
                call: Some(c.clone()),
                workflow: None,
            }),
            (false, true, _) => Some(Trigger {
                call: None,
                workflow: Some(Value::Bool(true)),
            }),
            (false, false, _) => None,
        };
        let records = self.records.iter().map(record).collect();
        let mut req = BulkRequest::new(Mode::Insert, records);
        req.on_invalid = OnInvalid::Skip;
        req.campaign = Some(self.campaign_id.clone());
        req.trigger = trigger;
        Ok(req)
    }

    /// The response to the engine's report, and its status: 201 when every record
    /// was added, 207 when some were, 400 when none was.
    pub fn respond(&self, report: &Report) -> (HttpStatus, BulkAddResponse) {
        let s = &report.summary;
        let successful = s.inserted + s.updated + s.unchanged;
        let status = match report.status {
            Status::Applied => HttpStatus(201),
            Status::Partial => HttpStatus(207),
            Status::Rejected => HttpStatus(400),
        };
        let errors = report
            .errors
            .iter()
            .map(|e| {
                json!({"index": e.index, "key": e.key, "field": e.column,
                       "code": e.code.as_str(), "message": e.message})
            })
            .collect();
        let response = BulkAddResponse {
            success: report.status == Status::Applied,
            message: format!("Added {successful} of {} records", s.total),
            results: BulkAddResults {
                total: s.total,
                valid: s.valid,
                invalid: s.invalid,
                successful,
                failed: s.failed,
                batches_processed: s.total.div_ceil(CALL_BATCH),
                errors,
            },
            call_results: self
                .initiate_call
                .then(|| json!({"queued": successful, "batches": successful.div_ceil(CALL_BATCH)})),
            workflow_triggered: self.use_workflow.then_some(successful > 0),
        };
        (status, response)
    }
}

/// A record with the document's field names turned into engine columns.
fn record(r: &Value) -> Value {
    let Value::Object(obj) = r else {
        return r.clone();
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let col = FIELDS
            .iter()
            .find(|(field, _, _)| field == k)
            .map_or(k.as_str(), |(_, col, _)| col);
        out.insert(col.to_owned(), v.clone());
    }
    if !out.contains_key("contact_key")
        && let Some(lead) = obj.get("lead_id")
    {
        out.insert("contact_key".to_owned(), lead.clone());
    }
    Value::Object(out)
}
