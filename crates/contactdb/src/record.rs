//! [`Record`]: a typed builder for one input record, beside raw JSON.

use serde_json::{Map, Value};

/// One input record of a bulk request, built field by field. It converts into the
/// JSON object [`BulkRequest`](crate::BulkRequest) takes, so typed and JSON input
/// mix freely; the engine normalizes and validates every value the same way.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use contactdb::{BulkRequest, Database, Mode, Record};
/// use serde_json::json;
/// let dir = tempfile::tempdir()?;
/// let db = Database::open(dir.path().join("c.redb"))?;
/// let ws = db.workspace("default")?;
///
/// let ann = Record::new("c-1")
///     .name("Ann")
///     .email(" Ann@Example.COM ")
///     .phone("+90 555 123 45 67")
///     .set("birthday", "1990-12-31");
/// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![ann.into()]))?;
/// assert_eq!(report.summary.inserted, 1);
/// let c = ws.get("c-1")?.ok_or("missing")?;
/// assert_eq!(c.columns["email"], json!("ann@example.com"));
/// assert_eq!(c.columns["gsm"], json!("+905551234567"));
///
/// // A rename (update mode): the old key stops resolving.
/// let rename = Record::new("c-1").new_key("c-001");
/// ws.bulk(&BulkRequest::new(Mode::Update, vec![rename.into()]))?;
/// assert_eq!(ws.get("c-001")?.map(|c| c.key), Some("c-001".to_owned()));
/// assert!(ws.get("c-1")?.is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    fields: Map<String, Value>,
}

impl Record {
    /// A record for the contact with this key (or alias).
    pub fn new(contact_key: impl Into<String>) -> Self {
        let mut fields = Map::new();
        fields.insert("contact_key".to_owned(), Value::String(contact_key.into()));
        Record { fields }
    }

    /// A record without a key: one matched by email or phone only (the request's
    /// `match_on` must include them; an insert needs a key).
    pub fn without_key() -> Self {
        Record { fields: Map::new() }
    }

    /// Sets any column by name (a predefined column, an alias such as
    /// `phoneNumber`, or a custom column) to a JSON value.
    pub fn set(mut self, column: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(column.into(), value.into());
        self
    }

    /// The contact's email; trimmed and lower-cased by the engine.
    pub fn email(self, email: impl Into<String>) -> Self {
        self.set("email", email.into())
    }

    /// The contact's phone (`gsm`); normalized to E.164 by the engine.
    pub fn phone(self, phone: impl Into<String>) -> Self {
        self.set("gsm", phone.into())
    }

    /// The contact's first name.
    pub fn name(self, name: impl Into<String>) -> Self {
        self.set("name", name.into())
    }

    /// The contact's last name.
    pub fn surname(self, surname: impl Into<String>) -> Self {
        self.set("surname", surname.into())
    }

    /// Renames the contact (update mode); the old key stops resolving.
    pub fn new_key(self, new_key: impl Into<String>) -> Self {
        self.set("new_contact_key", new_key.into())
    }

    /// The record as the JSON object a bulk request carries.
    pub fn into_json(self) -> Value {
        Value::Object(self.fields)
    }
}

impl From<Record> for Value {
    fn from(r: Record) -> Value {
        r.into_json()
    }
}
