use super::*;

/// The grammar's answers with their reasons; the table of many more addresses,
/// compared with a reference parser, is tests/values_emails.rs.
#[test]
fn reasons() {
    for (input, want) in [
        ("a@b.co", Ok(None)),
        ("a.b+c@sub.b-c.org", Ok(None)),
        ("o'brien@x.ie", Ok(None)),
        ("user@bücher.de", Ok(Some("user@xn--bcher-kva.de"))),
        ("ü@bücher.de", Ok(Some("ü@xn--bcher-kva.de"))),
        ("ab", Err("no @")),
        (
            "a@b@c.com",
            Err("more than one @ (quoted local parts are not supported)"),
        ),
        ("@c.com", Err("the local part (before @) is empty")),
        (".a@c.com", Err("the local part starts or ends with a dot")),
        ("a.@c.com", Err("the local part starts or ends with a dot")),
        ("a..b@c.com", Err("the local part has two dots in a row")),
        ("\"ab\"@c.com", Err("quoted local parts are not supported")),
        ("a(x)@c.com", Err("comments are not supported")),
        (
            "a b@c.com",
            Err("whitespace or a control character in the local part"),
        ),
        (
            "a,b@c.com",
            Err("a character that is not allowed in the local part"),
        ),
        ("a@c", Err("the domain has no dot")),
        ("a@c..com", Err("the domain has an empty label")),
        ("a@-c.com", Err("a domain label starts or ends with -")),
        ("a@c.123", Err("the top-level domain is all digits")),
        (
            "a@c_d.com",
            Err("the domain has a character other than a-z, 0-9, - and ."),
        ),
    ] {
        let got = check(input, input.is_ascii());
        let got = got.map(|s| s.map(|s| s.to_string()));
        assert_eq!(got, want.map(|s| s.map(str::to_owned)), "{input}");
    }
    let long_label = format!("a@{}.com", "b".repeat(64));
    assert_eq!(
        check(&long_label, true),
        Err("a domain label is longer than 63 octets")
    );
    let long_domain = format!("a@{}com", "b.".repeat(127));
    assert_eq!(
        check(&long_domain, true),
        Err("the domain is longer than 253 octets")
    );
}

#[test]
fn blanks_are_trimmed_line_breaks_are_not() {
    assert_eq!(trim_blanks(" a@b.co\u{a0}"), "a@b.co");
    assert_eq!(trim_blanks("a@b.co\n"), "a@b.co\n");
    assert_eq!(trim_blanks("\ta@b.co"), "\ta@b.co");
    assert!(normalize_email("a@b.co\n").is_err());
    assert_eq!(
        normalize_email(" A@B.co ").map(|e| e.to_string()),
        Ok("a@b.co".to_owned())
    );
}
