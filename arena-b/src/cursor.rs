//! The bump cursor: the hot path of every allocation.
//!
//! A cursor is a `[ptr, end)` window of a chunk that is still free. An
//! allocation aligns `ptr` up, adds the size, compares with `end` and
//! stores: one predictable branch, everything else goes to the owner's
//! `#[cold]` slow path. Both [`Arena`](crate::Arena) and
//! [`Scope`](crate::Scope) bump through one.

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};

use crate::chunk::FAST_SIZE;
use crate::owner_cell::OwnerPtr;

/// A free window `[ptr, end)` inside one chunk (or the empty window
/// `[null, null)` before the first chunk exists).
///
/// Invariant: either both pointers are null, or both point into (or one
/// past) the same live chunk with `ptr <= end`, and the bytes in between
/// belong to nobody.
///
/// # Why the position is kept twice
/// The owner bumps `ptr`, a plain `Cell`. Other threads (a `SyncArena`
/// summing its parts' telemetry) read `published`, an atomic the owner
/// copies `ptr` into after each allocation has written its value
/// ([`publish`](Cursor::publish)). An atomic store *before* the value is
/// written would keep the optimizer from building the value straight in the
/// arena: `arena.alloc([x; 200])` was a `memset` on the stack and a `memcpy`
/// call, where bumpalo writes the bytes in place.
#[derive(Debug)]
pub(crate) struct Cursor {
    ptr: Cell<*mut u8>,
    /// `ptr` as of the owner's last `publish` (or window change).
    published: OwnerPtr,
    end: Cell<*mut u8>,
}

impl Cursor {
    pub(crate) const fn empty() -> Self {
        Cursor {
            ptr: Cell::new(ptr::null_mut()),
            published: OwnerPtr::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
        }
    }

    #[inline(always)]
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.get()
    }

    /// The position for a reader on another thread.
    #[inline(always)]
    pub(crate) fn published(&self) -> *mut u8 {
        self.published.get()
    }

    /// Makes the position visible to readers on other threads; called by
    /// the owner after an allocation has written its value.
    #[inline(always)]
    pub(crate) fn publish(&self) {
        self.published.set(self.ptr.get());
    }

    /// [`publish`](Self::publish) of a position the owner read before the
    /// value was written, with no allocation since.
    #[inline(always)]
    pub(crate) fn publish_at(&self, position: *mut u8) {
        debug_assert_eq!(position, self.ptr.get());
        self.published.set(position);
    }

    /// Free bytes left in the window.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.end.get().addr() - self.ptr.get().addr()
    }

    /// Replaces the window.
    ///
    /// # Safety
    /// `[ptr, end)` must satisfy the type invariant: inside one live chunk
    /// that outlives every allocation made through this cursor, owned by
    /// nobody else.
    #[inline]
    pub(crate) unsafe fn set(&self, ptr: *mut u8, end: *mut u8) {
        debug_assert!(ptr.addr() <= end.addr());
        self.ptr.set(ptr);
        self.published.set(ptr);
        self.end.set(end);
    }

    /// Moves only the start of the window (giving bytes back or taking
    /// them).
    ///
    /// # Safety
    /// As for [`Cursor::set`] with the current `end`.
    #[inline]
    pub(crate) unsafe fn set_ptr(&self, ptr: *mut u8) {
        debug_assert!(ptr.addr() <= self.end.get().addr());
        self.ptr.set(ptr);
        self.published.set(ptr);
    }

    /// Bumps `layout.size()` bytes aligned to `layout.align()` off the
    /// window, or returns `None` when they do not fit.
    ///
    /// `layout.size()` must be non-zero (zero-sized requests are answered by
    /// the caller with a dangling pointer, which also keeps them off a null
    /// window).
    #[inline(always)]
    pub(crate) fn bump(&self, layout: Layout) -> Option<NonNull<u8>> {
        debug_assert!(layout.size() != 0);
        let size = layout.size();
        let align = layout.align();
        let ptr = self.ptr.get();
        let end = self.end.get().addr();
        if size.is_multiple_of(align) && size <= FAST_SIZE {
            // The fast form, for every Rust type (its size is a multiple of
            // its alignment): align the *end* of the block up. Then the start,
            // `new_end - size`, is aligned too, and the loop-carried work is
            // one add and one mask. No overflow: `ptr <= end` and chunk ends
            // stay `2 * FAST_SIZE` below `usize::MAX` (`RawChunk`).
            let new_end = (ptr.addr() + (size + align - 1)) & !(align - 1);
            if new_end <= end {
                // SAFETY: `ptr <= new_end - size` (rounding up only adds) and
                // `new_end <= end`; `size > 0` makes the window non-empty,
                // hence inside one chunk, so both pointers stay in `[ptr, end]`.
                unsafe {
                    self.ptr.set(ptr.add(new_end - ptr.addr()));
                    let block = ptr.add(new_end - size - ptr.addr());
                    #[cfg(all(feature = "debug", arena_b_asan))]
                    crate::asan::unpoison(block, size);
                    return Some(NonNull::new_unchecked(block));
                }
            }
            return None;
        }
        self.bump_general(layout)
    }

    /// [`bump`](Self::bump) in its general form only, for layouts known
    /// only at run time (the `Allocator` interface: collections grow by
    /// sizes computed as they go), where the fast form's size check is one
    /// more comparison and, at alignment 1, the general form is one
    /// subtraction and one comparison.
    #[inline(always)]
    pub(crate) fn bump_general(&self, layout: Layout) -> Option<NonNull<u8>> {
        debug_assert!(layout.size() != 0);
        let size = layout.size();
        let align = layout.align();
        let ptr = self.ptr.get();
        let end = self.end.get().addr();
        // Explicit padding, overflow-free for any layout.
        let start = ptr.addr();
        let padding = start.wrapping_neg() & (align - 1);
        // No overflow: `Layout` guarantees `size <= isize::MAX - (align - 1)`.
        let needed = padding + size;
        if needed <= end - start {
            // SAFETY: `needed <= end - ptr` and `needed > 0`, so the window is
            // non-empty (hence inside one chunk) and `ptr + padding`,
            // `ptr + needed` stay within `[ptr, end]`.
            unsafe {
                self.ptr.set(ptr.add(needed));
                #[cfg(all(feature = "debug", arena_b_asan))]
                crate::asan::unpoison(ptr.add(padding), size);
                Some(NonNull::new_unchecked(ptr.add(padding)))
            }
        } else {
            None
        }
    }

    /// Whether `[old, old + old_size)` ends at the cursor: the one
    /// comparison that answers most frees (a collection dropped out of
    /// order is not the last block), inlined where the free is;
    /// [`resize_last`](Self::resize_last) checks the rest.
    #[inline(always)]
    pub(crate) fn ends_at_cursor(&self, old: NonNull<u8>, old_size: usize) -> bool {
        old.as_ptr().addr().wrapping_add(old_size) == self.ptr.get().addr()
    }

    /// Tries to resize the allocation `[old, old + old_size)` in place;
    /// succeeds only when it is the last allocation of this window and the
    /// new size fits. `window_start` is the start of the chunk the window
    /// lives in: an `old` before it belongs to another chunk.
    #[inline]
    pub(crate) fn resize_last(
        &self,
        window_start: *mut u8,
        old: NonNull<u8>,
        old_size: usize,
        new_size: usize,
    ) -> bool {
        let old = old.as_ptr();
        // The common answer (not the last block: a collection dropped out of
        // order) after one addition and one comparison.
        let is_last = old.addr().checked_add(old_size) == Some(self.ptr.get().addr())
            && old.addr() >= window_start.addr();
        if !is_last || new_size > self.end.get().addr() - old.addr() {
            return false;
        }
        // Keep the provenance of the window's pointer, not of `old`.
        let new_ptr = self.ptr.get().with_addr(old.addr() + new_size);
        // SAFETY: `[old, old + new_size)` is inside this window's chunk
        // (checked above) and is the caller's block from now on.
        #[cfg(all(feature = "debug", arena_b_asan))]
        unsafe {
            crate::asan::unpoison(new_ptr.with_addr(old.addr()), new_size)
        };
        self.ptr.set(new_ptr);
        self.published.set(new_ptr);
        true
    }
}
