//! The public form of a contact: one flat row of named columns plus system fields.

use std::collections::BTreeMap;

use contactdb_policy::{Catalog, Contact as Stored};
use serde::ser::SerializeMap;

/// A contact as callers see it. Serializes as one flat JSON object: `contact_key`,
/// every set column, then `aliases`, `version`, `created_at`, `updated_at`.
///
/// ```
/// # use contactdb::{BulkRequest, Mode, Record};
/// # use serde_json::json;
/// # let dir = tempfile::tempdir()?;
/// # let ws = contactdb::Database::open(dir.path().join("c.redb"))?.workspace("default")?;
/// ws.bulk(&BulkRequest::new(Mode::Insert, vec![Record::new("c-1").name("Ann").into()]))?;
/// let ann = ws.get("c-1")?.ok_or("missing")?;
/// assert_eq!((ann.key.as_str(), ann.version), ("c-1", 1));
/// let flat = serde_json::to_value(&ann)?;
/// assert_eq!(flat["name"], json!("Ann"));
/// assert_eq!(flat["aliases"], json!([]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// The primary identity.
    pub key: String,
    /// Every set column but `contact_key`, by canonical name, as JSON values.
    pub columns: BTreeMap<String, serde_json::Value>,
    /// Other keys that find this contact: the keys of records that matched it by
    /// email or phone, in the order added.
    pub aliases: Vec<String>,
    /// 1 on insert, +1 on every change.
    pub version: u64,
    /// When the contact was created.
    pub created_at: jiff::Timestamp,
    /// When the contact last changed.
    pub updated_at: jiff::Timestamp,
}

/// A stored microsecond timestamp; out-of-range values (never written) show as the epoch.
/// Serializes a timestamp as RFC 3339 text.
pub(crate) fn ser_ts<S: serde::Serializer>(t: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

pub(crate) fn timestamp(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Contact {
    /// Converts the engine's form, naming columns through `catalog`.
    pub(crate) fn from_stored(c: Stored, catalog: &Catalog) -> Contact {
        let columns = c
            .fields
            .iter()
            .map(|(id, v)| {
                let name = catalog
                    .by_id(id)
                    .map_or_else(|| format!("field_{}", id.0), |col| col.name.clone());
                (name, v.to_json())
            })
            .collect();
        Contact {
            key: c.key,
            columns,
            aliases: c.aliases,
            version: c.version,
            created_at: timestamp(c.created_at_us),
            updated_at: timestamp(c.updated_at_us),
        }
    }
}

impl serde::Serialize for Contact {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.columns.len() + 5))?;
        m.serialize_entry("contact_key", &self.key)?;
        for (k, v) in &self.columns {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("aliases", &self.aliases)?;
        m.serialize_entry("version", &self.version)?;
        m.serialize_entry("created_at", &self.created_at.to_string())?;
        m.serialize_entry("updated_at", &self.updated_at.to_string())?;
        m.end()
    }
}
