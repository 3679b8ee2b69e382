//! Delivery of triggered change events to a webhook: the events that carry a
//! trigger (calls or a workflow) are POSTed in chunks of up to 500, signed with
//! HMAC-SHA256, retried with backoff, at least once; the named consumer's position
//! moves only after a 2xx, so a restart resumes where the receiver last said yes.
//!
//! The client speaks plain HTTP/1.1 (`http://` URLs): a receiver on the same host
//! or network, or a TLS-terminating proxy in front of a remote one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use contactdb::{Event, Workspace};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Events read per chunk (the bulk-add document's call batch).
pub const CHUNK: usize = 500;
/// The header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-contactdb-signature";

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://host:port/path`.
    pub url: String,
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// The feed consumer whose position records what was delivered.
    pub consumer: String,
    /// How long to wait for the receiver.
    pub timeout: Duration,
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        let d: [u8; 32] = Sha256::digest(key).into();
        for (dst, src) in k.iter_mut().zip(d) {
            *dst = src;
        }
    } else {
        for (dst, src) in k.iter_mut().zip(key) {
            *dst = *src;
        }
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(host:port, path)` of an `http://` URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// webhook URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i..).unwrap_or("/"),
        ),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_owned()))
}

/// POSTs `body` to the webhook; the HTTP status on an answer.
fn post(hook: &Webhook, body: &[u8]) -> Result<u16, String> {
    let (host, path) = split_url(&hook.url)?;
    let mut s = TcpStream::connect(&host).map_err(|e| format!("{host}: {e}"))?;
    s.set_read_timeout(Some(hook.timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(hook.timeout))
        .map_err(|e| e.to_string())?;
    let signature = hex(&hmac_sha256(&hook.secret, body));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{SIGNATURE_HEADER}: sha256={signature}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.take(64 * 1024)
        .read_to_end(&mut answer)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{host}: no HTTP status in the answer"))
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Triggered events the receiver accepted.
    pub events: u64,
    /// POSTs it accepted.
    pub posts: u64,
}

/// Delivers everything after the consumer's position, chunk by chunk, until the
/// feed is drained; a chunk is retried up to `attempts` times (waiting 0.2 s, then
/// twice as long each time, at most 30 s) before the pass gives up with the error.
/// `stop()` is asked between chunks and between retries.
pub fn drain(
    ws: &Workspace,
    hook: &Webhook,
    attempts: u32,
    stop: &dyn Fn() -> bool,
) -> Result<Delivered, String> {
    let mut done = Delivered::default();
    // The consumer exists from the first pass on, so that events it has not
    // delivered are never trimmed.
    let known = ws.consumers().map_err(|e| e.to_string())?;
    if !known.iter().any(|c| c.name == hook.consumer) {
        ws.ack(&hook.consumer, 0).map_err(|e| e.to_string())?;
    }
    loop {
        if stop() {
            return Ok(done);
        }
        let events = ws
            .feed_for(&hook.consumer, CHUNK)
            .map_err(|e| e.to_string())?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(done);
        };
        let triggered: Vec<&Event> = events.iter().filter(|e| e.trigger.is_some()).collect();
        if !triggered.is_empty() {
            let body = serde_json::to_vec(&json!({
                "workspace": ws.info().slug,
                "events": triggered,
            }))
            .map_err(|e| e.to_string())?;
            let mut wait = Duration::from_millis(200);
            let mut tries = 0;
            loop {
                tries += 1;
                let outcome = post(hook, &body);
                match outcome {
                    Ok(status) if (200..300).contains(&status) => break,
                    Ok(status) if tries >= attempts => {
                        return Err(format!("{}: answered {status}", hook.url));
                    }
                    Err(e) if tries >= attempts => return Err(e),
                    Ok(status) => {
                        tracing::warn!(url = %hook.url, status, "webhook refused a chunk; retrying");
                    }
                    Err(e) => {
                        tracing::warn!(url = %hook.url, error = %e, "webhook unreachable; retrying")
                    }
                }
                if stop() {
                    return Ok(done);
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            done.events += triggered.len() as u64;
            done.posts += 1;
        }
        ws.ack(&hook.consumer, last).map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2.
    #[test]
    fn hmac_matches_the_rfc_vector() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:9/hook").ok(),
            Some(("127.0.0.1:9".into(), "/hook".into()))
        );
        assert_eq!(
            split_url("http://example").ok(),
            Some(("example:80".into(), "/".into()))
        );
        assert!(split_url("https://x/").is_err());
    }
}
