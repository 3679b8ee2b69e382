use super::*;

#[test]
fn trunk_zero_only_right_after_the_country_code() {
    for (input, want) in [
        ("+44 (0)20 7946 0958", "+44 20 7946 0958"),
        ("+44(0)2079460958", "+44 2079460958"),
        ("0044 (0) 20 7946 0958", "0044  20 7946 0958"),
        ("+358  (0)9 1234567", "+358 9 1234567"),
        // Not right after the country code: left as it is.
        ("+44 20 (0)7946 0958", "+44 20 (0)7946 0958"),
        ("+4420 (0)7946 0958", "+4420 (0)7946 0958"),
        ("(0)20 7946 0958", "(0)20 7946 0958"),
        ("+44-(0)20 7946 0958", "+44-(0)20 7946 0958"),
        ("+44 (00)20", "+44 (00)20"),
    ] {
        let got = drop_trunk_zero(input);
        assert_eq!(got.as_deref().unwrap_or(input), want, "{input}");
    }
}

#[test]
fn regions_are_iso_codes_with_a_numbering_plan() {
    assert_eq!(
        Region::parse("tr").map(|r| r.code().to_owned()),
        Some("TR".into())
    );
    assert_eq!(
        Region::parse("Gb").map(|r| r.code().to_owned()),
        Some("GB".into())
    );
    for bad in ["", " GB", "GB ", "T", "TUR", "XX", "001", "t1", "ÜÜ"] {
        assert_eq!(Region::parse(bad), None, "{bad}");
    }
}

#[test]
fn messages_name_the_reason() {
    let valid = PhoneOptions {
        check: PhoneCheck::Valid,
        region: None,
    };
    let message = |raw: &str| {
        normalize_phone_with(raw, &valid)
            .err()
            .map(|e| e.message)
            .unwrap_or_default()
    };
    assert!(message("+44 20 7946").ends_with("is too short for GB"));
    assert!(message("+44 20 7946 095").ends_with("is not a valid number for GB"));
    assert!(message("+44 20 7946 09581").ends_with("is too long for GB"));
    assert!(message("+90 123 456 78 90").ends_with("is not a valid number for TR"));
    assert!(message("+999 1234 5678").ends_with("unknown country calling code +999"));
    let national = normalize_phone("0532 123 45 67").err().map(|e| e.message);
    assert!(national.is_some_and(|m| m.contains("default_region")));
    let ext = normalize_phone("tel:+1-201-555-0123;ext=12")
        .err()
        .map(|e| e.message);
    assert!(ext.is_some_and(|m| m.contains("extensions are not stored")));
}
