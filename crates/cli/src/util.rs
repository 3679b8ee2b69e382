//! Small helpers shared by the commands: output destinations, stderr notes, number
//! formatting, and the error type for usage errors (exit code 2).

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;

/// A usage error found after argument parsing (bad combination of options):
/// exit code 2, like clap's own.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Writes one line to stderr, ignoring failures (there is nowhere else to report).
pub fn eprint_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// `-` or absent = standard output, else a created file; buffered.
pub fn create_output(path: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    match path {
        None => Ok(Box::new(BufWriter::new(std::io::stdout()))),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(BufWriter::new(std::io::stdout()))),
        Some(p) => {
            let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
            Ok(Box::new(BufWriter::with_capacity(256 * 1024, f)))
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    let len = s.len();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Records per second, rounded.
pub fn rate(records: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return count(records);
    }
    // Rates fit u64 comfortably; the cast saturates on absurd values.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let r = (records as f64 / secs).round() as u64;
    count(r)
}

/// Elapsed seconds, readable.
pub fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The error and its causes on one line, leaving out a cause whose text the line
/// already holds (many errors repeat their source in their own message).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let m = cause.to_string();
        if out.contains(&m) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&m);
    }
    out.replace('\n', " ")
}

/// `--db` for messages: the path, or the URL without its password.
pub fn shown(db: &std::path::Path) -> String {
    let text = db.display().to_string();
    if !contactdb::is_postgres_url(db) {
        return text;
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return text;
    };
    let (userinfo, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    match userinfo.map(|u| u.split_once(':').map_or(u, |(user, _)| user)) {
        Some(user) => format!("{scheme}://{user}@{host}"),
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        use std::path::Path;
        let shown = |s: &str| super::shown(Path::new(s));
        assert_eq!(
            shown("postgres://ann:s3cr3t@db:5432/contacts"),
            "postgres://ann@db:5432/contacts"
        );
        assert_eq!(
            shown("postgresql://db/contacts"),
            "postgresql://db/contacts"
        );
        assert_eq!(
            shown("postgres://ann@db/c?sslmode=disable"),
            "postgres://ann@db/c?sslmode=disable"
        );
        assert_eq!(shown("contacts.redb"), "contacts.redb");
        assert!(contactdb::is_postgres_url(Path::new("postgres://db/c")));
        assert!(!contactdb::is_postgres_url(Path::new("./postgres")));
    }
}
