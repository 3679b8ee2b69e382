//! What the binary's integration tests share: the binary, running it on a database
//! with no standard input, reading its stderr, and `Env`, a temporary directory
//! with a database to run commands in.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

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

/// One run of the binary.
#[derive(Debug)]
pub struct Out {
    /// The exit code (-1 when ended by a signal).
    pub code: i32,
    /// Standard output as text.
    pub stdout: String,
    /// Standard error as text.
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A temporary directory with a database path in it.
pub struct Env {
    /// The directory the binary runs in.
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("contacts.redb")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    /// Runs `contactdb --db <db> args...` in the directory, with optional stdin.
    pub fn run_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            let mut s = child.stdin.take().unwrap();
            s.write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let o = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !o.stderr.contains("panicked")
                && !o.stderr.contains("RUST_BACKTRACE")
                && !o.stderr.contains("internal error"),
            "panic in {args:?}: {}",
            o.stderr
        );
        o
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_in(args, None)
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        let o = self.run(args);
        assert_eq!(o.code, 0, "{args:?}: {o:?}");
        o
    }

    /// Every contact of the workspace, as exported JSON Lines.
    pub fn contacts(&self) -> Vec<Value> {
        if !self.db().exists() {
            return Vec::new();
        }
        self.ok(&["export"]).json_lines()
    }

    pub fn count(&self) -> u64 {
        self.ok(&["stats"]).json()["contacts"].as_u64().unwrap()
    }
}

/// Key and columns of a contact, without the system fields.
pub fn strip(c: &Value) -> Value {
    let mut c = c.clone();
    let m = c.as_object_mut().unwrap();
    for k in ["aliases", "version", "created_at", "updated_at"] {
        m.remove(k);
    }
    c
}
