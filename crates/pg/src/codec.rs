//! The binary encoding of a contact's fields in `contacts.fields` (bytea).
//!
//! ```text
//! fields  = version:u8 (=1) count:u16 field*        (ids strictly increasing)
//! field   = id:u16 tag:u8 payload
//! payload = tag 1 text      u32 length, UTF-8 bytes
//!           tag 2 boolean   u8 0 or 1
//!           tag 3 integer   i64
//!           tag 4 decimal   u32 length, canonical decimal text
//!           tag 5 json      u32 length, canonical JSON text
//! ```
//! Integers are big-endian.

use contactdb_policy::{FieldId, Fields, Value};

use crate::Error;

const VERSION: u8 = 1;

/// Encodes `fields` (appending to `out`).
pub(crate) fn encode_fields(fields: &Fields, out: &mut Vec<u8>) -> Result<(), Error> {
    out.push(VERSION);
    let count = u16::try_from(fields.len())
        .map_err(|_| Error::damaged("contacts", "more than 65535 fields"))?;
    out.extend_from_slice(&count.to_be_bytes());
    for (id, v) in fields.iter() {
        out.extend_from_slice(&id.0.to_be_bytes());
        match v {
            Value::Str(s) => text(out, 1, s)?,
            Value::Bool(b) => {
                out.push(2);
                out.push(u8::from(*b));
            }
            Value::Int(i) => {
                out.push(3);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Decimal(d) => text(out, 4, d)?,
            Value::Json(j) => text(out, 5, j)?,
        }
    }
    Ok(())
}

fn text(out: &mut Vec<u8>, tag: u8, s: &str) -> Result<(), Error> {
    out.push(tag);
    let len =
        u32::try_from(s.len()).map_err(|_| Error::damaged("contacts", "a value over 4 GiB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A cursor over encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::damaged("contacts", "fields are cut short"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn text(&mut self) -> Result<&'a str, Error> {
        let len = u32::from_be_bytes(self.array()?);
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes).map_err(|_| Error::damaged("contacts", "a text is not UTF-8"))
    }
}

/// Decodes what [`encode_fields`] wrote.
pub(crate) fn decode_fields(bytes: &[u8]) -> Result<Fields, Error> {
    let mut r = Reader(bytes);
    let [version] = r.array()?;
    if version != VERSION {
        return Err(Error::damaged(
            "contacts",
            format!("unknown field encoding version {version}"),
        ));
    }
    let count = u16::from_be_bytes(r.array()?);
    let mut pairs = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let id = FieldId(u16::from_be_bytes(r.array()?));
        let [tag] = r.array()?;
        let v = match tag {
            1 => Value::Str(r.text()?.into()),
            2 => Value::Bool(r.array::<1>()? != [0]),
            3 => Value::Int(i64::from_be_bytes(r.array()?)),
            4 => Value::Decimal(r.text()?.to_owned()),
            5 => Value::Json(r.text()?.to_owned()),
            other => {
                return Err(Error::damaged(
                    "contacts",
                    format!("unknown value tag {other}"),
                ));
            }
        };
        pairs.push((id, v));
    }
    if !r.0.is_empty() {
        return Err(Error::damaged("contacts", "bytes after the last field"));
    }
    Ok(Fields::from_sorted_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_kind_round_trips() {
        let f = Fields::from_pairs([
            (FieldId::NAME, Value::Str("Ann".into())),
            (FieldId::EMAIL_PERMIT, Value::Bool(true)),
            (FieldId::PRIORITY, Value::Int(-7)),
            (FieldId(256), Value::Decimal("-12.5".into())),
            (FieldId(257), Value::Json("{\"a\":[1,2]}".into())),
            (
                FieldId(258),
                Value::Str(String::from("ü").repeat(40).into()),
            ),
        ]);
        let mut b = Vec::new();
        assert!(encode_fields(&f, &mut b).is_ok());
        assert_eq!(decode_fields(&b).ok(), Some(f));
        let empty = Fields::new();
        let mut b = Vec::new();
        assert!(encode_fields(&empty, &mut b).is_ok());
        assert_eq!(decode_fields(&b).ok(), Some(empty));
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let f = Fields::from_pairs([(FieldId::NAME, Value::Str("Ann".into()))]);
        let mut b = Vec::new();
        assert!(encode_fields(&f, &mut b).is_ok());
        for cut in 0..b.len() {
            assert!(decode_fields(b.get(..cut).unwrap_or_default()).is_err());
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(decode_fields(&extra).is_err());
        let mut bad_tag = b;
        if let Some(t) = bad_tag.get_mut(5) {
            *t = 9;
        }
        assert!(decode_fields(&bad_tag).is_err());
    }
}
