//! `contactdb key` and `contactdb serve`: a key made on the command line works
//! against the server, and SIGTERM stops the server with exit 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::*;

#[test]
fn key_then_serve_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.redb");
    let out = expect(&db, &["key", "create", "--role", "write"], 0);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("cdb_"));
    let listed = String::from_utf8(run(&db, &["key", "list"]).stdout).unwrap();
    assert!(
        listed.contains("\"role\":\"write\"") && !listed.contains(&token),
        "{listed}"
    );

    let mut child = command(&db, &["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let body = r#"{"columns":["contact_key"],"insertIfNotExists":true,"contactDatas":[["k1"]]}"#;
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /api/v1/contacts/bulk-upsert HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-api-key: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    // One log line per request, without the token.
    assert!(
        rest.contains("status=200") && rest.contains("records=1"),
        "{rest}"
    );
    assert!(!rest.contains(&token));
    expect(&db, &["get", "k1"], 0);
}
