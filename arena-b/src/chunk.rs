//! Raw chunks: blocks of memory obtained from the system allocator.
//!
//! This module and [`crate::cursor`] hold the pointer arithmetic of the crate.
//! A [`RawChunk`] owns one allocation of `capacity` bytes aligned to `align`;
//! the arena keeps its chunks in a list ordered by use (see
//! `docs/architecture.md`): chunks `0..=current` hold live data, the rest are
//! empty and kept for reuse. With feature `thread_local`, freed chunks go to
//! a bounded per-thread cache first.

#[allow(unused_imports)]
use crate::prelude::*;
use core::alloc::Layout;
use core::ptr::NonNull;

/// Alignment of every chunk; allocations with a larger alignment get a
/// chunk aligned to theirs, so a fresh chunk never needs padding.
pub(crate) const CHUNK_ALIGN: usize = 16;

/// Largest size the cursor's fast path handles. Chunks never end within
/// `2 * FAST_SIZE` of `usize::MAX` (see [`RawChunk::allocate`]), so the
/// fast path's `ptr + size + align - 1` cannot overflow.
pub(crate) const FAST_SIZE: usize = 1 << 16;

/// `Box::new(value)`, or `None` when the system allocator fails (where
/// `Box::new` would abort the process): the fallible constructors use it
/// for the few small boxes they need.
#[cfg(feature = "std")]
pub(crate) fn try_box<T>(value: T) -> Option<Box<T>> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Some(Box::new(value));
    }
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { alloc::alloc::alloc(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` is a fresh block of the global allocator with `T`'s
    // layout, which is what `Box<T>` owns and frees.
    unsafe {
        ptr.write(value);
        Some(Box::from_raw(ptr))
    }
}

/// One block of memory owned by an arena.
#[derive(Debug)]
pub(crate) struct RawChunk {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Bytes in use when the arena's cursor last left this chunk. Only
    /// meaningful for chunks before the current one.
    pub(crate) used: usize,
    /// Counted in the limit the arena shares with others (a `SyncArena`'s
    /// parts): taken when the chunk is put to use, given back when it is
    /// freed or left idle by `reset`.
    pub(crate) budgeted: bool,
    /// Feature `debug`: address one past the highest byte filled with
    /// poison since the chunk was taken (0 if none).
    #[cfg(feature = "debug")]
    pub(crate) poisoned_to: usize,
    /// Feature `debug` with `debug_backtrace`: where the allocation that
    /// made the arena take this chunk came from.
    #[cfg(feature = "debug")]
    pub(crate) opened_at: Option<String>,
    /// Feature `virtual_memory`: bytes of address space reserved for this
    /// chunk, of which `capacity()` are committed; 0 for a heap chunk.
    #[cfg(feature = "virtual_memory")]
    reserved: usize,
}

impl RawChunk {
    /// Allocates a chunk of exactly `capacity` bytes (`capacity > 0`).
    pub(crate) fn allocate(capacity: usize, align: usize) -> Option<RawChunk> {
        debug_assert!(capacity > 0);
        let layout = Layout::from_size_align(capacity, align.max(CHUNK_ALIGN)).ok()?;
        #[cfg(feature = "thread_local")]
        if let Some(chunk) = thread_cache::take(layout) {
            return Some(chunk);
        }
        // SAFETY: `layout` has a non-zero size (`capacity > 0`).
        let ptr = NonNull::new(unsafe { alloc::alloc::alloc(layout) })?;
        // Never happens on real systems (the top of the address space is the
        // kernel's), but the cursor's overflow argument relies on it. The
        // check comes before a `RawChunk` exists, so a rejected block is
        // freed here and can never reach the thread-local cache.
        if ptr.as_ptr().addr() > usize::MAX - 2 * FAST_SIZE - layout.size() {
            // SAFETY: `ptr` was just allocated with `layout` and is unused.
            unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) };
            return None;
        }
        Some(RawChunk::owning(ptr, layout))
    }

    /// Takes ownership of the block `ptr` of `layout`, freshly obtained,
    /// as an unused heap chunk.
    fn owning(ptr: NonNull<u8>, layout: Layout) -> RawChunk {
        RawChunk {
            ptr,
            layout,
            used: 0,
            budgeted: false,
            #[cfg(feature = "debug")]
            poisoned_to: 0,
            #[cfg(feature = "debug")]
            opened_at: None,
            #[cfg(feature = "virtual_memory")]
            reserved: 0,
        }
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
        // SAFETY: the chunk is live and ours; ASan must see it whole again
        // before it is reused or freed (a no-op without `arena_b_asan`).
        unsafe { crate::asan::unpoison(self.ptr.as_ptr(), self.layout.size()) };
        #[cfg(feature = "virtual_memory")]
        if self.reserved > 0 {
            // SAFETY: the region came from `vm::reserve(self.reserved)` and
            // is unmapped once, here.
            unsafe { crate::vm::release(self.ptr.as_ptr(), self.reserved) };
            return;
        }
        #[cfg(feature = "thread_local")]
        if thread_cache::give(self.ptr, self.layout) {
            return;
        }
        // SAFETY: `ptr` was returned by `alloc::alloc::alloc(self.layout)` and
        // is freed exactly once, here.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Feature `virtual_memory`: a chunk that is a reserved address range,
/// committed from its start as the arena needs it.
#[cfg(feature = "virtual_memory")]
impl RawChunk {
    /// Reserves `reserve` bytes (rounded up to pages) and commits the first
    /// `initial` (at least a page).
    pub(crate) fn reserve_virtual(
        reserve: usize,
        initial: usize,
    ) -> Result<RawChunk, crate::vm::VirtualMemoryError> {
        use crate::vm::VirtualMemoryError as Error;
        let page = crate::vm::page_size();
        let round = |n: usize| n.checked_add(page - 1).map(|n| n & !(page - 1));
        let reserved = round(reserve.max(page)).ok_or(Error::new(
            "rounding the reservation to pages",
            reserve,
            None,
        ))?;
        let committed = round(initial.clamp(1, reserved)).ok_or(Error::new(
            "rounding the first commit to pages",
            initial,
            None,
        ))?;
        let ptr = crate::vm::reserve(reserved)?;
        // As in `allocate`: the cursor's overflow argument needs chunk ends
        // far from the top of the address space.
        if ptr.as_ptr().addr() > usize::MAX - 2 * FAST_SIZE - reserved {
            // SAFETY: just reserved, unused.
            unsafe { crate::vm::release(ptr.as_ptr(), reserved) };
            return Err(Error::new(
                "placing the reservation far enough from the end of the address space",
                reserved,
                None,
            ));
        }
        let layout = Layout::from_size_align(0, page)
            .map_err(|_| Error::new("describing a page", page, None))?;
        let mut chunk = RawChunk::owning(ptr, layout);
        chunk.reserved = reserved;
        if !chunk.commit_to(committed) {
            return Err(Error::new(
                "committing the first pages (mprotect)",
                committed,
                None,
            ));
        }
        Ok(chunk)
    }

    /// Bytes of address space reserved (0 for a heap chunk).
    #[inline]
    pub(crate) fn reserved(&self) -> usize {
        self.reserved
    }

    /// Commits the region up to `len` bytes from its start (a multiple of
    /// the page size, at most `reserved`, above `capacity()`).
    pub(crate) fn commit_to(&mut self, len: usize) -> bool {
        let committed = self.layout.size();
        debug_assert!(committed < len && len <= self.reserved);
        // SAFETY: `[committed, len)` is page-aligned (both are multiples of
        // the page size) and inside our reservation.
        let ok = unsafe { crate::vm::commit(self.ptr.as_ptr().add(committed), len - committed) };
        if ok {
            self.layout = Layout::from_size_align(len, self.layout.align()).expect("page layout");
        }
        ok
    }

    /// Decommits everything past `len` bytes (a multiple of the page size,
    /// below `capacity()`).
    ///
    /// # Safety
    /// Nothing past `len` is in use.
    pub(crate) unsafe fn decommit_from(&mut self, len: usize) {
        let committed = self.layout.size();
        debug_assert!(len < committed && len.is_multiple_of(self.layout.align()));
        // SAFETY: page-aligned, inside the reservation, unused per the
        // caller. ASan must forget any poisoning of pages that go away.
        unsafe {
            let start = self.ptr.as_ptr().add(len);
            crate::asan::unpoison(start, committed - len);
            crate::vm::decommit(start, committed - len);
        }
        self.layout = Layout::from_size_align(len, self.layout.align()).expect("page layout");
        #[cfg(feature = "debug")]
        {
            self.poisoned_to = self.poisoned_to.min(self.ptr.as_ptr().addr() + len);
        }
    }
}

/// Feature `thread_local`: a bounded per-thread cache of free chunks.
///
/// Every arena on a thread takes its chunks from here first and gives them
/// back here when it frees them (drop, `shrink_to_fit`,
/// `reset_and_shrink`), so creating, filling and dropping short-lived arenas
/// in a loop stops calling the system allocator once the cache is warm. The
/// cache is bounded in count and bytes; chunks beyond it, and chunks freed
/// while the thread's storage is being torn down, go back to the system.
#[cfg(feature = "thread_local")]
mod thread_cache {
    use core::alloc::Layout;
    use core::cell::RefCell;
    use core::ptr::NonNull;

    use super::RawChunk;

    /// Most chunks kept per thread.
    pub(crate) const MAX_CHUNKS: usize = 16;
    /// Most bytes kept per thread.
    pub(crate) const MAX_BYTES: usize = 16 << 20;

    struct Cache {
        chunks: Vec<RawChunk>,
        bytes: usize,
    }

    thread_local! {
        static CACHE: RefCell<Cache> = const {
            RefCell::new(Cache { chunks: Vec::new(), bytes: 0 })
        };
    }

    /// A cached chunk with exactly this size and at least this alignment.
    pub(super) fn take(layout: Layout) -> Option<RawChunk> {
        CACHE
            .try_with(|cache| {
                let mut cache = cache.try_borrow_mut().ok()?;
                let i = cache.chunks.iter().position(|c| {
                    c.layout.size() == layout.size() && c.layout.align() >= layout.align()
                })?;
                let chunk = cache.chunks.swap_remove(i);
                cache.bytes -= chunk.layout.size();
                Some(chunk)
            })
            .ok()
            .flatten()
    }

    /// Keeps the chunk `(ptr, layout)` if there is room; returns whether it
    /// was kept (then the caller must not free it).
    pub(super) fn give(ptr: NonNull<u8>, layout: Layout) -> bool {
        CACHE
            .try_with(|cache| {
                let Ok(mut cache) = cache.try_borrow_mut() else {
                    return false;
                };
                if cache.chunks.len() >= MAX_CHUNKS || cache.bytes + layout.size() > MAX_BYTES {
                    return false;
                }
                if cache.chunks.capacity() == 0
                    && cache.chunks.try_reserve_exact(MAX_CHUNKS).is_err()
                {
                    return false;
                }
                cache.bytes += layout.size();
                // The caller's `RawChunk` is being dropped without freeing, so
                // this is the chunk's one owner from now on.
                cache.chunks.push(RawChunk::owning(ptr, layout));
                true
            })
            .unwrap_or(false)
    }
}
