//! The request being served on this thread: [`RequestArena::current`].
//!
//! While [`ArenaService`](crate::ArenaService) calls its inner service and
//! while its [`ResponseFuture`](crate::ResponseFuture) polls the inner
//! future, a thread-local points at the request's handle, so that the
//! extractor (and any code the handler runs) finds the arena without the
//! request's extensions, whose map and boxed entry are two heap allocations
//! per request, and without an `Arc` clone per poll.
//!
//! The pointer is set only by [`with_current`], for the length of one
//! closure that borrows the handle, and the previous pointer is put back
//! when it returns or unwinds, so nested layers stack and the pointer
//! never outlives the borrow.
//!
//! A future polled inside another request's poll (a `FuturesUnordered`, a
//! shared future, `block_on` in `block_in_place`) sees the outer request as
//! current; that is sound, since [`current`] returns a counted clone, never
//! the borrowed pointer.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ptr;

use crate::handle::RequestArena;

thread_local! {
    static CURRENT: Cell<*const RequestArena> = const { Cell::new(ptr::null()) };
}

/// Restores the previous pointer when dropped (on unwind too).
struct Entered {
    previous: *const RequestArena,
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

/// Runs `f` with `handle` (if any) as this thread's current request; the
/// previous one is current again when `f` returns or unwinds. Taking a
/// closure keeps the pointer's life inside the borrow by construction.
#[inline]
pub(crate) fn with_current<R>(handle: Option<&RequestArena>, f: impl FnOnce() -> R) -> R {
    let _entered = handle.map(|handle| Entered {
        previous: CURRENT
            .try_with(|c| c.replace(handle))
            .unwrap_or(ptr::null()),
    });
    f()
}

/// A clone of the current request's handle, if a request is being served
/// on this thread.
#[inline]
pub(crate) fn current() -> Option<RequestArena> {
    let handle = CURRENT.try_with(Cell::get).ok()?;
    // SAFETY: a non-null pointer was set by `with_current` from a
    // `&RequestArena` borrowed for the closure that is still running on this
    // thread (calls nest, each restoring the pointer before it when it
    // returns or unwinds), so the handle is alive and not mutably borrowed.
    unsafe { handle.as_ref() }.cloned()
}
