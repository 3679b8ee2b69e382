//! Phone numbers: the stored form is E.164, `+` then 7..=15 digits, the
//! first not 0.
//!
//! The input may carry the separators space, `-`, `.`, `(` and `)`; a leading `00`
//! means `+`; a `(0)` right after the country code is a trunk prefix written for
//! national dialling and is dropped (`+44 (0)20 7946 0958` → `+442079460958`); a
//! `tel:` URI prefix is accepted (`tel:+1-201-555-0123`), its parameters after `;`
//! (`;ext=12`) are not, since extensions are not stored.
//!
//! Two request options widen or tighten that format rule:
//! - `default_region` (an ISO 3166-1 alpha-2 code) reads a number without `+` or
//!   `00` as a national number of that region, by libphonenumber's metadata
//!   (its national prefix stripped): `0532 123 45 67` with `TR` → `+905321234567`;
//! - `phone_check: valid` also requires the number to be valid for its region by
//!   libphonenumber's metadata (a number in use there, of a length the region
//!   uses), not only of E.164's shape.

use compact_str::CompactString;
use phonenumber::PhoneNumber;
use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use serde::{Deserialize, Serialize};

use crate::limits::{PHONE_DIGITS_MAX, PHONE_DIGITS_MIN};
use crate::normalize::{Invalid, excerpt, trim};
use crate::report::ErrorCode;

/// How strictly a request checks phone numbers (`phone_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PhoneCheck {
    /// E.164's shape only: `+` and 7..=15 digits, the first not 0. Default.
    #[default]
    Format,
    /// The shape, and a valid number for its region by libphonenumber's metadata.
    Valid,
}

impl PhoneCheck {
    /// Whether this is the default, [`PhoneCheck::Format`].
    pub fn is_format(&self) -> bool {
        *self == PhoneCheck::Format
    }
}

/// A region whose numbering plan libphonenumber's metadata knows (`default_region`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl Region {
    /// The region of an ISO 3166-1 alpha-2 code, case-insensitive (`"tr"`, `"GB"`);
    /// `None` for anything else, or a region without a known numbering plan.
    pub fn parse(code: &str) -> Option<Region> {
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let upper = code.to_ascii_uppercase();
        DATABASE.by_id(upper.as_str())?;
        upper.parse::<Id>().ok().map(Region)
    }

    /// The upper-case code.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }
}

/// The phone options of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhoneOptions {
    /// `phone_check`.
    pub check: PhoneCheck,
    /// `default_region`.
    pub region: Option<Region>,
}

fn invalid(message: String) -> Invalid {
    Invalid {
        code: ErrorCode::InvalidPhone,
        message,
    }
}

fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')')
}

/// Whether `digits` (without the `+`) is E.164's shape: 7..=15 digits, the first
/// not 0.
fn e164_shape(digits: &[u8]) -> bool {
    (PHONE_DIGITS_MIN..=PHONE_DIGITS_MAX).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits.first() != Some(&b'0')
}

/// Normalizes a phone number to E.164 by the format rule alone (no
/// `default_region`, `phone_check: format`).
#[inline]
pub fn normalize_phone(raw: &str) -> Result<CompactString, Invalid> {
    normalize_phone_with(raw, &PhoneOptions::default())
}

/// Normalizes a phone number to E.164 under a request's phone options.
pub fn normalize_phone_with(raw: &str, opts: &PhoneOptions) -> Result<CompactString, Invalid> {
    let t = trim(raw);
    let compact = compact(t);
    let e164 = if compact.starts_with('+') {
        compact
    } else if let Some(region) = opts.region {
        national(t, &compact, region)?
    } else {
        let hint = if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_digit()) {
            " (a national number needs the request's default_region)"
        } else {
            ""
        };
        return Err(not_e164(t, hint));
    };
    let shaped = e164
        .as_bytes()
        .split_first()
        .is_some_and(|(plus, digits)| *plus == b'+' && e164_shape(digits));
    if !shaped {
        return Err(not_e164(t, ""));
    }
    if opts.check == PhoneCheck::Valid {
        return check_valid(t, e164);
    }
    Ok(e164)
}

/// The error of a number that is not of E.164's shape. A `;` (which no number
/// passes with) gets its own reason: extensions and other `tel:` parameters are
/// not stored.
fn not_e164(t: &str, hint: &str) -> Invalid {
    if t.contains(';') {
        return invalid(format!(
            "{} carries a parameter after `;` (such as an extension); extensions are not \
             stored, give the number alone",
            excerpt(t)
        ));
    }
    invalid(format!(
        "{} is not a phone number in E.164 form{hint}",
        excerpt(t)
    ))
}

/// The number without its separators, `tel:` prefix and `(0)` trunk prefix, a
/// leading `00` made `+`; anything else is kept for the shape check to refuse.
fn compact(t: &str) -> CompactString {
    let body = match t.as_bytes().first() {
        Some(b't' | b'T') => match t.get(..4) {
            Some(p) if p.eq_ignore_ascii_case("tel:") => t.get(4..).unwrap_or_default(),
            _ => t,
        },
        _ => t,
    };
    if !body.is_ascii() || body.len() > 64 {
        return compact_chars(body);
    }
    // E.164 has at most 16 characters, so a valid number stays inline. ASCII input
    // (nearly all) is filtered byte by byte on the stack; a `(0)` trunk prefix is
    // looked for only when the number has a `(`.
    let mut buf = [0u8; 64];
    let mut n = 0;
    let mut paren = false;
    for b in body.bytes() {
        if is_separator(b) {
            paren |= b == b'(';
        } else if let Some(slot) = buf.get_mut(n) {
            *slot = b;
            n += 1;
        }
    }
    if paren && let Some(dropped) = drop_trunk_zero(body) {
        return compact_chars(&dropped);
    }
    plus(
        CompactString::from_utf8(buf.get(..n).unwrap_or_default())
            .unwrap_or_else(|_| CompactString::const_new("")),
    )
}

/// [`compact`] of any text, character by character.
fn compact_chars(body: &str) -> CompactString {
    let dropped = drop_trunk_zero(body);
    plus(
        dropped
            .as_deref()
            .unwrap_or(body)
            .chars()
            .filter(|&c| !(c.is_ascii() && is_separator(c as u8)))
            .collect(),
    )
}

/// A leading `00` made `+`.
#[inline]
fn plus(mut s: CompactString) -> CompactString {
    if s.starts_with("00") {
        s.replace_range(..2, "+");
    }
    s
}

/// `body` without a `(0)` that directly follows the country code (`+` or `00`,
/// 1..=3 digits, optional spaces, `(0)`), or `None` when it has none. Looks at the
/// first few bytes only.
fn drop_trunk_zero(body: &str) -> Option<String> {
    let b = body.as_bytes();
    let start = match b {
        [b'+', ..] => 1,
        [b'0', b'0', ..] => 2,
        _ => return None,
    };
    let mut at = start;
    while b.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    let digits = at - start;
    if !(1..=3).contains(&digits) {
        return None;
    }
    while b.get(at) == Some(&b' ') {
        at += 1;
    }
    if b.get(at..at + 3) != Some(b"(0)") {
        return None;
    }
    let (head, tail) = (body.get(..start + digits)?, body.get(at + 3..)?);
    Some(format!("{head} {tail}"))
}

/// A national number (no `+`, no `00`) of `region`, as E.164 by libphonenumber's
/// metadata.
fn national(t: &str, compact: &str, region: Region) -> Result<CompactString, Invalid> {
    if compact.is_empty() || !compact.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "{} is not a phone number (digits and the separators space, -, ., ( and ) only)",
            excerpt(t)
        )));
    }
    let number = phonenumber::parse(Some(region.0), compact).map_err(|e| {
        invalid(format!(
            "{} is not a phone number of {}: {e}",
            excerpt(t),
            region.code()
        ))
    })?;
    Ok(CompactString::from(e164_of(&number)))
}

/// libphonenumber's E.164 form of a number: `+`, the country calling code, the
/// national significant number (with its leading zeros, as Italy's). Written
/// directly: the formatter would match the region's format patterns first.
fn e164_of(number: &PhoneNumber) -> String {
    format!("+{}{}", number.code().value(), number.national())
}

/// `phone_check: valid`: `e164` (of E.164's shape) must be a valid number by
/// libphonenumber's metadata; the error says why not. The stored form is
/// libphonenumber's E.164 form of it (a national prefix written after the country
/// code dropped: `+49 0 30 901820` → `+4930901820`).
fn check_valid(t: &str, e164: CompactString) -> Result<CompactString, Invalid> {
    let digits = e164.get(1..).unwrap_or_default();
    // Country calling codes are prefix-free: at most one of the first 1..=3 digits
    // is one.
    let code = (1..=3).find_map(|n| {
        let cc: u16 = digits.get(..n)?.parse().ok()?;
        DATABASE.region(&cc).map(|regions| (cc, n, regions))
    });
    let Some((cc, n, regions)) = code else {
        return Err(invalid(format!(
            "{}: unknown country calling code +{}",
            excerpt(t),
            digits.get(..3).unwrap_or(digits)
        )));
    };
    let parsed = phonenumber::parse(None, e164.as_str());
    if let Ok(number) = &parsed
        && number.is_valid()
    {
        let canonical = e164_of(number);
        return Ok(if canonical == e164 {
            e164
        } else {
            CompactString::from(canonical)
        });
    }
    // The region named in the message: the number's own when the metadata tells
    // it, else the main region of its calling code.
    let region = parsed
        .as_ref()
        .ok()
        .and_then(|n| n.country().id())
        .map(|id| id.as_ref().to_owned())
        .or_else(|| {
            regions
                .first()
                .filter(|r| **r != "001")
                .map(|r| (*r).to_owned())
        })
        .unwrap_or_else(|| format!("+{cc}"));
    let national_len = digits.len().saturating_sub(n);
    let lengths = DATABASE
        .by_id(region.as_str())
        .or_else(|| regions.first().and_then(|r| DATABASE.by_id(*r)))
        .map(possible_lengths)
        .unwrap_or_default();
    let why = match (lengths.iter().min(), lengths.iter().max()) {
        (Some(&min), _) if national_len < usize::from(min) => "is too short for",
        (_, Some(&max)) if national_len > usize::from(max) => "is too long for",
        _ => "is not a valid number for",
    };
    Err(invalid(format!("{} {why} {region}", excerpt(t))))
}

/// Every length a national significant number of this region may have, over
/// all number types.
fn possible_lengths(meta: &phonenumber::Metadata) -> Vec<u16> {
    let d = meta.descriptors();
    let mut all: Vec<u16> = d.general().possible_length().to_vec();
    for t in [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    {
        all.extend_from_slice(t.possible_length());
    }
    all
}

#[cfg(test)]
mod tests;
