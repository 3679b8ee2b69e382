//! Email addresses: the one place their grammar lives.
//!
//! An address is trimmed of surrounding blanks (not of line breaks or other
//! control characters), lowercased, and must be a dot-atom address of RFC 5321 /
//! RFC 5322:
//! - exactly one `@`;
//! - a local part of 1..=64 characters: atoms of `A-Z a-z 0-9` and
//!   ``! # $ % & ' * + / = ? ^ _ ` { | } ~ -``, or any non-ASCII character that is
//!   neither whitespace nor a control character (RFC 6531), joined by single dots
//!   (no leading, trailing or double dot). Quoted local parts (`"a b"@x.com`) and
//!   comments (`a(c)@x.com`) are not supported;
//! - a domain of at most 253 octets in its ASCII form, of at least two labels,
//!   each 1..=63 octets of `a-z 0-9 -`, not starting or ending with `-`, the last
//!   not all digits. Domain literals (`[192.0.2.1]`) are not supported. An
//!   international domain (`bücher.de`) is stored in its ASCII form
//!   (`xn--bcher-kva.de`), converted by UTS #46 (IDNA 2008), so every stored
//!   domain satisfies the label rule;
//! - at most 255 characters in all (`too_long` beyond).

use compact_str::CompactString;

use crate::limits::{EMAIL_CHARS_MAX, EMAIL_LOCAL_CHARS_MAX};
use crate::normalize::{Invalid, excerpt};
use crate::report::ErrorCode;

/// Longest domain, in octets of its ASCII form (RFC 1035 / RFC 5321).
const DOMAIN_OCTETS_MAX: usize = 253;
/// Longest domain label, in octets.
const LABEL_OCTETS_MAX: usize = 63;

/// The RFC 5322 `atext` characters: `A-Z a-z 0-9` and
/// ``! # $ % & ' * + / = ? ^ _ ` { | } ~ -``.
const ATEXT_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";

/// The bytes a local part may hold: `atext`, `.`, and every byte of a non-ASCII
/// character (those characters are checked separately). Built at compile time,
/// where an index out of range would fail the build.
#[allow(clippy::indexing_slicing)]
const LOCAL_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0usize;
    while c < 256 {
        t[c] = c >= 0x80 || c == b'.' as usize || (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut rest = ATEXT_SPECIALS;
    while let [c, tail @ ..] = rest {
        t[*c as usize] = true;
        rest = tail;
    }
    t
};

/// Whether a byte may appear in a local part.
fn local_byte(c: u8) -> bool {
    LOCAL_BYTES.get(usize::from(c)).copied().unwrap_or(false)
}

/// Surrounding blanks removed; line breaks, tabs and other control characters at
/// the ends are kept (and then refused by the grammar).
fn trim_blanks(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim_matches(|c: char| c.is_whitespace() && !c.is_control())
    }
}

/// Trims, lowercases and validates an email; an international domain comes back
/// in its ASCII form.
pub fn normalize_email(raw: &str) -> Result<CompactString, Invalid> {
    let t = trim_blanks(raw);
    // ASCII (nearly every address) lowercases byte by byte, in place, without
    // Unicode tables.
    let ascii = t.is_ascii();
    let e = if ascii {
        let mut e = CompactString::new(t);
        e.make_ascii_lowercase();
        e
    } else {
        CompactString::from(t.to_lowercase())
    };
    let count = |s: &str| if ascii { s.len() } else { s.chars().count() };
    let chars = count(&e);
    if chars > EMAIL_CHARS_MAX {
        return Err(too_long(chars));
    }
    match check(&e, ascii) {
        Ok(None) => Ok(e),
        Ok(Some(stored)) => {
            let chars = stored.chars().count();
            if chars > EMAIL_CHARS_MAX {
                return Err(too_long(chars));
            }
            Ok(stored)
        }
        Err(why) => Err(Invalid {
            code: ErrorCode::InvalidEmail,
            message: format!("{} is not a valid email: {why}", excerpt(&e)),
        }),
    }
}

fn too_long(chars: usize) -> Invalid {
    Invalid {
        code: ErrorCode::TooLong,
        message: format!("email is {chars} characters, at most {EMAIL_CHARS_MAX} allowed"),
    }
}

/// The grammar, on the trimmed, lowercased address (`ascii` when it is all
/// ASCII). `Ok(Some(stored))` when the stored form differs (an international
/// domain in ASCII form); `Err` names the first problem.
pub(crate) fn check(e: &str, ascii: bool) -> Result<Option<CompactString>, &'static str> {
    let Some((local, domain)) = e.split_once('@') else {
        return Err("no @");
    };
    if domain.contains('@') {
        return Err("more than one @ (quoted local parts are not supported)");
    }
    check_local(local, ascii)?;
    if ascii || domain.is_ascii() {
        check_domain(domain)?;
        return Ok(None);
    }
    let ascii_domain = idna::domain_to_ascii_strict(domain)
        .map_err(|_| "the domain is not a valid international domain name")?;
    check_domain(&ascii_domain)?;
    let mut stored = CompactString::with_capacity(local.len() + 1 + ascii_domain.len());
    stored.push_str(local);
    stored.push('@');
    stored.push_str(&ascii_domain);
    Ok(Some(stored))
}

fn check_local(local: &str, ascii: bool) -> Result<(), &'static str> {
    // One pass over the bytes answers for nearly every address; the reason is
    // looked for only when something is wrong.
    let b = local.as_bytes();
    let mut ok = !b.is_empty() && b.first() != Some(&b'.') && b.last() != Some(&b'.');
    let mut prev = 0u8;
    for &c in b {
        ok &= local_byte(c) & !((c == b'.') & (prev == b'.'));
        prev = c;
    }
    if !ok {
        return Err(local_problem(b));
    }
    let chars = if ascii {
        local.len()
    } else {
        local.chars().count()
    };
    if chars > EMAIL_LOCAL_CHARS_MAX {
        return Err("the local part is longer than 64 characters");
    }
    // Non-ASCII characters (RFC 6531): anything but blanks and control characters.
    if !ascii
        && local
            .chars()
            .any(|c| !c.is_ascii() && (c.is_whitespace() || c.is_control()))
    {
        return Err("whitespace or a control character in the local part");
    }
    Ok(())
}

/// What is wrong with a local part that failed the one-pass check.
#[cold]
fn local_problem(b: &[u8]) -> &'static str {
    if b.is_empty() {
        return "the local part (before @) is empty";
    }
    if b.first() == Some(&b'.') || b.last() == Some(&b'.') {
        return "the local part starts or ends with a dot";
    }
    if b.windows(2).any(|w| w == b"..") {
        return "the local part has two dots in a row";
    }
    match b.iter().find(|c| !local_byte(**c)) {
        Some(b'"') => "quoted local parts are not supported",
        Some(b'(' | b')') => "comments are not supported",
        Some(0..=0x20 | 0x7f) => "whitespace or a control character in the local part",
        _ => "a character that is not allowed in the local part",
    }
}

/// The label rule on an ASCII domain.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.len() > DOMAIN_OCTETS_MAX {
        return Err("the domain is longer than 253 octets");
    }
    let mut labels = 0usize;
    let mut last: &[u8] = &[];
    for label in domain.as_bytes().split(|&b| b == b'.') {
        if label.is_empty() {
            return Err("the domain has an empty label");
        }
        if label.len() > LABEL_OCTETS_MAX {
            return Err("a domain label is longer than 63 octets");
        }
        if !label
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err("the domain has a character other than a-z, 0-9, - and .");
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return Err("a domain label starts or ends with -");
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err("the domain has no dot");
    }
    if last.iter().all(u8::is_ascii_digit) {
        return Err("the top-level domain is all digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
