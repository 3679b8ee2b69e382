//! The change feed: one `feed` row per event, sequence numbers gapless per
//! workspace, and named consumers' cursors.

use postgres::Client;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

use contactdb_backend::{Event, EventKind, NewEvent, WorkspaceId};

use crate::rows::{signed, unsigned};
use crate::{Error, WorkspaceSql};

/// Up to `limit` events of `ws` after `after`, in order.
pub(crate) fn events(
    c: &mut Client,
    ws: WorkspaceId,
    after: u64,
    limit: usize,
) -> Result<Vec<Event>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "SELECT seq, kind, key, version, at_us, detail, trigger, job FROM feed
         WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&ws.sql(), &signed(after)?, &limit],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Event {
                seq: unsigned("feed", r.try_get(0)?)?,
                kind: kind_of(r.try_get(1)?)?,
                key: r.try_get(2)?,
                version: unsigned("feed", r.try_get(3)?)?,
                at_us: r.try_get(4)?,
                detail: r.try_get(5)?,
                trigger: r.try_get(6)?,
                job: r.try_get(7)?,
            })
        })
        .collect()
}

/// The last sequence number given in `ws` (0 if none).
pub(crate) fn last_seq(c: &mut Client, ws: WorkspaceId) -> Result<u64, Error> {
    let row = c.query_opt(
        "SELECT feed_seq FROM counters WHERE workspace_id = $1",
        &[&ws.sql()],
    )?;
    match row {
        Some(r) => unsigned("counters", r.try_get(0)?),
        None => Err(Error::UnknownWorkspace(ws)),
    }
}

/// The consumers of `ws` and their cursors, by name.
pub(crate) fn consumers(c: &mut Client, ws: WorkspaceId) -> Result<Vec<(String, u64)>, Error> {
    let rows = c.query(
        "SELECT name, acked FROM feed_consumers WHERE workspace_id = $1 ORDER BY name",
        &[&ws.sql()],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, unsigned("feed_consumers", r.try_get(1)?)?)))
        .collect()
}

/// Consumer `name`'s cursor (0 for a new one).
pub(crate) fn consumer(c: &mut Client, ws: WorkspaceId, name: &str) -> Result<u64, Error> {
    let row = c.query_opt(
        "SELECT acked FROM feed_consumers WHERE workspace_id = $1 AND name = $2",
        &[&ws.sql(), &name],
    )?;
    match row {
        Some(r) => unsigned("feed_consumers", r.try_get(0)?),
        None => Ok(0),
    }
}

pub(crate) fn ack(c: &mut Client, ws: WorkspaceId, name: &str, seq: u64) -> Result<u64, Error> {
    crate::read::require_workspace(c, ws)?;
    let row = c.query_one(
        "INSERT INTO feed_consumers (workspace_id, name, acked) VALUES ($1, $2, $3)
         ON CONFLICT (workspace_id, name)
         DO UPDATE SET acked = greatest(feed_consumers.acked, EXCLUDED.acked)
         RETURNING acked",
        &[&ws.sql(), &name, &signed(seq)?],
    )?;
    unsigned("feed_consumers", row.try_get(0)?)
}

/// Appends `events` with sequence numbers from `first` on (binary COPY).
pub(crate) fn copy_events(
    c: &mut Client,
    ws: WorkspaceId,
    first: u64,
    events: &[NewEvent<'_>],
    at_us: i64,
    trigger: Option<&str>,
    job: Option<&str>,
) -> Result<(), Error> {
    let sink = c.copy_in(
        "COPY feed (workspace_id, seq, kind, key, version, at_us, detail, trigger, job)
         FROM STDIN (FORMAT binary)",
    )?;
    let mut w = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT8,
            Type::INT8,
            Type::INT2,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ],
    );
    let w_id = ws.sql();
    let mut seq = signed(first)?;
    for e in events {
        let version = signed(e.version)?;
        w.write(&[
            &w_id,
            &seq,
            &i16::from(e.kind.code()),
            &e.key,
            &version,
            &at_us,
            &e.detail,
            &trigger,
            &job,
        ])?;
        seq = seq.saturating_add(1);
    }
    w.finish()?;
    Ok(())
}

/// The kind a stored `feed.kind` stands for.
fn kind_of(code: i16) -> Result<EventKind, Error> {
    u8::try_from(code)
        .ok()
        .and_then(EventKind::from_code)
        .ok_or_else(|| Error::damaged("feed", format!("unknown event kind {code}")))
}
