//! The request being served on this thread: [`RequestArena::current`].
//!
//! While [`ArenaService`](crate::ArenaService) calls its inner service and
//! while its [`ResponseFuture`](crate::ResponseFuture) polls the inner
//! future, a thread-local points at the request's handle, so that the
//! extractor (and any code the handler runs) finds the arena without the
//! request's extensions, whose map and boxed entry are two heap allocations
//! per request, and without an `Arc` clone per poll.
//!
//! The pointer is set only by [`enter`], whose guard borrows the handle and
//! puts the previous pointer back when dropped (on unwind too), so nested
//! layers stack and the pointer never outlives the borrow. The guard is
//! never leaked or held across a `poll`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;

use crate::handle::RequestArena;

thread_local! {
    static CURRENT: Cell<*const RequestArena> = const { Cell::new(ptr::null()) };
}

/// The handle of the request served on this thread, while an [`Entered`]
/// guard lives.
pub(crate) struct Entered<'a> {
    previous: *const RequestArena,
    _handle: PhantomData<&'a RequestArena>,
}

/// Makes `handle` this thread's current request until the guard is dropped.
#[inline]
pub(crate) fn enter(handle: &RequestArena) -> Entered<'_> {
    let previous = CURRENT
        .try_with(|c| c.replace(handle))
        .unwrap_or(ptr::null());
    Entered {
        previous,
        _handle: PhantomData,
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.previous));
    }
}

/// A clone of the current request's handle, if a request is being served
/// on this thread.
#[inline]
pub(crate) fn current() -> Option<RequestArena> {
    let handle = CURRENT.try_with(Cell::get).ok()?;
    // SAFETY: a non-null pointer was set by `enter` from a `&RequestArena`
    // that the live `Entered` guard still borrows (guards are dropped in
    // reverse order of their making, each restoring the pointer before
    // it), so the handle is alive and not mutably borrowed: the service
    // and future that hold it only touch it again after the guard is gone.
    unsafe { handle.as_ref() }.cloned()
}
