//! What the binary's integration tests share: the binary, running it on a database
//! with no standard input, and reading its stderr.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `contactdb` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_contactdb");

/// Runs `contactdb --db DB ARGS…` with no standard input.
pub fn run(db: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A run's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
