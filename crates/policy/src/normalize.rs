//! Normalization and validation of single values by column kind.
//!
//! `null` and strings that are empty after trimming mean "clear" ([`Normalized::Clear`]);
//! the caller decides what clearing means for the column (`empty_values`).

use std::borrow::Cow;

use compact_str::CompactString;
use serde_json::Value as Json;

use crate::column::Kind;
use crate::contact::Value;
pub use crate::email::normalize_email;
use crate::limits::{JSON_DEPTH_MAX, KEY_BYTES_MAX, METADATA_BYTES_MAX};
pub use crate::phone::{PhoneCheck, PhoneOptions, Region, normalize_phone, normalize_phone_with};
use crate::report::ErrorCode;

/// The request options that change how values are read: `phone_check`,
/// `default_region` and `date_format`. The default reads values by the value rules alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueOptions {
    /// How phone numbers are read and checked.
    pub phone: PhoneOptions,
    /// The format every date column is read with; ISO `YYYY-MM-DD` when absent.
    pub date_format: Option<DateFormat>,
}

/// A request's `date_format`: a strftime pattern (`%d/%m/%Y`) that every date
/// column's values are read with. The stored form stays `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat(String);

impl DateFormat {
    /// Checks a pattern: it must write a date and read it back as the same date,
    /// so it names a year, a month and a day (or a day of the year). `Err` says
    /// why not.
    pub fn parse(pattern: &str) -> Result<DateFormat, String> {
        if pattern.trim().is_empty() {
            return Err("the format is empty".to_owned());
        }
        let sample = jiff::civil::Date::new(2001, 11, 23).map_err(|e| e.to_string())?;
        let text = jiff::fmt::strtime::format(pattern, sample).map_err(|e| e.to_string())?;
        match jiff::civil::Date::strptime(pattern, &text) {
            Ok(back) if back == sample => Ok(DateFormat(pattern.to_owned())),
            _ => Err("it does not name a year, a month and a day".to_owned()),
        }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The date `s` (trimmed) names by this format, as `YYYY-MM-DD`.
    pub fn read(&self, s: &str) -> Result<String, Invalid> {
        match jiff::civil::Date::strptime(&self.0, s) {
            Ok(d) if (1..=9999).contains(&d.year()) => Ok(d.to_string()),
            _ => Err(invalid(
                ErrorCode::InvalidDate,
                format!("{} is not a date in the format {:?}", excerpt(s), self.0),
            )),
        }
    }
}

/// The result of normalizing one input value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalized {
    /// A value to store; `changed` when the stored text differs from the input text
    /// (trimmed, lowercased, reformatted), which earns a `value_normalized` warning.
    Set {
        /// The normalized value.
        value: Value,
        /// Whether normalization changed the caller's text.
        changed: bool,
    },
    /// `null` or an empty string.
    Clear,
}

/// The `value_normalized` warning's message for a column of `kind`: what its stored
/// form is, which is all a changed value of that kind can differ in.
pub fn normalized_message(kind: Kind) -> &'static str {
    match kind {
        Kind::Email => {
            "stored in lower case, without surrounding whitespace, an international domain \
             in its ASCII (xn--) form"
        }
        Kind::Phone => "stored in E.164 form",
        Kind::Date => "stored as YYYY-MM-DD, without surrounding whitespace",
        Kind::Status => "stored in upper case, without surrounding whitespace",
        Kind::Key | Kind::Text { .. } => "stored without surrounding whitespace",
        // These kinds never report a change.
        Kind::Bool | Kind::Priority | Kind::Integer | Kind::Decimal | Kind::Json => {
            "stored in normalized form"
        }
    }
}

/// A value that failed validation: the code and a message naming the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Stable error code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub message: String,
}

pub(crate) fn invalid(code: ErrorCode, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// `str::trim`, returning at once when both ends are visible ASCII (no Unicode
/// whitespace can then be trimmed), as nearly every value's ends are.
pub(crate) fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

/// Which control characters a text value may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Controls {
    /// None (identity columns: keys).
    None,
    /// Tabs and line breaks, `\n` or `\r\n` (text columns); a lone `\r` is not one.
    Text,
}

/// Number of characters, and whether any is a control character that `allowed`
/// does not let through: byte by byte for ASCII text (where the two agree), else
/// by `char`.
fn chars_and_controls(s: &str, allowed: Controls) -> (usize, bool) {
    let ok = |c: u8, next: Option<u8>| {
        allowed == Controls::Text
            && (c == b'\t' || c == b'\n' || (c == b'\r' && next == Some(b'\n')))
    };
    if s.is_ascii() {
        let b = s.as_bytes();
        let control = b
            .iter()
            .enumerate()
            .any(|(i, &c)| (c < 0x20 || c == 0x7f) && !ok(c, b.get(i + 1).copied()));
        (s.len(), control)
    } else {
        let mut chars = s.chars().peekable();
        let mut count = 0;
        let mut control = false;
        while let Some(c) = chars.next() {
            count += 1;
            if c.is_control() && !control {
                let next = chars.peek().and_then(|n| u8::try_from(*n).ok());
                control = !u8::try_from(c).is_ok_and(|c| ok(c, next));
            }
        }
        (count, control)
    }
}

/// Shortens a value for an error message, so hostile sizes stay out of reports.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}… ({} bytes)", s.len())
    }
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Text of a scalar input: strings as given, integers in decimal. Other types fail
/// with `invalid_type`. Returns (text, was_a_string).
fn scalar_text<'a>(v: &'a Json, what: &str) -> Result<(Cow<'a, str>, bool), Invalid> {
    match v {
        Json::String(s) => Ok((Cow::Borrowed(s.as_str()), true)),
        Json::Number(n) if n.is_i64() || n.is_u64() => Ok((n.to_string().into(), false)),
        other => Err(invalid(
            ErrorCode::InvalidType,
            format!("{what} must be a string, got {}", type_name(other)),
        )),
    }
}

/// Normalizes one input value for a column of `kind`, by the value rules alone (no request
/// options).
pub fn normalize(kind: Kind, input: &Json) -> Result<Normalized, Invalid> {
    normalize_with(kind, input, &ValueOptions::default())
}

/// Normalizes one input value for a column of `kind` under a request's value
/// options.
pub fn normalize_with(
    kind: Kind,
    input: &Json,
    opts: &ValueOptions,
) -> Result<Normalized, Invalid> {
    if is_clear(input) {
        return Ok(Normalized::Clear);
    }
    match kind {
        Kind::Key => key_value(input),
        Kind::Text { chars_max } => text_value(input, chars_max),
        Kind::Email => email_value(input),
        Kind::Phone => phone_value(input, &opts.phone),
        Kind::Status => status_value(input),
        Kind::Bool => normalize_bool(input).map(|b| Normalized::Set {
            value: Value::Bool(b),
            changed: false,
        }),
        Kind::Date => date_value(input, opts.date_format.as_ref()),
        Kind::Priority => priority_value(input),
        Kind::Integer => integer_value(input),
        Kind::Decimal => decimal_value(input),
        Kind::Json => json_value(input),
    }
}

/// Whether `input` asks to clear the column: `null`, or a string that is empty
/// after trimming. The per-kind steps below are only given other values.
#[inline]
fn is_clear(input: &Json) -> bool {
    match input {
        Json::Null => true,
        Json::String(s) => trim(s).is_empty(),
        _ => false,
    }
}

/// A key column's value: a string or an integer, trimmed, 1..=255 bytes, no
/// control characters. `input` is not a clearing value.
fn key_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let (raw, was_str) = scalar_text(input, "a key")?;
    let key = normalize_key(&raw)?;
    let changed = was_str && key != raw;
    Ok(Normalized::Set {
        value: Value::Str(key.into()),
        changed,
    })
}

/// A text column's value: a string or a number, trimmed, at most `chars_max`
/// characters, no control characters but tabs and line breaks. `input` is not a
/// clearing value.
fn text_value(input: &Json, chars_max: u32) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let (raw, was_str) = match input {
        Json::Number(n) => (Cow::Owned(n.to_string()), false),
        _ => scalar_text(input, "a text value")?,
    };
    let t = trim(&raw);
    let (chars, control) = chars_and_controls(t, Controls::Text);
    if chars > chars_max as usize {
        return Err(invalid(
            ErrorCode::TooLong,
            format!("{chars} characters, at most {chars_max} allowed"),
        ));
    }
    if control {
        return Err(invalid(
            ErrorCode::InvalidType,
            format!("text {} contains control characters", excerpt(t)),
        ));
    }
    Ok(Normalized::Set {
        changed: was_str && t.len() != raw.len(),
        value: Value::Str(t.into()),
    })
}

/// An email column's value: a string, by [`normalize_email`]. `input` is not
/// a clearing value.
fn email_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let Json::String(raw) = input else {
        return Err(invalid(
            ErrorCode::InvalidType,
            format!("email must be a string, got {}", type_name(input)),
        ));
    };
    let email = normalize_email(raw)?;
    Ok(Normalized::Set {
        changed: email.as_str() != raw.as_str(),
        value: Value::Str(email),
    })
}

/// A phone column's value: a string or an integer, in E.164 form by the
/// request's phone options. `input` is not a clearing value.
fn phone_value(input: &Json, opts: &PhoneOptions) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let (raw, was_str) = scalar_text(input, "a phone number")?;
    let phone = normalize_phone_with(&raw, opts)?;
    Ok(Normalized::Set {
        changed: was_str && phone != raw,
        value: Value::Str(phone),
    })
}

/// A status column's value: the string `A` or `P` in either case, stored in
/// upper case. `input` is not a clearing value.
fn status_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let Json::String(raw) = input else {
        return Err(invalid(
            ErrorCode::InvalidEnum,
            format!("status must be \"A\" or \"P\", got {}", type_name(input)),
        ));
    };
    let t = trim(raw);
    let v = match t {
        "A" | "a" => "A",
        "P" | "p" => "P",
        _ => {
            return Err(invalid(
                ErrorCode::InvalidEnum,
                format!("status must be \"A\" or \"P\", got {}", excerpt(t)),
            ));
        }
    };
    Ok(Normalized::Set {
        changed: v != raw,
        value: Value::Str(CompactString::const_new(v)),
    })
}

/// A date column's value: a string, `YYYY-MM-DD` or read by the request's
/// `date_format`, stored as `YYYY-MM-DD`. `input` is not a clearing value.
fn date_value(input: &Json, format: Option<&DateFormat>) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let Json::String(raw) = input else {
        return Err(invalid(
            ErrorCode::InvalidType,
            format!("a date must be a string, got {}", type_name(input)),
        ));
    };
    let t = trim(raw);
    match format {
        None => {
            validate_date(t)?;
            Ok(Normalized::Set {
                changed: t.len() != raw.len(),
                value: Value::Str(t.into()),
            })
        }
        Some(format) => {
            let iso = format.read(t)?;
            Ok(Normalized::Set {
                changed: iso != *raw,
                value: Value::Str(iso.into()),
            })
        }
    }
}

/// A priority column's value: an integer ≥ 0, as a number or as a string of
/// digits. `input` is not a clearing value.
fn priority_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let p = match input {
        Json::Number(n) => n.as_i64().filter(|p| *p >= 0),
        Json::String(s) => {
            let t = trim(s);
            if t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    };
    match p {
        Some(p) => Ok(Normalized::Set {
            value: Value::Int(p),
            changed: false,
        }),
        None => Err(invalid(
            ErrorCode::InvalidPriority,
            format!("priority must be an integer ≥ 0, got {input}")
                .chars()
                .take(120)
                .collect::<String>(),
        )),
    }
}

/// An integer column's value: a 64-bit integer, as a number or as a string.
/// `input` is not a clearing value.
fn integer_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let i = match input {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => parse_int(trim(s)),
        _ => None,
    };
    i.map(|i| Normalized::Set {
        value: Value::Int(i),
        changed: false,
    })
    .ok_or_else(|| {
        invalid(
            ErrorCode::InvalidType,
            format!("expected a 64-bit integer, got {}", short_json(input)),
        )
    })
}

/// A decimal column's value: a number or a string, in [`canonical_decimal`] form.
/// `input` is not a clearing value.
fn decimal_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    let text = match input {
        Json::Number(n) => Some(n.to_string()),
        Json::String(s) => Some(trim(s).to_owned()),
        _ => None,
    };
    text.as_deref()
        .and_then(canonical_decimal)
        .map(|d| Normalized::Set {
            value: Value::Decimal(d),
            changed: false,
        })
        .ok_or_else(|| {
            invalid(
                ErrorCode::InvalidType,
                format!("expected a decimal number, got {}", short_json(input)),
            )
        })
}

/// A JSON column's value (`metadata`): any value nested at most
/// [`JSON_DEPTH_MAX`] deep, stored as canonical JSON text of at most
/// [`METADATA_BYTES_MAX`] bytes. `input` is not a clearing value.
fn json_value(input: &Json) -> Result<Normalized, Invalid> {
    debug_assert!(!is_clear(input));
    if json_depth(input) > JSON_DEPTH_MAX {
        return Err(invalid(
            ErrorCode::InvalidType,
            format!("JSON nested deeper than {JSON_DEPTH_MAX} levels"),
        ));
    }
    let text = serde_json::to_string(input)
        .map_err(|e| invalid(ErrorCode::InvalidType, format!("not serializable: {e}")))?;
    if text.len() > METADATA_BYTES_MAX {
        return Err(invalid(
            ErrorCode::MetadataTooLarge,
            format!(
                "{} bytes serialized, at most {METADATA_BYTES_MAX} allowed",
                text.len()
            ),
        ));
    }
    Ok(Normalized::Set {
        value: Value::Json(text),
        changed: false,
    })
}

/// Deepest nesting of arrays and objects in `v`, computed without recursion so a
/// hostile value cannot exhaust the stack here.
pub fn json_depth(v: &Json) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Json, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Json::Array(items) => {
                max = max.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Json::Object(map) => {
                max = max.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    max
}

fn short_json(v: &Json) -> String {
    let s = v.to_string();
    excerpt(&s)
}

fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Trims a key and checks the key rule: 1..=255 bytes, no control characters.
pub fn normalize_key(raw: &str) -> Result<String, Invalid> {
    let k = trim(raw);
    if k.is_empty() {
        return Err(invalid(ErrorCode::MissingKey, "contact_key is empty"));
    }
    if k.len() > KEY_BYTES_MAX {
        return Err(invalid(
            ErrorCode::TooLong,
            format!("key is {} bytes, at most {KEY_BYTES_MAX} allowed", k.len()),
        ));
    }
    if chars_and_controls(k, Controls::None).1 {
        return Err(invalid(
            ErrorCode::InvalidKey,
            format!("key {} contains control characters", excerpt(k)),
        ));
    }
    Ok(k.to_owned())
}

fn normalize_bool(input: &Json) -> Result<bool, Invalid> {
    let b = match input {
        Json::Bool(b) => Some(*b),
        Json::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Json::String(s) => match trim(s).to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.ok_or_else(|| {
        invalid(
            ErrorCode::InvalidType,
            format!("expected a boolean, got {}", short_json(input)),
        )
    })
}

/// Checks `YYYY-MM-DD` and that the date exists in the Gregorian calendar.
pub fn validate_date(s: &str) -> Result<(), Invalid> {
    let bad = || {
        invalid(
            ErrorCode::InvalidDate,
            format!("{} is not a date YYYY-MM-DD", excerpt(s)),
        )
    };
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if y == 0 || d == 0 || d > days {
        return Err(bad());
    }
    Ok(())
}

/// Canonical text of a decimal: optional `-`, no leading zeros, no trailing
/// fractional zeros, no `+`, no exponent (`"+007.50"` → `"7.5"`, `"-0.0"` → `"0"`).
pub fn canonical_decimal(s: &str) -> Option<String> {
    const DIGITS_MAX: usize = 64;
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || int.len() + frac.len() > DIGITS_MAX
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (body.contains('.') && frac.is_empty())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.is_empty();
    let mut out = String::with_capacity(int.len() + frac.len() + 2);
    if neg && !zero {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: Kind, input: Json, expected: Result<&str, ErrorCode>) {
        let got = normalize(kind, &input);
        match (&got, expected) {
            (Ok(Normalized::Set { value, .. }), Ok(want)) => {
                let text = match value {
                    Value::Str(s) => s.to_string(),
                    Value::Decimal(s) | Value::Json(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Bool(b) => b.to_string(),
                };
                assert_eq!(text, want, "{kind:?} {input}");
            }
            (Ok(Normalized::Clear), Ok("")) => {}
            (Err(e), Err(code)) => assert_eq!(e.code, code, "{kind:?} {input}: {}", e.message),
            _ => panic!("{kind:?} {input}: got {got:?}, want {expected:?}"),
        }
    }

    // R2 email rules.
    #[test]
    fn emails() {
        use ErrorCode::*;
        for (input, want) in [
            (" Ann@Example.COM ", Ok("ann@example.com")),
            ("a@b.co", Ok("a@b.co")),
            ("a.b+c@sub.example-x.org", Ok("a.b+c@sub.example-x.org")),
            ("no-at-sign", Err(InvalidEmail)),
            ("a@@b.com", Err(InvalidEmail)),
            ("a@b@c.com", Err(InvalidEmail)),
            ("a@localhost", Err(InvalidEmail)),
            ("a@-b.com", Err(InvalidEmail)),
            ("a@b-.com", Err(InvalidEmail)),
            ("a@b..com", Err(InvalidEmail)),
            ("a b@c.com", Err(InvalidEmail)),
            ("@c.com", Err(InvalidEmail)),
            ("a@b_c.com", Err(InvalidEmail)),
            // Non-ASCII local parts lowercase by Unicode rules (the ASCII path is a
            // shortcut of the same mapping); domains must be ASCII (punycode).
            ("ÅSA.Öz@Example.com", Ok("åsa.öz@example.com")),
            ("ÅSA@Exämple.com", Ok("åsa@xn--exmple-cua.com")),
            ("a@b.com\n", Err(InvalidEmail)),
            // Blanks and control characters in the local part, ASCII and not.
            ("a\tb@c.com", Err(InvalidEmail)),
            ("a..b@c.com", Err(InvalidEmail)),
            ("a\u{1c}b@c.com", Err(InvalidEmail)),
            ("a\u{7f}b@c.com", Err(InvalidEmail)),
            ("a\u{a0}b@c.com", Err(InvalidEmail)),
            ("ä\u{85}b@c.com", Err(InvalidEmail)),
            (
                "a!#$%&'*+/=?^_`{|}~-b@c.com",
                Ok("a!#$%&'*+/=?^_`{|}~-b@c.com"),
            ),
            ("", Ok("")),
        ] {
            check(Kind::Email, json!(input), want);
        }
        let long_local = format!("{}@b.com", "a".repeat(65));
        check(Kind::Email, json!(long_local), Err(InvalidEmail));
        let long = format!("a@{}.com", "b".repeat(260));
        check(Kind::Email, json!(long), Err(TooLong));
        check(Kind::Email, json!(5), Err(InvalidType));
    }

    // R2 phone rules.
    #[test]
    fn phones() {
        use ErrorCode::*;
        for (input, want) in [
            ("+90 555 123 45 67", Ok("+905551234567")),
            ("0044 (20) 7946-0958", Ok("+442079460958")),
            ("+1.415.555.0100", Ok("+14155550100")),
            ("00905551234567", Ok("+905551234567")),
            ("0 0 90 555 123 45 67", Ok("+905551234567")),
            ("+00905551234567", Err(InvalidPhone)),
            ("0090 555 123 45 67 89 01 23 45", Err(InvalidPhone)),
            ("+1234567", Ok("+1234567")),
            ("+123456", Err(InvalidPhone)),
            ("+1234567890123456", Err(InvalidPhone)),
            ("+0123456789", Err(InvalidPhone)),
            ("5551234567", Err(InvalidPhone)),
            ("+1 555 CALL NOW", Err(InvalidPhone)),
            ("+1/555/1234567", Err(InvalidPhone)),
        ] {
            check(Kind::Phone, json!(input), want);
        }
        // Up to 64 bytes of ASCII are filtered on the stack, longer or non-ASCII
        // input char by char: both give the same answers.
        for pad in [50, 70] {
            let spaced = format!("+1{}4155550100", " ".repeat(pad));
            check(Kind::Phone, json!(spaced), Ok("+14155550100"));
        }
        check(Kind::Phone, json!("+1\u{a0}4155550100"), Err(InvalidPhone));
        check(Kind::Phone, json!("+١٢٣٤٥٦٧٨"), Err(InvalidPhone));
    }

    // R2 dates, enums, booleans, priority.
    #[test]
    fn scalars() {
        use ErrorCode::*;
        check(Kind::Date, json!("2024-02-29"), Ok("2024-02-29"));
        check(Kind::Date, json!("2023-02-29"), Err(InvalidDate));
        check(Kind::Date, json!("1900-02-29"), Err(InvalidDate));
        check(Kind::Date, json!("2000-02-29"), Ok("2000-02-29"));
        check(Kind::Date, json!("2024-13-01"), Err(InvalidDate));
        check(Kind::Date, json!("2024-1-01"), Err(InvalidDate));
        check(Kind::Date, json!("24-01-01xx"), Err(InvalidDate));
        check(Kind::Date, json!(20240101), Err(InvalidType));
        check(Kind::Status, json!("a"), Ok("A"));
        check(Kind::Status, json!(" P "), Ok("P"));
        check(Kind::Status, json!("X"), Err(InvalidEnum));
        check(Kind::Bool, json!("Yes"), Ok("true"));
        check(Kind::Bool, json!(0), Ok("false"));
        check(Kind::Bool, json!("maybe"), Err(InvalidType));
        check(Kind::Priority, json!(0), Ok("0"));
        check(Kind::Priority, json!("7"), Ok("7"));
        check(Kind::Priority, json!(-1), Err(InvalidPriority));
        check(Kind::Priority, json!(1.5), Err(InvalidPriority));
        check(Kind::Priority, json!("high"), Err(InvalidPriority));
        check(Kind::Priority, json!("+5"), Err(InvalidPriority));
        check(Kind::Priority, json!("-0"), Err(InvalidPriority));
        check(Kind::Integer, json!("-42"), Ok("-42"));
        check(Kind::Integer, json!("4x"), Err(InvalidType));
        check(Kind::Decimal, json!("+007.50"), Ok("7.5"));
        check(Kind::Decimal, json!("-0.0"), Ok("0"));
        check(Kind::Decimal, json!(12.25), Ok("12.25"));
        check(Kind::Decimal, json!("1."), Err(InvalidType));
        check(Kind::Decimal, json!("1e5"), Err(InvalidType));
        check(Kind::Text { chars_max: 3 }, json!(" abc "), Ok("abc"));
        check(Kind::Text { chars_max: 3 }, json!("abcd"), Err(TooLong));
        check(Kind::Text { chars_max: 3 }, json!("çöü"), Ok("çöü"));
        check(Kind::Text { chars_max: 3 }, json!("çöüx"), Err(TooLong));
        // Tabs are allowed in text, other control characters are not, on the ASCII
        // (byte) path and on the Unicode (char) path alike.
        check(Kind::Text { chars_max: 9 }, json!("a\tb"), Ok("a\tb"));
        check(Kind::Text { chars_max: 9 }, json!("é\tb"), Ok("é\tb"));
        check(
            Kind::Text { chars_max: 9 },
            json!("a\u{7}b"),
            Err(InvalidType),
        );
        check(
            Kind::Text { chars_max: 9 },
            json!("a\u{7f}b"),
            Err(InvalidType),
        );
        check(
            Kind::Text { chars_max: 9 },
            json!("é\u{7}b"),
            Err(InvalidType),
        );
        check(
            Kind::Text { chars_max: 9 },
            json!("é\u{85}b"),
            Err(InvalidType),
        );
        check(Kind::Text { chars_max: 3 }, json!(null), Ok(""));
        check(
            Kind::Json,
            json!({"b": 1, "a": [true]}),
            Ok(r#"{"a":[true],"b":1}"#),
        );
        check(Kind::Json, json!("x".repeat(70_000)), Err(MetadataTooLarge));
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        check(
            Kind::Json,
            deep.clone(),
            Ok(&serde_json::to_string(&deep).unwrap_or_default()),
        );
        check(Kind::Json, json!([deep]), Err(InvalidType));
    }

    // R7: null and blank strings clear a column of every kind, before any check
    // of the kind runs.
    #[test]
    fn blank_values_clear_every_kind() {
        for kind in [
            Kind::Key,
            Kind::Text { chars_max: 1 },
            Kind::Email,
            Kind::Phone,
            Kind::Status,
            Kind::Bool,
            Kind::Date,
            Kind::Priority,
            Kind::Integer,
            Kind::Decimal,
            Kind::Json,
        ] {
            for input in [json!(null), json!(""), json!(" \t\u{a0}\n")] {
                check(kind, input, Ok(""));
            }
            let opts = ValueOptions {
                date_format: DateFormat::parse("%d/%m/%Y").ok(),
                ..ValueOptions::default()
            };
            assert_eq!(
                normalize_with(kind, &json!("  "), &opts),
                Ok(Normalized::Clear),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}a",
            "a\u{3000}",
            "\u{7f}a\u{7f}",
            "\ta\n",
            "ab",
            "é",
            " é ",
            "a\u{85}",
            "\u{1c}a",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    // R2 keys.
    #[test]
    fn keys() {
        use ErrorCode::*;
        check(Kind::Key, json!("  k1 "), Ok("k1"));
        check(Kind::Key, json!(42), Ok("42"));
        check(Kind::Key, json!("a\u{7}b"), Err(InvalidKey));
        check(Kind::Key, json!("a\tb"), Err(InvalidKey));
        check(Kind::Key, json!("é\u{85}b"), Err(InvalidKey));
        check(Kind::Key, json!("é-1"), Ok("é-1"));
        check(Kind::Key, json!("k".repeat(256)), Err(TooLong));
        check(Kind::Key, json!("k".repeat(255)), Ok(&"k".repeat(255)));
        check(Kind::Key, json!(true), Err(InvalidType));
    }
}
