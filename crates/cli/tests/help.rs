//! Every `--help` text, of every command and subcommand, says what it does in the
//! product's words: no contract rule numbers.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::process::Command;

use common::BIN;

/// The subcommands a `--help` text lists.
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                if !line.trim().is_empty() {
                    inside = false;
                }
                continue;
            }
            // A command starts at two spaces; deeper lines continue its text.
            if !line.starts_with("   ")
                && let Some(name) = line.split_whitespace().next()
                && name != "help"
            {
                out.push(name.to_owned());
            }
        }
    }
    out
}

#[test]
fn help_texts_name_no_contract_rules() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        for flag in ["--help", "-h"] {
            let o = Command::new(BIN).args(&path).arg(flag).output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{path:?} {flag}");
            let help = String::from_utf8(o.stdout).unwrap();
            for (i, w) in help.char_indices() {
                if w == 'R' && help[i + 1..].starts_with(|c: char| c.is_ascii_digit()) {
                    panic!("{path:?} {flag}: a rule number in:\n{help}");
                }
            }
            assert!(!help.contains("SPEC"), "{path:?} {flag}: SPEC in:\n{help}");
            if flag == "--help" {
                for sub in subcommands(&help) {
                    let mut p = path.clone();
                    p.push(sub);
                    queue.push(p);
                }
            }
        }
        seen += 1;
    }
    // contactdb, 18 commands and their subcommands.
    assert!(seen > 35, "only {seen} help texts found");
}
