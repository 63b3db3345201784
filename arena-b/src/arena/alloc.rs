//! The allocation methods of [`Arena`] (the family of `crate::api`), and
//! `&Arena` as the owner of the fast path (`Bump`).

use super::*;
use crate::typed::Mode;

alloc_api! {
    impl [] Arena,
    bound = [Send + 'static],
    plain = |this| this,
    try = |this| Ok::<_, AllocError>(this),
    setup = "let arena = arena_b::Arena::new();",
    end = "",
}

impl Arena {
    /// Makes sure the next `bytes` bytes of allocations (padding included)
    /// need no new chunk, taking one now if the current chunk is too small.
    ///
    /// # Panics
    /// As [`alloc`](Self::alloc) when the chunk cannot be had.
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.reserve_additional(1 << 20);
    /// let chunks = arena.chunk_usage().len();
    /// for i in 0..1000u64 { arena.alloc(i); }
    /// assert_eq!(arena.chunk_usage().len(), chunks);
    /// ```
    #[track_caller]
    pub fn reserve_additional(&self, bytes: usize) {
        if let Err(e) = self.reserve(bytes, Mode::Plain) {
            typed::fail(e, Layout::array::<u8>(bytes).ok());
        }
    }

    /// Fallible [`reserve_additional`](Self::reserve_additional).
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().allocation_limit(4096).build();
    /// assert!(arena.try_reserve_additional(1 << 20).is_err());
    /// ```
    pub fn try_reserve_additional(&self, bytes: usize) -> Result<(), AllocError> {
        self.reserve(bytes, Mode::Try)
    }

    fn reserve(&self, bytes: usize, mode: Mode) -> Result<(), AllocError> {
        if bytes == 0 || self.cursor.remaining() >= bytes {
            return Ok(());
        }
        let layout = Layout::from_size_align(bytes, 1).map_err(|_| AllocError::overflow())?;
        let pending = self.grow(layout, Growth::Policy, mode)?;
        self.report_pending(pending);
        Ok(())
    }

    /// Resizes the last block `[ptr, ptr + old_size)` of the arena's cursor in
    /// place if it is the last one (the `Allocator` impl). Giving bytes back
    /// moves the position backwards, which is recorded like a rewind: a
    /// checkpoint taken in between must not be accepted after the bytes are
    /// handed out again.
    ///
    /// Only the test whether the block ends at the cursor is inlined: it
    /// answers most frees (collections dropped out of order), and keeps the
    /// free of a collection a handful of instructions.
    #[inline(always)]
    pub(crate) fn resize_last(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        self.cursor.ends_at_cursor(ptr, old_size) && self.resize_at_cursor(ptr, old_size, new_size)
    }

    /// [`resize_last`](Self::resize_last) of a block that ends at the
    /// cursor.
    #[inline(never)]
    fn resize_at_cursor(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        if new_size < old_size {
            // The high-water mark before the bytes go back (a collection
            // that grew and is freed leaves no other trace of its size).
            self.note_peak();
        }
        let resized = self
            .cursor
            .resize_last(self.chunk_start.get(), ptr, old_size, new_size);
        if resized && new_size < old_size {
            #[cfg(feature = "debug")]
            {
                let here = self.cursor.ptr();
                // SAFETY: the block's tail `[here, here + old - new)` was just
                // given back; it is inside the current chunk, and `here`
                // carries the chunk's provenance.
                let bytes = unsafe { crate::debug::poison(here, here.add(old_size - new_size)) };
                self.note_poisoned(
                    self.current.get(),
                    here.addr() + (old_size - new_size),
                    bytes,
                );
            }
            self.record_rewind(self.pos());
        }
        resized
    }
}

impl<'a> Bump<'a> for &'a Arena {
    #[inline(always)]
    fn cursor(self) -> &'a Cursor {
        &self.cursor
    }

    #[inline(always)]
    fn drop_list(self) -> &'a DropList {
        &self.drops
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(self, layout: Layout, mode: Mode) -> Result<(NonNull<u8>, Pending), AllocError> {
        let pending = self.grow(layout, Growth::Policy, mode)?;
        let block = self
            .cursor
            .bump(layout)
            .expect("arena-b: a chunk chosen for a layout must fit it");
        // The peak is sampled where chunks change: after the allocation
        // that opened this one, too.
        self.note_peak();
        Ok((block, pending))
    }

    #[inline(always)]
    fn report(self, pending: Pending) {
        if pending.0.is_some() {
            self.report_pending(pending);
        }
    }

    #[cfg(feature = "stats")]
    #[inline(always)]
    fn count_alloc(self) {
        self.counters.allocations.add(1);
    }

    #[inline]
    fn give_back_last(self, ptr: NonNull<u8>, size: usize) {
        self.resize_last(ptr, size, 0);
    }

    #[inline(always)]
    fn publish(self) {
        self.cursor.publish();
    }

    #[inline(always)]
    fn position(self) -> *mut u8 {
        self.cursor.ptr()
    }

    #[inline(always)]
    fn publish_at(self, position: *mut u8) {
        self.cursor.publish_at(position);
    }
}
