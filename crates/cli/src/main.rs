//! `contactdb`: the command-line tool of contactdb. Loads CSV / JSON exports into a
//! local contactdb file, reports what happened to every row, and reads contacts back.
//!
//! Exit codes: 0 all applied; 3 partially applied; 1 nothing applied or any error;
//! 2 usage error. Errors go to stderr as one line; machine output goes to stdout.

mod api;
mod around;
mod cli;
mod commands;
mod r#gen;
mod import;
mod input;
mod request;
mod serve;
mod util;

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::cli::{Cli, Command};
use crate::util::{UsageError, eprint_line};

fn run(cli: &Cli, workspace_given: bool) -> anyhow::Result<ExitCode> {
    let db = cli.db.as_path();
    let ws = cli.workspace.as_str();
    match &cli.command {
        Command::Import(a) => {
            input::set_record_bytes_max(a.max_record_bytes);
            import::run(db, ws, a)
        }
        Command::Upsert(a) => commands::upsert(db, ws, a),
        Command::Get(a) => commands::get(db, ws, a),
        Command::Find(a) => commands::find(db, ws, a),
        Command::Export(a) => commands::export(db, ws, a),
        Command::Columns(c) => commands::columns(db, ws, c),
        Command::Workspace(c) => commands::workspace(db, c),
        Command::Stats => commands::stats(db, workspace_given.then_some(ws)),
        Command::Check => commands::check(db),
        Command::Backup(a) => commands::backup(db, a),
        Command::Repair => commands::repair(db),
        Command::Compact => commands::compact(db),
        Command::Gen(a) => r#gen::run(a),
        Command::Campaign(c) => around::campaign(db, ws, c),
        Command::Job(c) => around::job(db, ws, c),
        Command::Feed(c) => around::feed(db, ws, c),
        Command::Api(a) => api::run(db, ws, a),
        Command::Serve(a) => serve::serve(db, a),
        Command::Key(c) => serve::key(db, ws, c),
    }
}

/// mimalloc instead of glibc malloc: ~20% more records/s on imports (the merge and
/// redb's page cache allocate and free many small buffers); see docs/performance.md.
/// Built without transparent huge pages (the `no_thp` feature): with them a 1M-record
/// import's peak RSS was ~25 MiB higher, for no speed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long (ms) mimalloc keeps freed memory before giving it back to the system,
/// unless `MIMALLOC_PURGE_DELAY` says otherwise. mimalloc's own default, 1,000 ms,
/// let an import hold about 30 MiB more at its peak (freed memory not yet reused);
/// 100 ms costs no measurable time, 0–25 ms did (up to
/// 10%). See docs/performance.md.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same position in its
/// versions 2 and 3; the Rust bindings name only some of the options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's options that differ from mimalloc's defaults (an option
/// given in the environment wins). Called first thing in `main`.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores the value in mimalloc's option table (it
        // ignores an index out of range); called before any other thread exists.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // A bug must still end as one line on stderr, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        // A panic inside redb on a damaged page is caught by the store and
        // reported as an ordinary error.
        if contactdb::panic_is_contained() {
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprint_line(&format!("error: internal error (a bug){at}: {msg}"));
    }));
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // `--workspace` is global: given before or after the command.
    let workspace_given =
        std::iter::successors(Some(&matches), |m| m.subcommand().map(|(_, sub)| sub))
            .any(|m| m.value_source("workspace") == Some(ValueSource::CommandLine));
    match run(&cli, workspace_given) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`contactdb export | head`) is not an error to report.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
                    || c.downcast_ref::<csv::Error>().is_some_and(|ce| {
                        matches!(ce.kind(), csv::ErrorKind::Io(io) if io.kind() == ErrorKind::BrokenPipe)
                    })
                    || c.downcast_ref::<serde_json::Error>()
                        .is_some_and(|je| je.io_error_kind() == Some(ErrorKind::BrokenPipe))
            }) {
                return ExitCode::SUCCESS;
            }
            let damaged = e.chain().any(is_damage);
            if damaged {
                eprint_line(&format!(
                    "error: {}; run `contactdb check`; restore from a backup",
                    util::one_line(&e)
                ));
                return ExitCode::from(1);
            }
            eprint_line(&format!("error: {}", util::one_line(&e)));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Whether an error in a chain says the database file is damaged.
fn is_damage(e: &(dyn std::error::Error + 'static)) -> bool {
    use contactdb::{BulkError, Error, OpenError, StorageError, WorkspaceError};
    e.downcast_ref::<StorageError>()
        .is_some_and(StorageError::is_damage)
        || e.downcast_ref::<Error>().is_some_and(Error::is_damage)
        || e.downcast_ref::<OpenError>()
            .is_some_and(OpenError::is_damage)
        || e.downcast_ref::<WorkspaceError>()
            .is_some_and(WorkspaceError::is_damage)
        || e.downcast_ref::<BulkError>()
            .is_some_and(BulkError::is_damage)
}
