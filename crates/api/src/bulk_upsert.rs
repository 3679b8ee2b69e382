//! bulk-upsert: `columns` and `contactDatas` into the master contact table;
//! answers the errors and warnings of the request.

use contactdb::{BulkRequest, Mode, OnInvalid, Report, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ApiError, HttpStatus};

/// Most rows one request may hold.
pub const ROWS_MAX: usize = 1_000;

/// The request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkUpsert {
    /// The columns the rows give, in order (at least one; predefined or
    /// import-enabled custom columns; `contact_key` is implied).
    pub columns: Vec<String>,
    /// The rows: arrays of values in the order of `columns`, or objects whose keys
    /// are among `columns`.
    #[serde(rename = "contactDatas")]
    pub contact_datas: Vec<Value>,
    /// Insert rows that match no contact (default false: update only).
    #[serde(default, rename = "insertIfNotExists")]
    pub insert_if_not_exists: bool,
    /// Refuse the whole request when any row fails (default true).
    #[serde(default = "yes", rename = "forceUpdate")]
    pub force_update: bool,
}

fn yes() -> bool {
    true
}

/// The response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkUpsertResponse {
    /// Whether every row was applied.
    pub success: bool,
    /// `applied`, `partial` or `rejected`.
    pub status: Status,
    /// The counts.
    pub summary: contactdb::Summary,
    /// Every failed row's problems.
    pub errors: Vec<contactdb::RecordError>,
    /// Remarks on applied rows.
    pub warnings: Vec<contactdb::Warning>,
}

impl BulkUpsert {
    /// The engine request: `upsert` when `insertIfNotExists`, else `update`;
    /// `abort` when `forceUpdate`, else `skip`; `columns` as given. A
    /// `new_contact_key` column with `insertIfNotExists` is a 400.
    pub fn to_request(&self) -> Result<BulkRequest, ApiError> {
        if self.columns.is_empty() {
            return Err(ApiError::bad_request(
                "columns_required",
                "columns must name at least one column",
            ));
        }
        if self.contact_datas.is_empty() || self.contact_datas.len() > ROWS_MAX {
            return Err(ApiError::bad_request(
                "rows_count",
                format!(
                    "contactDatas must hold 1 to {ROWS_MAX} rows, not {}",
                    self.contact_datas.len()
                ),
            ));
        }
        if self.insert_if_not_exists
            && self
                .columns
                .iter()
                .any(|c| c.eq_ignore_ascii_case("new_contact_key"))
        {
            return Err(ApiError::bad_request(
                "new_key_not_allowed",
                "new_contact_key cannot be used with insertIfNotExists=true",
            ));
        }
        let mut records = Vec::with_capacity(self.contact_datas.len());
        for (i, row) in self.contact_datas.iter().enumerate() {
            records.push(match row {
                Value::Array(values) => {
                    if values.len() != self.columns.len() {
                        return Err(ApiError::bad_request(
                            "row_length",
                            format!(
                                "row {i} has {} values for {} columns",
                                values.len(),
                                self.columns.len()
                            ),
                        ));
                    }
                    let m: Map<String, Value> = self
                        .columns
                        .iter()
                        .cloned()
                        .zip(values.iter().cloned())
                        .collect();
                    Value::Object(m)
                }
                other => other.clone(),
            });
        }
        let mode = if self.insert_if_not_exists {
            Mode::Upsert
        } else {
            Mode::Update
        };
        let mut req = BulkRequest::new(mode, records);
        req.on_invalid = if self.force_update {
            OnInvalid::Abort
        } else {
            OnInvalid::Skip
        };
        req.columns = Some(self.columns.clone());
        Ok(req)
    }

    /// The response to the engine's report: 200 when every row was applied, 207
    /// when some were, 400 when none was.
    pub fn respond(report: &Report) -> (HttpStatus, BulkUpsertResponse) {
        let status = match report.status {
            Status::Applied => HttpStatus(200),
            Status::Partial => HttpStatus(207),
            Status::Rejected => HttpStatus(400),
        };
        (
            status,
            BulkUpsertResponse {
                success: report.status == Status::Applied,
                status: report.status,
                summary: report.summary,
                errors: report.errors.clone(),
                warnings: report.warnings.clone(),
            },
        )
    }
}
