//! Cells written only by the thread that owns an arena and readable from
//! any thread.
//!
//! A `SyncArena` sums the telemetry of per-thread sub-arenas while their
//! owners keep allocating. Reading a `Cell` another thread writes would be a
//! data race, so the fields such a reader touches are atomics. Only the
//! owner writes them, so a Relaxed load plus a Relaxed store is enough (no
//! read-modify-write), and on the usual targets both compile to plain moves:
//! the fast path costs what it cost with `Cell`.

use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed};

/// A `usize` with the API of `Cell<usize>`, written by one thread only.
#[derive(Debug, Default)]
pub(crate) struct OwnerCell(AtomicUsize);

impl OwnerCell {
    pub(crate) const fn new(v: usize) -> Self {
        OwnerCell(AtomicUsize::new(v))
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> usize {
        self.0.load(Relaxed)
    }

    #[inline(always)]
    pub(crate) fn set(&self, v: usize) {
        self.0.store(v, Relaxed)
    }

    #[inline(always)]
    pub(crate) fn add(&self, n: usize) {
        self.set(self.get().wrapping_add(n))
    }
}

/// A `*mut u8` with the API of `Cell<*mut u8>`, written by one thread only.
#[derive(Debug)]
pub(crate) struct OwnerPtr(AtomicPtr<u8>);

impl OwnerPtr {
    pub(crate) const fn new(p: *mut u8) -> Self {
        OwnerPtr(AtomicPtr::new(p))
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> *mut u8 {
        self.0.load(Relaxed)
    }

    #[inline(always)]
    pub(crate) fn set(&self, p: *mut u8) {
        self.0.store(p, Relaxed)
    }
}
