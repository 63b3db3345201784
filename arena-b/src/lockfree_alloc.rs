//! Feature `lockfree`: [`LockFreeAllocator`], one bump buffer shared by
//! all threads through an atomic offset.
//!
//! # When it helps
//! A `SyncArena` gives every thread that allocates its own part: the
//! fastest path when a few threads allocate a lot. When many threads each
//! allocate a little (a pool of short-lived worker threads, say), every one
//! of them takes a part and a chunk of its own. A `LockFreeAllocator` serves
//! small allocations of all threads from one buffer instead: a
//! compare-and-swap on a shared offset per allocation, no per-thread state.
//! It costs more per allocation under contention (threads fight over one
//! cache line), so a `SyncArena` uses it only when it is
//! [enabled](LockFreeAllocator::enable), and falls back to the calling
//! thread's part when the buffer is full or the request is large;
//! [`cache_hit_rate`](LockFreeAllocator::cache_hit_rate) says how often it
//! served.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::Relaxed;

// Under `--cfg loom` the atomics come from loom (`tests/loom_lockfree.rs`).
#[cfg(not(loom))]
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
#[cfg(loom)]
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use crate::chunk::RawChunk;
use crate::error::{BuildError, BuildReason};
use crate::lockfree::LockFreeStats;

/// Largest request served by default (bigger ones go to the fallback).
pub const DEFAULT_LOCKFREE_MAX_SIZE: usize = 256;

/// A lock-free bump buffer for small allocations, shareable between
/// threads (`Send + Sync`). Every allocation is a compare-and-swap on one
/// atomic offset; the regions handed out never overlap, and they live until
/// [`reset`](Self::reset) (which needs `&mut self`) or drop.
///
/// ```
/// use arena_b::LockFreeAllocator;
///
/// let buffer = LockFreeAllocator::new(64 * 1024);
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         let buffer = &buffer;
///         s.spawn(move || {
///             for i in 0..100 {
///                 let x = buffer.alloc_copy(t * 1000 + i).expect("room left");
///                 assert_eq!(*x, t * 1000 + i);
///             }
///         });
///     }
/// });
/// assert_eq!(buffer.used(), 400 * 8);
/// assert_eq!(buffer.cache_hit_rate(), 1.0);
/// ```
pub struct LockFreeAllocator {
    buffer: RawChunk,
    /// Offset of the first free byte.
    next: AtomicUsize,
    enabled: AtomicBool,
    max_size: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

// SAFETY: the buffer is plain memory owned by this value; shared access
// only hands out disjoint regions (claimed by a compare-and-swap on
// `next`), and `reset` needs `&mut self`.
unsafe impl Send for LockFreeAllocator {}
// SAFETY: as above.
unsafe impl Sync for LockFreeAllocator {}

impl fmt::Debug for LockFreeAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFreeAllocator")
            .field("capacity", &self.capacity())
            .field("used", &self.used())
            .field("enabled", &self.is_enabled())
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl LockFreeAllocator {
    /// An enabled buffer of `capacity` bytes serving requests of up to
    /// [`DEFAULT_LOCKFREE_MAX_SIZE`] bytes.
    ///
    /// # Panics
    /// If `capacity` is 0 or the buffer cannot be allocated, with a message
    /// that says so; [`try_new`](Self::try_new) returns the error instead.
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Self::with_max_size(capacity, DEFAULT_LOCKFREE_MAX_SIZE)
    }

    /// As [`new`](Self::new), serving requests of up to `max_size` bytes.
    #[track_caller]
    pub fn with_max_size(capacity: usize, max_size: usize) -> Self {
        match Self::try_with_max_size(capacity, max_size) {
            Ok(buffer) => buffer,
            Err(e) => {
                panic!("{e} (LockFreeAllocator::new({capacity})); call try_new to handle the error")
            }
        }
    }

    /// Fallible [`new`](Self::new): an error when `capacity` is 0, larger
    /// than an allocation can be, or more than the system allocator gives.
    ///
    /// ```
    /// use arena_b::LockFreeAllocator;
    /// assert!(LockFreeAllocator::try_new(usize::MAX).is_err());
    /// assert!(LockFreeAllocator::try_new(0).is_err());
    /// assert_eq!(LockFreeAllocator::try_new(4096).unwrap().capacity(), 4096);
    /// ```
    pub fn try_new(capacity: usize) -> Result<Self, BuildError> {
        Self::try_with_max_size(capacity, DEFAULT_LOCKFREE_MAX_SIZE)
    }

    /// Fallible [`with_max_size`](Self::with_max_size).
    pub fn try_with_max_size(capacity: usize, max_size: usize) -> Result<Self, BuildError> {
        if capacity == 0 || capacity > crate::builder::MAX_CHUNK {
            return Err(BuildError::new(BuildReason::LockfreeSize {
                bytes: capacity,
                max: crate::builder::MAX_CHUNK,
            }));
        }
        let buffer = RawChunk::allocate(capacity, 1).ok_or(BuildError::new(
            BuildReason::LockfreeMemory { bytes: capacity },
        ))?;
        Ok(LockFreeAllocator {
            buffer,
            next: AtomicUsize::new(0),
            enabled: AtomicBool::new(true),
            max_size,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Serve allocations again (a `SyncArena` routes small requests here).
    pub fn enable(&self) {
        self.enabled.store(true, Relaxed);
    }

    /// Stop serving: [`try_alloc_layout`](Self::try_alloc_layout) returns
    /// `None` without counting a miss, and a `SyncArena` allocates from
    /// the calling thread's part. Memory already handed out stays valid.
    pub fn disable(&self) {
        self.enabled.store(false, Relaxed);
    }

    /// Whether allocations are served.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Bytes of the buffer.
    pub fn capacity(&self) -> usize {
        self.buffer.capacity()
    }

    /// Bytes handed out (alignment padding included).
    pub fn used(&self) -> usize {
        self.next.load(Relaxed)
    }

    /// Requests served over requests made while enabled, in `0.0..=1.0`
    /// (`0.0` before any).
    pub fn cache_hit_rate(&self) -> f64 {
        self.stats().cache_hit_rate()
    }

    /// Hits (served) and misses (full buffer or a request over the size
    /// limit) as a [`LockFreeStats`] snapshot.
    pub fn stats(&self) -> LockFreeStats {
        LockFreeStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            ..LockFreeStats::default()
        }
    }

    /// Memory for `layout` from the buffer, or `None` when disabled, full
    /// or asked for more than the size limit. The memory stays valid until
    /// `reset` or drop.
    ///
    /// ```
    /// let buffer = arena_b::LockFreeAllocator::new(4096);
    /// let p = buffer.try_alloc_layout(std::alloc::Layout::new::<u64>()).unwrap();
    /// assert_eq!(p.as_ptr() as usize % 8, 0);
    /// buffer.disable();
    /// assert!(buffer.try_alloc_layout(std::alloc::Layout::new::<u64>()).is_none());
    /// ```
    #[inline]
    pub fn try_alloc_layout(&self, layout: Layout) -> Option<NonNull<u8>> {
        if !self.is_enabled() {
            return None;
        }
        let got = self.claim(layout);
        if got.is_some() {
            self.hits.fetch_add(1, Relaxed);
        } else {
            self.misses.fetch_add(1, Relaxed);
        }
        got
    }

    /// Copies `value` into the buffer.
    pub fn alloc_copy<T: Copy>(&self, value: T) -> Option<&mut T> {
        let p = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `p` is a fresh, aligned region for a `T` that nobody else
        // is handed; it lives as long as `&self` (reset needs `&mut`).
        unsafe {
            p.as_ptr().write(value);
            Some(&mut *p.as_ptr())
        }
    }

    /// Claims a disjoint aligned region of the buffer.
    #[inline]
    fn claim(&self, layout: Layout) -> Option<NonNull<u8>> {
        if layout.size() > self.max_size {
            return None;
        }
        if layout.size() == 0 {
            return Some(crate::typed::dangling(layout.align()));
        }
        // Under ASan, every claim unpoisons its own bytes from the claiming
        // thread, and ASan's shadow keeps one byte per 8 bytes of memory,
        // updated without synchronization: two threads unpoisoning
        // neighbours in one 8-byte granule at once can lose an update. Whole
        // granules per claim keep the threads' updates apart.
        #[cfg(arena_b_asan)]
        let layout =
            match Layout::from_size_align(layout.size().next_multiple_of(8), layout.align().max(8))
            {
                Ok(granules) => granules,
                Err(_) => return None,
            };
        let size = layout.size();
        let base = self.buffer.start();
        let capacity = self.buffer.capacity();
        // An alignment beyond the buffer's size can never be met; refusing
        // it also keeps `addr + align - 1` below from overflowing (chunks
        // end far below `usize::MAX`, see `RawChunk::allocate`).
        if layout.align() > capacity {
            return None;
        }
        let mut next = self.next.load(Relaxed);
        loop {
            let addr = base.addr() + next;
            let start = (addr + (layout.align() - 1)) & !(layout.align() - 1);
            let end = start - base.addr() + size;
            if end > capacity {
                return None;
            }
            // Relaxed suffices: the offset only partitions the buffer; the
            // data written into a region is published by whatever the
            // caller uses to share the reference.
            match self.next.compare_exchange_weak(next, end, Relaxed, Relaxed) {
                Ok(_) => {
                    // SAFETY: `[start, start + size)` lies inside the buffer
                    // (`end <= capacity`), and the successful exchange made
                    // it ours alone: offsets only grow until `reset(&mut
                    // self)`. `base` is non-null, so is `base + offset`.
                    let p = unsafe { base.add(start - base.addr()) };
                    // SAFETY: the region just claimed (above), in whole
                    // 8-byte granules under ASan, so no other thread's
                    // claim touches its shadow bytes; ASan only updates its
                    // shadow (a no-op without `arena_b_asan`).
                    unsafe { crate::asan::unpoison(p, size) };
                    // SAFETY: non-null, see above.
                    return Some(unsafe { NonNull::new_unchecked(p) });
                }
                Err(now) => next = now,
            }
        }
    }

    /// Frees everything at once (exclusive access: nothing handed out can
    /// still be borrowed). With feature `debug` the freed bytes are
    /// overwritten with [`POISON`](crate::POISON) (and poisoned for ASan
    /// under `--cfg arena_b_asan`), as an arena's are.
    ///
    /// ```
    /// let mut buffer = arena_b::LockFreeAllocator::new(4096);
    /// buffer.alloc_copy(7u64).unwrap();
    /// buffer.reset();
    /// assert_eq!(buffer.used(), 0);
    /// ```
    pub fn reset(&mut self) {
        #[cfg(feature = "debug")]
        {
            let used = self.next.load(Relaxed).min(self.buffer.capacity());
            let start = self.buffer.start();
            // SAFETY: `[start, start + used)` is the part of our live buffer
            // handed out so far, writable through the buffer's own pointer;
            // `&mut self` means no region handed out is still borrowed.
            unsafe { crate::debug::poison(start, start.add(used)) };
        }
        self.next.store(0, Relaxed);
    }
}
