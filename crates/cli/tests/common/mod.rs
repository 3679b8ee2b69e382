//! What the binary's integration tests share: the binary, running it on a database
//! (checking its exit code, refusing a panic), starting it as a writer process,
//! reading its stderr and an import report's entries, and `Env`, a temporary
//! directory with a database to run commands in.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The `contactdb` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_contactdb");

/// `contactdb --db DB ARGS…`, its standard streams still to be set.
pub fn command(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--db").arg(db).args(args);
    cmd
}

/// Runs `contactdb --db DB ARGS…` with no standard input.
pub fn run(db: &Path, args: &[&str]) -> Output {
    command(db, args).stdin(Stdio::null()).output().unwrap()
}

/// Runs `contactdb --db DB ARGS…` and checks its exit code (the message shows
/// both outputs).
pub fn expect(db: &Path, args: &[&str], code: i32) -> Output {
    let o = run(db, args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    o
}

/// Runs `contactdb --db DB ARGS…` with `stdin` (none: no standard input), and
/// refuses a panic or an internal error.
pub fn call(db: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    finish(command(db, args), args, stdin)
}

/// Starts `contactdb --db DB ARGS…` with its three standard streams piped.
pub fn spawn_piped(db: &Path, args: &[&str]) -> Child {
    command(db, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts a writer process: an import of JSON Lines from standard input (piped),
/// which holds the file open for writing until its input ends; `batch_size`
/// records per commit when given. Its standard output is discarded.
pub fn spawn_writer(db: &Path, batch_size: Option<&str>, stderr: Stdio) -> Child {
    let mut args = vec!["import", "--format", "jsonl"];
    if let Some(n) = batch_size {
        args.extend(["--batch-size", n]);
    }
    args.extend(["--no-progress", "-"]);
    command(db, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Waits for a writer process (see [`spawn_writer`]); it must end with exit 0.
pub fn finish_writer(writer: Child) {
    let out = writer.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The entries of a section (`results`, `errors`, `warnings`) of an import
/// report, each as `row` picks it.
pub fn rows<'a, T>(report: &'a Value, section: &str, row: impl Fn(&'a Value) -> T) -> Vec<T> {
    report[section]
        .as_array()
        .unwrap_or_else(|| panic!("no {section} in {report}"))
        .iter()
        .map(row)
        .collect()
}

/// Runs `cmd` with `stdin` and collects its outputs, refusing a panic or an
/// internal error.
fn finish(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> Out {
    cmd.stdin(if stdin.is_some() {
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

#[path = "../../../pg/tests/common/mod.rs"]
#[allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]
pub mod pgdb;

/// Whether `Env`'s database is a PostgreSQL one: with
/// `CONTACTDB_TEST_BACKEND=postgres` (and `CONTACTDB_TEST_PG_URL` naming a cluster)
/// every `Env` gets a new database of that cluster.
pub fn on_postgres() -> bool {
    std::env::var("CONTACTDB_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// A temporary directory with a database in it: a file, or (see [`on_postgres`])
/// a PostgreSQL database, dropped with the `Env`.
pub struct Env {
    /// The directory the binary runs in.
    pub dir: tempfile::TempDir,
    pg: Option<pgdb::TestDb>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            pg: on_postgres().then(|| pgdb::TestDb::new("cli").expect("CONTACTDB_TEST_PG_URL")),
        }
    }

    /// A temporary directory whose database is always a file (for what only files
    /// do: backups, repairs, damaged files, file locks).
    pub fn with_file() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            pg: None,
        }
    }

    /// `--db`: the file's path or the PostgreSQL URL.
    pub fn db(&self) -> PathBuf {
        match &self.pg {
            Some(db) => PathBuf::from(&db.url),
            None => self.dir.path().join("contacts.redb"),
        }
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
        let mut cmd = command(&self.db(), args);
        cmd.current_dir(self.dir.path());
        finish(cmd, args, stdin)
    }

    /// As `run_in`, and the run must succeed.
    pub fn ok_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        let o = self.run_in(args, stdin);
        assert_eq!(o.code, 0, "{args:?}: {o:?}");
        o
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_in(args, None)
    }

    /// Runs `contactdb --db <db> args...` in the directory; it must exit with
    /// `code`.
    pub fn expect(&self, args: &[&str], code: i32) -> Out {
        let o = self.run(args);
        assert_eq!(o.code, code, "{args:?}: {o:?}");
        o
    }

    /// Runs `contactdb --db <db> args...` in the directory; it must exit with
    /// `code` and its standard error must contain `says`.
    pub fn says(&self, args: &[&str], code: i32, says: &str) -> Out {
        let o = self.expect(args, code);
        assert!(
            o.stderr.contains(says),
            "{args:?}: {says:?} not in {}",
            o.stderr
        );
        o
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        self.ok_in(args, None)
    }

    /// Every contact of the workspace, as exported JSON Lines.
    /// Whether the database exists (a PostgreSQL one always does).
    pub fn exists(&self) -> bool {
        self.pg.is_some() || self.db().exists()
    }

    pub fn contacts(&self) -> Vec<Value> {
        if !self.exists() {
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
