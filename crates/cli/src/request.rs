//! Reading a bulk request (`upsert --request`) in one streaming pass with bounded
//! memory: the record count is checked as each record is read, so a request over
//! the limit is refused at the first record past it without reading the rest, and
//! no record (nor any other value of the request) may exceed the byte limit.

use std::fmt;
use std::io::{BufReader, Read};

use contactdb::BulkRequest;
use serde::de::{DeserializeSeed, Deserializer as _, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::input::{Bounded, Marks, record_too_large};

/// Why a request was not read; each becomes a rejected report.
#[derive(Debug)]
pub enum Refusal {
    /// More records than allowed; reading stopped at the first one past the limit.
    TooManyRecords {
        /// The limit.
        max: usize,
    },
    /// A record (or another value) over the byte limit.
    RecordTooLarge {
        /// The message.
        message: String,
        /// Records read whole before it.
        records: usize,
    },
    /// Not a valid bulk request.
    Malformed {
        /// The message.
        message: String,
        /// Records read.
        records: usize,
    },
}

/// Marker of the visitor's own refusal.
const TOO_MANY: &str = "\u{0}too many records";

/// Reads and checks a bulk request from `reader`.
pub fn read_request(
    reader: impl Read,
    max_records: usize,
    record_bytes_max: u64,
) -> Result<BulkRequest, Refusal> {
    let marks = Marks::default();
    let bounded = Bounded::new(
        BufReader::with_capacity(256 * 1024, reader),
        marks.clone(),
        record_bytes_max,
        0,
    );
    let mut de = serde_json::Deserializer::from_reader(bounded);
    let mut records = 0usize;
    let parsed = de
        .deserialize_map(RequestVisitor {
            marks: &marks,
            max_records,
            records: &mut records,
        })
        .and_then(|v| de.end().map(|()| v));
    let value = match parsed {
        Ok(v) => v,
        Err(_) if records > max_records => {
            return Err(Refusal::TooManyRecords { max: max_records });
        }
        Err(_) if marks.tripped() => {
            return Err(Refusal::RecordTooLarge {
                message: record_too_large(record_bytes_max),
                records,
            });
        }
        Err(e) => {
            return Err(Refusal::Malformed {
                message: format!("the request is not a valid bulk request: {e}"),
                records,
            });
        }
    };
    serde_json::from_value::<BulkRequest>(Value::Object(value)).map_err(|e| Refusal::Malformed {
        message: format!("the request is not a valid bulk request: {e}"),
        records,
    })
}

/// The request object: every field read as a JSON value, `records` (or its alias
/// `contactDatas`) through [`RecordsSeed`].
struct RequestVisitor<'a> {
    marks: &'a Marks,
    max_records: usize,
    records: &'a mut usize,
}

impl<'de> Visitor<'de> for RequestVisitor<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bulk request (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        self.marks.record_starts_here();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate field `{key}`")));
            }
            let value = if key == "records" || key == "contactDatas" {
                map.next_value_seed(RecordsSeed {
                    marks: self.marks,
                    max_records: self.max_records,
                    records: &mut *self.records,
                })?
            } else {
                map.next_value::<Value>()?
            };
            self.marks.record_starts_here();
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// The records array, counted as it is read.
struct RecordsSeed<'a> {
    marks: &'a Marks,
    max_records: usize,
    records: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        self.marks.record_starts_here();
        while let Some(v) = seq.next_element::<Value>()? {
            *self.records += 1;
            if *self.records > self.max_records {
                return Err(A::Error::custom(TOO_MANY));
            }
            out.push(v);
            self.marks.record_starts_here();
        }
        Ok(Value::Array(out))
    }

    // Anything else is kept as it is, for the request's own error message.
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let m =
            Map::<String, Value>::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Value::Object(m))
    }
}

use serde::Deserialize as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> String {
        let recs: Vec<String> = (0..n)
            .map(|i| format!("{{\"contact_key\":\"k{i}\"}}"))
            .collect();
        format!("{{\"mode\":\"upsert\",\"records\":[{}]}}", recs.join(","))
    }

    #[test]
    fn counts_and_limits() {
        let r = read_request(body(3).as_bytes(), 3, 1 << 20);
        assert!(matches!(r, Ok(ref req) if req.records.len() == 3), "{r:?}");
        let r = read_request(body(4).as_bytes(), 3, 1 << 20);
        assert!(
            matches!(r, Err(Refusal::TooManyRecords { max: 3 })),
            "{r:?}"
        );
        let big = format!(
            "{{\"mode\":\"upsert\",\"records\":[{{\"contact_key\":\"k\",\"name\":\"{}\"}}]}}",
            "x".repeat(2000)
        );
        let r = read_request(big.as_bytes(), 3, 1000);
        assert!(matches!(r, Err(Refusal::RecordTooLarge { .. })), "{r:?}");
        assert!(read_request(big.as_bytes(), 3, 3000).is_ok());
        let r = read_request(
            &b"{\"mode\":\"upsert\",\"records\":[],\"extra\":1}"[..],
            3,
            100,
        );
        assert!(matches!(r, Err(Refusal::Malformed { .. })), "{r:?}");
        let r = read_request(&b"{\"mode\":\"upsert\",\"contactDatas\":[{}]}"[..], 3, 100);
        assert!(matches!(r, Ok(ref req) if req.records.len() == 1), "{r:?}");
    }
}
