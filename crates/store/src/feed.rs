//! The change feed: events in strictly increasing sequence numbers per workspace,
//! appended in the transaction of the change, and named consumers' cursors.

use crate::guard::guarded;
use redb::ReadableTable;
use std::sync::Arc;

use contactdb_backend::{Event, EventKind, NewEvent, WorkspaceId};

use crate::codec::{self, StoredEvent, StoredEvents};
use crate::keys::{self, split_ws, ws_bytes, ws_key, ws_seq};
use crate::{ReadView, StoreError, WriteView};

/// `(ws, first sequence number)` of a `feed` key.
fn split_feed_key(key: &[u8]) -> Result<(u32, u64), StoreError> {
    split_ws(key)
        .and_then(|(w, s)| Some((w, keys::u64_from(s)?)))
        .ok_or_else(|| StoreError::corrupt("feed", "key is not ws ‖ sequence number"))
}

impl ReadView {
    /// Up to `limit` events of `ws` with a sequence number above `after`, in order.
    pub fn events(
        &self,
        ws: WorkspaceId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::FEED)? else {
                return Ok(Vec::new());
            };
            let start = after.saturating_add(1);
            let lower = ws_seq(ws.0, 0);
            let at = ws_seq(ws.0, start);
            let upper = keys::prefix_end(&ws_bytes(ws.0));
            // The entry holding `start` begins at or before it: the last one there.
            let first_key = match t
                .range::<&[u8]>(lower.as_slice()..=at.as_slice())?
                .next_back()
            {
                Some(entry) => entry?.0.value().to_vec(),
                None => at.to_vec(),
            };
            let iter = match &upper {
                Some(u) => t.range::<&[u8]>(first_key.as_slice()..u.as_slice())?,
                None => t.range::<&[u8]>(first_key.as_slice()..)?,
            };
            let mut out = Vec::new();
            for entry in iter {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = entry?;
                let (_, first) = split_feed_key(k.value())?;
                let batch = codec::decode_events(v.value())?;
                for (seq, e) in (first..).zip(batch.events) {
                    if seq < start {
                        continue;
                    }
                    if out.len() >= limit {
                        break;
                    }
                    out.push(Event {
                        seq,
                        kind: EventKind::from_code(e.kind).ok_or_else(|| {
                            StoreError::corrupt("feed", format!("unknown event kind {}", e.kind))
                        })?,
                        key: e.key,
                        version: e.version,
                        at_us: batch.at_us,
                        detail: e.detail,
                        trigger: batch.trigger.clone(),
                        job: batch.job.clone(),
                    });
                }
            }
            Ok(out)
        })
    }

    /// The sequence number of the last event of `ws` ever appended (0 if none).
    pub fn last_seq(&self, ws: WorkspaceId) -> Result<u64, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::COUNTERS)? else {
                return Ok(0);
            };
            counter(&t, ws, "feed_seq")
        })
    }

    /// The named consumers of `ws` and their acknowledged sequence numbers.
    pub fn consumers(&self, ws: WorkspaceId) -> Result<Vec<(String, u64)>, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::FEED_CONSUMERS)? else {
                return Ok(Vec::new());
            };
            let range = keys::prefix_range(&ws_bytes(ws.0));
            let mut out = Vec::new();
            for entry in t.range::<&[u8]>(keys::as_slices(&range))? {
                let (k, v) = entry?;
                let name = k.value().get(4..).unwrap_or_default();
                out.push((
                    String::from_utf8_lossy(name).into_owned(),
                    keys::u64_from(v.value()).ok_or_else(|| {
                        StoreError::corrupt("feed_consumers", "value is not a sequence number")
                    })?,
                ));
            }
            Ok(out)
        })
    }

    /// The acknowledged sequence number of consumer `name` (0 for a new one).
    pub fn consumer(&self, ws: WorkspaceId, name: &str) -> Result<u64, StoreError> {
        guarded(&self.poison, || {
            let Some(t) = self.open_optional(keys::FEED_CONSUMERS)? else {
                return Ok(0);
            };
            match t.get(ws_key(ws.0, name.as_bytes()).as_slice())? {
                Some(v) => keys::u64_from(v.value()).ok_or_else(|| {
                    StoreError::corrupt("feed_consumers", "value is not a sequence number")
                }),
                None => Ok(0),
            }
        })
    }
}

fn counter(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ws: WorkspaceId,
    name: &str,
) -> Result<u64, StoreError> {
    match t.get(ws_key(ws.0, name.as_bytes()).as_slice())? {
        Some(v) => keys::u64_from(v.value())
            .ok_or_else(|| StoreError::corrupt("counters", format!("{name} is not a u64"))),
        None => Ok(0),
    }
}

impl WriteView {
    /// Appends `events` to the feed of `ws` in order, all stamped `at_us` and with
    /// the given trigger and job, as one `feed` entry; returns the last sequence
    /// number given.
    pub fn append_events(
        &mut self,
        ws: WorkspaceId,
        events: &[NewEvent<'_>],
        at_us: i64,
        trigger: Option<&str>,
        job: Option<&str>,
    ) -> Result<u64, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let n = u64::try_from(events.len()).unwrap_or(u64::MAX);
            if events.is_empty() {
                return self.bump_counter_by(ws, "feed_seq", 0);
            }
            let last = self.bump_counter_by(ws, "feed_seq", n)?;
            let first = last.saturating_sub(n).saturating_add(1);
            let stored = StoredEvents {
                at_us,
                trigger: trigger.map(str::to_owned),
                job: job.map(str::to_owned),
                events: events
                    .iter()
                    .map(|e| StoredEvent {
                        kind: e.kind.code(),
                        key: e.key.to_owned(),
                        version: e.version,
                        detail: e.detail.map(str::to_owned),
                    })
                    .collect(),
            };
            self.txn.open_table(keys::FEED)?.insert(
                ws_seq(ws.0, first).as_slice(),
                codec::encode_events(&stored)?.as_slice(),
            )?;
            Ok(last)
        })
    }

    /// Sets consumer `name`'s acknowledged sequence number (creating the consumer).
    /// A cursor never moves back: acknowledging less than it holds changes nothing.
    /// Returns the cursor after the call.
    pub fn ack(&mut self, ws: WorkspaceId, name: &str, seq: u64) -> Result<u64, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            self.require_workspace_pub(ws)?;
            let mut t = self.txn.open_table(keys::FEED_CONSUMERS)?;
            let k = ws_key(ws.0, name.as_bytes());
            let old = match t.get(k.as_slice())? {
                Some(v) => keys::u64_from(v.value()).unwrap_or(0),
                None => 0,
            };
            let new = old.max(seq);
            t.insert(k.as_slice(), new.to_be_bytes().as_slice())?;
            Ok(new)
        })
    }

    /// Removes consumer `name`; returns whether it existed.
    pub fn drop_consumer(&mut self, ws: WorkspaceId, name: &str) -> Result<bool, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let mut t = self.txn.open_table(keys::FEED_CONSUMERS)?;
            Ok(t.remove(ws_key(ws.0, name.as_bytes()).as_slice())?
                .is_some())
        })
    }

    /// Removes the oldest `feed` entries of `ws` (at most `max` of them) whose
    /// events every consumer has acknowledged and that are older than `before_us`;
    /// returns how many events went.
    pub fn trim_feed(
        &mut self,
        ws: WorkspaceId,
        before_us: i64,
        max: usize,
    ) -> Result<u64, StoreError> {
        guarded(&Arc::clone(&self.poison), || {
            let floor = {
                let t = self.txn.open_table(keys::FEED_CONSUMERS)?;
                let range = keys::prefix_range(&ws_bytes(ws.0));
                let mut floor = u64::MAX;
                for entry in t.range::<&[u8]>(keys::as_slices(&range))? {
                    let (_, v) = entry?;
                    floor = floor.min(keys::u64_from(v.value()).unwrap_or(0));
                }
                floor
            };
            let mut t = self.txn.open_table(keys::FEED)?;
            let range = keys::prefix_range(&ws_bytes(ws.0));
            let mut doomed = Vec::new();
            let mut events = 0u64;
            for entry in t.range::<&[u8]>(keys::as_slices(&range))?.take(max) {
                let (k, v) = entry?;
                let (_, first) = split_feed_key(k.value())?;
                let batch = codec::decode_events(v.value())?;
                let n = u64::try_from(batch.events.len()).unwrap_or(u64::MAX);
                let last = first.saturating_add(n).saturating_sub(1);
                if last > floor || batch.at_us >= before_us {
                    break;
                }
                events = events.saturating_add(n);
                doomed.push(k.value().to_vec());
            }
            for k in &doomed {
                t.remove(k.as_slice())?;
            }
            Ok(events)
        })
    }
}
