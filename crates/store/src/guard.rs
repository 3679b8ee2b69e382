//! Containment of panics raised inside redb on a damaged file.
//!
//! redb trusts the pages it reads: a page that a disk error or another program
//! altered can make it index out of bounds or fail an assertion, which panics.
//! Every public entry point of the store that reaches redb runs inside [`guarded`]:
//! such a panic is caught there, the store handle is marked poisoned (redb's
//! in-memory state may be half-updated), and the call returns
//! [`StoreError::Damaged`]. Every later call on that handle returns
//! [`StoreError::Poisoned`] without touching redb again.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::StoreError;

thread_local! {
    /// How many guarded calls are running on this thread (they nest).
    static CONTAINED: Cell<u32> = const { Cell::new(0) };
}

/// Whether a panic raised now, on this thread, will be caught by the store and
/// reported as [`StoreError::Damaged`]. A process-wide panic hook can use it to stay
/// silent about panics that end as ordinary errors.
pub fn panic_is_contained() -> bool {
    CONTAINED.with(|c| c.get() > 0)
}

/// Whether a store handle saw a contained panic, and which.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    set: AtomicBool,
    first: Mutex<Option<String>>,
}

impl Poison {
    /// The error a poisoned handle returns.
    fn error(&self) -> StoreError {
        let first = self
            .first
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_default();
        StoreError::Poisoned { first }
    }

    fn mark(&self, message: &str) {
        if let Ok(mut g) = self.first.lock()
            && g.is_none()
        {
            *g = Some(message.to_owned());
        }
        self.set.store(true, Ordering::SeqCst);
    }

    /// Whether the handle is poisoned.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
}

/// Decrements this thread's guard depth when dropped (also while unwinding).
struct Depth;

impl Depth {
    fn enter() -> Depth {
        CONTAINED.with(|c| c.set(c.get().saturating_add(1)));
        Depth
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        CONTAINED.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

/// Runs `f`, a step with no caller to report to (closing a database), containing
/// a panic inside it: [`panic_is_contained`] says so while it runs.
pub(crate) fn contained(f: impl FnOnce()) {
    let _depth = Depth::enter();
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        // Nothing to undo: the file holds its last commit.
    }
}

/// Runs `f`, turning a panic inside it into [`StoreError::Damaged`] and marking
/// `poison`; fails at once with [`StoreError::Poisoned`] if `poison` is set.
pub(crate) fn guarded<T>(
    poison: &Poison,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if poison.is_set() {
        return Err(poison.error());
    }
    let result = {
        let _depth = Depth::enter();
        catch_unwind(AssertUnwindSafe(f))
    };
    match result {
        Ok(r) => r,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a storage step failed unexpectedly".to_owned());
            poison.mark(&message);
            Err(StoreError::Damaged {
                detail: format!("a read stopped on a malformed page (redb: {message})"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::panic)]
    fn a_panic_poisons_the_handle() {
        let p = Poison::default();
        assert!(matches!(guarded(&p, || Ok(1)), Ok(1)));
        assert!(!panic_is_contained());
        let r: Result<(), _> = guarded(&p, || {
            assert!(panic_is_contained());
            panic!("boom")
        });
        assert!(matches!(r, Err(StoreError::Damaged { .. })), "{r:?}");
        assert!(!panic_is_contained());
        let again = guarded(&p, || Ok(2));
        assert!(
            matches!(&again, Err(StoreError::Poisoned { first }) if first == "boom"),
            "{again:?}"
        );
    }
}
