//! Raw chunks: blocks of memory obtained from the system allocator.
//!
//! This module and [`crate::cursor`] hold the pointer arithmetic of the crate.
//! A [`RawChunk`] owns one allocation of `capacity` bytes aligned to `align`;
//! the arena keeps its chunks in a `Vec` ordered by use (see
//! `docs/architecture.md`): chunks `0..=current` hold live data, the rest are
//! empty and kept for reuse.

use core::alloc::Layout;
use core::ptr::NonNull;

/// Alignment of every chunk; allocations with a larger alignment get a
/// chunk aligned to theirs, so a fresh chunk never needs padding.
pub(crate) const CHUNK_ALIGN: usize = 16;

/// Largest size the cursor's fast path handles. Chunks never end within
/// `2 * FAST_SIZE` of `usize::MAX` (see [`RawChunk::allocate`]), so the
/// fast path's `ptr + size + align - 1` cannot overflow.
pub(crate) const FAST_SIZE: usize = 1 << 16;

/// One block of memory owned by an arena.
#[derive(Debug)]
pub(crate) struct RawChunk {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Bytes in use when the arena's cursor last left this chunk. Only
    /// meaningful for chunks before the current one.
    pub(crate) used: usize,
}

impl RawChunk {
    /// Allocates a chunk of exactly `capacity` bytes (`capacity > 0`).
    pub(crate) fn allocate(capacity: usize, align: usize) -> Option<RawChunk> {
        debug_assert!(capacity > 0);
        let layout = Layout::from_size_align(capacity, align.max(CHUNK_ALIGN)).ok()?;
        // SAFETY: `layout` has a non-zero size (`capacity > 0`).
        let ptr = unsafe { std::alloc::alloc(layout) };
        let chunk = RawChunk {
            ptr: NonNull::new(ptr)?,
            layout,
            used: 0,
        };
        // Never happens on real systems (the top of the address space is the
        // kernel's), but the cursor's overflow argument relies on it.
        if chunk.end().addr() > usize::MAX - 2 * FAST_SIZE {
            return None;
        }
        Some(chunk)
    }

    /// First byte of the chunk.
    #[inline]
    pub(crate) fn start(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// One past the last byte of the chunk.
    #[inline]
    pub(crate) fn end(&self) -> *mut u8 {
        // SAFETY: `capacity` bytes from `ptr` are one allocation, so the
        // one-past-the-end pointer is in bounds.
        unsafe { self.ptr.as_ptr().add(self.layout.size()) }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.layout.size()
    }

    #[inline]
    pub(crate) fn align(&self) -> usize {
        self.layout.align()
    }

    /// Can an allocation of `layout` be served from the start of this chunk?
    pub(crate) fn fits(&self, layout: Layout) -> bool {
        let padding = if self.align() >= layout.align() {
            0
        } else {
            layout.align() - 1
        };
        layout
            .size()
            .checked_add(padding)
            .is_some_and(|n| n <= self.capacity())
    }
}

impl Drop for RawChunk {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `std::alloc::alloc(self.layout)` and
        // is freed exactly once, here.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}
