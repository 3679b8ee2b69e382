//! customer-import: an asynchronous import job of customers; answers `{"jobId"}`.

use contactdb::{BulkRequest, MatchOn, Mode, OnInvalid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ApiError;

/// One customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// A unique identifier for the customer in the caller's system: the contact key.
    pub identifier: String,
    /// The customer's full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The phone number, E.164.
    #[serde(
        default,
        rename = "phoneNumber",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone_number: Option<String>,
    /// The email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Any JSON value, stored as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Calling priority: ascending, 0 first (a customer without one counts as 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Value>,
}

/// Whether matching customers are inserted only or merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Only new customers (the default).
    #[default]
    Insert,
    /// Merge existing customers, matched by identifier, email or phone.
    Upsert,
}

/// The request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerImport {
    /// The customers.
    pub customers: Vec<Customer>,
    /// `insert` (default) or `upsert`.
    #[serde(default)]
    pub strategy: Strategy,
    /// Insert the valid customers even when others fail (only with `insert`).
    #[serde(default)]
    pub partial: bool,
}

/// The response body: the job that imports the customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHandle {
    /// The job's id.
    #[serde(rename = "jobId")]
    pub job_id: String,
}

impl CustomerImport {
    /// The engine request: `insert` (or `upsert` matching on key, email and
    /// phone), `skip` when `partial`, else `abort`. `partial` with `upsert` is a
    /// 400, as the document says.
    pub fn to_request(&self) -> Result<BulkRequest, ApiError> {
        if self.customers.is_empty() {
            return Err(ApiError::bad_request(
                "no_records",
                "customers must hold at least one customer",
            ));
        }
        let mode = match self.strategy {
            Strategy::Insert => Mode::Insert,
            Strategy::Upsert if self.partial => {
                return Err(ApiError::bad_request(
                    "partial_with_upsert",
                    "partial is only valid with strategy=insert",
                ));
            }
            Strategy::Upsert => Mode::Upsert,
        };
        let records = self.customers.iter().map(record).collect();
        let mut req = BulkRequest::new(mode, records);
        if mode == Mode::Upsert {
            req.match_on = MatchOn::ALL;
        }
        req.on_invalid = if self.partial {
            OnInvalid::Skip
        } else {
            OnInvalid::Abort
        };
        Ok(req)
    }
}

fn record(c: &Customer) -> Value {
    let mut m = Map::new();
    m.insert("contact_key".into(), Value::String(c.identifier.clone()));
    let mut put = |k: &str, v: &Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v.clone());
        }
    };
    put("name", &c.name.clone().map(Value::String));
    put("gsm", &c.phone_number.clone().map(Value::String));
    put("email", &c.email.clone().map(Value::String));
    put("metadata", &c.metadata);
    put("priority", &c.priority);
    Value::Object(m)
}
