//! `gen`: a deterministic generator of realistic, messy contacts for demos and
//! benchmarks. The same `--seed` and `--count` always give the same bytes.
//!
//! Mess it produces on purpose: mixed-case and padded emails, phones written with
//! spaces, dashes, parentheses and `00` prefixes, booleans as yes/no/1/0, lower-case
//! statuses, blank cells, the same contact twice in one file (with a change), a few
//! contacts sharing an email under different keys, and about 0.7% invalid rows
//! (bad email, phone, date, status or priority, or no key).

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::cli::{GenArgs, OutFormatArg};
use crate::util::{count, create_output, eprint_line};

/// splitmix64: tiny, fast, and good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0)");
        self.next() % n.max(1)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64);
        usize::try_from(i)
            .ok()
            .and_then(|i| items.get(i))
            .copied()
            .unwrap_or("")
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + u8::try_from(self.below(10)).unwrap_or(0)))
            .collect()
    }
}

/// First names as written, and their ASCII form for emails.
const FIRST: &[&str] = &[
    "Ayşe|ayse",
    "Mehmet|mehmet",
    "Elif|elif",
    "Mustafa|mustafa",
    "Zeynep|zeynep",
    "Emma|emma",
    "Oliver|oliver",
    "Amelia|amelia",
    "George|george",
    "Isla|isla",
    "Liam|liam",
    "Olivia|olivia",
    "Noah|noah",
    "Sophia|sophia",
    "James|james",
    "Lukas|lukas",
    "Mia|mia",
    "Jonas|jonas",
    "Hanna|hanna",
    "Jürgen|jurgen",
    "Chloé|chloe",
    "Léa|lea",
    "Hugo|hugo",
    "Louis|louis",
    "Inès|ines",
    "Daan|daan",
    "Sanne|sanne",
    "José|jose",
    "María|maria",
    "Lucía|lucia",
    "Giulia|giulia",
    "Marco|marco",
    "Aarav|aarav",
    "Priya|priya",
    "Wei|wei",
    "Yuki|yuki",
    "Fatima|fatima",
    "Omar|omar",
    "Zoë|zoe",
    "Søren|soren",
];

/// Surnames as written, and their ASCII form for emails.
const LAST: &[&str] = &[
    "Yılmaz|yilmaz",
    "Kaya|kaya",
    "Demir|demir",
    "Şahin|sahin",
    "Çelik|celik",
    "Smith|smith",
    "Jones|jones",
    "Taylor|taylor",
    "Brown|brown",
    "Williams|williams",
    "Johnson|johnson",
    "Garcia|garcia",
    "Miller|miller",
    "Davis|davis",
    "Wilson|wilson",
    "Müller|muller",
    "Schmidt|schmidt",
    "Schneider|schneider",
    "Fischer|fischer",
    "Weber|weber",
    "Martin|martin",
    "Bernard|bernard",
    "Dubois|dubois",
    "Lefèvre|lefevre",
    "Moreau|moreau",
    "de Jong|dejong",
    "Jansen|jansen",
    "van Dijk|vandijk",
    "Bakker|bakker",
    "Visser|visser",
    "Rossi|rossi",
    "Russo|russo",
    "Fernández|fernandez",
    "López|lopez",
    "Sánchez|sanchez",
    "Patel|patel",
    "Sharma|sharma",
    "Chen|chen",
    "Tanaka|tanaka",
    "O'Brien|obrien",
];

const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.co.uk",
    "icloud.com",
    "example.com",
    "mail.example.org",
    "acme-corp.com",
    "web.de",
    "orange.fr",
    "proton.me",
    "firma.com.tr",
];

const PERMITS: &[&str] = &[
    "yes", "no", "true", "false", "1", "0", "Y", "N", "TRUE", "", "",
];

const SOURCES: &[&str] = &["web", "crm", "event", "import", "referral", "store"];

const TIERS: &[&str] = &[
    "bronze", "Silver", "GOLD", "platinum", "bronze", "silver", "",
];

/// Columns of the output, in order.
const BASE_COLUMNS: &[&str] = &[
    "contact_key",
    "name",
    "surname",
    "gender",
    "email",
    "gsm",
    "email_permit",
    "gsm_permit",
    "status",
    "birthday",
    "subscription_start",
    "priority",
    "metadata",
];

/// The custom columns `gen` writes, with the `columns add` arguments they need.
pub const CUSTOM_COLUMNS: &[(&str, &str)] = &[
    (
        "loyalty_tier",
        "--type string --max-len 16 --import-enabled",
    ),
    ("lifetime_value", "--type decimal --import-enabled"),
];

fn split(entry: &str) -> (&str, &str) {
    entry.split_once('|').unwrap_or((entry, entry))
}

/// Upper-cases the first letter and every letter after `.`, `_` or `@`.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut up = true;
    for c in s.chars() {
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        up = matches!(c, '.' | '_' | '@');
    }
    out
}

fn phone(rng: &mut Rng) -> String {
    match rng.below(10) {
        0 => format!(
            "+90 5{} {} {} {}",
            rng.digits(2),
            rng.digits(3),
            rng.digits(2),
            rng.digits(2)
        ),
        1 => format!(
            "0090 5{} {} {} {}",
            rng.digits(2),
            rng.digits(3),
            rng.digits(2),
            rng.digits(2)
        ),
        2 => format!(
            "+90 (5{}) {}-{}-{}",
            rng.digits(2),
            rng.digits(3),
            rng.digits(2),
            rng.digits(2)
        ),
        3 => format!("+44 7{} {}", rng.digits(3), rng.digits(6)),
        4 => format!("0044 7{} {}", rng.digits(3), rng.digits(6)),
        5 => format!(
            "+1 ({}{}) 555-{}",
            2 + rng.below(8),
            rng.digits(2),
            rng.digits(4)
        ),
        6 => format!(
            "+1.{}{}.555.{}",
            2 + rng.below(8),
            rng.digits(2),
            rng.digits(4)
        ),
        7 => format!("+49 15{} {}", rng.digits(1), rng.digits(8)),
        8 => format!(
            "+33 6 {} {} {} {}",
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
        _ => format!("0031-6-{}", rng.digits(8)),
    }
}

fn date(rng: &mut Rng, from: u64, years: u64) -> String {
    format!(
        "{}-{:02}-{:02}",
        from + rng.below(years),
        1 + rng.below(12),
        1 + rng.below(28)
    )
}

/// One person, derived only from the seed and the person's number, so a duplicate
/// row later in the file describes the same person.
fn person(seed: u64, n: u64) -> Vec<(&'static str, String)> {
    let mut rng = Rng::new(seed ^ n.wrapping_mul(0xA24B_AED4_963E_E407));
    // Every value is drawn in this order: the same seed gives the same bytes.
    let (first, first_ascii) = split(rng.pick(FIRST));
    let (last, last_ascii) = split(rng.pick(LAST));
    let email = email(&mut rng, first_ascii, last_ascii);
    let gsm = blank_or(&mut rng, 80, phone);
    let gender = rng.pick(&[
        "female",
        "male",
        "F",
        "M",
        "",
        "female",
        "male",
        "non-binary",
    ]);
    let status = rng.pick(&["A", "A", "A", "A", "A", "A", "A", "a", "P", ""]);
    let birthday = blank_or(&mut rng, 150, |rng| date(rng, 1950, 56));
    let since = blank_or(&mut rng, 300, |rng| date(rng, 2015, 10));
    let priority = blank_or(&mut rng, 300, |rng| rng.below(10).to_string());
    let metadata = blank_or(&mut rng, 600, metadata);
    let tier = rng.pick(TIERS);
    let ltv = blank_or(&mut rng, 100, |rng| {
        format!("{}.{:02}", rng.below(20_000), rng.below(100))
    });
    let (e_permit, g_permit) = (rng.pick(PERMITS), rng.pick(PERMITS));
    vec![
        ("contact_key", format!("C{n:07}")),
        ("name", first.to_owned()),
        ("surname", last.to_owned()),
        ("gender", gender.to_owned()),
        ("email", email),
        ("gsm", gsm),
        ("email_permit", e_permit.to_owned()),
        ("gsm_permit", g_permit.to_owned()),
        ("status", status.to_owned()),
        ("birthday", birthday),
        ("subscription_start", since),
        ("priority", priority),
        ("metadata", metadata),
        ("loyalty_tier", tier.to_owned()),
        ("lifetime_value", ltv),
    ]
}

/// Blank with probability `per_mille / 1000`, else a value `make` draws.
fn blank_or(rng: &mut Rng, per_mille: u64, make: impl FnOnce(&mut Rng) -> String) -> String {
    if rng.chance(per_mille) {
        String::new()
    } else {
        make(rng)
    }
}

/// An email made from a person's name, sometimes mixed-case, padded or blank.
fn email(rng: &mut Rng, first_ascii: &str, last_ascii: &str) -> String {
    let domain = rng.pick(DOMAINS);
    let mut email = match rng.below(4) {
        0 => format!("{first_ascii}.{last_ascii}@{domain}"),
        1 => format!(
            "{}{last_ascii}{}@{domain}",
            first_ascii.get(..1).unwrap_or(""),
            rng.below(100)
        ),
        2 => format!(
            "{first_ascii}_{last_ascii}{}@{domain}",
            1950 + rng.below(56)
        ),
        _ => format!("{last_ascii}.{first_ascii}@{domain}"),
    };
    if rng.chance(150) {
        // Mixed case, as CRMs keep what people typed.
        email = match rng.below(3) {
            0 => email.to_uppercase(),
            1 => title(&email),
            _ => match email.split_once('@') {
                Some((l, d)) => format!("{}@{}", title(l), d.to_uppercase()),
                None => email,
            },
        };
    }
    if rng.chance(50) {
        email = format!("  {email} ");
    }
    if rng.chance(50) {
        email.clear();
    }
    email
}

/// The metadata JSON object: a source, sometimes a score and tags.
fn metadata(rng: &mut Rng) -> String {
    let mut m = Map::new();
    m.insert("source".to_owned(), Value::from(rng.pick(SOURCES)));
    if rng.chance(500) {
        m.insert("score".to_owned(), Value::from(rng.below(100)));
    }
    if rng.chance(300) {
        m.insert(
            "tags".to_owned(),
            Value::from(vec![
                "newsletter",
                rng.pick(&["vip", "b2b", "student", "trial"]),
            ]),
        );
    }
    Value::Object(m).to_string()
}

fn set(row: &mut [(&'static str, String)], col: &str, v: String) {
    if let Some(slot) = row.iter_mut().find(|(c, _)| *c == col) {
        slot.1 = v;
    }
}

fn get<'a>(row: &'a [(&'static str, String)], col: &str) -> &'a str {
    row.iter()
        .find(|(c, _)| *c == col)
        .map_or("", |(_, v)| v.as_str())
}

/// Row `i` of the output.
fn row(seed: u64, rng: &mut Rng, i: u64) -> Vec<(&'static str, String)> {
    let n = i + 1;
    let mut r = if i > 10 && rng.chance(20) {
        // The same contact again, with a change: a duplicate inside the file.
        let earlier = 1 + rng.below(i);
        let mut r = person(seed, earlier);
        match rng.below(3) {
            0 => set(&mut r, "gsm", phone(rng)),
            1 => set(&mut r, "status", "P".to_owned()),
            _ => {
                let name = get(&r, "name").to_uppercase();
                set(&mut r, "name", name);
            }
        }
        r
    } else if i > 10 && rng.chance(5) {
        // A new key with an earlier person's email (an alias under --match email).
        let earlier = 1 + rng.below(i);
        let other = person(seed, earlier);
        let mut r = person(seed, n);
        let email = get(&other, "email").to_owned();
        set(&mut r, "email", email);
        set(&mut r, "contact_key", format!("X{n:07}"));
        r
    } else {
        person(seed, n)
    };
    if rng.chance(7) {
        let (col, bad) = match rng.below(8) {
            0 => (
                "email",
                rng.pick(&[
                    "john.doe@",
                    "jane@@example.com",
                    "no-at-sign.example.com",
                    "ann smith@example.com",
                ]),
            ),
            1 => (
                "gsm",
                rng.pick(&["555-CALL-NOW", "12345", "+0 555 123 4567", "n/a"]),
            ),
            2 => (
                "birthday",
                rng.pick(&["1987-02-30", "31/12/1990", "2001-13-01", "yesterday"]),
            ),
            3 => ("contact_key", ""),
            4 => ("status", rng.pick(&["X", "active", "inactive"])),
            5 => ("priority", rng.pick(&["-1", "high", "1.5"])),
            6 => (
                "subscription_start",
                rng.pick(&["2023-02-29", "2020/01/01"]),
            ),
            _ => ("email_permit", rng.pick(&["maybe", "unknown"])),
        };
        set(&mut r, col, bad.to_owned());
    }
    r
}

/// JSON value of a generated cell for JSON Lines output (typed where natural).
fn json_value(col: &str, v: &str) -> Value {
    match col {
        "email_permit" | "gsm_permit" => match v.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "y" => Value::Bool(true),
            "no" | "false" | "0" | "n" => Value::Bool(false),
            _ => Value::String(v.to_owned()),
        },
        "priority" | "lifetime_value" => serde_json::from_str::<serde_json::Number>(v)
            .map_or_else(|_| Value::String(v.to_owned()), Value::Number),
        "metadata" => serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned())),
        _ => Value::String(v.to_owned()),
    }
}

/// Runs `gen`.
pub fn run(args: &GenArgs) -> anyhow::Result<ExitCode> {
    let format = OutFormatArg::resolve(args.format, args.out.as_deref(), OutFormatArg::Csv);
    let custom = !args.no_custom;
    let columns: Vec<&str> = BASE_COLUMNS
        .iter()
        .copied()
        .chain(CUSTOM_COLUMNS.iter().map(|(c, _)| *c).filter(|_| custom))
        .collect();
    let mut out = create_output(args.out.as_deref())?;
    let mut rng = Rng::new(args.seed);
    match format {
        OutFormatArg::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record(&columns)?;
            let mut cells: Vec<String> = Vec::with_capacity(columns.len());
            for i in 0..args.count {
                let r = row(args.seed, &mut rng, i);
                cells.clear();
                cells.extend(columns.iter().map(|c| get(&r, c).to_owned()));
                w.write_record(&cells)?;
            }
            w.flush()?;
        }
        OutFormatArg::Jsonl => {
            for i in 0..args.count {
                let r = row(args.seed, &mut rng, i);
                let mut m = Map::new();
                for c in &columns {
                    let v = get(&r, c);
                    if !v.is_empty() {
                        m.insert((*c).to_owned(), json_value(c, v));
                    }
                }
                serde_json::to_writer(&mut out, &Value::Object(m))?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    drop(out);
    if let Some(p) = &args.out {
        eprint_line(&format!(
            "gen: wrote {} rows to {}",
            count(args.count),
            p.display()
        ));
    }
    if custom {
        let adds: Vec<String> = CUSTOM_COLUMNS
            .iter()
            .map(|(c, a)| format!("contactdb columns add {c} {a}"))
            .collect();
        eprint_line(&format!(
            "gen: the rows have custom columns; declare them before importing: {} (or generate with --no-custom)",
            adds.join(" && ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next(), b.next());
        }
        // Reference value of splitmix64 seeded with 0.
        assert_eq!(Rng::new(0).next(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn rows_are_deterministic_and_messy() {
        let rows = |seed| {
            let mut rng = Rng::new(seed);
            (0..2000)
                .map(|i| row(seed, &mut rng, i))
                .collect::<Vec<_>>()
        };
        let a = rows(1);
        assert_eq!(a, rows(1));
        assert_ne!(a, rows(2));
        let keys: Vec<&str> = a.iter().map(|r| get(r, "contact_key")).collect();
        let mut uniq = keys.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert!(uniq.len() < keys.len(), "duplicates in the file");
        assert!(keys.contains(&""), "a row without a key");
        assert!(a.iter().any(|r| get(r, "gsm").starts_with("00")));
        assert!(
            a.iter()
                .any(|r| get(r, "email").chars().any(|c| c.is_ascii_uppercase()))
        );
    }
}
