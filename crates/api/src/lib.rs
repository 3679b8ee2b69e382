//! The hosted APIs contactdb stands in for, with their bodies unchanged: each
//! module holds one API's request and response types, exactly as its document
//! names and defaults them, and the mapping onto an engine [`contactdb::BulkRequest`]
//! and back from its [`contactdb::Report`]. Pure mapping: nothing here reads or
//! writes a database; `docs/api.md` gives the mapping field by field.
//!
//! ```
//! use contactdb_api::bulk_upsert::BulkUpsert;
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let body: BulkUpsert = serde_json::from_value(json!({
//!     "columns": ["contact_key", "email"],
//!     "contactDatas": [["c-1", "Ann@Example.com"]],
//!     "insertIfNotExists": true
//! }))?;
//! let req = body.to_request()?;
//! assert_eq!(req.mode, contactdb::Mode::Upsert);
//! assert_eq!(req.records[0]["email"], "Ann@Example.com");
//! # Ok(()) }
//! ```

pub mod bulk_add;
pub mod bulk_upsert;
pub mod customer_import;
mod error;

pub use error::{ApiError, HttpStatus};
