//! A copy-on-write storage backend: reads come from the database file, writes go
//! to memory. A read-only open of a file whose last writer stopped without closing
//! it (killed, power loss) uses it to let redb recover the file — rebuilding its
//! allocator state, writing its header — without changing a byte on disk.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use redb::StorageBackend;

/// Overlay granularity: redb's page size.
const BLOCK: u64 = 4096;

/// What the overlay holds.
#[derive(Debug, Default)]
struct State {
    /// The length redb sees.
    len: u64,
    /// Bytes of the file at or past this offset read as zeros (the file was
    /// shortened and maybe grown again since the open).
    base_visible: u64,
    /// Blocks written, whole.
    blocks: HashMap<u64, Vec<u8>>,
}

/// The file underneath and the blocks written over it.
#[derive(Debug)]
pub(crate) struct Overlay {
    base: redb::backends::FileBackend,
    state: Mutex<State>,
    /// Set when the store closes: every operation fails from then on, so that
    /// redb's close (which commits its allocator state) reads nothing of a
    /// recovered copy that is about to be discarded. On a damaged file that
    /// commit can otherwise panic inside redb while it unwinds, which aborts.
    closed: Arc<AtomicBool>,
}

fn io_error(message: &str) -> std::io::Error {
    std::io::Error::other(message.to_owned())
}

impl Overlay {
    /// An overlay over `file` (opened for reading).
    pub(crate) fn new(file: File) -> std::io::Result<Overlay> {
        let len = file.metadata()?.len();
        let base = redb::backends::FileBackend::new(file)
            .map_err(|e| io_error(&format!("cannot read the file: {e}")))?;
        Ok(Overlay {
            base,
            state: Mutex::new(State {
                len,
                base_visible: len,
                blocks: HashMap::new(),
            }),
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The switch that closes this overlay (see [`Overlay::closed`]'s field).
    pub(crate) fn closer(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.closed)
    }

    /// The state, unless the overlay is closed.
    fn state(&self) -> std::io::Result<std::sync::MutexGuard<'_, State>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(io_error("the recovered copy is closed"));
        }
        self.state
            .lock()
            .map_err(|_| io_error("overlay lock poisoned"))
    }

    /// Block `b` as the file plus earlier writes have it (zeros past the file).
    fn load(&self, s: &State, b: u64) -> std::io::Result<Vec<u8>> {
        if let Some(block) = s.blocks.get(&b) {
            return Ok(block.clone());
        }
        let mut block = vec![0u8; BLOCK as usize];
        let start = b * BLOCK;
        let end = (start + BLOCK).min(s.base_visible);
        if end > start {
            let n = usize::try_from(end - start).unwrap_or(0);
            if let Some(dst) = block.get_mut(..n) {
                self.base.read(start, dst)?;
            }
        }
        Ok(block)
    }
}

impl StorageBackend for Overlay {
    fn len(&self) -> Result<u64, std::io::Error> {
        let s = self.state()?;
        Ok(s.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let s = self.state()?;
        let end = offset.saturating_add(out.len() as u64);
        if end > s.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end of the database",
            ));
        }
        // The part the overlay does not touch reads straight from the file.
        let first = offset / BLOCK;
        let last = end.div_ceil(BLOCK);
        if end <= s.base_visible && (first..last).all(|b| !s.blocks.contains_key(&b)) {
            return self.base.read(offset, out);
        }
        let mut at = offset;
        while at < end {
            let b = at / BLOCK;
            let block = self.load(&s, b)?;
            let from = usize::try_from(at - b * BLOCK).unwrap_or(0);
            let n = usize::try_from((BLOCK - (at - b * BLOCK)).min(end - at)).unwrap_or(0);
            let o = usize::try_from(at - offset).unwrap_or(0);
            if let (Some(dst), Some(src)) = (out.get_mut(o..o + n), block.get(from..from + n)) {
                dst.copy_from_slice(src);
            }
            at += n as u64;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let mut s = self.state()?;
        if len < s.len {
            s.base_visible = s.base_visible.min(len);
            s.blocks.retain(|b, _| b * BLOCK < len);
            let b = len / BLOCK;
            let from = usize::try_from(len - b * BLOCK).unwrap_or(0);
            if let Some(block) = s.blocks.get_mut(&b)
                && let Some(tail) = block.get_mut(from..)
            {
                tail.fill(0);
            }
        }
        s.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.state().map(drop)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut s = self.state()?;
        let end = offset.saturating_add(data.len() as u64);
        let mut at = offset;
        while at < end {
            let b = at / BLOCK;
            let mut block = self.load(&s, b)?;
            let from = usize::try_from(at - b * BLOCK).unwrap_or(0);
            let n = usize::try_from((BLOCK - (at - b * BLOCK)).min(end - at)).unwrap_or(0);
            let o = usize::try_from(at - offset).unwrap_or(0);
            if let (Some(dst), Some(src)) = (block.get_mut(from..from + n), data.get(o..o + n)) {
                dst.copy_from_slice(src);
            }
            s.blocks.insert(b, block);
            at += n as u64;
        }
        if end > s.len {
            s.len = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn writes_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&original).unwrap_or_else(|e| panic!("{e}"));
        drop(f);
        let o = Overlay::new(File::open(&path).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = vec![0u8; 100];
        o.read(4050, &mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(buf, original[4050..4150]);
        o.write(4090, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
            .unwrap_or_else(|e| panic!("{e}"));
        o.read(4088, &mut buf[..14])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            &buf[..14],
            &[
                original[4088],
                original[4089],
                1,
                2,
                3,
                4,
                5,
                6,
                7,
                8,
                9,
                10,
                original[4100],
                original[4101]
            ]
        );
        o.set_len(5000).unwrap_or_else(|e| panic!("{e}"));
        o.set_len(12_000).unwrap_or_else(|e| panic!("{e}"));
        let mut tail = vec![7u8; 3000];
        o.read(4999, &mut tail).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tail[0], original[4999]);
        assert!(tail[1..].iter().all(|b| *b == 0));
        assert!(o.read(11_999, &mut buf[..2]).is_err());
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
            original
        );
    }
}
