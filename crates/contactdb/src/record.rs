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
    ///
    /// ```
    /// use contactdb::Record;
    /// use serde_json::json;
    /// let r = Record::new("c-1").name("Ann");
    /// assert_eq!(r.into_json(), json!({"contact_key": "c-1", "name": "Ann"}));
    /// ```
    pub fn new(contact_key: impl Into<String>) -> Self {
        let mut fields = Map::new();
        fields.insert("contact_key".to_owned(), Value::String(contact_key.into()));
        Record { fields }
    }

    /// A record without a key, to be given one through [`Record::set`]
    /// (`contact_key`, or its alias `identifier`). Every record needs a key,
    /// whatever the request's `match_on`: one left without fails with
    /// `missing_key`. A record matched by email or phone still carries its own key,
    /// which becomes an alias of the contact it found.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let keyless = Record::without_key().email("ann@example.com");
    /// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![keyless.into()]))?;
    /// assert_eq!(report.errors[0].code.as_str(), "missing_key");
    ///
    /// let keyed = Record::without_key().set("identifier", "c-1").email("ann@example.com");
    /// let report = ws.bulk(&BulkRequest::new(Mode::Upsert, vec![keyed.into()]))?;
    /// assert_eq!(report.summary.inserted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn without_key() -> Self {
        Record { fields: Map::new() }
    }

    /// Sets any column by name (a predefined column, an alias such as
    /// `phoneNumber`, or a custom column) to a JSON value.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, ColumnSpec, ColumnType, Mode, Record};
    /// # use serde_json::json;
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// ws.declare_column(ColumnSpec::new("tier", ColumnType::Integer).import_enabled(true))?;
    /// let r = Record::new("c-1").set("tier", 3).set("phoneNumber", "0090 555 123 45 67");
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![r.into()]))?;
    /// let c = ws.get("c-1")?.ok_or("missing")?;
    /// assert_eq!(c.columns["tier"], json!(3));
    /// assert_eq!(c.columns["gsm"], json!("+905551234567")); // the alias names `gsm`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set(mut self, column: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(column.into(), value.into());
        self
    }

    /// The contact's email; trimmed and lower-cased by the engine.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let r = Record::new("c-1").email("  Ann@Example.COM ");
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![r.into()]))?;
    /// assert_eq!(ws.find_by_email("ann@example.com")?[0].key, "c-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn email(self, email: impl Into<String>) -> Self {
        self.set("email", email.into())
    }

    /// The contact's phone (`gsm`); normalized to E.164 by the engine.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # use serde_json::json;
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// let r = Record::new("c-1").phone("+90 (555) 123-45-67");
    /// ws.bulk(&BulkRequest::new(Mode::Insert, vec![r.into()]))?;
    /// let c = ws.get("c-1")?.ok_or("missing")?;
    /// assert_eq!(c.columns["gsm"], json!("+905551234567"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn phone(self, phone: impl Into<String>) -> Self {
        self.set("gsm", phone.into())
    }

    /// The contact's first name.
    ///
    /// ```
    /// use contactdb::Record;
    /// use serde_json::json;
    /// let r = Record::new("c-1").name("Ann");
    /// assert_eq!(r.into_json()["name"], json!("Ann"));
    /// ```
    pub fn name(self, name: impl Into<String>) -> Self {
        self.set("name", name.into())
    }

    /// The contact's last name.
    ///
    /// ```
    /// use contactdb::Record;
    /// use serde_json::json;
    /// let r = Record::new("c-1").name("Ann").surname("Lee");
    /// assert_eq!(r.into_json(), json!({"contact_key": "c-1", "name": "Ann", "surname": "Lee"}));
    /// ```
    pub fn surname(self, surname: impl Into<String>) -> Self {
        self.set("surname", surname.into())
    }

    /// Renames the contact (update mode); the old key stops resolving.
    ///
    /// ```
    /// # use contactdb::{BulkRequest, Mode, Record};
    /// # let dir = tempfile::tempdir()?;
    /// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
    /// # ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").into()]))?;
    /// let rename = Record::new("c-1").new_key("c-001");
    /// ws.bulk(&BulkRequest::new(Mode::Update, vec![rename.into()]))?;
    /// assert_eq!(ws.get("c-001")?.map(|c| c.key), Some("c-001".to_owned()));
    /// assert!(ws.get("c-1")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_key(self, new_key: impl Into<String>) -> Self {
        self.set("new_contact_key", new_key.into())
    }

    /// The record as the JSON object a bulk request carries.
    ///
    /// ```
    /// use contactdb::Record;
    /// use serde_json::json;
    /// let value = Record::new("c-1").phone("+90 555 123 45 67").into_json();
    /// assert_eq!(value, json!({"contact_key": "c-1", "gsm": "+90 555 123 45 67"})); // not yet normalized
    /// ```
    pub fn into_json(self) -> Value {
        Value::Object(self.fields)
    }
}

impl From<Record> for Value {
    fn from(r: Record) -> Value {
        r.into_json()
    }
}
