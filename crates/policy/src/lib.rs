//! Pure rules of contactdb: the column catalog, value normalization and validation,
//! bulk request and report types, and the field-merge rules of the contract.
//!
//! Architecture invariant: nothing in this crate performs I/O or reads a clock, so
//! nothing here can fail for reasons outside its arguments. Every function that
//! validates collects every problem it finds instead of stopping at the first.

pub mod column;
pub mod contact;
pub mod email;
pub mod limits;
pub mod normalize;
pub mod phone;
pub mod record;
pub mod report;
pub mod request;
pub mod rules;
pub mod workspace;

pub use column::{Catalog, ColumnDef, ColumnSpec, ColumnType, CustomColumn, FieldId, Kind};
pub use contact::{Contact, Fields, Value};
pub use limits::Limits;
pub use normalize::{DateFormat, ValueOptions};
pub use phone::{PhoneCheck, Region};
pub use record::{FieldInput, NormalizedRecord};
pub use report::{
    ErrorCode, MatchedBy, Outcome, RecordError, RecordResult, Report, Status, Summary, Warning,
    WarningCode,
};
pub use request::{
    BulkRequest, EmptyValues, MatchKey, MatchOn, Mode, OnDuplicate, OnInvalid, Prepared,
    RequestError, Trigger,
};
