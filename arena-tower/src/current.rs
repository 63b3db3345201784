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
//! closure that borrows the handle, or by [`enter`], for the life of a
//! guard that borrows it, which the service's `call` and the response
//! future's `poll` keep as a local (so that the request, or the response,
//! is not moved through a closure, a copy of a few hundred bytes). The
//! previous pointer is put back when the closure returns or unwinds, or the
//! guard drops, so nested layers stack and the pointer never outlives the
//! borrow.
//!
//! A future polled inside another request's poll (a `FuturesUnordered`, a
//! shared future, `block_on` in `block_in_place`) sees the outer request as
//! current; that is sound, since [`current`] returns a counted clone, never
//! the borrowed pointer.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;

use crate::handle::RequestArena;

thread_local! {
    static CURRENT: Cell<*const RequestArena> = const { Cell::new(ptr::null()) };
}

/// A request made this thread's current one by [`enter`]; restores the
/// previous pointer when dropped (on unwind too).
///
/// Its drop is what keeps the pointer inside the borrow `'a`, so an
/// `Entered` must be dropped, never forgotten, and in the reverse order of
/// its `enter`s: hold it only as a local binding of the function that
/// entered (as `with_current`, `ArenaService::start` and
/// `ResponseFuture::poll` do), never in a struct or across an `.await`.
/// (It is not `Send`: its pointer fields.)
#[must_use = "the request is current only while the guard lives"]
pub(crate) struct Entered<'a> {
    previous: *const RequestArena,
    /// What `enter` set, to check in debug builds that guards drop in the
    /// reverse order of their `enter`s.
    installed: *const RequestArena,
    _handle: PhantomData<&'a RequestArena>,
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| {
            debug_assert!(
                ptr::eq(c.get(), self.installed),
                "arena-tower: request guards dropped out of order"
            );
            c.set(self.previous)
        });
    }
}

/// Makes `handle` (if any) this thread's current request until the guard
/// drops.
///
/// # Safety
/// The guard must be held as [`Entered`] says: a local of the caller,
/// dropped (never forgotten) in the reverse order of its `enter`s, never
/// moved into a struct or held across an `.await`. [`current`] dereferences
/// the pointer on the strength of that.
#[inline]
#[must_use = "the request is current only while the guard lives"]
pub(crate) unsafe fn enter(handle: Option<&RequestArena>) -> Option<Entered<'_>> {
    handle.map(|handle| {
        let installed: *const RequestArena = handle;
        Entered {
            previous: CURRENT
                .try_with(|c| c.replace(installed))
                .unwrap_or(ptr::null()),
            installed,
            _handle: PhantomData,
        }
    })
}

/// Runs `f` with `handle` (if any) as this thread's current request; the
/// previous one is current again when `f` returns or unwinds. Taking a
/// closure keeps the pointer's life inside the borrow by construction.
#[inline]
pub(crate) fn with_current<R>(handle: Option<&RequestArena>, f: impl FnOnce() -> R) -> R {
    // SAFETY: `_entered` is a local of this function, dropped when `f`
    // returns or unwinds, after anything `f` entered.
    let _entered = unsafe { enter(handle) };
    f()
}

/// A clone of the current request's handle, if a request is being served
/// on this thread.
#[inline]
pub(crate) fn current() -> Option<RequestArena> {
    let handle = CURRENT.try_with(Cell::get).ok()?;
    // SAFETY: a non-null pointer was set by `enter` from a `&RequestArena`
    // borrowed for the life of a guard that is still alive on this thread
    // (the guard of `with_current`'s closure, still running, or a local of
    // a function still running: guards drop in reverse order, each
    // restoring the pointer before it, on unwind too, and are never
    // forgotten), so the handle is alive and not mutably borrowed.
    unsafe { handle.as_ref() }.cloned()
}
