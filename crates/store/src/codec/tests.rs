//! Unit tests of `codec`.

use super::*;

fn value_to_stored(v: &Value) -> StoredValue {
    match v {
        Value::Str(s) => StoredValue::Str(s.to_string()),
        Value::Bool(b) => StoredValue::Bool(*b),
        Value::Int(i) => StoredValue::Int(*i),
        Value::Decimal(d) => StoredValue::Decimal(d.clone()),
        Value::Json(j) => StoredValue::Json(j.clone()),
    }
}

/// The owned stored form of a contact, built field by field: what encoding wrote
/// before it borrowed.
fn contact_to_stored(c: &Contact) -> StoredContact {
    StoredContact {
        key: c.key.clone(),
        fields: c
            .fields
            .iter()
            .map(|(id, v)| (id.0, value_to_stored(v)))
            .collect(),
        aliases: c.aliases.clone(),
        version: c.version,
        created_at_us: c.created_at_us,
        updated_at_us: c.updated_at_us,
    }
}

fn sample_contact() -> Contact {
    Contact {
        key: "k1".into(),
        fields: Fields::from_pairs([
            (FieldId::NAME, Value::Str("Ada".into())),
            (FieldId::EMAIL_PERMIT, Value::Bool(true)),
            (FieldId::PRIORITY, Value::Int(-3)),
            (FieldId(256), Value::Decimal("-12.5".into())),
            (FieldId::METADATA, Value::Json(r#"{"a":[1,2]}"#.into())),
        ]),
        aliases: vec!["x".into(), "y".into()],
        version: 7,
        created_at_us: -5,
        updated_at_us: 1_700_000_000_000_000,
    }
}

#[test]
fn contact_round_trip() -> Result<(), StoreError> {
    let c = sample_contact();
    let bytes = encode_contact(&c)?;
    assert_eq!(bytes.first(), Some(&TAG_CONTACT_V1));
    assert_eq!(decode_contact(&bytes)?, c);
    Ok(())
}

// Encoding borrows the contact (`StoredContactRef`) and decoding borrows the bytes
// (`StoredContactDe`); the documented stored struct is `StoredContact`. All three
// must agree byte for byte, or files written now would not read as format 2 says.
#[test]
fn borrowed_encoding_writes_the_stored_struct_bytes() -> Result<(), StoreError> {
    let mut many = sample_contact();
    for i in 0..300u16 {
        many.fields.set(
            FieldId(300 + i),
            Value::Str("v".repeat(usize::from(i)).into()),
        );
    }
    many.aliases = (0..200).map(|i| format!("alias-{i}")).collect();
    let empty = Contact {
        key: String::new(),
        fields: Fields::new(),
        aliases: vec![],
        version: u64::MAX,
        created_at_us: i64::MIN,
        updated_at_us: i64::MAX,
    };
    for c in [sample_contact(), many, empty] {
        let owned = encode("contacts", TAG_CONTACT_V1, &contact_to_stored(&c))?;
        assert_eq!(encode_contact(&c)?, owned, "{}", c.key);
        assert_eq!(decode_contact(&owned)?, c);
    }
    Ok(())
}

#[test]
fn empty_contact_round_trip() -> Result<(), StoreError> {
    let c = Contact {
        key: "e".into(),
        fields: Fields::new(),
        aliases: vec![],
        version: 1,
        created_at_us: 0,
        updated_at_us: 0,
    };
    assert_eq!(decode_contact(&encode_contact(&c)?)?, c);
    Ok(())
}

#[test]
fn stored_value_variant_numbers_are_fixed() -> Result<(), StoreError> {
    // docs/format.md: Str = 0, Bool = 1, Int = 2, Decimal = 3, Json = 4.
    let cases = [
        (StoredValue::Str("a".into()), vec![0u8, 1, b'a']),
        (StoredValue::Bool(true), vec![1, 1]),
        (StoredValue::Int(-1), vec![2, 1]),
        (StoredValue::Decimal("1".into()), vec![3, 1, b'1']),
        (StoredValue::Json("1".into()), vec![4, 1, b'1']),
    ];
    for (v, want) in cases {
        assert_eq!(postcard::to_stdvec(&v).unwrap(), want, "{v:?}");
    }
    Ok(())
}

#[test]
fn other_records_round_trip() -> Result<(), StoreError> {
    let w = StoredWorkspace {
        slug: "default".into(),
        uuid: [7; 16],
        created_at_us: 42,
        next_field_id: 256,
        contacts: 1_000_000,
        next_contact_id: 1_000_001,
    };
    assert_eq!(decode_workspace(&encode_workspace(&w)?)?, w);
    let c = StoredColumn {
        id: 300,
        ty: column_type::STRING,
        max_len: 20,
        import_enabled: true,
        required: false,
    };
    assert_eq!(decode_column(&encode_column(&c)?)?, c);
    let r = StoredRequestV1 {
        body_hash: [9; 32],
        applied_at_us: 5,
        report_json: "{}".into(),
    };
    assert_eq!(decode_request(&encode_request(&r)?)?, r);
    for ty in [
        ColumnType::String { max_len: 5 },
        ColumnType::Integer,
        ColumnType::Decimal,
        ColumnType::Boolean,
        ColumnType::Date,
        ColumnType::Json,
    ] {
        let (code, len) = column_type_to_stored(ty);
        assert_eq!(column_type_from_stored(code, len)?, ty);
    }
    assert!(column_type_from_stored(0, 0).is_err());
    assert!(column_type_from_stored(7, 0).is_err());
    Ok(())
}

#[test]
fn bad_tags_are_errors() -> Result<(), StoreError> {
    let bytes = encode_contact(&sample_contact())?;
    let mut wrong = bytes.clone();
    wrong[0] = 0x7f;
    assert!(matches!(
        decode_contact(&wrong),
        Err(StoreError::Corrupt {
            table: "contacts",
            ..
        })
    ));
    // A workspace tag is not a contact tag and vice versa.
    wrong[0] = TAG_WORKSPACE_V1;
    assert!(decode_contact(&wrong).is_err());
    assert!(decode_workspace(&bytes).is_err());
    assert!(decode_contact(&[]).is_err());
    Ok(())
}

#[test]
fn truncated_and_padded_bytes_are_errors() -> Result<(), StoreError> {
    let bytes = encode_contact(&sample_contact())?;
    for len in 0..bytes.len() {
        assert!(decode_contact(&bytes[..len]).is_err(), "len {len}");
    }
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(decode_contact(&padded).is_err());
    Ok(())
}

#[test]
fn garbage_never_panics() {
    // A deterministic pseudo-random walk over many byte strings.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..5000usize {
        let len = n % 64;
        let mut buf = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            buf.push((seed & 0xff) as u8);
        }
        if let Some(first) = buf.first_mut() {
            // Most inputs carry a valid tag so the postcard decoder is exercised.
            if n % 4 != 0 {
                *first = TAG_CONTACT_V1 + (n % 4) as u8 - 1;
            }
        }
        let _ = decode_contact(&buf);
        let _ = decode_workspace(&buf);
        let _ = decode_column(&buf);
        let _ = decode_request(&buf);
    }
    // Huge length prefixes must not allocate or panic.
    let huge = [TAG_CONTACT_V1, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(decode_contact(&huge).is_err());
    // A bool byte other than 0/1.
    assert!(decode_column(&[TAG_COLUMN_V1, 1, 1, 0, 2, 0]).is_err());
}
